//! The sync pages: the list, the form (what to export, where, the format and its options,
//! columns and renames, the key template with a live preview of the keys, splitting, the
//! manifest, the empty-result policy, the mode and the schedule in words with its next three
//! runs), and a sync's page (Run now, pause and resume, reset the snapshot, its runs and their
//! charts).

use super::form::{FormState, is_form_error};
use super::runs::{RunRow, charts};
use super::session::{Page, SignedForm};
use super::sync_form::{SHOWN_BACK, defaults, new_sync, stored_values, typed};
use super::{confirm, error_page, page, render, segment};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use wharf_service::{Caller, ServiceError, SyncView, Trigger};

/// Runs shown on a sync's page (and in its charts).
const RECENT_RUNS: u32 = 30;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/syncs", get(list).post(create))
        .route("/syncs/new", get(new))
        .route("/syncs/preview", post(preview))
        .route("/syncs/columns", post(columns))
        .route("/syncs/{name}", get(show).post(update))
        .route("/syncs/{name}/edit", get(edit))
        .route("/syncs/{name}/run", post(run_now))
        .route("/syncs/{name}/pause", post(pause))
        .route("/syncs/{name}/resume", post(resume))
        .route("/syncs/{name}/reset", get(confirm_reset).post(reset))
        .route("/syncs/{name}/delete", get(confirm_delete).post(delete))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Sync saved. Run it now, or let its schedule run it.",
        "updated" => "Sync saved.",
        "paused" => "Paused: the schedule will not run it until you resume it.",
        "resumed" => "Resumed: it runs on its schedule again.",
        "reset" => "Snapshot forgotten: the next run sends every row.",
        "deleted" => "Sync deleted.",
        _ => return None,
    })
}

/// `GET /syncs`.
async fn list(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    let syncs = match state.service.syncs(page_.caller()).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let mut rows = Vec::new();
    for sync in syncs {
        let last = state
            .service
            .runs(page_.caller(), Some(&sync.name), 1)
            .await
            .ok()
            .and_then(|runs| runs.into_iter().next())
            .map(RunRow::from);
        rows.push(context! { sync, last });
    }
    page(
        "syncs/list.html",
        context! { chrome => page_.chrome, nav => "syncs", syncs => rows, notice => notice(done.done.as_deref()) },
    )
}

/// What the form offers: exports (models and segments), destinations, the chosen export's
/// columns.
#[derive(Serialize)]
struct Choices {
    models: Vec<String>,
    segments: Vec<(String, String)>,
    destinations: Vec<String>,
    columns: Vec<String>,
}

async fn choices(state: &AppState, caller: &Caller, export: &str) -> Result<Choices, ServiceError> {
    let models: Vec<String> = state
        .service
        .models(caller)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    let segments: Vec<(String, String)> = state
        .service
        .segments(caller)
        .await?
        .into_iter()
        .map(|s| (s.name, s.model))
        .collect();
    let destinations = state
        .service
        .destinations(caller)
        .await?
        .into_iter()
        .map(|d| d.name)
        .collect();
    let model = match export.split_once(':') {
        Some(("segment", name)) => segments
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, m)| m.clone()),
        Some(("model", name)) => Some(name.to_string()),
        _ => None,
    };
    let columns = match model {
        Some(model) if models.contains(&model) => state
            .service
            .model(caller, &model)
            .await?
            .columns
            .into_iter()
            .map(|c| c.name)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Choices {
        models,
        segments,
        destinations,
        columns,
    })
}

