//! Who may call the API of the real `wharf serve`: missing, bad, revoked and expired tokens,
//! roles, workspaces kept apart (another workspace's object is a 404 and stays untouched);
//! secrets that appear in no response, audit entry, log line or plaintext store; the CLI's
//! `--json` and the API's bodies equal; and a shutdown in the middle of a run.

mod common;

use common::server::{Reply, Server, token};
use common::{BUCKET, Fixture, json, run, text, wharf};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use wharf_testkit::bucket_residue;

fn serve(fixture: &Fixture, log: &str) -> Server {
    let data = fixture.data.path().to_string_lossy().to_string();
    Server::start(
        fixture.home.path(),
        &[
            ("WHARF_ALLOW_PRIVATE_ENDPOINTS", "1"),
            ("WHARF_LOCAL_SOURCE_ROOTS", data.as_str()),
            ("RUST_LOG", log),
        ],
    )
}

fn expect(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.raw);
}

fn code(reply: &Reply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or_default()
}

/// Sets a column of a token's row in the store, as time passing would (SQLite, from Python's
/// standard library: another program than wharf).
fn age_token(home: &Path, name: &str, expires_at: &str) {
    let python = wharf_testkit::pyenv().join("bin/python");
    let status = std::process::Command::new(python)
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute('UPDATE tokens SET expires_at = ? WHERE name = ?', (sys.argv[3], sys.argv[2])); \
             c.commit()",
        ])
        .arg(home.join("wharf.db"))
        .args([name, expires_at])
        .status()
        .expect("python");
    assert!(status.success());
}

