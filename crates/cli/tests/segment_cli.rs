//! End-to-end tests of `wharf segment ...` and `sync add --segment` through the built binary:
//! the exact `--json` shapes, exit codes, and errors that name the node and the column.

mod common;

use common::{BUCKET, Fixture, json, keys, run, text, wharf};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_add_preview_show_their_sql_and_export() {
    let Fixture { server, home, data } = Fixture::start().await;
    std::fs::write(
        data.path().join("orders.csv"),
        "order_id,customer_id,amount\n10,1,5.5\n11,1,7\n12,3,1\n13,1,2\n14,3,9\n",
    )
    .expect("orders");
    let h = home.path();
    for (model, key, sql) in [
        ("people", "id", "SELECT * FROM people"),
        ("orders", "order_id", "SELECT * FROM orders"),
    ] {
        let out = run(wharf(h)
            .args(["model", "add", model, "--source", "files"])
            .args(["--primary-key", key, "--sql", sql]));
        assert!(out.status.success(), "{}", text(&out));
    }

    // A filter from a file: people with two or more orders, or named Bob.
    let filter = r#"{"or": [
        {"related": "orders", "on": [["id", "customer_id"]],
         "aggregate": {"fn": "count", "op": ">=", "value": 2}},
        {"column": "name", "op": "=", "value": "Bob"}
    ]}"#;
    let file = data.path().join("filter.json");
    std::fs::write(&file, filter).expect("filter file");
    let out = run(wharf(h)
        .args([
            "--json",
            "segment",
            "add",
            "buyers",
            "--model",
            "people",
            "--filter-file",
        ])
        .arg(&file));
    assert!(out.status.success(), "{}", text(&out));
    let added = json(&out);
    assert_eq!(keys(&added), ["created_at", "filter", "model", "name"]);
    assert_eq!(added["model"], "people");
    assert_eq!(
        added["filter"],
        serde_json::from_str::<Value>(filter).expect("json")
    );

    // Bad filters: exit 2, the node's path, the column, the fix.
    for (bad, want) in [
        (
            r#"{"and": [{"column": "id", "op": ">", "value": 0}, {"column": "nme", "op": "=", "value": "x"}]}"#,
            "segment filter at and[1]: model \"people\" has no column \"nme\"; its columns are: id, name, city",
        ),
        (
            r#"{"column": "id", "op": "starts_with", "value": "1"}"#,
            "\"starts_with\" applies to text columns only; column \"id\" is Int64",
        ),
        (
            r#"{"column": "id", "op": "=", "value": "' OR 1=1 --"}"#,
            "at filter.value: the value \"' OR 1=1 --\" does not fit column \"id\"",
        ),
        (
            r#"{"column": "id", "op": "like", "value": 1}"#,
            "unknown operator \"like\"",
        ),
        (r#"{"column": "id""#, "is not valid JSON"),
    ] {
        let out = run(wharf(h).args([
            "segment", "add", "bad", "--model", "people", "--filter", bad,
        ]));
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(text(&out).contains(want), "{bad}:\n{}", text(&out));
    }
    let out = run(wharf(h).args(["segment", "add", "bad", "--model", "people"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--filter"), "{}", text(&out));

    // Preview: {"count", "rows"}, the count of all rows, `--limit` rows.
    let out = run(wharf(h).args(["--json", "segment", "preview", "buyers", "--limit", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    let preview = json(&out);
    assert_eq!(keys(&preview), ["count", "rows"]);
    assert_eq!(preview["count"], 3, "{preview}");
    assert_eq!(preview["rows"].as_array().map(Vec::len), Some(1));
    let out = run(wharf(h).args(["--json", "segment", "preview", "buyers"]));
    let ids: Vec<i64> = json(&out)["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&1) && ids.contains(&2) && ids.contains(&3));
    let out = run(wharf(h).args(["segment", "preview", "buyers", "--as-of", "yesterday"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // The flag is named once, by the CLI; the service's message speaks of the value.
    assert!(
        text(&out).contains("--as-of: \"yesterday\" is not a timestamp"),
        "{}",
        text(&out)
    );

    // SQL with its parameters apart: the value is not in the SQL text.
    let out = run(wharf(h).args(["--json", "segment", "sql", "buyers"]));
    let sql = json(&out);
    assert_eq!(keys(&sql), ["params", "sql"]);
    let text_sql = sql["sql"].as_str().expect("sql");
    assert!(text_sql.contains("$1") && text_sql.contains("$2") && !text_sql.contains("Bob"));
    assert_eq!(
        sql["params"],
        serde_json::json!([{"type": "Int64", "value": "2"}, {"type": "Utf8", "value": "Bob"}])
    );
    let out = run(wharf(h).args(["segment", "sql", "buyers"]));
    assert!(text(&out).contains("-- $2 = Bob (Utf8)"), "{}", text(&out));

    // list, show.
    let list = json(&run(wharf(h).args(["--json", "segment", "list"])));
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let shown = json(&run(wharf(h).args(["--json", "segment", "show", "buyers"])));
    assert_eq!(shown["name"], "buyers");

    // Export it.
    let out = run(wharf(h)
        .args([
            "sync",
            "add",
            "both",
            "--model",
            "people",
            "--segment",
            "buyers",
        ])
        .args(["--destination", "lake", "--format", "csv"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(wharf(h)
        .args([
            "--json",
            "sync",
            "add",
            "buyers-daily",
            "--segment",
            "buyers",
        ])
        .args(["--destination", "lake", "--format", "ndjson"])
        .args(["--key-template", "{segment}/{run}.{ext}"]));
    assert!(out.status.success(), "{}", text(&out));
    let sync = json(&out);
    assert_eq!(
        (sync["model"].as_str(), sync["segment"].as_str()),
        (Some("people"), Some("buyers"))
    );
    let out = run(wharf(h).args([
        "--allow-private-endpoints",
        "--json",
        "sync",
        "run",
        "buyers-daily",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let outcome = json(&out);
    assert_eq!(outcome["rows"], 3, "{outcome}");
    let key = outcome["files"][0]["key"].as_str().expect("key");
    assert!(key.starts_with("exports/buyers/"), "{key}");
    let body = wharf_testkit::object_bytes(&server.admin(), BUCKET, key).await;
    let lines: Vec<Value> = String::from_utf8(body)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson"))
        .collect();
    assert_eq!(lines.len(), 3);

    // In use: not removable until the sync is gone.
    let out = run(wharf(h).args(["segment", "rm", "buyers"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("exported by sync buyers-daily"),
        "{}",
        text(&out)
    );
}
