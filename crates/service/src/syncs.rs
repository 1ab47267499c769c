//! Syncs: a model or a segment, sent to a destination as files. Adding one checks what needs
//! the other objects: the segment's model, the mapped columns against the model's, and the
//! longest key the template can render under the destination's prefix.

use crate::{Caller, ErrorKind, Role, Service, ServiceError};
use serde::Serialize;
use time::OffsetDateTime;
use wharf_domain::key_template::{NameLengths, default_template};
use wharf_domain::{
    ColumnMapping, DiffLayout, FileSpec, Name, OnEmpty, RunPolicy, Schedule, ScheduleSpec,
    SyncMode, SyncSettings,
};
use wharf_store::{Exports, SyncRecord, SyncTiming};

/// What a new sync is, before validation.
#[derive(Debug, Clone, Default)]
pub struct NewSync {
    pub name: String,
    /// The model to export, or the model of `segment`.
    pub model: Option<String>,
    /// A segment to export instead of the whole model.
    pub segment: Option<String>,
    pub destination: String,
    pub file: FileSpec,
    /// `a,b:renamed,...` (empty: every column, under its own name).
    pub columns: Option<String>,
    /// `None`: the default template (one for runs with a manifest).
    pub key_template: Option<String>,
    pub max_rows_per_file: Option<u64>,
    pub max_bytes_per_file: Option<u64>,
    pub manifest: bool,
    /// `empty-file`, `skip` or `manifest-only`.
    pub on_empty: String,
    pub overwrite: bool,
    /// When it runs by itself. `None`: manual for a new sync, unchanged on update.
    pub schedule: Option<ScheduleSpec>,
    /// Overlap, retries and pausing: what is given replaces the current value (a new sync's
    /// defaults: skip, 3 attempts from 1 minute to 1 hour, pause after 3).
    pub policy: PolicyPatch,
    /// `all`, `insert`, `diff` or `delta`. `None`: `all` for a new sync, unchanged on update.
    pub mode: Option<String>,
    /// `column` or `files`, for `diff` only. `None`: `column` for a new sync, unchanged on
    /// update.
    pub diff_layout: Option<String>,
}

/// Changes to a sync's run policy; fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    /// `skip` (default: a trigger while the sync runs is refused, a due time skipped) or
    /// `queue` (it runs once the current run ends).
    #[serde(default)]
    pub overlap: Option<String>,
    /// Attempts per due time, the first included: 1 (never retry) to 10 (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The wait before the first retry, doubling after each (default 60).
    #[serde(default)]
    pub retry_base_seconds: Option<u32>,
    /// The longest wait between retries (default 3600).
    #[serde(default)]
    pub retry_cap_seconds: Option<u32>,
    /// Pause the sync after this many scheduled runs in a row failed for good; 0: never
    /// (default 3).
    #[serde(default)]
    pub pause_after: Option<u32>,
}

impl PolicyPatch {
    /// `base` with the given fields replaced, checked.
    pub fn apply(&self, base: RunPolicy) -> Result<RunPolicy, ServiceError> {
        let mut policy = base;
        if let Some(overlap) = &self.overlap {
            policy.overlap = wharf_domain::Overlap::parse(overlap)?;
        }
        if let Some(n) = self.max_attempts {
            policy.max_attempts = n;
        }
        if let Some(n) = self.retry_base_seconds {
            policy.retry_base_seconds = n;
        }
        if let Some(n) = self.retry_cap_seconds {
            policy.retry_cap_seconds = n;
        }
        if let Some(n) = self.pause_after {
            policy.pause_after = n;
        }
        Ok(policy.validate()?)
    }
}

/// A sync as every interface shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SyncView {
    pub name: String,
    pub model: String,
    pub segment: Option<String>,
    pub destination: String,
    #[schema(value_type = Object)]
    pub settings: SyncSettings,
    pub schedule: ScheduleView,
    pub policy: RunPolicy,
    /// Paused syncs are not run by the scheduler (manual runs still work).
    pub paused: bool,
    /// Why it was paused: the failures in a row and the last error.
    pub pause_reason: Option<String>,
    pub paused_at: Option<String>,
    /// Scheduled runs in a row that failed for good.
    pub failures_in_row: u32,
    /// The run whose snapshot the next run compares with (insert, diff and delta syncs); none:
    /// the next run sends every row.
    pub snapshot_run: Option<String>,
    /// In the response to an update or a reset: the snapshot was forgotten, so the next run
    /// sends every row.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot_reset: bool,
    pub created_at: String,
}