/// The form's page.
async fn form_page(
    state: &AppState,
    page_: Page,
    status: StatusCode,
    form: FormState,
    editing: Option<&str>,
) -> Response {
    let export = form.values.get("export").cloned().unwrap_or_default();
    let choices = match choices(state, page_.caller(), &export).await {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    render(
        status,
        "syncs/form.html",
        context! { chrome => page_.chrome, nav => "syncs", form, choices, editing },
    )
}

#[derive(Deserialize)]
struct NewQuery {
    model: Option<String>,
    segment: Option<String>,
}

/// `GET /syncs/new`.
async fn new(State(state): State<AppState>, Query(q): Query<NewQuery>, page_: Page) -> Response {
    if let Err(e) = page_.caller().require(wharf_service::Role::Editor) {
        return error_page(e);
    }
    let export = match (&q.segment, &q.model) {
        (Some(s), _) => format!("segment:{s}"),
        (None, Some(m)) => format!("model:{m}"),
        (None, None) => String::new(),
    };
    let mut form = defaults(&export);
    if let Ok(destinations) = state.service.destinations(page_.caller()).await
        && let Some(first) = destinations.first()
    {
        form.values.insert("destination".into(), first.name.clone());
    }
    if export.is_empty()
        && let Ok(models) = state.service.models(page_.caller()).await
        && let Some(first) = models.first()
    {
        form.values
            .insert("export".into(), format!("model:{}", first.name));
    }
    form_page(&state, page_, StatusCode::OK, form, None).await
}

/// `POST /syncs`.
async fn create(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let result = match new_sync(&fields) {
        Ok(new) => state.service.add_sync(page_.caller(), new).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(sync) => {
            Redirect::to(&format!("/syncs/{}?done=created", segment(&sync.name))).into_response()
        }
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::NotFound => {
            let mut form = typed(&fields);
            let failed = FormState::failed(&fields, SHOWN_BACK, &e);
            form.errors = failed.errors;
            form.error = failed.error;
            form_page(&state, page_, StatusCode::UNPROCESSABLE_ENTITY, form, None).await
        }
        Err(e) => error_page(e),
    }
}

/// `POST /syncs/preview`: the keys and the schedule as the form stands (or what is wrong).
async fn preview(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let editing = fields.opt("editing");
    let mut fields = fields;
    if let Some(name) = &editing {
        // The name is the sync's identity when editing; a preview uses it.
        fields.0.retain(|(k, _)| k != "name");
        fields.0.push(("name".into(), name.clone()));
    }
    let result = match new_sync(&fields) {
        Ok(new) => {
            state
                .service
                .preview_sync(page_.caller(), new, editing.as_deref())
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(preview) => render(StatusCode::OK, "syncs/preview.html", context! { preview }),
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::NotFound => {
            // A name not typed yet is not worth a message: preview with a stand-in.
            if e.field.as_deref() == Some("name") && fields.text("name").trim().is_empty() {
                fields.0.retain(|(k, _)| k != "name");
                fields.0.push(("name".into(), "new-sync".into()));
                if let Ok(new) = new_sync(&fields)
                    && let Ok(preview) = state.service.preview_sync(page_.caller(), new, None).await
                {
                    return render(StatusCode::OK, "syncs/preview.html", context! { preview });
                }
            }
            render(
                StatusCode::OK,
                "syncs/preview.html",
                context! { error => e.message, field => e.field },
            )
        }
        Err(e) => error_page(e),
    }
}

/// `POST /syncs/columns`: the columns table for the export chosen.
async fn columns(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    match choices(&state, page_.caller(), fields.text("export")).await {
        Ok(choices) => render(
            StatusCode::OK,
            "syncs/columns.html",
            context! { choices, form => FormState::default() },
        ),
        Err(e) => error_page(e),
    }
}

/// What a sync's page shows.
async fn sync_context(
    state: &AppState,
    page_: &Page,
    sync: &SyncView,
) -> Result<Value, ServiceError> {
    let runs: Vec<RunRow> = state
        .service
        .runs(page_.caller(), Some(&sync.name), RECENT_RUNS)
        .await?
        .into_iter()
        .map(RunRow::from)
        .collect();
    let charts = charts(&runs);
    Ok(context! { sync, runs, charts })
}

/// `GET /syncs/{name}`.
async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
    page_: Page,
) -> Response {
    let sync = match state.service.sync(page_.caller(), &name).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    match sync_context(&state, &page_, &sync).await {
        Ok(base) => page(
            "syncs/show.html",
            context! { chrome => page_.chrome, nav => "syncs", notice => notice(done.done.as_deref()), ..base },
        ),
        Err(e) => error_page(e),
    }
}

/// `GET /syncs/{name}/edit`.
async fn edit(State(state): State<AppState>, Path(name): Path<String>, page_: Page) -> Response {
    if let Err(e) = page_.caller().require(wharf_service::Role::Editor) {
        return error_page(e);
    }
    let sync = match state.service.sync(page_.caller(), &name).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    form_page(
        &state,
        page_,
        StatusCode::OK,
        stored_values(&sync),
        Some(&name),
    )
    .await
}

/// `POST /syncs/{name}`: saves the edit form.
async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    let SignedForm {
        page: page_,
        mut fields,
    } = form;
    fields.0.retain(|(k, _)| k != "name");
    fields.0.push(("name".into(), name.clone()));
    let result = match new_sync(&fields) {
        Ok(new) => state.service.update_sync(page_.caller(), &name, new).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(sync) => {
            Redirect::to(&format!("/syncs/{}?done=updated", segment(&sync.name))).into_response()
        }
        Err(e) if is_form_error(&e) => {
            let mut form = typed(&fields);
            let failed = FormState::failed(&fields, SHOWN_BACK, &e);
            form.errors = failed.errors;
            form.error = failed.error;
            form_page(
                &state,
                page_,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                Some(&name),
            )
            .await
        }
        Err(e) => error_page(e),
    }
}

