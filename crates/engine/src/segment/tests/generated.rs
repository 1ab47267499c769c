//! Random valid trees: each compiles, plans and runs in DataFusion, and binds exactly one
//! parameter per value.

use super::*;
use proptest::prelude::*;

/// A condition valid for the people model: (column, op, value).
fn condition() -> impl Strategy<Value = Value> {
    let int = any::<i32>().prop_map(|i| json!(i));
    let text = "[a-zA-Z'\"%_\\\\ ;ë-]{0,8}".prop_map(|s| json!(s));
    let date = (0i64..30_000).prop_map(|d| {
        let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
            + chrono::Duration::days(d);
        json!(day.format("%Y-%m-%d").to_string())
    });
    let timestamp = (0i64..2_000_000_000).prop_map(|s| {
        json!(
            chrono::DateTime::from_timestamp(s, 0)
                .unwrap_or_default()
                .to_rfc3339()
        )
    });
    prop_oneof![
        (
            prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
            int.clone()
        )
            .prop_map(|(op, v)| json!({"column": "select", "op": op, "value": v})),
        (
            prop::sample::select(vec!["=", "!=", "<", ">="]),
            text.clone()
        )
            .prop_map(|(op, v)| json!({"column": "name", "op": op, "value": v})),
        (
            prop::sample::select(vec!["contains", "starts_with", "ends_with"]),
            text.clone()
        )
            .prop_map(|(op, v)| json!({"column": "a\"b", "op": op, "value": v})),
        (
            prop::sample::select(vec!["in", "not_in"]),
            prop::collection::vec(int.clone(), 1..5)
        )
            .prop_map(|(op, v)| json!({"column": "id", "op": op, "value": v})),
        (date.clone(), date)
            .prop_map(|(a, b)| json!({"column": "born", "op": "between", "value": [a, b]})),
        timestamp.prop_map(|t| json!({"column": "seen", "op": ">", "value": t})),
        (1i64..5000)
            .prop_map(|d| json!({"column": "seen", "op": "within_last", "value": {"days": d}})),
        (1i64..5000)
            .prop_map(|h| json!({"column": "born", "op": "within_last", "value": {"hours": h}})),
        (-1e6f64..1e6).prop_map(|f| json!({"column": "price", "op": "<", "value": f})),
        (-1e6f64..1e6).prop_map(|f| json!({"column": "score", "op": ">=", "value": f})),
        any::<bool>().prop_map(|b| json!({"column": "active", "op": "=", "value": b})),
        prop::sample::select(vec!["name", "tags", "price", "seen", "at"])
            .prop_map(|c| json!({"column": c, "op": "is_null"})),
        Just(json!({"column": "at", "op": "<=", "value": "12:00:00"})),
    ]
}

fn relation(inner: impl Strategy<Value = Option<Value>>) -> impl Strategy<Value = Value> {
    let aggregate = prop_oneof![
        Just(None),
        (0i64..4).prop_map(|n| Some(json!({"fn": "count", "op": ">=", "value": n}))),
        (-100i64..100)
            .prop_map(|n| Some(json!({"fn": "sum", "column": "amount", "op": ">", "value": n}))),
        Just(Some(
            json!({"fn": "max", "column": "ordered_at", "op": "<", "value": "2026-01-01"})
        )),
        Just(Some(
            json!({"fn": "avg", "column": "amount", "op": "between", "value": [0, 10]})
        )),
    ];
    (inner, aggregate).prop_map(|(filter, aggregate)| {
        let mut node = json!({"related": "orders", "on": [["id", "customer_id"]]});
        if let Some(f) = filter {
            node["where"] = f;
        }
        if let Some(a) = aggregate {
            node["aggregate"] = a;
        }
        node
    })
}

fn order_condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["paid", "refunded", "x'y"])
            .prop_map(|s| json!({"column": "status", "op": "=", "value": s})),
        (1i64..400).prop_map(
            |d| json!({"column": "ordered_at", "op": "within_last", "value": {"days": d}})
        ),
        Just(
            json!({"related": "items", "on": [["order_id", "order_id"]], "where": {"column": "sku", "op": "in", "value": ["A", "C"]}})
        ),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => condition(),
        1 => relation(prop::option::of(order_condition())),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|n| json!({"and": n})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|n| json!({"or": n})),
            inner.prop_map(|n| json!({"not": n})),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn random_valid_trees_plan_and_bind_one_parameter_per_value(filter in tree()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let (_dir, w) = warehouse().await;
            let m = models(&w).await;
            let tree = parse(&filter).expect("generated trees are valid");
            for dialect in [Dialect::DataFusion, Dialect::Postgres] {
                let compiled = compile_with(&m, &filter, dialect).unwrap_or_else(|e| panic!("{filter}: {e}"));
                assert_eq!(compiled.params.len(), tree.value_count(), "{filter}");
                let highest = (1..=compiled.params.len()).rev().find(|n| compiled.sql.contains(&format!("${n}")));
                assert_eq!(highest, (!compiled.params.is_empty()).then_some(compiled.params.len()), "{}", compiled.sql);
                assert!(!compiled.sql.contains(&format!("${}", compiled.params.len() + 1)));
            }
            let compiled = compile_with(&m, &filter, Dialect::DataFusion).expect("compiles");
            w.plan_with(&compiled.sql, &compiled.params).await.unwrap_or_else(|e| panic!("{filter}: {e}\n{}", compiled.sql));
            w.count(&compiled.sql, &compiled.params).await.unwrap_or_else(|e| panic!("{filter}: {e}\n{}", compiled.sql));
        });
    }
}

