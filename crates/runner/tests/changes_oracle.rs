//! An independent oracle for the sync modes: a model over data that changes between runs
//! (inserts, updates of one column, deletes, a removed key that comes back, nulls becoming
//! values and back, a value updated back to the one last sent, unicode, floats down to one ulp,
//! NaN, timestamps a microsecond apart, decimals), synced in every mode as Parquet. After each
//! run, DuckDB reads the files back and compares them with the added, changed and removed rows
//! it computes itself from the two versions of the data, in SQL written here (`EXCEPT` over the
//! rows, anti-joins over the keys). The same data, from a local (DataFusion) source and from
//! PostgreSQL.

mod support;

use serde_json::Value;
use support::pg::{self, Schema};
use support::{Fixture, settings};
use wharf_domain::{ChangeCounts, DiffLayout, SyncMode, SyncSettings};

const TABLE: &str = "CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT, score FLOAT8, \
                     amount NUMERIC(12,2), seen_at TIMESTAMP, note TEXT);";

/// Version 1, then what changed in each next version (relative to the one before).
const VERSIONS: [&str; 3] = [
    "INSERT INTO people VALUES
     (1, 'Ada', 1.5, 10.25, '2026-01-01 10:00:00.123456', NULL),
     (2, 'Zoë 🌍', 0.1, 20.00, '2026-01-02 00:00:00', 'x'),
     (3, 'שלום', 'NaN'::FLOAT8, 30.50, '2026-01-03 12:00:00', ''),
     (4, 'Bob', 2.0, NULL, NULL, 'y'),
     (5, 'Cy', 3.25, 5.00, '2026-01-05 00:00:00', 'keep'),
     (6, 'Di', 4.0, 6.00, '2026-01-06 00:00:00', 'gone soon'),
     (7, '汉字', '-1e300'::FLOAT8, 7.77, '1900-01-01 00:00:00', NULL),
     (8, 'Eve', 8.5, 8.00, '2026-01-08 00:00:00', 'z');",
    // 2: unicode edit; '' becomes null (NaN stays NaN); a null becomes a value; 5 is updated
    // and back before the run; 6 deleted; a timestamp one microsecond later; 9 and 10 added.
    "INSERT INTO people VALUES
     (1, 'Ada', 1.5, 10.25, '2026-01-01 10:00:00.123456', NULL),
     (2, 'Zoe 🌍', 0.1, 20.00, '2026-01-02 00:00:00', 'x'),
     (3, 'שלום', 'NaN'::FLOAT8, 30.50, '2026-01-03 12:00:00', NULL),
     (4, 'Bob', 2.0, 4.40, NULL, 'y'),
     (5, 'Cy', 3.25, 5.00, '2026-01-05 00:00:00', 'keep'),
     (7, '汉字', '-1e300'::FLOAT8, 7.77, '1900-01-01 00:00:00.000001', NULL),
     (8, 'Eve', 8.5, 8.00, '2026-01-08 00:00:00', 'z'),
     (9, 'Fay', '0.30000000000000004'::FLOAT8, 9.99, '2026-02-01 00:00:00', 'new'),
     (10, NULL, NULL, NULL, NULL, NULL);",
    // 3: a float one ulp up; null back to ''; 4.40 back to null; the timestamp back to its
    // version-1 value; 8 deleted; 10's name from null; 6 comes back; 11 added.
    "INSERT INTO people VALUES
     (1, 'Ada', '1.5000000000000002'::FLOAT8, 10.25, '2026-01-01 10:00:00.123456', NULL),
     (2, 'Zoe 🌍', 0.1, 20.00, '2026-01-02 00:00:00', 'x'),
     (3, 'שלום', 'NaN'::FLOAT8, 30.50, '2026-01-03 12:00:00', ''),
     (4, 'Bob', 2.0, NULL, NULL, 'y'),
     (5, 'Cy', 3.25, 5.00, '2026-01-05 00:00:00', 'keep'),
     (6, 'Di', 4.0, 6.00, '2026-01-06 00:00:00', 'back'),
     (7, '汉字', '-1e300'::FLOAT8, 7.77, '1900-01-01 00:00:00', NULL),
     (9, 'Fay', '0.30000000000000004'::FLOAT8, 9.99, '2026-02-01 00:00:00', 'new'),
     (10, 'Gus', NULL, NULL, NULL, NULL),
     (11, 'Hal ''quoted''', '1e-300'::FLOAT8, 0.01, '2100-12-31 23:59:59.999999', 'last');",
];

