//! A sync's scheduling state outside the claim path: its schedule and pause, the runs a
//! process looks at to find dead ones, claims given back, and the gauges metrics read.

use super::{Lease, RunningRun, parse_stamp, stamp};
use crate::Store;
use crate::catalog::from_json;
use crate::error::StoreError;
use sqlx::Row as _;
use time::OffsetDateTime;
use wharf_domain::{RunPolicy, Schedule};

impl Store {
    /// When the scheduler next has something to do: the earliest due time of an unpaused
    /// sync or of a waiting run.
    pub async fn next_wake(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(t) FROM (
                 SELECT MIN(next_run_at) AS t FROM syncs
                     WHERE next_run_at IS NOT NULL AND paused_at IS NULL
                 UNION ALL
                 SELECT MIN(due_at) FROM runs WHERE status = 'queued')",
        )
        .fetch_one(&self.pool)
        .await?;
        next.as_deref().map(parse_stamp).transpose()
    }

    /// The queue's depth (waiting runs that are due at `now`) and the paused syncs, for
    /// metrics.
    pub async fn scheduler_gauges(&self, now: OffsetDateTime) -> Result<(i64, i64), StoreError> {
        let queued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE status = 'queued' AND due_at <= ?")
                .bind(stamp(now))
                .fetch_one(&self.pool)
                .await?;
        let paused: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM syncs WHERE paused_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok((queued, paused))
    }

    /// Sets a sync's schedule and run policy, and its next due time after `now`.
    pub async fn set_schedule(
        &self,
        sync_id: &str,
        schedule: &Schedule,
        policy: &RunPolicy,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE syncs SET schedule = ?, policy = ?, next_run_at = ? WHERE id = ?")
            .bind(crate::catalog::json(schedule, "schedule")?)
            .bind(crate::catalog::json(policy, "policy")?)
            .bind(schedule.next_after(now).map(stamp))
            .bind(sync_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets the sync's snapshot: its next run sends every row.
    pub async fn reset_snapshot(&self, sync_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE syncs SET snapshot_run = NULL WHERE id = ?")
            .bind(sync_id)
            .execute(&mut *tx)
            .await?;
        // A waiting retry cannot continue its run (the change set it would send is forgotten):
        // it starts over as a run of its own.
        sqlx::query("UPDATE runs SET logical_run = id WHERE sync_id = ? AND status = 'queued'")
            .bind(sync_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pauses a sync (`Some(reason)`) or resumes it (`None`: failures in a row forgotten, the
    /// next due time counted from `now`).
    pub async fn set_paused(
        &self,
        sync_id: &str,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        match reason {
            Some(reason) => {
                sqlx::query("UPDATE syncs SET paused_at = ?, pause_reason = ? WHERE id = ?")
                    .bind(stamp(now))
                    .bind(reason)
                    .bind(sync_id)
                    .execute(&self.pool)
                    .await?;
            }
            None => {
                let schedule: String =
                    sqlx::query_scalar("SELECT schedule FROM syncs WHERE id = ?")
                        .bind(sync_id)
                        .fetch_one(&self.pool)
                        .await?;
                let schedule: Schedule = from_json(&schedule, "schedule")?;
                sqlx::query(
                    "UPDATE syncs SET paused_at = NULL, pause_reason = NULL, failures_in_row = 0,
                         next_run_at = ? WHERE id = ?",
                )
                .bind(schedule.next_after(now).map(stamp))
                .bind(sync_id)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// The runs in progress (of one sync, or all), for a check of whether their process
    /// lives.
    pub async fn running_runs(&self, sync_id: Option<&str>) -> Result<Vec<RunningRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, sync_id, owner, started_at FROM runs
             WHERE status = 'running' AND (? IS NULL OR sync_id = ?)",
        )
        .bind(sync_id)
        .bind(sync_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunningRun {
                    run_id: r.try_get("id")?,
                    sync_id: r.try_get("sync_id")?,
                    owner: r.try_get("owner")?,
                    started_at: parse_stamp(&r.try_get::<String, _>("started_at")?)?,
                })
            })
            .collect()
    }

    /// Puts a claimed run that was never started back in the queue (its process is shutting
    /// down), for another process or the next start.
    pub async fn release_claim(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET status = 'queued', started_at = NULL, heartbeat_at = NULL,
                 lease_id = NULL, epoch = NULL, lease_expires_at = NULL, owner = NULL
             WHERE id = ? AND lease_id = ? AND status = 'running'",
        )
        .bind(&lease.run_id)
        .bind(&lease.lease_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a run that still waits in the queue as cancelled (its requester gave up).
    pub async fn cancel_queued(&self, run_id: &str) -> Result<(), StoreError> {
        let at = crate::now();
        sqlx::query(
            "UPDATE runs SET status = 'failed', started_at = ?, finished_at = ?,
                 error_code = 'cancelled', error_message = 'cancelled while it waited in the queue'
             WHERE id = ? AND status = 'queued'",
        )
        .bind(&at)
        .bind(&at)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes a run whose process is known to be gone (its run lock is free) as interrupted,
    /// at once rather than when its lease expires. The retry follows at the next tick's
    /// expiry check, which this makes immediate.
    pub async fn expire_lease(&self, run_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET lease_expires_at = ? WHERE id = ? AND status = 'running'")
            .bind(stamp(OffsetDateTime::UNIX_EPOCH))
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
