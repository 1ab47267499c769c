//! One attempt of a logical run: a first attempt, or a retry that continues the run it retries.
//!
//! A retry renders the same keys and writes the same manifest as the attempt it retries (the
//! logical run's id and start time), keeps the files an earlier attempt committed instead of
//! writing them again, and (for a sync that sends changes) exports the same change set. So a
//! run that failed after k of n files costs the n - k files, and a consumer never sees a file
//! twice. A retry whose sync changed since the logical run started cannot continue it: it
//! starts over as a logical run of its own.

use crate::{RunnerError, SyncContext};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;
use wharf_store::{CommittedFile, Lease, Store, StoreError};

pub(crate) struct Attempt {
    pub lease: Lease,
    /// The run id keys and the manifest carry: the logical run's.
    pub keys_run: String,
    /// When the logical run started (to the microsecond, as runs record times): the time keys
    /// and the manifest carry, and segments count `within_last` back from.
    pub started_at: OffsetDateTime,
    /// Files earlier attempts committed, by key.
    pub carried: Arc<HashMap<String, CommittedFile>>,
    /// The earlier attempts of the logical run, oldest first.
    pub earlier: Vec<String>,
    /// The change sets earlier attempts exported (their snapshot folders), newest first.
    pub change_sets: Vec<String>,
}

fn micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

impl Attempt {
    /// The attempt `lease` holds: what it continues, if it is a retry that can.
    pub(crate) async fn begin(
        store: &Store,
        mut lease: Lease,
        ctx: &SyncContext,
    ) -> Result<Self, RunnerError> {
        let fresh = |lease: Lease| Self {
            keys_run: lease.run_id.clone(),
            started_at: micros(lease.started_at),
            carried: Arc::default(),
            earlier: Vec::new(),
            change_sets: Vec::new(),
            lease,
        };
        if lease.logical_run == lease.run_id {
            return Ok(fresh(lease));
        }
        let logical = match store.logical_run(&lease).await {
            Ok(logical) => Some(logical),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let started_at = logical.as_ref().map(|l| micros(l.started_at));
        let same = logical
            .as_ref()
            .zip(started_at)
            .is_some_and(|(l, at)| l.definition.as_deref() == Some(ctx.definition(at).as_str()));
        let Some(logical) = logical.filter(|_| same) else {
            tracing::info!(
                run = %lease.run_id,
                retries = %lease.logical_run,
                "the sync changed since the run this one retries started: it starts over as a run of its own"
            );
            store.restart_logical_run(&lease).await?;
            lease.logical_run = lease.run_id.clone();
            return Ok(fresh(lease));
        };
        tracing::info!(
            run = %lease.run_id,
            continues = %logical.id,
            committed = logical.files.len(),
            "the retry continues its run: files already committed are kept"
        );
        Ok(Self {
            keys_run: logical.id,
            started_at: started_at.unwrap_or(lease.started_at),
            carried: Arc::new(
                logical
                    .files
                    .into_iter()
                    .map(|c| (c.file.key.clone(), c))
                    .collect(),
            ),
            earlier: logical.attempts,
            change_sets: logical.change_sets,
            lease,
        })
    }

    /// Whether this attempt continues an earlier one: objects it finds at its keys are that
    /// attempt's.
    pub(crate) fn continues(&self) -> bool {
        self.keys_run != self.lease.run_id
    }

    pub(crate) fn run_id(&self) -> &str {
        &self.lease.run_id
    }
}
