//! Runs that write several files and fail part way, retried as the same logical run against
//! the in-process S3 server: the retry renders the same keys, keeps the files the failed
//! attempt committed (found by its file records, or by `If-None-Match: *` answering 412), writes
//! the rest and then the manifest. For a diff, the retry sends the change set the failed attempt
//! compared, not a new one. Every file is read back by DuckDB.
//!
//! The files here are small, so each is committed by one PutObject (the multipart path commits
//! with CompleteMultipartUpload; the run sees either as "the file is committed").

mod support;

use serde_json::Value;
use support::{BUCKET, Fixture, settings};
use wharf_delivery::local_s3::Fault;
use wharf_domain::{DiffLayout, SyncMode, SyncSettings};
use wharf_store::DEFAULT_WORKSPACE;

fn write_ids(fx: &Fixture, rows: impl IntoIterator<Item = (i64, String)>) {
    let mut text = String::from("id,name\n");
    for (id, name) in rows {
        text.push_str(&format!("{id},{name}\n"));
    }
    std::fs::write(fx.warehouse.path().join("people.csv"), text).expect("write");
}

fn fifty(fx: &Fixture) {
    write_ids(fx, (1..=50).map(|id| (id, format!("name {id}"))));
}

/// Five files of ten rows, and a manifest.
fn split_settings() -> SyncSettings {
    SyncSettings {
        max_rows_per_file: Some(10),
        manifest: true,
        key_template: "{sync}/{run}/part-{part}.{ext}".into(),
        ..settings("csv")
    }
}

/// `id, name` of the CSV files `keys`, as DuckDB reads them, ordered by id.
async fn read_back(fx: &Fixture, keys: &[String]) -> Vec<Vec<Value>> {
    let dir = tempfile::tempdir().expect("dir");
    wharf_testkit::duckdb_rows(&format!(
        "SELECT * FROM read_csv({}, header = true, all_varchar = true) ORDER BY id::BIGINT",
        fx.download(dir.path(), keys).await
    ))
}

async fn manifest(fx: &Fixture, key: &str) -> Value {
    let bytes = wharf_testkit::object_bytes(&fx.server.admin(), BUCKET, key).await;
    serde_json::from_slice(&bytes).expect("manifest JSON")
}

/// The object keys in the bucket, and the multipart uploads left open (none, always).
async fn bucket(fx: &Fixture) -> Vec<String> {
    let (keys, uploads) = fx.residue().await;
    assert!(uploads.is_empty(), "open uploads: {uploads:?}");
    keys
}

/// The next `passing` PutObjects are served; those after answer 500 (for every retry of the
/// SDK), until the test clears the faults.
fn fail_puts_after(fx: &Fixture, passing: usize) {
    fx.server.faults.inject("PutObject", Fault::Pass, passing);
    fx.server.faults.inject("PutObject", internal_error(), 20);
}

