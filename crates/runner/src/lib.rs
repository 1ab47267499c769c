//! Runs one sync: the model's query (engine) -> encoder (formats) -> streaming upload (delivery),
//! file splitting and key rendering, the manifest, the janitor, and the run record (store).
//!
//! This is the only crate that combines engine, formats, delivery and store. It must not know
//! about terminals or HTTP: progress goes out through [`RunProgress`] counters that the CLI and
//! the server read as they like.

mod attempt;
pub mod changes;
mod journal;
pub mod leased;
mod manifest;
pub mod models;
mod pipeline;
mod plan;
mod progress;
mod run_lock;
pub mod sample;
pub mod segments;

pub use leased::{Claim, Claimed, Executed, LeaseSettings, claim_now, owner_is_gone};
pub use plan::{PlanReport, plan};
pub use progress::{RunProgress, Stop};

use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;
use wharf_delivery::upload::{StaleRef, UploadSettings, UploadTarget};
use wharf_delivery::{ClientSettings, DeliveryError, Identity};
use wharf_domain::{ChangeCounts, KeyTemplate, S3Auth, SyncSettings};
pub use wharf_engine::{
    EngineError, MAX_EXPANDED_NODES, MAX_EXPRESSION_DEPTH, Preview, TableInfo, Warehouse, columns,
    threads,
};
use wharf_engine::{EngineSettings, Text};
use wharf_store::{DestinationRecord, ModelRecord, SegmentRecord, Store, StoreError, SyncRecord};

/// Attempts per S3 request during a run (the SDK's backoff with full jitter between them).
pub const RUN_MAX_ATTEMPTS: u32 = 5;

/// What a run needs from its environment.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub client: ClientSettings,
    pub upload: UploadSettings,
    /// Where DataFusion spills (under `$WHARF_HOME`).
    pub spill_dir: PathBuf,
    /// DataFusion's memory limit, in bytes.
    pub query_memory: usize,
    /// Where runs hold their liveness locks (under `$WHARF_HOME`).
    pub locks_dir: PathBuf,
    /// Where syncs that send changes keep their snapshots (under `$WHARF_HOME`).
    pub snapshots_dir: PathBuf,
    /// On a shared server: the folders local sources' tables must resolve into.
    pub local_source_roots: Option<Vec<PathBuf>>,
    pub lease: LeaseSettings,
}

impl RunnerSettings {
    pub fn new(home: &std::path::Path, mut client: ClientSettings) -> Self {
        // An export is long and each part is worth retrying more than a one-off call.
        client.max_attempts = client.max_attempts.max(RUN_MAX_ATTEMPTS);
        Self {
            client,
            upload: UploadSettings::default(),
            spill_dir: home.join("spill"),
            query_memory: 512 * 1024 * 1024,
            locks_dir: home.join("locks"),
            snapshots_dir: home.join("snapshots"),
            local_source_roots: None,
            lease: LeaseSettings::default(),
        }
    }

    pub(crate) fn engine(&self) -> EngineSettings {
        let mut settings = EngineSettings::new(self.spill_dir.clone());
        settings.memory_limit = self.query_memory;
        settings.confine_to = self.local_source_roots.clone();
        settings
    }
}

/// A file a run wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileOutcome {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub checksum: String,
    /// The earlier attempt of the same logical run that wrote it, when this attempt (a retry)
    /// kept it rather than wrote it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<String>,
}

/// Why a run failed: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunFailure {
    pub code: String,
    pub message: String,
}

/// The result of `sync run`, in the shape `--json` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: &'static str,
    pub rows: u64,
    pub bytes: u64,
    pub files: Vec<FileOutcome>,
    pub duration_ms: u64,
    pub error: Option<RunFailure>,
    /// The manifest's key, when one was written.
    #[serde(skip)]
    pub manifest: Option<String>,
    /// `all`, `insert`, `diff` or `delta`.
    pub mode: &'static str,
    /// How the result compared with the last snapshot (null for `all`).
    pub changes: Option<ChangeCounts>,
}

/// Errors before a run starts (nothing recorded, nothing written).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("{0}")]
    Invalid(String),
    /// A live process on this machine is running the sync.
    #[error(
        "sync {sync:?} already has a run in progress{} in process {}; wait for it to finish, or stop that process (the next run then starts at once)",
        run_id.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
        pid.map_or_else(|| "another".to_string(), |p| p.to_string())
    )]
    Busy {
        sync: String,
        run_id: Option<String>,
        pid: Option<u32>,
    },
}

