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
    #[error("no {kind} named {name:?} (list them with `{}`)", list_command(kind))]
    NotFound { kind: &'static str, name: String },
    #[error(
        "a {kind} named {name:?} already exists: {}",
        already_exists_hint(kind, name)
    )]
    AlreadyExists { kind: &'static str, name: String },
    /// The operation does not apply to this object (e.g. rotating an access-key destination's
    /// External ID).
    #[error("{0}")]
    NotApplicable(String),
    /// Another object refers to this one, or work is under way on it. `reason` completes the
    /// sentence: `is exported by sync a, b; remove the sync first`.
    #[error("{kind} {name:?} {reason}")]
    InUse {
        kind: &'static str,
        name: String,
        reason: String,
    },
    /// The sync already has a run in progress.
    #[error(
        "sync {sync:?} already has a run in progress ({run_id}); wait for it, or see it with `wharf runs show {run_id}` (the sync's overlap policy is skip; with queue, a trigger waits for the run to end)"
    )]
    RunInProgress { sync: String, run_id: String },
    /// A run's lease was taken by another attempt (its process stalled past it): the run
    /// records nothing.
    #[error(
        "run {run_id} lost its lease (it stalled past it and another attempt took the sync); it was not recorded as finished"
    )]
    Fenced { run_id: String },
    /// A secret did not decrypt: the master key changed, or the ciphertext was moved or altered.
    #[error(
        "the stored secret of {record} cannot be decrypted: the master key (from {key_origin}) differs from the one it was sealed with, or the record was altered; restore the original key (the key file or {})",
        crate::MASTER_KEY_ENV
    )]
    Decrypt { record: String, key_origin: String },
    /// `wharf.db` exists but is not a wharf store (empty, another program's file, damaged).
    #[error(
        "{path} is {found}, not a wharf metadata store; every destination, model, sync and sealed secret lives in that file: restore it from your backup, or move it away to start a new, empty store"
    )]
    NotAStore { path: PathBuf, found: String },
    /// A row that no longer passes validation (edited by hand, or written by a newer wharf).
    #[error("stored {record} is invalid: {detail}")]
    Corrupt { record: String, detail: String },
}

/// The command that lists objects of `kind` (runs have their own top-level command).
pub fn list_command(kind: &str) -> String {
    match kind {
        "run" => "wharf runs".to_string(),
        kind => format!("wharf {kind} list"),
    }
}

/// What to do about a name that is taken: only kinds that can be removed offer removal.
fn already_exists_hint(kind: &str, name: &str) -> String {
    match kind {
        "destination" | "segment" => {
            format!("choose another name, or remove it first with `wharf {kind} rm {name}`")
        }
        _ => "choose another name".to_string(),
    }
}
