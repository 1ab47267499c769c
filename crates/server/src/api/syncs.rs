//! `/api/v1/syncs` and `/api/v1/runs`: what is sent where, plans, triggered runs and their
//! history.

use super::PageParams;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, Query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wharf_service::{
    FileSpec, NewSync, Page, PageRequest, PlanReport, PolicyPatch, RunFileView, RunQuery, RunView,
    ScheduleSpec, SyncView, Trigger,
};

/// A sync: a model (or one of its segments) sent to a destination as files. The options are
/// the CLI's `sync add` flags, in snake_case.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// Unique in the workspace. On `PUT`, optional (it cannot change).
    #[serde(default)]
    pub name: Option<String>,
    /// The model to export (or give `segment`).
    #[serde(default)]
    pub model: Option<String>,
    /// A segment to export instead of a whole model.
    #[serde(default)]
    pub segment: Option<String>,
    pub destination: String,
    /// `parquet`, `csv`, `ndjson`, `json`, `xml` or `avro`.
    pub format: String,
    /// Columns in order, with optional renames: `id,email:contact_email` (default: all).
    #[serde(default)]
    pub columns: Option<String>,
    /// Text formats: `none`, `gzip`, `zstd`.
    #[serde(default)]
    pub compression: Option<String>,
    /// `snappy`, `zstd`, `gzip`, `lz4`, `none` (default `zstd`).
    #[serde(default)]
    pub parquet_compression: Option<String>,
    #[serde(default)]
    pub parquet_row_group_rows: Option<u64>,
    /// One character, or `tab` (default `,`).
    #[serde(default)]
    pub csv_delimiter: Option<String>,
    #[serde(default)]
    pub csv_quote: Option<String>,
    #[serde(default)]
    pub csv_header: Option<bool>,
    #[serde(default)]
    pub csv_null: Option<String>,
    #[serde(default)]
    pub csv_bom: bool,
    #[serde(default)]
    pub xml_root: Option<String>,
    #[serde(default)]
    pub xml_row: Option<String>,
    /// Object key under the destination's prefix, with `{sync}`, `{run}`, `{part}`...
    #[serde(default)]
    pub key_template: Option<String>,
    #[serde(default)]
    pub max_rows_per_file: Option<u64>,
    #[serde(default)]
    pub max_bytes_per_file: Option<u64>,
    /// Write `_manifest.json` after a run's files.
    #[serde(default)]
    pub manifest: bool,
    /// `empty-file` (default), `skip` or `manifest-only`.
    #[serde(default)]
    pub on_empty: Option<String>,
    /// Replace existing objects at the same keys.
    #[serde(default)]
    pub overwrite: bool,
    /// When it runs by itself: `{"kind": "manual"}` (the default for a new sync),
    /// `{"kind": "interval", "every": "6h"}`, `{"kind": "cron", "cron": "0 2 * * *",
    /// "timezone": "Europe/Paris"}` or `{"kind": "custom", "times": ["08:00"], "weekdays":
    /// ["mon"]}`. Left out on `PUT`: unchanged.
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
    /// Overlap, retries and pausing; fields left out keep their value.
    #[serde(default)]
    pub policy: Option<PolicyPatch>,
    /// `all` (default for a new sync), `insert`, `diff` or `delta`. Left out on `PUT`:
    /// unchanged.
    #[serde(default)]
    pub mode: Option<String>,
    /// For `diff`: `column` (default) or `files` (`{change}` in the key template). Left out
    /// on `PUT`: unchanged.
    #[serde(default)]
    pub diff_layout: Option<String>,
}

impl SyncBody {
    fn into_new(self, name: String) -> NewSync {
        NewSync {
            name,
            model: self.model,
            segment: self.segment,
            destination: self.destination,
            file: FileSpec {
                format: self.format,
                compression: self.compression,
                parquet_compression: self.parquet_compression,
                parquet_row_group_rows: self.parquet_row_group_rows,
                csv_delimiter: self.csv_delimiter,
                csv_quote: self.csv_quote,
                csv_header: self.csv_header,
                csv_null: self.csv_null,
                csv_bom: self.csv_bom,
                xml_root: self.xml_root,
                xml_row: self.xml_row,
            },
            columns: self.columns,
            key_template: self.key_template,
            max_rows_per_file: self.max_rows_per_file,
            max_bytes_per_file: self.max_bytes_per_file,
            manifest: self.manifest,
            on_empty: self.on_empty.unwrap_or_else(|| "empty-file".to_string()),
            overwrite: self.overwrite,
            schedule: self.schedule,
            policy: self.policy.unwrap_or_default(),
            mode: self.mode,
            diff_layout: self.diff_layout,
        }
    }
}

