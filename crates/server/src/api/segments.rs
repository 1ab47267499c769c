//! `/api/v1/segments`: no-code filters over a model, their previews and their SQL.

use super::PageParams;
use super::catalog::preview_limit;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, Query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use wharf_service::{Page, PageRequest, SegmentPreview, SegmentSql, SegmentView};

/// A segment to add: a filter tree over a model's columns.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    pub name: String,
    pub model: String,
    /// The filter tree, e.g. `{"column": "country", "op": "eq", "value": "FR"}`, or
    /// `{"and": [...]}`, `{"or": [...]}`, `{"not": ...}`.
    #[schema(value_type = Object)]
    pub filter: serde_json::Value,
}

#[utoipa::path(get, path = "/segments", tag = "segments", params(PageParams),
    responses((status = 200, description = "A page of segments, by name", body = Page<SegmentView>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<SegmentView>>> {
    let all = state.service.segments(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |s| &s.name)?))
}

#[utoipa::path(post, path = "/segments", tag = "segments", request_body = SegmentBody,
    responses((status = 201, description = "Added, once its filter compiled against the model", body = SegmentView)))]
pub async fn add(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<SegmentBody>,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    let filter = body.filter.to_string();
    let segment = state
        .service
        .add_segment(&caller, &body.name, &body.model, &filter)
        .await?;
    Ok((StatusCode::CREATED, Json(segment)))
}

#[utoipa::path(get, path = "/segments/{name}", tag = "segments",
    params(("name" = String, Path, description = "The segment's name", example = "later")),
    responses((status = 200, description = "The segment", body = SegmentView)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SegmentView>> {
    Ok(Json(state.service.segment(&caller, &name).await?))
}

#[utoipa::path(delete, path = "/segments/{name}", tag = "segments",
    params(("name" = String, Path, description = "The segment's name", example = "later")),
    responses((status = 204, description = "Removed (refused while a sync exports it)")))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.remove_segment(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SegmentPreviewParams {
    /// Rows to show, 1 to 1000 (default 10).
    pub limit: Option<u32>,
    /// `within_last` conditions count back from this time (RFC 3339 or a date); default now.
    pub as_of: Option<String>,
}

#[utoipa::path(get, path = "/segments/{name}/preview", tag = "segments",
    params(("name" = String, Path, description = "The segment's name", example = "later"), SegmentPreviewParams),
    responses((status = 200, description = "How many rows the segment selects, and the first of them", body = SegmentPreview)))]
pub async fn preview(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    Query(params): Query<SegmentPreviewParams>,
) -> ApiResult<Json<SegmentPreview>> {
    let limit = preview_limit(params.limit)?;
    Ok(Json(
        state
            .service
            .preview_segment(&caller, &name, limit, params.as_of.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOfParams {
    /// `within_last` conditions count back from this time (RFC 3339 or a date); default now.
    pub as_of: Option<String>,
}

#[utoipa::path(get, path = "/segments/{name}/sql", tag = "segments",
    params(("name" = String, Path, description = "The segment's name", example = "later"), AsOfParams),
    responses((status = 200, description = "The SQL the segment compiles to, and its bound parameters", body = Object)))]
pub async fn sql(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    Query(params): Query<AsOfParams>,
) -> ApiResult<Json<SegmentSql>> {
    Ok(Json(
        state
            .service
            .segment_sql(&caller, &name, params.as_of.as_deref())
            .await?,
    ))
}