/// A schedule as users wrote it, in words, and its next due times.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// "at 02:00 every day, Europe/Paris".
    pub description: String,
    /// The next three due times (RFC 3339 in the schedule's time zone); none for a manual or
    /// paused sync.
    pub next_runs: Vec<String>,
}

impl ScheduleView {
    pub fn new(schedule: &Schedule, paused: bool, now: OffsetDateTime) -> Self {
        let next_runs = if paused {
            Vec::new()
        } else {
            schedule
                .next_runs(now, 3)
                .into_iter()
                .map(|t| schedule.local_time(t))
                .collect()
        };
        Self {
            spec: schedule.spec().clone(),
            description: schedule.describe(),
            next_runs,
        }
    }
}

impl From<&SyncRecord> for SyncView {
    fn from(s: &SyncRecord) -> Self {
        let paused = s.state.paused_at.is_some();
        Self {
            name: s.name.clone(),
            model: s.model_name.clone(),
            segment: s.segment_name.clone(),
            destination: s.destination_name.clone(),
            settings: s.settings.clone(),
            schedule: ScheduleView::new(&s.schedule, paused, OffsetDateTime::now_utc()),
            policy: s.policy,
            paused,
            pause_reason: s.state.pause_reason.clone(),
            paused_at: s.state.paused_at.clone(),
            failures_in_row: s.state.failures_in_row,
            snapshot_run: s.snapshot_run.clone(),
            snapshot_reset: false,
            created_at: s.created_at.clone(),
        }
    }
}

/// A sync that passed every check, ready to store.
pub(crate) struct CheckedSync {
    pub(crate) name: Name,
    pub(crate) model: String,
    pub(crate) segment: Option<String>,
    pub(crate) destination: String,
    pub(crate) settings: SyncSettings,
    pub(crate) schedule: Schedule,
    policy: RunPolicy,
}

impl CheckedSync {
    fn exports(&self) -> Exports<'_> {
        match &self.segment {
            Some(segment) => Exports::Segment(segment),
            None => Exports::Model(&self.model),
        }
    }

    fn timing(&self) -> SyncTiming<'_> {
        SyncTiming {
            schedule: &self.schedule,
            policy: &self.policy,
            now: OffsetDateTime::now_utc(),
        }
    }
}

