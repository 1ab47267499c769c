use super::*;
use crate::{EngineSettings, LocalWarehouse};
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    ListBuilder, RecordBatch, StringArray, StringBuilder, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use wharf_domain::segment::parse;

/// 2026-03-31T12:00:00Z.
const AS_OF: i64 = 1_774_958_400_000_000;
const DAY: i64 = 86_400_000_000;

fn write(dir: &std::path::Path, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).expect("batch");
    let file = std::fs::File::create(dir.join(format!("{name}.parquet"))).expect("create");
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
        .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// people(8 rows) with nulls, duplicates, unicode and awkward column names; orders; items.
async fn warehouse() -> (tempfile::TempDir, LocalWarehouse) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tags = ListBuilder::new(StringBuilder::new());
    for i in 0..8 {
        if i % 3 == 0 {
            tags.append_null();
        } else {
            tags.values().append_value("t");
            tags.append(true);
        }
    }
    let ts = |days: i64| Some(AS_OF - days * DAY);
    write(
        dir.path(),
        "people",
        vec![
            (
                "id",
                Arc::new(Int64Array::from((1..=8).collect::<Vec<i64>>())) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("Ada"),
                    Some("Zoë"),
                    None,
                    Some("O'Brien"),
                    Some("ada"),
                    Some("' OR 1=1 --"),
                    Some("50%_off\\"),
                    Some("Ada"),
                ])),
            ),
            (
                "first name",
                Arc::new(StringArray::from(vec![Some("a"); 8])),
            ),
            (
                "select",
                Arc::new(Int32Array::from(vec![
                    Some(1),
                    Some(2),
                    None,
                    Some(2),
                    Some(3),
                    Some(4),
                    Some(5),
                    Some(2),
                ])),
            ),
            (
                "a\"b",
                Arc::new(StringArray::from(vec![
                    Some("\"; DROP"),
                    Some("x"),
                    Some("y"),
                    None,
                    Some("x"),
                    Some("’"),
                    Some("＂"),
                    Some("x"),
                ])),
            ),
            (
                "score",
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    Some(-2.0),
                    None,
                    Some(0.0),
                    Some(1e10),
                    Some(3.25),
                    Some(7.0),
                    Some(1.5),
                ])),
            ),
            (
                "price",
                Arc::new(
                    Decimal128Array::from(vec![
                        Some(1999),
                        Some(1000),
                        None,
                        Some(1001),
                        Some(0),
                        Some(-500),
                        Some(99999),
                        Some(1999),
                    ])
                    .with_precision_and_scale(12, 2)
                    .expect("decimal"),
                ),
            ),
            (
                "active",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(true),
                    Some(false),
                    Some(true),
                    Some(true),
                ])),
            ),
            (
                "born",
                Arc::new(Date32Array::from(vec![
                    Some(0),
                    Some(10_000),
                    None,
                    Some(20_000),
                    Some(20_543),
                    Some(20_453),
                    Some(-1),
                    Some(0),
                ])),
            ),
            (
                "seen",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        ts(1),
                        ts(89),
                        None,
                        ts(91),
                        ts(0),
                        ts(-1),
                        ts(400),
                        ts(1),
                    ])
                    .with_timezone("UTC"),
                ),
            ),
            (
                "local_ts",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    ts(1),
                    ts(2),
                    None,
                    ts(3),
                    ts(4),
                    ts(5),
                    ts(6),
                    ts(7),
                ])),
            ),
            (
                "at",
                Arc::new(Time64MicrosecondArray::from(vec![
                    Some(0),
                    Some(3_600_000_000),
                    None,
                    Some(1),
                    Some(2),
                    Some(3),
                    Some(4),
                    Some(5),
                ])),
            ),
            ("tags", Arc::new(tags.finish())),
        ],
    );
    write(
        dir.path(),
        "orders",
        vec![
            (
                "order_id",
                Arc::new(Int64Array::from(vec![10, 11, 12, 13, 14, 15])) as ArrayRef,
            ),
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(1),
                    Some(1),
                    Some(2),
                    None,
                    Some(4),
                ])),
            ),
            (
                "amount",
                Arc::new(
                    Decimal128Array::from(vec![
                        Some(500),
                        Some(700),
                        None,
                        Some(100),
                        Some(100),
                        Some(2500),
                    ])
                    .with_precision_and_scale(12, 2)
                    .expect("decimal"),
                ),
            ),
            (
                "status",
                Arc::new(StringArray::from(vec![
                    "paid", "paid", "refunded", "paid", "paid", "paid",
                ])),
            ),
            (
                "ordered_at",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        ts(1),
                        ts(30),
                        ts(100),
                        ts(200),
                        ts(1),
                        ts(2),
                    ])
                    .with_timezone("UTC"),
                ),
            ),
        ],
    );
    write(
        dir.path(),
        "items",
        vec![
            (
                "order_id",
                Arc::new(Int64Array::from(vec![10, 10, 13, 15])) as ArrayRef,
            ),
            ("sku", Arc::new(StringArray::from(vec!["A", "B", "A", "C"]))),
            ("qty", Arc::new(Int32Array::from(vec![1, 2, 3, 4]))),
        ],
    );
    let settings = EngineSettings::new(dir.path().join(".spill"));
    let w = LocalWarehouse::open(dir.path(), &settings)
        .await
        .expect("opens");
    (dir, w)
}

