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
        matches!(&nodes[2], Filter::Or(c) if matches!(c[1], Filter::Condition { operand: Operand::Within { hours: 2160, .. }, .. }))
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
        assert!(err.to_string().contains(want), "{value}: {err}");
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
            .to_string()
            .contains("at and[0].value: text values cannot contain the NUL")
    );
    let big = json!({"column": "a", "op": "in", "value": ["ok", "x".repeat(MAX_TEXT_BYTES + 1)]});
    let err = parse(&big).expect_err("too long");
    assert!(
        err.to_string()
            .contains("at filter.value[1]: a text value is at most 65536 bytes"),
        "{err}"
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

#[test]
fn an_error_in_a_part_says_where_and_does_not_call_the_part_the_filter() {
    let err = parse(&json!({"and": [{"column": "a", "op": "=", "value": null}]}))
        .expect_err("null value");
    let text = err.to_string();
    assert!(
        text.starts_with("filter is invalid at and[0].value: a value cannot be null"),
        "{text}"
    );
    assert!(!text.contains("filter \"null\""), "{text}");
    // The root is the whole filter, and is quoted as such.
    let err = parse(&json!(null)).expect_err("null filter");
    assert!(
        err.to_string().starts_with("filter \"null\" is invalid"),
        "{err}"
    );
}

#[test]
fn integers_too_large_for_64_bits_are_refused_not_rounded() {
    for text in [
        r#"{"column": "id", "op": "=", "value": 9223372036854775808}"#,
        r#"{"column": "id", "op": "=", "value": 123456789012345678901234}"#,
        r#"{"column": "id", "op": "=", "value": 1e19}"#,
    ] {
        let err = parse_text(text).expect_err(text);
        let message = err.to_string();
        assert!(message.contains("write it as a string"), "{message}");
        assert!(
            !message.contains("776000"),
            "echoed a rounded number: {message}"
        );
    }
    assert!(parse_text(r#"{"column": "x", "op": "=", "value": 9007199254740992}"#).is_ok());
    assert!(parse_text(r#"{"column": "x", "op": "=", "value": 0.5}"#).is_ok());
}

#[test]
fn within_last_keeps_the_unit_it_was_written_in() {
    let f = parse(&json!({"column": "seen", "op": "within_last", "value": {"days": 90}}))
        .expect("valid");
    let Filter::Condition {
        operand: Operand::Within { hours, written },
        ..
    } = f
    else {
        panic!("a condition: {f:?}");
    };
    assert_eq!((hours, written.as_str()), (2160, "90 days"));
}

#[test]
fn filters_near_every_size_limit() {
    let list = |n: usize| {
        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        format!(
            r#"{{"column": "id", "op": "in", "value": [{}]}}"#,
            values.join(",")
        )
    };
    assert!(parse_text(&list(MAX_LIST_VALUES)).is_ok());
    let err = parse_text(&list(MAX_LIST_VALUES + 1)).expect_err("too long");
    assert!(err.to_string().contains("at most 10000 values"), "{err}");
    // Values over several lists count together.
    let half = MAX_VALUES / 2 + 1;
    let two = format!(r#"{{"or": [{}, {}]}}"#, list(half), list(half));
    let err = parse_text(&two).expect_err("too many values in all");
    assert!(
        err.to_string().contains("at most 10000 values in all"),
        "{err}"
    );
    // The whole text.
    let huge = format!(
        r#"{{"column": "t", "op": "=", "value": "{}"}}"#,
        "x".repeat(MAX_FILTER_BYTES)
    );
    let err = parse_text(&huge).expect_err("too big");
    assert!(err.to_string().contains("at most 1048576 bytes"), "{err}");
}

mod byte_limits {
    use super::*;
    use proptest::prelude::*;

    /// `len` bytes of text made of `unit` (1 to 4 bytes a character) and ASCII to fill up.
    fn text_of(len: usize, unit: char) -> String {
        let mut s = unit.to_string().repeat(len / unit.len_utf8());
        s.push_str(&"a".repeat(len - s.len()));
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Text values and whole filters a few bytes either side of their limits, in characters
        /// of every UTF-8 width: accepted exactly up to the limit, counted in bytes.
        #[test]
        fn text_and_filters_near_their_byte_limits(
            delta in -3i64..=3,
            unit in proptest::sample::select(vec!['a', 'é', '€', '🌍']),
        ) {
            let len = (MAX_TEXT_BYTES as i64 + delta) as usize;
            let value = text_of(len, unit);
            let filter = json!({"column": "name", "op": "contains", "value": value});
            let parsed = parse(&filter);
            prop_assert_eq!(parsed.is_ok(), len <= MAX_TEXT_BYTES, "{} bytes", len);
            if let Err(e) = parsed {
                prop_assert!(e.to_string().contains(&format!("at most {MAX_TEXT_BYTES} bytes")), "{}", e);
            }

            // A whole filter of many text values, padded with spaces to a size near the limit.
            let values = MAX_FILTER_BYTES / (MAX_TEXT_BYTES / 2) - 1;
            let conditions: Vec<Value> = (0..values)
                .map(|_| json!({"column": "name", "op": "=", "value": text_of(MAX_TEXT_BYTES / 2 - 64, unit)}))
                .collect();
            let mut text = serde_json::to_string(&json!({"or": conditions})).expect("json");
            prop_assert!(text.len() < MAX_FILTER_BYTES - 3, "{} bytes before padding", text.len());
            let target = (MAX_FILTER_BYTES as i64 + delta) as usize;
            text.insert_str(0, &" ".repeat(target - text.len()));
            let parsed = parse_text(&text);
            prop_assert_eq!(parsed.is_ok(), target <= MAX_FILTER_BYTES, "{} bytes", target);
            if let Err(e) = parsed {
                prop_assert!(e.to_string().contains(&format!("at most {MAX_FILTER_BYTES} bytes")), "{}", e);
            }
        }
    }
}
