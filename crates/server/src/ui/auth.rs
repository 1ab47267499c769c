//! Signing in and out, and moving between one's workspaces.

use super::session::{self, Fields, SignedForm};
use super::{page, render};
use crate::AppState;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use wharf_service::ErrorKind;

#[derive(Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Only a path on this site (not `//elsewhere`): a sign-in link cannot send anyone away.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => p,
        _ => "/destinations",
    }
}

/// `GET /sign-in`.
pub(crate) async fn form(
    State(state): State<AppState>,
    Query(next): Query<Next>,
    request: Request,
) -> Response {
    if let Some(token) = session::cookie(request.headers(), session::COOKIE)
        && state.service.session(&token).await.is_ok()
    {
        return Redirect::to(local_path(next.next.as_deref())).into_response();
    }
    page(
        "sign_in.html",
        context! { next => next.next, email => "", error => None::<String> },
    )
}

/// `POST /sign-in`.
pub(crate) async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if !session::same_site(&parts.headers) {
        return session::cross_site_refused();
    }
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let fields = Fields::parse(&body);
    let address = session::client_address(
        &parts.headers,
        session::peer(&parts),
        state.options.behind_https_proxy,
    );
    let email = fields.text("email").trim().to_string();
    let next = fields.opt("next");
    match state
        .service
        .sign_in(&email, fields.text("password"), address)
        .await
    {
        Ok(new) => {
            let mut response = Redirect::to(local_path(next.as_deref())).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                session::session_cookie(Some(&new.token), state.options.behind_https_proxy),
            );
            response
        }
        Err(e) if matches!(e.kind, ErrorKind::Unauthorized | ErrorKind::Throttled) => {
            let status = if e.kind == ErrorKind::Throttled {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            render(
                status,
                "sign_in.html",
                context! { next, email, error => e.message },
            )
        }
        Err(e) => super::error_page(e),
    }
}

/// `POST /sign-out`.
pub(crate) async fn sign_out(State(state): State<AppState>, form: SignedForm) -> Response {
    if let Err(e) = state.service.sign_out(&form.page.token).await {
        return super::error_page(e);
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::session_cookie(None, state.options.behind_https_proxy),
    );
    response
}

/// `POST /workspace`: shows another of the user's workspaces.
pub(crate) async fn switch_workspace(State(state): State<AppState>, form: SignedForm) -> Response {
    let workspace = form.fields.text("workspace");
    match state
        .service
        .switch_workspace(&form.page.token, workspace)
        .await
    {
        Ok(()) => Redirect::to("/destinations").into_response(),
        Err(e) => super::error_page(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/syncs/nightly")), "/syncs/nightly");
        for away in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "syncs",
        ] {
            assert_eq!(local_path(Some(away)), "/destinations", "{away}");
        }
        assert_eq!(local_path(None), "/destinations");
    }
}
