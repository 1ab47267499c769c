//! Schedules through the `wharf` binary: the `--schedule` flags and `sync show`'s contract,
//! two processes on one store running every due time exactly once, and `wharf serve` killed
//! with SIGKILL mid-upload recovering on restart.

mod common;

use common::server::{Server, token};
use common::{BUCKET, Fixture, add_model, json, run, text, wharf};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use wharf_delivery::local_s3::Fault;
use wharf_testkit::bucket_residue;

fn add_sync(
    home: &std::path::Path,
    name: &str,
    model: &str,
    extra: &[&str],
) -> std::process::Output {
    run(wharf(home)
        .args(["--json", "sync", "add", name, "--model", model])
        .args(["--destination", "lake", "--format", "csv"])
        .args(extra))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_set_shown_in_words_and_checked() {
    let Fixture {
        home,
        data: _data,
        server: _server,
    } = Fixture::start().await;
    let home = home.path();
    add_model(home, "people", "SELECT * FROM people");
    let out = add_sync(
        home,
        "nightly",
        "people",
        &["--schedule", "cron:0 2 * * *", "--timezone", "Europe/Paris"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home).args(["--json", "sync", "show", "nightly"]));
    let sync = json(&out);
    let schedule = &sync["schedule"];
    assert_eq!(schedule["kind"], "cron");
    assert_eq!(schedule["cron"], "0 2 * * *");
    assert_eq!(schedule["timezone"], "Europe/Paris");
    assert_eq!(schedule["description"], "at 02:00 every day, Europe/Paris");
    let next: Vec<&str> = schedule["next_runs"]
        .as_array()
        .expect("next_runs")
        .iter()
        .map(|v| v.as_str().expect("a time"))
        .collect();
    assert_eq!(next.len(), 3, "{schedule}");
    for t in &next {
        assert!(
            t.contains("T02:00:00+01:00") || t.contains("T02:00:00+02:00"),
            "{t}"
        );
    }
    assert_eq!(sync["paused"], false);
    assert_eq!(sync["pause_reason"], Value::Null);
    assert_eq!(sync["policy"]["overlap"], "skip");
    assert_eq!(sync["policy"]["max_attempts"], 3);
    // In words on a terminal too.
    let out = run(wharf(home).args(["sync", "show", "nightly"]));
    assert!(
        text(&out).contains("schedule      at 02:00 every day, Europe/Paris"),
        "{}",
        text(&out)
    );

    // Paused by hand; a passing connection test of its destination offers to resume it.
    let out = run(wharf(home).args(["sync", "pause", "nightly"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home).args(["--allow-private-endpoints", "destination", "test", "lake"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "sync nightly is paused (paused by cli); resume it with `wharf sync resume nightly`"
        ),
        "{}",
        text(&out)
    );
    let out = run(wharf(home).args(["--json", "sync", "resume", "nightly"]));
    assert_eq!(json(&out)["paused"], false, "{}", text(&out));

    // Update: an interval; the policy flags; the rest unchanged.
    let out = run(wharf(home)
        .args(["--json", "sync", "update", "nightly", "--model", "people"])
        .args(["--destination", "lake", "--format", "csv"])
        .args([
            "--schedule",
            "every:6h",
            "--overlap",
            "queue",
            "--retry-base",
            "30s",
        ]));
    assert!(out.status.success(), "{}", text(&out));
    let sync = json(&out);
    assert_eq!(sync["schedule"]["kind"], "interval");
    assert_eq!(sync["schedule"]["every"], "6h");
    assert_eq!(sync["schedule"]["description"], "every 6 hours");
    assert_eq!(sync["policy"]["overlap"], "queue");
    assert_eq!(sync["policy"]["retry_base_seconds"], 30);
    // Left out on update: kept.
    let out = run(wharf(home)
        .args(["--json", "sync", "update", "nightly", "--model", "people"])
        .args(["--destination", "lake", "--format", "csv"]));
    assert_eq!(json(&out)["schedule"]["every"], "6h", "{}", text(&out));
    let out = run(wharf(home)
        .args(["--json", "sync", "update", "nightly", "--model", "people"])
        .args([
            "--destination",
            "lake",
            "--format",
            "csv",
            "--schedule",
            "manual",
        ]));
    let sync = json(&out);
    assert_eq!(sync["schedule"]["kind"], "manual");
    assert_eq!(sync["schedule"]["next_runs"], serde_json::json!([]));

    // Mistakes name the field, the value and the problem.
    for (schedule, needle) in [
        (
            "cron:0 25 * * *",
            r#"schedule.cron "0 25 * * *" is invalid: hour 25 is out of range 0-23"#,
        ),
        ("every:0m", "schedule.every"),
        ("daily", "every:<N><m|h|d>"),
        ("custom:25:00", "schedule.times"),
    ] {
        let out = add_sync(home, "bad", "people", &["--schedule", schedule]);
        assert_eq!(out.status.code(), Some(2), "{schedule}: {}", text(&out));
        assert!(text(&out).contains(needle), "{schedule}: {}", text(&out));
    }
    let out = add_sync(
        home,
        "bad",
        "people",
        &["--schedule", "cron:0 2 * * *", "--timezone", "Mars/Olympus"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("schedule.timezone \"Mars/Olympus\""),
        "{}",
        text(&out)
    );
    let out = run(wharf(home).args(["--json", "sync", "list"]));
    assert_eq!(
        json(&out).as_array().map(Vec::len),
        Some(1),
        "nothing half-added"
    );
}

/// A `wharf worker` child whose logs go to a file (nobody reads a pipe while it runs).
struct Worker {
    child: Child,
}

impl Worker {
    fn start(home: &std::path::Path, data: &std::path::Path, n: usize) -> Self {
        let log = std::fs::File::create(home.join(format!("worker-{n}.log"))).expect("log");
        let child = wharf(home)
            .args([
                "--allow-private-endpoints",
                "worker",
                "--max-concurrent-runs",
                "2",
            ])
            .env("RUST_LOG", "info")
            .env("WHARF_LOCAL_SOURCE_ROOTS", data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn worker");
        Self { child }
    }

    fn stop(mut self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{status}");
    }
}

/// Every run of every sync, from `wharf --json runs`.
fn all_runs(home: &std::path::Path) -> Vec<Value> {
    let out = run(wharf(home).args(["--json", "runs", "--limit", "1000"]));
    json(&out).as_array().expect("runs").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_store_run_every_due_time_exactly_once() {
    let Fixture { home, data, server } = Fixture::start().await;
    let home = home.path();
    add_model(home, "people", "SELECT * FROM people");
    for i in 0..20 {
        let out = add_sync(
            home,
            &format!("s{i:02}"),
            "people",
            &["--schedule", "every:1m"],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let added = time::OffsetDateTime::now_utc();
    let workers = [
        Worker::start(home, data.path(), 1),
        Worker::start(home, data.path(), 2),
    ];
    // Until the first minute boundary after the syncs were added, and 30 s for the runs it
    // makes due (20 runs, 2 processes with 2 slots each).
    let first = added
        .replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .expect("minute")
        + time::Duration::minutes(1);
    let wait = first + time::Duration::seconds(30) - time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::try_from(wait).unwrap_or(Duration::ZERO)).await;
    let stopped = time::OffsetDateTime::now_utc();
    let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
    for worker in workers {
        worker.stop();
    }
    let runs = all_runs(home);
    let mut by_sync: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &runs {
        assert_eq!(r["trigger"], "schedule", "{r}");
        assert_eq!(r["status"], "succeeded", "{r}");
        by_sync
            .entry(r["sync"].as_str().expect("sync").to_string())
            .or_default()
            .push(r["due_at"].as_str().expect("due").to_string());
    }
    // Every minute boundary after the syncs were added and well before the stop: one run of
    // each sync, no more.
    let mut boundaries = Vec::new();
    let mut b = first;
    while b + time::Duration::seconds(20) < stopped {
        boundaries.push(b);
        b += time::Duration::minutes(1);
    }
    assert!(!boundaries.is_empty());
    assert_eq!(by_sync.len(), 20, "every sync ran: {by_sync:?}");
    for (sync, dues) in &by_sync {
        let unique: BTreeSet<&String> = dues.iter().collect();
        assert_eq!(
            unique.len(),
            dues.len(),
            "{sync}: a due time ran twice: {dues:?}"
        );
        for boundary in &boundaries {
            let want = wharf_store_stamp(*boundary);
            assert!(dues.contains(&want), "{sync}: {want} missing from {dues:?}");
        }
    }
    // The bucket holds exactly the runs' files: none twice, none missing.
    let (objects, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert!(uploads.is_empty(), "{uploads:?}");
    let files: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r["files"].as_array().cloned().unwrap_or_default())
        .map(|f| f["key"].as_str().expect("key").to_string())
        .collect();
    let objects: BTreeSet<String> = objects.into_iter().collect();
    assert_eq!(files.len(), runs.len(), "one file per run");
    assert_eq!(objects, files);
    // Both processes did some of the work: due times come in a burst of 20, and each process
    // claims at most 2 runs at a time.
    let ran_by: BTreeSet<String> = runs
        .iter()
        .map(|r| r["owner"].as_str().expect("owner").to_string())
        .collect();
    for pid in &pids {
        assert!(
            ran_by.iter().any(|o| o.ends_with(&format!(":{pid}"))),
            "worker {pid} ran nothing: {ran_by:?}"
        );
    }
}

/// The fixed-width UTC form runs are recorded with.
fn wharf_store_stamp(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_upload_closes_the_run_on_restart_and_its_retry_delivers_once() {
    let Fixture { server, home, data } = Fixture::start().await;
    let home = home.path();
    let out = run(wharf(home)
        .args(["sample", "customers", "--rows", "400000", "--out"])
        .arg(data.path().join("customers.parquet")));
    assert!(out.status.success(), "{}", text(&out));
    add_model(home, "customers", "SELECT * FROM customers");
    let out = add_sync(home, "big", "customers", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let admin = token(home, "default", "ops", "admin");
    let roots = data.path().display().to_string();
    let env = [
        ("WHARF_LOCAL_SOURCE_ROOTS", roots.as_str()),
        ("WHARF_ALLOW_PRIVATE_ENDPOINTS", "true"),
        ("RUST_LOG", "info"),
    ];
    let mut first = Server::start(home, &env);
    server.faults.inject(
        "UploadPart",
        Fault::Delay(Duration::from_millis(1500)),
        1000,
    );
    let triggered = first.call("POST", "/api/v1/syncs/big/runs", Some(&admin), None);
    assert_eq!(triggered.status, 202, "{}", triggered.raw);
    let run_id = triggered.body["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.faults.seen("UploadPart") < 2 {
        assert!(
            Instant::now() < deadline,
            "no part uploaded: {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();
    let (_, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert_eq!(
        uploads.len(),
        1,
        "the killed run's upload is open: {uploads:?}"
    );
    server.faults.clear("UploadPart");

    // Restart: the run is closed as interrupted, its upload aborted, and its retry delivers.
    let second = Server::start(home, &env);
    let deadline = Instant::now() + Duration::from_secs(180);
    let runs = loop {
        let out = run(wharf(home).args(["--json", "runs", "--sync", "big"]));
        let runs = json(&out);
        let done = runs.as_array().is_some_and(|r| {
            r.len() == 2
                && r.iter()
                    .all(|r| r["status"] != "running" && r["status"] != "queued")
        });
        if done {
            break runs;
        }
        assert!(Instant::now() < deadline, "{runs}\n{}", second.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (retry, killed) = (&runs[0], &runs[1]);
    assert_eq!(killed["run_id"], run_id.as_str());
    assert_eq!(killed["status"], "interrupted", "{runs}");
    assert_eq!(killed["trigger"], "api");
    assert_eq!(killed["attempt"], 1);
    assert_eq!(retry["status"], "succeeded", "{runs}\n{}", second.log());
    assert_eq!(retry["trigger"], "retry");
    assert_eq!(retry["attempt"], 2);
    assert_eq!(retry["retry_of"], run_id.as_str());
    let (objects, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert!(
        uploads.is_empty(),
        "the killed run's upload is gone: {uploads:?}"
    );
    let files: Vec<&str> = retry["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["key"].as_str().expect("key"))
        .collect();
    assert_eq!(objects, files, "exactly the retry's files, once");
}