/// The people, orders and items of [`warehouse`], in a PostgreSQL schema of their own, with the
/// types a PostgreSQL model of them would have (tags are null for ids 1, 4 and 7).
fn postgres_tables(schema: &str) -> String {
    let ts = |days: i64| format!("to_timestamp({} - {days} * 86400)", AS_OF / 1_000_000);
    let people = [
        (1, "'Ada'", "1", "'\"; DROP'", "1.5", "19.99", "true", 0, ts(1), ts(1), "'00:00:00'", "NULL"),
        (2, "'Zoë'", "2", "'x'", "-2.0", "10.00", "false", 10_000, ts(89), ts(2), "'01:00:00'", "'{t}'"),
        (3, "NULL", "NULL", "'y'", "NULL", "NULL", "NULL", i64::MIN, "NULL".into(), "NULL".into(), "NULL", "'{t}'"),
        (4, "'O''Brien'", "2", "NULL", "0.0", "10.01", "true", 20_000, ts(91), ts(3), "'00:00:00.000001'", "NULL"),
        (5, "'ada'", "3", "'x'", "1e10", "0.00", "true", 20_543, ts(0), ts(4), "'00:00:00.000002'", "'{t}'"),
        (6, "''' OR 1=1 --'", "4", "'’'", "3.25", "-5.00", "false", 20_453, ts(-1), ts(5), "'00:00:00.000003'", "'{t}'"),
        (7, "'50%_off\\'", "5", "'＂'", "7.0", "999.99", "true", -1, ts(400), ts(6), "'00:00:00.000004'", "NULL"),
        (8, "'Ada'", "2", "'x'", "1.5", "19.99", "true", 0, ts(1), ts(7), "'00:00:00.000005'", "'{t}'"),
    ]
    .map(|(id, name, select, ab, score, price, active, born, seen, local, at, tags)| {
        let born = if born == i64::MIN {
            "NULL".to_string()
        } else {
            format!("DATE '1970-01-01' + {born}")
        };
        let local = if local == "NULL" {
            local
        } else {
            format!("{local} AT TIME ZONE 'UTC'")
        };
        format!("({id}, {name}, 'a', {select}, {ab}, {score}, {price}, {active}, {born}, {seen}, {local}, {at}, {tags})")
    })
    .join(",\n  ");
    format!(
        r#"DROP SCHEMA IF EXISTS {schema} CASCADE;
CREATE SCHEMA {schema};
SET search_path = {schema};
CREATE TABLE people (id int8, name text, "first name" text, "select" int4, "a""b" text,
  score float8, price numeric(12,2), active bool, born date, seen timestamptz,
  local_ts timestamp, at time, tags text[]);
INSERT INTO people VALUES
  {people};
CREATE TABLE orders (order_id int8, customer_id int8, amount numeric(12,2), status text,
  ordered_at timestamptz);
INSERT INTO orders VALUES
  (10, 1, 5.00, 'paid', {o1}), (11, 1, 7.00, 'paid', {o30}), (12, 1, NULL, 'refunded', {o100}),
  (13, 2, 1.00, 'paid', {o200}), (14, NULL, 1.00, 'paid', {o1}), (15, 4, 25.00, 'paid', {o2});
CREATE TABLE items (order_id int8, sku text, qty int4);
INSERT INTO items VALUES (10, 'A', 1), (10, 'B', 2), (13, 'A', 3), (15, 'C', 4);"#,
        o1 = ts(1),
        o2 = ts(2),
        o30 = ts(30),
        o100 = ts(100),
        o200 = ts(200),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// The SQL a tree compiles to for PostgreSQL runs on PostgreSQL (the test cluster of
    /// `scripts/test`) and selects the rows the DataFusion SQL selects from the same data.
    #[test]
    fn random_valid_trees_select_the_same_rows_on_postgresql(filter in tree()) {
        let url = std::env::var("WHARF_TEST_POSTGRES_URL").expect(
            "WHARF_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a PostgreSQL cluster",
        );
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async {
            static SCHEMA: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
            let schema = SCHEMA.get_or_init(|| async {
                let schema = format!("segment_props_{}", std::process::id());
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
                let connection = tokio::spawn(connection);
                client.batch_execute(&postgres_tables(&schema)).await.expect("create the tables");
                drop(client);
                let _ = connection.await;
                schema
            }).await;
            let mut scoped = url::Url::parse(&url).expect("url");
            scoped.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
            let source = wharf_domain::PostgresSource::parse(scoped.as_str(), Some(wharf_domain::SslMode::Disable), None).expect("source");
            let pg = crate::PostgresWarehouse::connect(&source, 1024).await.expect("connect");
            let (_dir, w) = warehouse().await;
            let m = models(&w).await;
            let expected = ids(&w, &m, filter.clone()).await;
            let compiled = compile_with(&m, &filter, Dialect::Postgres).unwrap_or_else(|e| panic!("{filter}: {e}"));
            // What an export runs: the values written in, read with COPY.
            let (sql, params) = compiled.into_export();
            let stream = pg.query_with(&sql, &params).await.unwrap_or_else(|e| panic!("{filter}: {e}\n{sql}"));
            let got = collect_ids(stream).await;
            assert_eq!(got, expected, "{filter}\n{sql}");
        });
    }
}
