//! The model pages: a model is SQL over a source with a primary key. The editor previews the
//! SQL as typed (its columns and first rows, or the error with its line and column) and offers
//! the primary key from the preview's columns.

use super::form::{FormState, is_form_error};
use super::session::{Page, SignedForm};
use super::{confirm, error_page, page, render, segment};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;
use wharf_service::NewModelInput;

/// Rows a preview shows.
const PREVIEW_ROWS: usize = 20;

/// A preview as templates read it: the columns with their types, the rows as text.
#[derive(serde::Serialize)]
pub(crate) struct PreviewView {
    columns: Vec<wharf_service::ColumnInfo>,
    rows: Vec<Vec<String>>,
}

impl PreviewView {
    pub(crate) fn new(columns: Vec<wharf_service::ColumnInfo>, rows: Vec<Vec<String>>) -> Self {
        PreviewView { columns, rows }
    }
}

impl From<wharf_service::Preview> for PreviewView {
    fn from(p: wharf_service::Preview) -> Self {
        PreviewView::new(p.columns, p.text)
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/models", get(list).post(create))
        .route("/models/new", get(new))
        .route("/models/preview", post(preview))
        .route("/models/{name}", get(show))
        .route("/models/{name}/delete", get(confirm_delete).post(delete))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Model saved. Next, carve a segment out of it, or sync it to a destination.",
        "deleted" => "Model deleted.",
        _ => return None,
    })
}

/// `GET /models`.
async fn list(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    let models = match state.service.models(page_.caller()).await {
        Ok(m) => m,
        Err(e) => return error_page(e),
    };
    let has_sources = match state.service.sources(page_.caller()).await {
        Ok(s) => !s.is_empty(),
        Err(e) => return error_page(e),
    };
    page(
        "models/list.html",
        context! { chrome => page_.chrome, nav => "models", models, has_sources, notice => notice(done.done.as_deref()) },
    )
}

const SHOWN_BACK: &[&str] = &["name", "source", "sql", "primary_key"];

/// The editor, with `form`, and a preview when one was asked for.
async fn editor(
    state: &AppState,
    page_: Page,
    status: StatusCode,
    form: FormState,
    preview: Option<PreviewView>,
    preview_error: Option<String>,
) -> Response {
    let sources = match state.service.sources(page_.caller()).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    render(
        status,
        "models/form.html",
        context! { chrome => page_.chrome, nav => "models", form, sources, preview, preview_error },
    )
}

#[derive(Deserialize)]
struct NewQuery {
    source: Option<String>,
}

/// `GET /models/new`.
async fn new(State(state): State<AppState>, Query(q): Query<NewQuery>, page_: Page) -> Response {
    if let Err(e) = page_.caller().require(wharf_service::Role::Editor) {
        return error_page(e);
    }
    let form = FormState::with(&[("source", q.source.as_deref().unwrap_or(""))]);
    editor(&state, page_, StatusCode::OK, form, None, None).await
}

/// `POST /models/preview`: the SQL's columns and first rows. htmx swaps in the preview (and
/// the primary-key choices); without JavaScript the whole editor comes back with it.
async fn preview(State(state): State<AppState>, headers: HeaderMap, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let result = state
        .service
        .preview_sql(
            page_.caller(),
            fields.text("source"),
            fields.text("sql"),
            PREVIEW_ROWS,
        )
        .await;
    let (preview, preview_error) = match result {
        Ok(p) => (Some(PreviewView::from(p)), None),
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::NotFound => {
            (None, Some(e.message))
        }
        Err(e) => return error_page(e),
    };
    let form = FormState::typed(&fields, SHOWN_BACK);
    if headers.contains_key("hx-request") {
        return render(
            StatusCode::OK,
            "models/preview.html",
            context! { preview, preview_error, form, oob => true },
        );
    }
    editor(&state, page_, StatusCode::OK, form, preview, preview_error).await
}

/// `POST /models`.
async fn create(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let input = NewModelInput {
        name: fields.text("name").trim(),
        source: fields.text("source"),
        sql: fields.text("sql"),
        primary_key: fields.text("primary_key").trim(),
    };
    match state.service.add_model(page_.caller(), input).await {
        Ok(model) => {
            Redirect::to(&format!("/models/{}?done=created", segment(&model.name))).into_response()
        }
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::NotFound => {
            let form = FormState::failed(&fields, SHOWN_BACK, &e);
            editor(
                &state,
                page_,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                None,
                None,
            )
            .await
        }
        Err(e) => error_page(e),
    }
}

/// `GET /models/{name}`: its SQL, columns and first rows.
async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
    page_: Page,
) -> Response {
    let model = match state.service.model(page_.caller(), &name).await {
        Ok(m) => m,
        Err(e) => return error_page(e),
    };
    let (preview, preview_error) = match state
        .service
        .preview_model(page_.caller(), &name, PREVIEW_ROWS)
        .await
    {
        Ok(p) => (Some(PreviewView::from(p)), None),
        Err(e) => (None, Some(e.message)),
    };
    page(
        "models/show.html",
        context! {
            chrome => page_.chrome,
            nav => "models",
            model,
            preview,
            preview_error,
            notice => notice(done.done.as_deref()),
        },
    )
}

/// `GET /models/{name}/delete`.
async fn confirm_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.model(page_.caller(), &name).await {
        return error_page(e);
    }
    let path = format!("/models/{}", segment(&name));
    confirm(
        page_,
        "models",
        format!("Delete the model {name}?"),
        vec![
            "wharf forgets this model's SQL. The source's data is not touched.".into(),
            "A model that a segment or a sync uses cannot be deleted: delete those first.".into(),
        ],
        format!("{path}/delete"),
        "Delete model",
        path,
    )
}

/// `POST /models/{name}/delete`.
async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.remove_model(form.page.caller(), &name).await {
        Ok(()) => Redirect::to("/models?done=deleted").into_response(),
        Err(e) => error_page(e),
    }
}
