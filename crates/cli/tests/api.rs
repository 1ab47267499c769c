//! The REST API of the real `wharf serve`, over HTTP on 127.0.0.1: every resource created,
//! read, updated and deleted; the error shapes and statuses; pagination; a triggered run whose
//! files independent readers read back.

mod common;

use common::server::{Reply, Server, token};
use common::{BUCKET, Fixture, json, run, text, wharf};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A server on the fixture's home, allowed the loopback S3 endpoint and the fixture's data
/// folder, with an admin token.
fn serve(fixture: &Fixture) -> (Server, String) {
    let admin = token(fixture.home.path(), "default", "admin", "admin");
    let data = fixture.data.path().to_string_lossy().to_string();
    let server = Server::start(
        fixture.home.path(),
        &[
            ("WHARF_ALLOW_PRIVATE_ENDPOINTS", "1"),
            ("WHARF_LOCAL_SOURCE_ROOTS", data.as_str()),
            ("RUST_LOG", "info"),
        ],
    );
    (server, admin)
}

fn expect(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.raw);
}

/// The error body's code and field, after checking its shape.
fn error(reply: &Reply) -> (String, Option<String>) {
    let e = &reply.body["error"];
    let mut keys: Vec<&String> = e.as_object().expect("error object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "field", "message"], "{}", reply.raw);
    assert!(
        !e["message"].as_str().unwrap_or_default().is_empty(),
        "{}",
        reply.raw
    );
    (
        e["code"].as_str().expect("code").to_string(),
        e["field"].as_str().map(str::to_string),
    )
}

fn names(page: &Value, key: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i[key].as_str().expect(key).to_string())
        .collect()
}

