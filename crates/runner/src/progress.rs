//! A run's live counters (rows, compared rows, files, bytes), its id once it has started, and
//! its stop switch: what the command line and the server read while it runs.

use crate::{RunFailure, failure};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::watch;
use wharf_delivery::upload::UploadProgress;

/// Live counters of a run, for progress bars and the API; its id once it has started; and its
/// stop switch.
pub struct RunProgress {
    /// Rows handed to the encoder.
    pub rows: AtomicU64,
    /// Rows of the result compared with the sync's snapshot (modes that send changes), before
    /// the change set is encoded.
    pub compared: AtomicU64,
    /// Files completed.
    pub files: AtomicU64,
    /// Bytes and parts S3 acknowledged; the cancel switch of the run's uploads.
    pub upload: Arc<UploadProgress>,
    pub(crate) stop: watch::Sender<Option<Stop>>,
    run_id: watch::Sender<Option<String>>,
}

/// Why a run was stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Someone cancelled it: recorded `cancelled`.
    Cancelled,
    /// Its process is shutting down: recorded `interrupted`.
    Interrupted,
    /// Another attempt took its sync after its lease expired: recorded `lease_lost`, if at all.
    LeaseLost,
}

impl Default for RunProgress {
    fn default() -> Self {
        Self {
            rows: AtomicU64::new(0),
            compared: AtomicU64::new(0),
            files: AtomicU64::new(0),
            upload: Arc::default(),
            stop: watch::channel(None).0,
            run_id: watch::channel(None).0,
        }
    }
}

impl RunProgress {
    /// Progress whose parts' upload times go to `observer` (metrics).
    pub fn observed(observer: wharf_delivery::upload::PartObserver) -> Self {
        Self {
            upload: Arc::new(UploadProgress::with_observer(observer)),
            ..Self::default()
        }
    }

    /// Stops the run: the query stops, the open upload is aborted, and the run is recorded as
    /// failed (`cancelled`).
    pub fn cancel(&self) {
        self.stop(Stop::Cancelled);
    }

    /// Stops the run as [`Self::cancel`] does, recorded `interrupted`: its process is going away.
    pub fn interrupt(&self) {
        self.stop(Stop::Interrupted);
    }

    pub(crate) fn stop_with(&self, why: Stop) {
        self.stop(why);
    }

    fn stop(&self, why: Stop) {
        self.stop.send_if_modified(|stop| {
            let first = stop.is_none();
            if first {
                *stop = Some(why);
            }
            first
        });
        self.upload.cancel();
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.stop.borrow().is_some()
    }

    /// The failure a stopped run ends with.
    pub(crate) fn stopped(&self) -> RunFailure {
        stopped(*self.stop.borrow())
    }

    /// Why the run was stopped, once it is (`None` until then).
    pub fn stopped_signal(&self) -> watch::Receiver<Option<Stop>> {
        self.stop.subscribe()
    }

    /// The run's id, once it is recorded as started (`None` before).
    pub fn started(&self) -> watch::Receiver<Option<String>> {
        self.run_id.subscribe()
    }

    pub(crate) fn announce(&self, run_id: &str) {
        self.run_id.send_replace(Some(run_id.to_string()));
    }
}

pub(crate) fn stopped(why: Option<Stop>) -> RunFailure {
    match why {
        Some(Stop::Interrupted) => failure(
            "interrupted",
            "the run was interrupted: wharf was shutting down; its upload was aborted",
        ),
        Some(Stop::LeaseLost) => failure(
            "lease_lost",
            "the run stalled past its lease and another attempt took its sync over; it stopped without committing, its upload was aborted",
        ),
        _ => failure("cancelled", "the run was cancelled; its upload was aborted"),
    }
}
