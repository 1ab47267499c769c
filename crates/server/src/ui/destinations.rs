//! The destination pages: the list with each one's status, the add form that adapts to the
//! authentication method, a destination's page (its policies with copy buttons, its settings,
//! Connect), and the confirmations for rotating its External ID and deleting it.

use super::connect;
use super::form::{FormState, is_form_error};
use super::session::{Fields, Page, SignedForm};
use super::{confirm, error_page, page, render, segment};
use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::{Value, context};
use serde::Deserialize;
use std::collections::BTreeMap;
use wharf_service::{AuthSpec, AuthView, DestinationView, S3DestinationSpec, Secret, ServiceError};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/destinations", get(list).post(create))
        .route("/destinations/new", get(new))
        .route("/destinations/{name}", get(show).post(update))
        .route(
            "/destinations/{name}/secret",
            axum::routing::post(replace_secret),
        )
        .route(
            "/destinations/{name}/rotate",
            get(confirm_rotate).post(rotate),
        )
        .route(
            "/destinations/{name}/delete",
            get(confirm_delete).post(delete),
        )
        .route(
            "/destinations/{name}/connect",
            axum::routing::post(connect::start),
        )
        .route("/destinations/{name}/tests/{id}", get(connect::show))
        .route("/destinations/{name}/tests/{id}/steps", get(connect::steps))
}

/// What happened, for the notice at the top of the next page (a fixed set: nothing a link can
/// put on the page).
#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Destination saved. Install the policies below, then press Connect.",
        "updated" => "Settings saved. The destination is unverified until Connect passes again.",
        "secret" => "Access key replaced. Press Connect to check it.",
        "rotated" => {
            "New External ID generated. Update the role's trust policy, then press Connect."
        }
        "deleted" => "Destination deleted.",
        _ => return None,
    })
}

/// `GET /destinations`.
async fn list(State(state): State<AppState>, Query(done): Query<Done>, page_: Page) -> Response {
    match state.service.destinations(page_.caller()).await {
        Ok(destinations) => page(
            "destinations/list.html",
            context! {
                chrome => page_.chrome,
                nav => "destinations",
                destinations,
                notice => notice(done.done.as_deref()),
            },
        ),
        Err(e) => error_page(e),
    }
}

/// Fields the form shows back after an error (never the secret).
const SHOWN_BACK: &[&str] = &[
    "name",
    "bucket",
    "region",
    "prefix",
    "auth",
    "role_arn",
    "session_duration",
    "access_key_id",
    "endpoint",
    "sse",
    "kms_key_id",
    "storage_class",
    "acl",
    "checksum",
];

/// The principal a trust policy names, or why it is unknown.
async fn principal(state: &AppState) -> (Option<String>, Option<String>) {
    match state.service.principal_arn().await {
        Ok(arn) => (Some(arn), None),
        Err(e) => (None, Some(e.message)),
    }
}

/// `GET /destinations/new`.
async fn new(State(state): State<AppState>, page_: Page) -> Response {
    if let Err(e) = page_.caller().require(wharf_service::Role::Editor) {
        return error_page(e);
    }
    let (principal_arn, principal_error) = principal(&state).await;
    let mut form = FormState::default();
    form.values.insert("auth".into(), "role".into());
    form.values.insert("region".into(), "us-east-1".into());
    page(
        "destinations/form.html",
        context! { chrome => page_.chrome, nav => "destinations", form, principal_arn, principal_error },
    )
}

/// The spec a submitted form describes. `adding`: the auth fields are required (an update
/// without them keeps the destination's auth).
fn spec_from(
    fields: &Fields,
    adding: bool,
    current: Option<&DestinationView>,
) -> S3DestinationSpec {
    let method = match current {
        Some(d) => match d.auth {
            AuthView::Role { .. } => "role".to_string(),
            AuthView::AccessKey { .. } => "access_key".to_string(),
        },
        None => fields.text("auth").to_string(),
    };
    let auth = match method.as_str() {
        "role" => Some(AuthSpec::Role {
            role_arn: fields.text("role_arn").trim().to_string(),
            session_duration_seconds: fields.opt("session_duration").and_then(|s| s.parse().ok()),
        }),
        "access_key" if adding => Some(AuthSpec::AccessKey {
            access_key_id: fields.text("access_key_id").trim().to_string(),
            secret_access_key: Secret::new(fields.text("secret_access_key").to_string()),
        }),
        _ => None,
    };
    S3DestinationSpec {
        name: fields.text("name").trim().to_string(),
        bucket: fields.text("bucket").trim().to_string(),
        region: fields.text("region").trim().to_string(),
        prefix: fields.opt("prefix"),
        auth,
        endpoint: fields.opt("endpoint"),
        sse: fields.opt("sse"),
        kms_key_id: fields.opt("kms_key_id"),
        storage_class: fields.opt("storage_class"),
        acl: fields.opt("acl"),
        checksum: fields.opt("checksum"),
        external_id: None,
    }
}