fn internal_error() -> Fault {
    Fault::Error {
        code: "InternalError".into(),
        status: 500,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_file_run_that_failed_after_three_is_retried_as_the_same_run_and_writes_only_the_rest()
 {
    let fx = Fixture::start().await;
    fifty(&fx);
    fx.model("people", "SELECT * FROM people ORDER BY id").await;
    fx.sync("five", "people", split_settings()).await;

    fail_puts_after(&fx, 3);
    let first = fx.run("five").await;
    fx.server.faults.clear("PutObject");
    assert_eq!(first.status, "failed", "{first:?}");
    assert_eq!(
        first.error.as_ref().expect("error").code,
        "s3.InternalError"
    );
    assert_eq!(first.files.len(), 3, "{first:?}");
    let committed = bucket(&fx).await;
    assert_eq!(committed.len(), 3, "no manifest for an incomplete export");

    let puts = fx.server.faults.seen("PutObject");
    let retry = fx.retry("five", &first.run_id, 2).await;
    assert_eq!(retry.status, "succeeded", "{retry:?}");
    assert_ne!(retry.run_id, first.run_id, "an attempt of its own");
    assert_eq!(
        fx.server.faults.seen("PutObject") - puts,
        3,
        "files 4 and 5 and the manifest, nothing else"
    );
    // The same keys: the logical run's id, parts 0 to 4.
    let keys: Vec<String> = retry.files.iter().map(|f| f.key.clone()).collect();
    let expected: Vec<String> = (0..5)
        .map(|p| format!("team/exports/five/{}/part-{p:05}.csv", first.run_id))
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(
        keys[..3],
        first
            .files
            .iter()
            .map(|f| f.key.clone())
            .collect::<Vec<_>>()[..]
    );
    for (i, file) in retry.files.iter().enumerate() {
        let kept = (i < 3).then(|| first.run_id.clone());
        assert_eq!(file.carried_from, kept, "file {i}");
        assert_eq!(file.rows, 10, "file {i}");
    }
    assert_eq!(retry.rows, 50);
    let manifest_key = retry.manifest.clone().expect("manifest");
    assert_eq!(
        manifest_key,
        format!("team/exports/five/{}/_manifest.json", first.run_id)
    );
    let mut in_bucket = keys.clone();
    in_bucket.push(manifest_key.clone());
    in_bucket.sort();
    assert_eq!(
        bucket(&fx).await,
        in_bucket,
        "exactly 5 files and 1 manifest"
    );

    let body = manifest(&fx, &manifest_key).await;
    assert_eq!(body["run_id"], first.run_id.as_str());
    assert_eq!(body["rows"], 50);
    let listed: Vec<&str> = body["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["key"].as_str().expect("key"))
        .collect();
    assert_eq!(listed, keys.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        body["files"][0].get("carried_from").is_none(),
        "which attempt wrote a file is not the consumer's business: {body}"
    );

    let rows = read_back(&fx, &keys).await;
    let ids: Vec<String> = rows.iter().map(|r| r[0].to_string()).collect();
    let want: Vec<String> = (1..=50).map(|i| format!("\"{i}\"")).collect();
    assert_eq!(ids, want, "every row exactly once");

    // The record agrees with the bucket: the retry lists the five files and the manifest,
    // the first three kept from the first attempt.
    let record = fx
        .store
        .run(DEFAULT_WORKSPACE, &retry.run_id)
        .await
        .expect("record");
    assert_eq!(record.logical_run, first.run_id);
    assert_eq!(record.attempt, 2);
    let recorded: Vec<(String, Option<String>)> = record
        .files
        .iter()
        .map(|f| (f.key.clone(), f.carried_from.clone()))
        .collect();
    assert_eq!(recorded.len(), 6, "{recorded:?}");
    assert_eq!(recorded[5].0, manifest_key);
    assert!(
        recorded[..3]
            .iter()
            .all(|(_, c)| c.as_deref() == Some(first.run_id.as_str()))
    );
    assert!(recorded[3..].iter().all(|(_, c)| c.is_none()));
    assert_eq!(record.rows, 50);

    // The next run is a logical run of its own: keys of its own.
    let next = fx.run("five").await;
    assert_eq!(next.status, "succeeded");
    assert!(next.files[0].key.contains(&next.run_id), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_committed_but_not_recorded_is_found_by_its_412_and_kept_as_written() {
    let fx = Fixture::start().await;
    fifty(&fx);
    fx.model("people", "SELECT * FROM people ORDER BY id").await;
    fx.sync("five", "people", split_settings()).await;

    // The fourth PutObject takes effect but its answer is lost, and every retry of it fails:
    // the attempt stops with file 4 in the bucket and not in its records.
    fx.server.faults.inject("PutObject", Fault::Pass, 3);
    fx.server.faults.inject(
        "PutObject",
        Fault::LoseAnswer {
            code: "InternalError".into(),
            status: 500,
        },
        1,
    );
    fx.server.faults.inject("PutObject", internal_error(), 20);
    let first = fx.run("five").await;
    fx.server.faults.clear("PutObject");
    assert_eq!(first.status, "failed", "{first:?}");
    assert_eq!(first.files.len(), 3);
    assert_eq!(bucket(&fx).await.len(), 4, "file 4 landed unrecorded");

    // Between the attempts a row of file 4 changes in the source: the retry (an `all` sync
    // reads the source again) encodes a different file 4, meets the committed one (412), and
    // keeps it as the first attempt wrote it.
    write_ids(
        &fx,
        (1..=50).map(|id| {
            let name = if id == 35 {
                "renamed".to_string()
            } else {
                format!("name {id}")
            };
            (id, name)
        }),
    );
    let retry = fx.retry("five", &first.run_id, 2).await;
    assert_eq!(retry.status, "succeeded", "{retry:?}");
    assert_eq!(retry.files.len(), 5);
    assert_eq!(
        retry.files[3].carried_from.as_deref(),
        Some(first.run_id.as_str()),
        "found at its key: an earlier attempt of the run wrote it"
    );
    assert_eq!(retry.files[4].carried_from, None);
    let keys: Vec<String> = retry.files.iter().map(|f| f.key.clone()).collect();
    let mut in_bucket = keys.clone();
    in_bucket.push(retry.manifest.clone().expect("manifest"));
    in_bucket.sort();
    assert_eq!(bucket(&fx).await, in_bucket);
    // The manifest describes what was written: file 4 holds the row as it was.
    let rows = read_back(&fx, &keys).await;
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[34], [Value::from("35"), Value::from("name 35")]);
    let size = fx
        .server
        .admin()
        .head_object()
        .bucket(BUCKET)
        .key(&keys[3])
        .send()
        .await
        .expect("head")
        .content_length();
    assert_eq!(Some(retry.files[3].bytes as i64), size);
}

fn diff_files() -> SyncSettings {
    SyncSettings {
        mode: SyncMode::Diff,
        diff_layout: DiffLayout::Files,
        manifest: true,
        key_template: "{sync}/{run}/{change}-{part}.{ext}".into(),
        ..settings("csv")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_retry_sends_the_change_set_its_run_compared_and_the_next_run_the_rest() {
    let fx = Fixture::start().await;
    write_ids(&fx, (1..=5).map(|id| (id, format!("v1 {id}"))));
    fx.model_keyed("people", "SELECT * FROM people", "id").await;
    fx.sync("changes", "people", diff_files()).await;
    let full = fx.run("changes").await;
    assert_eq!(full.status, "succeeded", "{full:?}");
    assert_eq!(full.changes.expect("counts").added, 5);

    // v2: id 6 added, 2 changed, 5 removed. The run fails on its third file (removed).
    write_ids(
        &fx,
        [
            (1, "v1 1"),
            (2, "v2 2"),
            (3, "v1 3"),
            (4, "v1 4"),
            (6, "v2 6"),
        ]
        .map(|(id, name)| (id, name.to_string())),
    );
    fail_puts_after(&fx, 2);
    let failed = fx.run("changes").await;
    fx.server.faults.clear("PutObject");
    assert_eq!(failed.status, "failed", "{failed:?}");
    let counts = failed.changes;
    assert!(counts.is_none(), "a failed run records no counts");
    assert_eq!(failed.files.len(), 2, "added and changed committed");

    // v3 before the retry: id 7 appears. The retry still sends v2's change set: the removed
    // file and the manifest only, without reading the source again.
    write_ids(
        &fx,
        [
            (1, "v1 1"),
            (2, "v2 2"),
            (3, "v1 3"),
            (4, "v1 4"),
            (6, "v2 6"),
            (7, "v3 7"),
        ]
        .map(|(id, name)| (id, name.to_string())),
    );
    let puts = fx.server.faults.seen("PutObject");
    let retry = fx.retry("changes", &failed.run_id, 2).await;
    assert_eq!(retry.status, "succeeded", "{retry:?}");
    assert_eq!(fx.server.faults.seen("PutObject") - puts, 2);
    let c = retry.changes.expect("counts");
    assert_eq!((c.added, c.changed, c.removed, c.unchanged), (1, 1, 1, 3));
    let keys: Vec<String> = retry.files.iter().map(|f| f.key.clone()).collect();
    let folder = format!("team/exports/changes/{}", failed.run_id);
    assert_eq!(
        keys,
        [
            format!("{folder}/added-00000.csv"),
            format!("{folder}/changed-00000.csv"),
            format!("{folder}/removed-00000.csv"),
        ]
    );
    assert_eq!(
        read_back(&fx, &keys[..1]).await,
        [[Value::from("6"), Value::from("v2 6")]],
        "v2's addition, not v3's"
    );
    assert_eq!(
        read_back(&fx, &keys[2..]).await,
        [[Value::from("5"), Value::Null]]
    );
    let body = manifest(&fx, &format!("{folder}/_manifest.json")).await;
    assert_eq!(body["changes"]["added"], 1);
    assert_eq!(body["files"].as_array().expect("files").len(), 3);
    // The snapshot the failed attempt compared into is the sync's now, and nothing else is kept.
    let sync = fx
        .store
        .sync(DEFAULT_WORKSPACE, "changes")
        .await
        .expect("sync");
    assert_eq!(sync.snapshot_run.as_deref(), Some(failed.run_id.as_str()));
    let folders: Vec<String> = std::fs::read_dir(fx.settings.snapshots_dir.join(&sync.id))
        .expect("snapshots")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders, std::slice::from_ref(&failed.run_id));
    let kept: Vec<String> = std::fs::read_dir(
        fx.settings
            .snapshots_dir
            .join(&sync.id)
            .join(&failed.run_id),
    )
    .expect("snapshot")
    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
    .filter(|n| !n.starts_with("keys-"))
    .collect();
    assert_eq!(
        kept,
        ["meta.json"],
        "the change set goes once the run succeeded"
    );

    // The next run sends v3's change: id 7, and nothing twice.
    let next = fx.run("changes").await;
    assert_eq!(next.status, "succeeded", "{next:?}");
    let c = next.changes.expect("counts");
    assert_eq!((c.added, c.changed, c.removed, c.unchanged), (1, 0, 0, 5));
    let added = read_back(&fx, &[next.files[0].key.clone()]).await;
    assert_eq!(added, [[Value::from("7"), Value::from("v3 7")]]);
}
