//! What this process has done, for Prometheus: runs by sync and status, rows and bytes
//! exported, run and part durations, retries, S3 errors by code, the scheduler's lag (from a
//! run's due time to its start), and, read from the store when scraped, the queue's depth and
//! the paused syncs. Names follow Prometheus' conventions: `wharf_` prefix, `_total` counters,
//! `_seconds` and `_bytes` units. Encoded by `prometheus-client` in the OpenMetrics text format,
//! which Prometheus reads.
//!
//! The counters are this process's since it started; several processes on one store are
//! scraped each (label them by instance in Prometheus). The gauges read from the store are the
//! same from every process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    workspace: String,
    sync: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    workspace: String,
    sync: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
}

/// The process's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    rows: Family<SyncLabels, Counter>,
    bytes: Family<SyncLabels, Counter>,
    retries: Family<SyncLabels, Counter>,
    s3_errors: Family<CodeLabels, Counter>,
    run_seconds: Histogram,
    part_seconds: Histogram,
    lag_seconds: Family<TriggerLabels, Histogram>,
    queue_depth: Gauge,
    paused: Gauge,
    in_flight: Gauge,
}

/// What one run's end adds.
pub(crate) struct RunEnded<'a> {
    pub workspace: &'a str,
    pub sync: &'a str,
    pub status: &'a str,
    pub rows: u64,
    pub bytes: u64,
    pub took: Duration,
    pub error_code: Option<&'a str>,
    pub retried: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wharf");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("runs", "Runs that ended, by sync and status", runs.clone());
        let rows = Family::<SyncLabels, Counter>::default();
        registry.register("rows_exported", "Rows written to files", rows.clone());
        let bytes = Family::<SyncLabels, Counter>::default();
        registry.register_with_unit(
            "exported",
            "Bytes S3 acknowledged",
            Unit::Bytes,
            bytes.clone(),
        );
        let retries = Family::<SyncLabels, Counter>::default();
        registry.register(
            "run_retries",
            "Retries queued after transient failures",
            retries.clone(),
        );
        let s3_errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "s3_errors",
            "Runs failed by an S3 error, by its code (after the client's own retries)",
            s3_errors.clone(),
        );
        // 0.1 s to about 7 h.
        let run_seconds = Histogram::new(exponential_buckets(0.1, 3.0, 12));
        registry.register_with_unit(
            "run_duration",
            "Time from a run's start to its end",
            Unit::Seconds,
            run_seconds.clone(),
        );
        // 5 ms to about 90 s.
        let part_seconds = Histogram::new(exponential_buckets(0.005, 3.0, 10));
        registry.register_with_unit(
            "part_upload_duration",
            "Time to upload one part (or one single-request object)",
            Unit::Seconds,
            part_seconds.clone(),
        );
        let lag_seconds = Family::<TriggerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 3.0, 12)) as Histogram
        });
        registry.register_with_unit(
            "scheduler_lag",
            "Time from a run's due time to its start, by trigger",
            Unit::Seconds,
            lag_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Runs waiting in the queue that are due",
            queue_depth.clone(),
        );
        let paused = Gauge::default();
        registry.register("paused_syncs", "Syncs paused", paused.clone());
        let in_flight = Gauge::default();
        registry.register(
            "runs_in_flight",
            "Runs this process is running",
            in_flight.clone(),
        );
        Self {
            registry,
            runs,
            rows,
            bytes,
            retries,
            s3_errors,
            run_seconds,
            part_seconds,
            lag_seconds,
            queue_depth,
            paused,
            in_flight,
        }
    }
}

impl Metrics {
    pub(crate) fn run_ended(&self, e: &RunEnded<'_>) {
        let sync = SyncLabels {
            workspace: e.workspace.to_string(),
            sync: e.sync.to_string(),
        };
        self.runs
            .get_or_create(&RunLabels {
                workspace: e.workspace.to_string(),
                sync: e.sync.to_string(),
                status: e.status.to_string(),
            })
            .inc();
        self.rows.get_or_create(&sync).inc_by(e.rows);
        self.bytes.get_or_create(&sync).inc_by(e.bytes);
        if e.retried {
            self.retries.get_or_create(&sync).inc();
        }
        if let Some(code) = e.error_code.and_then(|c| c.strip_prefix("s3.")) {
            self.s3_errors
                .get_or_create(&CodeLabels {
                    code: code.to_string(),
                })
                .inc();
        }
        self.run_seconds.observe(e.took.as_secs_f64());
    }

    pub(crate) fn run_started(&self, trigger: &str, lag: Duration) {
        self.lag_seconds
            .get_or_create(&TriggerLabels {
                trigger: trigger.to_string(),
            })
            .observe(lag.as_secs_f64());
    }

    /// What a run's uploads report each part's time to.
    pub(crate) fn part_observer(&self) -> wharf_delivery::upload::PartObserver {
        let histogram = self.part_seconds.clone();
        wharf_delivery::upload::PartObserver(Arc::new(move |took: Duration| {
            histogram.observe(took.as_secs_f64());
        }))
    }

    /// The text Prometheus scrapes, with the gauges set first.
    pub(crate) fn encode(&self, queue_depth: i64, paused: i64, in_flight: i64) -> String {
        self.queue_depth.set(queue_depth);
        self.paused.set(paused);
        self.in_flight.set(in_flight);
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        text
    }
}