impl RunnerError {
    pub fn code(&self) -> String {
        match self {
            Self::Store(StoreError::RunInProgress { .. }) | Self::Busy { .. } => {
                "run.in_progress".into()
            }
            Self::Store(_) => "store.error".into(),
            Self::Engine(e) => e.code().into(),
            Self::Delivery(e) => e.code(),
            Self::Invalid(_) => "sync.invalid".into(),
        }
    }
}

/// Everything a run reads, loaded from the store.
pub struct SyncContext {
    pub sync: SyncRecord,
    pub model: ModelRecord,
    /// The segment the sync exports, if any.
    pub segment: Option<SegmentRecord>,
    pub destination: DestinationRecord,
    pub template: KeyTemplate,
    workspace: String,
}

impl SyncContext {
    pub async fn load(store: &Store, workspace: &str, sync: &str) -> Result<Self, RunnerError> {
        let sync = store.sync(workspace, sync).await?;
        let model = store.model_of(&sync).await?;
        let segment = store.segment_of(&sync).await?;
        let destination = store.destination(workspace, &sync.destination_name).await?;
        let (_, template) = SyncSettings::validate(sync.settings.clone())
            .map_err(|e| RunnerError::Invalid(e.to_string()))?;
        Ok(Self {
            sync,
            model,
            segment,
            destination,
            template,
            workspace: workspace.to_string(),
        })
    }

    /// What `{segment}` renders to: the segment's name, or the model's.
    pub fn segment_name(&self) -> &str {
        self.segment.as_ref().map_or(&self.model.name, |g| &g.name)
    }