fn add_people_and_sync(server: &Server, token: &str, sync: &str) {
    let model = json!({"name": "people", "source": "files", "sql": "SELECT * FROM people", "primary_key": "id"});
    expect(
        &server.call("POST", "/api/v1/models", Some(token), Some(&model)),
        201,
    );
    let body = json!({"name": sync, "model": "people", "destination": "lake", "format": "csv"});
    expect(
        &server.call("POST", "/api/v1/syncs", Some(token), Some(&body)),
        201,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_workspaces_decide_who_may_do_what() {
    let fixture = Fixture::start().await;
    let home = fixture.home.path();
    let admin = token(home, "default", "admin", "admin");
    let editor = token(home, "default", "editor", "editor");
    let viewer = token(home, "default", "viewer", "viewer");
    let revoked = token(home, "default", "revoked", "admin");
    let expired = token(home, "default", "expired", "admin");
    let out = run(wharf(home).args(["workspace", "add", "other"]));
    assert!(out.status.success(), "{}", text(&out));
    let other = token(home, "other", "other-admin", "admin");
    let server = serve(&fixture, "info");
    add_people_and_sync(&server, &editor, "p");

    // 401: no token, not a token, an unknown one, a revoked one, an expired one.
    let out = run(wharf(home).args(["token", "revoke", "revoked"]));
    assert!(out.status.success(), "{}", text(&out));
    age_token(home, "expired", "2020-01-01T00:00:00Z");
    let unknown = format!("wharf_{}", "0".repeat(64));
    for (token, expected) in [
        (None, "auth.missing_token"),
        (Some("not-a-token"), "auth.invalid_token"),
        (Some(unknown.as_str()), "auth.invalid_token"),
        (Some(revoked.as_str()), "auth.invalid_token"),
        (Some(expired.as_str()), "auth.invalid_token"),
    ] {
        let reply = server.call("GET", "/api/v1/syncs", token, None);
        expect(&reply, 401);
        assert_eq!(code(&reply), expected, "{token:?}");
    }
    let reply = server.send("GET", "/api/v1/syncs", None, None);
    assert_eq!(reply.status, 401);

    // Viewers read; they may not write (403, and nothing happens).
    expect(
        &server.call("GET", "/api/v1/syncs/p", Some(&viewer), None),
        200,
    );
    expect(
        &server.call("GET", "/api/v1/runs", Some(&viewer), None),
        200,
    );
    for (method, path, body) in [
        ("POST", "/api/v1/syncs/p/runs", None),
        ("DELETE", "/api/v1/syncs/p", None),
        ("DELETE", "/api/v1/destinations/lake", None),
        (
            "POST",
            "/api/v1/models",
            Some(
                json!({"name": "m", "source": "files", "sql": "SELECT 1 AS id", "primary_key": "id"}),
            ),
        ),
        ("POST", "/api/v1/destinations/lake/test", None),
    ] {
        let reply = server.call(method, path, Some(&viewer), body.as_ref());
        expect(&reply, 403);
        assert_eq!(code(&reply), "auth.forbidden", "{method} {path}");
    }
    // Editors manage objects, not tokens, users or the audit log.
    for (method, path, body) in [
        ("GET", "/api/v1/tokens", None),
        (
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "t", "role": "admin"})),
        ),
        ("DELETE", "/api/v1/tokens/viewer", None),
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/audit", None),
        ("POST", "/api/v1/workspaces", Some(json!({"name": "w"}))),
    ] {
        let reply = server.call(method, path, Some(&editor), body.as_ref());
        expect(&reply, 403);
    }
    assert_eq!(
        server
            .call("GET", "/api/v1/runs?sync=p", Some(&admin), None)
            .body["items"],
        json!([]),
        "nothing ran"
    );

    // Another workspace's token: every object of this one is a 404, and stays as it was.
    let before = server
        .call("GET", "/api/v1/syncs/p", Some(&admin), None)
        .body;
    let change = json!({"model": "people", "destination": "lake", "format": "parquet"});
    for (method, path, body) in [
        ("GET", "/api/v1/syncs/p", None),
        ("PUT", "/api/v1/syncs/p", Some(change)),
        ("DELETE", "/api/v1/syncs/p", None),
        ("POST", "/api/v1/syncs/p/runs", None),
        ("GET", "/api/v1/syncs/p/plan", None),
        ("GET", "/api/v1/destinations/lake", None),
        ("POST", "/api/v1/destinations/lake/test", None),
        ("DELETE", "/api/v1/models/people", None),
        ("GET", "/api/v1/sources/files", None),
    ] {
        let reply = server.call(method, path, Some(&other), body.as_ref());
        expect(&reply, 404);
        assert!(
            code(&reply).ends_with(".not_found"),
            "{method} {path}: {}",
            reply.raw
        );
    }
    assert_eq!(
        server
            .call("GET", "/api/v1/syncs/p", Some(&admin), None)
            .body,
        before
    );
    assert_eq!(
        server
            .call("GET", "/api/v1/runs?sync=p", Some(&admin), None)
            .body["items"],
        json!([]),
        "nothing ran"
    );
    let listed = server.call("GET", "/api/v1/syncs", Some(&other), None);
    assert_eq!(listed.body["items"], json!([]));
    let workspaces = server.call("GET", "/api/v1/workspaces", Some(&other), None);
    assert_eq!(workspaces.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(workspaces.body["items"][0]["name"], "other");
    // Its own runs page does not show this workspace's runs either.
    expect(
        &server.call("POST", "/api/v1/syncs/p/runs", Some(&editor), None),
        202,
    );
    let theirs = server.call("GET", "/api/v1/runs", Some(&other), None);
    assert_eq!(theirs.body["items"], json!([]));

    // The audit log names who did what, refusals included.
    let audit = server.call("GET", "/api/v1/audit?limit=1000", Some(&admin), None);
    expect(&audit, 200);
    let entries = audit.body["items"].as_array().expect("items");
    assert!(entries.iter().any(|e| e["actor"] == "token:viewer"
        && e["error_code"] == "auth.forbidden"
        && e["object_name"] == "p"));
    assert!(entries.iter().any(|e| e["actor"] == "token:editor"
        && e["action"] == "create"
        && e["object_kind"] == "sync"
        && e["outcome"] == "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_in_no_response_audit_entry_log_line_or_plaintext_store() {
    let postgres_url = std::env::var("WHARF_TEST_POSTGRES_URL").expect(
        "WHARF_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a PostgreSQL cluster",
    );
    let pg_password = url::Url::parse(&postgres_url)
        .expect("url")
        .password()
        .expect("the test cluster's URL has a password")
        .to_string();
    assert!(
        pg_password.len() >= 16,
        "a password unlikely to appear by chance"
    );
    let fixture = Fixture::start().await;
    let home = fixture.home.path();
    let admin = token(home, "default", "admin", "admin");
    let server = serve(&fixture, "trace");
    let t = Some(admin.as_str());
    let secret = common::CANARY;
    let mut replies = Vec::new();

    let destination = json!({"name": "canary", "bucket": BUCKET, "region": "us-east-1",
        "auth": {"type": "access_key", "access_key_id": "AKIACANARYKEY0000001", "secret_access_key": secret},
        "endpoint": fixture.server.endpoint()});
    replies.push(server.call("POST", "/api/v1/destinations", t, Some(&destination)));
    expect(replies.last().expect("reply"), 201);
    // A wrong body that carries the secret: its error must not echo it.
    let mut bad = destination.clone();
    bad["region"] = json!("nowhere-1");
    replies.push(server.call("POST", "/api/v1/destinations", t, Some(&bad)));
    replies.push(server.call("PUT", "/api/v1/destinations/canary", t, Some(&bad)));
    replies.push(server.call("POST", "/api/v1/destinations/canary/test", t, None));
    replies.push(server.call("GET", "/api/v1/destinations/canary", t, None));
    replies.push(server.call("GET", "/api/v1/destinations", t, None));
    replies.push(server.call("GET", "/api/v1/destinations/canary/policy", t, None));

    let source =
        json!({"name": "pg", "type": "postgres", "url": postgres_url, "sslmode": "disable"});
    let reply = server.call("POST", "/api/v1/sources", t, Some(&source));
    expect(&reply, 201);
    replies.push(reply);
    // The same password to a port where nothing listens: the failure must not echo it.
    let mut unreachable = url::Url::parse(&postgres_url).expect("url");
    unreachable.set_port(Some(1)).expect("port");
    let mut wrong = source.clone();
    wrong["name"] = json!("pg-bad");
    wrong["url"] = json!(unreachable.to_string());
    replies.push(server.call("POST", "/api/v1/sources", t, Some(&wrong)));
    replies.push(server.call("GET", "/api/v1/sources", t, None));
    replies.push(server.call("GET", "/api/v1/sources/pg", t, None));

    // A new token's text is in its creation's response only.
    let created = server.call(
        "POST",
        "/api/v1/tokens",
        t,
        Some(&json!({"name": "ci", "role": "viewer"})),
    );
    expect(&created, 201);
    let new_token = created.body["token"].as_str().expect("token").to_string();
    assert!(new_token.starts_with("wharf_") && new_token.len() == 6 + 64);
    expect(
        &server.call("GET", "/api/v1/syncs", Some(&new_token), None),
        200,
    );
    replies.push(server.call("GET", "/api/v1/tokens", t, None));
    let audit = server.call("GET", "/api/v1/audit?limit=1000", t, None);
    replies.push(audit);
    let user = json!({"email": "ada@example.com", "role": "viewer", "password": "correct horse battery staple"});
    replies.push(server.call("POST", "/api/v1/users", t, Some(&user)));
    replies.push(server.call("GET", "/api/v1/users", t, None));

    let cli_audit = run(wharf(home).args(["--json", "audit", "--limit", "1000"]));
    assert!(cli_audit.status.success());
    let log = server.log();
    assert!(
        log.contains("TRACE"),
        "the server logged at trace: {}",
        &log[..log.len().min(2000)]
    );
    let store: Vec<u8> = ["wharf.db", "wharf.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(home.join(f)).ok())
        .flatten()
        .collect();
    let store = String::from_utf8_lossy(&store);
    for canary in [
        secret,
        pg_password.as_str(),
        new_token.as_str(),
        admin.as_str(),
        "correct horse battery staple",
    ] {
        for reply in &replies {
            assert!(
                !reply.raw.contains(canary),
                "a response holds a secret: {}",
                reply.raw
            );
        }
        assert!(
            !text(&cli_audit).contains(canary),
            "the audit log holds a secret"
        );
        assert!(!log.contains(canary), "the server's log holds a secret");
        assert!(
            !store.contains(canary),
            "the store holds a secret in plaintext"
        );
    }
}

/// For every kind of object, the CLI's `--json` and the API's body are equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_api_show_the_same_objects_the_same_way() {
    let fixture = Fixture::start().await;
    let home = fixture.home.path();
    let admin = token(home, "default", "admin", "admin");
    let server = serve(&fixture, "info");
    let t = Some(admin.as_str());
    add_people_and_sync(&server, &admin, "p");
    let segment = json!({"name": "later", "model": "people", "filter": {"column": "id", "op": ">", "value": 1}});
    expect(
        &server.call("POST", "/api/v1/segments", t, Some(&segment)),
        201,
    );
    let reply = server.call("POST", "/api/v1/syncs/p/runs", t, None);
    expect(&reply, 202);
    let run_id = reply.body["run_id"].as_str().expect("run_id").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server
        .call("GET", &format!("/api/v1/runs/{run_id}"), t, None)
        .body["status"]
        == "running"
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let user = json!({"email": "ada@example.com", "role": "viewer", "password": "correct horse battery staple"});
    expect(&server.call("POST", "/api/v1/users", t, Some(&user)), 201);

    let cli = |args: &[&str]| -> Value {
        let out = run(wharf(home).arg("--json").args(args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        json(&out)
    };
    let api = |path: &str| -> Value {
        let reply = server.call("GET", path, t, None);
        expect(&reply, 200);
        reply.body
    };
    let pairs: Vec<(Value, Value)> = vec![
        (
            cli(&["destination", "show", "lake"]),
            api("/api/v1/destinations/lake"),
        ),
        (
            cli(&["destination", "list"]),
            api("/api/v1/destinations")["items"].clone(),
        ),
        (
            cli(&["source", "list"]),
            api("/api/v1/sources")["items"].clone(),
        ),
        (
            cli(&["model", "show", "people"]),
            api("/api/v1/models/people"),
        ),
        (
            cli(&["model", "list"]),
            api("/api/v1/models")["items"].clone(),
        ),
        (
            cli(&["model", "preview", "people", "--limit", "2"]),
            api("/api/v1/models/people/preview?limit=2"),
        ),
        (
            cli(&["segment", "show", "later"]),
            api("/api/v1/segments/later"),
        ),
        (
            cli(&["segment", "list"]),
            api("/api/v1/segments")["items"].clone(),
        ),
        (
            cli(&["segment", "preview", "later", "--as-of", "2026-01-01"]),
            api("/api/v1/segments/later/preview?as_of=2026-01-01"),
        ),
        (
            cli(&["segment", "sql", "later", "--as-of", "2026-01-01"]),
            api("/api/v1/segments/later/sql?as_of=2026-01-01"),
        ),
        (cli(&["sync", "show", "p"]), api("/api/v1/syncs/p")),
        (
            cli(&["sync", "list"]),
            api("/api/v1/syncs")["items"].clone(),
        ),
        (cli(&["plan", "p"]), api("/api/v1/syncs/p/plan")),
        (
            cli(&["runs", "show", &run_id]),
            api(&format!("/api/v1/runs/{run_id}")),
        ),
        (
            cli(&["runs", "--sync", "p"]),
            api("/api/v1/runs?sync=p")["items"].clone(),
        ),
        (
            cli(&["token", "list"]),
            api("/api/v1/tokens")["items"].clone(),
        ),
        (
            cli(&["user", "list"]),
            api("/api/v1/users")["items"].clone(),
        ),
        (
            cli(&["workspace", "list"]),
            api("/api/v1/workspaces")["items"].clone(),
        ),
    ];
    for (from_cli, from_api) in pairs {
        assert_eq!(from_cli, from_api);
    }
    // The audit log: the same entries, the CLI's read adding none.
    let from_api = api("/api/v1/audit?limit=1000")["items"].clone();
    assert_eq!(cli(&["audit", "--limit", "1000"]), from_api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_aborts_its_upload_and_records_it_interrupted() {
    let fixture = Fixture::start().await;
    let home = fixture.home.path();
    let out = run(wharf(home)
        .args(["sample", "customers", "--rows", "400000", "--out"])
        .arg(fixture.data.path().join("customers.parquet")));
    assert!(out.status.success(), "{}", text(&out));
    let admin = token(home, "default", "admin", "admin");
    let mut server = serve(&fixture, "info");
    let t = Some(admin.as_str());
    let model = json!({"name": "customers", "source": "files", "sql": "SELECT * FROM customers", "primary_key": "id"});
    // The source was added before the file existed: add another that sees it.
    let data = fixture.data.path().to_string_lossy().to_string();
    expect(
        &server.call(
            "POST",
            "/api/v1/sources",
            t,
            Some(&json!({"name": "now", "type": "local", "path": data})),
        ),
        201,
    );
    let mut model = model;
    model["source"] = json!("now");
    expect(&server.call("POST", "/api/v1/models", t, Some(&model)), 201);
    let sync = json!({"name": "big", "model": "customers", "destination": "lake", "format": "csv"});
    expect(&server.call("POST", "/api/v1/syncs", t, Some(&sync)), 201);
    fixture.server.faults.inject(
        "UploadPart",
        wharf_delivery::local_s3::Fault::Delay(Duration::from_millis(1500)),
        1000,
    );
    let reply = server.call("POST", "/api/v1/syncs/big/runs", t, None);
    expect(&reply, 202);
    let run_id = reply.body["run_id"].as_str().expect("run_id").to_string();
    // Queued until the scheduler starts it: a second trigger then is the same run.
    let location = format!("/api/v1/runs/{run_id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = server.call("GET", &location, t, None);
        if shown.body["status"] == "running" {
            break;
        }
        assert_eq!(shown.body["status"], "queued", "{}", shown.raw);
        let again = server.call("POST", "/api/v1/syncs/big/runs", t, None);
        if again.status == 202 {
            assert_eq!(again.body["run_id"], run_id.as_str(), "not doubled");
        }
        assert!(Instant::now() < deadline, "never started: {}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One run per sync: a trigger while it runs is a conflict (overlap policy skip).
    let again = server.call("POST", "/api/v1/syncs/big/runs", t, None);
    expect(&again, 409);
    assert_eq!(code(&again), "run.in_progress");
    let deadline = Instant::now() + Duration::from_secs(120);
    while fixture.server.faults.seen("UploadPart") < 2 {
        assert!(
            Instant::now() < deadline,
            "no part was uploaded: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server.log())
    })
    .await
    .expect("join");
    let (status, log) = status;
    assert!(status.success(), "exit {status:?}: {log}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded shutdown"
    );
    assert!(log.contains("interrupting runs in progress"), "{log}");

    let out = run(wharf(home).args(["--json", "runs", "show", &run_id]));
    assert!(out.status.success(), "{}", text(&out));
    let shown = json(&out);
    assert_eq!(shown["status"], "interrupted", "{shown}");
    assert_eq!(shown["error"]["code"], "interrupted");
    let (objects, uploads) = bucket_residue(&fixture.server.admin(), BUCKET).await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );
}
