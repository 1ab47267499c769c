//! Runs: trigger one, list and show them (their files, their error, the definition they ran),
//! and plan what a run would write.

use crate::{Caller, Role, Service, ServiceError};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use wharf_store::RunRecord;

pub use wharf_runner::{PlanReport, RunOutcome, RunProgress};

/// A run as every interface shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub run_id: String,
    pub sync: String,
    /// `running`, `succeeded`, `failed`, `interrupted` or `cancelled`.
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
    pub definition: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunErrorView {
    pub code: String,
    pub message: String,
}

impl RunView {
    fn new(r: &RunRecord, with_definition: bool) -> Self {
        Self {
            run_id: r.id.clone(),
            sync: r.sync_name.clone(),
            status: r.status.as_str(),
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

impl Service {
    /// The latest runs, newest first, of one sync or of all.
    pub async fn runs(
        &self,
        caller: &Caller,
        sync: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunView>, ServiceError> {
        let runs = self.store.list_runs(&caller.workspace, sync, limit).await?;
        Ok(runs.iter().map(|r| RunView::new(r, false)).collect())
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
