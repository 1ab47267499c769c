//! Every operation a user can perform on wharf, for every caller: the CLI today, the REST API
//! and the web UI next. An operation is one method of [`Service`] that takes the [`Caller`]
//! (a workspace and who acts) and returns a serializable view or a [`ServiceError`]. The
//! checks an operation needs live here once, so no interface can skip them.
//!
//! It owns: validation that needs the store or the network (an endpoint that resolves, a name
//! that is free), the public views of stored objects (secrets reduced to fingerprints), and
//! the mapping of every lower error to one kind and code.
//!
//! It must not know about terminals or HTTP: no printing, no flags, no status codes. Messages
//! name fields and values; each interface adds its own hints. Arrow, sqlx and AWS SDK types
//! stay below it: no view or error carries one.

mod access;
mod alerts;
mod audit;
mod catalog;
mod destinations;
mod error;
mod live;
mod metrics;
mod page;
mod runs;
pub mod scheduler;
mod segments;
mod sessions;
mod sync_preview;
mod syncs;
mod users;

pub use access::{NewTokenView, Role, TOKEN_PREFIX, TokenView, WorkspaceView};
pub use alerts::{AlertRetry, AlertView, DeliveryView, NewAlert, NewAlertView};
pub use audit::AuditView;
pub use catalog::{
    LocalSourceAdded, ModelView, NewModelInput, PostgresSourceAdded, SourceView, TableView,
};
pub use destinations::{AuthView, DestinationView, PolicyView, TestView};
pub use error::{ErrorKind, ServiceError};
pub use live::LiveProgress;
pub use page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest};
pub use runs::{
    PlanReport, RunErrorView, RunFileView, RunOutcome, RunProgress, RunQuery, RunView, Trigger,
};
pub use segments::{FilterColumn, FilterPreview, SegmentPreview, SegmentSql, SegmentView};
pub use sessions::{NewSession, SESSION_IDLE, SESSION_LIFETIME, SessionView};
pub use sync_preview::SyncPreview;
pub use syncs::{NewSync, PolicyPatch, ScheduleView, SyncView};
pub use users::UserView;
pub use wharf_delivery::{ClientSettings, ConnectionReport, StepReport};
pub use wharf_domain::destination::{AuthSpec, S3DestinationSpec};
pub use wharf_domain::json::parse_strict as parse_strict_json;
pub use wharf_domain::{ColumnInfo, FileSpec, Overlap, RunPolicy, ScheduleSpec, Secret};
pub use wharf_runner::LeaseSettings;
pub use wharf_runner::Preview;
pub use wharf_store::{Lease, Tick};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use wharf_store::Store;

/// Who performs an operation, and in which workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub workspace: String,
    pub actor: Actor,
}

/// Who acts: recorded in the audit log, and what permissions follow from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The command line, run by whoever may open the store's files.
    Cli,
    /// An API token, by its name, with its role.
    Token { name: String, role: Role },
    /// A person signed in to the web UI, by their email, with their role in the workspace.
    User { email: String, role: Role },
}

impl Caller {
    /// Fails unless the caller has at least `needed`'s rights. The command line may do
    /// anything: whoever runs it can open the store's files anyway.
    pub fn require(&self, needed: Role) -> Result<(), ServiceError> {
        match &self.actor {
            Actor::Cli => Ok(()),
            Actor::Token { role, .. } | Actor::User { role, .. } if *role >= needed => Ok(()),
            Actor::Token { role, .. } => Err(ServiceError::new(
                ErrorKind::Forbidden,
                "auth.forbidden",
                format!(
                    "a {} token may not do this: it takes the {} role",
                    role.as_str(),
                    needed.as_str()
                ),
            )),
            Actor::User { role, .. } => Err(ServiceError::new(
                ErrorKind::Forbidden,
                "auth.forbidden",
                format!(
                    "your role in this workspace ({}) may not do this: it takes the {} role; ask an admin",
                    role.as_str(),
                    needed.as_str()
                ),
            )),
        }
    }

    /// The command line on `workspace`.
    pub fn cli(workspace: &str) -> Self {
        Self {
            workspace: workspace.to_string(),
            actor: Actor::Cli,
        }
    }
}

