//! The scheduler's decisions: which runs are due, claiming them under a lease, starting them
//! within the bound on runs in flight, recording how each ended and what follows (a retry, a
//! pause), and closing the runs of processes that died.
//!
//! [`Service::run_scheduler`] is the loop `wharf serve` and `wharf worker` run: it sleeps until
//! the earliest due time, a change of schedule, a new trigger or the end of a run, then makes
//! one pass ([`Service::scheduler_pass`]). Each pass is one store transaction (see
//! `wharf_store::Store::scheduler_tick`), so several processes on one store never claim the
//! same run. Tests drive passes on a clock of their own.

pub mod retry;

use crate::metrics::RunEnded;
use crate::{Service, ServiceError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use wharf_runner::{Claimed, Executed, RunOutcome, RunProgress};
use wharf_store::{Finish, Lease, RunStatus, StoreError, Tick};

/// The longest the loop sleeps without looking at the store (other processes may change
/// schedules; their triggers do not wake this one).
const MAX_SLEEP: Duration = Duration::from_secs(15);

impl Service {
    /// Runs the scheduler until `shutdown` completes. Runs it started go on; the caller
    /// interrupts them (see [`Service::interrupt_runs`]).
    pub async fn run_scheduler(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!(
            max_concurrent_runs = self.settings.max_concurrent_runs,
            owner = %self.settings.lease.owner,
            "scheduler started"
        );
        loop {
            let wake = self.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let now = OffsetDateTime::now_utc();
            let free = self
                .settings
                .max_concurrent_runs
                .saturating_sub(self.in_flight.count());
            match self.scheduler_pass(now, free).await {
                Ok(tick) => {
                    for lease in tick.claimed {
                        self.start_claimed(lease);
                    }
                }
                Err(e) => tracing::error!("scheduler pass failed: {e}"),
            }
            let sleep = match self.store.next_wake().await {
                Ok(Some(at)) => {
                    let wait = at - OffsetDateTime::now_utc();
                    Duration::try_from(wait)
                        .unwrap_or(Duration::ZERO)
                        .min(MAX_SLEEP)
                }
                Ok(None) => MAX_SLEEP,
                Err(e) => {
                    tracing::warn!("scheduler: cannot read the next due time: {e}");
                    MAX_SLEEP
                }
            };
            // A due time that has come but cannot start (no free slot, its sync busy) is
            // looked at again when a run ends (which wakes this loop), or at the latest soon.
            let sleep = sleep.max(Duration::from_millis(if free == 0 { 1_000 } else { 50 }));
            tokio::select! {
                () = &mut shutdown => break,
                () = &mut wake => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
        tracing::info!("scheduler stopped");
    }

    /// One pass of the scheduler at `now`: closes the runs of dead processes (retrying them
    /// under their policy), queues due schedules and claims up to `free` runs, which the caller
    /// starts. Public for tests on a controlled clock.
    pub async fn scheduler_pass(
        &self,
        now: OffsetDateTime,
        free: usize,
    ) -> Result<Tick, ServiceError> {
        self.reap_dead_runs(now).await;
        let tick = self
            .store
            .scheduler_tick(&self.settings.lease.terms(), now, free)
            .await?;
        for expired in &tick.expired {
            tracing::warn!(
                run = %expired.run_id,
                sync = %expired.sync_name,
                retry = ?expired.retry,
                "closed a run whose process stopped or stalled past its lease"
            );
        }
        for unreadable in &tick.unreadable {
            tracing::error!(
                sync = %unreadable.sync_name,
                "paused a sync whose schedule cannot be read: {}",
                unreadable.reason
            );
        }
        for skipped in &tick.skipped {
            tracing::info!(
                sync = %skipped.sync_name,
                due = %wharf_store::stamp(skipped.due_at),
                running = %skipped.running,
                "skipped a due time: the sync was still running (overlap policy skip)"
            );
        }
        Ok(tick)
    }

    /// Marks the leases of runs on this machine whose process died (their sync's run lock is
    /// free) as expired, so the next tick closes them at once rather than when the lease runs
    /// out.
    async fn reap_dead_runs(&self, now: OffsetDateTime) {
        let running = match self.store.running_runs(None).await {
            Ok(running) => running,
            Err(e) => {
                tracing::warn!("scheduler: cannot list runs in progress: {e}");
                return;
            }
        };
        let runner = self.settings.runner();
        for run in running {
            // Only this machine's processes hold locks this one can see.
            if wharf_runner::owner_is_gone(&self.settings.lease.owner, &run, now)
                && wharf_runner::is_dead(&runner, &run.sync_id)
            {
                tracing::warn!(run = %run.run_id, "the process running this run is gone");
                if let Err(e) = self.store.expire_lease(&run.run_id).await {
                    tracing::warn!("scheduler: cannot close run {}: {e}", run.run_id);
                }
            }
        }
    }

    /// Starts a claimed run in the background, counted among the runs in flight; the loop is
    /// woken when it ends.
    pub fn start_claimed(&self, lease: Lease) {
        let progress = self.new_progress();
        let Some(slot) = self.in_flight.add(progress.clone()) else {
            // Shutting down: back in the queue, for another process or the next start.
            tracing::info!(run = %lease.run_id, "not starting a claimed run: shutting down");
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.release_claim(&lease).await {
                    tracing::warn!(run = %lease.run_id, "cannot put the run back in the queue: {e}");
                }
            });
            return;
        };
        let service = self.clone();
        tokio::spawn(async move {
            let _ = service
                .execute_claimed(Claimed::from_lease(lease), progress)
                .await;
            service.in_flight.remove(slot);
            service.wake.notify_one();
        });
    }

    /// Runs a claimed run to its end in this task (tests on a controlled clock run the runs of
    /// a pass one by one).
    pub async fn run_claimed(&self, lease: Lease) -> RunOutcome {
        self.execute_claimed(Claimed::from_lease(lease), self.new_progress())
            .await
    }

    /// Executes a claimed run and records its end and what follows.
    pub(crate) async fn execute_claimed(
        &self,
        claimed: Claimed,
        progress: Arc<RunProgress>,
    ) -> RunOutcome {
        let lease = &claimed.lease;
        let lag = lease.started_at - lease.due_at;
        self.metrics.run_started(
            lease.trigger.as_str(),
            Duration::try_from(lag).unwrap_or(Duration::ZERO),
        );
        let executed =
            wharf_runner::leased::execute(&self.store, claimed, &self.settings.runner(), progress)
                .await;
        self.finish(executed).await
    }

    /// Records a run's end under its lease, with the retry or pause its failure calls for.
    async fn finish(&self, executed: Executed) -> RunOutcome {
        let lease = executed.lease.clone();
        let now = OffsetDateTime::now_utc();
        let policy = match self.store.sync(&lease.workspace, &lease.sync_name).await {
            Ok(sync) => sync.policy,
            Err(_) => wharf_domain::RunPolicy::default(),
        };
        let followup = retry::decide(
            lease.trigger,
            lease.attempt,
            &policy,
            executed.failure.as_ref(),
            now,
            unit_random(),
        );
        let status = if executed.failure.is_none() {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        let code = executed.failure.as_ref().map(|f| f.code.clone());
        let shown = status.shown(code.as_deref());
        let took = executed.duration;
        let snapshot = executed.snapshot.clone();
        let mut outcome = executed.outcome(shown);
        let finish = Finish {
            succeeded: outcome.error.is_none(),
            rows: outcome.rows,
            bytes: outcome.bytes,
            error: outcome
                .error
                .as_ref()
                .map(|f| (f.code.as_str(), f.message.as_str())),
            retry_at: followup.retry_at,
            counts_towards_pause: followup.counts_towards_pause,
            mode: wharf_domain::SyncMode::parse(outcome.mode).unwrap_or_default(),
            changes: outcome.changes,
            snapshot: snapshot.clone(),
        };
        let recorded = self
            .store
            .finish_leased_run_alerting(&lease, &finish, |finished| {
                crate::alerts::run_alerts(&lease, &outcome, finished)
            })
            .await;
        match recorded {
            Ok(finished) => {
                if let Some(current) = snapshot.as_deref().filter(|_| finish.succeeded) {
                    wharf_runner::changes::keep_only(
                        &self.settings.runner(),
                        &lease.sync_id,
                        current,
                    );
                }
                match &outcome.error {
                    None => tracing::info!(
                        run = %lease.run_id,
                        rows = finish.rows,
                        bytes = finish.bytes,
                        "run succeeded"
                    ),
                    Some(f) => tracing::warn!(
                        run = %lease.run_id,
                        code = %f.code,
                        retry = ?finished.retry,
                        "run failed: {}",
                        f.message
                    ),
                }
                if let Some(reason) = &finished.paused {
                    tracing::warn!(sync = %lease.sync_name, "sync paused: {reason}");
                }
                if finished.retry.is_some() || finished.paused.is_some() {
                    self.wake.notify_one();
                }
                if finished.alerts_queued > 0 {
                    tracing::info!(sync = %lease.sync_name, queued = finished.alerts_queued, "alerts queued");
                    self.alerts_wake.notify_one();
                }
                self.metrics.run_ended(&RunEnded {
                    workspace: &lease.workspace,
                    sync: &lease.sync_name,
                    status: shown,
                    rows: finish.rows,
                    bytes: finish.bytes,
                    took,
                    error_code: code.as_deref(),
                    retried: finished.retry.is_some(),
                });
                outcome
            }
            Err(StoreError::Fenced { .. }) => {
                tracing::warn!(
                    run = %lease.run_id,
                    "the run lost its lease to another attempt; its end is not recorded"
                );
                outcome.status = "failed";
                outcome.error = Some(wharf_runner::RunFailure {
                    code: "lease_lost".into(),
                    message: "the run stalled past its lease and another attempt took its sync over; it recorded nothing".into(),
                });
                outcome
            }
            Err(e) => {
                tracing::error!(run = %lease.run_id, "cannot record the end of the run: {e}");
                outcome
            }
        }
    }
}

/// A uniform draw in [0, 1) for the backoff's jitter.
fn unit_random() -> f64 {
    let bits = getrandom::u64().unwrap_or(0) >> 11;
    bits as f64 / (1u64 << 53) as f64
}