struct Models {
    people: SchemaRef,
    orders: SchemaRef,
    items: SchemaRef,
}

const PEOPLE: &str = "SELECT * FROM people -- the base model;\n;";
const ORDERS: &str = "SELECT * FROM orders";
const ITEMS: &str = "SELECT * FROM items";

async fn models(w: &LocalWarehouse) -> Models {
    Models {
        people: w.plan(PEOPLE).await.expect("people"),
        orders: w.plan(ORDERS).await.expect("orders"),
        items: w.plan(ITEMS).await.expect("items"),
    }
}

fn compile_with(
    m: &Models,
    filter: &Value,
    dialect: Dialect,
) -> Result<CompiledSegment, EngineError> {
    let related = [
        ModelQuery {
            name: "orders",
            sql: ORDERS,
            schema: &m.orders,
        },
        ModelQuery {
            name: "items",
            sql: ITEMS,
            schema: &m.items,
        },
        ModelQuery {
            name: "people",
            sql: PEOPLE,
            schema: &m.people,
        },
    ];
    let input = SegmentInput {
        model: ModelQuery {
            name: "people",
            sql: PEOPLE,
            schema: &m.people,
        },
        related: &related,
        as_of_micros: AS_OF,
    };
    let filter = parse(filter).map_err(|e| EngineError::Segment {
        path: String::new(),
        message: e.to_string(),
    })?;
    compile(&filter, &input, dialect)
}

/// The ids the segment selects, run in DataFusion.
async fn ids(w: &LocalWarehouse, m: &Models, filter: Value) -> Vec<i64> {
    let compiled =
        compile_with(m, &filter, Dialect::DataFusion).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let stream = w
        .query_with(&compiled.sql, &compiled.params)
        .await
        .unwrap_or_else(|e| panic!("{filter}: {e}\n{}", compiled.sql));
    collect_ids(stream).await
}

/// The `id`s of a result, sorted.
async fn collect_ids(mut stream: crate::QueryStream) -> Vec<i64> {
    let mut out = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.expect("batch");
        let column = batch.column_by_name("id").expect("id");
        let column = column.as_any().downcast_ref::<Int64Array>().expect("int64");
        out.extend(column.iter().flatten());
    }
    out.sort_unstable();
    out
}

