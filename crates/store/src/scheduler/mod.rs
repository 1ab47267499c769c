//! The scheduler's side of the store: runs waiting in a queue, claims under a lease, the
//! fencing check, and what a finished run leaves behind (a retry, a pause).
//!
//! Every change here happens in one transaction that takes the write lock first (`BEGIN
//! IMMEDIATE` on SQLite), so two processes on one store serialize: a due time is turned into
//! exactly one queued run, and a queued run is claimed by exactly one process. On PostgreSQL the
//! same statements select the rows to claim with `FOR UPDATE SKIP LOCKED` instead.
//!
//! A claim gives the run a lease (an id, until a time, renewed by the run's heartbeat) and the
//! sync's next epoch. A run commits its last steps (the Complete of each file, its manifest,
//! `succeeded`) only while [`Store::lease_holds`]: its lease is live and its epoch is still the
//! sync's. A process that stalled past its lease finds another attempt holding a newer epoch
//! and gives up; the status update itself is conditional on the epoch, so even a check that
//! raced cannot record a second `succeeded`.

use crate::Store;
use crate::alerts::PendingAlert;
use crate::catalog::from_json;
use crate::error::StoreError;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use wharf_domain::{RunPolicy, Schedule, ScheduleSpec};

mod sync_state;

/// What asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its sync's schedule came due.
    Schedule,
    /// A person, from the command line.
    Manual,
    /// A failed run's retry.
    Retry,
    /// A person or a program, through the REST API.
    Api,
    /// A person, in the web UI.
    Ui,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Retry => "retry",
            Self::Api => "api",
            Self::Ui => "ui",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "schedule" => Self::Schedule,
            "manual" => Self::Manual,
            "retry" => Self::Retry,
            "api" => Self::Api,
            "ui" => Self::Ui,
            other => {
                return Err(StoreError::Corrupt {
                    record: "run".into(),
                    detail: format!("unknown trigger {other:?}"),
                });
            }
        })
    }

    /// Whether the schedule (or a retry of a scheduled run) asked: such runs are skipped while
    /// their sync is paused, and their failures count towards pausing it.
    pub fn is_scheduled(self) -> bool {
        matches!(self, Self::Schedule | Self::Retry)
    }
}

/// A run to put in the queue.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub workspace: &'a str,
    pub sync_id: &'a str,
    pub trigger: Trigger,
    pub actor: Option<&'a str>,
    pub retry_of: Option<&'a str>,
    pub attempt: u32,
    pub due_at: OffsetDateTime,
}

/// What asking for a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new run waits in the queue.
    Queued(String),
    /// The sync already had a run waiting; nothing was added.
    AlreadyQueued(String),
    /// The sync has a run in progress and its overlap policy is `skip`.
    Busy { running: String },
}

/// The terms of the leases a process takes.
#[derive(Debug, Clone)]
pub struct LeaseTerms {
    /// Who holds them: `host:pid`.
    pub owner: String,
    /// How long a lease lasts without renewal.
    pub duration: time::Duration,
}

/// A claimed run: the process that holds it runs it, renews it and commits under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run_id: String,
    pub lease_id: String,
    pub epoch: i64,
    pub workspace: String,
    pub sync_id: String,
    pub sync_name: String,
    pub trigger: Trigger,
    pub attempt: u32,
    pub due_at: OffsetDateTime,
    pub started_at: OffsetDateTime,
}

/// A run in progress, and who runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRun {
    pub run_id: String,
    pub sync_id: String,
    /// `host:pid` of the process holding its lease.
    pub owner: Option<String>,
    pub started_at: OffsetDateTime,
}

/// A due time skipped because the sync was still running (overlap policy `skip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedDue {
    pub sync_name: String,
    pub due_at: OffsetDateTime,
    pub running: String,
}

/// A run closed because its lease expired (its process stopped or stalled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub run_id: String,
    pub sync_name: String,
    /// The queued retry, when the sync's policy has attempts left.
    pub retry: Option<String>,
}

/// What one pass of the scheduler did.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    /// Runs claimed by this process, to start now.
    pub claimed: Vec<Lease>,
    /// Due times turned into queued runs.
    pub queued: Vec<String>,
    pub skipped: Vec<SkippedDue>,
    pub expired: Vec<Expired>,
    /// Syncs paused because their stored schedule or policy cannot be read.
    pub unreadable: Vec<Unreadable>,
}

/// A due sync whose schedule or policy this build cannot read.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub sync_name: String,
    /// The pause reason recorded on the sync.
    pub reason: String,
}

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
    /// The run wrote a snapshot that becomes the sync's if it succeeded.
    pub snapshot: bool,
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

/// A sync's scheduling state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    pub next_run_at: Option<String>,
    pub paused_at: Option<String>,
    pub pause_reason: Option<String>,
    pub failures_in_row: u32,
}

