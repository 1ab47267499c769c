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
use crate::catalog::from_json;
use crate::error::StoreError;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use wharf_domain::{RunPolicy, Schedule, ScheduleSpec};

mod finish;
mod sync_state;

pub use finish::{Finish, Finished};

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
    /// The logical run this attempt belongs to: its first attempt's id (its own for a first
    /// attempt). Keys, the manifest and the change set are the logical run's.
    pub logical_run: String,
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
}

/// The sync's run in progress and its waiting run, if any.
pub(super) async fn active_runs(
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

pub(super) async fn insert_queued(
    tx: &mut sqlx::SqliteConnection,
    new: &NewRun<'_>,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO runs (id, workspace_id, sync_id, status, trigger, actor, retry_of, attempt,
             due_at, queued_at, logical_run)
         VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?,
                 COALESCE((SELECT logical_run FROM runs WHERE id = ?), ?))",
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
    .bind(new.retry_of)
    .bind(&id)
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
         RETURNING workspace_id, sync_id, trigger, attempt, due_at, logical_run",
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
        logical_run: row
            .try_get::<Option<String>, _>("logical_run")?
            .unwrap_or_else(|| run_id.to_string()),
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