/// The syncs under test: every mode that compares, each layout of diff, and `all`.
fn syncs() -> Vec<(&'static str, SyncSettings)> {
    let mode = |mode: SyncMode, layout: DiffLayout| SyncSettings {
        mode,
        diff_layout: layout,
        key_template: if layout == DiffLayout::Files && mode == SyncMode::Diff {
            "{sync}/{run}/{change}-{part}.{ext}".into()
        } else {
            "{sync}/{run}/part-{part}.{ext}".into()
        },
        ..settings("parquet")
    };
    vec![
        ("all", mode(SyncMode::All, DiffLayout::Column)),
        ("insert", mode(SyncMode::Insert, DiffLayout::Column)),
        ("delta", mode(SyncMode::Delta, DiffLayout::Column)),
        ("diff-column", mode(SyncMode::Diff, DiffLayout::Column)),
        ("diff-files", mode(SyncMode::Diff, DiffLayout::Files)),
    ]
}

/// DuckDB statements that make schema `v{n}` hold version `n` of the table (`v0`: empty).
fn version_in_duckdb(n: usize) -> String {
    let mut sql = format!("CREATE SCHEMA v{n}; SET schema = 'v{n}'; {TABLE}");
    if n > 0 {
        sql.push_str(VERSIONS[n - 1]);
    }
    sql.push_str(" SET schema = 'main';");
    sql
}

/// The change sets of version `cur` against `prev`, as views `added`, `changed`, `removed`
/// (removed rows: the key and nulls, as wharf sends them).
fn expected_views(prev: usize, cur: usize) -> String {
    format!(
        "CREATE VIEW added AS SELECT * FROM v{cur}.people
             WHERE id NOT IN (SELECT id FROM v{prev}.people);
         CREATE VIEW changed AS SELECT * FROM v{cur}.people
             WHERE id IN (SELECT id FROM v{prev}.people)
               AND id IN (SELECT id FROM (SELECT * FROM v{cur}.people
                                          EXCEPT SELECT * FROM v{prev}.people));
         CREATE VIEW removed AS SELECT id, NULL::TEXT AS name, NULL::FLOAT8 AS score,
                 NULL::NUMERIC(12,2) AS amount, NULL::TIMESTAMP AS seen_at, NULL::TEXT AS note
             FROM v{prev}.people WHERE id NOT IN (SELECT id FROM v{cur}.people);
         CREATE VIEW everything AS SELECT * FROM v{cur}.people;"
    )
}

/// What one sync's run should have sent: `(what, expected rows, the run's files)`; `what` is
/// a query over the views of [`expected_views`].
fn expectations(sync: &str) -> Vec<(&'static str, &'static str)> {
    match sync {
        "all" => vec![("all", "SELECT * FROM everything")],
        "insert" => vec![("insert", "SELECT * FROM added")],
        "delta" => vec![(
            "delta",
            "SELECT * FROM added UNION ALL SELECT * FROM changed",
        )],
        "diff-column" => vec![(
            "diff",
            "SELECT *, 'added' AS _change FROM added
             UNION ALL SELECT *, 'changed' FROM changed
             UNION ALL SELECT *, 'removed' FROM removed",
        )],
        _ => vec![
            ("added", "SELECT * FROM added"),
            ("changed", "SELECT * FROM changed"),
            ("removed", "SELECT * FROM removed"),
        ],
    }
}

