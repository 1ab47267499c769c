//! The source pages: where data comes from. A local folder of files, or a PostgreSQL database
//! whose URL (it may hold a password) is write-only.

use super::form::{FormState, is_form_error};
use super::session::{Page, SignedForm};
use super::{confirm, error_page, page, render, segment};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::context;
use serde::Deserialize;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sources", get(list).post(create))
        .route("/sources/new", get(new))
        .route("/sources/{name}", get(show))
        .route("/sources/{name}/delete", get(confirm_delete).post(delete))
}

#[derive(Deserialize)]
pub(crate) struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Source added. Next, write a model: a query over it.",
        "deleted" => "Source deleted.",
        _ => return None,
    })
}

/// `GET /sources`.
async fn list(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    match state.service.sources(page_.caller()).await {
        Ok(sources) => page(
            "sources/list.html",
            context! { chrome => page_.chrome, nav => "sources", sources, notice => notice(done.done.as_deref()) },
        ),
        Err(e) => error_page(e),
    }
}

/// `GET /sources/new`.
async fn new(page_: Page) -> Response {
    if let Err(e) = page_.caller().require(wharf_service::Role::Editor) {
        return error_page(e);
    }
    page(
        "sources/form.html",
        context! { chrome => page_.chrome, nav => "sources", form => FormState::with(&[("kind", "local")]) },
    )
}

/// Fields shown again after an error: never the URL, which may hold a password.
const SHOWN_BACK: &[&str] = &["name", "kind", "path", "sslmode"];

/// `POST /sources`.
async fn create(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let name = fields.text("name").trim().to_string();
    let result = match fields.text("kind") {
        "postgres" => state
            .service
            .add_postgres_source_url(
                page_.caller(),
                &name,
                fields.text("url").trim(),
                fields.opt("sslmode").as_deref(),
            )
            .await
            .map(|_| ()),
        _ => state
            .service
            .add_local_source(
                page_.caller(),
                &name,
                std::path::Path::new(fields.text("path").trim()),
            )
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => {
            Redirect::to(&format!("/sources/{}?done=created", segment(&name))).into_response()
        }
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::Forbidden => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sources/form.html",
            context! { chrome => page_.chrome, nav => "sources", form => FormState::failed(&fields, SHOWN_BACK, &e) },
        ),
        Err(e) => error_page(e),
    }
}

/// `GET /sources/{name}`: its settings (a password masked), its models.
async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
    page_: Page,
) -> Response {
    let source = match state.service.source(page_.caller(), &name).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let models: Vec<_> = match state.service.models(page_.caller()).await {
        Ok(models) => models.into_iter().filter(|m| m.source == name).collect(),
        Err(e) => return error_page(e),
    };
    page(
        "sources/show.html",
        context! { chrome => page_.chrome, nav => "sources", source, models, notice => notice(done.done.as_deref()) },
    )
}

/// `GET /sources/{name}/delete`.
async fn confirm_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.source(page_.caller(), &name).await {
        return error_page(e);
    }
    let path = format!("/sources/{}", segment(&name));
    confirm(
        page_,
        "sources",
        format!("Delete the source {name}?"),
        vec![
            "wharf forgets this source and its credentials. The data itself is not touched.".into(),
            "A source that a model reads cannot be deleted: delete those models first.".into(),
        ],
        format!("{path}/delete"),
        "Delete source",
        path,
    )
}

/// `POST /sources/{name}/delete`.
async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.remove_source(form.page.caller(), &name).await {
        Ok(()) => Redirect::to("/sources?done=deleted").into_response(),
        Err(e) => error_page(e),
    }
}