/// Polls a run until it has ended.
pub fn wait_for_run(server: &Server, token: &str, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply = server.call("GET", location, Some(token), None);
        expect(&reply, 200);
        if !matches!(reply.body["status"].as_str(), Some("queued" | "running")) {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end: {}",
            reply.raw
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn access_key_destination(fixture: &Fixture, name: &str) -> Value {
    json!({
        "name": name,
        "bucket": BUCKET,
        "region": "us-east-1",
        "prefix": "api",
        "auth": {
            "type": "access_key",
            "access_key_id": fixture.server.access_key,
            "secret_access_key": fixture.server.secret_key,
        },
        "endpoint": fixture.server.endpoint(),
        "checksum": "crc32c",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_is_created_read_updated_and_deleted() {
    let fixture = Fixture::start().await;
    let (server, admin) = serve(&fixture);
    let t = Some(admin.as_str());
    let data = fixture.data.path().to_string_lossy().to_string();

    // Sources.
    let reply = server.call(
        "POST",
        "/api/v1/sources",
        t,
        Some(&json!({"name": "more", "type": "local", "path": data})),
    );
    expect(&reply, 201);
    assert_eq!(reply.body["tables"][0]["name"], "people", "{}", reply.raw);
    let reply = server.call("GET", "/api/v1/sources", t, None);
    expect(&reply, 200);
    assert_eq!(names(&reply.body, "name"), ["files", "more"]);
    let reply = server.call("GET", "/api/v1/sources/more", t, None);
    expect(&reply, 200);
    assert_eq!(reply.body["kind"], "local");

    // Models, with a preview.
    let model = json!({"name": "people", "source": "files", "sql": "SELECT * FROM people", "primary_key": "id"});
    let reply = server.call("POST", "/api/v1/models", t, Some(&model));
    expect(&reply, 201);
    assert_eq!(reply.body["columns"][0]["name"], "id", "{}", reply.raw);
    let reply = server.call("GET", "/api/v1/models/people", t, None);
    expect(&reply, 200);
    assert_eq!(reply.body["sql"], "SELECT * FROM people");
    let reply = server.call("GET", "/api/v1/models/people/preview?limit=2", t, None);
    expect(&reply, 200);
    assert_eq!(
        reply.body.as_array().map(Vec::len),
        Some(2),
        "{}",
        reply.raw
    );
    assert_eq!(reply.body[0]["name"], "Ada");

    // Segments: preview and SQL.
    let segment = json!({"name": "later", "model": "people", "filter": {"column": "id", "op": ">", "value": 1}});
    let reply = server.call("POST", "/api/v1/segments", t, Some(&segment));
    expect(&reply, 201);
    assert_eq!(reply.body["filter"]["op"], ">");
    let reply = server.call("GET", "/api/v1/segments/later/preview", t, None);
    expect(&reply, 200);
    assert_eq!(reply.body["count"], 2, "{}", reply.raw);
    let reply = server.call("GET", "/api/v1/segments/later/sql", t, None);
    expect(&reply, 200);
    assert!(
        reply.body["sql"]
            .as_str()
            .unwrap_or_default()
            .contains("id"),
        "{}",
        reply.raw
    );
    expect(&server.call("GET", "/api/v1/segments/later", t, None), 200);

    // Destinations: add, test (verified), update without auth (secret kept, unverified again).
    let reply = server.call(
        "POST",
        "/api/v1/destinations",
        t,
        Some(&access_key_destination(&fixture, "api-lake")),
    );
    expect(&reply, 201);
    assert_eq!(reply.body["auth"]["type"], "access_key", "{}", reply.raw);
    assert_eq!(reply.body["status"], "untested");
    let fingerprint = reply.body["auth"]["access_key_id"].clone();
    let reply = server.call("POST", "/api/v1/destinations/api-lake/test", t, None);
    expect(&reply, 200);
    assert_eq!(reply.body["ok"], true, "{}", reply.raw);
    let reply = server.call("GET", "/api/v1/destinations/api-lake", t, None);
    assert_eq!(reply.body["verified"], true, "{}", reply.raw);
    let mut changed = access_key_destination(&fixture, "api-lake");
    changed["prefix"] = json!("api-v2");
    changed.as_object_mut().map(|o| o.remove("auth"));
    let reply = server.call("PUT", "/api/v1/destinations/api-lake", t, Some(&changed));
    expect(&reply, 200);
    assert_eq!(reply.body["prefix"], "api-v2/");
    assert_eq!(reply.body["verified"], false, "an update needs a new test");
    assert_eq!(reply.body["auth"]["access_key_id"], fingerprint);
    let reply = server.call("POST", "/api/v1/destinations/api-lake/test", t, None);
    assert_eq!(
        reply.body["ok"], true,
        "the kept secret still works: {}",
        reply.raw
    );

    // A role destination: the External ID is generated, kept by updates, replaced by rotation.
    let role = json!({"name": "partner", "bucket": "partner-lake", "region": "eu-west-3",
        "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/wharf"}});
    let reply = server.call("POST", "/api/v1/destinations", t, Some(&role));
    expect(&reply, 201);
    let external_id = reply.body["external_id"]
        .as_str()
        .expect("external id")
        .to_string();
    let mut moved = role.clone();
    moved["prefix"] = json!("in/");
    let reply = server.call("PUT", "/api/v1/destinations/partner", t, Some(&moved));
    expect(&reply, 200);
    assert_eq!(reply.body["external_id"], external_id.as_str());
    let reply = server.call(
        "GET",
        "/api/v1/destinations/partner/policy?principal_arn=arn:aws:iam::111122223333:role/wharf-server",
        t,
        None,
    );
    expect(&reply, 200);
    assert!(reply.raw.contains(&external_id), "{}", reply.raw);
    assert!(
        reply
            .raw
            .contains("arn:aws:iam::111122223333:role/wharf-server")
    );
    let reply = server.call(
        "POST",
        "/api/v1/destinations/partner/rotate-external-id",
        t,
        None,
    );
    expect(&reply, 200);
    assert_ne!(reply.body["external_id"], external_id.as_str());

    // Syncs: add, update (re-validated), plan.
    let sync = json!({"name": "people-csv", "model": "people", "destination": "api-lake", "format": "csv"});
    let reply = server.call("POST", "/api/v1/syncs", t, Some(&sync));
    expect(&reply, 201);
    assert_eq!(reply.body["settings"]["file"]["csv"]["delimiter"], ",");
    let reply = server.call(
        "PUT",
        "/api/v1/syncs/people-csv",
        t,
        Some(&json!({"segment": "later", "destination": "api-lake", "format": "ndjson", "manifest": true})),
    );
    expect(&reply, 200);
    assert_eq!(reply.body["segment"], "later", "{}", reply.raw);
    assert_eq!(reply.body["settings"]["file"]["format"], "ndjson");
    let reply = server.call(
        "PUT",
        "/api/v1/syncs/people-csv",
        t,
        Some(&json!({"model": "people", "destination": "api-lake", "format": "csv", "columns": "id,nope"})),
    );
    expect(&reply, 422);
    assert_eq!(error(&reply), ("invalid".into(), Some("columns".into())));
    let reply = server.call("GET", "/api/v1/syncs/people-csv/plan", t, None);
    expect(&reply, 200);
    assert_eq!(reply.body["rows"], 2, "{}", reply.raw);

    // What is in use stays; the rest goes, in order.
    let reply = server.call("DELETE", "/api/v1/models/people", t, None);
    expect(&reply, 409);
    assert_eq!(error(&reply).0, "model.in_use");
    let reply = server.call("DELETE", "/api/v1/destinations/api-lake", t, None);
    expect(&reply, 409);
    assert_eq!(error(&reply).0, "destination.in_use");
    for path in [
        "/api/v1/syncs/people-csv",
        "/api/v1/segments/later",
        "/api/v1/models/people",
        "/api/v1/sources/more",
        "/api/v1/destinations/api-lake",
        "/api/v1/destinations/partner",
    ] {
        let reply = server.call("DELETE", path, t, None);
        expect(&reply, 204);
        let reply = server.call("GET", path, t, None);
        expect(&reply, 404);
        assert!(error(&reply).0.ends_with(".not_found"), "{}", reply.raw);
    }
    let reply = server.call("GET", "/api/v1/audit?limit=3", t, None);
    expect(&reply, 200);
    assert_eq!(reply.body["items"][0]["action"], "remove");
    assert_eq!(reply.body["items"][0]["object_name"], "partner");
    assert_eq!(reply.body["items"][0]["actor"], "token:admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_one_shape_and_the_right_status() {
    let fixture = Fixture::start().await;
    let (server, admin) = serve(&fixture);
    let t = Some(admin.as_str());
    // (method, path, body, status, code, field)
    type Case<'a> = (&'a str, &'a str, &'a str, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/v1/destinations",
            "{\"name\": ",
            400,
            "malformed",
            None,
        ),
        ("POST", "/api/v1/destinations", "", 400, "malformed", None),
        ("POST", "/api/v1/destinations", "[1]", 422, "invalid", None),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "a", "name": "b", "bucket": "b", "region": "r"}"#,
            400,
            "malformed",
            None,
        ),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "x", "bucket": "wharf-x", "region": "eu-west-3", "colour": "red"}"#,
            400,
            "unknown_field",
            Some("colour"),
        ),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "x", "bucket": "wharf-x", "region": "eu-west-3", "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/r", "bogus": 1}}"#,
            400,
            "unknown_field",
            Some("auth.bogus"),
        ),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "x", "region": "eu-west-3"}"#,
            422,
            "invalid",
            Some("bucket"),
        ),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "x", "bucket": 7, "region": "eu-west-3"}"#,
            422,
            "invalid",
            Some("bucket"),
        ),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "x", "bucket": "wharf-x", "region": "eu-west-3", "auth": {"type": "role", "role_arn": "arn:aws:iam::12:role/r"}}"#,
            422,
            "invalid",
            Some("auth.role_arn"),
        ),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "x", "bucket": "wharf-x", "region": "eu-west-3", "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/r"}, "external_id": "mine"}"#,
            422,
            "invalid",
            Some("external_id"),
        ),
        (
            "POST",
            "/api/v1/destinations",
            r#"{"name": "x", "bucket": "wharf-x", "region": "eu-west-3"}"#,
            422,
            "invalid",
            Some("auth"),
        ),
        (
            "GET",
            "/api/v1/destinations?limit=0",
            "",
            422,
            "invalid",
            Some("limit"),
        ),
        (
            "GET",
            "/api/v1/destinations?cursor=%25%25",
            "",
            422,
            "invalid",
            Some("cursor"),
        ),
        (
            "GET",
            "/api/v1/destinations?colour=red",
            "",
            400,
            "unknown_parameter",
            Some("colour"),
        ),
        (
            "GET",
            "/api/v1/destinations/nope",
            "",
            404,
            "destination.not_found",
            None,
        ),
        ("GET", "/api/v1/runs/nope", "", 404, "run.not_found", None),
        (
            "GET",
            "/api/v1/nothing-here",
            "",
            404,
            "route.not_found",
            None,
        ),
        (
            "POST",
            "/api/v1/syncs/nope/runs",
            "",
            404,
            "sync.not_found",
            None,
        ),
        (
            "POST",
            "/api/v1/sources",
            r#"{"name": "etc", "type": "local", "path": "/etc"}"#,
            403,
            "source.outside_roots",
            Some("path"),
        ),
        (
            "POST",
            "/api/v1/models",
            r#"{"name": "m", "source": "files", "sql": "SELECT * FROM people", "primary_key": "nope"}"#,
            422,
            "model.primary_key",
            Some("primary_key"),
        ),
        (
            "POST",
            "/api/v1/models",
            r#"{"name": "m", "source": "files", "sql": "SELECT * FROM read_csv('/etc/passwd')", "primary_key": "id"}"#,
            422,
            "query.sql",
            Some("sql"),
        ),
    ];
    for (method, path, body, status, code, field) in cases {
        let reply = server.send(method, path, t, (!body.is_empty()).then_some(body));
        assert_eq!(
            reply.status, status,
            "{method} {path} {body}: {}",
            reply.raw
        );
        let (got_code, got_field) = error(&reply);
        assert_eq!(got_code, code, "{method} {path} {body}: {}", reply.raw);
        assert_eq!(
            got_field.as_deref(),
            field,
            "{method} {path} {body}: {}",
            reply.raw
        );
        assert!(
            reply.request_id.is_some(),
            "every response has a request id"
        );
    }
    // Probes answer without a token; a client's request id comes back, a made-up one is new.
    let (status, id, body) = server.get_with("/healthz", &[("x-request-id", "trace-me-42")]);
    assert_eq!(
        (status, id.as_deref()),
        (200, Some("trace-me-42")),
        "{body}"
    );
    let (status, _, body) = server.get_with("/readyz", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"status":"ready"}"#);
    let (_, id, _) = server.get_with("/healthz", &[("x-request-id", "bad id with spaces")]);
    assert!(
        id.is_some_and(|id| !id.contains(' ')),
        "an unsafe id is replaced"
    );
    // A name taken is a conflict.
    let reply = server.call(
        "POST",
        "/api/v1/destinations",
        t,
        Some(&access_key_destination(&fixture, "lake")),
    );
    expect(&reply, 409);
    assert_eq!(error(&reply).0, "destination.exists");
    let log = server.log();
    assert!(
        log.contains("route=/api/v1/destinations/{name}") && log.contains("status=404"),
        "request logs name the route template and the status: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paginated_with_an_opaque_cursor() {
    let fixture = Fixture::start().await;
    let (server, admin) = serve(&fixture);
    let t = Some(admin.as_str());
    let mut expected = vec!["lake".to_string()];
    for i in 0..6 {
        let name = format!("dest-{i}");
        let reply = server.call(
            "POST",
            "/api/v1/destinations",
            t,
            Some(&access_key_destination(&fixture, &name)),
        );
        expect(&reply, 201);
        expected.push(name);
    }
    expected.sort();
    let mut seen = Vec::new();
    let mut path = "/api/v1/destinations?limit=3".to_string();
    let mut pages = 0;
    loop {
        let reply = server.call("GET", &path, t, None);
        expect(&reply, 200);
        pages += 1;
        let page = names(&reply.body, "name");
        assert!(page.len() <= 3);
        seen.extend(page);
        match reply.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/destinations?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    // Runs page newest first, and filter by sync and status.
    let model = json!({"name": "people", "source": "files", "sql": "SELECT * FROM people", "primary_key": "id"});
    expect(&server.call("POST", "/api/v1/models", t, Some(&model)), 201);
    let sync = json!({"name": "p", "model": "people", "destination": "lake", "format": "csv", "overwrite": true,
        "key_template": "{sync}/{run}.{ext}"});
    expect(&server.call("POST", "/api/v1/syncs", t, Some(&sync)), 201);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let reply = server.call("POST", "/api/v1/syncs/p/runs", t, None);
        expect(&reply, 202);
        let run = wait_for_run(
            &server,
            &admin,
            reply.location.as_deref().expect("location"),
        );
        runs.push(run["run_id"].as_str().expect("id").to_string());
    }
    runs.reverse();
    let first = server.call("GET", "/api/v1/runs?sync=p&limit=2", t, None);
    expect(&first, 200);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = server.call(
        "GET",
        &format!("/api/v1/runs?sync=p&limit=2&cursor={cursor}"),
        t,
        None,
    );
    let mut listed = names(&first.body, "run_id");
    listed.extend(names(&second.body, "run_id"));
    assert_eq!(listed, runs);
    assert_eq!(second.body["next_cursor"], Value::Null);
    let failed = server.call("GET", "/api/v1/runs?status=failed", t, None);
    expect(&failed, 200);
    assert_eq!(failed.body["items"], json!([]));
    let succeeded = server.call("GET", "/api/v1/runs?status=succeeded&sync=p", t, None);
    assert_eq!(names(&succeeded.body, "run_id"), runs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_run_delivers_files_that_independent_readers_read_back() {
    let fixture = Fixture::start().await;
    let (server, admin) = serve(&fixture);
    let t = Some(admin.as_str());
    let model = json!({"name": "people", "source": "files", "sql": "SELECT * FROM people", "primary_key": "id"});
    expect(&server.call("POST", "/api/v1/models", t, Some(&model)), 201);
    let sync = json!({"name": "people-ndjson", "model": "people", "destination": "lake",
        "format": "ndjson", "manifest": true});
    expect(&server.call("POST", "/api/v1/syncs", t, Some(&sync)), 201);

    let reply = server.call("POST", "/api/v1/syncs/people-ndjson/runs", t, None);
    expect(&reply, 202);
    let run_id = reply.body["run_id"].as_str().expect("run_id").to_string();
    let location = reply.location.clone().expect("Location");
    assert_eq!(location, format!("/api/v1/runs/{run_id}"));
    let done = wait_for_run(&server, &admin, &location);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["rows"], 3);
    let files = server.call("GET", &format!("/api/v1/runs/{run_id}/files"), t, None);
    expect(&files, 200);
    assert_eq!(files.body, done["files"]);
    let keys: Vec<&str> = done["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys.len(), 1);
    wharf_testkit::check_export(&json!({
        "endpoint": fixture.server.endpoint(),
        "access_key": fixture.server.access_key,
        "secret_key": fixture.server.secret_key,
        "region": "us-east-1",
        "bucket": BUCKET,
        "format": "ndjson",
        "compression": "none",
        "keys": keys,
        "key_column": "id",
        "expected": [
            {"id": 1, "name": "Ada", "city": "Paris, \"FR\""},
            {"id": 2, "name": "Bob", "city": null},
            {"id": 3, "name": "Zoë 🌍", "city": "two\nlines"},
        ],
        "types": {"id": "int64", "name": "string", "city": "string"},
        "columns": ["id", "name", "city"],
    }));
    // The API's run is the CLI's `runs show --json`.
    let out = run(wharf(fixture.home.path()).args(["--json", "runs", "show", &run_id]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out), done);
}
