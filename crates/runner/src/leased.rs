//! A run under a lease: claiming one now (for `wharf sync run`), and executing a claimed run
//! while renewing its lease, committing only while it holds.
//!
//! The scheduler (in `service`) claims runs in batches; the command line claims its own. Either
//! way the run ends here as an [`Executed`]: what it wrote and why it stopped. Recording its end,
//! and deciding what follows (a retry, a pause), is the caller's: those are the service's rules.

use crate::progress::{RunProgress, Stop};
use crate::run_lock::{Acquired, RunLock};
use crate::{FileOutcome, RunFailure, RunOutcome, RunnerError, RunnerSettings, SyncContext};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use wharf_domain::{ChangeCounts, SyncMode};
use wharf_store::{Enqueued, Lease, LeaseTerms, NewRun, Store, Trigger};

/// The leases this process takes: how long they last, how often they are renewed, and how much
/// of one must remain for a run to commit.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// `host:pid`.
    pub owner: String,
    pub duration: time::Duration,
    pub renew_every: Duration,
    /// A commit (the Complete of a file, the manifest) needs the lease to hold this much
    /// longer: it must land before another process could take the sync over.
    pub commit_margin: time::Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Self {
            owner: format!("{host}:{}", std::process::id()),
            duration: time::Duration::seconds(60),
            renew_every: Duration::from_secs(5),
            commit_margin: time::Duration::seconds(10),
        }
    }
}

impl LeaseSettings {
    pub fn terms(&self) -> LeaseTerms {
        LeaseTerms {
            owner: self.owner.clone(),
            duration: self.duration,
        }
    }
}

/// A run this process holds: its lease, and its sync's run lock when it could take it.
pub struct Claimed {
    pub lease: Lease,
    lock: Option<RunLock>,
}

impl Claimed {
    /// A run the scheduler claimed; its lock is taken when it starts.
    pub fn from_lease(lease: Lease) -> Self {
        Self { lease, lock: None }
    }
}

/// What asking to run a sync now came to.
pub enum Claim {
    /// This process holds the run: execute it.
    Now(Claimed),
    /// The run waits behind the sync's run in progress (overlap policy `queue`).
    Waiting { run_id: String },
}

/// How long a run of a sync that another process may just have claimed (and not yet locked) is
/// spared when its lock looks free.
const CLAIM_GRACE: time::Duration = time::Duration::seconds(10);

