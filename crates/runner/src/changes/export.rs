//! A run of an `insert`, `diff` or `delta` sync: the query's result compared with the sync's
//! snapshot, then the change set exported as the sync's files.

use super::ChangeError;
use super::diff::{ADDED, CHANGED, Comparison, Previous, REMOVED};
use super::snapshot::{self, LocalSnapshots, SnapshotMeta, SnapshotStore};
use crate::attempt::Attempt;
use crate::pipeline::{self, Batch, Job, Projection, Source};
use crate::{Failed, FileOutcome, RunFailure, RunnerSettings, SyncContext, failure};
use arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use wharf_domain::{CHANGE_COLUMN, ChangeCounts, DiffLayout, OnEmpty, SyncMode};
use wharf_engine::QueryStream;
use wharf_store::Store;

fn change_failure(e: ChangeError) -> RunFailure {
    failure(e.code(), e)
}

/// The exported name of the model's primary key: a sync that compares rows must export it.
fn exported_key(ctx: &SyncContext) -> Result<String, RunFailure> {
    let key = &ctx.model.primary_key;
    let columns = &ctx.sync.settings.columns;
    if columns.is_empty() {
        return Ok(key.clone());
    }
    columns
        .iter()
        .find(|m| &m.source == key)
        .map(|m| m.target.clone())
        .ok_or_else(|| {
            failure(
                "sync.columns",
                format!(
                    "a {} sync sends rows by their primary key, but its columns leave out the model's key {key:?}: add it to the sync's columns",
                    ctx.sync.settings.mode
                ),
            )
        })
}

/// What a run of a sync that sends changes exported.
pub(crate) struct Compared {
    pub files: Vec<FileOutcome>,
    /// The schema the files were written with.
    pub schema: SchemaRef,
    pub counts: ChangeCounts,
    /// The folder holding the change set and the new snapshot: the attempt that compared.
    pub folder: String,
}

/// Compares the result with the snapshot, then exports the change set. A retry exports the
/// change set an earlier attempt of its run compared, when that is whole, without reading
/// the source again.
pub(crate) async fn export_changes(
    store: &Store,
    ctx: &SyncContext,
    attempt: &Attempt,
    settings: &RunnerSettings,
    job: Job,
    stream: QueryStream,
) -> Result<Compared, Failed> {
    let run_id = attempt.run_id();
    let fail = |f: RunFailure| (Vec::new(), f);
    let s = &ctx.sync.settings;
    let projection = Projection::new(s, &stream.schema()).map_err(fail)?;
    let exported = projection.schema.clone();
    let key_name = exported_key(ctx).map_err(fail)?;
    let key = exported.index_of(&key_name).map_err(|_| {
        fail(failure(
            "sync.columns",
            format!("the result has no column {key_name:?}, the model's primary key"),
        ))
    })?;
    let column_layout = s.mode == SyncMode::Diff && s.diff_layout == DiffLayout::Column;
    if column_layout && exported.index_of(CHANGE_COLUMN).is_ok() {
        return Err(fail(failure(
            "sync.columns",
            format!(
                "a diff with diff_layout column adds a {CHANGE_COLUMN:?} column, and the result already has one: rename it in the sync's columns"
            ),
        )));
    }
    let snapshots = Arc::new(LocalSnapshots::new(&settings.snapshots_dir));
    let sync_id = ctx.sync.id.clone();
    let current = ctx.sync.snapshot_run.clone();
    // What failed runs left: every folder but the current snapshot's and this run's.
    let leftovers = snapshots
        .runs(&sync_id)
        .map_err(|e| fail(change_failure(e.into())))?;
    let keep = |r: &String| Some(r) == current.as_ref() || attempt.earlier.contains(r);
    for run in leftovers.iter().filter(|r| !keep(r)) {
        snapshots
            .remove(&sync_id, run)
            .map_err(|e| fail(change_failure(e.into())))?;
    }
    // An earlier attempt's whole change set, newest first.
    let mut kept = None;
    for set in &attempt.change_sets {
        if let Some(counts) = super::diff::read_counts(snapshots.as_ref(), &sync_id, set)
            .map_err(|e| fail(change_failure(e)))?
        {
            kept = Some((set.clone(), counts));
            break;
        }
    }
    if kept.is_none() && !attempt.carried.is_empty() {
        return Err(fail(failure(
            "snapshot.missing",
            format!(
                "this retry continues run {}, whose files were made from a change set that is no longer in the sync's snapshot folder ({}); it cannot send the rest of them: reset the sync (`wharf sync reset {}`) so that its next run sends every row",
                attempt.keys_run,
                settings.snapshots_dir.join(&sync_id).display(),
                ctx.sync.name
            ),
        )));
    }
    let (folder, counts) = match kept {
        Some((folder, counts)) => {
            drop(stream);
            tracing::info!(run = %run_id, change_set = %folder, "the retry sends the change set its run compared");
            (folder, counts)
        }
        None => {
            let counts = compare(
                ctx, attempt, settings, &snapshots, &job, stream, projection, key,
            )
            .await
            .map_err(fail)?;
            (run_id.to_string(), counts)
        }
    };
    store
        .set_change_set(&attempt.lease, &folder)
        .await
        .map_err(|e| match e {
            e @ wharf_store::StoreError::Fenced { .. } => fail(failure("lease_lost", e)),
            e => fail(failure("store.error", e)),
        })?;
    export_change_set(store, ctx, &snapshots, &folder, job, exported, key, counts)
        .await
        .map(|(files, schema)| Compared {
            files,
            schema,
            counts,
            folder,
        })
}

