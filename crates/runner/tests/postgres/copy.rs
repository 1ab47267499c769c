//! Exports read with a binary COPY: a segment's values written into the SQL, and the session's
//! statement_timeout counted per stretch of rows rather than over the whole export.

use super::*;

/// COPY takes no parameters, so an export's segment values are written into its SQL as
/// literals. Quotes, backslashes, placeholders, dollar quotes and unicode must select exactly
/// their own rows, also when the session reads backslashes in plain strings as escapes
/// (`standard_conforming_strings = off`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_values_written_into_an_export_select_exactly_their_rows() {
    let fx = Fixture::start().await;
    let schema = Schema::create("literals");
    let values = [
        "it's",
        "back\\slash",
        "\\'; DROP TABLE t; --",
        "$1",
        "$$x$$",
        "E'x'",
        "é 😀 \u{202e}",
        "tab\tnew\nline",
    ];
    // Near misses of each, which must not be selected.
    let decoys = [
        "its",
        "back\\\\slash",
        "backslash",
        "x",
        "$2",
        "E",
        "é",
        "tab",
    ];
    let rows: Vec<String> = values
        .iter()
        .chain(&decoys)
        .enumerate()
        .map(|(i, v)| format!("({}, $v${v}$v$)", i + 1))
        .collect();
    psql(&format!(
        "SET search_path = {}; CREATE TABLE t (id int8 PRIMARY KEY, name text);
         INSERT INTO t VALUES {};",
        schema.name,
        rows.join(", ")
    ));
    let mut url = server_url();
    url.query_pairs_mut().append_pair(
        "options",
        &format!(
            "-c search_path={} -c standard_conforming_strings=off",
            schema.name
        ),
    );
    add_source(&fx, "pg", url.as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    add_model(&fx, "t", "pg", "SELECT * FROM t")
        .await
        .expect("model");
    for (i, value) in values.iter().enumerate() {
        let name = format!("value-{i}");
        wharf_runner::segments::add_segment(
            &fx.store,
            DEFAULT_WORKSPACE,
            &Name::parse("name", &name).expect("name"),
            "t",
            &json!({"column": "name", "op": "=", "value": value}).to_string(),
            &fx.settings,
        )
        .await
        .unwrap_or_else(|e| panic!("{value:?}: {e}"));
        let ids = support::segment_data::export_ids(&fx, &name).await;
        assert_eq!(ids, vec![i as i64 + 1], "{value:?}");
    }
    wharf_runner::segments::add_segment(
        &fx.store,
        DEFAULT_WORKSPACE,
        &Name::parse("name", "all-values").expect("name"),
        "t",
        &json!({"column": "name", "op": "in", "value": values}).to_string(),
        &fx.settings,
    )
    .await
    .expect("segment");
    let ids = support::segment_data::export_ids(&fx, "all-values").await;
    assert_eq!(ids, (1..=values.len() as i64).collect::<Vec<_>>());
}

/// The session's statement_timeout bounds the time wharf waits for PostgreSQL per 16 MiB of
/// rows, as a portal's fetches did, not the whole export: a query that pauses 0.2 s per 4 MiB
/// row exports 64 MiB in about 3.2 s under a 2 s timeout, and fails with the timeout when
/// its rows are small (the pauses then add up within one stretch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_counts_the_wait_per_stretch_of_rows_not_the_whole_export() {
    let fx = Fixture::start().await;
    let schema = Schema::create("stretches");
    let mut url = schema.url();
    url.query_pairs_mut().clear().append_pair(
        "options",
        &format!("-c search_path={} -c statement_timeout=2000", schema.name),
    );
    add_source(&fx, "pg", url.as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    add_model(
        &fx,
        "wide",
        "pg",
        "SELECT g::int8 AS id, repeat('x', 4 << 20) AS payload \
         FROM generate_series(1, 16) g, LATERAL (SELECT pg_sleep(0.2 + g * 0)) s",
    )
    .await
    .expect("model");
    fx.sync("wide-csv", "wide", settings("csv")).await;
    let started = std::time::Instant::now();
    let wide = fx.run("wide-csv").await;
    assert!(wide.error.is_none(), "{:?}", wide.error);
    assert_eq!(wide.rows, 16);
    assert!(
        started.elapsed() > std::time::Duration::from_secs(3),
        "the export outlasted the timeout: {:?}",
        started.elapsed()
    );

    add_model(
        &fx,
        "narrow",
        "pg",
        "SELECT g::int8 AS id FROM generate_series(1, 16) g, LATERAL (SELECT pg_sleep(0.2 + g * 0)) s",
    )
    .await
    .expect("model");
    fx.sync("narrow-csv", "narrow", settings("csv")).await;
    let outcome = fx.run("narrow-csv").await;
    let error = outcome.error.expect("timed out");
    assert_eq!(error.code, "postgres.timeout", "{}", error.message);
    assert!(
        error.message.contains("statement_timeout (2 s)"),
        "{}",
        error.message
    );
    // Nothing of the failed run: only the first export's file.
    let wide: Vec<String> = wide.files.iter().map(|f| f.key.clone()).collect();
    assert_eq!(fx.residue().await, (wide, Vec::new()));
    // Cancelled on the server, not left running.
    let running = psql_value(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{}%' AND pid <> pg_backend_pid()",
        "generate_series(1, 16) g, LATERAL"
    ));
    assert_eq!(running, "0");
}