/// Whether the process holding a running run is gone, for a caller that found the run's sync
/// lock free: the run is this machine's, and its process no longer exists (or it started more
/// than [`CLAIM_GRACE`] ago, so its process would hold the lock by now). A run of another
/// machine is never judged here: its lease tells.
pub fn owner_is_gone(me: &str, run: &wharf_store::RunningRun, now: OffsetDateTime) -> bool {
    let host = |owner: &str| owner.rsplit_once(':').map(|(h, _)| h.to_string());
    let Some(owner) = run.owner.as_deref() else {
        // Written before leases had owners: the lock is all there is to go by.
        return true;
    };
    // Another machine's runs are judged by their leases; this process's own by itself (it
    // ends them, or its lease runs out).
    if host(owner) != host(me) || owner == me {
        return false;
    }
    let pid_gone = owner
        .rsplit_once(':')
        .and_then(|(_, pid)| pid.parse::<u32>().ok())
        .is_some_and(|pid| {
            pid != std::process::id()
                && std::path::Path::new("/proc/self").exists()
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
    pid_gone || run.started_at < now - CLAIM_GRACE
}

/// Queues a run of the sync and claims it at once, for a caller that runs it itself.
pub async fn claim_now(
    store: &Store,
    workspace: &str,
    sync_name: &str,
    settings: &RunnerSettings,
    trigger: Trigger,
    actor: Option<&str>,
) -> Result<Claim, RunnerError> {
    let sync = store.sync(workspace, sync_name).await?;
    // Held while the run lasts: while it is, this run is alive (see `run_lock`).
    let (lock, pid) = match RunLock::try_acquire(&settings.locks_dir, &sync.id) {
        Ok(Acquired::Held(lock)) => {
            // No live process on this machine holds the sync's lock: a `running` record of this
            // machine's is a dead one (see `owner_is_gone` for the moment after a claim).
            for run in store.running_runs(Some(&sync.id)).await? {
                if owner_is_gone(&settings.lease.owner, &run, OffsetDateTime::now_utc())
                    && store.close_dead_run(&run.run_id).await?
                {
                    tracing::warn!(
                        sync = %sync.name,
                        run = %run.run_id,
                        "closed a run whose process had stopped; its uploads are aborted now"
                    );
                }
            }
            (Some(lock), None)
        }
        Ok(Acquired::Busy { pid }) => (None, pid),
        // No lock (a read-only or odd file system): the lease still tells, later.
        Err(e) => {
            tracing::warn!(
                "cannot take the run lock in {}: {e}",
                settings.locks_dir.display()
            );
            (None, None)
        }
    };
    let now = OffsetDateTime::now_utc();
    let queued = store
        .enqueue_run(&NewRun {
            workspace,
            sync_id: &sync.id,
            trigger,
            actor,
            retry_of: None,
            attempt: 1,
            due_at: now,
        })
        .await?;
    let run_id = match queued {
        Enqueued::Busy { running } => {
            return Err(RunnerError::Busy {
                sync: sync.name,
                run_id: Some(running),
                pid,
            });
        }
        Enqueued::Queued(id) | Enqueued::AlreadyQueued(id) => id,
    };
    match store
        .claim_run(&run_id, &settings.lease.terms(), now)
        .await?
    {
        Some(lease) => Ok(Claim::Now(Claimed { lease, lock })),
        None => Ok(Claim::Waiting { run_id }),
    }
}

/// A claimed run, executed: what it wrote, and why it stopped if it did not succeed. Nothing
/// of its end is recorded yet.
pub struct Executed {
    pub lease: Lease,
    pub files: Vec<FileOutcome>,
    /// The manifest's key, when one was written.
    pub manifest: Option<String>,
    pub failure: Option<RunFailure>,
    pub duration: Duration,
    /// The sync's mode, and how its result compared with the last snapshot (not for `all`).
    pub mode: SyncMode,
    pub changes: Option<ChangeCounts>,
    /// The snapshot the run compared into (its folder), to become the sync's if the run is
    /// recorded succeeded.
    pub snapshot: Option<String>,
}

impl Executed {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// The outcome as `sync run --json` prints it, with the status its record got.
    pub fn outcome(self, status: &'static str) -> RunOutcome {
        RunOutcome {
            run_id: self.lease.run_id.clone(),
            status,
            rows: self.rows(),
            bytes: self.bytes(),
            duration_ms: u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            files: self.files,
            error: self.failure,
            manifest: self.manifest,
            mode: self.mode.as_str(),
            changes: self.changes,
        }
    }
}

/// Executes a claimed run: loads its sync, renews its lease as it goes (a lost lease stops it),
/// and commits each file and the manifest only while the lease holds.
pub async fn execute(
    store: &Store,
    claimed: Claimed,
    settings: &RunnerSettings,
    progress: Arc<RunProgress>,
) -> Executed {
    let started = Instant::now();
    let Claimed { lease, lock } = claimed;
    let fail = |lease: Lease, f: RunFailure| Executed {
        lease,
        files: Vec::new(),
        manifest: None,
        failure: Some(f),
        duration: started.elapsed(),
        mode: SyncMode::All,
        changes: None,
        snapshot: None,
    };
    let ctx = match SyncContext::load(store, &lease.workspace, &lease.sync_name).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(lease, crate::failure(e.code(), e)),
    };
    let _lock = lock.or_else(|| match RunLock::try_acquire(&settings.locks_dir, &lease.sync_id) {
        Ok(Acquired::Held(lock)) => Some(lock),
        Ok(Acquired::Busy { pid }) => {
            // A process on this machine still runs an older attempt (it stalled past its
            // lease): its commits are fenced off, this attempt goes on.
            tracing::warn!(sync = %lease.sync_name, ?pid, "an older attempt of this sync is still alive");
            None
        }
        Err(_) => None,
    });
    let attempt = match crate::attempt::Attempt::begin(store, lease.clone(), &ctx).await {
        Ok(attempt) => attempt,
        Err(e) => return fail(lease, crate::failure(e.code(), e)),
    };
    let lease = attempt.lease.clone();
    if let Err(e) = store
        .set_run_definition(&lease.run_id, &ctx.definition(attempt.started_at))
        .await
    {
        return fail(lease, crate::failure("store.error", e));
    }
    tracing::info!(run = %lease.run_id, sync = %lease.sync_name, trigger = lease.trigger.as_str(), attempt = lease.attempt, "run started");
    progress.announce(&lease.run_id);
    // Stopped when this function returns or unwinds: a run that panicked lets its lease run out.
    let renewal = AbortOnDrop(spawn_renewal(
        store.clone(),
        lease.clone(),
        settings.lease.clone(),
        progress.clone(),
    ));
    let gate = Arc::new(crate::journal::LeaseGate {
        store: store.clone(),
        lease: lease.clone(),
        margin: settings.lease.commit_margin,
    });
    let result = crate::execute(store, &ctx, &attempt, settings, progress, gate).await;
    drop(renewal);
    let (files, manifest, changes, snapshot, failure) = match result {
        Ok(done) => (done.files, done.manifest, done.changes, done.snapshot, None),
        Err((files, failure)) => (files, None, None, None, Some(failure)),
    };
    Executed {
        lease,
        files,
        manifest,
        failure,
        duration: started.elapsed(),
        mode: ctx.sync.settings.mode,
        snapshot,
        changes,
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every `renew_every`; when it is gone, stops the run (`lease_lost`).
fn spawn_renewal(
    store: Store,
    lease: Lease,
    settings: LeaseSettings,
    progress: Arc<RunProgress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.renew_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let rows = progress.rows.load(Ordering::Relaxed);
            let bytes = progress.upload.bytes.load(Ordering::Relaxed);
            match store
                .renew_lease(
                    &lease,
                    OffsetDateTime::now_utc(),
                    settings.duration,
                    rows,
                    bytes,
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(run = %lease.run_id, "the run lost its lease; stopping it");
                    progress.stop_with(Stop::LeaseLost);
                    return;
                }
                Err(e) => tracing::warn!(run = %lease.run_id, "cannot renew the lease: {e}"),
            }
        }
    })
}
