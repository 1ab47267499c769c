//! The upload journal: multipart upload ids recorded in the store before their first part.

use std::sync::Arc;
use time::OffsetDateTime;
use wharf_delivery::upload::UploadJournal;
use wharf_store::{Lease, Store};

pub(crate) struct StoreJournal {
    store: Store,
    run_id: String,
    destination_id: String,
    gate: Arc<LeaseGate>,
}

impl StoreJournal {
    pub(crate) fn new(
        store: Store,
        run_id: String,
        destination_id: String,
        gate: Arc<LeaseGate>,
    ) -> Self {
        Self {
            store,
            run_id,
            destination_id,
            gate,
        }
    }
}

/// The check before every commit of a leased run: its lease holds (for `margin` more) and no
/// other attempt took its sync.
pub(crate) struct LeaseGate {
    pub(crate) store: Store,
    pub(crate) lease: Lease,
    pub(crate) margin: time::Duration,
}

impl LeaseGate {
    pub(crate) async fn check(&self) -> Result<(), String> {
        match self
            .store
            .lease_holds(&self.lease, OffsetDateTime::now_utc(), self.margin)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "run {} no longer holds its lease (it stalled past it, and another attempt may hold its sync): it commits nothing",
                self.lease.run_id
            )),
            Err(e) => Err(format!("cannot check the run's lease: {e}")),
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

    async fn before_commit(&self, _key: &str) -> Result<(), String> {
        self.gate.check().await
    }

    async fn finished(&self, handle: i64, completed: bool) {
        if let Err(e) = self.store.upload_finished(handle, completed).await {
            // The janitor finds the row still open and aborts again, harmlessly.
            tracing::warn!("cannot record the end of an upload: {e}");
        }
    }
}
