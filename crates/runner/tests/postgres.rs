//! The PostgreSQL warehouse against a real server: the cluster `scripts/test` starts
//! (`WHARF_TEST_POSTGRES_URL`). Without it these tests fail: in CI every suite runs.
//!
//! Each test works in a schema of its own, so they run in parallel.

#[path = "postgres/cancel.rs"]
mod cancel;
#[path = "postgres/copy.rs"]
mod copy;
mod support;

use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use support::pg::{Schema, add_model, add_source, psql, psql_value, server_url};
use support::{Fixture, settings};
use wharf_domain::{Name, SslMode};
use wharf_runner::{RunProgress, RunnerError};
use wharf_store::DEFAULT_WORKSPACE;
use wharf_testkit::check_export;

const EVERYTHING: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE everything (
  id int8 PRIMARY KEY, b bool, i2 int2, i4 int4, f4 float4, f8 float8,
  n numeric(12,2), nfree numeric, t text, vc varchar(10), ch char(3), by bytea,
  d date, tm time, ts timestamp, tstz timestamptz, iv interval, u uuid, j json, jb jsonb,
  m mood, ai int4[], at text[], pt point
);
INSERT INTO everything VALUES
 (1, true, 1, 2, 1.5, 2.25, 1234.56, 3.14159265358979323846264338327950288419716939937510,
  'Zoë "q", 🌍 ''; DROP', 'abc', 'x', '\x00ff10', '2026-03-31', '14:30:00.5',
  '2026-03-31 14:30:00.123456', '2026-03-31 16:30:00+02', '1 year 2 mons 3 days 04:05:06.5',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', 'happy',
  '{1,NULL,3}', '{"x","y,z",NULL}', '(1,2)'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, false, -32768, -2147483648, -0.5, -1e300, -0.01, 'NaN', 'line
break', 'ünï', 'é', '\x', '0001-01-01', '00:00', '1900-01-01', '1970-01-01 00:00:00+00', '-1 days',
  '00000000-0000-0000-0000-000000000000', '[]', '[]', 'sad', '{}', '{}', '(0,0)');
"#;

