//! What changed since a sync's last successful run: the canonical encoding and hash of
//! exported rows ([`encode`]), and the snapshot of keys and hashes a run compares against.
//!
//! A sync in `insert`, `diff` or `delta` mode keeps a snapshot: every primary key it exported
//! with the hash of the row as exported. A run compares the model's result with it, partition
//! by partition of the key space (so memory holds one partition, never the whole key set),
//! writes the change set and the new snapshot beside the old one, and the new snapshot becomes
//! the sync's only when the run is recorded `succeeded`.

pub mod diff;
pub mod encode;
pub(crate) mod export;
pub mod snapshot;

pub use diff::{Comparison, Previous};
pub use snapshot::{LocalSnapshots, SnapshotMeta, SnapshotStore};
pub use wharf_domain::ChangeCounts;

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Unsupported(#[from] encode::Unsupported),
    #[error(
        "the primary key ({column}) is null in {rows} row(s) of the model's result; a sync that sends changes needs every row to have a key: filter those rows out in the model's SQL, or choose another key"
    )]
    NullKeys { column: String, rows: u64 },
    #[error(
        "the primary key ({column}) is not unique in the model's result: {extra_rows} row(s) repeat a key that an earlier row has (for example {example}); a sync that sends changes needs one row per key: fix the model's SQL, or choose another key"
    )]
    DuplicateKeys {
        column: String,
        extra_rows: u64,
        example: String,
    },
    #[error("a snapshot file is damaged: {0}")]
    Corrupt(String),
    #[error("cannot write or read the sync's snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot compare the rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl ChangeError {
    /// The error code a failed run records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "sync.columns",
            Self::NullKeys { .. } => "model.null_key",
            Self::DuplicateKeys { .. } => "model.duplicate_key",
            Self::Corrupt(_) => "snapshot.corrupt",
            Self::Io(_) => "snapshot.io",
            Self::Arrow(_) => "internal",
        }
    }
}

/// Removes every snapshot of a sync that is being removed: its keys and hashes are its
/// partners' data.
pub fn remove_all(settings: &crate::RunnerSettings, sync_id: &str) -> std::io::Result<()> {
    match std::fs::remove_dir_all(settings.snapshots_dir.join(sync_id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes every snapshot of the sync but `current` (the run whose snapshot was just made the
/// sync's), and the change set exported beside it: called once that is recorded. Best effort:
/// what stays is removed by the next run.
pub fn keep_only(settings: &crate::RunnerSettings, sync_id: &str, current: &str) {
    let snapshots = LocalSnapshots::new(&settings.snapshots_dir);
    // The change set goes first, its completeness marker (`changes.json`) before the rest.
    for blob in [diff::CHANGES, diff::ADDED, diff::CHANGED, diff::REMOVED] {
        if let Err(e) = snapshots.remove_blob(sync_id, current, blob) {
            tracing::warn!(sync = %sync_id, "cannot remove an exported change set: {e}");
        }
    }
    let runs = match snapshots.runs(sync_id) {
        Ok(runs) => runs,
        Err(e) => {
            tracing::warn!(sync = %sync_id, "cannot list the sync's snapshots: {e}");
            return;
        }
    };
    for run in runs.iter().filter(|r| r.as_str() != current) {
        if let Err(e) = snapshots.remove(sync_id, run) {
            tracing::warn!(sync = %sync_id, run = %run, "cannot remove an old snapshot: {e}");
        }
    }
}
