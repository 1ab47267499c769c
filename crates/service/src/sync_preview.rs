//! What the sync form shows as it is filled in, before anything is saved: the sync passes
//! every check `sync add` makes (the same messages), then its object keys are rendered for a
//! run started now, and its schedule is put in words with its next three due times. Nothing
//! touches the warehouse or the bucket, so it answers as fast as people type.

use crate::syncs::{NewSync, ScheduleView};
use crate::{Caller, Service, ServiceError};
use serde::Serialize;
use time::OffsetDateTime;
use wharf_domain::{DiffLayout, KeyTemplate, KeyValues, OnEmpty, SyncMode};

/// Files named in a preview when a sync splits its export.
const PREVIEW_FILES: u32 = 3;
/// Shown where a run's id goes: ids are assigned when a run starts.
const RUN_PLACEHOLDER: &str = "RUN-ID";

/// A sync as it would run now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncPreview {
    pub bucket: String,
    /// The first data files' keys (one per kind of change for a diff by files).
    pub keys: Vec<String>,
    /// Whether more files may follow (the export is split by rows or bytes).
    pub split: bool,
    pub manifest: Option<String>,
    pub schedule: ScheduleView,
}

impl Service {
    /// `new` checked as `add_sync` (or, with `current`, `update_sync`) checks it, and the keys
    /// and schedule a run started now would have.
    pub async fn preview_sync(
        &self,
        caller: &Caller,
        new: NewSync,
        current: Option<&str>,
    ) -> Result<SyncPreview, ServiceError> {
        let current = match current {
            Some(name) => Some(self.store.sync(&caller.workspace, name).await?),
            None => None,
        };
        let checked = self
            .check_sync(&caller.workspace, new, current.as_ref())
            .await?;
        let destination = self
            .store
            .destination(&caller.workspace, &checked.destination)
            .await?;
        let s = &checked.settings;
        let template = KeyTemplate::parse(&s.key_template)?;
        let now = OffsetDateTime::now_utc();
        let ext = s.file.extension();
        let segment = checked.segment.as_deref().unwrap_or(&checked.model);
        let split = s.max_rows_per_file.is_some() || s.max_bytes_per_file.is_some();
        let changes: &[Option<&str>] =
            if s.mode == SyncMode::Diff && s.diff_layout == DiffLayout::Files {
                &[Some("added"), Some("changed"), Some("removed")]
            } else {
                &[None]
            };
        let parts = if split && changes.len() == 1 {
            PREVIEW_FILES
        } else {
            1
        };
        let mut keys = Vec::new();
        for change in changes {
            for part in 0..parts {
                keys.push(template.render(
                    &destination.destination.prefix,
                    &KeyValues {
                        model: &checked.model,
                        segment,
                        sync: checked.name.as_str(),
                        run: RUN_PLACEHOLDER,
                        started_at: now,
                        part,
                        ext: &ext,
                        change: *change,
                    },
                )?);
            }
        }
        let manifest = (s.manifest || s.on_empty == OnEmpty::ManifestOnly).then(|| {
            match keys.first().and_then(|k| k.rsplit_once('/')) {
                Some((folder, _)) => format!("{folder}/_manifest.json"),
                None => "_manifest.json".to_string(),
            }
        });
        Ok(SyncPreview {
            bucket: destination.destination.bucket.as_str().to_string(),
            keys,
            split,
            manifest,
            schedule: ScheduleView::new(&checked.schedule, false, now),
        })
    }
}
