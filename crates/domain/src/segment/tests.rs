use super::*;
use serde_json::json;

#[test]
fn parses_every_node_kind() {
    let f = parse(&json!({"and": [
        {"column": "country", "op": "in", "value": ["FR", "BE"]},
        {"not": {"column": "email", "op": "ends_with", "value": "@example.com"}},
        {"or": [
            {"column": "age", "op": "between", "value": [18, 30]},
            {"column": "seen", "op": "within_last", "value": {"days": 90}},
            {"column": "note", "op": "is_null"},
        ]},
        {"related": "orders", "on": [["id", "customer_id"]],
         "where": {"column": "status", "op": "=", "value": "paid"},
         "aggregate": {"fn": "count", "op": ">=", "value": 3}},
    ]}))
    .expect("valid");
    let Filter::And(nodes) = f else { panic!("and") };
    assert_eq!(nodes.len(), 4);
    assert!(
        matches!(&nodes[2], Filter::Or(c) if matches!(c[1], Filter::Condition { operand: Operand::Within { hours: 2160 }, .. }))
    );
    assert!(matches!(
        &nodes[3],
        Filter::Related {
            aggregate: Some(Aggregate {
                function: AggregateFn::Count,
                column: None,
                ..
            }),
            ..
        }
    ));
}

#[test]
fn errors_name_the_node_and_the_rule() {
    let cases = [
        (
            json!({"and": [{"column": "a", "op": "=", "value": 1}, {"or": [{"column": "b", "op": "like", "value": "x"}]}]}),
            "at and[1].or[0]: unknown operator \"like\"",
        ),
        (
            json!({"column": "a", "op": "in", "value": []}),
            "non-empty array",
        ),
        (
            json!({"column": "a", "op": "between", "value": [1]}),
            "[low, high]",
        ),
        (
            json!({"column": "a", "op": "=", "value": null}),
            "use \"is_null\"",
        ),
        (
            json!({"column": "a", "op": "is_null", "value": 1}),
            "takes no \"value\"",
        ),
        (
            json!({"column": "a", "op": "contains", "value": 3}),
            "takes a string",
        ),
        (
            json!({"column": "a", "op": "within_last", "value": {"weeks": 2}}),
            "{\"days\": N}",
        ),
        (
            json!({"column": "a", "op": "=", "value": 1, "extra": true}),
            "unexpected key \"extra\"",
        ),
        (json!({"and": []}), "non-empty array"),
        (
            json!({"related": "orders", "on": [["id"]]}),
            "at filter.on[0]",
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "count", "column": "x", "op": ">", "value": 1}}),
            "takes no \"column\"",
        ),
        (
            json!({"related": "orders", "on": [["id", "customer_id"]], "aggregate": {"fn": "sum", "column": "x", "op": "contains", "value": "1"}}),
            "cannot compare an aggregate",
        ),
        (json!([1]), "a node is an object"),
        (
            json!({"column": "a", "op": "=", "value": {"x": 1}}),
            "a string, a number or a boolean",
        ),
    ];
    for (value, want) in cases {
        let err = parse(&value).expect_err(&value.to_string());
        assert_eq!(err.field, "filter");
        assert!(err.reason.contains(want), "{value}: {}", err.reason);
    }
}

#[test]
fn depth_and_size_are_limited() {
    let mut deep = json!({"column": "a", "op": "=", "value": 1});
    for _ in 0..MAX_DEPTH {
        deep = json!({"not": deep});
    }
    assert!(
        parse(&deep)
            .expect_err("too deep")
            .reason
            .contains("at most 32 levels")
    );
    let wide = json!({"or": (0..MAX_NODES).map(|i| json!({"column": "a", "op": "=", "value": i})).collect::<Vec<_>>()});
    assert!(
        parse(&wide)
            .expect_err("too big")
            .reason
            .contains("at most 1000 nodes")
    );
    let hostile = json!({"column": "a\"; DROP TABLE x; --", "op": "=", "value": "' OR 1=1 --"});
    // Shape is fine; identifiers and values are checked and bound when compiled.
    assert!(parse(&hostile).is_ok());
    let nul = json!({"and": [{"column": "a", "op": "=", "value": "x\u{0}y"}]});
    assert!(
        parse(&nul)
            .expect_err("NUL")
            .reason
            .contains("at and[0].value: text values cannot contain the NUL")
    );
    let big = json!({"column": "a", "op": "in", "value": ["ok", "x".repeat(MAX_TEXT_BYTES + 1)]});
    let err = parse(&big).expect_err("too long");
    assert!(
        err.reason
            .contains("at filter.value[1]: a text value is at most 65536 bytes"),
        "{}",
        err.reason
    );
    assert!(
        err.value.len() < 100,
        "the error does not echo the whole value"
    );
}

#[test]
fn counts_values_and_related_models() {
    let f = parse(&json!({"or": [
        {"column": "a", "op": "in", "value": [1, 2, 3]},
        {"column": "b", "op": "between", "value": [1, 2]},
        {"column": "c", "op": "within_last", "value": {"hours": 5}},
        {"column": "d", "op": "is_null"},
        {"related": "orders", "on": [["id", "cid"]],
         "where": {"related": "items", "on": [["id", "oid"]]},
         "aggregate": {"fn": "count", "op": ">", "value": 0}},
        {"related": "orders", "on": [["id", "cid"]]},
    ]}))
    .expect("valid");
    assert_eq!(f.value_count(), 3 + 2 + 2 + 1);
    assert_eq!(f.related_models(), ["items", "orders"]);
}