/// Version `cur` is in the source: runs every sync and checks each one's files against
/// DuckDB's change set from `prev` to `cur`.
async fn run_and_check(fx: &Fixture, source: &str, prev: usize, cur: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let mut checks = Vec::new();
    let mut reported: Vec<(String, Option<ChangeCounts>)> = Vec::new();
    for (name, _) in syncs() {
        let sync = format!("{source}-{name}");
        let outcome = fx.run(&sync).await;
        assert_eq!(outcome.status, "succeeded", "{sync} v{cur}: {outcome:?}");
        reported.push((name.to_string(), outcome.changes));
        for (what, expected) in expectations(name) {
            let keys: Vec<&String> = outcome
                .files
                .iter()
                .map(|f| &f.key)
                .filter(|k| name != "diff-files" || k.contains(&format!("/{what}-")))
                .collect();
            let actual = if keys.is_empty() {
                // No file for a kind with no rows: nothing sent.
                format!("SELECT * FROM ({expected}) WHERE false")
            } else {
                format!(
                    "SELECT * FROM read_parquet({})",
                    fx.download(dir.path(), &keys).await
                )
            };
            checks.push(format!(
                "SELECT '{name}/{what}', (SELECT count(*) FROM ({expected})),
                        (SELECT count(*) FROM ({actual})),
                        (SELECT count(*) FROM (({expected}) EXCEPT ALL ({actual}))),
                        (SELECT count(*) FROM (({actual}) EXCEPT ALL ({expected})))"
            ));
        }
    }
    let mut sql = String::new();
    for n in 0..=cur {
        sql.push_str(&version_in_duckdb(n));
    }
    sql.push_str(&expected_views(prev, cur));
    checks.push(
        "SELECT 'counts', (SELECT count(*) FROM added), (SELECT count(*) FROM changed),
                (SELECT count(*) FROM removed), (SELECT count(*) FROM everything)"
            .into(),
    );
    sql.push_str(&checks.join(" UNION ALL "));
    let mut rows = wharf_testkit::duckdb_rows(&sql);
    assert_eq!(rows.len(), checks.len());
    let counts = rows.pop().expect("counts");
    for row in &rows {
        let [what, expected, actual, missing, extra] = &row[..] else {
            panic!("{row:?}");
        };
        assert_eq!(
            (missing, extra),
            (&Value::from(0), &Value::from(0)),
            "{source} v{prev} -> v{cur}: {what}: {expected} rows expected, {actual} sent, {missing} missing, {extra} not expected"
        );
        assert_eq!(expected, actual, "{source} v{cur}: {what}");
    }
    // The counts wharf reports are DuckDB's too.
    let count = |i: usize| counts[i].as_u64().expect("count");
    let (added, changed, removed, rows) = (count(1), count(2), count(3), count(4));
    assert!(
        added + changed + removed > 0,
        "every version changes something"
    );
    for (name, counts) in reported {
        if name == "all" {
            assert!(counts.is_none());
            continue;
        }
        let c = counts.unwrap_or_else(|| panic!("{name}: no counts"));
        assert_eq!(
            (c.added, c.changed, c.removed, c.unchanged),
            (added, changed, removed, rows - added - changed),
            "{source} {name} v{cur}"
        );
    }
}

async fn add_syncs(fx: &Fixture, source: &str) {
    for (name, settings) in syncs() {
        fx.sync(&format!("{source}-{name}"), "people", settings)
            .await;
    }
}

/// Writes version `n` as the local source's `people.parquet`, with DuckDB.
fn local_version(fx: &Fixture, n: usize) {
    let path = fx.warehouse.path().join("people.parquet");
    let mut sql = version_in_duckdb(n);
    sql.push_str(&format!(
        "COPY (SELECT * FROM v{n}.people ORDER BY id) TO '{}' (FORMAT parquet);",
        path.display()
    ));
    wharf_testkit::duckdb_rows(&sql);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_sends_what_duckdb_computes_from_the_two_versions_local_source() {
    let fx = Fixture::start().await;
    local_version(&fx, 1);
    fx.model_keyed("people", "SELECT * FROM people", "id").await;
    add_syncs(&fx, "local").await;
    for cur in 1..=VERSIONS.len() {
        local_version(&fx, cur);
        run_and_check(&fx, "local", cur - 1, cur).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_sends_what_duckdb_computes_from_the_two_versions_postgres_source() {
    let fx = Fixture::start().await;
    let schema = Schema::create("changes_oracle");
    let version = |n: usize| {
        schema.run(&format!(
            "DROP TABLE IF EXISTS people; {TABLE} {}",
            VERSIONS[n - 1]
        ));
    };
    version(1);
    pg::add_source(&fx, "pg", schema.url().as_str(), None)
        .await
        .expect("source");
    pg::add_model(&fx, "people", "pg", "SELECT * FROM people")
        .await
        .expect("model");
    add_syncs(&fx, "pg").await;
    for cur in 1..=VERSIONS.len() {
        version(cur);
        run_and_check(&fx, "pg", cur - 1, cur).await;
    }
    pg::psql(&format!("DROP SCHEMA {} CASCADE", schema.name));
}