impl Service {
    /// Every check a sync's definition must pass, against its model, segment and destination.
    pub(crate) async fn check_sync(
        &self,
        workspace: &str,
        new: NewSync,
        current: Option<&SyncRecord>,
    ) -> Result<CheckedSync, ServiceError> {
        let name = Name::parse("name", &new.name)?;
        let schedule = match (&new.schedule, current) {
            (Some(spec), _) => spec.clone().validate()?,
            (None, Some(current)) => current.schedule.clone(),
            (None, None) => Schedule::default(),
        };
        let policy = new
            .policy
            .apply(current.map_or_else(RunPolicy::default, |c| c.policy))?;
        let file = new.file.validate()?;
        let columns = match &new.columns {
            Some(list) => ColumnMapping::parse_list(list)?,
            None => Vec::new(),
        };
        let on_empty = OnEmpty::parse(&new.on_empty)?;
        let mode = match &new.mode {
            Some(mode) => SyncMode::parse(mode)?,
            None => current.map_or(SyncMode::All, |c| c.settings.mode),
        };
        let diff_layout = match &new.diff_layout {
            Some(layout) if mode != SyncMode::Diff => {
                return Err(ServiceError::bad_input(
                    "diff_layout",
                    format!(
                        "only a diff sync has a layout ({layout:?} given); this sync's mode is {mode}"
                    ),
                ));
            }
            Some(layout) => DiffLayout::parse(layout)?,
            None => current.map_or(DiffLayout::Column, |c| c.settings.diff_layout),
        };
        let key_template = new.key_template.unwrap_or_else(|| {
            default_template(new.manifest || on_empty == OnEmpty::ManifestOnly).to_string()
        });
        let (settings, template) = SyncSettings {
            file,
            columns,
            key_template,
            max_rows_per_file: new.max_rows_per_file,
            max_bytes_per_file: new.max_bytes_per_file,
            manifest: new.manifest,
            on_empty,
            overwrite: new.overwrite,
            mode,
            diff_layout,
        }
        .validate()?;
        let model_name = match (&new.model, &new.segment) {
            (_, Some(segment)) => self.store.segment(workspace, segment).await?.model_name,
            (Some(model), None) => model.clone(),
            (None, None) => {
                return Err(ServiceError::bad_input(
                    "model",
                    "a sync exports a model or a segment of one: name either",
                ));
            }
        };
        let model = self.store.model(workspace, &model_name).await?;
        let destination = self.store.destination(workspace, &new.destination).await?;
        for mapping in &settings.columns {
            if !model.columns.iter().any(|c| c.name == mapping.source) {
                let names: Vec<&str> = model.columns.iter().map(|c| c.name.as_str()).collect();
                return Err(ServiceError::bad_input(
                    "columns",
                    format!(
                        "model {} has no column {:?}; its columns are: {}",
                        model.name,
                        mapping.source,
                        names.join(", ")
                    ),
                ));
            }
        }
        if mode.compares()
            && !settings.columns.is_empty()
            && !settings
                .columns
                .iter()
                .any(|m| m.source == model.primary_key)
        {
            return Err(ServiceError::bad_input(
                "columns",
                format!(
                    "a {mode} sync sends rows by their primary key, and its columns leave out {}'s key {:?}: add it to the columns",
                    model.name, model.primary_key
                ),
            ));
        }
        template.check_length(
            &destination.destination.prefix,
            &NameLengths {
                model: model.name.len(),
                segment: new.segment.as_ref().map_or(model.name.len(), String::len),
                sync: name.as_str().len(),
            },
        )?;
        Ok(CheckedSync {
            name,
            model: model.name,
            segment: new.segment,
            destination: destination.destination.name.as_str().to_string(),
            settings,
            schedule,
            policy,
        })
    }

    /// Adds a sync after every check that involves its model, segment and destination.
    pub async fn add_sync(&self, caller: &Caller, new: NewSync) -> Result<SyncView, ServiceError> {
        let object = new.name.clone();
        self.audited(caller, "create", "sync", &object, async {
            caller.require(Role::Editor)?;
            let checked = self.check_sync(&caller.workspace, new, None).await?;
            let sync = self
                .store
                .create_sync(
                    &caller.workspace,
                    &checked.name,
                    checked.exports(),
                    &checked.destination,
                    &checked.settings,
                    checked.timing(),
                )
                .await?;
            self.wake.notify_one();
            Ok(SyncView::from(&sync))
        })
        .await
    }

