//! Runs in progress as people watch them: their live counters (rows, bytes, parts, files) while
//! this process runs them, and cancelling one. A run another process executes shows its record
//! only (its counters live in that process); a queued run is cancelled in the store.

use crate::{Caller, ErrorKind, Role, Service, ServiceError};
use serde::Serialize;
use std::sync::atomic::Ordering;

/// A run's counters as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LiveProgress {
    /// Rows handed to the encoder.
    pub rows: u64,
    /// Rows compared with the sync's snapshot, before the changes are encoded (modes that
    /// send changes).
    pub compared: u64,
    /// Files completed.
    pub files: u64,
    /// Bytes S3 acknowledged.
    pub bytes: u64,
    /// Parts S3 acknowledged.
    pub parts: u64,
}

impl Service {
    /// The live counters of run `run_id` of the caller's workspace, when this process runs it
    /// (`None`: it is not running here).
    pub async fn run_progress(
        &self,
        caller: &Caller,
        run_id: &str,
    ) -> Result<Option<LiveProgress>, ServiceError> {
        // Another workspace's run is not found, whether or not it runs here.
        self.store.run(&caller.workspace, run_id).await?;
        Ok(self.in_flight.find(run_id).map(|p| LiveProgress {
            rows: p.rows.load(Ordering::Relaxed),
            compared: p.compared.load(Ordering::Relaxed),
            files: p.files.load(Ordering::Relaxed),
            bytes: p.upload.bytes.load(Ordering::Relaxed),
            parts: p.upload.parts.load(Ordering::Relaxed),
        }))
    }

    /// Cancels run `run_id`: a queued run never starts; a run in progress in this process
    /// stops, its upload aborted, and is recorded `cancelled`.
    pub async fn cancel_run(&self, caller: &Caller, run_id: &str) -> Result<(), ServiceError> {
        let object = run_id.to_string();
        self.audited(caller, "cancel", "run", &object, async {
            caller.require(Role::Editor)?;
            let run = self.store.run(&caller.workspace, run_id).await?;
            if run.finished_at.is_some() {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    "run.finished",
                    format!("run {run_id} has already ended; there is nothing to cancel"),
                ));
            }
            if let Some(progress) = self.in_flight.find(run_id) {
                progress.cancel();
                return Ok(());
            }
            if run.started_at.is_none() {
                return Ok(self.store.cancel_queued(run_id).await?);
            }
            Err(ServiceError::new(
                ErrorKind::Conflict,
                "run.elsewhere",
                format!(
                    "run {run_id} is running in another wharf process ({}); stop it there",
                    run.owner.as_deref().unwrap_or("unknown")
                ),
            ))
        })
        .await
    }
}
