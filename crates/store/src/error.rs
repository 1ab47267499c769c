//! The store's one public error.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the metadata store at {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot update the metadata store's schema: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("metadata store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    MasterKey(String),
    #[error("no {kind} named {name:?} (list them with `wharf {kind} list`)")]
    NotFound { kind: &'static str, name: String },
    #[error(
        "a {kind} named {name:?} already exists: choose another name, or remove it first with `wharf {kind} rm {name}`"
    )]
    AlreadyExists { kind: &'static str, name: String },
    /// The operation does not apply to this object (e.g. rotating an access-key destination's
    /// External ID).
    #[error("{0}")]
    NotApplicable(String),
    /// The sync already has a run in progress.
    #[error(
        "sync {sync:?} already has a run in progress ({run_id}); wait for it, or see it with `wharf runs show {run_id}`"
    )]
    RunInProgress { sync: String, run_id: String },
    /// A secret did not decrypt: the master key changed, or the ciphertext was moved or altered.
    #[error(
        "the stored secret of {record} cannot be decrypted: the master key ({}) differs from the one it was sealed with, or the record was altered",
        crate::MASTER_KEY_ENV
    )]
    Decrypt { record: String },
    /// A row that no longer passes validation (edited by hand, or written by a newer wharf).
    #[error("stored {record} is invalid: {detail}")]
    Corrupt { record: String, detail: String },
}