#[utoipa::path(get, path = "/syncs", tag = "syncs", params(PageParams),
    responses((status = 200, description = "A page of syncs, by name", body = Page<SyncView>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<SyncView>>> {
    let all = state.service.syncs(&caller).await?;
    Ok(Json(PageRequest::from(page).of(all, |s| &s.name)?))
}

#[utoipa::path(post, path = "/syncs", tag = "syncs", request_body = SyncBody,
    responses((status = 201, description = "Added, once checked against its model, segment and destination", body = SyncView)))]
pub async fn add(
    State(state): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody<SyncBody>,
) -> ApiResult<(StatusCode, Json<SyncView>)> {
    let name = body.name.clone().unwrap_or_default();
    let sync = state.service.add_sync(&caller, body.into_new(name)).await?;
    Ok((StatusCode::CREATED, Json(sync)))
}

#[utoipa::path(get, path = "/syncs/{name}", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    responses((status = 200, description = "The sync", body = SyncView)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SyncView>> {
    Ok(Json(state.service.sync(&caller, &name).await?))
}

#[utoipa::path(put, path = "/syncs/{name}", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    request_body = SyncBody,
    responses((status = 200, description = "Replaced, after the checks adding one makes; its runs stay", body = SyncView)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SyncBody>,
) -> ApiResult<Json<SyncView>> {
    let given = body.name.clone().unwrap_or_else(|| name.clone());
    let sync = state
        .service
        .update_sync(&caller, &name, body.into_new(given))
        .await?;
    Ok(Json(sync))
}

#[utoipa::path(delete, path = "/syncs/{name}", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    responses((status = 204, description = "Removed, with its run history (refused while it runs)")))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.service.remove_sync(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/syncs/{name}/plan", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    responses((status = 200, description = "What a run would write now (keys, rows), without writing", body = Object)))]
pub async fn plan(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<PlanReport>> {
    Ok(Json(state.service.plan(&caller, &name).await?))
}

#[utoipa::path(post, path = "/syncs/{name}/resume", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    responses((status = 200, description = "Resumed: the scheduler runs it again, its failures in a row forgotten", body = SyncView)))]
pub async fn resume(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SyncView>> {
    Ok(Json(state.service.resume_sync(&caller, &name).await?))
}

#[utoipa::path(post, path = "/syncs/{name}/pause", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    responses((status = 200, description = "Paused: the scheduler skips it until it is resumed (runs asked for by hand still run)", body = SyncView)))]
pub async fn pause(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SyncView>> {
    Ok(Json(state.service.pause_sync(&caller, &name).await?))
}

#[utoipa::path(post, path = "/syncs/{name}/reset", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    responses((status = 200, description = "The snapshot is forgotten: the next run sends every row", body = SyncView),
        (status = 409, description = "A run of the sync is in progress")))]
pub async fn reset(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SyncView>> {
    Ok(Json(state.service.reset_sync(&caller, &name).await?))
}

/// A run just asked for.
#[derive(Serialize, ToSchema)]
pub struct Triggered {
    pub run_id: String,
}

#[utoipa::path(post, path = "/syncs/{name}/runs", tag = "syncs",
    params(("name" = String, Path, description = "The sync's name", example = "p")),
    responses((status = 202, description = "The run is queued (it starts when a slot is free, or after the sync's run in progress when its overlap policy is `queue`); follow it at the `Location` given", body = Triggered,
        headers(("Location" = String, description = "/api/v1/runs/{run_id}")))))]
pub async fn trigger(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Triggered>)> {
    let run_id = state
        .service
        .trigger_run(&caller, &name, Trigger::Api)
        .await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/runs/{run_id}")) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::ACCEPTED, headers, Json(Triggered { run_id })))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunParams {
    /// Only this sync's runs.
    pub sync: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed`, `interrupted` or `cancelled`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// Default 100, at most 1000.
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/runs", tag = "runs", params(RunParams),
    responses((status = 200, description = "A page of runs, newest first", body = Page<RunView>)))]
pub async fn list_runs(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<RunParams>,
) -> ApiResult<Json<Page<RunView>>> {
    let query = RunQuery {
        sync: params.sync,
        status: params.status,
        page: PageRequest {
            cursor: params.cursor,
            limit: params.limit,
        },
    };
    Ok(Json(state.service.runs_page(&caller, &query).await?))
}

#[utoipa::path(get, path = "/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The run, as `wharf runs show ID --json` prints it", body = RunView)))]
pub async fn show_run(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(run_id): Path<String>,
) -> ApiResult<Json<RunView>> {
    Ok(Json(state.service.run(&caller, &run_id).await?))
}

#[utoipa::path(get, path = "/runs/{run_id}/files", tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The data files the run completed, in order", body = Vec<RunFileView>)))]
pub async fn run_files(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(run_id): Path<String>,
) -> ApiResult<Json<Vec<RunFileView>>> {
    Ok(Json(state.service.run(&caller, &run_id).await?.files))
}