fn auth_missing(fields: &Fields) -> Option<ServiceError> {
    match fields.text("auth") {
        "role" | "access_key" => None,
        _ => Some(ServiceError::bad_input(
            "auth",
            "choose an authentication method: Cross-account role or Access key",
        )),
    }
}

/// `POST /destinations`: saves, then shows the destination, or with Connect runs its test.
async fn create(State(state): State<AppState>, form: SignedForm) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let result = match auth_missing(&fields) {
        Some(e) => Err(e),
        None => {
            state
                .service
                .add_destination(page_.caller(), spec_from(&fields, true, None))
                .await
        }
    };
    match result {
        Ok(view) if fields.text("action") == "connect" => {
            let id = state.ui_tests.start(&state, page_.caller(), &view.name);
            Redirect::to(&format!("/destinations/{}/tests/{id}", segment(&view.name)))
                .into_response()
        }
        Ok(view) => Redirect::to(&format!(
            "/destinations/{}?done=created",
            segment(&view.name)
        ))
        .into_response(),
        Err(e) if is_form_error(&e) => {
            let (principal_arn, principal_error) = principal(&state).await;
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "destinations/form.html",
                context! {
                    chrome => page_.chrome,
                    nav => "destinations",
                    form => FormState::failed(&fields, SHOWN_BACK, &e),
                    principal_arn,
                    principal_error,
                },
            )
        }
        Err(e) => error_page(e),
    }
}

/// What a destination's page shows.
async fn show_context(state: &AppState, page_: &Page, destination: &DestinationView) -> Value {
    let policy = state
        .service
        .destination_policy(page_.caller(), &destination.name, None)
        .await;
    let (policy, policy_error) = match policy {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e.message)),
    };
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    context! {
        chrome => page_.chrome.clone(),
        nav => "destinations",
        destination,
        principal_arn => policy.as_ref().and_then(|p| p.principal_arn.clone()),
        trust_policy => policy.as_ref().and_then(|p| p.trust_policy.as_ref()).map(pretty),
        permission_policy => policy.as_ref().map(|p| pretty(&p.permission_policy)),
        uses_kms => policy.as_ref().is_some_and(|p| p.uses_kms),
        policy_error,
        is_role => matches!(destination.auth, AuthView::Role { .. }),
    }
}

/// The edit form's values for a stored destination.
fn stored_values(d: &DestinationView) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let mut set = |k: &str, value: &str| {
        v.insert(k.to_string(), value.to_string());
    };
    set("name", &d.name);
    set("bucket", &d.bucket);
    set("region", &d.region);
    set("prefix", &d.prefix);
    match &d.auth {
        AuthView::Role {
            role_arn,
            session_duration_seconds,
        } => {
            set("auth", "role");
            set("role_arn", role_arn);
            set("session_duration", &session_duration_seconds.to_string());
        }
        AuthView::AccessKey { .. } => set("auth", "access_key"),
    }
    set("endpoint", d.endpoint.as_deref().unwrap_or(""));
    set("sse", d.sse.unwrap_or(""));
    set("kms_key_id", d.kms_key_id.as_deref().unwrap_or(""));
    set("storage_class", d.storage_class.unwrap_or(""));
    set("acl", d.acl.unwrap_or(""));
    set("checksum", d.checksum);
    v
}

/// `GET /destinations/{name}`.
async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
    page_: Page,
) -> Response {
    let destination = match state.service.destination(page_.caller(), &name).await {
        Ok(d) => d,
        Err(e) => return error_page(e),
    };
    let form = FormState {
        values: stored_values(&destination),
        ..FormState::default()
    };
    let base = show_context(&state, &page_, &destination).await;
    page(
        "destinations/show.html",
        context! { form, notice => notice(done.done.as_deref()), ..base },
    )
}

