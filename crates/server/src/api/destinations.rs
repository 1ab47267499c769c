//! `/api/v1/destinations`: S3 destinations, their policies, the connection test, and the
//! External ID's rotation. Secrets are write-only: a body may carry an access key's secret,
//! no response does.

use super::PageParams;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, JsonBody, Query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use wharf_service::{
    ConnectionReport, DestinationView, Page, PageRequest, PolicyView, S3DestinationSpec,
    ServiceError,
};

/// The service names auth fields as the CLI's flags do; the API names their JSON path.
fn body_path(e: ServiceError) -> ApiError {
    let mut e = ApiError::from(e);
    e.field = e.field.map(|f| match f.as_str() {
        "access_key_id" | "secret_access_key" | "role_arn" => format!("auth.{f}"),
        "session_duration" => "auth.session_duration_seconds".to_string(),
        _ => f,
    });
    e
}

#[utoipa::path(get, path = "/destinations", tag = "destinations", params(PageParams),
    responses((status = 200, description = "A page of destinations, by name", body = Page<DestinationView>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<DestinationView>>> {
    let all = state.service.destinations(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |d| &d.name)?))
}

#[utoipa::path(post, path = "/destinations", tag = "destinations", request_body = S3DestinationSpec,
    responses((status = 201, description = "Added; role destinations get a new External ID", body = DestinationView)))]
pub async fn add(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(spec): JsonBody<S3DestinationSpec>,
) -> ApiResult<(StatusCode, Json<DestinationView>)> {
    let view = state
        .service
        .add_destination(&caller, spec)
        .await
        .map_err(body_path)?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/destinations/{name}", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "lake")),
    responses((status = 200, description = "The destination", body = DestinationView)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<DestinationView>> {
    Ok(Json(state.service.destination(&caller, &name).await?))
}

#[utoipa::path(put, path = "/destinations/{name}", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "lake")),
    request_body(content = S3DestinationSpec, description = "The destination's new settings, its name included (it cannot change); without `auth`, the current auth and secret stay"),
    responses((status = 200, description = "Replaced; unverified until its next test passes", body = DestinationView)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<S3DestinationSpec>,
) -> ApiResult<Json<DestinationView>> {
    let view = state
        .service
        .update_destination(&caller, &name, spec)
        .await
        .map_err(body_path)?;
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/destinations/{name}", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "lake")),
    responses((status = 204, description = "Removed")))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.remove_destination(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PolicyParams {
    /// wharf's identity to name in the trust policy (default: the one the server runs as).
    pub principal_arn: Option<String>,
}

#[utoipa::path(get, path = "/destinations/{name}/policy", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "lake"), PolicyParams),
    responses((status = 200, description = "The trust policy (role destinations) and the permission policy", body = PolicyView)))]
pub async fn policy(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    Query(params): Query<PolicyParams>,
) -> ApiResult<Json<PolicyView>> {
    Ok(Json(
        state
            .service
            .destination_policy(&caller, &name, params.principal_arn)
            .await?,
    ))
}

#[utoipa::path(post, path = "/destinations/{name}/test", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "lake")),
    responses((status = 200, description = "The zero-residue connection test's report, step by step; `ok` says whether it passed", body = Object)))]
pub async fn test(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<ConnectionReport>> {
    Ok(Json(state.service.test_destination(&caller, &name).await?))
}

#[utoipa::path(post, path = "/destinations/{name}/rotate-external-id", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name", example = "lake")),
    responses((status = 200, description = "A new External ID; unverified until the role's trust policy names it and a test passes", body = DestinationView)))]
pub async fn rotate_external_id(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<DestinationView>> {
    Ok(Json(
        state.service.rotate_external_id(&caller, &name).await?,
    ))
}