/// What the operator decides for the whole process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `$WHARF_HOME`: the store, the master key, spill and lock folders.
    pub home: PathBuf,
    /// How S3 clients are built: private endpoints allowed or not, the operator's endpoint.
    pub client: ClientSettings,
    /// The query engine's memory budget, in bytes (`None`: the runner's default).
    pub query_memory_bytes: Option<usize>,
    /// The folders local sources must lie in (after symbolic links are resolved), on a shared
    /// server; `None`: anywhere, as for the command line on one's own machine.
    pub local_source_roots: Option<Vec<PathBuf>>,
    /// The runs this process's scheduler keeps in flight at most, across syncs.
    pub max_concurrent_runs: usize,
    /// The leases this process takes on runs.
    pub lease: wharf_runner::LeaseSettings,
    /// How alert deliveries are retried.
    pub alert_retry: AlertRetry,
}

/// Runs in flight per process by default: this is sized for a small machine (two cores), where
/// a run keeps about one core busy.
pub const DEFAULT_MAX_CONCURRENT_RUNS: usize = 2;

impl Settings {
    /// The defaults for `home`: AWS endpoints only, the runner's memory budget, local sources
    /// anywhere.
    pub fn new(home: &Path) -> Self {
        Self {
            home: home.to_path_buf(),
            client: ClientSettings::default(),
            query_memory_bytes: None,
            local_source_roots: None,
            max_concurrent_runs: DEFAULT_MAX_CONCURRENT_RUNS,
            lease: wharf_runner::LeaseSettings::default(),
            alert_retry: AlertRetry::default(),
        }
    }

    /// What runs and previews are given: spill and lock folders under the home, the memory
    /// budget, the S3 client settings.
    pub fn runner(&self) -> wharf_runner::RunnerSettings {
        let mut settings = wharf_runner::RunnerSettings::new(&self.home, self.client.clone());
        if let Some(bytes) = self.query_memory_bytes {
            settings.query_memory = bytes;
        }
        settings.local_source_roots = self.local_source_roots.clone();
        settings.lease = self.lease.clone();
        settings
    }
}

/// The operations, over one store. Cloning is cheap: clones share the store's connections
/// and the runs in flight.
#[derive(Clone)]
pub struct Service {
    store: Store,
    settings: Arc<Settings>,
    in_flight: Arc<runs::InFlight>,
    /// Wakes the scheduler loop: a run was queued, a run ended, a schedule changed.
    wake: Arc<tokio::sync::Notify>,
    metrics: Arc<metrics::Metrics>,
    /// Wakes the alert delivery loop: an alert was queued.
    alerts_wake: Arc<tokio::sync::Notify>,
    /// Recent failed sign-ins, per account and per address.
    sign_in_failures: Arc<std::sync::Mutex<sessions::Failures>>,
}

impl Service {
    /// Opens the store under `settings.home` (creating it when there is none).
    pub async fn open(settings: Settings) -> Result<Self, ServiceError> {
        let store = Store::open(&settings.home).await?;
        Ok(Self {
            store,
            settings: Arc::new(settings),
            in_flight: Arc::default(),
            wake: Arc::default(),
            metrics: Arc::default(),
            alerts_wake: Arc::default(),
            sign_in_failures: Arc::default(),
        })
    }

    /// Whether the store answers (for a readiness probe): it was opened with its migrations
    /// applied, and a query still goes through.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

    pub fn home(&self) -> &Path {
        &self.settings.home
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// This process's metrics in the Prometheus (OpenMetrics) text format, for an operator:
    /// they span every workspace, so they take an admin; `None` when the operator made them
    /// public (`wharf serve --metrics-public`).
    pub async fn metrics_text(&self, caller: Option<&Caller>) -> Result<String, ServiceError> {
        if let Some(caller) = caller {
            caller.require(Role::Admin)?;
        }
        let now = time::OffsetDateTime::now_utc();
        let (queued, paused) = self.store.scheduler_gauges(now).await?;
        let in_flight = i64::try_from(self.in_flight.count()).unwrap_or(i64::MAX);
        Ok(self.metrics.encode(queued, paused, in_flight))
    }

    /// A run's progress, its parts' times going to the metrics.
    pub(crate) fn new_progress(&self) -> Arc<RunProgress> {
        Arc::new(RunProgress::observed(self.metrics.part_observer()))
    }
}
