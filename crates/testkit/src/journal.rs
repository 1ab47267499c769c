//! An upload journal that records what the uploader tells it, for tests to read back.

use std::sync::{Mutex, MutexGuard, PoisonError};
use wharf_delivery::upload::UploadJournal;

/// Records each call as a line (`intent KEY`, `created true`, `finished false`) and keeps the
/// upload ids S3 handed out, so a test can act on an upload behind wharf's back.
#[derive(Default)]
pub struct RecordingJournal {
    events: Mutex<Vec<String>>,
    upload_ids: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RecordingJournal {
    /// Every call so far, in order.
    pub fn events(&self) -> Vec<String> {
        lock(&self.events).clone()
    }

    /// The upload ids S3 returned, in order.
    pub fn upload_ids(&self) -> Vec<String> {
        lock(&self.upload_ids).clone()
    }
}

#[async_trait::async_trait]
impl UploadJournal for RecordingJournal {
    async fn intent(&self, key: &str) -> Result<i64, String> {
        let mut events = lock(&self.events);
        events.push(format!("intent {key}"));
        Ok(events.len() as i64)
    }
    async fn created(&self, _handle: i64, upload_id: &str) -> Result<(), String> {
        lock(&self.upload_ids).push(upload_id.to_string());
        lock(&self.events).push(format!("created {}", !upload_id.is_empty()));
        Ok(())
    }
    async fn finished(&self, _handle: i64, completed: bool) {
        lock(&self.events).push(format!("finished {completed}"));
    }
}