#[tokio::test]
async fn every_operator_selects_what_sql_semantics_say() {
    let (_dir, w) = warehouse().await;
    let m = models(&w).await;
    let cases: Vec<(Value, Vec<i64>)> = vec![
        (
            json!({"column": "name", "op": "=", "value": "Ada"}),
            vec![1, 8],
        ),
        // `!=` never matches nulls (row 3), nor does `not` over `=`.
        (
            json!({"column": "name", "op": "!=", "value": "Ada"}),
            vec![2, 4, 5, 6, 7],
        ),
        (
            json!({"not": {"column": "name", "op": "=", "value": "Ada"}}),
            vec![2, 4, 5, 6, 7],
        ),
        (json!({"column": "select", "op": "<", "value": 2}), vec![1]),
        (
            json!({"column": "select", "op": "<=", "value": "2"}),
            vec![1, 2, 4, 8],
        ),
        (
            json!({"column": "score", "op": ">", "value": 1.5}),
            vec![5, 6, 7],
        ),
        (
            json!({"column": "price", "op": ">=", "value": "10.005"}),
            vec![1, 4, 7, 8],
        ),
        (json!({"column": "price", "op": "=", "value": 10}), vec![2]),
        (
            json!({"column": "name", "op": "in", "value": ["Zoë", "O'Brien", "nobody"]}),
            vec![2, 4],
        ),
        (
            json!({"column": "select", "op": "not_in", "value": [2, 3]}),
            vec![1, 6, 7],
        ),
        (
            json!({"column": "born", "op": "between", "value": ["1970-01-01", "2025-12-31"]}),
            vec![1, 2, 4, 6, 8],
        ),
        (
            json!({"column": "name", "op": "contains", "value": "d"}),
            vec![1, 5, 8],
        ),
        (
            json!({"column": "name", "op": "contains", "value": "%_"}),
            vec![7],
        ),
        (
            json!({"column": "name", "op": "starts_with", "value": "A"}),
            vec![1, 8],
        ),
        (
            json!({"column": "name", "op": "ends_with", "value": "\\"}),
            vec![7],
        ),
        (
            json!({"column": "name", "op": "ends_with", "value": "ë"}),
            vec![2],
        ),
        (json!({"column": "name", "op": "is_null"}), vec![3]),
        (
            json!({"column": "tags", "op": "is_not_null"}),
            vec![2, 3, 5, 6, 8],
        ),
        (
            json!({"column": "seen", "op": "within_last", "value": {"days": 90}}),
            vec![1, 2, 5, 8],
        ),
        (
            json!({"column": "seen", "op": "within_last", "value": {"hours": 24}}),
            vec![1, 5, 8],
        ),
        (
            json!({"column": "born", "op": "within_last", "value": {"days": 90}}),
            vec![5, 6],
        ),
        (
            json!({"column": "local_ts", "op": "<", "value": "2026-03-27T12:00:00"}),
            vec![6, 7, 8],
        ),
        (
            json!({"column": "seen", "op": ">", "value": "2026-03-31T13:59:59+02:00"}),
            vec![5, 6],
        ),
        (
            json!({"column": "at", "op": "=", "value": "01:00"}),
            vec![2],
        ),
        (
            json!({"column": "active", "op": "=", "value": false}),
            vec![2, 6],
        ),
        (
            json!({"column": "a\"b", "op": "=", "value": "\"; DROP"}),
            vec![1],
        ),
        (
            json!({"column": "a\"b", "op": "in", "value": ["’", "＂"]}),
            vec![6, 7],
        ),
        (
            json!({"column": "name", "op": "=", "value": "' OR 1=1 --"}),
            vec![6],
        ),
        (
            json!({"column": "first name", "op": "=", "value": "' OR '1'='1"}),
            vec![],
        ),
        (
            json!({"or": [{"column": "name", "op": "is_null"}, {"and": [{"column": "active", "op": "=", "value": true}, {"column": "select", "op": ">", "value": 2}]}]}),
            vec![3, 5, 7],
        ),
        // Relations: any paid order; at least 2 orders; sum over paid orders; no orders at all.
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "where": {"column": "status", "op": "=", "value": "paid"}}),
            vec![1, 2, 4],
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "count", "op": ">=", "value": 2}}),
            vec![1],
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "count", "op": "=", "value": 0}}),
            vec![3, 5, 6, 7, 8],
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "sum", "column": "amount", "op": ">", "value": 10}}),
            vec![1, 4],
        ),
        // Aggregates other than count over no rows are null: the comparison is false.
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "max", "column": "amount", "op": "<", "value": 1000}}),
            vec![1, 2, 4],
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "avg", "column": "amount", "op": "between", "value": [1, 6]}}),
            vec![1, 2],
        ),
        (
            json!({"not": {"related": "orders", "on": [["id", "customer_id"]]}}),
            vec![3, 5, 6, 7, 8],
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]],
                   "where": {"and": [
                       {"column": "ordered_at", "op": "within_last", "value": {"days": 90}},
                       {"related": "items", "on": [["order_id", "order_id"]], "aggregate": {"fn": "sum", "column": "qty", "op": ">=", "value": 3}}]},
                   "aggregate": {"fn": "count", "op": ">=", "value": 1}}),
            vec![1, 4],
        ),
        (
            json!({"or": [{"column": "id", "op": "=", "value": 7}, {"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "min", "column": "ordered_at", "op": "<", "value": "2025-12-01"}}]}),
            vec![2, 7],
        ),
    ];
    for (filter, want) in cases {
        assert_eq!(ids(&w, &m, filter.clone()).await, want, "{filter}");
    }
}

#[tokio::test]
async fn errors_name_the_node_the_column_and_the_fix() {
    let (_dir, w) = warehouse().await;
    let m = models(&w).await;
    let cases = [
        (
            json!({"and": [{"column": "id", "op": "=", "value": 1}, {"or": [{"column": "Name", "op": "=", "value": "x"}]}]}),
            "at and[1].or[0]: model \"people\" has no column \"Name\" (column names are case-sensitive: did you mean \"name\"?)",
        ),
        (
            json!({"column": "id", "op": "contains", "value": "1"}),
            "\"contains\" applies to text columns only; column \"id\" is Int64",
        ),
        (
            json!({"column": "name", "op": "within_last", "value": {"days": 3}}),
            "applies to date and timestamp columns only",
        ),
        (
            json!({"column": "id", "op": "=", "value": "seven"}),
            "at filter.value: the value \"seven\" does not fit column \"id\": the column holds integers",
        ),
        (
            json!({"column": "born", "op": "in", "value": ["2026-01-01", "01/02/2026"]}),
            "at filter.value[1]: the value \"01/02/2026\" does not fit column \"born\"",
        ),
        (
            json!({"column": "seen", "op": "between", "value": ["2026-01-01", "yesterday"]}),
            "at filter.value[1]",
        ),
        (
            json!({"column": "tags", "op": "=", "value": "t"}),
            "only is_null and is_not_null do",
        ),
        (
            json!({"column": "active", "op": ">", "value": true}),
            "\">\" applies to numbers",
        ),
        (
            json!({"column": "price", "op": "=", "value": "1e400x"}),
            "the column holds decimals",
        ),
        (
            json!({"related": "refunds", "on": [["id", "customer_id"]]}),
            "no model \"refunds\"",
        ),
        (
            json!({"related": "orders", "on": [["name", "customer_id"]]}),
            "at filter.on[0]: cannot join \"name\" (Utf8) with \"customer_id\" (Int64)",
        ),
        (
            json!({"related": "orders", "on": [["id", "nope"]]}),
            "model \"orders\" has no column \"nope\"",
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "sum", "column": "status", "op": ">", "value": 1}}),
            "at filter.aggregate: sum and avg apply to numeric columns only",
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "where": {"column": "amount", "op": "starts_with", "value": "1"}}),
            "at filter.where: \"starts_with\" applies to text columns only",
        ),
        (
            json!({"column": "x\"; DROP TABLE people; --", "op": "=", "value": 1}),
            "has no column \"x\\\"; DROP TABLE people; --\"",
        ),
    ];
    for (filter, want) in cases {
        let err = compile_with(&m, &filter, Dialect::DataFusion).expect_err(&filter.to_string());
        assert_eq!(err.code(), "segment.invalid");
        assert!(
            err.to_string().contains(want),
            "{filter}:\n  got  {err}\n  want {want}"
        );
    }
}