/// `POST /destinations/{name}`: saves the settings form.
async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let current = match state.service.destination(page_.caller(), &name).await {
        Ok(d) => d,
        Err(e) => return error_page(e),
    };
    let mut spec = spec_from(&fields, false, Some(&current));
    // The name is the destination's identity here; renaming is not offered.
    spec.name = current.name.clone();
    match state
        .service
        .update_destination(page_.caller(), &name, spec)
        .await
    {
        Ok(view) => Redirect::to(&format!(
            "/destinations/{}?done=updated",
            segment(&view.name)
        ))
        .into_response(),
        Err(e) if is_form_error(&e) => {
            let mut form = FormState::failed(&fields, SHOWN_BACK, &e);
            form.values.insert("name".into(), current.name.clone());
            let base = show_context(&state, &page_, &current).await;
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "destinations/show.html",
                context! { form, notice => None::<&str>, ..base },
            )
        }
        Err(e) => error_page(e),
    }
}

/// `POST /destinations/{name}/secret`: a new access key for an access-key destination.
async fn replace_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    let SignedForm {
        page: page_,
        fields,
    } = form;
    let current = match state.service.destination(page_.caller(), &name).await {
        Ok(d) => d,
        Err(e) => return error_page(e),
    };
    let values = stored_values(&current);
    let value = |k: &str| values.get(k).filter(|v| !v.is_empty()).cloned();
    let spec = S3DestinationSpec {
        name: current.name.clone(),
        bucket: current.bucket.clone(),
        region: current.region.clone(),
        prefix: value("prefix"),
        auth: Some(AuthSpec::AccessKey {
            access_key_id: fields.text("access_key_id").trim().to_string(),
            secret_access_key: Secret::new(fields.text("secret_access_key").to_string()),
        }),
        endpoint: value("endpoint"),
        sse: value("sse"),
        kms_key_id: value("kms_key_id"),
        storage_class: value("storage_class"),
        acl: value("acl"),
        checksum: value("checksum"),
        external_id: None,
    };
    match state
        .service
        .update_destination(page_.caller(), &name, spec)
        .await
    {
        Ok(view) => Redirect::to(&format!(
            "/destinations/{}?done=secret",
            segment(&view.name)
        ))
        .into_response(),
        Err(e) if is_form_error(&e) => {
            let base = show_context(&state, &page_, &current).await;
            let mut secret_form = FormState::failed(&fields, SHOWN_BACK, &e);
            secret_form.values.retain(|k, _| k == "access_key_id");
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "destinations/show.html",
                context! {
                    form => FormState { values, ..FormState::default() },
                    secret_form,
                    notice => None::<&str>,
                    ..base
                },
            )
        }
        Err(e) => error_page(e),
    }
}

/// `GET /destinations/{name}/rotate`.
async fn confirm_rotate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    let d = match state.service.destination(page_.caller(), &name).await {
        Ok(d) => d,
        Err(e) => return error_page(e),
    };
    if !matches!(d.auth, AuthView::Role { .. }) {
        return error_page(ServiceError::bad_input(
            "external_id",
            format!("{name:?} uses an access key: it has no External ID"),
        ));
    }
    let path = format!("/destinations/{}", segment(&name));
    confirm(
        page_,
        "destinations",
        format!("Rotate the External ID of {name}?"),
        vec![
            "wharf generates a new External ID. Until the role's trust policy names the new one, wharf can no longer assume the role: scheduled syncs to this destination fail.".into(),
            "The destination becomes unverified. Update the trust policy in AWS with the new ID, then press Connect.".into(),
            "Rotate when the old ID may have leaked, or to cut off a copy of this setup.".into(),
        ],
        format!("{path}/rotate"),
        "Rotate External ID",
        path,
    )
}

/// `POST /destinations/{name}/rotate`.
async fn rotate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state
        .service
        .rotate_external_id(form.page.caller(), &name)
        .await
    {
        Ok(view) => Redirect::to(&format!(
            "/destinations/{}?done=rotated",
            segment(&view.name)
        ))
        .into_response(),
        Err(e) => error_page(e),
    }
}

/// `GET /destinations/{name}/delete`.
async fn confirm_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    page_: Page,
) -> Response {
    if let Err(e) = state.service.destination(page_.caller(), &name).await {
        return error_page(e);
    }
    let path = format!("/destinations/{}", segment(&name));
    confirm(
        page_,
        "destinations",
        format!("Delete the destination {name}?"),
        vec![
            "wharf forgets this destination and its credentials. Files already delivered stay in the bucket.".into(),
            "A destination that a sync uses cannot be deleted: delete or change those syncs first.".into(),
        ],
        format!("{path}/delete"),
        "Delete destination",
        path,
    )
}

/// `POST /destinations/{name}/delete`.
async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    form: SignedForm,
) -> Response {
    match state
        .service
        .remove_destination(form.page.caller(), &name)
        .await
    {
        Ok(()) => Redirect::to("/destinations?done=deleted").into_response(),
        Err(e) => error_page(e),
    }
}