    /// The query a run executes: the model's SQL, or its segment compiled against `as_of`.
    pub(crate) async fn query(
        &self,
        store: &Store,
        warehouse: &Warehouse,
        as_of: OffsetDateTime,
    ) -> Result<(String, Vec<wharf_engine::segment::ScalarValue>), RunnerError> {
        let Some(segment) = &self.segment else {
            return Ok((self.model.sql.clone(), Vec::new()));
        };
        let filter = segments::parse_filter(&segment.filter)?;
        let as_of = i64::try_from(as_of.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        let compiled = segments::compile(
            store,
            &self.workspace,
            warehouse,
            &self.model,
            &filter,
            as_of,
        )
        .await?;
        Ok(compiled.into_export())
    }

    pub(crate) async fn warehouse(
        &self,
        settings: &RunnerSettings,
    ) -> Result<Warehouse, RunnerError> {
        models::open(&self.model.source.config, settings).await
    }

    /// The sync, model, segment and destination as this run sees them; `as_of` is the time
    /// the segment's `within_last` conditions count back from.
    pub(crate) fn definition(&self, as_of: OffsetDateTime) -> String {
        serde_json::json!({
            "sync": {"name": self.sync.name, "settings": self.sync.settings},
            "model": {
                "name": self.model.name,
                "source": self.model.source.name,
                "sql": self.model.sql,
                "primary_key": self.model.primary_key,
            },
            "segment": self.segment.as_ref().map(|g| serde_json::json!({
                "name": g.name,
                "filter": serde_json::from_str::<serde_json::Value>(&g.filter)
                    .unwrap_or_else(|_| serde_json::Value::String(g.filter.clone())),
                "as_of": as_of
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            })),
            "destination": {
                "name": self.destination.destination.name.as_str(),
                "bucket": self.destination.destination.bucket.as_str(),
                "prefix": self.destination.destination.prefix.as_str(),
            },
        })
        .to_string()
    }
}

type Failed = (Vec<FileOutcome>, RunFailure);

fn failure(code: impl Into<String>, message: impl std::fmt::Display) -> RunFailure {
    RunFailure {
        code: code.into(),
        message: message.to_string(),
    }
}

/// What a run wrote, and how its result compared with the sync's snapshot (modes but `all`).
struct Exported {
    files: Vec<FileOutcome>,
    manifest: Option<String>,
    changes: Option<ChangeCounts>,
    /// The snapshot folder the run compared into (modes but `all`).
    snapshot: Option<String>,
}

async fn execute(
    store: &Store,
    ctx: &SyncContext,
    attempt: &attempt::Attempt,
    settings: &RunnerSettings,
    progress: Arc<RunProgress>,
    gate: Arc<journal::LeaseGate>,
) -> Result<Exported, Failed> {
    let run_id = attempt.run_id();
    let started_at = attempt.started_at;
    let fail = |f: RunFailure| (Vec::new(), f);
    let destination = &ctx.destination.destination;
    let identity = match destination.auth {
        S3Auth::AssumeRole { .. } => Some(Identity::from_environment().await),
        S3Auth::AccessKey { .. } => None,
    };
    let client = wharf_delivery::s3_client(
        destination,
        identity.as_ref(),
        &format!("run-{}", &run_id[..8.min(run_id.len())]),
        settings.client.clone(),
    )
    .await
    .map_err(|e| fail(failure(e.code(), e)))?;
    let target = Arc::new(UploadTarget::new(client, destination, &settings.client));
    janitor(store, &ctx.destination.id, &target).await;

    let warehouse = ctx
        .warehouse(settings)
        .await
        .map_err(|e| fail(failure(e.code(), e)))?;
    let (sql, params) = ctx
        .query(store, &warehouse, started_at)
        .await
        .map_err(|e| fail(failure(e.code(), e)))?;
    // The text formats' encoders read string views as the local source gives them; Parquet,
    // Avro and the change comparison (whose snapshots keep plain strings) take plain ones.
    let text = if ctx.sync.settings.file.format.is_text() && !ctx.sync.settings.mode.compares() {
        Text::AsRead
    } else {
        Text::Plain
    };
    let stream = warehouse
        .query_with(&sql, &params, text)
        .await
        .map_err(|e| fail(failure(e.code(), e)))?;
    let journal = Arc::new(journal::StoreJournal::new(
        store.clone(),
        run_id.to_string(),
        ctx.destination.id.clone(),
        gate.clone(),
    ));
    let job = pipeline::Job {
        run_id: run_id.to_string(),
        keys_run: attempt.keys_run.clone(),
        carried: attempt.carried.clone(),
        continues: attempt.continues(),
        started_at,
        model: ctx.model.name.clone(),
        segment: ctx.segment_name().to_string(),
        sync: ctx.sync.name.clone(),
        settings: ctx.sync.settings.clone(),
        template: ctx.template.clone(),
        prefix: destination.prefix.clone(),
        target: target.clone(),
        upload: settings.upload,
        journal,
        progress,
        change: None,
        recorded_before: 0,
    };
    let mut changes = None;
    let mut snapshot = None;
    let exported = if ctx.sync.settings.mode.compares() {
        changes::export::export_changes(store, ctx, attempt, settings, job, stream)
            .await
            .map(|compared| {
                changes = Some(compared.counts);
                snapshot = Some(compared.folder);
                (compared.files, compared.schema)
            })
    } else {
        pipeline::export(job, stream.into(), store.clone()).await
    };
    // Whatever else went wrong, a run that no longer holds its lease stops as `lease_lost`.
    let checked = match exported {
        Ok((files, schema)) => match gate.check().await {
            Ok(()) => Ok((files, schema)),
            Err(e) => Err((files, failure("lease_lost", e))),
        },
        Err((files, f)) if f.code == "lease_lost" => Err((files, f)),
        Err((files, f)) => match gate.check().await {
            Ok(()) => return Err((files, f)),
            Err(e) => Err((files, failure("lease_lost", e))),
        },
    };
    let (files, schema) = match checked {
        Ok(done) => done,
        Err((files, f)) => {
            remove_fenced_files(store, &target, attempt, &files).await;
            return Err((Vec::new(), f));
        }
    };
    let manifest =
        manifest::write_manifest(ctx, attempt, &target, &files, &schema, changes.as_ref())
            .await
            .map_err(|f| (files.clone(), f))?;
    let Some(manifest) = manifest else {
        return Ok(Exported {
            files,
            manifest: None,
            changes,
            snapshot,
        });
    };
    store
        .add_run_file(run_id, &manifest)
        .await
        .map_err(|e| (files.clone(), failure("store.error", e)))?;
    Ok(Exported {
        files,
        manifest: Some(manifest.key),
        changes,
        snapshot,
    })
}

/// Deletes the files a run that lost its lease wrote, when their keys are its logical run's
/// own (they name its id) and no later attempt of that run exists: another run holds the sync,
/// and would never know them. A later attempt of the same run writes the same keys, and keeps
/// what it finds there: they stay. So do files at keys without the run id (another run's too),
/// and files this attempt kept from an earlier one.
async fn remove_fenced_files(
    store: &Store,
    target: &UploadTarget,
    attempt: &attempt::Attempt,
    files: &[FileOutcome],
) {
    let mine: Vec<&FileOutcome> = files
        .iter()
        .filter(|f| f.carried_from.is_none() && f.key.contains(&attempt.keys_run))
        .collect();
    if mine.is_empty() {
        return;
    }
    match store.has_later_attempt(&attempt.lease).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::warn!(
                run = %attempt.lease.run_id,
                "the run lost its lease to a later attempt of the same run: its files stay, for that attempt to keep"
            );
            return;
        }
        Err(e) => {
            tracing::warn!(
                "cannot tell whether a later attempt continues this run; its files stay: {e}"
            );
            return;
        }
    }
    for file in mine {
        match target.delete(&file.key).await {
            Ok(()) => {
                tracing::warn!(key = %file.key, "removed a file of a run that lost its lease")
            }
            Err(e) => {
                tracing::warn!(key = %file.key, "cannot remove a file of a run that lost its lease: {e}")
            }
        }
    }
}

