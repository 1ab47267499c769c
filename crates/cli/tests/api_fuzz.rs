//! The OpenAPI document fuzzed by schemathesis (pinned in the test venv) against the real
//! `wharf serve`: every operation, with a valid admin token; no 5xx, every response as the
//! document describes it (status, content type, headers, body schema), auth enforced.

mod common;

use common::server::{Server, token};
use common::{Fixture, text};
use serde_json::{Value, json};

/// Examples per operation in the fuzzing phase: enough to reach every parameter and body
/// field, small enough for CI.
const EXAMPLES: &str = "25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_document() {
    let fixture = Fixture::start().await;
    let home = fixture.home.path();
    let admin = token(home, "default", "admin", "admin");
    let data = fixture.data.path().to_string_lossy().to_string();
    let server = Server::start(
        home,
        &[
            ("WHARF_ALLOW_PRIVATE_ENDPOINTS", "1"),
            ("WHARF_LOCAL_SOURCE_ROOTS", data.as_str()),
            ("RUST_LOG", "info"),
        ],
    );
    // Objects for the fuzzer to find next to the ones it makes up.
    let model = json!({"name": "people", "source": "files", "sql": "SELECT * FROM people", "primary_key": "id"});
    assert_eq!(
        server
            .call("POST", "/api/v1/models", Some(&admin), Some(&model))
            .status,
        201
    );
    let sync = json!({"name": "p", "model": "people", "destination": "lake", "format": "csv"});
    assert_eq!(
        server
            .call("POST", "/api/v1/syncs", Some(&admin), Some(&sync))
            .status,
        201
    );
    let segment = json!({"name": "later", "model": "people", "filter": {"column": "id", "op": ">", "value": 1}});
    assert_eq!(
        server
            .call("POST", "/api/v1/segments", Some(&admin), Some(&segment))
            .status,
        201
    );
    let user = json!({"email": "ada@example.com", "role": "viewer", "password": "correct horse battery staple"});
    assert_eq!(
        server
            .call("POST", "/api/v1/users", Some(&admin), Some(&user))
            .status,
        201
    );
    token(home, "default", "ci", "viewer");

    let report_dir = tempfile::tempdir().expect("report dir");
    let report = report_dir.path().join("schemathesis.json");
    let schemathesis = wharf_testkit::pyenv().join("bin/schemathesis");
    let out = std::process::Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{}/api/openapi.json", server.base))
        .args(["--url", &format!("{}/api/v1", server.base)])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all"])
        // wharf checks values the schema cannot express (bucket names, SQL, filters against
        // a model): data valid by the schema alone is often, rightly, a 422.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--phases", "examples,coverage,fuzzing"])
        // The examples name the objects made above, so operations on them are reached too.
        .args(["--max-examples", EXAMPLES])
        .args(["--seed", "20261206", "--generation-deterministic"])
        .args(["--workers", "1", "--no-color"])
        .args(["--report", "json", "--report-json-path"])
        .arg(&report)
        .env(
            "HYPOTHESIS_STORAGE_DIRECTORY",
            report_dir.path().join("hypothesis"),
        )
        .current_dir(report_dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", schemathesis.display()));
    let output = text(&out);
    let summary: String = output
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{output}"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("report JSON");
    let generated = report["test_cases"]["generated"].as_u64().unwrap_or(0);
    assert!(generated > 1000, "too few cases to mean much: {report}");
    let log = server.log();
    assert!(!log.contains("status=5"), "a 5xx was logged:\n{log}");
}