    /// Replaces a sync's definition after the checks `add_sync` makes; its runs stay.
    pub async fn update_sync(
        &self,
        caller: &Caller,
        name: &str,
        new: NewSync,
    ) -> Result<SyncView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "update", "sync", &object, async {
            caller.require(Role::Editor)?;
            let current = self.store.sync(&caller.workspace, name).await?;
            if new.name != name {
                return Err(ServiceError::bad_input(
                    "name",
                    format!("a sync keeps its name; this one is {name:?}"),
                ));
            }
            let checked = self
                .check_sync(&caller.workspace, new, Some(&current))
                .await?;
            // A snapshot describes rows as the sync exported them: another model, segment,
            // columns or format make it meaningless, and a sync that turns to `all` forgets it
            // (so that turning back starts with every row). The schedule alone keeps it.
            let (old, new) = (&current.settings, &checked.settings);
            let redefined = current.model_name != checked.model
                || current.segment_name != checked.segment
                || old.columns != new.columns
                || old.file != new.file
                || !new.mode.compares();
            if redefined && (old.mode.compares() || new.mode.compares()) {
                // A run in progress would make a snapshot of the old definition current.
                self.refuse_while_running(
                    &current,
                    "this change would forget its snapshot: make it",
                )
                .await?;
            }
            let sync = self
                .store
                .update_sync(
                    &caller.workspace,
                    name,
                    checked.exports(),
                    &checked.destination,
                    &checked.settings,
                    checked.timing(),
                )
                .await?;
            let reset = sync.snapshot_run.is_some() && redefined;
            let mut view = SyncView::from(&sync);
            if reset {
                self.store.reset_snapshot(&sync.id).await?;
                view.snapshot_run = None;
                view.snapshot_reset = true;
            }
            self.wake.notify_one();
            Ok(view)
        })
        .await
    }

    /// Forgets a sync's snapshot: its next run sends every row (as `added`). Refused while a
    /// run is in progress (its success would make its own snapshot current again).
    pub async fn reset_sync(&self, caller: &Caller, name: &str) -> Result<SyncView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "reset", "sync", &object, async {
            caller.require(Role::Editor)?;
            let sync = self.store.sync(&caller.workspace, name).await?;
            self.refuse_while_running(&sync, "reset it").await?;
            self.store.reset_snapshot(&sync.id).await?;
            let mut view = SyncView::from(&sync);
            view.snapshot_run = None;
            view.snapshot_reset = true;
            Ok(view)
        })
        .await
    }

    /// Refuses a change to a sync that has a run in progress: its success would make a
    /// snapshot current that the change means to forget. `what` says what to do once it ends.
    async fn refuse_while_running(
        &self,
        sync: &SyncRecord,
        what: &str,
    ) -> Result<(), ServiceError> {
        match self.store.running_run(&sync.id).await? {
            Some(run) => Err(ServiceError::new(
                ErrorKind::Conflict,
                "run.in_progress",
                format!(
                    "sync {} is running (run {run}); {what} once the run ends, or cancel the run first",
                    sync.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// Removes a sync and its run history. Uploads its interrupted runs left open are aborted
    /// first; a sync whose run is in progress stays.
    pub async fn remove_sync(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        let object = name.to_string();
        self.audited(caller, "remove", "sync", &object, async {
            caller.require(Role::Editor)?;
            let sync = self.store.sync(&caller.workspace, name).await?;
            let destination = self
                .store
                .destination(&caller.workspace, &sync.destination_name)
                .await?;
            wharf_runner::abort_stale_uploads(&self.store, &destination, &self.settings.runner())
                .await;
            self.store.remove_sync(&caller.workspace, name).await?;
            if let Err(e) = wharf_runner::changes::remove_all(&self.settings.runner(), &sync.id) {
                tracing::warn!(sync = %name, "cannot remove the sync's snapshots: {e}");
            }
            Ok(())
        })
        .await
    }

    pub async fn syncs(&self, caller: &Caller) -> Result<Vec<SyncView>, ServiceError> {
        let syncs = self.store.list_syncs(&caller.workspace).await?;
        Ok(syncs.iter().map(SyncView::from).collect())
    }

    /// Resumes a paused sync: its failures in a row are forgotten and its next due time is
    /// counted from now.
    pub async fn resume_sync(&self, caller: &Caller, name: &str) -> Result<SyncView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "resume", "sync", &object, async {
            caller.require(Role::Editor)?;
            let sync = self.store.sync(&caller.workspace, name).await?;
            self.store
                .set_paused(&sync.id, None, OffsetDateTime::now_utc())
                .await?;
            self.wake.notify_one();
            self.sync(caller, name).await
        })
        .await
    }

    /// The paused syncs that send to `destination`: what a passing connection test of it
    /// offers to resume.
    pub async fn paused_syncs_of(
        &self,
        caller: &Caller,
        destination: &str,
    ) -> Result<Vec<SyncView>, ServiceError> {
        let syncs = self.store.list_syncs(&caller.workspace).await?;
        Ok(syncs
            .iter()
            .filter(|s| s.destination_name == destination && s.state.paused_at.is_some())
            .map(SyncView::from)
            .collect())
    }

    /// Pauses a sync by hand: the scheduler skips it until it is resumed.
    pub async fn pause_sync(&self, caller: &Caller, name: &str) -> Result<SyncView, ServiceError> {
        let object = name.to_string();
        self.audited(caller, "pause", "sync", &object, async {
            caller.require(Role::Editor)?;
            let sync = self.store.sync(&caller.workspace, name).await?;
            let reason = format!("paused by {}", caller.actor_name());
            self.store
                .set_paused(&sync.id, Some(&reason), OffsetDateTime::now_utc())
                .await?;
            self.sync(caller, name).await
        })
        .await
    }

    pub async fn sync(&self, caller: &Caller, name: &str) -> Result<SyncView, ServiceError> {
        Ok(SyncView::from(
            &self.store.sync(&caller.workspace, name).await?,
        ))
    }
}
