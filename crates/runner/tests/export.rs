//! Runs of syncs against the in-process S3 server, read back by readers wharf did not write.

mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use support::{BUCKET, Fixture, PREFIX, settings, write_people};
use wharf_delivery::local_s3::Fault;
use wharf_domain::{ColumnMapping, OnEmpty, TextCompression};
use wharf_runner::RunProgress;
use wharf_store::DEFAULT_WORKSPACE;
use wharf_testkit::check_export;

fn keys(outcome: &wharf_runner::RunOutcome) -> Vec<String> {
    outcome.files.iter().map(|f| f.key.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_reads_back_as_the_source_rows() {
    let fx = Fixture::start().await;
    let expected = write_people(fx.warehouse.path(), 300);
    fx.model("people", "SELECT * FROM people").await;
    // What each file must be named and served as, written out here rather than asked of the
    // code under test: (format, compression, sync, extension, Content-Type, Content-Encoding).
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        (
            "parquet",
            "none",
            "p-zstd",
            "parquet",
            "application/vnd.apache.parquet",
            None,
        ),
        (
            "csv",
            "none",
            "c-plain",
            "csv",
            "text/csv; charset=utf-8",
            None,
        ),
        (
            "csv",
            "gzip",
            "c-gzip",
            "csv.gz",
            "text/csv; charset=utf-8",
            Some("gzip"),
        ),
        (
            "ndjson",
            "none",
            "n-plain",
            "ndjson",
            "application/x-ndjson",
            None,
        ),
        (
            "ndjson",
            "zstd",
            "n-zstd",
            "ndjson.zst",
            "application/x-ndjson",
            Some("zstd"),
        ),
        (
            "json",
            "gzip",
            "j-gzip",
            "json.gz",
            "application/json",
            Some("gzip"),
        ),
        ("xml", "none", "x-plain", "xml", "application/xml", None),
        ("avro", "none", "a-plain", "avro", "application/avro", None),
    ];
    for (format, compression, sync, extension, content_type, content_encoding) in cases {
        let mut s = settings(format);
        if *compression != "none" {
            s.file.compression = TextCompression::parse(compression).expect("compression");
        }
        if *format == "csv" {
            // An empty null text cannot be told from an empty string; the hard strings have
            // none, but say what null is anyway.
            s.file.csv.null = "\\N".into();
            s.file.csv.delimiter = if *compression == "gzip" { b';' } else { b',' };
        }
        if *format == "xml" {
            s.file.xml.root = "people".into();
            s.file.xml.row = "person".into();
        }
        fx.sync(sync, "people", s.clone()).await;
        let outcome = fx.run(sync).await;
        assert_eq!(outcome.status, "succeeded", "{sync}: {:?}", outcome.error);
        assert_eq!(outcome.rows, 300, "{sync}");
        assert_eq!(outcome.files.len(), 1, "{sync}");
        let key = &outcome.files[0].key;
        assert!(key.starts_with(&format!("{PREFIX}{sync}/")), "{key}");
        assert!(key.ends_with(&format!("-00000.{extension}")), "{key}");
        let mut spec = fx.spec(format, compression, &keys(&outcome), &expected);
        spec["csv"] = json!({
            "delimiter": (s.file.csv.delimiter as char).to_string(), "quote": "\"",
            "header": true, "null": "\\N", "bom": false,
        });
        spec["xml"] = json!({"root": "people", "row": "person"});
        let report = check_export(&spec);
        assert!(
            report["readers"].as_object().is_some_and(|r| !r.is_empty()),
            "{sync}: no reader ran: {report}"
        );
        // The object carries its type and encoding.
        let head = fx
            .server
            .admin()
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("head");
        assert_eq!(head.content_type(), Some(*content_type), "{sync}");
        assert_eq!(head.content_encoding(), *content_encoding, "{sync}");
        // The recorded checksum is the stored bytes', by a CRC32C written from its definition.
        let stored = wharf_testkit::object_bytes(&fx.server.admin(), BUCKET, key).await;
        assert_eq!(
            outcome.files[0].checksum,
            wharf_testkit::checksums::crc32c_record(&stored),
            "{sync}"
        );
        // The run record agrees with the bucket.
        let run = fx
            .store
            .run(DEFAULT_WORKSPACE, &outcome.run_id)
            .await
            .expect("run");
        assert_eq!(run.files.len(), 1);
        assert_eq!(run.files[0].key, *key);
        assert_eq!(run.files[0].checksum, outcome.files[0].checksum);
        assert_eq!(head.content_length(), Some(outcome.files[0].bytes as i64));
    }
    let (_, uploads) = fx.residue().await;
    assert!(uploads.is_empty(), "{uploads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_one_row_results_keep_their_shape_or_follow_the_policy() {
    let fx = Fixture::start().await;
    let expected = write_people(fx.warehouse.path(), 10);
    fx.model("nobody", "SELECT * FROM people WHERE id < 0")
        .await;
    for format in ["parquet", "csv", "ndjson", "json", "xml", "avro"] {
        let sync = format!("empty-{format}");
        fx.sync(&sync, "nobody", settings(format)).await;
        let outcome = fx.run(&sync).await;
        assert_eq!(outcome.status, "succeeded", "{format}: {:?}", outcome.error);
        assert_eq!((outcome.rows, outcome.files.len()), (0, 1), "{format}");
        let mut spec = fx.spec(format, "none", &keys(&outcome), &[]);
        spec["csv"] =
            json!({"delimiter": ",", "quote": "\"", "header": true, "null": "", "bom": false});
        spec["xml"] = json!({"root": "rows", "row": "row"});
        check_export(&spec);
    }
    // One row, in every format.
    fx.model("one", "SELECT * FROM people WHERE id = 4").await;
    for format in ["parquet", "csv", "ndjson", "json", "xml", "avro"] {
        let sync = format!("one-{format}");
        fx.sync(&sync, "one", settings(format)).await;
        let outcome = fx.run(&sync).await;
        assert_eq!((outcome.rows, outcome.files.len()), (1, 1), "{format}");
        let mut spec = fx.spec(format, "none", &keys(&outcome), &expected[3..4]);
        spec["csv"] =
            json!({"delimiter": ",", "quote": "\"", "header": true, "null": "", "bom": false});
        spec["xml"] = json!({"root": "rows", "row": "row"});
        check_export(&spec);
    }

    let skip = wharf_domain::SyncSettings {
        on_empty: OnEmpty::Skip,
        ..settings("csv")
    };
    fx.sync("empty-skip", "nobody", skip).await;
    let before = fx.residue().await.0.len();
    let outcome = fx.run("empty-skip").await;
    assert_eq!((outcome.status, outcome.files.len()), ("succeeded", 0));
    assert_eq!(fx.residue().await.0.len(), before, "skip writes nothing");
    let manifest_only = wharf_domain::SyncSettings {
        on_empty: OnEmpty::ManifestOnly,
        key_template: "{sync}/{run}/part-{part}.{ext}".into(),
        ..settings("csv")
    };
    fx.sync("empty-manifest", "nobody", manifest_only).await;
    let outcome = fx.run("empty-manifest").await;
    assert_eq!(outcome.files.len(), 0);
    let manifest = outcome.manifest.expect("a manifest");
    assert_eq!(
        manifest,
        format!("{PREFIX}empty-manifest/{}/_manifest.json", outcome.run_id)
    );
    let body = get_json(&fx, &manifest).await;
    assert_eq!(body["rows"], 0);
    assert_eq!(body["files"], json!([]));
}

async fn get_json(fx: &Fixture, key: &str) -> Value {
    let bytes = wharf_testkit::object_bytes(&fx.server.admin(), BUCKET, key).await;
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_split_by_rows_and_bytes_and_the_manifest_comes_last() {
    let fx = Fixture::start().await;
    let expected = write_people(fx.warehouse.path(), 100);
    fx.model("people", "SELECT * FROM people ORDER BY id").await;
    let by_rows = wharf_domain::SyncSettings {
        max_rows_per_file: Some(40),
        manifest: true,
        key_template: "{model}/{run}/part-{part}.{ext}".into(),
        ..settings("ndjson")
    };
    fx.sync("by-rows", "people", by_rows).await;
    let outcome = fx.run("by-rows").await;
    assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
    let rows: Vec<u64> = outcome.files.iter().map(|f| f.rows).collect();
    assert_eq!(rows, [40, 40, 20]);
    for (i, f) in outcome.files.iter().enumerate() {
        assert_eq!(
            f.key,
            format!("{PREFIX}people/{}/part-{i:05}.ndjson", outcome.run_id)
        );
    }
    check_export(&fx.spec("ndjson", "none", &keys(&outcome), &expected));
    let manifest = get_json(&fx, outcome.manifest.as_deref().expect("manifest")).await;
    assert_eq!(manifest["rows"], 100);
    assert_eq!(manifest["run_id"], outcome.run_id.as_str());
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["key"].as_str().expect("key"))
        .collect();
    assert_eq!(listed, keys(&outcome));
    // Each file's checksum in the manifest is its stored bytes', by a reference CRC32C.
    for (entry, key) in manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .zip(keys(&outcome))
    {
        let stored = wharf_testkit::object_bytes(&fx.server.admin(), BUCKET, &key).await;
        assert_eq!(
            entry["checksum"],
            wharf_testkit::checksums::crc32c_record(&stored).as_str(),
            "{key}"
        );
    }

    let by_bytes = wharf_domain::SyncSettings {
        max_bytes_per_file: Some(4096),
        ..settings("csv")
    };
    fx.sync("by-bytes", "people", by_bytes).await;
    let outcome = fx.run("by-bytes").await;
    assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
    assert!(outcome.files.len() > 3, "{} files", outcome.files.len());
    assert_eq!(outcome.files.iter().map(|f| f.rows).sum::<u64>(), 100);
    let mut spec = fx.spec("csv", "none", &keys(&outcome), &expected);
    spec["csv"] =
        json!({"delimiter": ",", "quote": "\"", "header": true, "null": "", "bom": false});
    check_export(&spec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_are_selected_and_renamed() {
    let fx = Fixture::start().await;
    let expected = write_people(fx.warehouse.path(), 50);
    fx.model("people", "SELECT * FROM people").await;
    let s = wharf_domain::SyncSettings {
        columns: ColumnMapping::parse_list("id,name:full_name,seen_at:last seen").expect("columns"),
        ..settings("parquet")
    };
    fx.sync("renamed", "people", s).await;
    let outcome = fx.run("renamed").await;
    assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
    let projected: Vec<Value> = expected
        .iter()
        .map(|r| json!({"id": r["id"], "full_name": r["name"], "last seen": r["seen_at"]}))
        .collect();
    let mut spec = fx.spec("parquet", "none", &keys(&outcome), &projected);
    spec["types"] = json!({"id": "int64", "full_name": "string", "last seen": "timestamp_us_utc"});
    spec["columns"] = json!(["id", "full_name", "last seen"]);
    check_export(&spec);

    // Column names that are not XML names become valid, distinct element names.
    let s = wharf_domain::SyncSettings {
        columns: ColumnMapping::parse_list("id,name:full name,note:2nd note,amount:xml-amount")
            .expect("columns"),
        ..settings("xml")
    };
    fx.sync("renamed-xml", "people", s).await;
    let outcome = fx.run("renamed-xml").await;
    assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
    let projected: Vec<Value> = expected
        .iter()
        .map(|r| json!({"id": r["id"], "full name": r["name"], "2nd note": r["note"], "xml-amount": r["amount"]}))
        .collect();
    let mut spec = fx.spec("xml", "none", &keys(&outcome), &projected);
    spec["types"] = json!({"id": "int64", "full name": "string", "2nd note": "string", "xml-amount": "decimal(10,2)"});
    spec["columns"] = json!(["id", "full name", "2nd note", "xml-amount"]);
    spec["xml"] = json!({"root": "rows", "row": "row"});
    check_export(&spec);

    let s = wharf_domain::SyncSettings {
        columns: ColumnMapping::parse_list("id,nope").expect("columns"),
        ..settings("csv")
    };
    fx.sync("bad-columns", "people", s).await;
    let outcome = fx.run("bad-columns").await;
    let error = outcome.error.expect("fails");
    assert_eq!(error.code, "sync.columns");
    assert!(error.message.contains("\"nope\""), "{}", error.message);
}

/// Writes a CSV of `good` valid rows (about 120 bytes each) and then one whose `n` is not a
/// number: the query fails once it reaches it, after several MiB have been uploaded.
fn write_breaking_csv(dir: &std::path::Path, good: usize) {
    use std::io::Write as _;
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(dir.join("big.csv")).expect("create"));
    writeln!(f, "id,n,text").expect("write");
    for i in 0..good {
        writeln!(f, "{i},{},{}", i * 3, "abcdefghij".repeat(11)).expect("write");
    }
    writeln!(f, "{good},not-a-number,x").expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_mid_export_leaves_no_object_and_no_upload() {
    let fx = Fixture::start().await;
    write_breaking_csv(fx.warehouse.path(), 120_000);
    fx.model("big", "SELECT * FROM big").await;
    fx.sync("breaks", "big", settings("csv")).await;
    let outcome = fx.run("breaks").await;
    assert_eq!(outcome.status, "failed");
    let error = outcome.error.expect("error");
    assert_eq!(error.code, "query.failed", "{}", error.message);
    assert!(
        fx.server.faults.seen("UploadPart") >= 1,
        "the failure came after parts were sent"
    );
    let (objects, uploads) = fx.residue().await;
    assert!(objects.is_empty(), "{objects:?}");
    assert!(uploads.is_empty(), "{uploads:?}");
    let run = fx
        .store
        .run(DEFAULT_WORKSPACE, &outcome.run_id)
        .await
        .expect("run");
    assert_eq!(run.status.as_str(), "failed");
    assert!(run.files.is_empty());
    assert!(
        fx.store
            .stale_uploads(&destination_id(&fx).await)
            .await
            .expect("uploads")
            .is_empty()
    );
}

async fn destination_id(fx: &Fixture) -> String {
    fx.store
        .destination(DEFAULT_WORKSPACE, "lake")
        .await
        .expect("destination")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_aborts_the_upload() {
    let fx = Fixture::start().await;
    // 20 MiB of rows: several parts, each stalled so the run is still going when cancelled.
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(fx.warehouse.path().join("big.csv")).expect("create"),
        );
        writeln!(f, "id,text").expect("write");
        for i in 0..180_000 {
            writeln!(f, "{i},{}", "0123456789".repeat(11)).expect("write");
        }
    }
    fx.model("big", "SELECT * FROM big").await;
    fx.sync("cancelled", "big", settings("csv")).await;
    fx.server.faults.inject(
        "UploadPart",
        Fault::Delay(std::time::Duration::from_millis(700)),
        100,
    );
    let progress = Arc::new(RunProgress::default());
    let canceller = {
        let progress = progress.clone();
        tokio::spawn(async move {
            while progress
                .upload
                .parts
                .load(std::sync::atomic::Ordering::Relaxed)
                < 1
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            progress.cancel();
        })
    };
    let outcome = fx.run_with("cancelled", progress).await;
    canceller.await.expect("canceller");
    assert_eq!(outcome.status, "cancelled");
    assert_eq!(outcome.error.expect("error").code, "cancelled");
    let (objects, uploads) = fx.residue().await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_per_sync_at_a_time() {
    let fx = Fixture::start().await;
    write_people(fx.warehouse.path(), 5);
    fx.model("people", "SELECT * FROM people").await;
    fx.sync("once", "people", settings("csv")).await;
    let sync = fx
        .store
        .sync(DEFAULT_WORKSPACE, "once")
        .await
        .expect("sync");
    let other = fx.foreign_running_run("once").await;
    // The other process is alive: it holds the sync's run lock.
    std::fs::create_dir_all(&fx.settings.locks_dir).expect("locks dir");
    let lock = std::fs::File::create(fx.settings.locks_dir.join(format!("sync-{}.lock", sync.id)))
        .expect("lock file");
    lock.try_lock().expect("held by the other process");
    let err = fx
        .try_run("once", Arc::new(RunProgress::default()))
        .await
        .expect_err("second run refused");
    assert_eq!(err.code(), "run.in_progress");
    assert!(err.to_string().contains(&other.run_id), "{err}");
    assert!(fx.residue().await.0.is_empty(), "nothing was written");

    // The other process dies: the kernel drops its lock, and the next run starts at once,
    // closing the dead run.
    drop(lock);
    let outcome = fx.run("once").await;
    assert_eq!(outcome.status, "succeeded");
    let dead = fx
        .store
        .run(DEFAULT_WORKSPACE, &other.run_id)
        .await
        .expect("dead run");
    assert_eq!(
        dead.error.map(|(code, _)| code).as_deref(),
        Some("interrupted")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_janitor_aborts_uploads_an_interrupted_run_left_open() {
    let fx = Fixture::start().await;
    write_people(fx.warehouse.path(), 5);
    fx.model("people", "SELECT * FROM people").await;
    fx.sync("after-crash", "people", settings("csv")).await;
    let destination = destination_id(&fx).await;
    // A run that died: one upload with its id recorded, one killed between the intent and the
    // id (found by key through ListMultipartUploads).
    let crashed = fx.foreign_running_run("after-crash").await;
    let admin = fx.server.admin();
    let mut handles = Vec::new();
    for (key, record_id) in [
        (format!("{PREFIX}after-crash/a.csv"), true),
        (format!("{PREFIX}after-crash/b.csv"), false),
    ] {
        let created = admin
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .expect("create");
        let handle = fx
            .store
            .upload_intent(&crashed.run_id, &destination, &key)
            .await
            .expect("intent");
        if record_id {
            fx.store
                .upload_created(handle, created.upload_id().expect("id"))
                .await
                .expect("created");
        }
        handles.push(handle);
    }
    // Someone else's upload under the prefix is not wharf's to abort.
    admin
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(format!("{PREFIX}someone-else.bin"))
        .send()
        .await
        .expect("create");
    fx.store
        .finish_leased_run(
            &crashed,
            &wharf_store::Finish {
                succeeded: false,
                rows: 0,
                bytes: 0,
                error: Some(("interrupted", "killed")),
                retry_at: None,
                counts_towards_pause: false,
                mode: wharf_domain::SyncMode::All,
                changes: None,
                snapshot: None,
            },
        )
        .await
        .expect("finish");
    assert_eq!(fx.residue().await.1.len(), 3);
    let outcome = fx.run("after-crash").await;
    assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
    let (_, uploads) = fx.residue().await;
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert!(uploads[0].contains("someone-else.bin"), "{uploads:?}");
    assert!(
        fx.store
            .stale_uploads(&destination)
            .await
            .expect("stale")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_fault_during_a_run_is_retried_and_a_fatal_one_fails_it() {
    let fx = Fixture::start().await;
    write_people(fx.warehouse.path(), 20);
    fx.model("people", "SELECT * FROM people").await;
    fx.sync("flaky", "people", settings("parquet")).await;
    fx.server.faults.inject(
        "PutObject",
        Fault::Error {
            code: "SlowDown".into(),
            status: 503,
        },
        2,
    );
    let outcome = fx.run("flaky").await;
    assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
    assert_eq!(
        fx.server.faults.seen("PutObject"),
        3,
        "two SlowDowns, then the write that succeeded"
    );
    assert_eq!(fx.residue().await.0.len(), 1, "exactly one object");
    fx.server.deny(&fx.server.access_key.clone(), "PutObject");
    let outcome = fx.run("flaky").await;
    let error = outcome.error.expect("denied");
    assert_eq!(error.code, "s3.AccessDenied");
    assert_eq!(fx.residue().await.0.len(), 1, "nothing more");
}