/// Whether no live process on this machine runs the sync: its run lock is free (taken and
/// released at once). A lock that cannot be tried counts as alive.
pub fn is_dead(settings: &RunnerSettings, sync_id: &str) -> bool {
    matches!(
        run_lock::RunLock::try_acquire(&settings.locks_dir, sync_id),
        Ok(run_lock::Acquired::Held(_))
    )
}

/// Aborts the uploads that interrupted runs left open on a destination, now rather than at its
/// next run (before a sync is removed, its records of them would go with it). Best effort:
/// what cannot be aborted stays recorded.
pub async fn abort_stale_uploads(
    store: &Store,
    destination: &wharf_store::DestinationRecord,
    settings: &RunnerSettings,
) {
    if store
        .stale_uploads(&destination.id)
        .await
        .is_ok_and(|s| s.is_empty())
    {
        return;
    }
    let d = &destination.destination;
    let identity = match d.auth {
        S3Auth::AssumeRole { .. } => Some(Identity::from_environment().await),
        S3Auth::AccessKey { .. } => None,
    };
    match wharf_delivery::s3_client(d, identity.as_ref(), "janitor", settings.client.clone()).await
    {
        Ok(client) => {
            let target = UploadTarget::new(client, d, &settings.client);
            janitor(store, &destination.id, &target).await;
        }
        Err(e) => tracing::warn!("janitor: cannot reach destination {}: {e}", d.name),
    }
}

/// Aborts uploads that earlier runs of any sync left open on this destination (wharf killed,
/// machine lost). Failures are logged and retried by the next run; they never fail this one.
async fn janitor(store: &Store, destination_id: &str, target: &UploadTarget) {
    let stale = match store.stale_uploads(destination_id).await {
        Ok(stale) => stale,
        Err(e) => {
            tracing::warn!("janitor: cannot read open uploads: {e}");
            return;
        }
    };
    if stale.is_empty() {
        return;
    }
    let refs: Vec<StaleRef> = stale
        .iter()
        .map(|s| StaleRef {
            handle: s.id,
            key: s.key.clone(),
            upload_id: s.upload_id.clone(),
        })
        .collect();
    for (handle, outcome) in wharf_delivery::upload::abort_stale(target, &refs).await {
        match outcome {
            wharf_delivery::upload::JanitorOutcome::Gone => {
                if let Err(e) = store.upload_finished(handle, false).await {
                    tracing::warn!("janitor: cannot record an aborted upload: {e}");
                }
            }
            wharf_delivery::upload::JanitorOutcome::Pending(why) => {
                tracing::warn!("janitor: an upload of an interrupted run is still open: {why}");
            }
        }
    }
    tracing::info!(
        count = refs.len(),
        "janitor: aborted uploads left by interrupted runs"
    );
}