/// Compares the query's result with the sync's current snapshot, writing the change set and
/// the new snapshot in this attempt's folder.
#[allow(clippy::too_many_arguments)]
async fn compare(
    ctx: &SyncContext,
    attempt: &Attempt,
    settings: &RunnerSettings,
    snapshots: &Arc<LocalSnapshots>,
    job: &Job,
    stream: QueryStream,
    projection: Projection,
    key: usize,
) -> Result<ChangeCounts, RunFailure> {
    let run_id = attempt.run_id();
    let sync_id = ctx.sync.id.clone();
    let current = ctx.sync.snapshot_run.clone();
    let exported = projection.schema.clone();
    let previous = match &current {
        Some(run) => SnapshotMeta::read(snapshots.as_ref(), &sync_id, run)
            .map_err(change_failure)?
            .map(|meta| Previous {
                run: run.clone(),
                meta,
            }),
        None => None,
    };

    // Pass 1 and 2, on a blocking thread fed by the query.
    let (tx, mut rx) = mpsc::channel::<Batch>(4);
    let reader = tokio::spawn(pipeline::read_query(
        Source::from(stream).stream,
        tx,
        job.progress.stop.subscribe(),
    ));
    let spill = settings.spill_dir.join(format!("changes-{run_id}"));
    let compared = {
        let snapshots = snapshots.clone();
        let (sync_id, run) = (sync_id.clone(), run_id.to_string());
        let exported = exported.clone();
        let progress = job.progress.clone();
        tokio::task::spawn_blocking(move || -> Result<ChangeCounts, RunFailure> {
            let mut comparison = Comparison::new(
                snapshots.as_ref(),
                &sync_id,
                &run,
                previous,
                exported,
                vec![key],
                &spill,
            )
            .map_err(change_failure)?;
            loop {
                match rx.blocking_recv() {
                    Some(Ok(Some(batch))) => {
                        comparison
                            .push(&projection.apply(&batch)?)
                            .map_err(change_failure)?;
                        progress
                            .compared
                            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    }
                    Some(Ok(None)) => break,
                    Some(Err(f)) => return Err(f),
                    None => {
                        return Err(failure(
                            "internal",
                            "the query reader stopped before the end of the result",
                        ));
                    }
                }
            }
            comparison.finish().map_err(change_failure)
        })
        .await
    };
    reader.abort();
    let counts = match compared {
        Ok(result) => result?,
        Err(e) => {
            return Err(failure("internal", format!("the comparison stopped: {e}")));
        }
    };
    tracing::info!(
        run = %run_id,
        added = counts.added,
        changed = counts.changed,
        removed = counts.removed,
        unchanged = counts.unchanged,
        "compared with the last snapshot"
    );
    Ok(counts)
}