#[tokio::test]
async fn values_are_parameters_and_identifiers_are_quoted() {
    let (_dir, w) = warehouse().await;
    let m = models(&w).await;
    let filter = json!({"and": [
        {"column": "a\"b", "op": "=", "value": "'; DROP TABLE people; --"},
        {"column": "select", "op": "in", "value": [1, 2]},
        {"column": "seen", "op": "within_last", "value": {"days": 1}},
        {"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "count", "op": ">=", "value": 3}},
    ]});
    let df = compile_with(&m, &filter, Dialect::DataFusion).expect("compiles");
    assert_eq!(
        df.sql,
        "SELECT \"t0\".*\nFROM (\nSELECT * FROM people -- the base model\n) AS \"t0\"\n\
         LEFT JOIN (\nSELECT \"t1\".\"customer_id\" AS \"k0\", COUNT(*) AS \"v\"\nFROM (\nSELECT * FROM orders\n) AS \"t1\"\n\
         GROUP BY \"t1\".\"customer_id\"\n) AS \"j1\" ON \"j1\".\"k0\" = \"t0\".\"id\"\n\
         WHERE (\"t0\".\"a\"\"b\" = $1 AND \"t0\".\"select\" IN ($2, $3) AND \"t0\".\"seen\" BETWEEN $4 AND $5 AND COALESCE(\"j1\".\"v\", 0) >= $6)"
    );
    assert_eq!(
        df.params,
        vec![
            ScalarValue::Utf8(Some("'; DROP TABLE people; --".into())),
            ScalarValue::Int64(Some(1)),
            ScalarValue::Int64(Some(2)),
            ScalarValue::TimestampMicrosecond(Some(AS_OF - DAY), Some("UTC".into())),
            ScalarValue::TimestampMicrosecond(Some(AS_OF), Some("UTC".into())),
            ScalarValue::Int64(Some(3)),
        ]
    );
    let pg = compile_with(&m, &filter, Dialect::Postgres).expect("compiles");
    assert!(pg.sql.contains("\"t0\".\"a\"\"b\" = $1::text AND \"t0\".\"select\" IN ($2::int8, $3::int8) AND \"t0\".\"seen\" BETWEEN $4::text::timestamptz AND $5::text::timestamptz"), "{}", pg.sql);
    assert_eq!(pg.params, df.params);
    // What an export runs: PostgreSQL's COPY takes no parameters, so the values are written in
    // as escape-string literals under the same casts; DataFusion's stay bound.
    let (export, params) = pg.clone().into_export();
    assert!(params.is_empty());
    assert!(export.contains("\"t0\".\"a\"\"b\" = E'\\'; DROP TABLE people; --'::text AND \"t0\".\"select\" IN (E'1'::int8, E'2'::int8) AND \"t0\".\"seen\" BETWEEN E'"), "{export}");
    assert!(
        export.ends_with("'::text::timestamptz AND COALESCE(\"j1\".\"v\", 0) >= E'3'::int8)"),
        "{export}"
    );
    assert_eq!(
        export.replace("E'", "").len() + 2 * 6,
        export.len(),
        "{export}"
    );
    assert_eq!(
        df.clone().into_export(),
        (df.sql.clone(), df.params.clone())
    );
    let odd = compile_with(
        &m,
        &json!({"column": "name", "op": "in", "value": ["a\\b'c", "$1 $$ é"]}),
        Dialect::Postgres,
    )
    .expect("compiles");
    assert!(
        odd.clone()
            .into_export()
            .0
            .ends_with("IN (E'a\\\\b\\'c'::text, E'$1 $$ é'::text)"),
        "{}",
        odd.into_export().0
    );
    // Filters refuse a NUL before this; were one to get here, PostgreSQL refuses `\000` in a
    // literal as it refuses a NUL in a bound value.
    assert_eq!(
        super::postgres_literal(&ScalarValue::Utf8(Some("nul\0".into()))),
        "E'nul\\000'"
    );
    let ends = compile_with(
        &m,
        &json!({"column": "name", "op": "ends_with", "value": "x"}),
        Dialect::Postgres,
    )
    .expect("compiles");
    assert!(
        ends.sql
            .ends_with("WHERE right(\"t0\".\"name\", char_length($1::text)) = $1::text"),
        "{}",
        ends.sql
    );
    assert_eq!(ends.params.len(), 1);
}

mod generated;
mod limits;