/// Times as the scheduler stores them: fixed width (microseconds, `Z`), so that text order is
/// time order.
pub fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

pub(crate) fn parse_stamp(text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|e| {
        StoreError::Corrupt {
            record: "time".into(),
            detail: format!("{text:?}: {e}"),
        }
    })
}

const INTERRUPTED: &str = "the wharf process running it stopped or stalled past its lease (killed, or the machine lost); its uploads are aborted by the next run";

impl Store {
    /// Puts a run of a sync in the queue, by the sync's overlap policy: while a run is in
    /// progress, `skip` refuses and `queue` queues once; a run already waiting is never doubled.
    pub async fn enqueue_run(&self, new: &NewRun<'_>) -> Result<Enqueued, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let policy: String = sqlx::query_scalar("SELECT policy FROM syncs WHERE id = ?")
            .bind(new.sync_id)
            .fetch_one(&mut *tx)
            .await?;
        let policy: RunPolicy = from_json(&policy, "sync policy")?;
        let (running, queued) = active_runs(&mut tx, new.sync_id).await?;
        let outcome = match (running, queued) {
            (_, Some(queued)) => {
                // A person asking while a run waits (a retry in its backoff, a due time
                // behind a run in progress): that run is theirs now, and due now.
                if !new.trigger.is_scheduled() {
                    sqlx::query(
                        "UPDATE runs SET trigger = ?, actor = ?, due_at = MIN(due_at, ?)
                         WHERE id = ? AND status = 'queued'",
                    )
                    .bind(new.trigger.as_str())
                    .bind(new.actor)
                    .bind(stamp(new.due_at))
                    .bind(&queued)
                    .execute(&mut *tx)
                    .await?;
                }
                Enqueued::AlreadyQueued(queued)
            }
            (Some(running), None) if policy.overlap == wharf_domain::Overlap::Skip => {
                Enqueued::Busy { running }
            }
            _ => Enqueued::Queued(insert_queued(&mut tx, new).await?),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Claims one queued run (the one a caller just queued and will run itself), if its sync
    /// has no run in progress.
    pub async fn claim_run(
        &self,
        run_id: &str,
        terms: &LeaseTerms,
        now: OffsetDateTime,
    ) -> Result<Option<Lease>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT r.id FROM runs r WHERE r.id = ? AND r.status = 'queued'
               AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.sync_id = r.sync_id
                               AND x.status = 'running')",
        )
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
        let lease = match row {
            Some(_) => Some(lease_run(&mut tx, run_id, terms, now).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(lease)
    }

    /// One pass of the scheduler at `now`: closes runs whose lease expired (queueing their
    /// retries), turns due schedules into queued runs (a sync that missed several due times
    /// runs once), and claims up to `limit` waiting runs, earliest due first.
    pub async fn scheduler_tick(
        &self,
        terms: &LeaseTerms,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Tick, StoreError> {
        let mut tick = Tick::default();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let at = stamp(now);

        let expired = sqlx::query(
            "SELECT r.id, r.workspace_id, r.sync_id, r.trigger, r.attempt, y.name, y.policy
             FROM runs r JOIN syncs y ON y.id = r.sync_id
             WHERE r.status = 'running' AND r.lease_expires_at < ?",
        )
        .bind(&at)
        .fetch_all(&mut *tx)
        .await?;
        for row in &expired {
            let run_id: String = row.try_get("id")?;
            close_interrupted(&mut tx, &run_id, &at).await?;
            let sync_id: String = row.try_get("sync_id")?;
            let workspace: String = row.try_get("workspace_id")?;
            // A policy or trigger this build cannot read: closed without a retry (the due
            // pass pauses the sync, saying why).
            let max_attempts =
                from_json::<RunPolicy>(&row.try_get::<String, _>("policy")?, "policy")
                    .map_or(1, |p| p.max_attempts);
            let attempt = u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(u32::MAX);
            let trigger = Trigger::parse(&row.try_get::<String, _>("trigger")?).ok();
            // An interruption is never the destination's fault: retried at once, as the
            // service retries transient failures (a command-line run's person sees it end).
            let retry = if attempt < max_attempts && trigger.is_some_and(|t| t != Trigger::Manual) {
                let (_, queued) = active_runs(&mut tx, &sync_id).await?;
                match queued {
                    Some(_) => None,
                    None => Some(
                        insert_queued(
                            &mut tx,
                            &NewRun {
                                workspace: &workspace,
                                sync_id: &sync_id,
                                trigger: Trigger::Retry,
                                actor: None,
                                retry_of: Some(&run_id),
                                attempt: attempt + 1,
                                due_at: now,
                            },
                        )
                        .await?,
                    ),
                }
            } else {
                None
            };
            tick.expired.push(Expired {
                run_id,
                sync_name: row.try_get("name")?,
                retry,
            });
        }

        let due = sqlx::query(
            "SELECT id, workspace_id, name, schedule, policy, next_run_at FROM syncs
             WHERE next_run_at IS NOT NULL AND next_run_at <= ? AND paused_at IS NULL
             ORDER BY next_run_at, id",
        )
        .bind(&at)
        .fetch_all(&mut *tx)
        .await?;
        for row in &due {
            let sync_id: String = row.try_get("id")?;
            let name: String = row.try_get("name")?;
            let workspace: String = row.try_get("workspace_id")?;
            let (schedule, policy, due_at) = match due_terms(row, &name) {
                Ok(terms) => terms,
                Err(e) => {
                    // One sync this build cannot read must not stop every other's schedule:
                    // it is paused, saying why, and the pass goes on.
                    let reason = format!(
                        "its stored schedule cannot be read by this wharf ({e}); \
                         it may have been written by a newer version: run that version, \
                         or set the schedule again"
                    );
                    sqlx::query(
                        "UPDATE syncs SET next_run_at = NULL, paused_at = ?, pause_reason = ?
                         WHERE id = ?",
                    )
                    .bind(&at)
                    .bind(&reason)
                    .bind(&sync_id)
                    .execute(&mut *tx)
                    .await?;
                    tick.unreadable.push(Unreadable {
                        sync_name: name,
                        reason,
                    });
                    continue;
                }
            };
            // Missed due times collapse into this one: the next is after now.
            sqlx::query("UPDATE syncs SET next_run_at = ? WHERE id = ?")
                .bind(schedule.next_after(now).map(stamp))
                .bind(&sync_id)
                .execute(&mut *tx)
                .await?;
            let (running, queued) = active_runs(&mut tx, &sync_id).await?;
            match (running, queued) {
                (_, Some(_)) => {}
                (Some(running), None) if policy.overlap == wharf_domain::Overlap::Skip => {
                    tick.skipped.push(SkippedDue {
                        sync_name: name,
                        due_at,
                        running,
                    });
                }
                _ => {
                    let id = insert_queued(
                        &mut tx,
                        &NewRun {
                            workspace: &workspace,
                            sync_id: &sync_id,
                            trigger: Trigger::Schedule,
                            actor: None,
                            retry_of: None,
                            attempt: 1,
                            due_at,
                        },
                    )
                    .await?;
                    tick.queued.push(id);
                }
            }
        }

        if limit > 0 {
            // PostgreSQL: the same query with `FOR UPDATE OF r SKIP LOCKED`.
            let ready: Vec<String> = sqlx::query_scalar(
                "SELECT r.id FROM runs r JOIN syncs y ON y.id = r.sync_id
                 WHERE r.status = 'queued' AND r.due_at <= ?
                   AND (r.trigger NOT IN ('schedule', 'retry') OR y.paused_at IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.sync_id = r.sync_id
                                   AND x.status = 'running')
                 ORDER BY r.due_at, r.id LIMIT ?",
            )
            .bind(&at)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
            for run_id in ready {
                tick.claimed
                    .push(lease_run(&mut tx, &run_id, terms, now).await?);
            }
        }
        tx.commit().await?;
        Ok(tick)
    }

    /// Extends a live lease and records the run's progress. `false`: the lease is gone (it
    /// expired and the run was closed, or another attempt took the sync): the run must stop.
    pub async fn renew_lease(
        &self,
        lease: &Lease,
        now: OffsetDateTime,
        duration: time::Duration,
        rows: u64,
        bytes: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET lease_expires_at = ?, heartbeat_at = ?, rows = ?, bytes = ?
             WHERE id = ? AND lease_id = ? AND status = 'running' AND lease_expires_at >= ?",
        )
        .bind(stamp(now + duration))
        .bind(stamp(now))
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
        .bind(&lease.run_id)
        .bind(&lease.lease_id)
        .bind(stamp(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the run may commit: its lease is live for at least `margin` more, and no other
    /// attempt took a newer epoch of its sync.
    pub async fn lease_holds(
        &self,
        lease: &Lease,
        now: OffsetDateTime,
        margin: time::Duration,
    ) -> Result<bool, StoreError> {
        let holds: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM runs r JOIN syncs y ON y.id = r.sync_id
             WHERE r.id = ? AND r.lease_id = ? AND r.status = 'running' AND r.epoch = y.epoch
               AND r.lease_expires_at > ?",
        )
        .bind(&lease.run_id)
        .bind(&lease.lease_id)
        .bind(stamp(now + margin))
        .fetch_optional(&self.pool)
        .await?;
        Ok(holds.is_some())
    }

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
        if finish.succeeded && finish.snapshot {
            // The run's snapshot becomes the sync's in the step that records it succeeded,
            // under its lease: a failed or fenced run leaves the last one current.
            sqlx::query("UPDATE syncs SET snapshot_run = ? WHERE id = ?")
                .bind(&lease.run_id)
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

/// The sync's run in progress and its waiting run, if any.
async fn active_runs(
    tx: &mut sqlx::SqliteConnection,
    sync_id: &str,
) -> Result<(Option<String>, Option<String>), StoreError> {
    let rows = sqlx::query(
        "SELECT id, status FROM runs WHERE sync_id = ? AND status IN ('running', 'queued')",
    )
    .bind(sync_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut running = None;
    let mut queued = None;
    for row in &rows {
        let status: String = row.try_get("status")?;
        let id: String = row.try_get("id")?;
        if status == "running" {
            running = Some(id);
        } else {
            queued = Some(id);
        }
    }
    Ok((running, queued))
}

async fn insert_queued(
    tx: &mut sqlx::SqliteConnection,
    new: &NewRun<'_>,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO runs (id, workspace_id, sync_id, status, trigger, actor, retry_of, attempt,
             due_at, queued_at)
         VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(new.workspace)
    .bind(new.sync_id)
    .bind(new.trigger.as_str())
    .bind(new.actor)
    .bind(new.retry_of)
    .bind(i64::from(new.attempt))
    .bind(stamp(new.due_at))
    .bind(stamp(OffsetDateTime::now_utc()))
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// Turns a queued run into a running one under a new lease and the sync's next epoch.
async fn lease_run(
    tx: &mut sqlx::SqliteConnection,
    run_id: &str,
    terms: &LeaseTerms,
    now: OffsetDateTime,
) -> Result<Lease, StoreError> {
    let lease_id = uuid::Uuid::new_v4().to_string();
    let row = sqlx::query(
        "UPDATE syncs SET epoch = epoch + 1
         WHERE id = (SELECT sync_id FROM runs WHERE id = ?)
         RETURNING epoch, id, name",
    )
    .bind(run_id)
    .fetch_one(&mut *tx)
    .await?;
    let epoch: i64 = row.try_get("epoch")?;
    let sync_name: String = row.try_get("name")?;
    let row = sqlx::query(
        "UPDATE runs SET status = 'running', started_at = ?, heartbeat_at = ?, lease_id = ?,
             epoch = ?, lease_expires_at = ?, owner = ?
         WHERE id = ? AND status = 'queued'
         RETURNING workspace_id, sync_id, trigger, attempt, due_at",
    )
    .bind(stamp(now))
    .bind(stamp(now))
    .bind(&lease_id)
    .bind(epoch)
    .bind(stamp(now + terms.duration))
    .bind(&terms.owner)
    .bind(run_id)
    .fetch_one(&mut *tx)
    .await?;
    lease_from_row(&row, run_id, lease_id, epoch, sync_name, now)
}

fn lease_from_row(
    row: &SqliteRow,
    run_id: &str,
    lease_id: String,
    epoch: i64,
    sync_name: String,
    now: OffsetDateTime,
) -> Result<Lease, StoreError> {
    Ok(Lease {
        run_id: run_id.to_string(),
        lease_id,
        epoch,
        workspace: row.try_get("workspace_id")?,
        sync_id: row.try_get("sync_id")?,
        sync_name,
        trigger: Trigger::parse(&row.try_get::<String, _>("trigger")?)?,
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(1),
        due_at: parse_stamp(&row.try_get::<String, _>("due_at")?)?,
        started_at: now,
    })
}

async fn close_interrupted(
    tx: &mut sqlx::SqliteConnection,
    run_id: &str,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE runs SET status = 'failed', finished_at = ?, error_code = 'interrupted',
             error_message = ?
         WHERE id = ? AND status = 'running'",
    )
    .bind(at)
    .bind(INTERRUPTED)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The schedule stored for a sync, checked again on load.
/// A due sync's schedule, policy and due time, as stored.
fn due_terms(
    row: &SqliteRow,
    name: &str,
) -> Result<(Schedule, RunPolicy, OffsetDateTime), StoreError> {
    let record = format!("sync {name:?}");
    let schedule = schedule_from_json(&row.try_get::<String, _>("schedule")?, &record)?;
    let policy: RunPolicy = from_json(&row.try_get::<String, _>("policy")?, &record)?;
    let policy = policy.validate().map_err(|e| StoreError::Corrupt {
        record: record.clone(),
        detail: e.to_string(),
    })?;
    let due_at = parse_stamp(&row.try_get::<String, _>("next_run_at")?)?;
    Ok((schedule, policy, due_at))
}

pub(crate) fn schedule_from_json(text: &str, record: &str) -> Result<Schedule, StoreError> {
    let spec: ScheduleSpec = from_json(text, record)?;
    spec.validate().map_err(|e| StoreError::Corrupt {
        record: record.to_string(),
        detail: e.to_string(),
    })
}