/// Exports the change set in `folder` as the sync's files: what its mode sends, in its layout.
#[allow(clippy::too_many_arguments)]
async fn export_change_set(
    store: &Store,
    ctx: &SyncContext,
    snapshots: &Arc<LocalSnapshots>,
    folder: &str,
    job: Job,
    exported: SchemaRef,
    key: usize,
    counts: ChangeCounts,
) -> Result<(Vec<FileOutcome>, SchemaRef), Failed> {
    let s = &ctx.sync.settings;
    let sync_id = ctx.sync.id.clone();
    let column_layout = s.mode == SyncMode::Diff && s.diff_layout == DiffLayout::Column;
    // What each mode sends.
    let kinds: &[(&'static str, &'static str)] = match s.mode {
        SyncMode::Insert => &[("added", ADDED)],
        SyncMode::Delta => &[("added", ADDED), ("changed", CHANGED)],
        _ => &[("added", ADDED), ("changed", CHANGED), ("removed", REMOVED)],
    };
    let count_of = |kind: &str| match kind {
        "added" => counts.added,
        "changed" => counts.changed,
        _ => counts.removed,
    };
    let sent: u64 = kinds.iter().map(|(kind, _)| count_of(kind)).sum();
    // Removed rows carry their key and nulls: every other column may be null.
    let widened: SchemaRef = if s.mode == SyncMode::Diff {
        Arc::new(Schema::new(
            exported
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    f.as_ref()
                        .clone()
                        .with_nullable(f.is_nullable() || i != key)
                })
                .collect::<Vec<_>>(),
        ))
    } else {
        exported.clone()
    };
    let mut files = Vec::new();
    let mut written_schema = widened.clone();
    let mut plain = job.settings.clone();
    plain.columns = Vec::new();
    if s.mode == SyncMode::Diff && s.diff_layout == DiffLayout::Files {
        for (i, (kind, blob)) in kinds.iter().enumerate() {
            let rows = count_of(kind);
            // An empty change set follows the sync's on-empty policy once; otherwise a kind
            // with no rows writes no file.
            let mut settings = plain.clone();
            if rows == 0 && (sent > 0 || i > 0) {
                settings.on_empty = OnEmpty::Skip;
            }
            let source = blob_source(
                snapshots.clone(),
                &sync_id,
                folder,
                vec![(*blob, None)],
                widened.clone(),
                key,
            );
            let part = Job {
                settings,
                change: Some(kind),
                recorded_before: u32::try_from(files.len()).unwrap_or(u32::MAX),
                ..job.clone()
            };
            match pipeline::export(part, source, store.clone()).await {
                Ok((done, schema)) => {
                    files.extend(done);
                    written_schema = schema;
                }
                Err((done, f)) => {
                    files.extend(done);
                    return Err((files, f));
                }
            }
        }
    } else {
        let parts: Vec<(&'static str, Option<&'static str>)> = kinds
            .iter()
            .map(|(kind, blob)| (*blob, column_layout.then_some(*kind)))
            .collect();
        let schema = if column_layout {
            let mut fields: Vec<Field> = widened
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new(CHANGE_COLUMN, DataType::Utf8, false));
            Arc::new(Schema::new(fields))
        } else {
            widened.clone()
        };
        let source = blob_source(snapshots.clone(), &sync_id, folder, parts, schema, key);
        let whole = Job {
            settings: plain,
            ..job
        };
        let (done, schema) = pipeline::export(whole, source, store.clone()).await?;
        files = done;
        written_schema = schema;
    }
    Ok((files, written_schema))
}

/// The batches of change-set blobs in order, each made to `schema`: rows of a removed blob
/// (keys only) get nulls in the other columns, and with `change` a `_change` column.
fn blob_source(
    snapshots: Arc<LocalSnapshots>,
    sync: &str,
    run: &str,
    parts: Vec<(&'static str, Option<&'static str>)>,
    schema: SchemaRef,
    key: usize,
) -> Source {
    let (tx, rx) = mpsc::channel::<Result<RecordBatch, RunFailure>>(4);
    let (sync, run) = (sync.to_string(), run.to_string());
    let out = schema.clone();
    tokio::task::spawn_blocking(move || {
        for (blob, change) in parts {
            let reader = match snapshot::read_blob(snapshots.as_ref(), &sync, &run, blob) {
                Ok(Some(reader)) => reader,
                Ok(None) => {
                    let _ = tx.blocking_send(Err(failure(
                        "snapshot.io",
                        format!(
                            "the change set's {blob} is missing from the sync's snapshot folder"
                        ),
                    )));
                    return;
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(change_failure(e)));
                    return;
                }
            };
            for batch in reader {
                let made = batch
                    .map_err(change_failure)
                    .and_then(|b| conform(&b, &out, key, change));
                let failed = made.is_err();
                if tx.blocking_send(made).is_err() || failed {
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    Source { schema, stream }
}

/// A change-set batch as the files have it: the columns of `schema` (a keys-only batch gets
/// nulls beside its key), and the `_change` column when the layout has one.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    key: usize,
    change: Option<&str>,
) -> Result<RecordBatch, RunFailure> {
    let n = batch.num_rows();
    let data_fields = schema.fields().len() - usize::from(change.is_some());
    let mut columns: Vec<ArrayRef> = if batch.num_columns() == data_fields {
        batch.columns().to_vec()
    } else {
        // Keys only: the removed rows.
        (0..data_fields)
            .map(|i| {
                if i == key {
                    batch.column(0).clone()
                } else {
                    new_null_array(schema.field(i).data_type(), n)
                }
            })
            .collect()
    };
    if let Some(change) = change {
        columns.push(Arc::new(StringArray::from(vec![change; n])));
    }
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| failure("internal", format!("cannot shape the change set: {e}")))
}
