//! Segments against an independent evaluation: for every operator and for relations, the keys
//! wharf selects equal those of the same condition written by hand in SQL and run by DuckDB over
//! the same Parquet files (nulls, duplicates, unicode, time zones, hostile names and values).
//! And a segment exported end to end, read back by independent readers.

mod support;

use serde_json::{Value, json};
use support::segment_data::{cases, check_cases, write_tables};
use support::{Fixture, settings};
use wharf_domain::{ColumnMapping, Name};
use wharf_store::{DEFAULT_WORKSPACE, Exports};
use wharf_testkit::{check_export, duckdb_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_and_relation_matches_hand_written_sql_in_duckdb() {
    let fx = Fixture::start().await;
    write_tables(fx.warehouse.path());
    fx.model("people", "SELECT * FROM people").await;
    fx.model_keyed("orders", "SELECT * FROM orders", "order_id")
        .await;
    fx.model_keyed("items", "SELECT * FROM items", "order_id")
        .await;
    let nonempty = check_cases(&fx, "case").await;
    // The data makes the cases discriminate: most select some rows but not all.
    assert!(
        nonempty >= cases().len() - 4,
        "only {nonempty} cases select a proper subset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_exports_its_rows_and_the_run_records_its_definition() {
    let fx = Fixture::start().await;
    write_tables(fx.warehouse.path());
    fx.model("people", "SELECT * FROM people").await;
    fx.model_keyed("orders", "SELECT * FROM orders", "order_id")
        .await;
    let filter = json!({"and": [
        {"column": "country", "op": "in", "value": ["FR", "BE"]},
        {"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "count", "op": ">=", "value": 2}},
    ]});
    wharf_runner::segments::add_segment(
        &fx.store,
        DEFAULT_WORKSPACE,
        &Name::parse("name", "fr-be-repeat").expect("name"),
        "people",
        &filter.to_string(),
        &fx.settings,
    )
    .await
    .expect("segment");
    let mut s = settings("ndjson");
    s.columns = ColumnMapping::parse_list("id,name,country").expect("columns");
    s.key_template = "{segment}/{run}.{ext}".into();
    fx.sync_of("repeat", Exports::Segment("fr-be-repeat"), s)
        .await;
    let outcome = fx.run("repeat").await;
    assert_eq!(outcome.error, None);
    let dir = fx.warehouse.path().display().to_string();
    let expected: Vec<Value> = duckdb_rows(&format!(
        "SELECT id, name, country FROM read_parquet('{dir}/people.parquet') p
         WHERE country IN ('FR', 'BE')
           AND (SELECT count(*) FROM read_parquet('{dir}/orders.parquet') o WHERE o.customer_id = p.id) >= 2
         ORDER BY id"
    ))
    .into_iter()
    .map(|r| json!({"id": r[0], "name": r[1], "country": r[2]}))
    .collect();
    assert!(expected.len() > 10, "the segment selects some rows");
    assert_eq!(outcome.rows, expected.len() as u64);
    assert_eq!(outcome.files.len(), 1);
    assert!(
        outcome.files[0]
            .key
            .starts_with("team/exports/fr-be-repeat/"),
        "{{segment}} renders the segment's name: {}",
        outcome.files[0].key
    );
    let mut spec = fx.spec("ndjson", "none", &[outcome.files[0].key.clone()], &expected);
    spec["types"] = json!({"id": "int64", "name": "string", "country": "string"});
    spec["columns"] = json!(["id", "name", "country"]);
    check_export(&spec);

    // The run keeps the segment as it was, with the time `within_last` would count from.
    let run = fx
        .store
        .run(DEFAULT_WORKSPACE, &outcome.run_id)
        .await
        .expect("run");
    let definition: Value =
        serde_json::from_str(run.definition.as_deref().expect("recorded")).expect("definition");
    assert_eq!(definition["segment"]["name"], "fr-be-repeat");
    assert_eq!(definition["segment"]["filter"], filter);
    assert!(
        definition["segment"]["as_of"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() >= 20),
        "{definition}"
    );
    // A segment in use cannot be removed.
    let err = fx
        .store
        .remove_segment(DEFAULT_WORKSPACE, "fr-be-repeat")
        .await
        .expect_err("in use");
    assert!(err.to_string().contains("exported by sync repeat"), "{err}");
}
