//! The web UI: server-rendered HTML pages over the service layer, enhanced by htmx where a
//! page updates in place (a connection test's steps, a live count, a run's progress). Every
//! page works without JavaScript except those live updates, which fall back to reloading.
//!
//! It owns pages, forms, the session cookie, CSRF checks and the security headers. Like the
//! API, it calls `wharf_service` for every operation and shows its messages unchanged; it
//! holds no rule of its own (what is valid, who may do what). It does not call the API over
//! HTTP: both are interfaces to the same service.
//!
//! Rejected: a single-page app (a JavaScript toolchain to build and audit, pages that need
//! JavaScript to show anything) and templates compiled into Rust types (askama: a rebuild for
//! every edit of a page).

mod access;
mod alerts;
mod assets;
mod auth;
mod builder;
mod connect;
mod destinations;
mod form;
mod models;
mod runs;
mod segments;
mod session;
mod sources;
mod sync_form;
mod syncs;
mod templates;

use crate::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};
use wharf_service::{ErrorKind, ServiceError};

pub(crate) use connect::Tests;

/// The UI's routes (they share the router with the API, whose paths start with `/api`).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(auth::form).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/workspace", post(auth::switch_workspace))
        .route("/assets/{name}", get(assets::serve))
        .merge(destinations::routes())
        .merge(sources::routes())
        .merge(models::routes())
        .merge(segments::routes())
        .merge(syncs::routes())
        .merge(runs::routes())
        .merge(alerts::routes())
        .merge(access::routes())
}

async fn home(_page: session::Page) -> Redirect {
    Redirect::to("/destinations")
}

/// `name` as one path segment.
pub(crate) fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A confirmation page: what will happen, and the button that does it.
pub(crate) fn confirm(
    page_: session::Page,
    nav: &str,
    title: String,
    explanation: Vec<String>,
    action: String,
    button: &str,
    back: String,
) -> Response {
    page(
        "confirm.html",
        context! { chrome => page_.chrome, nav, title, explanation, action, button, back },
    )
}

/// Renders template `name` as a page with `status`; the asset paths are added to `context`.
pub(crate) fn render(status: StatusCode, name: &str, context: Value) -> Response {
    let context = context! { assets => assets::paths(), ..context };
    match templates::render(name, context) {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("page {name} failed to render: {e:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "wharf could not show this page; the server's log says why",
            )
                .into_response()
        }
    }
}

/// Renders a page with status 200.
pub(crate) fn page(name: &str, context: Value) -> Response {
    render(StatusCode::OK, name, context)
}

/// The page for an error that is not about a form's field: not found, forbidden, failed.
/// Internal details go to the log, not the page.
pub(crate) fn error_page(e: ServiceError) -> Response {
    let (status, title) = match e.kind {
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "Not found"),
        ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "Not allowed"),
        ErrorKind::Unauthorized => return Redirect::to("/sign-in").into_response(),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "Not possible right now"),
        ErrorKind::BadInput => (StatusCode::UNPROCESSABLE_ENTITY, "Not valid"),
        ErrorKind::Throttled => (StatusCode::TOO_MANY_REQUESTS, "Too many attempts"),
        ErrorKind::Failed => (StatusCode::UNPROCESSABLE_ENTITY, "It did not work"),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    };
    let message = if e.kind == ErrorKind::Internal {
        tracing::error!(code = %e.code, "internal error: {}", e.message);
        "wharf failed to do this; the server's log says why".to_string()
    } else {
        e.message
    };
    render(
        status,
        "error.html",
        context! { title, message, code => e.code },
    )
}

/// The page for a path no route serves.
pub(crate) fn not_found() -> Response {
    error_page(ServiceError::new(
        ErrorKind::NotFound,
        "page.not_found",
        "there is no page at this address",
    ))
}

/// The content security policy of every response: only this site's scripts and styles, no
/// inline script, no framing, forms posting only here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Adds the security headers to every response, and keeps pages out of caches (they show a
/// workspace's settings).
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
