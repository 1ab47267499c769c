//! The upload journal: multipart upload ids recorded in the store before their first part.

use wharf_delivery::upload::UploadJournal;
use wharf_store::Store;

pub(crate) struct StoreJournal {
    store: Store,
    run_id: String,
    destination_id: String,
}

impl StoreJournal {
    pub(crate) fn new(store: Store, run_id: String, destination_id: String) -> Self {
        Self {
            store,
            run_id,
            destination_id,
        }
    }
}

#[async_trait::async_trait]
impl UploadJournal for StoreJournal {
    async fn intent(&self, key: &str) -> Result<i64, String> {
        self.store
            .upload_intent(&self.run_id, &self.destination_id, key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn created(&self, handle: i64, upload_id: &str) -> Result<(), String> {
        self.store
            .upload_created(handle, upload_id)
            .await
            .map_err(|e| e.to_string())
    }

    async fn finished(&self, handle: i64, completed: bool) {
        if let Err(e) = self.store.upload_finished(handle, completed).await {
            // The janitor finds the row still open and aborts again, harmlessly.
            tracing::warn!("cannot record the end of an upload: {e}");
        }
    }
}
