//! `GET /metrics` of the real `wharf serve`, after runs, parsed by the Prometheus project's
//! own Python parser (`prometheus_client.openmetrics.parser`).

mod common;

use common::server::{Server, token};
use common::{Fixture, run, text, wharf};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The metric families of `body`, as the Python parser reads them:
/// `{name: {"type": ..., "samples": [[sample name, {labels}, value], ...]}}`.
fn parse(body: &str) -> Value {
    let python = wharf_testkit::pyenv().join("bin/python");
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(body.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the parser refused the metrics: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(families: &Value, family: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families[family]["samples"]
        .as_array()?
        .iter()
        .find(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][*k].as_str() == Some(*v)))
        .and_then(|s| s[2].as_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_runs_parse_and_count_what_happened() {
    let Fixture {
        server: _s3,
        home,
        data,
    } = Fixture::start().await;
    let home = home.path();
    common::people_sync(
        home,
        "p",
        &[
            "--key-template",
            "{sync}/{run}.{ext}",
            // A retry comes late: the test sees it queued, not run.
            "--retry-base",
            "1h",
        ],
    );
    let admin = token(home, "default", "ops", "admin");
    let viewer = token(home, "default", "eyes", "viewer");
    let roots = data.path().display().to_string();
    let env = [
        ("WHARF_ALLOW_PRIVATE_ENDPOINTS", "true"),
        ("WHARF_LOCAL_SOURCE_ROOTS", roots.as_str()),
        ("RUST_LOG", "info"),
    ];
    let mut api = Server::start(home, &env);
    for _ in 0..2 {
        let triggered = api.call("POST", "/api/v1/syncs/p/runs", Some(&admin), None);
        assert_eq!(triggered.status, 202, "{}", triggered.raw);
        let location = triggered.location.expect("location");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = api.call("GET", &location, Some(&admin), None);
            if run.body["status"] == "succeeded" {
                break;
            }
            assert!(Instant::now() < deadline, "{}\n{}", run.raw, api.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A transient failure: SlowDown on every attempt. Its retry is queued; the sync is then
    // paused, so the retry waits.
    _s3.faults.inject(
        "PutObject",
        wharf_delivery::local_s3::Fault::Error {
            code: "SlowDown".into(),
            status: 503,
        },
        1000,
    );
    let triggered = api.call("POST", "/api/v1/syncs/p/runs", Some(&admin), None);
    let location = triggered.location.expect("location");
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.call("GET", &location, Some(&admin), None).body["status"] != "failed" {
        assert!(Instant::now() < deadline, "{}", api.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    _s3.faults.clear("PutObject");
    let paused = api.call("POST", "/api/v1/syncs/p/pause", Some(&admin), None);
    assert_eq!(paused.status, 200, "{}", paused.raw);
    assert_eq!(paused.body["paused"], true);
    assert_eq!(paused.body["pause_reason"], "paused by token:ops");

    // A token is needed, and an admin's: the metrics span every workspace.
    assert_eq!(api.call("GET", "/metrics", None, None).status, 401);
    assert_eq!(api.call("GET", "/metrics", Some(&viewer), None).status, 403);
    let (status, _, body) =
        api.get_with("/metrics", &[("Authorization", &format!("Bearer {admin}"))]);
    assert_eq!(status, 200, "{body}");
    let families = parse(&body);
    let p = [("workspace", "default"), ("sync", "p")];
    let succeeded = [
        ("workspace", "default"),
        ("sync", "p"),
        ("status", "succeeded"),
    ];
    assert_eq!(
        sample(&families, "wharf_runs", "wharf_runs_total", &succeeded),
        Some(2.0),
        "{body}"
    );
    assert_eq!(families["wharf_runs"]["type"], "counter");
    assert_eq!(
        sample(
            &families,
            "wharf_rows_exported",
            "wharf_rows_exported_total",
            &p
        ),
        Some(6.0),
        "3 rows, twice: {body}"
    );
    let bytes = sample(
        &families,
        "wharf_exported_bytes",
        "wharf_exported_bytes_total",
        &p,
    );
    assert!(bytes.is_some_and(|b| b > 0.0), "{body}");
    for (family, kind) in [
        ("wharf_run_duration_seconds", "histogram"),
        ("wharf_part_upload_duration_seconds", "histogram"),
        ("wharf_scheduler_lag_seconds", "histogram"),
        ("wharf_queue_depth", "gauge"),
        ("wharf_paused_syncs", "gauge"),
        ("wharf_runs_in_flight", "gauge"),
        ("wharf_run_retries", "counter"),
        ("wharf_s3_errors", "counter"),
    ] {
        assert_eq!(families[family]["type"], kind, "{family}: {body}");
    }
    let failed = [
        ("workspace", "default"),
        ("sync", "p"),
        ("status", "failed"),
    ];
    assert_eq!(
        sample(&families, "wharf_runs", "wharf_runs_total", &failed),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &families,
            "wharf_run_retries",
            "wharf_run_retries_total",
            &p
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &families,
            "wharf_s3_errors",
            "wharf_s3_errors_total",
            &[("code", "SlowDown")]
        ),
        Some(1.0)
    );
    let count = |family: &str, labels: &[(&str, &str)]| {
        sample(&families, family, &format!("{family}_count"), labels)
    };
    assert_eq!(count("wharf_run_duration_seconds", &[]), Some(3.0));
    // One object each, sent whole; the failed run's never went through.
    assert_eq!(count("wharf_part_upload_duration_seconds", &[]), Some(2.0));
    assert_eq!(
        count("wharf_scheduler_lag_seconds", &[("trigger", "api")]),
        Some(3.0)
    );
    // The retry waits up to an hour: not due yet. The sync is paused.
    assert_eq!(
        sample(&families, "wharf_queue_depth", "wharf_queue_depth", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&families, "wharf_paused_syncs", "wharf_paused_syncs", &[]),
        Some(1.0)
    );
    // `sync run --server`: the server runs it through its queue (the sync is paused, but a
    // run asked for by hand still runs) and the command follows it to its end.
    let out = run(wharf(home)
        .args([
            "--json",
            "sync",
            "run",
            "p",
            "--server",
            &api.base,
            "--token-env",
            "T",
        ])
        .env("T", &admin));
    assert!(out.status.success(), "{}\n{}", text(&out), api.log());
    let remote = common::json(&out);
    assert_eq!(remote["status"], "succeeded", "{remote}");
    assert_eq!(remote["rows"], 3);
    let shown = api.call(
        "GET",
        &format!("/api/v1/runs/{}", remote["run_id"].as_str().expect("id")),
        Some(&admin),
        None,
    );
    assert_eq!(shown.body["trigger"], "api");
    assert_eq!(shown.body["actor"], "token:ops");
    // A bad token: the API's 401, said plainly, exit 2.
    let out = run(wharf(home)
        .args([
            "sync",
            "run",
            "p",
            "--server",
            &api.base,
            "--token-env",
            "T",
        ])
        .env("T", "wharf_nope"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));
    api.terminate();

    // Public, when the operator says so.
    let mut public = Server::start(
        home,
        &[("WHARF_METRICS_PUBLIC", "true"), ("RUST_LOG", "info")],
    );
    let (status, _, body) = public.get_with("/metrics", &[]);
    assert_eq!(status, 200, "{body}");
    parse(&body);
    public.terminate();
}
