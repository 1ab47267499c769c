//! The alert pages: webhook channels that hear of failed, paused and recovered syncs. A
//! channel's URL may hold a token: it is write-only, shown back as scheme, host and port; its
//! signing secret, when wharf generates it, is shown once.

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
use wharf_service::NewAlert;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list).post(create))
        .route("/alerts/{name}", get(show))
        .route("/alerts/{name}/delete", get(confirm_delete).post(delete))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn list_page(
    state: &AppState,
    page_: Page,
    status: StatusCode,
    form: FormState,
    created: Option<wharf_service::NewAlertView>,
    deleted: bool,
) -> Response {
    let alerts = match state.service.alerts(page_.caller()).await {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let syncs: Vec<String> = match state.service.syncs(page_.caller()).await {
        Ok(s) => s.into_iter().map(|s| s.name).collect(),
        Err(e) => return error_page(e),
    };
    render(
        status,
        "alerts/list.html",
        context! { chrome => page_.chrome, nav => "alerts", alerts, syncs, form, created, deleted },
    )
}

fn blank_form() -> FormState {
    FormState::with(&[
        ("on.failed", "on"),
        ("on.paused", "on"),
        ("on.recovered", "on"),
        ("sync", ""),
    ])
}

/// `GET /alerts`.
async fn list(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    let deleted = done.done.as_deref() == Some("deleted");
    list_page(&state, page_, StatusCode::OK, blank_form(), None, deleted).await
}

/// `POST /alerts`: the channel, and its generated secret on this answer only.
async fn create(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let on: Vec<&str> = ["failed", "paused", "recovered"]
        .into_iter()
        .filter(|e| fields.text(&format!("on.{e}")) == "on")
        .collect();
    let new = NewAlert {
        name: fields.text("name").trim().to_string(),
        url: fields.text("url").trim().to_string(),
        on: on.join(","),
        sync: fields.opt("sync"),
        secret: fields.opt("secret"),
    };
    match state.service.add_alert(page_.caller(), new).await {
        Ok(created) => {
            list_page(
                &state,
                page_,
                StatusCode::OK,
                blank_form(),
                Some(created),
                false,
            )
            .await
        }
        Err(e) if is_form_error(&e) || e.kind == wharf_service::ErrorKind::NotFound => {
            // The URL and the secret are not shown back.
            let mut form = FormState::failed(
                &fields,
                &["name", "sync", "on.failed", "on.paused", "on.recovered"],
                &e,
            );
            if e.field.as_deref() == Some("on") {
                form.errors.insert("on".into(), e.message.clone());
            }
            list_page(
                &state,
                page_,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                None,
                false,
            )
            .await
        }
        Err(e) => error_page(e),
    }
}

/// `GET /alerts/{name}`: the channel and its latest deliveries.
async fn show(State(state): State<AppState>, Path(name): Path<String>, page_: Page) -> Response {
    match state.service.alert(page_.caller(), &name).await {
        Ok(alert) => page(
            "alerts/show.html",
            context! { chrome => page_.chrome, nav => "alerts", alert },
        ),
        Err(e) => error_page(e),
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.alert(page_.caller(), &name).await {
        return error_page(e);
    }
    let path = format!("/alerts/{}", segment(&name));
    confirm(
        page_,
        "alerts",
        format!("Delete the alert {name}?"),
        vec!["Its webhook hears of no more events; deliveries waiting are dropped.".into()],
        format!("{path}/delete"),
        "Delete alert",
        path,
    )
}

async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state.service.remove_alert(form.page.caller(), &name).await {
        Ok(()) => Redirect::to("/alerts?done=deleted").into_response(),
        Err(e) => error_page(e),
    }
}
