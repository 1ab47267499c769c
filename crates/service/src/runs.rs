//! Runs: trigger one, list and show them (their files, their error, the definition they ran),
//! and plan what a run would write.

use crate::{Caller, ErrorKind, Page, PageRequest, Role, Service, ServiceError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use wharf_runner::Claim;
use wharf_store::{Enqueued, NewRun, RunFilter, RunRecord, StoreError};

pub use wharf_store::Trigger;

pub use wharf_runner::{PlanReport, RunOutcome, RunProgress};

/// A run as every interface shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub run_id: String,
    pub sync: String,
    /// `queued`, `running`, `succeeded`, `failed`, `interrupted` (its process stopped) or
    /// `cancelled`.
    pub status: &'static str,
    /// What asked for it: `schedule`, `manual` (the command line), `retry`, `api` or `ui`.
    pub trigger: &'static str,
    /// Who asked (manual, api and ui runs): a token's or a user's name, `cli`.
    pub actor: Option<String>,
    /// 1 for a first attempt; 2, 3... for retries.
    pub attempt: u32,
    /// The failed run this one retries.
    pub retry_of: Option<String>,
    /// The logical run this attempt belongs to: the first attempt's id (its own for a first
    /// attempt). A retry continues it: its keys and manifest carry this id, and the files an
    /// earlier attempt committed are kept (`carried_from`), not written again.
    pub logical_run: String,
    /// The sync's fencing epoch the run's lease took (none while queued).
    pub epoch: Option<i64>,
    /// The wharf process that ran it: `host:pid`.
    pub owner: Option<String>,
    /// When it was due: its scheduled time, its trigger's, or the end of a retry's backoff.
    pub due_at: String,
    pub queued_at: String,
    /// None while it waits in the queue.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub rows: u64,
    pub bytes: u64,
    /// The data files, in order.
    pub files: Vec<RunFileView>,
    /// The manifest's key, when the run wrote one.
    pub manifest: Option<String>,
    pub error: Option<RunErrorView>,
    /// This run's failure paused its sync (its `pause_after` was reached): the reason. The
    /// sync runs on its schedule again once resumed.
    pub paused_sync: Option<String>,
    /// The sync's mode: `all`, `insert`, `diff` or `delta`.
    pub mode: &'static str,
    /// How the result compared with the last snapshot (null for `all`).
    #[schema(value_type = Option<Object>)]
    pub changes: Option<wharf_domain::ChangeCounts>,
    /// The sync and model as they were when the run started (`runs show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunFileView {
    /// Part number, from 0.
    #[serde(skip)]
    pub part: i64,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub checksum: String,
    pub request_id: Option<String>,
    /// The earlier attempt of the same logical run that wrote the file (this attempt kept it).
    pub carried_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunErrorView {
    pub code: String,
    pub message: String,
}

impl RunView {
    fn new(r: &RunRecord, with_definition: bool) -> Self {
        Self {
            run_id: r.id.clone(),
            sync: r.sync_name.clone(),
            status: r
                .status
                .shown(r.error.as_ref().map(|(code, _)| code.as_str())),
            trigger: r.trigger.as_str(),
            actor: r.actor.clone(),
            attempt: r.attempt,
            retry_of: r.retry_of.clone(),
            logical_run: r.logical_run.clone(),
            epoch: r.epoch,
            owner: r.owner.clone(),
            due_at: r.due_at.clone(),
            queued_at: r.queued_at.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            rows: r.rows,
            bytes: r.bytes,
            files: r
                .files
                .iter()
                .filter(|f| f.part >= 0)
                .map(|f| RunFileView {
                    part: f.part,
                    key: f.key.clone(),
                    rows: f.rows,
                    bytes: f.bytes,
                    checksum: f.checksum.clone(),
                    request_id: f.request_id.clone(),
                    carried_from: f.carried_from.clone(),
                })
                .collect(),
            manifest: r.files.iter().find(|f| f.part < 0).map(|f| f.key.clone()),
            error: r.error.as_ref().map(|(code, message)| RunErrorView {
                code: code.clone(),
                message: message.clone(),
            }),
            paused_sync: r.paused_sync.clone(),
            mode: r.mode.as_str(),
            changes: r.changes,
            definition: with_definition
                .then(|| {
                    r.definition
                        .as_deref()
                        .and_then(|d| serde_json::from_str(d).ok())
                })
                .flatten(),
        }
    }
}

/// The statuses a run can be shown with.
pub const RUN_STATUSES: &[&str] = &[
    "queued",
    "running",
    "succeeded",
    "failed",
    "interrupted",
    "cancelled",
];

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub sync: Option<String>,
    /// One of [`RUN_STATUSES`].
    pub status: Option<String>,
    pub page: PageRequest,
}

