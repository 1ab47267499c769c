//! End-to-end tests of sources, models, syncs, runs and plan through the built binary: the
//! exact `--json` shapes other tools rely on, exit codes, and errors that name the field.

mod common;

use common::{BUCKET, Fixture, json, keys, run, text, wharf};
use serde_json::Value;
use wharf_testkit::bucket_residue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_syncs_runs_and_plan_with_their_json_shapes() {
    let Fixture {
        server,
        home,
        data: _data,
    } = Fixture::start().await;

    // Bad SQL: exit 2, DataFusion's message and the position.
    let out = run(wharf(home.path()).args([
        "model",
        "add",
        "bad",
        "--source",
        "files",
        "--primary-key",
        "id",
        "--sql",
        "SELECT id,\n  nope FROM people",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("nope") && text(&out).contains("line 2, column 3"),
        "{}",
        text(&out)
    );
    let out = run(wharf(home.path()).args([
        "model",
        "add",
        "bad",
        "--source",
        "files",
        "--primary-key",
        "key",
        "--sql",
        "SELECT * FROM people",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("\"key\" is not in the query's result"),
        "{}",
        text(&out)
    );

    let out = run(wharf(home.path()).args([
        "model",
        "add",
        "people",
        "--source",
        "files",
        "--primary-key",
        "id",
        "--sql",
        "SELECT * FROM people ORDER BY id",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let out =
        run(wharf(home.path()).args(["--json", "model", "preview", "people", "--limit", "2"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        json(&out),
        serde_json::json!([
            {"id": 1, "name": "Ada", "city": "Paris, \"FR\""},
            {"id": 2, "name": "Bob", "city": null},
        ])
    );

    // Bad sync options: exit 2 naming the flag.
    for (args, flag) in [
        (vec!["--format", "excel"], "--format"),
        (
            vec!["--format", "csv", "--key-template", "{sync}/../{run}.{ext}"],
            "--key-template",
        ),
        (
            vec!["--format", "csv", "--key-template", "{sync}/{day}.{ext}"],
            "--key-template",
        ),
        (
            vec!["--format", "parquet", "--csv-delimiter", ";"],
            "--csv-delimiter",
        ),
        (vec!["--format", "csv", "--columns", "id,nope"], "--columns"),
    ] {
        let out = run(wharf(home.path())
            .args([
                "sync",
                "add",
                "s",
                "--model",
                "people",
                "--destination",
                "lake",
            ])
            .args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(flag), "{args:?}: {}", text(&out));
    }

    let out = run(wharf(home.path()).args([
        "sync",
        "add",
        "people-csv",
        "--model",
        "people",
        "--destination",
        "lake",
        "--format",
        "csv",
        "--compression",
        "gzip",
        "--columns",
        "id,name:full_name",
        "--manifest",
        "--key-template",
        "{sync}/{run}/part-{part}.{ext}",
    ]));
    assert!(out.status.success(), "{}", text(&out));

    let out = run(wharf(home.path()).args(["--json", "plan", "people-csv"]));
    assert!(out.status.success(), "{}", text(&out));
    let plan = json(&out);
    assert_eq!(plan["rows"], 3);
    assert_eq!(
        plan["keys"],
        serde_json::json!(["exports/people-csv/RUN-ID/part-00000.csv.gz"])
    );
    assert_eq!(plan["manifest"], "exports/people-csv/RUN-ID/_manifest.json");
    let (objects, _) = bucket_residue(&server.admin(), BUCKET).await;
    assert!(objects.is_empty(), "plan wrote {objects:?}");

    let out = run(wharf(home.path()).args([
        "--allow-private-endpoints",
        "--json",
        "sync",
        "run",
        "people-csv",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let outcome = json(&out);
    assert_eq!(
        keys(&outcome),
        [
            "bytes",
            "changes",
            "duration_ms",
            "error",
            "files",
            "mode",
            "rows",
            "run_id",
            "status"
        ]
    );
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["rows"], 3);
    assert_eq!(outcome["error"], Value::Null);
    let run_id = outcome["run_id"].as_str().expect("run id").to_string();
    let file = &outcome["files"][0];
    assert_eq!(keys(file), ["bytes", "checksum", "key", "rows"]);
    assert_eq!(
        file["key"],
        format!("exports/people-csv/{run_id}/part-00000.csv.gz")
    );
    assert!(
        file["checksum"]
            .as_str()
            .expect("checksum")
            .starts_with("crc32c:")
    );
    assert_eq!(outcome["bytes"], file["bytes"]);
    let (objects, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert_eq!(objects.len(), 2, "the file and its manifest: {objects:?}");
    assert!(uploads.is_empty());

    let out = run(wharf(home.path()).args(["--json", "runs", "--sync", "people-csv"]));
    let runs = json(&out);
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["status"], "succeeded");
    let out = run(wharf(home.path()).args(["runs", "show", &run_id]));
    assert!(out.status.success());
    assert!(text(&out).contains("_manifest.json"), "{}", text(&out));
    let out = run(wharf(home.path()).args(["runs", "--sync", "nope"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A failed run: exit 1, the same JSON shape with the error.
    server.deny(&server.access_key.clone(), "PutObject");
    let out = run(wharf(home.path()).args([
        "--allow-private-endpoints",
        "--json",
        "sync",
        "run",
        "people-csv",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failed = json(&out);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "s3.AccessDenied");
    assert!(
        failed["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("PutObject"))
    );
    assert_eq!(failed["files"], serde_json::json!([]));
}
