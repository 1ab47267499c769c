//! Helpers shared by the end-to-end tests of the `wharf` binary.

#![allow(dead_code)]

pub mod server;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const CANARY: &str = "canary-Sx9Lq2vT7wPz4Kd8";

pub fn wharf(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wharf"));
    command
        .arg("--home")
        .arg(home)
        .env_remove("WHARF_ALLOW_PRIVATE_ENDPOINTS")
        .env_remove("WHARF_MASTER_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "trace");
    command
}

pub fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run wharf")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(output)))
}

/// A JSON object's keys, sorted: the shape other tools rely on.
pub fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

pub const BUCKET: &str = "wharf-test";

/// A destination `lake` on `server` (bucket [`BUCKET`], prefix `exports`) and a local source
/// `files` on `data`, holding `people.csv`.
pub fn setup(home: &Path, data: &Path, server: &wharf_testkit::S3TestServer) {
    setup_as(&|| wharf(home), data, server);
}

/// [`setup`] through the commands `wharf` makes (a home with an environment of its own).
pub fn setup_as(wharf: &dyn Fn() -> Command, data: &Path, server: &wharf_testkit::S3TestServer) {
    std::fs::write(
        data.join("people.csv"),
        "id,name,city\n1,Ada,\"Paris, \"\"FR\"\"\"\n2,Bob,\n3,Zoë 🌍,\"two\nlines\"\n",
    )
    .expect("write csv");
    let out = run(wharf()
        .args([
            "--allow-private-endpoints",
            "destination",
            "add",
            "s3",
            "lake",
        ])
        .args([
            "--bucket",
            BUCKET,
            "--region",
            "us-east-1",
            "--prefix",
            "exports",
        ])
        .args([
            "--auth",
            "access-key",
            "--access-key-id",
            &server.access_key,
        ])
        .args([
            "--secret-access-key-env",
            "SECRET",
            "--endpoint",
            &server.endpoint(),
        ])
        .args(["--checksum", "crc32c"])
        .env("SECRET", &server.secret_key));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf()
        .args(["source", "add", "local", "files", "--path"])
        .arg(data));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("people"), "{}", text(&out));
}

/// Adds model `name` over `sql` on source `files`, key `id`.
pub fn add_model(home: &Path, name: &str, sql: &str) {
    let out = run(wharf(home).args([
        "model",
        "add",
        name,
        "--source",
        "files",
        "--primary-key",
        "id",
        "--sql",
        sql,
    ]));
    assert!(out.status.success(), "{}", text(&out));
}

/// Adds model `people` (over `people.csv`, key `id`).
pub fn people_model(home: &Path) {
    add_model(home, "people", "SELECT * FROM people");
}

/// Adds model `people` (over `people.csv`) and sync `sync` of it to `lake` as CSV, with
/// `extra` flags.
pub fn people_sync(home: &Path, sync: &str, extra: &[&str]) {
    people_model(home);
    let out = run(wharf(home)
        .args([
            "sync",
            "add",
            sync,
            "--model",
            "people",
            "--destination",
            "lake",
        ])
        .args(["--format", "csv"])
        .args(extra));
    assert!(out.status.success(), "{}", text(&out));
}

/// A local S3 server with the bucket [`BUCKET`], and a wharf home set up against it by
/// [`setup`]: destination `lake`, source `files` over a data folder holding `people.csv`.
pub struct Fixture {
    pub server: wharf_testkit::S3TestServer,
    pub home: tempfile::TempDir,
    pub data: tempfile::TempDir,
}

impl Fixture {
    pub async fn start() -> Self {
        let server = wharf_testkit::S3TestServer::start().await;
        server.create_bucket(BUCKET).await;
        let home = tempfile::tempdir().expect("home");
        let data = tempfile::tempdir().expect("data");
        setup(home.path(), data.path(), &server);
        Self { server, home, data }
    }
}
