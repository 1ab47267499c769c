//! The manifest: `_manifest.json` beside a run's files, written after the last of them, so that
//! its presence means the export is whole.

use crate::attempt::Attempt;
use crate::{FileOutcome, RunFailure, SyncContext, failure};
use arrow::datatypes::SchemaRef;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use wharf_delivery::DeliveryError;
use wharf_delivery::upload::{self, ObjectSpec, UploadTarget};
use wharf_domain::{KeyValues, OnEmpty};
use wharf_store::NewRunFile;

/// Writes `_manifest.json` next to the run's files, after all of them, when the sync asks for
/// one (or for `manifest-only` on an empty result). Returns its key.
pub(crate) async fn write_manifest(
    ctx: &SyncContext,
    attempt: &Attempt,
    target: &Arc<UploadTarget>,
    files: &[FileOutcome],
    schema: &SchemaRef,
    changes: Option<&wharf_domain::ChangeCounts>,
) -> Result<Option<NewRunFile>, RunFailure> {
    let s = &ctx.sync.settings;
    let (run_id, started_at) = (attempt.keys_run.as_str(), attempt.started_at);
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let wanted = s.manifest || (s.on_empty == OnEmpty::ManifestOnly && rows == 0);
    if !wanted {
        return Ok(None);
    }
    let first_key = match files.first() {
        Some(f) => f.key.clone(),
        None => {
            let ext = s.file.extension();
            ctx.template
                .render(
                    &ctx.destination.destination.prefix,
                    &KeyValues {
                        model: &ctx.model.name,
                        segment: ctx.segment_name(),
                        sync: &ctx.sync.name,
                        run: run_id,
                        started_at,
                        part: 0,
                        ext: &ext,
                        change: Some("added"),
                    },
                )
                .map_err(|e| failure("sync.key_template", e))?
        }
    };
    let key = match first_key.rsplit_once('/') {
        Some((folder, _)) => format!("{folder}/_manifest.json"),
        None => "_manifest.json".to_string(),
    };
    let columns: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": wharf_formats::normalize::lake_type(f.data_type()).to_string(),
                "nullable": f.is_nullable(),
            })
        })
        .collect();
    let body = serde_json::json!({
        "run_id": run_id,
        "sync": ctx.sync.name,
        "model": ctx.model.name,
        "mode": s.mode.as_str(),
        "changes": changes,
        "format": s.file.format.as_str(),
        "compression": s.file.compression.as_str(),
        "started_at": started_at.format(&Rfc3339).unwrap_or_default(),
        "rows": rows,
        // As consumers need them: which attempt of the run wrote a file is wharf's business.
        "files": files
            .iter()
            .map(|f| serde_json::json!({
                "key": f.key,
                "rows": f.rows,
                "bytes": f.bytes,
                "checksum": f.checksum,
            }))
            .collect::<Vec<_>>(),
        "schema": columns,
    });
    let mut text = serde_json::to_vec_pretty(&body).map_err(|e| failure("internal", e))?;
    text.push(b'\n');
    let object = ObjectSpec {
        key: key.clone(),
        content_type: "application/json".into(),
        content_encoding: None,
        overwrite: s.overwrite,
    };
    let (bytes, checksum, request_id, carried_from) =
        match upload::put_bytes(target, &object, text.into()).await {
            Ok(uploaded) => (uploaded.bytes, uploaded.checksum, uploaded.request_id, None),
            // An earlier attempt wrote the manifest (after every file) and stopped before its
            // end was recorded: the export is whole, and its manifest stays.
            Err(e @ DeliveryError::KeyExists { .. }) if attempt.continues() => {
                match target.stat(&key).await {
                    Ok(Some((bytes, checksum))) => {
                        (bytes, checksum, None, Some(attempt.keys_run.clone()))
                    }
                    Ok(None) => return Err(failure(e.code(), e)),
                    Err(e) => return Err(failure(e.code(), e)),
                }
            }
            Err(e) => return Err(failure(e.code(), e)),
        };
    tracing::debug!(%key, "manifest written");
    Ok(Some(NewRunFile {
        part: -1,
        key,
        rows,
        bytes,
        checksum,
        request_id,
        carried_from,
    }))
}
