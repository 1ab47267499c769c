//! Cancelling: what a cancelled run or a dropped query stream leaves running on the server.

use super::*;

/// A run cancelled while PostgreSQL is still working on the query (a large sort, before the
/// first row) cancels the query on the server too, rather than leaving it running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_cancels_its_query_on_the_server() {
    let fx = Fixture::start().await;
    let schema = Schema::create("cancelled");
    add_source(&fx, "pg", schema.url().as_str(), Some(SslMode::Disable))
        .await
        .expect("source");
    add_model(
        &fx,
        "sorted",
        "pg",
        &format!(
            "SELECT g::int8 AS id, '{}' AS tag FROM generate_series(1, 40000000) g ORDER BY md5(g::text)",
            schema.name
        ),
    )
    .await
    .expect("model");
    fx.sync("sorted-csv", "sorted", settings("csv")).await;
    let active = |tag: &str| {
        psql_value(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wharf'
             AND state = 'active' AND query LIKE '%''{tag}'' AS tag%'"
        ))
    };
    let progress = Arc::new(RunProgress::default());
    let canceller = {
        let progress = progress.clone();
        let tag = schema.name.clone();
        tokio::spawn(async move {
            // Wait until PostgreSQL is busy with it, then cancel the run.
            let mut seen = false;
            for _ in 0..400 {
                if active(&tag) == "1" {
                    seen = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            progress.cancel();
            seen
        })
    };
    let outcome = fx.run_with("sorted-csv", progress.clone()).await;
    let seen = canceller.await.expect("canceller");
    assert!(seen, "the query was never seen running on the server");
    let error = outcome.error.expect("the run was cancelled");
    assert_eq!(error.code, "cancelled", "{}", error.message);
    assert_eq!(outcome.rows, 0, "cancelled before the first row");
    let mut still = String::new();
    for _ in 0..50 {
        still = active(&schema.name);
        if still == "0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(still, "0", "the query still runs on the server");
}

/// A query stream dropped at any moment after it opens (before the query starts on the
/// server, while it starts, while it runs) leaves nothing running there: a cancel request that
/// arrives between two messages is ignored by PostgreSQL, so one is sent until the query ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_stream_dropped_at_any_moment_leaves_nothing_running() {
    let schema = Schema::create("dropped");
    let source =
        wharf_domain::PostgresSource::parse(schema.url().as_str(), Some(SslMode::Disable), None)
            .expect("source");
    let warehouse = wharf_engine::PostgresWarehouse::connect(&source, 10_000)
        .await
        .expect("connect");
    let delays_ms = [0, 0, 1, 2, 3, 5, 8, 13, 21, 34];
    for (i, delay) in delays_ms.iter().enumerate() {
        let sql = format!(
            "SELECT g::int8 AS id, '{}_{i}' AS tag FROM generate_series(1, 40000000) g ORDER BY md5(g::text)",
            schema.name
        );
        let stream = warehouse.query_with(&sql, &[]).await.expect("query");
        tokio::time::sleep(std::time::Duration::from_millis(*delay)).await;
        drop(stream);
    }
    let running = || {
        psql_value(&format!(
            "SELECT coalesce(string_agg(state || ': ' || left(query, 80), '; '), '')
             FROM pg_stat_activity WHERE application_name = 'wharf'
             AND query LIKE '%''{}\\_%'' AS tag%' AND state <> 'idle'",
            schema.name
        ))
    };
    let mut still = String::new();
    for _ in 0..100 {
        still = running();
        if still.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        still, "",
        "queries of dropped streams still run on the server"
    );
}
