//! Regression tests for the hostile probe's findings (issue "Hardening before wharf becomes a
//! shared server"), each named after the behaviour it pins, run against the binary as CI and
//! the README's demo build it.

mod common;

use common::{BUCKET, Fixture, json, run, text, wharf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use wharf_testkit::bucket_residue;

fn add_model(home: &std::path::Path, name: &str, sql: &str) -> std::process::Output {
    add_model_with(wharf(home), name, sql)
}

/// `model add NAME` on source `files` with primary key `id`, run by `command`.
fn add_model_with(
    mut command: std::process::Command,
    name: &str,
    sql: &str,
) -> std::process::Output {
    run(command.args([
        "model",
        "add",
        name,
        "--source",
        "files",
        "--primary-key",
        "id",
        "--sql",
        sql,
    ]))
}

/// The [`Fixture`] with a model `people` over `people.csv`.
async fn with_people() -> Fixture {
    let fixture = Fixture::start().await;
    assert!(
        add_model(fixture.home.path(), "people", "SELECT * FROM people")
            .status
            .success()
    );
    fixture
}

/// Adds sync `name`: model `model` to destination `lake` as CSV.
fn add_csv_sync(home: &std::path::Path, name: &str, model: &str) {
    let out = run(wharf(home).args([
        "sync",
        "add",
        name,
        "--model",
        model,
        "--destination",
        "lake",
        "--format",
        "csv",
    ]));
    assert!(out.status.success(), "{}", text(&out));
}

/// Regular files left under the server's folder (objects, parts, side files).
fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.display().to_string());
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_and_model_sql_at_their_limits_run_instead_of_overflowing_the_stack() {
    let Fixture {
        server: _server,
        home,
        data: _data,
    } = with_people().await;

    // An `or` of as many conditions as the node limit allows (the probe crashed at 600).
    let max_nodes = wharf_domain::segment::MAX_NODES;
    let conditions: Vec<String> = (0..max_nodes - 1)
        .map(|i| format!(r#"{{"column":"name","op":"contains","value":"n{i}"}}"#))
        .collect();
    let mut filter = format!(r#"{{"or":[{}]}}"#, conditions.join(","));
    // One condition that matches, so the export has a row.
    filter = filter.replacen("\"n0\"", "\"Ada\"", 1);
    let out = run(wharf(home.path()).args([
        "segment", "add", "wide", "--model", "people", "--filter", &filter,
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args(["--json", "segment", "preview", "wide"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["count"], 1);
    let out = run(wharf(home.path()).args([
        "sync",
        "add",
        "wide-csv",
        "--segment",
        "wide",
        "--destination",
        "lake",
        "--format",
        "csv",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args([
        "--allow-private-endpoints",
        "--json",
        "sync",
        "run",
        "wide-csv",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["rows"], 1);

    // Model SQL: a chain right at the documented depth plans and runs; one past it is refused.
    let limit = wharf_runner::MAX_EXPRESSION_DEPTH;
    let chain = |terms: usize| {
        format!(
            "SELECT {} AS x, id FROM people",
            vec!["id"; terms].join("+")
        )
    };
    let out = add_model(home.path(), "deep", &chain(limit - 2));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args(["--json", "model", "preview", "deep"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = add_model(home.path(), "deeper", &chain(2_000));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("nest") && text(&out).contains(&limit.to_string()),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_the_size_limit_fails_the_run_not_the_process() {
    let Fixture {
        server,
        home,
        data: _data,
    } = Fixture::start().await;
    for (name, sql) in [
        ("huge", "SELECT 1 AS id, repeat('x', 2000000000) AS big"),
        ("padded", "SELECT 1 AS id, lpad('x', 2000000000) AS big"),
    ] {
        assert!(add_model(home.path(), name, sql).status.success());
        let out = run(wharf(home.path()).args([
            "sync",
            "add",
            name,
            "--model",
            name,
            "--destination",
            "lake",
            "--format",
            "csv",
        ]));
        assert!(out.status.success(), "{}", text(&out));
        let out = run(wharf(home.path())
            .args(["--allow-private-endpoints", "--json", "sync", "run", name])
            .env("WHARF_QUERY_MEMORY_MB", "256"));
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let outcome = json(&out);
        assert_eq!(outcome["status"], "failed");
        let message = outcome["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("limit of 64.0 MiB for one value"),
            "{message}"
        );
    }
    let (objects, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_its_name_and_terminal_controls_are_escaped() {
    let Fixture {
        server: _server,
        home,
        data: _data,
    } = with_people().await;

    // EXPLAIN is not a model.
    let out = add_model(home.path(), "plan", "EXPLAIN SELECT * FROM people");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("a model is a query that returns rows"),
        "{}",
        text(&out)
    );

    // Column names with terminal controls are shown escaped.
    let out = add_model(
        home.path(),
        "odd",
        "SELECT id, name AS \"e\u{1b}[2Jx\" FROM people",
    );
    assert!(out.status.success(), "{}", text(&out));
    for args in [
        vec!["model", "show", "odd"],
        vec!["model", "preview", "odd"],
    ] {
        let out = run(wharf(home.path()).args(&args));
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains('\u{1b}'),
            "{args:?}: raw escape in {stdout:?}"
        );
        assert!(stdout.contains("e\\u{1b}[2Jx"), "{args:?}: {stdout}");
    }

    // Duplicate keys in a filter.
    for filter in [
        r#"{"and":[{"column":"id","op":"=","value":1}],"and":[{"column":"id","op":">","value":0}]}"#,
        r#"{"column":"id","op":"=","value":1,"value":2}"#,
    ] {
        let out = run(wharf(home.path()).args([
            "segment", "add", "dup", "--model", "people", "--filter", filter,
        ]));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("appears twice"), "{}", text(&out));
    }

    // An `in` list over the limit is refused at once, naming the limit.
    let values: Vec<String> = (0..wharf_domain::segment::MAX_LIST_VALUES + 1)
        .map(|i| i.to_string())
        .collect();
    let filter = format!(
        r#"{{"column":"id","op":"in","value":[{}]}}"#,
        values.join(",")
    );
    let started = Instant::now();
    let out = run(wharf(home.path()).args([
        "segment", "add", "long", "--model", "people", "--filter", &filter,
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("at most 10000 values"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // At the limit, it is accepted and previews.
    let values: Vec<String> = (0..wharf_domain::segment::MAX_LIST_VALUES)
        .map(|i| i.to_string())
        .collect();
    let filter = format!(
        r#"{{"column":"id","op":"in","value":[{}]}}"#,
        values.join(",")
    );
    let out = run(wharf(home.path()).args([
        "segment", "add", "long", "--model", "people", "--filter", &filter,
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args(["--json", "segment", "preview", "long"]));
    assert_eq!(json(&out)["count"], 3, "{}", text(&out));

    // Environment variables are checked like flags.
    for (var, value) in [
        ("WHARF_QUERY_MEMORY_MB", "abc"),
        ("WHARF_QUERY_MEMORY_MB", "-1"),
        ("WHARF_QUERY_MEMORY_MB", "2g"),
        ("WHARF_ALLOW_PRIVATE_ENDPOINTS", "maybe"),
    ] {
        let out = run(wharf(home.path()).args(["model", "list"]).env(var, value));
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("{var}=\"{value}\"")),
            "{}",
            text(&out)
        );
    }
    let out = run(wharf(home.path())
        .args([
            "--json",
            "sync",
            "add",
            "ok",
            "--model",
            "people",
            "--destination",
            "lake",
        ])
        .args(["--format", "csv"])
        .env("WHARF_ALLOW_PRIVATE_ENDPOINTS", "1"));
    assert!(out.status.success(), "{}", text(&out));

    // The default key template works with a manifest.
    let out = run(wharf(home.path()).args([
        "sync",
        "add",
        "with-manifest",
        "--model",
        "people",
        "--destination",
        "lake",
        "--format",
        "csv",
        "--manifest",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path())
        .args(["--json", "sync", "run", "with-manifest"])
        .env("WHARF_ALLOW_PRIVATE_ENDPOINTS", "yes"));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_closed_stdout_ends_output_quietly() {
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    let mut csv = String::from("id,name\n");
    for i in 0..2000 {
        csv.push_str(&format!("{i},name-{i}\n"));
    }
    std::fs::write(data.path().join("people.csv"), csv).expect("csv");
    let out = run(wharf(home.path())
        .args(["source", "add", "local", "files", "--path"])
        .arg(data.path()));
    assert!(out.status.success(), "{}", text(&out));
    for i in 0..50 {
        assert!(
            add_model(home.path(), &format!("m{i}"), "SELECT * FROM people")
                .status
                .success()
        );
    }
    // The reader is gone before wharf writes: every write hits a closed pipe.
    let mut child = wharf(home.path())
        .args(["model", "list"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_empty_or_foreign_store_file_is_an_error_and_left_as_found() {
    let home = tempfile::tempdir().expect("home");
    std::fs::write(home.path().join("wharf.db"), b"").expect("0 bytes");
    let out = run(wharf(home.path()).args(["model", "list"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("an empty file (0 bytes)") && text(&out).contains("backup"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::metadata(home.path().join("wharf.db"))
            .expect("meta")
            .len(),
        0
    );
}

#[test]
fn one_bad_file_fails_only_the_models_that_use_it() {
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("customers.csv"), "id,name\n1,Ada\n").expect("csv");
    std::fs::write(data.path().join("junk.ndjson"), "{not json\n").expect("junk");
    std::os::unix::fs::symlink("/dev/zero", data.path().join("zero.csv")).expect("symlink");
    let fifo = data.path().join("fifo.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let out = run(wharf(home.path())
        .args(["source", "add", "local", "files", "--path"])
        .arg(data.path()));
    assert!(out.status.success(), "{}", text(&out));
    let started = Instant::now();
    let out = add_model(home.path(), "customers", "SELECT * FROM customers");
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args(["--json", "model", "preview", "customers"]));
    assert!(out.status.success(), "{}", text(&out));
    for (table, expected) in [
        ("junk", "junk.ndjson"),
        ("zero", "a character device"),
        ("fifo", "a FIFO"),
    ] {
        let out = add_model(home.path(), table, &format!("SELECT * FROM {table}"));
        assert_ne!(out.status.code(), Some(0), "{table}: {}", text(&out));
        assert!(text(&out).contains(expected), "{table}: {}", text(&out));
    }
    assert!(started.elapsed() < Duration::from_secs(60), "nothing hangs");
}

/// Starts `wharf sync run` on a slow server, waits until parts are on the wire, sends
/// `signal`, and returns the run's JSON outcome.
async fn stop_mid_upload(signal: &str) {
    let Fixture { server, home, data } = Fixture::start().await;
    let out = run(wharf(home.path())
        .args(["sample", "customers", "--rows", "400000", "--out"])
        .arg(data.path().join("customers.parquet")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        add_model(home.path(), "customers", "SELECT * FROM customers")
            .status
            .success()
    );
    add_csv_sync(home.path(), "big", "customers");
    server.faults.inject(
        "UploadPart",
        wharf_delivery::local_s3::Fault::Delay(Duration::from_millis(1500)),
        1000,
    );
    // Nobody reads stderr while the run goes on: a pipe would fill with its trace logs and
    // block it. It goes to a file instead.
    let log = std::fs::File::create(home.path().join("run.log")).expect("log file");
    let mut child = wharf(home.path())
        .args(["--allow-private-endpoints", "--json", "sync", "run", "big"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.faults.seen("UploadPart") < 2 {
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("no part was uploaded: {}", text(&out));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let log = std::fs::read_to_string(home.path().join("run.log")).unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{signal}: {}{log}", text(&out));
    assert!(log.contains("cancelling the run"), "{log}");
    let outcome = json(&out);
    assert_eq!(outcome["status"], "cancelled");
    assert_eq!(outcome["error"]["code"], "cancelled", "{outcome}");
    // Nothing left: no object, no open upload, no part file on the server's disk.
    let (objects, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );
    let left = files_under(server.root.path());
    assert!(
        left.is_empty(),
        "{signal}: files left on the server: {left:?}"
    );
    // The next run starts at once (no "run in progress").
    let out = run(wharf(home.path()).args(["--json", "runs", "--sync", "big"]));
    assert_eq!(json(&out)[0]["status"], "cancelled", "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_upload_cancels_the_run_and_leaves_no_part() {
    stop_mid_upload("-TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_upload_cancels_the_run_and_leaves_no_part() {
    stop_mid_upload("-INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_taken_over_at_once_by_the_next() {
    let Fixture {
        server,
        home,
        data: _data,
    } = with_people().await;
    add_csv_sync(home.path(), "p", "people");
    server.faults.inject(
        "PutObject",
        wharf_delivery::local_s3::Fault::Delay(Duration::from_secs(30)),
        1,
    );
    let mut child = wharf(home.path())
        .args(["--allow-private-endpoints", "--json", "sync", "run", "p"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.faults.seen("PutObject") < 1 {
        assert!(Instant::now() < deadline, "no PutObject");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let started = Instant::now();
    let out =
        run(wharf(home.path()).args(["--allow-private-endpoints", "--json", "sync", "run", "p"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "started at once"
    );
    let out = run(wharf(home.path()).args(["--json", "runs", "--sync", "p"]));
    let runs = json(&out);
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    assert_eq!(runs[1]["status"], "interrupted", "{runs}");
}

/// The probe's item 12: a key whose side-file name passed 255 bytes was written, then answered
/// with a 500, and the retry reported `s3.key_exists` for the run's own object. The local
/// endpoint now stores every key S3 allows; a run with a key near 1,024 bytes delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_near_s3s_limit_is_delivered_by_the_local_endpoint() {
    let Fixture {
        server,
        home,
        data: _data,
    } = with_people().await;
    let folder = "f".repeat(300);
    let template = format!("{folder}/{}/{{run}}.{{ext}}", "d".repeat(500));
    let out = run(wharf(home.path()).args([
        "sync",
        "add",
        "long",
        "--model",
        "people",
        "--destination",
        "lake",
        "--format",
        "csv",
        "--key-template",
        &template,
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(wharf(home.path()).args([
        "--allow-private-endpoints",
        "--json",
        "sync",
        "run",
        "long",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let outcome = json(&out);
    assert_eq!(outcome["rows"], 3, "{outcome}");
    let (objects, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert!(uploads.is_empty(), "{uploads:?}");
    assert_eq!(objects.len(), 1, "{objects:?}");
    let key = &objects[0];
    assert!(
        key.starts_with(&format!("exports/{folder}/")) && key.len() > 800,
        "{} bytes: {key}",
        key.len()
    );
    assert_eq!(outcome["files"][0]["key"], key.as_str(), "{outcome}");
    let body = wharf_testkit::object_bytes(&server.admin(), BUCKET, key).await;
    let body = String::from_utf8(body).expect("UTF-8");
    assert!(
        body.starts_with("id,name,city") && body.contains("Zoë"),
        "{body}"
    );
}

/// `wharf` as a user the operating system's file permissions apply to. Tests often run as
/// root, whom permissions do not stop: then the process keeps root's id but loses the
/// capabilities that override them.
fn wharf_bound_by_permissions(home: &std::path::Path) -> std::process::Command {
    let plain = wharf(home);
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        return plain;
    }
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--bounding-set", "-dac_override,-dac_read_search", "--"])
        .arg(plain.get_program())
        .args(plain.get_args());
    for (key, value) in plain.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// The probe's `--path /tmp`: a folder in the source that wharf may not read fails only the
/// models that use it, naming it.
#[test]
fn an_unreadable_folder_fails_only_the_models_that_use_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().expect("home");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("customers.csv"), "id,name\n1,Ada\n").expect("csv");
    let secret = data.path().join("secret");
    std::fs::create_dir(&secret).expect("mkdir");
    std::fs::write(secret.join("part-1.csv"), "id\n2\n").expect("csv");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let out = run(wharf_bound_by_permissions(home.path())
        .args(["source", "add", "local", "files", "--path"])
        .arg(data.path()));
    assert!(out.status.success(), "{}", text(&out));
    let model = |name: &str| {
        add_model_with(
            wharf_bound_by_permissions(home.path()),
            name,
            &format!("SELECT * FROM {name}"),
        )
    };
    let customers = model("customers");
    let preview =
        run(wharf_bound_by_permissions(home.path()).args(["model", "preview", "customers"]));
    let refused = model("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o755)).expect("chmod back");
    assert!(customers.status.success(), "{}", text(&customers));
    assert!(
        preview.status.success() && text(&preview).contains("Ada"),
        "{}",
        text(&preview)
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let message = text(&refused);
    assert!(
        message.contains("secret") && message.contains("ermission denied"),
        "{message}"
    );
}
