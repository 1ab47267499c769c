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
