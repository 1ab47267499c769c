//! A diff with the `column` layout in every format: the second run's file holds the added,
//! changed and removed rows, each with its `_change` (a string column where the format has
//! types), removed rows with their key and nulls, read back by the independent readers
//! (`check_export.py`: pyarrow, duckdb, polars, Python's csv/json/xml, fastavro) against the
//! rows expected.

mod support;

use serde_json::{Value, json};
use support::{Fixture, PEOPLE_COLUMNS, settings, write_people};
use wharf_domain::{DiffLayout, SyncMode};
use wharf_testkit::check_export;

const FORMATS: [&str; 6] = ["parquet", "csv", "ndjson", "json", "xml", "avro"];

/// The people table, less the keys in `gone.csv`, with one more visit for those in
/// `bumped.csv`: the model stays the same while its rows change.
const MODEL: &str = "SELECT p.id, p.name, p.note, p.amount, p.score, p.active, p.born, p.seen_at, \
     CASE WHEN b.id IS NULL THEN p.visits ELSE CAST(p.visits + 1 AS INT) END AS visits \
     FROM people p LEFT JOIN bumped b ON b.id = p.id WHERE p.id NOT IN (SELECT id FROM gone)";

fn keys_file(fx: &Fixture, name: &str, ids: &[i64]) {
    let mut text = String::from("id\n");
    for id in ids {
        text.push_str(&format!("{id}\n"));
    }
    std::fs::write(fx.warehouse.path().join(format!("{name}.csv")), text).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_with_a_change_column_reads_back_in_every_format() {
    let fx = Fixture::start().await;
    write_people(fx.warehouse.path(), 20);
    keys_file(&fx, "gone", &[-1]);
    keys_file(&fx, "bumped", &[-1]);
    fx.model_keyed("people", MODEL, "id").await;
    for format in FORMATS {
        let s = wharf_domain::SyncSettings {
            mode: SyncMode::Diff,
            diff_layout: DiffLayout::Column,
            ..settings(format)
        };
        fx.sync(&format!("diff-{format}"), "people", s).await;
        let first = fx.run(&format!("diff-{format}")).await;
        assert_eq!(first.status, "succeeded", "{format}: {first:?}");
        assert_eq!(first.changes.expect("counts").added, 20, "{format}");
    }

    // Rows 21 and 22 arrive, 3 is removed, 5 gets one more visit.
    let people = write_people(fx.warehouse.path(), 22);
    keys_file(&fx, "gone", &[3]);
    keys_file(&fx, "bumped", &[5]);
    let with_change = |row: &Value, change: &str| {
        let mut row = row.clone();
        row["_change"] = json!(change);
        row
    };
    let mut bumped = people[4].clone();
    bumped["visits"] = json!(bumped["visits"].as_i64().expect("visits") + 1);
    let expected = vec![
        with_change(&people[20], "added"),
        with_change(&people[21], "added"),
        with_change(&bumped, "changed"),
        json!({"id": 3, "_change": "removed"}),
    ];
    let mut columns: Vec<&str> = PEOPLE_COLUMNS.to_vec();
    columns.push("_change");
    for format in FORMATS {
        let run = fx.run(&format!("diff-{format}")).await;
        assert_eq!(run.status, "succeeded", "{format}: {run:?}");
        let c = run.changes.expect("counts");
        assert_eq!((c.added, c.changed, c.removed, c.unchanged), (2, 1, 1, 18));
        let keys: Vec<String> = run.files.iter().map(|f| f.key.clone()).collect();
        let mut spec = fx.spec(format, "none", &keys, &expected);
        spec["types"]["_change"] = json!("string");
        spec["columns"] = json!(columns);
        let report = check_export(&spec);
        assert!(
            report["readers"].as_object().is_some_and(|r| !r.is_empty()),
            "{format}: no reader ran: {report}"
        );
    }
}