/// `POST /syncs/{name}/run`: queues a run now and opens its page.
async fn run_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state
        .service
        .trigger_run(form.page.caller(), &name, Trigger::Ui)
        .await
    {
        Ok(run_id) => Redirect::to(&format!("/runs/{}", segment(&run_id))).into_response(),
        Err(e) => error_page(e),
    }
}

async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.pause_sync(form.page.caller(), &name).await {
        Ok(_) => Redirect::to(&format!("/syncs/{}?done=paused", segment(&name))).into_response(),
        Err(e) => error_page(e),
    }
}

async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.resume_sync(form.page.caller(), &name).await {
        Ok(_) => Redirect::to(&format!("/syncs/{}?done=resumed", segment(&name))).into_response(),
        Err(e) => error_page(e),
    }
}

async fn confirm_reset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.sync(page_.caller(), &name).await {
        return error_page(e);
    }
    let path = format!("/syncs/{}", segment(&name));
    confirm(
        page_,
        "syncs",
        format!("Reset the snapshot of {name}?"),
        vec![
            "wharf forgets the rows it sent last. The next run sends every row again, as if it were the first: a partner that loads changes receives the whole model once more.".into(),
            "Reset when the destination lost its data, or after a change you want every row re-sent for.".into(),
        ],
        format!("{path}/reset"),
        "Reset snapshot",
        path,
    )
}

async fn reset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.reset_sync(form.page.caller(), &name).await {
        Ok(_) => Redirect::to(&format!("/syncs/{}?done=reset", segment(&name))).into_response(),
        Err(e) => error_page(e),
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.sync(page_.caller(), &name).await {
        return error_page(e);
    }
    let path = format!("/syncs/{}", segment(&name));
    confirm(
        page_,
        "syncs",
        format!("Delete the sync {name}?"),
        vec![
            "It stops running. Files it delivered stay in the bucket; its runs stay in the history.".into(),
        ],
        format!("{path}/delete"),
        "Delete sync",
        path,
    )
}

async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.remove_sync(form.page.caller(), &name).await {
        Ok(()) => Redirect::to("/syncs?done=deleted").into_response(),
        Err(e) => error_page(e),
    }
}
