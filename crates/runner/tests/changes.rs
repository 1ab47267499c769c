//! Runs of syncs that send changes, against the in-process S3 server, every file read back by
//! DuckDB: the first run sends every row as added; later runs send what changed; a failed run
//! leaves the snapshot where it was, so the next run sends its changes too; a repeated key fails
//! the run before anything is uploaded.

mod support;

use serde_json::{Value, json};
use support::{BUCKET, Fixture, settings};
use wharf_delivery::local_s3::Fault;
use wharf_domain::{ChangeCounts, DiffLayout, SyncMode};
use wharf_store::DEFAULT_WORKSPACE;

fn write_people(fx: &Fixture, rows: &[(i64, &str, Option<f64>)]) {
    let mut text = String::from("id,name,score\n");
    for (id, name, score) in rows {
        text.push_str(&format!(
            "{id},{name},{}\n",
            score.map(|s| format!("{s:.1}")).unwrap_or_default()
        ));
    }
    std::fs::write(fx.warehouse.path().join("people.csv"), text).expect("write");
}

/// The rows of the CSV files `keys` as DuckDB reads them: `[id, name, score, _change]`,
/// ordered by id.
async fn read_back(fx: &Fixture, keys: &[String]) -> Vec<Vec<Value>> {
    let dir = tempfile::tempdir().expect("dir");
    wharf_testkit::duckdb_rows(&format!(
        "SELECT id, name, score, _change FROM read_csv({}, header = true, \
         columns = {{'id': 'BIGINT', 'name': 'VARCHAR', 'score': 'DOUBLE', '_change': 'VARCHAR'}}) \
         ORDER BY id",
        fx.download(dir.path(), keys).await
    ))
}

fn diff_settings() -> wharf_domain::SyncSettings {
    wharf_domain::SyncSettings {
        mode: SyncMode::Diff,
        diff_layout: DiffLayout::Column,
        manifest: true,
        key_template: "{sync}/{run}/part-{part}.{ext}".into(),
        ..settings("csv")
    }
}

