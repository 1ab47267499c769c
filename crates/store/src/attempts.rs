//! What a retry continues: the logical run its attempts share (its start, its definition, the
//! files its attempts committed, the change set they export), and the attempt's own marks on it.
//!
//! A retry is the same logical run as the attempt it retries: it renders the same keys and
//! writes the same manifest, skips the files an earlier attempt committed, and (for a sync
//! that sends changes) exports the same change set. See `runs.logical_run` (migration 0011).

use crate::Store;
use crate::error::StoreError;
use crate::runs::NewRunFile;
use crate::scheduler::{Lease, parse_stamp};
use sqlx::Row as _;
use time::OffsetDateTime;

/// A logical run, as an attempt that continues it finds it.
#[derive(Debug, Clone)]
pub struct LogicalRun {
    /// Its first attempt's id: the run id its keys and manifest carry.
    pub id: String,
    /// When its first attempt started: the time its keys and manifest carry.
    pub started_at: OffsetDateTime,
    /// The definition its first attempt ran (JSON), to tell whether the sync changed since.
    pub definition: Option<String>,
    /// The attempts before this one, oldest first.
    pub attempts: Vec<String>,
    /// Files its attempts committed (the manifest aside), each once, in the order written.
    pub files: Vec<CommittedFile>,
    /// The change sets earlier attempts exported (their folders), newest first.
    pub change_sets: Vec<String>,
}

/// A file an attempt of a logical run committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedFile {
    /// The attempt that wrote it.
    pub written_by: String,
    pub file: NewRunFile,
}

impl Store {
    /// The logical run `lease` continues (a retry's), as its earlier attempts left it.
    pub async fn logical_run(&self, lease: &Lease) -> Result<LogicalRun, StoreError> {
        let first = sqlx::query("SELECT started_at, definition FROM runs WHERE id = ?")
            .bind(&lease.logical_run)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "run",
                name: lease.logical_run.clone(),
            })?;
        let started_at = match first.try_get::<Option<String>, _>("started_at")? {
            Some(text) => parse_stamp(&text)?,
            None => lease.started_at,
        };
        let attempts = sqlx::query(
            "SELECT id, change_set FROM runs WHERE logical_run = ? AND id <> ? ORDER BY attempt",
        )
        .bind(&lease.logical_run)
        .bind(&lease.run_id)
        .fetch_all(&self.pool)
        .await?;
        let mut ids = Vec::new();
        let mut change_sets = Vec::new();
        for row in &attempts {
            ids.push(row.try_get::<String, _>("id")?);
            if let Some(set) = row.try_get::<Option<String>, _>("change_set")? {
                change_sets.push(set);
            }
        }
        change_sets.reverse();
        let rows = sqlx::query(
            "SELECT f.*, r.attempt FROM run_files f JOIN runs r ON r.id = f.run_id
             WHERE r.logical_run = ? AND r.id <> ? AND f.part >= 0
             ORDER BY r.attempt, f.part",
        )
        .bind(&lease.logical_run)
        .bind(&lease.run_id)
        .fetch_all(&self.pool)
        .await?;
        let mut files: Vec<CommittedFile> = Vec::new();
        for row in &rows {
            let file = crate::runs::file_from_row(row)?;
            if files.iter().any(|c| c.file.key == file.key) {
                continue;
            }
            let written_by = match &file.carried_from {
                Some(from) => from.clone(),
                None => row.try_get("run_id")?,
            };
            files.push(CommittedFile { written_by, file });
        }
        Ok(LogicalRun {
            id: lease.logical_run.clone(),
            started_at,
            definition: first.try_get("definition")?,
            attempts: ids,
            files,
            change_sets,
        })
    }

    /// Makes a retry a logical run of its own (its sync changed since the run it retries
    /// started: it cannot continue that one).
    pub async fn restart_logical_run(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET logical_run = id WHERE id = ?")
            .bind(&lease.run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the change set (the attempt whose folder holds it) a run exports, while it
    /// holds its lease.
    pub async fn set_change_set(&self, lease: &Lease, change_set: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET change_set = ? WHERE id = ? AND lease_id = ? AND status = 'running'",
        )
        .bind(change_set)
        .bind(&lease.run_id)
        .bind(&lease.lease_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Fenced {
                run_id: lease.run_id.clone(),
            });
        }
        Ok(())
    }

    /// Whether a later attempt of the lease's logical run exists (queued, running or over):
    /// the files this attempt committed are that attempt's to keep.
    pub async fn has_later_attempt(&self, lease: &Lease) -> Result<bool, StoreError> {
        let later: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM runs WHERE logical_run = ? AND attempt > ? LIMIT 1")
                .bind(&lease.logical_run)
                .bind(i64::from(lease.attempt))
                .fetch_optional(&self.pool)
                .await?;
        Ok(later.is_some())
    }
}