fn everything_expected() -> Vec<Value> {
    vec![
        json!({"id": 1, "b": true, "i2": 1, "i4": 2, "f4": 1.5, "f8": 2.25, "n": "1234.56",
               "nfree": "3.14159265358979323846264338327950288419716939937510",
               "t": "Zoë \"q\", 🌍 '; DROP", "vc": "abc", "ch": "x  ", "by": "00ff10",
               "d": "2026-03-31", "tm": "14:30:00.5", "ts": "2026-03-31T14:30:00.123456",
               "tstz": "2026-03-31T14:30:00Z", "iv": "P1Y2M3DT4H5M6.5S",
               "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "j": "{\"a\": [1, 2]}",
               "jb": "{\"b\": null}", "m": "happy", "ai": [1, null, 3], "at": ["x", "y,z", null],
               "pt": "(1,2)"}),
        json!({"id": 2}),
        json!({"id": 3, "b": false, "i2": -32768, "i4": -2147483648_i64, "f4": -0.5, "f8": -1e300,
               "n": "-0.01", "nfree": "NaN", "t": "line\nbreak", "vc": "ünï", "ch": "é  ", "by": "",
               "d": "0001-01-01", "tm": "00:00:00", "ts": "1900-01-01T00:00:00",
               "tstz": "1970-01-01T00:00:00Z", "iv": "P-1D",
               "u": "00000000-0000-0000-0000-000000000000", "j": "[]", "jb": "[]", "m": "sad",
               "ai": [], "at": [], "pt": "(0,0)"}),
    ]
}

const EVERYTHING_COLUMNS: &[&str] = &[
    "id", "b", "i2", "i4", "f4", "f8", "n", "nfree", "t", "vc", "ch", "by", "d", "tm", "ts",
    "tstz", "iv", "u", "j", "jb", "m", "ai", "at", "pt",
];

fn everything_types() -> Value {
    json!({"id": "int64", "b": "bool", "i2": "int16", "i4": "int32", "f4": "float32",
           "f8": "float64", "n": "decimal(12,2)", "nfree": "string", "t": "string", "vc": "string",
           "ch": "string", "by": "binary", "d": "date", "tm": "time_us", "ts": "timestamp_us",
           "tstz": "timestamp_us_utc", "iv": "string", "u": "string", "j": "string", "jb": "string",
           "m": "string", "ai": "list<int32>", "at": "list<string>", "pt": "string"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_to_every_format_and_empty_results_keep_their_schema() {
    let fx = Fixture::start().await;
    let schema = Schema::create("types");
    psql(&format!("SET search_path = {}; {EVERYTHING}", schema.name));
    // `prefer` against a server without TLS falls back to plain text, as in libpq.
    add_source(&fx, "pg", schema.url().as_str(), None)
        .await
        .expect("source");
    add_model(
        &fx,
        "everything",
        "pg",
        "SELECT * FROM everything ORDER BY id;",
    )
    .await
    .expect("model");
    add_model(&fx, "nothing", "pg", "SELECT * FROM everything WHERE false")
        .await
        .expect("model");
    let formats = ["parquet", "csv", "ndjson", "json", "xml", "avro"];
    for format in formats {
        for (model, expected) in [
            ("everything", everything_expected()),
            ("nothing", Vec::new()),
        ] {
            let sync = format!("{model}-{format}");
            let mut s = settings(format);
            s.file.csv.null = "\\N".into();
            fx.sync(&sync, model, s).await;
            let outcome = fx.run(&sync).await;
            assert_eq!(outcome.error, None, "{sync}");
            assert_eq!(outcome.rows, expected.len() as u64, "{sync}");
            let keys: Vec<String> = outcome.files.iter().map(|f| f.key.clone()).collect();
            assert_eq!(
                keys.len(),
                1,
                "{sync}: an empty result still writes its file"
            );
            let mut spec = fx.spec(format, "none", &keys, &expected);
            spec["types"] = everything_types();
            spec["columns"] = json!(EVERYTHING_COLUMNS);
            spec["csv"] = json!({"delimiter": ",", "quote": "\"", "header": true, "null": "\\N", "bom": false});
            spec["xml"] = json!({"root": "rows", "row": "row"});
            let report = check_export(&spec);
            assert!(
                report["readers"].as_object().is_some_and(|r| !r.is_empty()),
                "{sync}: no reader ran: {report}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_and_query_errors_are_clear() {
    let fx = Fixture::start().await;
    let schema = Schema::create("errors");
    psql(&format!(
        "SET search_path = {0}; CREATE TABLE secret_table (id int8); INSERT INTO secret_table VALUES (1);
         DROP ROLE IF EXISTS {0}_reader; CREATE ROLE {0}_reader LOGIN PASSWORD 'reader-pw-{0}';
         GRANT USAGE ON SCHEMA {0} TO {0}_reader;",
        schema.name
    ));
    let code = |r: Result<(), RunnerError>| {
        let e = r.expect_err("fails");
        (e.code(), e.to_string())
    };

    // Nobody listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut url = schema.url();
    url.set_port(Some(port)).expect("port");
    let (c, m) = code(add_source(&fx, "down", url.as_str(), Some(SslMode::Disable)).await);
    assert_eq!(c, "postgres.unreachable", "{m}");
    assert!(
        m.contains(&format!(
            "cannot reach PostgreSQL at postgres://wharf:***@127.0.0.1:{port}/wharf"
        )),
        "{m}"
    );

    // A wrong password: named, and never shown.
    let mut url = schema.url();
    url.set_password(Some("not-the-password-9f2"))
        .expect("password");
    let (c, m) = code(add_source(&fx, "badpw", url.as_str(), Some(SslMode::Disable)).await);
    assert_eq!(c, "postgres.auth", "{m}");
    assert!(
        m.contains("refused the login") && !m.contains("not-the-password-9f2"),
        "{m}"
    );

    // A missing table: the SQL error with its position.
    add_source(&fx, "pg", schema.url().as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    let (c, m) = code(add_model(&fx, "missing", "pg", "SELECT id\nFROM no_such_table").await);
    assert_eq!(c, "query.sql", "{m}");
    assert!(
        m.contains("relation \"no_such_table\" does not exist") && m.contains("line 2, column 6"),
        "{m}"
    );

    // Permission denied: a user without SELECT on the table; PostgreSQL checks when it runs.
    let mut url = schema.url();
    url.set_username(&format!("{}_reader", schema.name))
        .expect("user");
    url.set_password(Some(&format!("reader-pw-{}", schema.name)))
        .expect("password");
    add_source(&fx, "reader", url.as_str(), Some(SslMode::Disable))
        .await
        .expect("reader source");
    add_model(&fx, "secret", "reader", "SELECT id FROM secret_table")
        .await
        .expect("planning is allowed");
    fx.sync("secret-csv", "secret", settings("csv")).await;
    let outcome = fx.run("secret-csv").await;
    let error = outcome.error.expect("denied");
    assert_eq!(
        error.code, "postgres.permission_denied",
        "{}",
        error.message
    );
    assert!(error.message.contains("GRANT SELECT"), "{}", error.message);

    // A statement timeout, set in the URL as users would.
    let mut url = schema.url();
    url.query_pairs_mut().clear().append_pair(
        "options",
        &format!("-c search_path={} -c statement_timeout=300", schema.name),
    );
    add_source(&fx, "slow", url.as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    add_model(
        &fx,
        "sleepy",
        "slow",
        "SELECT 1::int8 AS id FROM pg_sleep(3)",
    )
    .await
    .expect("model");
    fx.sync("sleepy-csv", "sleepy", settings("csv")).await;
    let outcome = fx.run("sleepy-csv").await;
    let error = outcome.error.expect("timed out");
    assert_eq!(error.code, "postgres.timeout", "{}", error.message);
    assert!(
        error.message.contains("statement_timeout"),
        "{}",
        error.message
    );
    assert_eq!(fx.residue().await, (Vec::new(), Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_stream_fails_the_run_and_leaves_nothing() {
    let fx = Fixture::start().await;
    let schema = Schema::create("dropped");
    add_source(&fx, "pg", schema.url().as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    // Rows are produced as they are fetched, so the query is still running when it is killed.
    add_model(
        &fx,
        "endless",
        "pg",
        &format!(
            "SELECT g::int8 AS id, repeat(md5(g::text), 20) AS pad, '{}' AS tag
             FROM generate_series(1, 5000000) g",
            schema.name
        ),
    )
    .await
    .expect("model");
    fx.sync("endless-csv", "endless", settings("csv")).await;
    let progress = Arc::new(RunProgress::default());
    let watcher = {
        let progress = progress.clone();
        let tag = schema.name.clone();
        tokio::spawn(async move {
            // Past the first part, so a multipart upload is open when the connection drops.
            let start = std::time::Instant::now();
            while progress.upload.parts.load(Ordering::Relaxed) < 2
                && start.elapsed() < std::time::Duration::from_secs(60)
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            // psql's own failure is a result here, not a panic: the export must be stopped.
            let killed = Command::new("psql")
                .arg(server_url().as_str())
                .args(["-X", "-At", "-c"])
                .arg(format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE application_name = 'wharf' AND query LIKE '%''{tag}'' AS tag%'"
                ))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            if killed.as_deref().ok() != Some("1") {
                // Do not let a runaway export fill the disk: stop it, and fail below.
                progress.cancel();
            }
            killed
        })
    };
    let outcome = fx.run_with("endless-csv", progress.clone()).await;
    let killed = watcher.await.expect("watcher");
    assert_eq!(
        killed.as_deref().ok(),
        Some("1"),
        "one session terminated: {killed:?}"
    );
    let error = outcome.error.expect("the run fails");
    assert_eq!(error.code, "postgres.connection_lost", "{}", error.message);
    assert!(progress.rows.load(Ordering::Relaxed) > 0);
    assert_eq!(
        fx.residue().await,
        (Vec::new(), Vec::new()),
        "no object and no open upload"
    );
}

/// The segment cases of `segments.rs`, with the tables loaded into PostgreSQL and the filters
/// compiled to PostgreSQL's dialect: the same keys as the hand-written SQL DuckDB runs on the
/// Parquet files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_compile_to_postgresql_and_select_what_hand_written_sql_selects() {
    use support::segment_data::{cases, check_cases, write_tables};
    let fx = Fixture::start().await;
    let schema = Schema::create("segments");
    write_tables(fx.warehouse.path());
    let dir = fx.warehouse.path().display().to_string();
    psql(&format!(
        "SET search_path = {};
         CREATE TABLE people (id int8, name text, country text, age int4, score float8,
           price numeric(12,2), active bool, born date, seen timestamptz, local_ts timestamp,
           \"select\" int4, \"a\"\"b\" text, \"first name\" text);
         CREATE TABLE orders (order_id int8, customer_id int8, amount numeric(12,2), status text,
           ordered_at timestamptz);
         CREATE TABLE items (order_id int8, qty int4);",
        schema.name
    ));
    // CSV copies for \copy, outside the warehouse folder (where they would be tables too).
    let csv_dir = tempfile::tempdir().expect("csv dir");
    for table in ["people", "orders", "items"] {
        let csv = format!("{}/{table}.csv", csv_dir.path().display());
        wharf_testkit::duckdb_rows(&format!(
            "COPY (SELECT * FROM read_parquet('{dir}/{table}.parquet')) TO '{csv}' (FORMAT csv, HEADER)"
        ));
        let output = Command::new("psql")
            .arg(server_url().as_str())
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!(
                "\\copy {}.{table} FROM '{csv}' WITH (FORMAT csv, HEADER)",
                schema.name
            ))
            .output()
            .expect("psql");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    add_source(&fx, "pg", schema.url().as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    for (model, key) in [
        ("people", "id"),
        ("orders", "order_id"),
        ("items", "order_id"),
    ] {
        wharf_runner::models::add_model(
            &fx.store,
            DEFAULT_WORKSPACE,
            &Name::parse("name", model).expect("name"),
            "pg",
            &format!("SELECT * FROM {model}"),
            key,
            &fx.settings,
        )
        .await
        .expect("model");
    }
    // Relations join models of one source: the same table as a local model does not do.
    fx.model_keyed("local-orders", "SELECT * FROM orders", "order_id")
        .await;
    let across = serde_json::json!({"related": "local-orders", "on": [["id", "customer_id"]]});
    let e = wharf_runner::segments::add_segment(
        &fx.store,
        DEFAULT_WORKSPACE,
        &Name::parse("name", "across").expect("name"),
        "people",
        &across.to_string(),
        &fx.settings,
    )
    .await
    .expect_err("another source");
    assert!(
        e.to_string()
            .contains("relations join models of one source"),
        "{e}"
    );
    assert!(check_cases(&fx, "pg-case").await >= cases().len() - 4);
}

/// Columns PostgreSQL hands over as text but that are not text: `numeric` without precision
/// compares as a number, `interval` takes only the null checks; duplicate column names and
/// types read as text still plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_numerics_compare_as_numbers_and_odd_columns_still_plan() {
    let fx = Fixture::start().await;
    let schema = Schema::create("numerics");
    psql(&format!(
        "SET search_path = {};
         CREATE TABLE amounts (id int8, amount numeric, wait interval);
         INSERT INTO amounts VALUES (1, 99.50, '1 day'), (2, 100.00, NULL), (3, 100.5, '2 hours'),
           (4, 1000, NULL), (5, NULL, '1 mon');",
        schema.name
    ));
    add_source(&fx, "pg", schema.url().as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    add_model(&fx, "amounts", "pg", "SELECT * FROM amounts")
        .await
        .expect("model");
    let as_of = wharf_runner::segments::now_micros();
    for (i, (filter, want)) in [
        (
            json!({"column": "amount", "op": ">", "value": 100}),
            vec![3, 4],
        ),
        (
            json!({"column": "amount", "op": "=", "value": "100"}),
            vec![2],
        ),
        (
            json!({"column": "amount", "op": "between", "value": [99.5, 100.5]}),
            vec![1, 2, 3],
        ),
        (
            json!({"column": "wait", "op": "is_not_null"}),
            vec![1, 3, 5],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (ids, _) =
            support::segment_data::segment_ids(&fx, &format!("n{i}"), "amounts", &filter, as_of)
                .await;
        assert_eq!(ids, want, "{filter}");
    }
    let interval = json!({"column": "wait", "op": "=", "value": "P1D"});
    let e = wharf_runner::segments::add_segment(
        &fx.store,
        DEFAULT_WORKSPACE,
        &Name::parse("name", "by-interval").expect("name"),
        "amounts",
        &interval.to_string(),
        &fx.settings,
    )
    .await
    .expect_err("intervals take only null checks");
    assert!(
        e.to_string().contains("only is_null and is_not_null"),
        "{e}"
    );
    // Two columns named alike, one of a type read as text: planned and previewed.
    add_model(
        &fx,
        "twins",
        "pg",
        "SELECT 1::int8 AS id, 2::int8 AS id, point(1, 2) AS p",
    )
    .await
    .expect("duplicate names plan");
    let preview =
        wharf_runner::models::preview_model(&fx.store, DEFAULT_WORKSPACE, "twins", 5, &fx.settings)
            .await
            .expect("preview");
    assert_eq!(preview.rows[0]["p"], "(1,2)");
}

/// Values no file format can hold fail the run, naming the value and the fix, and leave
/// nothing in the bucket: an infinite date or timestamp, and NaN in a `numeric(p, s)` column
/// (one without precision is read as text, where NaN is just a value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_no_file_can_hold_fail_the_run_with_the_fix() {
    let fx = Fixture::start().await;
    let schema = Schema::create("unholdable");
    add_source(&fx, "pg", schema.url().as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    for (name, sql, expected) in [
        (
            "inf-date",
            "SELECT 1::int8 AS id, 'infinity'::date AS d",
            "an infinite date, which no file format can hold; filter it out or cast it in the model's SQL",
        ),
        (
            "inf-ts",
            "SELECT 1::int8 AS id, '-infinity'::timestamptz AS t",
            "an infinite timestamp, which no file format can hold",
        ),
        (
            "nan",
            "SELECT 1::int8 AS id, 'NaN'::numeric(10, 2) AS amount",
            "numeric NaN, which a decimal column cannot hold; cast the column to text in the model's SQL",
        ),
    ] {
        add_model(&fx, name, "pg", sql).await.expect("model");
        fx.sync(name, name, settings("parquet")).await;
        let outcome = fx.run(name).await;
        let error = outcome
            .error
            .unwrap_or_else(|| panic!("{name}: the run failed"));
        assert!(
            error.message.contains(expected),
            "{name}: {}",
            error.message
        );
        assert!(outcome.files.is_empty(), "{name}");
    }
    let (objects, uploads) = fx.residue().await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );
    // Without precision the value is text: NaN exports.
    add_model(
        &fx,
        "nan-text",
        "pg",
        "SELECT 1::int8 AS id, 'NaN'::numeric AS amount",
    )
    .await
    .expect("model");
    fx.sync("nan-text", "nan-text", settings("csv")).await;
    let outcome = fx.run("nan-text").await;
    assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
}

/// Every session wharf opens is read-only: a model that would write (through a function, a
/// sequence's `nextval`) fails on the server, and the table stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_cannot_write_to_the_warehouse() {
    let fx = Fixture::start().await;
    let schema = Schema::create("readonly");
    psql(&format!(
        "SET search_path = {};
         CREATE TABLE t (id int8); CREATE SEQUENCE s;
         CREATE FUNCTION f() RETURNS int8 LANGUAGE sql AS 'INSERT INTO t VALUES (1) RETURNING id';",
        schema.name
    ));
    add_source(&fx, "pg", schema.url().as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    for (name, sql) in [
        ("function", "SELECT f() AS id"),
        ("nextval", "SELECT nextval('s') AS id"),
    ] {
        // Adding the model only prepares the query, which writes nothing; running it is refused.
        add_model(&fx, name, "pg", sql).await.expect("model");
        let e = wharf_runner::models::preview_model(
            &fx.store,
            DEFAULT_WORKSPACE,
            name,
            5,
            &fx.settings,
        )
        .await
        .expect_err("a preview that would write");
        assert!(
            e.to_string().contains("read-only transaction"),
            "{name}: {e}"
        );
        fx.sync(name, name, settings("csv")).await;
        let outcome = fx.run(name).await;
        let error = outcome.error.expect("a run that would write fails");
        assert!(
            error.message.contains("read-only transaction"),
            "{name}: {}",
            error.message
        );
    }
    // A data-modifying WITH is refused before it reaches the read-only check: wharf wraps the
    // model's query, and PostgreSQL allows such a WITH only at the top level.
    let cte = "WITH w AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM w";
    let refused = match add_model(&fx, "cte", "pg", cte).await {
        Err(e) => e.to_string(),
        Ok(_) => wharf_runner::models::preview_model(
            &fx.store,
            DEFAULT_WORKSPACE,
            "cte",
            5,
            &fx.settings,
        )
        .await
        .expect_err("a preview that would write")
        .to_string(),
    };
    assert!(refused.contains("data-modifying"), "{refused}");
    assert_eq!(
        psql_value(&format!(
            "SELECT (SELECT count(*) FROM {0}.t), (SELECT last_value FROM {0}.s), (SELECT is_called FROM {0}.s)",
            schema.name
        )),
        "0|1|f",
        "nothing was written"
    );
}