async fn snapshot_run(fx: &Fixture, sync: &str) -> Option<String> {
    fx.store
        .sync(DEFAULT_WORKSPACE, sync)
        .await
        .expect("sync")
        .snapshot_run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_sync_sends_every_row_first_then_what_changed_and_a_failed_run_loses_nothing() {
    let fx = Fixture::start().await;
    write_people(
        &fx,
        &[
            (1, "Ada", Some(1.5)),
            (2, "Bob", None),
            (3, "Cy", Some(3.0)),
        ],
    );
    fx.model("people", "SELECT * FROM people").await;
    fx.sync("d", "people", diff_settings()).await;

    let first = fx.run("d").await;
    assert_eq!(first.status, "succeeded", "{first:?}");
    assert_eq!(first.mode, "diff");
    assert_eq!(
        first.changes,
        Some(ChangeCounts {
            added: 3,
            ..ChangeCounts::default()
        })
    );
    let keys: Vec<String> = first.files.iter().map(|f| f.key.clone()).collect();
    assert_eq!(
        read_back(&fx, &keys).await,
        [
            vec![json!(1), json!("Ada"), json!(1.5), json!("added")],
            vec![json!(2), json!("Bob"), Value::Null, json!("added")],
            vec![json!(3), json!("Cy"), json!(3.0), json!("added")],
        ]
    );
    assert_eq!(
        snapshot_run(&fx, "d").await.as_deref(),
        Some(first.run_id.as_str())
    );

    // Bob gets a score, Cy leaves, Dee arrives.
    write_people(
        &fx,
        &[
            (1, "Ada", Some(1.5)),
            (2, "Bob", Some(2.0)),
            (4, "Dee", None),
        ],
    );
    let second = fx.run("d").await;
    assert_eq!(
        second.changes,
        Some(ChangeCounts {
            added: 1,
            changed: 1,
            removed: 1,
            unchanged: 1,
        }),
        "{second:?}"
    );
    let keys: Vec<String> = second.files.iter().map(|f| f.key.clone()).collect();
    assert_eq!(
        read_back(&fx, &keys).await,
        [
            vec![json!(2), json!("Bob"), json!(2.0), json!("changed")],
            vec![json!(3), Value::Null, Value::Null, json!("removed")],
            vec![json!(4), json!("Dee"), Value::Null, json!("added")],
        ]
    );
    let manifest: Value = serde_json::from_slice(
        &wharf_testkit::object_bytes(
            &fx.server.admin(),
            BUCKET,
            second.manifest.as_deref().expect("a manifest"),
        )
        .await,
    )
    .expect("manifest json");
    assert_eq!(manifest["mode"], "diff");
    assert_eq!(
        manifest["changes"],
        json!({"added": 1, "changed": 1, "removed": 1, "unchanged": 1})
    );

    // The third run fails at the upload: its snapshot must not become the sync's.
    write_people(
        &fx,
        &[
            (1, "Ada", Some(9.0)),
            (2, "Bob", Some(2.0)),
            (4, "Dee", None),
        ],
    );
    fx.server.faults.inject(
        "PutObject",
        Fault::Error {
            code: "AccessDenied".into(),
            status: 403,
        },
        100,
    );
    let failed = fx.run("d").await;
    fx.server.faults.clear("PutObject");
    assert_eq!(failed.status, "failed", "{failed:?}");
    assert_eq!(
        snapshot_run(&fx, "d").await.as_deref(),
        Some(second.run_id.as_str())
    );

    // The fourth sends the failed run's change (Ada) and its own (Dee's name).
    write_people(
        &fx,
        &[
            (1, "Ada", Some(9.0)),
            (2, "Bob", Some(2.0)),
            (4, "Dee", Some(4.0)),
        ],
    );
    let fourth = fx.run("d").await;
    assert_eq!(
        fourth.changes,
        Some(ChangeCounts {
            changed: 2,
            unchanged: 1,
            ..ChangeCounts::default()
        }),
        "{fourth:?}"
    );
    let keys: Vec<String> = fourth.files.iter().map(|f| f.key.clone()).collect();
    assert_eq!(
        read_back(&fx, &keys).await,
        [
            vec![json!(1), json!("Ada"), json!(9.0), json!("changed")],
            vec![json!(4), json!("Dee"), json!(4.0), json!("changed")],
        ]
    );
    assert_eq!(
        snapshot_run(&fx, "d").await.as_deref(),
        Some(fourth.run_id.as_str())
    );
    // Only the current snapshot is kept, without its change set.
    let kept: Vec<String> = std::fs::read_dir(
        fx.settings.snapshots_dir.join(
            fx.store
                .sync(DEFAULT_WORKSPACE, "d")
                .await
                .expect("sync")
                .id,
        ),
    )
    .expect("snapshots")
    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
    .collect();
    assert_eq!(kept, [fourth.run_id.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_fails_the_run_before_anything_is_uploaded() {
    let fx = Fixture::start().await;
    write_people(
        &fx,
        &[
            (1, "Ada", None),
            (2, "Bob", None),
            (2, "Bea", None),
            (2, "Bo", None),
        ],
    );
    fx.model("people", "SELECT * FROM people").await;
    fx.sync("d", "people", diff_settings()).await;
    let outcome = fx.run("d").await;
    assert_eq!(outcome.status, "failed");
    let error = outcome.error.expect("error");
    assert_eq!(error.code, "model.duplicate_key");
    assert!(
        error.message.contains("2 row(s) repeat a key") && error.message.contains("for example 2"),
        "{}",
        error.message
    );
    assert_eq!(
        fx.residue().await,
        (Vec::new(), Vec::new()),
        "nothing uploaded"
    );
    assert_eq!(snapshot_run(&fx, "d").await, None);
}

/// The rows of one CSV file without a `_change` column, as DuckDB reads them.
async fn read_plain(fx: &Fixture, key: &str) -> Vec<Vec<Value>> {
    let dir = tempfile::tempdir().expect("dir");
    wharf_testkit::duckdb_rows(&format!(
        "SELECT * FROM read_csv({}, header = true, \
         columns = {{'id': 'BIGINT', 'name': 'VARCHAR', 'score': 'DOUBLE'}}) ORDER BY id",
        fx.download(dir.path(), &[key]).await
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_by_kind_of_change_writes_a_file_per_kind_and_the_run_records_them_all() {
    let fx = Fixture::start().await;
    write_people(
        &fx,
        &[(1, "Ada", Some(1.5)), (2, "Bob", None), (3, "Cy", None)],
    );
    fx.model("people", "SELECT * FROM people").await;
    fx.sync(
        "f",
        "people",
        wharf_domain::SyncSettings {
            diff_layout: DiffLayout::Files,
            key_template: "{sync}/{run}/{change}-{part}.{ext}".into(),
            ..diff_settings()
        },
    )
    .await;
    let first = fx.run("f").await;
    let names: Vec<&str> = first
        .files
        .iter()
        .map(|f| f.key.rsplit('/').next().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["added-00000.csv"],
        "kinds without rows write no file"
    );

    write_people(
        &fx,
        &[
            (1, "Ada", Some(1.5)),
            (2, "Bob", Some(2.0)),
            (4, "Dee", None),
        ],
    );
    let second = fx.run("f").await;
    assert_eq!(second.status, "succeeded", "{second:?}");
    let names: Vec<&str> = second
        .files
        .iter()
        .map(|f| f.key.rsplit('/').next().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["added-00000.csv", "changed-00000.csv", "removed-00000.csv"]
    );
    assert_eq!(
        read_plain(&fx, &second.files[0].key).await,
        [vec![json!(4), json!("Dee"), Value::Null]]
    );
    assert_eq!(
        read_plain(&fx, &second.files[1].key).await,
        [vec![json!(2), json!("Bob"), json!(2.0)]]
    );
    assert_eq!(
        read_plain(&fx, &second.files[2].key).await,
        [vec![json!(3), Value::Null, Value::Null]]
    );
    let record = fx
        .store
        .run(DEFAULT_WORKSPACE, &second.run_id)
        .await
        .expect("run");
    let mut recorded: Vec<(i64, String)> = record
        .files
        .iter()
        .map(|f| (f.part, f.key.clone()))
        .collect();
    recorded.sort();
    assert_eq!(
        recorded.len(),
        4,
        "three files and the manifest: {recorded:?}"
    );
    assert_eq!(recorded[0].0, -1, "the manifest");
    assert_eq!(
        recorded[1..].iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_sends_new_keys_delta_sends_new_and_changed_rows_and_no_change_follows_on_empty() {
    let fx = Fixture::start().await;
    write_people(
        &fx,
        &[(1, "Ada", Some(1.5)), (2, "Bob", None), (3, "Cy", None)],
    );
    fx.model("people", "SELECT * FROM people").await;
    for (name, mode) in [("ins", SyncMode::Insert), ("del", SyncMode::Delta)] {
        fx.sync(
            name,
            "people",
            wharf_domain::SyncSettings {
                mode,
                on_empty: wharf_domain::OnEmpty::Skip,
                ..diff_settings()
            },
        )
        .await;
        let first = fx.run(name).await;
        assert_eq!(first.changes.map(|c| c.added), Some(3), "{first:?}");
    }
    // Bob changes, Cy leaves, Dee arrives.
    write_people(
        &fx,
        &[
            (1, "Ada", Some(1.5)),
            (2, "Bob", Some(2.0)),
            (4, "Dee", None),
        ],
    );
    let insert = fx.run("ins").await;
    assert_eq!(insert.mode, "insert");
    assert_eq!(insert.files.len(), 1, "{insert:?}");
    assert_eq!(
        read_plain(&fx, &insert.files[0].key).await,
        [vec![json!(4), json!("Dee"), Value::Null]],
        "only the new key"
    );
    let delta = fx.run("del").await;
    assert_eq!(delta.mode, "delta");
    assert_eq!(
        delta.changes,
        Some(ChangeCounts {
            added: 1,
            changed: 1,
            removed: 1,
            unchanged: 1,
        })
    );
    assert_eq!(
        read_plain(&fx, &delta.files[0].key).await,
        [
            vec![json!(2), json!("Bob"), json!(2.0)],
            vec![json!(4), json!("Dee"), Value::Null],
        ],
        "new and changed rows, no removed one"
    );
    // Nothing changed: on-empty skip writes no file, the manifest still says so.
    let quiet = fx.run("del").await;
    assert_eq!(quiet.status, "succeeded", "{quiet:?}");
    assert!(quiet.files.is_empty(), "{quiet:?}");
    assert!(quiet.manifest.is_some(), "{quiet:?}");
    assert_eq!(
        quiet.changes,
        Some(ChangeCounts {
            unchanged: 3,
            ..ChangeCounts::default()
        })
    );
}
