//! The file options the README promises, through the built binary, checked on the bytes S3
//! holds: CSV's byte order mark, header and quote; Parquet's codec and row-group size (read from
//! the file's footer by DuckDB); Avro's codec (the container's header); `--overwrite`; and
//! `WHARF_MASTER_KEY` in place of the key file.

mod common;

use common::{BUCKET, Fixture, add_model, json, run, setup_as, text, wharf};
use serde_json::Value;
use std::path::Path;
use wharf_testkit::{bucket_residue, duckdb_rows, object_bytes};

/// Adds sync `name` of `model` to `lake` with `flags`, runs it, and returns the run's JSON.
fn sync_and_run(home: &Path, name: &str, model: &str, flags: &[&str]) -> Value {
    let out = run(wharf(home)
        .args([
            "sync",
            "add",
            name,
            "--model",
            model,
            "--destination",
            "lake",
        ])
        .args(flags));
    assert!(out.status.success(), "{name}: {}", text(&out));
    run_sync(home, name)
}

fn run_sync(home: &Path, name: &str) -> Value {
    let out = run(wharf(home).args(["--allow-private-endpoints", "--json", "sync", "run", name]));
    assert!(out.status.success(), "{name}: {}", text(&out));
    json(&out)
}

async fn the_file(fx: &Fixture, outcome: &Value) -> Vec<u8> {
    let key = outcome["files"][0]["key"].as_str().expect("a file");
    object_bytes(&fx.server.admin(), BUCKET, key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_byte_order_mark_header_and_quote_are_as_asked() {
    let fx = Fixture::start().await;
    let h = fx.home.path();
    add_model(h, "ordered", "SELECT * FROM people ORDER BY id");
    // people.csv (common::setup): a comma and quotes, a null, a newline and non-ASCII text.
    let rows = "1,Ada,\"Paris, \"\"FR\"\"\"\r\n2,Bob,\r\n3,Zoë 🌍,\"two\nlines\"\r\n";
    let cases: [(&str, &[&str], String); 4] = [
        ("plain", &[], format!("id,name,city\r\n{rows}")),
        (
            "bom",
            &["--csv-bom"],
            format!("\u{feff}id,name,city\r\n{rows}"),
        ),
        ("headless", &["--csv-header", "false"], rows.to_string()),
        (
            "single-quoted",
            &["--csv-quote", "'"],
            "id,name,city\r\n1,Ada,'Paris, \"FR\"'\r\n2,Bob,\r\n3,Zoë 🌍,'two\nlines'\r\n"
                .to_string(),
        ),
    ];
    for (name, flags, expected) in cases {
        let mut all = vec!["--format", "csv"];
        all.extend_from_slice(flags);
        let outcome = sync_and_run(h, name, "ordered", &all);
        let bytes = the_file(&fx, &outcome).await;
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            expected,
            "{name}: the file's bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_codec_and_row_groups_are_as_asked_in_the_footer() {
    let fx = Fixture::start().await;
    let h = fx.home.path();
    let mut csv = String::from("id,name\n");
    for i in 0..1000 {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(fx.data.path().join("many.csv"), csv).expect("write many.csv");
    add_model(h, "many", "SELECT * FROM many ORDER BY id");
    let dir = tempfile::tempdir().expect("dir");
    for (codec, footer) in [
        ("zstd", "ZSTD"),
        ("snappy", "SNAPPY"),
        ("gzip", "GZIP"),
        ("lz4", "LZ4_RAW"),
        ("none", "UNCOMPRESSED"),
    ] {
        let outcome = sync_and_run(
            h,
            &format!("p-{codec}"),
            "many",
            &[
                "--format",
                "parquet",
                "--parquet-compression",
                codec,
                "--parquet-row-group-rows",
                "300",
            ],
        );
        let path = dir.path().join(format!("{codec}.parquet"));
        std::fs::write(&path, the_file(&fx, &outcome).await).expect("write the file");
        let path = path.display();
        let codecs = duckdb_rows(&format!(
            "SELECT DISTINCT compression FROM parquet_metadata('{path}')"
        ));
        assert_eq!(codecs, [[Value::from(footer)]], "{codec}");
        let groups = duckdb_rows(&format!(
            "SELECT row_group_id, any_value(row_group_num_rows) FROM parquet_metadata('{path}')
             GROUP BY row_group_id ORDER BY row_group_id"
        ));
        let sizes: Vec<i64> = groups
            .iter()
            .map(|g| g[1].as_i64().expect("rows"))
            .collect();
        assert_eq!(sizes, [300, 300, 300, 100], "{codec}: row groups");
        let rows = duckdb_rows(&format!(
            "SELECT count(*), sum(id), min(name), max(name) FROM read_parquet('{path}')"
        ));
        assert_eq!(
            rows,
            [[
                Value::from(1000),
                Value::from(499_500),
                Value::from("name 0"),
                Value::from("name 999")
            ]],
            "{codec}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_files_are_deflated_object_containers() {
    let fx = Fixture::start().await;
    let h = fx.home.path();
    add_model(h, "ordered", "SELECT * FROM people ORDER BY id");
    let outcome = sync_and_run(h, "avro", "ordered", &["--format", "avro"]);
    let bytes = the_file(&fx, &outcome).await;
    assert!(bytes.starts_with(b"Obj\x01"), "an Avro object container");
    // The header's metadata map holds "avro.codec" -> "deflate": each a zig-zag length (10 ->
    // 0x14, 7 -> 0x0e) and the bytes.
    let codec: &[u8] = b"\x14avro.codec\x0edeflate";
    assert!(
        bytes.windows(codec.len()).any(|w| w == codec),
        "the header names the deflate codec"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_replaces_the_same_key_each_run() {
    let fx = Fixture::start().await;
    let h = fx.home.path();
    add_model(h, "ordered", "SELECT * FROM people ORDER BY id");
    let first = sync_and_run(
        h,
        "latest",
        "ordered",
        &[
            "--format",
            "csv",
            "--key-template",
            "{sync}/latest.{ext}",
            "--overwrite",
        ],
    );
    let key = first["files"][0]["key"].as_str().expect("key").to_string();
    assert_eq!(key, "exports/latest/latest.csv");
    std::fs::write(
        fx.data.path().join("people.csv"),
        "id,name,city\n7,Eve,Oslo\n",
    )
    .expect("rewrite people.csv");
    let second = run_sync(h, "latest");
    assert_eq!(second["files"][0]["key"], key.as_str());
    let bytes = object_bytes(&fx.server.admin(), BUCKET, &key).await;
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        "id,name,city\r\n7,Eve,Oslo\r\n",
        "the second run's rows replaced the first's"
    );
    let (objects, uploads) = bucket_residue(&fx.server.admin(), BUCKET).await;
    assert_eq!(objects, [key.as_str()]);
    assert!(uploads.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_can_come_from_the_environment_instead_of_a_file() {
    let server = wharf_testkit::S3TestServer::start().await;
    server.create_bucket(BUCKET).await;
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    let h = home.path();
    // 32 bytes, base64: what `openssl rand -base64 32` prints.
    let key = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    let other = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let with_key = |key: &str| {
        let mut command = wharf(h);
        command.env("WHARF_MASTER_KEY", key);
        command
    };
    // Set up under the key from the environment: no key file is written.
    setup_as(&|| with_key(key), data.path(), &server);
    assert!(
        !h.join("master.key").exists(),
        "no key file beside the database"
    );
    for args in [
        vec![
            "model",
            "add",
            "people",
            "--source",
            "files",
            "--primary-key",
            "id",
            "--sql",
            "SELECT * FROM people",
        ],
        vec![
            "sync",
            "add",
            "people-csv",
            "--model",
            "people",
            "--destination",
            "lake",
            "--format",
            "csv",
        ],
    ] {
        let out = run(with_key(key).args(&args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    // The run opens the sealed secret with the same key.
    let out = run(with_key(key).args([
        "--allow-private-endpoints",
        "--json",
        "sync",
        "run",
        "people-csv",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["status"], "succeeded");

    // Without the key, or with another one, the secret stays sealed and the error says why.
    let out = run(wharf(h).args(["--allow-private-endpoints", "sync", "run", "people-csv"]));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("master key file") && text(&out).contains("WHARF_MASTER_KEY"),
        "{}",
        text(&out)
    );
    assert!(
        !h.join("master.key").exists(),
        "no new key made up for an existing store"
    );
    let out = run(with_key(other).args(["--allow-private-endpoints", "sync", "run", "people-csv"]));
    assert!(!out.status.success());
    assert!(text(&out).contains("WHARF_MASTER_KEY"), "{}", text(&out));
    // A broken key is the installation's problem, not the command's input: exit 1, as the API
    // answers it with a 500.
    let out = run(with_key("not base64!").args(["destination", "list"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("WHARF_MASTER_KEY is invalid")
            && text(&out).contains("openssl rand -base64 32"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(key), "the key is never printed");
}
