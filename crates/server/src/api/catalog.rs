//! `/api/v1/sources` and `/api/v1/models`: where data comes from, and the named queries over
//! it. A PostgreSQL URL is write-only: responses show it with the password masked.

use super::PageParams;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, Query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wharf_service::{
    LocalSourceAdded, ModelView, NewModelInput, Page, PageRequest, PostgresSourceAdded, SourceView,
};

/// A source to add.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceBody {
    /// A folder of Parquet, CSV and NDJSON files on the server, inside the folders the
    /// operator allows.
    Local { name: String, path: String },
    /// A PostgreSQL database.
    Postgres {
        name: String,
        /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`. Write-only: never returned.
        url: String,
        /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
        #[serde(default)]
        sslmode: Option<String>,
    },
}

/// A source just added: a local one with the tables found, or a PostgreSQL one with its
/// server's version.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SourceAdded {
    Local(LocalSourceAdded),
    Postgres(PostgresSourceAdded),
}

#[utoipa::path(get, path = "/sources", tag = "sources", params(PageParams),
    responses((status = 200, description = "A page of sources, by name", body = Page<SourceView>)))]
pub async fn list_sources(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<SourceView>>> {
    let all = state.service.sources(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |s| &s.name)?))
}

#[utoipa::path(post, path = "/sources", tag = "sources", request_body = SourceBody,
    responses((status = 201, description = "Added, once its tables were found or its server reached", body = SourceAdded)))]
pub async fn add_source(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<SourceBody>,
) -> ApiResult<(StatusCode, Json<SourceAdded>)> {
    let added = match body {
        SourceBody::Local { name, path } => SourceAdded::Local(
            state
                .service
                .add_local_source(&caller, &name, std::path::Path::new(&path))
                .await?,
        ),
        SourceBody::Postgres { name, url, sslmode } => SourceAdded::Postgres(
            state
                .service
                .add_postgres_source_url(&caller, &name, &url, sslmode.as_deref())
                .await?,
        ),
    };
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(get, path = "/sources/{name}", tag = "sources",
    params(("name" = String, Path, description = "The source's name", example = "files")),
    responses((status = 200, description = "The source", body = SourceView)))]
pub async fn show_source(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SourceView>> {
    Ok(Json(state.service.source(&caller, &name).await?))
}

#[utoipa::path(delete, path = "/sources/{name}", tag = "sources",
    params(("name" = String, Path, description = "The source's name", example = "files")),
    responses((status = 204, description = "Removed (refused while a model reads it)")))]
pub async fn remove_source(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.remove_source(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A model to add: SQL over a source, and the column that identifies a row.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelBody {
    pub name: String,
    pub source: String,
    /// One `SELECT` (or `WITH ... SELECT`) over the source's tables.
    pub sql: String,
    pub primary_key: String,
}

#[utoipa::path(get, path = "/models", tag = "models", params(PageParams),
    responses((status = 200, description = "A page of models, by name", body = Page<ModelView>)))]
pub async fn list_models(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<ModelView>>> {
    let all = state.service.models(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |m| &m.name)?))
}

#[utoipa::path(post, path = "/models", tag = "models", request_body = ModelBody,
    responses((status = 201, description = "Added, once its SQL planned on its source", body = ModelView)))]
pub async fn add_model(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<ModelBody>,
) -> ApiResult<(StatusCode, Json<ModelView>)> {
    let model = state
        .service
        .add_model(
            &caller,
            NewModelInput {
                name: &body.name,
                source: &body.source,
                sql: &body.sql,
                primary_key: &body.primary_key,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(model)))
}

#[utoipa::path(get, path = "/models/{name}", tag = "models",
    params(("name" = String, Path, description = "The model's name", example = "people")),
    responses((status = 200, description = "The model", body = ModelView)))]
pub async fn show_model(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<ModelView>> {
    Ok(Json(state.service.model(&caller, &name).await?))
}

#[utoipa::path(delete, path = "/models/{name}", tag = "models",
    params(("name" = String, Path, description = "The model's name", example = "people")),
    responses((status = 204, description = "Removed (refused while a segment or sync uses it)")))]
pub async fn remove_model(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.remove_model(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// Rows to show, 1 to 1000 (default 10).
    pub limit: Option<u32>,
}

/// The first rows of a preview, one JSON object per row (as the JSON export writes them).
pub(crate) fn preview_limit(limit: Option<u32>) -> Result<usize, crate::error::ApiError> {
    match limit.unwrap_or(10) {
        n @ 1..=1000 => Ok(n as usize),
        n => Err(crate::error::ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("limit {n} is out of range: preview 1 to 1000 rows"),
        )
        .with_field("limit")),
    }
}

#[utoipa::path(get, path = "/models/{name}/preview", tag = "models",
    params(("name" = String, Path, description = "The model's name", example = "people"), PreviewParams),
    responses((status = 200, description = "The model's first rows, one object per row", body = Vec<Object>)))]
pub async fn preview_model(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    Query(params): Query<PreviewParams>,
) -> ApiResult<Json<Vec<serde_json::Map<String, serde_json::Value>>>> {
    let limit = preview_limit(params.limit)?;
    let preview = state.service.preview_model(&caller, &name, limit).await?;
    Ok(Json(preview.rows))
}
