//! `--mode` through the binary: a diff sync's runs print and record their changes, `sync reset`
//! forgets the snapshot (audited), a change of columns resets it and says so, a change of
//! schedule does not; bad combinations are refused with the field.

mod common;

use common::{Fixture, json, people_model, people_sync, run, text, wharf};
use serde_json::{Value, json};

fn run_json(home: &std::path::Path, sync: &str) -> Value {
    let out = run(wharf(home).args(["--allow-private-endpoints", "--json", "sync", "run", sync]));
    assert!(out.status.success(), "{}", text(&out));
    json(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_sync_records_its_changes_and_resets_when_its_rows_change_shape() {
    let fx = Fixture::start().await;
    let home = fx.home.path();
    people_sync(home, "d", &["--mode", "diff", "--manifest"]);

    let first = run_json(home, "d");
    assert_eq!(first["mode"], "diff");
    assert_eq!(
        first["changes"],
        json!({"added": 3, "changed": 0, "removed": 0, "unchanged": 0})
    );
    std::fs::write(
        fx.data.path().join("people.csv"),
        "id,name,city\n1,Ada,Lyon\n2,Bob,\n4,Dee,Nice\n",
    )
    .expect("write");
    let second = run_json(home, "d");
    assert_eq!(
        second["changes"],
        json!({"added": 1, "changed": 1, "removed": 1, "unchanged": 1})
    );
    assert_eq!(second["rows"], 3, "three rows written: {second}");
    let run_id = second["run_id"].as_str().expect("id");
    let shown = json(&run(wharf(home).args(["--json", "runs", "show", run_id])));
    assert_eq!(shown["mode"], "diff");
    assert_eq!(shown["changes"], second["changes"]);
    let out = run(wharf(home).args(["sync", "show", "d"]));
    assert!(
        text(&out).contains(&format!(
            "mode          diff (column layout); compares with the snapshot of run {run_id}"
        )),
        "{}",
        text(&out)
    );

    // A new schedule keeps the snapshot; other columns forget it, and the update says so.
    let out = run(wharf(home).args([
        "--json",
        "sync",
        "update",
        "d",
        "--model",
        "people",
        "--destination",
        "lake",
        "--format",
        "csv",
        "--manifest",
        "--schedule",
        "every:6h",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let updated = json(&out);
    assert_eq!(updated["snapshot_run"], run_id, "{updated}");
    assert!(updated.get("snapshot_reset").is_none(), "{updated}");
    assert_eq!(
        updated["settings"]["mode"], "diff",
        "the mode is kept when left out"
    );
    let out = run(wharf(home).args([
        "sync",
        "update",
        "d",
        "--model",
        "people",
        "--destination",
        "lake",
        "--format",
        "csv",
        "--manifest",
        "--columns",
        "id,name",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Its snapshot was forgotten"),
        "{}",
        text(&out)
    );
    let third = run_json(home, "d");
    assert_eq!(
        third["changes"]["added"], 3,
        "a full run after the reset: {third}"
    );

    // `sync reset`, recorded in the audit log.
    let out = run(wharf(home).args(["--json", "sync", "reset", "d"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["snapshot_run"], Value::Null);
    let fourth = run_json(home, "d");
    assert_eq!(fourth["changes"]["added"], 3, "{fourth}");
    let snapshots = home.join("snapshots");
    assert_eq!(
        std::fs::read_dir(&snapshots).expect("snapshots").count(),
        1,
        "one sync's snapshots"
    );
    let out = run(wharf(home).args(["sync", "rm", "d"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(&snapshots).expect("snapshots").count(),
        0,
        "a removed sync's snapshots go with it"
    );
    let audit = run(wharf(home).args(["--json", "audit"]));
    assert!(
        text(&audit).contains("\"reset\""),
        "the reset is in the audit log: {}",
        text(&audit)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mode_combinations_name_the_field() {
    let fx = Fixture::start().await;
    let home = fx.home.path();
    people_model(home);
    let add = |extra: &[&str]| {
        run(wharf(home)
            .args([
                "sync",
                "add",
                "s",
                "--model",
                "people",
                "--destination",
                "lake",
                "--format",
                "csv",
            ])
            .args(extra))
    };
    let out = add(&["--mode", "mirror"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("all, insert, diff, delta"),
        "{}",
        text(&out)
    );
    let out = add(&["--mode", "delta", "--diff-layout", "files"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--diff-layout"), "{}", text(&out));
    let out = add(&["--mode", "diff", "--diff-layout", "files"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("put {change} in the key template"),
        "{}",
        text(&out)
    );
    let out = add(&["--mode", "insert", "--columns", "name,city"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("leave out people's key \"id\""),
        "{}",
        text(&out)
    );
    let out = add(&["--key-template", "{sync}/{run}/{change}-{part}.{ext}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("remove {change}"), "{}", text(&out));
}
