//! `wharf plan`: what a run would write, without writing.

use crate::{RunnerError, RunnerSettings, SyncContext};
use time::OffsetDateTime;
use wharf_domain::{KeyValues, OnEmpty};
use wharf_store::Store;

/// The keys a run would write now, and how many rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanReport {
    pub sync: String,
    pub rows: u64,
    /// Keys of the data files, in order. With `--max-bytes-per-file` only the first is known
    /// before encoding; `more_files_possible` says so.
    pub keys: Vec<String>,
    pub more_files_possible: bool,
    pub manifest: Option<String>,
    pub format: String,
    pub bucket: String,
}

/// Placeholder shown where a run's id goes: ids are assigned when a run starts.
const RUN_PLACEHOLDER: &str = "RUN-ID";

/// Runs the model's query to count its rows, and renders the keys a run started now would use.
pub async fn plan(
    store: &Store,
    workspace: &str,
    sync: &str,
    settings: &RunnerSettings,
) -> Result<PlanReport, RunnerError> {
    let ctx = SyncContext::load(store, workspace, sync).await?;
    let warehouse = ctx.warehouse(settings).await?;
    let now = OffsetDateTime::now_utc();
    let (sql, params) = ctx.query(store, &warehouse, now).await?;
    let rows = warehouse.count(&sql, &params).await?;
    let s = &ctx.sync.settings;
    let files: u64 = match (rows, s.max_rows_per_file) {
        (0, _) if s.on_empty == OnEmpty::EmptyFile => 1,
        (0, _) => 0,
        (n, Some(max)) => n.div_ceil(max),
        (_, None) => 1,
    };
    let ext = s.file.extension();
    let prefix = &ctx.destination.destination.prefix;
    let render = |part: u64| {
        ctx.template
            .render(
                prefix,
                &KeyValues {
                    model: &ctx.model.name,
                    segment: ctx.segment_name(),
                    sync: &ctx.sync.name,
                    run: RUN_PLACEHOLDER,
                    started_at: now,
                    part: u32::try_from(part).unwrap_or(u32::MAX),
                    ext: &ext,
                    change: None,
                },
            )
            .map_err(|e| RunnerError::Invalid(e.to_string()))
    };
    let keys = (0..files.min(1000))
        .map(render)
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = if s.manifest || (s.on_empty == OnEmpty::ManifestOnly && rows == 0) {
        // Next to the first file, as a run writes it.
        let first = render(0)?;
        Some(match first.rsplit_once('/') {
            Some((folder, _)) => format!("{folder}/_manifest.json"),
            None => "_manifest.json".into(),
        })
    } else {
        None
    };
    Ok(PlanReport {
        sync: ctx.sync.name.clone(),
        rows,
        more_files_possible: s.max_bytes_per_file.is_some() && rows > 0,
        keys,
        manifest,
        format: ext,
        bucket: ctx.destination.destination.bucket.as_str().to_string(),
    })
}
