//! The end of a leased run: its status recorded under its lease, the snapshot it wrote made
//! the sync's, and what its failure leads to (a queued retry, a pause, alerts), in one
//! transaction.

use super::{Lease, NewRun, Trigger, active_runs, insert_queued, stamp};
use crate::Store;
use crate::alerts::PendingAlert;
use crate::catalog::from_json;
use crate::error::StoreError;
use sqlx::Row as _;
use time::OffsetDateTime;
use wharf_domain::RunPolicy;

/// How a run ended, and what the service decided follows it.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub succeeded: bool,
    pub rows: u64,
    pub bytes: u64,
    pub error: Option<(&'a str, &'a str)>,
    /// Queue a retry, due at this time (the failure was transient and attempts remain).
    pub retry_at: Option<OffsetDateTime>,
    /// The failure is final for a scheduled due time: it counts towards pausing the sync.
    pub counts_towards_pause: bool,
    /// The sync's mode, and how its result compared with the last snapshot.
    pub mode: wharf_domain::SyncMode,
    pub changes: Option<wharf_domain::ChangeCounts>,
    /// The snapshot the run compared into (its folder: the attempt that wrote it), which
    /// becomes the sync's if the run succeeded.
    pub snapshot: Option<String>,
}

/// What finishing a run changed beyond the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    pub retry: Option<String>,
    /// The sync was paused by this failure; the reason given.
    pub paused: Option<String>,
    /// The run succeeded after failed scheduled runs (how many).
    pub recovered_from: u32,
    /// Alert deliveries queued with the run's end.
    pub alerts_queued: u64,
}

impl Store {
    /// Records the end of a run under its lease, and what follows: a queued retry, the count
    /// of failures in a row, a pause once it reaches the policy's `pause_after`. Fails with
    /// [`StoreError::Fenced`] (recording nothing) when the lease is no longer the sync's.
    pub async fn finish_leased_run(
        &self,
        lease: &Lease,
        finish: &Finish<'_>,
    ) -> Result<Finished, StoreError> {
        self.finish_leased_run_alerting(lease, finish, |_| Vec::new())
            .await
    }

    /// [`Store::finish_leased_run`], queueing the alerts `alerts` makes of what the end
    /// changed in the same transaction: an alert is never lost to a crash after the run's end
    /// was recorded, nor sent for an end that was not.
    pub async fn finish_leased_run_alerting(
        &self,
        lease: &Lease,
        finish: &Finish<'_>,
        alerts: impl FnOnce(&Finished) -> Vec<PendingAlert>,
    ) -> Result<Finished, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = OffsetDateTime::now_utc();
        let at = stamp(now);
        let done = sqlx::query(
            "UPDATE runs SET status = ?, finished_at = ?, rows = ?, bytes = ?, error_code = ?,
                 error_message = ?, mode = ?, changes = ?
             WHERE id = ? AND lease_id = ? AND status = 'running'
               AND epoch = (SELECT epoch FROM syncs WHERE id = runs.sync_id)",
        )
        .bind(if finish.succeeded {
            "succeeded"
        } else {
            "failed"
        })
        .bind(&at)
        .bind(i64::try_from(finish.rows).unwrap_or(i64::MAX))
        .bind(i64::try_from(finish.bytes).unwrap_or(i64::MAX))
        .bind(finish.error.map(|e| e.0))
        .bind(finish.error.map(|e| e.1))
        .bind(finish.mode.as_str())
        .bind(
            finish
                .changes
                .as_ref()
                .map(|c| crate::catalog::json(c, "run changes"))
                .transpose()?,
        )
        .bind(&lease.run_id)
        .bind(&lease.lease_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Fenced {
                run_id: lease.run_id.clone(),
            });
        }
        if let Some(snapshot) = finish.snapshot.as_ref().filter(|_| finish.succeeded) {
            // The run's snapshot becomes the sync's in the step that records it succeeded,
            // under its lease: a failed or fenced run leaves the last one current.
            sqlx::query("UPDATE syncs SET snapshot_run = ? WHERE id = ?")
                .bind(snapshot)
                .bind(&lease.sync_id)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query("SELECT policy, failures_in_row FROM syncs WHERE id = ?")
            .bind(&lease.sync_id)
            .fetch_one(&mut *tx)
            .await?;
        // A policy this build cannot read (written by a newer one) must not keep the run's
        // end from being recorded: no retry and no pause follow, and the scheduler pauses the
        // sync, saying why, at its next due time.
        let policy: Option<RunPolicy> =
            from_json(&row.try_get::<String, _>("policy")?, "policy").ok();
        let failures = u32::try_from(row.try_get::<i64, _>("failures_in_row")?).unwrap_or(0);
        let mut finished = Finished::default();
        if finish.succeeded {
            finished.recovered_from = failures;
            sqlx::query("UPDATE syncs SET failures_in_row = 0 WHERE id = ?")
                .bind(&lease.sync_id)
                .execute(&mut *tx)
                .await?;
        } else if let Some(retry_at) = finish.retry_at.filter(|_| policy.is_some()) {
            let (_, queued) = active_runs(&mut tx, &lease.sync_id).await?;
            if queued.is_none() {
                finished.retry = Some(
                    insert_queued(
                        &mut tx,
                        &NewRun {
                            workspace: &lease.workspace,
                            sync_id: &lease.sync_id,
                            trigger: Trigger::Retry,
                            actor: None,
                            retry_of: Some(&lease.run_id),
                            attempt: lease.attempt + 1,
                            due_at: retry_at,
                        },
                    )
                    .await?,
                );
            }
        } else if let Some(policy) = policy.filter(|_| finish.counts_towards_pause) {
            let failures = failures + 1;
            let pause = policy.pause_after > 0 && failures >= policy.pause_after;
            let reason = pause.then(|| {
                let (code, message) = finish.error.unwrap_or(("failed", ""));
                match failures {
                    1 => format!(
                        "the scheduled run {} failed with {code}: {message}",
                        lease.run_id
                    ),
                    n => format!(
                        "{n} scheduled runs in a row failed; the last ({}) with {code}: {message}",
                        lease.run_id
                    ),
                }
            });
            sqlx::query(
                "UPDATE syncs SET failures_in_row = ?,
                     paused_at = CASE WHEN ? THEN ? ELSE paused_at END,
                     pause_reason = CASE WHEN ? THEN ? ELSE pause_reason END
                 WHERE id = ?",
            )
            .bind(i64::from(failures))
            .bind(pause)
            .bind(&at)
            .bind(pause)
            .bind(&reason)
            .bind(&lease.sync_id)
            .execute(&mut *tx)
            .await?;
            if reason.is_some() {
                sqlx::query("UPDATE runs SET paused_sync = ? WHERE id = ?")
                    .bind(&reason)
                    .bind(&lease.run_id)
                    .execute(&mut *tx)
                    .await?;
            }
            finished.paused = reason;
        }
        for alert in alerts(&finished) {
            finished.alerts_queued += crate::alerts::insert_alert(
                &mut tx,
                &lease.workspace,
                &lease.sync_id,
                Some(&lease.run_id),
                &alert,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(finished)
    }
}
