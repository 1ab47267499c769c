//! End-to-end tests of the built `wharf` binary: exact CLI shapes, exit codes, validation
//! messages, and secrets that never leave their sealed form.

use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::{Output, Stdio};
use wharf_testkit::{Moto, RoleSpec, S3TestServer, bucket_residue};

mod common;

use common::{CANARY, json, run, text, wharf};

fn add_key_destination(home: &Path, name: &str, endpoint: &str, key: &str) -> Output {
    run(wharf(home)
        .args([
            "--allow-private-endpoints",
            "--json",
            "destination",
            "add",
            "s3",
            name,
        ])
        .args([
            "--bucket",
            "wharf-test",
            "--region",
            "eu-west-3",
            "--prefix",
            "exports",
        ])
        .args([
            "--auth",
            "access-key",
            "--access-key-id",
            key,
            "--secret-access-key-env",
            "PARTNER_SECRET",
        ])
        .args(["--endpoint", endpoint])
        .env("PARTNER_SECRET", CANARY))
}

#[test]
fn bad_input_is_exit_2_with_the_field_value_and_rule() {
    let home = tempfile::tempdir().expect("home");
    let base = |extra: &[&str]| {
        let mut c = wharf(home.path());
        c.args(["destination", "add", "s3", "d", "--region", "us-east-1"]);
        c.args(extra);
        c
    };
    let key = [
        "--auth",
        "access-key",
        "--access-key-id",
        "AKIAIOSFODNN7EXAMPLE",
        "--secret-access-key-env",
        "PARTNER_SECRET",
    ];
    let role = [
        "--auth",
        "role",
        "--role-arn",
        "arn:aws:iam::123456789012:role/r",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--bucket", "My_Bucket"],
            "--bucket: bucket \"My_Bucket\" is invalid: S3 bucket names use lowercase letters",
        ),
        (vec!["--bucket", "ab"], "3 to 63 characters"),
        (
            vec!["--bucket", "192.168.1.1"],
            "formatted as an IP address",
        ),
        (vec!["--bucket", "xn--abc"], "starting with \"xn--\""),
        (
            vec!["--bucket", "b-1", "--prefix", "/abs"],
            "--prefix: prefix \"/abs\" is invalid: a prefix does not start with '/'",
        ),
        (
            vec!["--bucket", "b-1", "--prefix", "a/../b"],
            "\"..\" folder name",
        ),
        (
            vec!["--bucket", "b-1", "--endpoint", "http://169.254.169.254"],
            "cloud metadata service",
        ),
        (
            vec!["--bucket", "b-1", "--endpoint", "http://127.0.0.1:9000"],
            "loopback address: the operator can allow private endpoints with --allow-private-endpoints",
        ),
        (
            vec!["--bucket", "b-1", "--endpoint", "http://[::1]:9000"],
            "loopback address",
        ),
        (
            vec!["--bucket", "b-1", "--endpoint", "http://10.0.0.1"],
            "private-network address",
        ),
        (vec!["--bucket", "b-1", "--sse", "kms"], "--kms-key-id"),
        (
            vec!["--bucket", "b-1", "--checksum", "md5"],
            "--checksum: checksum \"md5\" is invalid",
        ),
    ];
    for (extra, expected) in cases {
        let output = run(base(&extra).args(key).env("PARTNER_SECRET", CANARY));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
    let role_cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--role-arn", "arn:aws:iam::123:role/r"],
            "--role-arn: role_arn \"arn:aws:iam::123:role/r\" is invalid",
        ),
        (
            vec!["--role-arn", "arn:aws:iam::123456789012:user/wharf"],
            "names an IAM \"user\", not a role",
        ),
        (
            vec!["--endpoint", "https://s3.example.com"],
            "access-key auth only",
        ),
        (vec!["--session-duration", "60"], "900 to 43200"),
        (
            vec!["--access-key-id", "AKIAIOSFODNN7EXAMPLE"],
            "--access-key-id is for --auth access-key",
        ),
    ];
    for (extra, expected) in role_cases {
        let mut args = vec!["--bucket", "b-1", "--auth", "role"];
        if !extra.contains(&"--role-arn") {
            args.extend(&role[2..]);
        }
        args.extend(&extra);
        let output = run(&mut base(&args));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(expected),
            "{extra:?}: {}",
            text(&output)
        );
    }
    // A secret is never an argument value; a missing variable is named.
    let output = run(&mut base(&[
        "--bucket",
        "b-1",
        "--auth",
        "access-key",
        "--access-key-id",
        "AKIAIOSFODNN7EXAMPLE",
    ]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("never taken as argument values"),
        "{}",
        text(&output)
    );
    let output = run(base(&key)
        .args(["--bucket", "b-1"])
        .env_remove("PARTNER_SECRET"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("environment variable PARTNER_SECRET is not set"),
        "{}",
        text(&output)
    );
    let output = run(wharf(home.path())
        .args([
            "destination",
            "add",
            "s3",
            "d",
            "--bucket",
            "b-1",
            "--region",
            "US-EAST-1",
        ])
        .args(key)
        .env("PARTNER_SECRET", CANARY));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("--region: region \"US-EAST-1\" is invalid"),
        "{}",
        text(&output)
    );
    // Unknown names are bad input too.
    let output = run(wharf(home.path()).args(["destination", "show", "nope"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("no destination named \"nope\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_key_destination_end_to_end_without_leaking_the_secret() {
    let server = S3TestServer::start_with_keys(&[("AKIAPARTNER000000001", CANARY)]).await;
    server.create_bucket("wharf-test").await;
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let mut outputs = Vec::new();

    let output = add_key_destination(h, "partner", &server.endpoint(), "AKIAPARTNER000000001");
    assert!(output.status.success(), "{}", text(&output));
    let added = json(&output);
    assert_eq!(added["auth"]["access_key_id"], "AKIA…0001");
    assert_eq!(added["prefix"], "exports/");
    assert_eq!(added["external_id"], Value::Null);
    outputs.push(output);

    // Same name again: bad input.
    let output = add_key_destination(h, "partner", &server.endpoint(), "AKIAPARTNER000000001");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("already exists"));
    outputs.push(output);

    // The secret can come from standard input too.
    let mut child = wharf(h)
        .args([
            "--allow-private-endpoints",
            "destination",
            "add",
            "s3",
            "from-stdin",
            "--bucket",
            "wharf-test",
            "--region",
            "eu-west-3",
        ])
        .args([
            "--auth",
            "access-key",
            "--access-key-id",
            "AKIAPARTNER000000001",
            "--secret-access-key-stdin",
            "--endpoint",
            &server.endpoint(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{CANARY}\n").as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", text(&output));
    outputs.push(output);

    let output = run(wharf(h).args([
        "--allow-private-endpoints",
        "--json",
        "destination",
        "test",
        "partner",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    assert_eq!(report["ok"], true);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("name"))
        .collect();
    assert_eq!(
        steps,
        [
            "list_multipart_uploads",
            "create_multipart_upload",
            "upload_part",
            "list_parts",
            "abort_multipart_upload"
        ]
    );
    for step in report["steps"].as_array().expect("steps") {
        let keys: Vec<&String> = step.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            ["error_code", "fix", "message", "ok", "request_id", "step"]
        );
    }
    outputs.push(output);
    let (objects, uploads) = bucket_residue(&server.admin(), "wharf-test").await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );

    // The same test without the operator's permission for loopback: refused, exit 1.
    let output = run(wharf(h).args(["--json", "destination", "test", "partner"]));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(json(&output)["ok"], false);
    outputs.push(output);

    for args in [
        vec!["destination", "list"],
        vec!["--json", "destination", "list"],
        vec!["destination", "show", "partner"],
        vec!["--json", "destination", "show", "partner"],
        vec!["--json", "destination", "policy", "partner"],
        vec!["destination", "policy", "partner"],
    ] {
        let output = run(wharf(h).args(&args));
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        outputs.push(output);
    }
    let shown = json(&run(wharf(h).args([
        "--json",
        "destination",
        "show",
        "partner",
    ])));
    assert_eq!(
        shown["verified"], false,
        "the last test failed: no longer verified"
    );
    let policy = json(&run(wharf(h).args([
        "--json",
        "destination",
        "policy",
        "partner",
    ])));
    assert_eq!(policy["principal_arn"], Value::Null);
    assert_eq!(policy["trust_policy"], Value::Null);
    assert_eq!(policy["permission_policy"]["Version"], "2012-10-17");
    assert_eq!(
        policy["permission_policy"]["Statement"][0]["Resource"],
        "arn:aws:s3:::wharf-test/exports/*"
    );

    let output = run(wharf(h).args(["--json", "destination", "rotate-external-id", "partner"]));
    assert_eq!(
        output.status.code(),
        Some(2),
        "access-key destinations have no External ID"
    );
    outputs.push(output);

    // The canary appears in no output (logs at trace included) and nowhere under $WHARF_HOME.
    for output in &outputs {
        assert!(
            !text(output).contains(CANARY),
            "secret leaked: {}",
            text(output)
        );
    }
    assert!(
        outputs
            .iter()
            .any(|o| String::from_utf8_lossy(&o.stderr).contains("TRACE")),
        "logs were at trace level"
    );
    assert_no_plaintext(h, CANARY);

    let output = run(wharf(h).args(["--json", "destination", "rm", "partner"]));
    assert!(output.status.success());
    assert_eq!(json(&output)["removed"], "partner");
}

fn assert_no_plaintext(dir: &Path, needle: &str) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_no_plaintext(&path, needle);
        } else {
            let bytes = std::fs::read(&path).expect("read");
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds the secret",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_destination_end_to_end_against_moto() {
    let moto = Moto::start("wharf-moto");
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let env = moto.wharf_env();

    let output = run(wharf(h).args(["--json", "whoami"]).envs(env.clone()));
    assert!(output.status.success(), "{}", text(&output));
    let me = json(&output);
    assert_eq!(me["arn"], "arn:aws:iam::123456789012:user/wharf");
    assert_eq!(me["account"], "123456789012");

    let output = run(wharf(h)
        .args([
            "--json",
            "destination",
            "add",
            "s3",
            "lake",
            "--bucket",
            "wharf-moto",
            "--region",
            "us-east-1",
            "--prefix",
            "exports/daily/",
        ])
        .args([
            "--auth",
            "role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/wharf-lake",
        ]));
    assert!(output.status.success(), "{}", text(&output));
    let added = json(&output);
    let external_id = added["external_id"]
        .as_str()
        .expect("external id")
        .to_string();
    assert!(
        external_id.starts_with("wharf-") && external_id.len() >= 32,
        "{external_id}"
    );

    let output = run(wharf(h)
        .args(["--json", "destination", "policy", "lake"])
        .envs(env.clone()));
    assert!(output.status.success(), "{}", text(&output));
    let policy = json(&output);
    assert_eq!(
        policy["principal_arn"],
        "arn:aws:iam::123456789012:user/wharf"
    );
    assert_eq!(policy["external_id"], external_id.as_str());
    assert_eq!(
        policy["trust_policy"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
        external_id.as_str()
    );

    // The bucket owner installs exactly what wharf printed.
    moto.create_role(&RoleSpec {
        name: "wharf-lake".into(),
        trust_principal: policy["principal_arn"].as_str().expect("principal").into(),
        external_id: Some(external_id.clone()),
        permission_policy: Some(policy["permission_policy"].clone()),
    });
    let output = run(wharf(h)
        .args(["--json", "destination", "test", "lake"])
        .envs(env.clone()));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("name"))
        .collect();
    assert_eq!(
        steps[..2],
        ["assume_role", "assume_role_without_external_id"]
    );
    assert_eq!(steps.len(), 7);
    assert_eq!(
        json(&run(wharf(h).args([
            "--json",
            "destination",
            "show",
            "lake"
        ])))["verified"],
        true
    );

    // An export through the role: every request signed with the role's credentials, allowed
    // by nothing but the permission policy wharf printed (moto enforces it). The CSV has
    // enough rows for a multipart upload (parts of 5 MiB), so the policy's multipart
    // permissions are exercised, not only PutObject.
    let data = tempfile::tempdir().expect("data");
    let mut csv = String::from("id,name\n");
    for i in 0..600_000 {
        csv.push_str(&format!("{i},person {i:07}\n"));
    }
    std::fs::write(data.path().join("people.csv"), &csv).expect("write csv");
    // What wharf writes: the same rows, with CSV's CRLF line ends (RFC 4180).
    let csv = csv.replace('\n', "\r\n");
    for args in [
        vec![
            "source",
            "add",
            "local",
            "files",
            "--path",
            &data.path().to_string_lossy(),
        ],
        vec![
            "model",
            "add",
            "people",
            "--source",
            "files",
            "--primary-key",
            "id",
            "--sql",
            "SELECT * FROM people ORDER BY id",
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
            "--key-template",
            "{sync}/{run}/people.{ext}",
        ],
    ] {
        let output = run(wharf(h).args(&args));
        assert!(output.status.success(), "{args:?}: {}", text(&output));
    }
    let output = run(wharf(h)
        .args(["--json", "sync", "run", "people-csv"])
        .envs(env.clone()));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outcome = json(&output);
    assert_eq!(outcome["rows"], 600_000);
    let run_id = outcome["run_id"].as_str().expect("run id");
    let key = format!("exports/daily/people-csv/{run_id}/people.csv");
    assert_eq!(outcome["files"][0]["key"], key.as_str());
    let key = key.as_str();
    let admin = moto.admin_s3();
    let stored = wharf_testkit::object_bytes(&admin, "wharf-moto", key).await;
    assert_eq!(stored.len(), csv.len());
    assert!(
        stored == csv.as_bytes(),
        "the exported CSV differs from the source"
    );
    let head = admin
        .head_object()
        .bucket("wharf-moto")
        .key(key)
        .send()
        .await
        .expect("head");
    assert!(
        head.e_tag().is_some_and(|etag| etag.contains('-')),
        "a multipart object: {:?}",
        head.e_tag()
    );
    admin
        .delete_object()
        .bucket("wharf-moto")
        .key(key)
        .send()
        .await
        .expect("delete the export");

    // Rotation: a new External ID, unverified, and the old trust policy no longer works.
    let output = run(wharf(h).args(["--json", "destination", "rotate-external-id", "lake"]));
    assert!(output.status.success(), "{}", text(&output));
    let rotated = json(&output);
    assert_ne!(rotated["external_id"], external_id.as_str());
    assert_eq!(rotated["verified"], false);
    let output = run(wharf(h)
        .args(["--json", "destination", "test", "lake"])
        .envs(env));
    assert_eq!(output.status.code(), Some(1));
    let assume = &json(&output)["steps"][0];
    assert_eq!(assume["ok"], false);
    assert!(
        assume["message"]
            .as_str()
            .expect("message")
            .contains("External ID mismatch"),
        "{assume}"
    );
    let (objects, uploads) = bucket_residue(&moto.admin_s3(), "wharf-moto").await;
    assert!(objects.is_empty() && uploads.is_empty());
}

#[test]
fn demo_runs_end_to_end_and_again() {
    let home = tempfile::tempdir().expect("home");
    for _ in 0..2 {
        let output = run(wharf(home.path()).args(["demo"]).env("RUST_LOG", "warn"));
        assert!(output.status.success(), "{}", text(&output));
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(out.contains("connection test passed"), "{out}");
        assert!(
            out.contains("objects left in the bucket by the test: 0"),
            "{out}"
        );
        assert!(out.contains("\"Version\": \"2012-10-17\""), "{out}");
        for sync in ["parquet", "csv", "ndjson", "json", "xml", "avro", "segment"] {
            assert!(
                out.contains(&format!("demo-{sync}")) && !out.contains("FAILED"),
                "{out}"
            );
        }
        assert_eq!(out.matches("100000 rows").count(), 6, "{out}");
    }
    let output = run(wharf(home.path()).args(["--json", "runs"]));
    let runs = json(&output);
    let runs = runs.as_array().expect("runs");
    assert_eq!(runs.len(), 14, "two demos, seven syncs each");
    for r in runs {
        assert_eq!(r["status"], "succeeded", "{r}");
        if r["sync"] == "demo-segment" {
            check_demo_segment(home.path(), r);
        } else {
            assert_eq!(r["rows"], 100_000, "{r}");
        }
        assert!(
            r["manifest"]
                .as_str()
                .is_some_and(|m| m.ends_with("/_manifest.json")),
            "{r}"
        );
    }
    let output = run(wharf(home.path()).args(["--json", "destination", "list"]));
    let names: Vec<String> = json(&output)
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(names, ["demo-local", "demo-partner-role"]);
}

/// The demo segment's run selected exactly the customers DuckDB finds with the same condition
/// written by hand, at the time the run recorded.
fn check_demo_segment(home: &std::path::Path, r: &serde_json::Value) {
    let id = r["run_id"].as_str().expect("run id");
    let shown = json(&run(wharf(home).args(["--json", "runs", "show", id])));
    let segment = &shown["definition"]["segment"];
    assert_eq!(segment["name"], "demo-loyal", "{shown}");
    let as_of = segment["as_of"].as_str().expect("as_of");
    let dir = home.join("warehouse").display().to_string();
    let want = wharf_testkit::duckdb_rows(&format!(
        "SELECT count(*) FROM read_parquet('{dir}/customers.parquet') c
         WHERE c.is_subscribed AND (
             SELECT count(*) FROM read_parquet('{dir}/orders.parquet') o
             WHERE o.customer_id = c.id
               AND o.ordered_at BETWEEN TIMESTAMPTZ '{as_of}' - INTERVAL 90 DAY AND TIMESTAMPTZ '{as_of}'
         ) >= 3"
    ));
    let want = want[0][0].as_u64().expect("count");
    assert!(
        want > 100,
        "the demo data gives the segment members: {want}"
    );
    assert_eq!(r["rows"].as_u64(), Some(want), "{r}");
}