/// The runs this process started in the background, so that shutting down can interrupt them
/// and wait for them to record it.
#[derive(Default)]
pub(crate) struct InFlight {
    runs: Mutex<HashMap<u64, Arc<RunProgress>>>,
    next: AtomicU64,
    closed: AtomicBool,
    idle: Notify,
}

impl InFlight {
    pub(crate) fn add(&self, progress: Arc<RunProgress>) -> Option<u64> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        runs.insert(id, progress);
        Some(id)
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.remove(&id);
        if runs.is_empty() {
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The progress of run `run_id`, while this process runs it.
    pub(crate) fn find(&self, run_id: &str) -> Option<Arc<RunProgress>> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.values()
            .find(|p| p.started().borrow().as_deref() == Some(run_id))
            .cloned()
    }

    /// Whether shutting down has begun: no more runs start.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Service {
    /// The latest runs, newest first, of one sync or of all.
    pub async fn runs(
        &self,
        caller: &Caller,
        sync: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunView>, ServiceError> {
        let query = RunQuery {
            sync: sync.map(str::to_string),
            status: None,
            page: PageRequest {
                cursor: None,
                limit: Some(limit),
            },
        };
        Ok(self.runs_page(caller, &query).await?.items)
    }

    /// A page of runs, newest first.
    pub async fn runs_page(
        &self,
        caller: &Caller,
        query: &RunQuery,
    ) -> Result<Page<RunView>, ServiceError> {
        if let Some(status) = &query.status
            && !RUN_STATUSES.contains(&status.as_str())
        {
            return Err(ServiceError::bad_input(
                "status",
                format!(
                    "status {status:?} is not one of {}",
                    RUN_STATUSES.join(", ")
                ),
            ));
        }
        let limit = query.page.limit()?;
        let before = query.page.after()?;
        let runs = self
            .store
            .list_runs(
                &caller.workspace,
                &RunFilter {
                    sync: query.sync.as_deref(),
                    status: query.status.as_deref(),
                    before: before.as_deref(),
                    limit: limit + 1,
                },
            )
            .await?;
        query
            .page
            .cut(runs.iter().map(|r| RunView::new(r, false)).collect(), |r| {
                r.run_id.clone()
            })
    }

    /// One run, with the definition it ran.
    pub async fn run(&self, caller: &Caller, run_id: &str) -> Result<RunView, ServiceError> {
        let run = self.store.run(&caller.workspace, run_id).await?;
        Ok(RunView::new(&run, true))
    }

    /// What a run of the sync would write now, without writing anything.
    pub async fn plan(&self, caller: &Caller, sync: &str) -> Result<PlanReport, ServiceError> {
        Ok(wharf_runner::plan(
            &self.store,
            &caller.workspace,
            sync,
            &self.settings.runner(),
        )
        .await?)
    }

    /// Asks for a run of the sync through the scheduler's queue and returns its id at once.
    /// By the sync's overlap policy, a run in progress makes this a conflict (`skip`) or
    /// queues the run behind it (`queue`); a run already waiting is returned rather than
    /// doubled. The scheduler of this process (or any other on the store) starts it.
    pub async fn trigger_run(
        &self,
        caller: &Caller,
        sync: &str,
        trigger: Trigger,
    ) -> Result<String, ServiceError> {
        let object = sync.to_string();
        self.audited(caller, "trigger", "sync", &object, async {
            caller.require(Role::Editor)?;
            if self.in_flight.is_closed() {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    "server.shutting_down",
                    "wharf is shutting down and starts no more runs; try again once it is back",
                ));
            }
            let record = self.store.sync(&caller.workspace, sync).await?;
            let actor = caller.actor_name();
            let queued = self
                .store
                .enqueue_run(&NewRun {
                    workspace: &caller.workspace,
                    sync_id: &record.id,
                    trigger,
                    actor: Some(&actor),
                    retry_of: None,
                    attempt: 1,
                    due_at: OffsetDateTime::now_utc(),
                })
                .await?;
            match queued {
                Enqueued::Queued(id) | Enqueued::AlreadyQueued(id) => {
                    self.wake.notify_one();
                    Ok(id)
                }
                Enqueued::Busy { running } => Err(StoreError::RunInProgress {
                    sync: record.name,
                    run_id: running,
                }
                .into()),
            }
        })
        .await
    }

    /// Interrupts every run this process started in the background and starts no more; waits
    /// up to `within` for them to abort their uploads and record it. Returns how many were
    /// still going at the end (0: all recorded).
    pub async fn interrupt_runs(&self, within: Duration) -> usize {
        let in_flight = &self.in_flight;
        let idle = in_flight.idle.notified();
        tokio::pin!(idle);
        idle.as_mut().enable();
        let progresses: Vec<Arc<RunProgress>> = {
            let runs = in_flight.runs.lock().unwrap_or_else(|p| p.into_inner());
            in_flight.closed.store(true, Ordering::SeqCst);
            runs.values().cloned().collect()
        };
        if progresses.is_empty() {
            return 0;
        }
        tracing::warn!(runs = progresses.len(), "interrupting runs in progress");
        for progress in &progresses {
            progress.interrupt();
        }
        let _ = tokio::time::timeout(within, idle).await;
        in_flight.count()
    }

    /// Runs the sync now, in this process, to the end. `progress` is updated as it goes, and
    /// cancels the run when cancelled (its upload is aborted, the run recorded `cancelled`).
    /// While another run of the sync is in progress this is a conflict, or (overlap policy
    /// `queue`) waits for it to end.
    pub async fn run_sync(
        &self,
        caller: &Caller,
        sync: &str,
        progress: Arc<RunProgress>,
    ) -> Result<RunOutcome, ServiceError> {
        let object = sync.to_string();
        self.audited(caller, "run", "sync", &object, async {
            caller.require(Role::Editor)?;
            let runner = self.settings.runner();
            let actor = caller.actor_name();
            let claim = wharf_runner::claim_now(
                &self.store,
                &caller.workspace,
                sync,
                &runner,
                Trigger::Manual,
                Some(&actor),
            )
            .await?;
            match claim {
                Claim::Now(claimed) => Ok(self.execute_claimed(claimed, progress).await),
                Claim::Waiting { run_id } => self.wait_then_run(caller, &run_id, progress).await,
            }
        })
        .await
    }

    /// Waits for a queued run to become claimable and runs it; if another process claims it
    /// first, follows that run to its end.
    async fn wait_then_run(
        &self,
        caller: &Caller,
        run_id: &str,
        progress: Arc<RunProgress>,
    ) -> Result<RunOutcome, ServiceError> {
        tracing::info!(run = %run_id, "queued behind the sync's run in progress; waiting");
        let mut stop = progress.stopped_signal();
        let terms = self.settings.lease.terms();
        loop {
            tokio::select! {
                _ = stop.wait_for(Option::is_some) => {
                    self.store.cancel_queued(run_id).await?;
                    let record = self.store.run(&caller.workspace, run_id).await?;
                    return Ok(outcome_of(&record));
                }
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if let Some(lease) = self
                .store
                .claim_run(run_id, &terms, OffsetDateTime::now_utc())
                .await?
            {
                return Ok(self
                    .execute_claimed(wharf_runner::Claimed::from_lease(lease), progress)
                    .await);
            }
            let record = self.store.run(&caller.workspace, run_id).await?;
            if record.finished_at.is_some() {
                return Ok(outcome_of(&record));
            }
        }
    }
}

