//! The scheduler's overhead (issue 11's benchmark; run by `scripts/bench --scheduler`).
//!
//! `N` syncs (default 1,000) of a two-row model on one store, each due once, their due times
//! spread evenly over a window of `W` seconds (default 600) of real time, run by the real
//! scheduler loop of one process (2 runs in flight) against the in-process S3 server. Reported:
//! - scheduler lag (a run's start minus its due time) p50, p99 and max, from the run records;
//! - CPU per scheduled run outside the export: this process's CPU per run when scheduled,
//!   minus its CPU per run when the same runs are started directly (`Service::run_sync`, which
//!   claims and records a run the same way but without the loop, its passes and its waits);
//! - the store's size (database and write-ahead log) per run.
//!
//! cargo run --profile bench-release -p wharf-service --example scheduler_bench -- [N] [W]

use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wharf_domain::FileSpec;
use wharf_domain::destination::S3DestinationSpec;
use wharf_service::{
    Caller, ClientSettings, NewModelInput, NewSync, PageRequest, RunProgress, RunQuery,
    ScheduleSpec, Service, Settings,
};

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the file: 12 and 13 after the state field.
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 10)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn store_bytes(home: &std::path::Path) -> u64 {
    ["wharf.db", "wharf.db-wal", "wharf.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(home.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

async fn setup(
    n: usize,
    schedule: impl Fn(usize) -> ScheduleSpec,
) -> (
    Service,
    Caller,
    tempfile::TempDir,
    tempfile::TempDir,
    wharf_testkit::S3TestServer,
) {
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("people.csv"), "id,name\n1,Ada\n2,Bob\n").expect("csv");
    let server = wharf_testkit::S3TestServer::start().await;
    server.create_bucket("bench").await;
    let mut settings = Settings::new(home.path());
    settings.client = ClientSettings {
        allow_private_endpoints: true,
        ..ClientSettings::default()
    };
    let service = Service::open(settings).await.expect("service");
    let caller = Caller::cli("default");
    service
        .add_local_source(&caller, "files", data.path())
        .await
        .expect("source");
    service
        .add_model(
            &caller,
            NewModelInput {
                name: "people",
                source: "files",
                sql: "SELECT * FROM people",
                primary_key: "id",
            },
        )
        .await
        .expect("model");
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": "lake", "bucket": "bench", "region": "us-east-1",
        "endpoint": server.endpoint(),
        "auth": {"type": "access_key", "access_key_id": server.access_key, "secret_access_key": server.secret_key},
    }))
    .expect("spec");
    service
        .add_destination(&caller, spec)
        .await
        .expect("destination");
    for i in 0..n {
        service
            .add_sync(
                &caller,
                NewSync {
                    name: format!("s{i:04}"),
                    model: Some("people".into()),
                    destination: "lake".into(),
                    file: FileSpec {
                        format: "csv".into(),
                        ..FileSpec::default()
                    },
                    on_empty: "empty-file".into(),
                    schedule: Some(schedule(i)),
                    ..NewSync::default()
                },
            )
            .await
            .expect("sync");
    }
    (service, caller, home, data, server)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let window: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(600);

    // Direct: the same runs, one after another, without the scheduler loop.
    let (direct, caller, direct_home, _d1, _s1) = setup(n, |_| ScheduleSpec::Manual {}).await;
    let before = cpu();
    let started = Instant::now();
    for i in 0..n {
        let outcome = direct
            .run_sync(
                &caller,
                &format!("s{i:04}"),
                std::sync::Arc::new(RunProgress::default()),
            )
            .await
            .expect("run");
        assert_eq!(outcome.status, "succeeded", "{outcome:?}");
    }
    let direct_cpu = cpu() - before;
    let direct_wall = started.elapsed();
    let direct_store = store_bytes(direct_home.path());
    drop(direct);

    // Scheduled: due times spread over the window, starting a few seconds from now.
    let start = OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let step = window as f64 / n as f64;
    let (service, caller, home, _d2, _s2) = setup(n, |i| ScheduleSpec::Interval {
        every: "366d".into(),
        start_at: Some(
            (start + time::Duration::seconds_f64(step * i as f64))
                .format(&Rfc3339)
                .expect("time"),
        ),
    })
    .await;
    let before = cpu();
    let wall = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = {
        let service = service.clone();
        tokio::spawn(async move {
            service
                .run_scheduler(async move {
                    let _ = stop_rx.await;
                })
                .await;
        })
    };
    let deadline = Instant::now() + Duration::from_secs(window + 120);
    let runs = loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let page = service
            .runs_page(
                &caller,
                &RunQuery {
                    sync: None,
                    status: Some("succeeded".into()),
                    page: PageRequest {
                        cursor: None,
                        limit: Some(1000),
                    },
                },
            )
            .await
            .expect("runs");
        let mut all = page.items;
        let mut cursor = page.next_cursor;
        while let Some(c) = cursor {
            let page = service
                .runs_page(
                    &caller,
                    &RunQuery {
                        sync: None,
                        status: Some("succeeded".into()),
                        page: PageRequest {
                            cursor: Some(c),
                            limit: Some(1000),
                        },
                    },
                )
                .await
                .expect("runs");
            all.extend(page.items);
            cursor = page.next_cursor;
        }
        if all.len() >= n || Instant::now() > deadline {
            break all;
        }
    };
    let _ = stop_tx.send(());
    let _ = scheduler.await;
    let scheduled_cpu = cpu() - before;
    let scheduled_wall = wall.elapsed();
    let store = store_bytes(home.path());

    let mut lags: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            let due = OffsetDateTime::parse(&r.due_at, &Rfc3339).ok()?;
            let started = OffsetDateTime::parse(r.started_at.as_deref()?, &Rfc3339).ok()?;
            Some((started - due).as_seconds_f64())
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    let per_run = |d: Duration, k: usize| d.as_secs_f64() * 1000.0 / k.max(1) as f64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let report = serde_json::json!({
        "syncs": n,
        "window_seconds": window,
        "runs_per_hour": n as f64 * 3600.0 / window as f64,
        "scheduled_runs_succeeded": runs.len(),
        "lag_seconds": {
            "p50": percentile(&lags, 50.0),
            "p99": percentile(&lags, 99.0),
            "max": lags.last().copied().unwrap_or(f64::NAN),
        },
        "cpu_ms_per_run": {
            "scheduled": per_run(scheduled_cpu, runs.len()),
            "direct": per_run(direct_cpu, n),
            "scheduler_overhead": per_run(scheduled_cpu, runs.len()) - per_run(direct_cpu, n),
        },
        "wall_seconds": {"scheduled": scheduled_wall.as_secs_f64(), "direct": direct_wall.as_secs_f64()},
        "store_bytes": {"scheduled": store, "direct": direct_store, "per_run": store / n.max(1) as u64},
        "loadavg": load.trim(),
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
}
