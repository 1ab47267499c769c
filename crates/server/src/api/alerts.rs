//! `/api/v1/alerts`: webhook channels told when runs fail, syncs pause and recover.

use super::PageParams;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, Query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use wharf_service::{AlertView, NewAlert, NewAlertView, Page, PageRequest};

/// A webhook channel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertBody {
    pub name: String,
    /// Where events are POSTed (http or https; private addresses only when the operator
    /// allows them). Never shown back whole: it may hold a token.
    pub url: String,
    /// Events: any of `failed`, `paused`, `recovered`.
    pub on: Vec<String>,
    /// Only this sync's events (default: every sync of the workspace).
    #[serde(default)]
    pub sync: Option<String>,
    /// The HMAC-SHA256 signing secret, at least 16 characters (default: wharf generates one
    /// and returns it once). Write-only.
    #[serde(default)]
    pub secret: Option<String>,
}

#[utoipa::path(get, path = "/alerts", tag = "alerts", params(PageParams),
    responses((status = 200, description = "A page of alert channels, by name", body = Page<AlertView>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<AlertView>>> {
    let all = state.service.alerts(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |a| &a.name)?))
}

#[utoipa::path(post, path = "/alerts", tag = "alerts", request_body = AlertBody,
    responses((status = 201, description = "Added; a generated secret is in this answer only", body = NewAlertView)))]
pub async fn add(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<AlertBody>,
) -> ApiResult<(StatusCode, Json<NewAlertView>)> {
    let added = state
        .service
        .add_alert(
            &caller,
            NewAlert {
                name: body.name,
                url: body.url,
                on: body.on.join(","),
                sync: body.sync,
                secret: body.secret,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(get, path = "/alerts/{name}", tag = "alerts",
    params(("name" = String, Path, description = "The channel's name", example = "ops")),
    responses((status = 200, description = "The channel and its latest deliveries", body = AlertView)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<AlertView>> {
    Ok(Json(state.service.alert(&caller, &name).await?))
}

#[utoipa::path(delete, path = "/alerts/{name}", tag = "alerts",
    params(("name" = String, Path, description = "The channel's name", example = "ops")),
    responses((status = 204, description = "Removed, with its deliveries")))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.remove_alert(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