/// A run's outcome, from its record (a run another process executed).
fn outcome_of(r: &RunRecord) -> RunOutcome {
    let millis = |t: &Option<String>| {
        t.as_deref().and_then(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let duration_ms = match (millis(&r.started_at), millis(&r.finished_at)) {
        (Some(a), Some(b)) => u64::try_from((b - a).whole_milliseconds()).unwrap_or(0),
        _ => 0,
    };
    RunOutcome {
        run_id: r.id.clone(),
        status: r.status.shown(r.error.as_ref().map(|(c, _)| c.as_str())),
        rows: r.rows,
        bytes: r.bytes,
        files: r
            .files
            .iter()
            .filter(|f| f.part >= 0)
            .map(|f| wharf_runner::FileOutcome {
                key: f.key.clone(),
                rows: f.rows,
                bytes: f.bytes,
                checksum: f.checksum.clone(),
                carried_from: f.carried_from.clone(),
            })
            .collect(),
        duration_ms,
        error: r
            .error
            .as_ref()
            .map(|(code, message)| wharf_runner::RunFailure {
                code: code.clone(),
                message: message.clone(),
            }),
        manifest: r.files.iter().find(|f| f.part < 0).map(|f| f.key.clone()),
        mode: r.mode.as_str(),
        changes: r.changes,
    }
}
