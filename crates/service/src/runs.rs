//! Runs: trigger one, list and show them (their files, their error, the definition they ran),
//! and plan what a run would write.

use crate::{Caller, ErrorKind, Page, PageRequest, Role, Service, ServiceError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use wharf_store::{RunFilter, RunRecord};

pub use wharf_runner::{PlanReport, RunOutcome, RunProgress};

/// A run as every interface shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub run_id: String,
    pub sync: String,
    /// `queued`, `running`, `succeeded`, `failed`, `interrupted` (its process stopped) or
    /// `cancelled`.
    pub status: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub rows: u64,
    pub bytes: u64,
    /// The data files, in order.
    pub files: Vec<RunFileView>,
    /// The manifest's key, when the run wrote one.
    pub manifest: Option<String>,
    pub error: Option<RunErrorView>,
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
                })
                .collect(),
            manifest: r.files.iter().find(|f| f.part < 0).map(|f| f.key.clone()),
            error: r.error.as_ref().map(|(code, message)| RunErrorView {
                code: code.clone(),
                message: message.clone(),
            }),
            definition: with_definition
                .then(|| serde_json::from_str(&r.definition).unwrap_or_default()),
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
    fn add(&self, progress: Arc<RunProgress>) -> Option<u64> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        runs.insert(id, progress);
        Some(id)
    }

    fn remove(&self, id: u64) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.remove(&id);
        if runs.is_empty() {
            self.idle.notify_waiters();
        }
    }

    fn count(&self) -> usize {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).len()
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

    /// Starts a run of the sync in the background and returns its id once it is recorded.
    /// What keeps it from starting (no such sync, one already running) is this call's error;
    /// what happens after is the run's record.
    pub async fn trigger_run(&self, caller: &Caller, sync: &str) -> Result<String, ServiceError> {
        caller.require(Role::Editor)?;
        self.store.sync(&caller.workspace, sync).await?;
        let progress = Arc::new(RunProgress::default());
        let mut started = progress.started();
        let Some(slot) = self.in_flight.add(progress.clone()) else {
            return Err(ServiceError::new(
                ErrorKind::Conflict,
                "server.shutting_down",
                "wharf is shutting down and starts no more runs; try again once it is back",
            ));
        };
        let service = self.clone();
        let caller = caller.clone();
        let sync = sync.to_string();
        let mut task = tokio::spawn(async move {
            let result = service.run_sync(&caller, &sync, progress).await;
            service.in_flight.remove(slot);
            result
        });
        let announced = tokio::select! {
            announced = started.wait_for(Option::is_some) => {
                announced.ok().and_then(|id| id.clone())
            }
            result = &mut task => return finished(result),
        };
        match announced {
            Some(run_id) => Ok(run_id),
            // The run ended (and dropped its progress) before it was recorded.
            None => finished(task.await),
        }
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

    /// Runs the sync now, to the end. `progress` is updated as it goes, and cancels the run
    /// when cancelled (its upload is aborted, the run recorded `cancelled`).
    pub async fn run_sync(
        &self,
        caller: &Caller,
        sync: &str,
        progress: Arc<RunProgress>,
    ) -> Result<RunOutcome, ServiceError> {
        let object = sync.to_string();
        self.audited(caller, "run", "sync", &object, async {
            caller.require(Role::Editor)?;
            Ok(wharf_runner::run_sync(
                &self.store,
                &caller.workspace,
                sync,
                &self.settings.runner(),
                progress,
            )
            .await?)
        })
        .await
    }
}

/// What a background run that ended before it was announced comes to: its id, or why it
/// could not start.
fn finished(
    result: Result<Result<RunOutcome, ServiceError>, tokio::task::JoinError>,
) -> Result<String, ServiceError> {
    match result {
        Ok(Ok(outcome)) => Ok(outcome.run_id),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(ServiceError::internal(
            "run.crashed",
            format!("the run stopped before it was recorded: {e}"),
        )),
    }
}
