//! Syncs: a model or a segment, sent to a destination as files. Adding one checks what needs
//! the other objects: the segment's model, the mapped columns against the model's, and the
//! longest key the template can render under the destination's prefix.

use crate::{Caller, Role, Service, ServiceError};
use serde::Serialize;
use wharf_domain::key_template::{NameLengths, default_template};
use wharf_domain::{ColumnMapping, FileSpec, Name, OnEmpty, SyncSettings};
use wharf_store::{Exports, SyncRecord};

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
    pub created_at: String,
}

impl From<&SyncRecord> for SyncView {
    fn from(s: &SyncRecord) -> Self {
        Self {
            name: s.name.clone(),
            model: s.model_name.clone(),
            segment: s.segment_name.clone(),
            destination: s.destination_name.clone(),
            settings: s.settings.clone(),
            created_at: s.created_at.clone(),
        }
    }
}

/// A sync that passed every check, ready to store.
struct CheckedSync {
    name: Name,
    model: String,
    segment: Option<String>,
    destination: String,
    settings: SyncSettings,
}

impl CheckedSync {
    fn exports(&self) -> Exports<'_> {
        match &self.segment {
            Some(segment) => Exports::Segment(segment),
            None => Exports::Model(&self.model),
        }
    }
}

impl Service {
    /// Every check a sync's definition must pass, against its model, segment and destination.
    async fn check_sync(&self, workspace: &str, new: NewSync) -> Result<CheckedSync, ServiceError> {
        let name = Name::parse("name", &new.name)?;
        let file = new.file.validate()?;
        let columns = match &new.columns {
            Some(list) => ColumnMapping::parse_list(list)?,
            None => Vec::new(),
        };
        let on_empty = OnEmpty::parse(&new.on_empty)?;
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
        })
    }

    /// Adds a sync after every check that involves its model, segment and destination.
    pub async fn add_sync(&self, caller: &Caller, new: NewSync) -> Result<SyncView, ServiceError> {
        let object = new.name.clone();
        self.audited(caller, "create", "sync", &object, async {
            caller.require(Role::Editor)?;
            let checked = self.check_sync(&caller.workspace, new).await?;
            let sync = self
                .store
                .create_sync(
                    &caller.workspace,
                    &checked.name,
                    checked.exports(),
                    &checked.destination,
                    &checked.settings,
                )
                .await?;
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
            self.store.sync(&caller.workspace, name).await?;
            if new.name != name {
                return Err(ServiceError::bad_input(
                    "name",
                    format!("a sync keeps its name; this one is {name:?}"),
                ));
            }
            let checked = self.check_sync(&caller.workspace, new).await?;
            let sync = self
                .store
                .update_sync(
                    &caller.workspace,
                    name,
                    checked.exports(),
                    &checked.destination,
                    &checked.settings,
                )
                .await?;
            Ok(SyncView::from(&sync))
        })
        .await
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
            Ok(self.store.remove_sync(&caller.workspace, name).await?)
        })
        .await
    }

    pub async fn syncs(&self, caller: &Caller) -> Result<Vec<SyncView>, ServiceError> {
        let syncs = self.store.list_syncs(&caller.workspace).await?;
        Ok(syncs.iter().map(SyncView::from).collect())
    }

    pub async fn sync(&self, caller: &Caller, name: &str) -> Result<SyncView, ServiceError> {
        Ok(SyncView::from(
            &self.store.sync(&caller.workspace, name).await?,
        ))
    }
}
