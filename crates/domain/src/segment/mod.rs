//! Segment filters: the no-code condition trees users build over a model, parsed from JSON with
//! errors that name the node (`and[2].or[0]`) and limits on depth and size.
//!
//! This module checks shape only (operators, value kinds, limits). Whether a column exists and
//! whether an operator suits its type needs the model's schema and is checked where the tree is
//! compiled to SQL.

use crate::error::InvalidValue;
use serde_json::{Map, Value};

/// Deepest nesting of `and`/`or`/`not`/`related` a filter may have.
pub const MAX_DEPTH: usize = 32;
/// Most nodes (conditions and groups) a filter may have.
pub const MAX_NODES: usize = 1_000;
/// Longest text value, in bytes. Values are bound parameters, so this is about keeping stored
/// definitions and query plans small, not about safety.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most values one `in`/`not_in` list may hold. Longer audiences belong in a model (a table of
/// ids joined with `related`), where the warehouse handles them as rows.
pub const MAX_LIST_VALUES: usize = 10_000;
/// Most values (bound parameters) a whole filter may hold: PostgreSQL takes at most 65,535
/// parameters per statement, and planning time grows with each.
pub const MAX_VALUES: usize = 10_000;
/// Longest filter, as JSON text.
pub const MAX_FILTER_BYTES: usize = 1024 * 1024;
/// Largest integer a float value may hold exactly (2^53); beyond it, a number written in the
/// filter would be compared as a different number.
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Between,
    Contains,
    StartsWith,
    EndsWith,
    IsNull,
    IsNotNull,
    WithinLast,
}

impl Op {
    const ALL: [(Op, &'static str); 15] = [
        (Op::Eq, "="),
        (Op::Ne, "!="),
        (Op::Lt, "<"),
        (Op::Le, "<="),
        (Op::Gt, ">"),
        (Op::Ge, ">="),
        (Op::In, "in"),
        (Op::NotIn, "not_in"),
        (Op::Between, "between"),
        (Op::Contains, "contains"),
        (Op::StartsWith, "starts_with"),
        (Op::EndsWith, "ends_with"),
        (Op::IsNull, "is_null"),
        (Op::IsNotNull, "is_not_null"),
        (Op::WithinLast, "within_last"),
    ];

    pub fn parse(text: &str) -> Option<Op> {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == text)
            .map(|(op, _)| *op)
    }

    /// Every operator, in the order interfaces list them.
    pub fn every() -> Vec<Op> {
        Self::ALL.iter().map(|(op, _)| *op).collect()
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("?", |(_, t)| t)
    }

    fn names() -> String {
        Self::ALL
            .iter()
            .map(|(_, t)| *t)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Comparisons allowed on an aggregate (a number or a time compared with one value).
    fn is_comparison(self) -> bool {
        matches!(
            self,
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Between
        )
    }
}

/// A JSON scalar given as a condition's value. Dates and timestamps arrive as strings and are
/// cast to the column's type when compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// What a condition compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `is_null`, `is_not_null`.
    None,
    One(Scalar),
    /// `in`, `not_in`: at least one value.
    List(Vec<Scalar>),
    /// `between`: inclusive bounds.
    Range(Scalar, Scalar),
    /// `within_last`: a duration back from the run's `as_of`.
    Within {
        hours: i64,
        /// The duration as the user wrote it (`90 days`), for messages.
        written: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub function: AggregateFn,
    /// `None` for `count`.
    pub column: Option<String>,
    pub op: Op,
    pub operand: Operand,
}

/// A node of a segment filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Condition {
        column: String,
        op: Op,
        operand: Operand,
    },
    Related {
        model: String,
        /// `(local column, related column)` pairs.
        on: Vec<(String, String)>,
        filter: Option<Box<Filter>>,
        aggregate: Option<Aggregate>,
    },
}

impl Operand {
    /// How many bound parameters this operand compiles to: one per value, two for a range
    /// (`between`, and `within_last`, whose bounds are computed from the run's time).
    pub fn value_count(&self) -> usize {
        match self {
            Operand::None => 0,
            Operand::One(_) => 1,
            Operand::List(items) => items.len(),
            Operand::Range(..) | Operand::Within { .. } => 2,
        }
    }
}

impl Filter {
    /// The number of bound parameters the whole tree compiles to.
    pub fn value_count(&self) -> usize {
        match self {
            Filter::And(nodes) | Filter::Or(nodes) => nodes.iter().map(Filter::value_count).sum(),
            Filter::Not(inner) => inner.value_count(),
            Filter::Condition { operand, .. } => operand.value_count(),
            Filter::Related {
                filter, aggregate, ..
            } => {
                filter.as_deref().map_or(0, Filter::value_count)
                    + aggregate.as_ref().map_or(0, |a| a.operand.value_count())
            }
        }
    }

    /// The names of the models this tree relates to, at any depth, sorted and unique.
    pub fn related_models(&self) -> Vec<String> {
        fn walk(filter: &Filter, out: &mut Vec<String>) {
            match filter {
                Filter::And(nodes) | Filter::Or(nodes) => nodes.iter().for_each(|n| walk(n, out)),
                Filter::Not(inner) => walk(inner, out),
                Filter::Condition { .. } => {}
                Filter::Related { model, filter, .. } => {
                    out.push(model.clone());
                    if let Some(inner) = filter {
                        walk(inner, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out.sort();
        out.dedup();
        out
    }
}

/// Parses a filter written as JSON text: at most [`MAX_FILTER_BYTES`], no key given twice in
/// an object (see [`crate::json`]), then [`parse`].
pub fn parse_text(text: &str) -> Result<Filter, InvalidValue> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(InvalidValue::new(
            "filter",
            text,
            format!(
                "a filter is at most {MAX_FILTER_BYTES} bytes of JSON (this one has {}); put long lists of values in a model and use \"related\"",
                text.len()
            ),
        ));
    }
    let value = crate::json::parse_strict(text, "filter").map_err(|e| {
        InvalidValue::new(
            "filter",
            text,
            format!("it is not valid JSON: {e}; see docs/guide.md for the format"),
        )
    })?;
    parse(&value)
}

/// Parses a filter tree. Errors name the node's path (`and[2].or[0]`), the rule broken and what
/// is allowed.
pub fn parse(value: &Value) -> Result<Filter, InvalidValue> {
    let mut parser = Parser {
        nodes: 0,
        values: 0,
    };
    let filter = parser.node(value, "filter", 1)?;
    Ok(filter)
}

struct Parser {
    nodes: usize,
    /// Values seen so far (list items count one each).
    values: usize,
}

fn fail(path: &str, value: &Value, reason: impl Into<String>) -> InvalidValue {
    let e = InvalidValue::new("filter", value.to_string(), reason.into());
    // The root is the whole filter; anywhere else, say where the quoted part is.
    if path == "filter" { e } else { e.at(path) }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, InvalidValue> {
    value.as_object().ok_or_else(|| {
        fail(
            path,
            value,
            "a node is an object: {\"and\": [...]}, {\"or\": [...]}, {\"not\": ...}, {\"column\": ..., \"op\": ..., \"value\": ...} or {\"related\": ...}",
        )
    })
}

fn only_keys(
    map: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
    value: &Value,
) -> Result<(), InvalidValue> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(fail(
            path,
            value,
            format!(
                "unexpected key {k:?} (this node takes {})",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn text<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
    value: &Value,
) -> Result<&'a str, InvalidValue> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(fail(
            path,
            value,
            format!("{key:?} must be a non-empty string"),
        )),
    }
}

fn scalar(value: &Value, path: &str) -> Result<Scalar, InvalidValue> {
    match value {
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Scalar::Int(i)),
            (None, _) if n.is_u64() => Err(fail(
                path,
                value,
                format!(
                    "integers are at most {} (64-bit); to compare with a larger decimal, write it as a string (\"{n}\")",
                    i64::MAX
                ),
            )),
            // serde_json reads integers beyond 64 bits, and floats, as the nearest f64: only
            // those that f64 holds exactly are the number the user wrote.
            (None, Some(f))
                if f.is_finite() && (f.fract() != 0.0 || f.abs() <= MAX_EXACT_FLOAT) =>
            {
                Ok(Scalar::Float(f))
            }
            (None, Some(f)) if f.is_finite() => Err(fail(
                path,
                value,
                "this number is too large to be compared exactly (beyond 2^53 as a float, or 2^63 as an integer); write it as a string (\"12345678901234567890\") to compare it exactly with a decimal or integer column",
            )),
            _ => Err(fail(
                path,
                value,
                "numbers must fit a 64-bit integer or a finite float",
            )),
        },
        Value::String(s) if s.len() > MAX_TEXT_BYTES => Err(fail(
            path,
            &Value::String(format!("{}…", s.chars().take(40).collect::<String>())),
            format!(
                "a text value is at most {MAX_TEXT_BYTES} bytes (this one has {}); filter on a shorter value or put long lists in a model",
                s.len()
            ),
        )),
        Value::String(s) if s.contains('\0') => Err(fail(
            path,
            value,
            "text values cannot contain the NUL character (U+0000): no warehouse text can hold it",
        )),
        Value::String(s) => Ok(Scalar::Text(s.clone())),
        Value::Null => Err(fail(
            path,
            value,
            "a value cannot be null (comparisons with null are never true): use \"is_null\" or \"is_not_null\"",
        )),
        _ => Err(fail(
            path,
            value,
            "a value is a string, a number or a boolean",
        )),
    }
}

fn operand(
    op: Op,
    value: Option<&Value>,
    path: &str,
    node: &Value,
) -> Result<Operand, InvalidValue> {
    let vpath = format!("{path}.value");
    match (op, value) {
        (Op::IsNull | Op::IsNotNull, None) => Ok(Operand::None),
        (Op::IsNull | Op::IsNotNull, Some(_)) => Err(fail(
            path,
            node,
            format!("\"{}\" takes no \"value\"", op.as_str()),
        )),
        (_, None) => Err(fail(
            path,
            node,
            format!("\"{}\" needs a \"value\"", op.as_str()),
        )),
        (Op::In | Op::NotIn, Some(Value::Array(items))) if items.len() > MAX_LIST_VALUES => {
            Err(fail(
                &vpath,
                &Value::String(format!("[{} values]", items.len())),
                format!(
                    "\"{}\" takes at most {MAX_LIST_VALUES} values (this list has {}); for longer lists, put the values in a model (a table) and filter with \"related\"",
                    op.as_str(),
                    items.len()
                ),
            ))
        }
        (Op::In | Op::NotIn, Some(Value::Array(items))) if !items.is_empty() => Ok(Operand::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| scalar(v, &format!("{vpath}[{i}]")))
                .collect::<Result<_, _>>()?,
        )),
        (Op::In | Op::NotIn, Some(v)) => Err(fail(
            &vpath,
            v,
            format!("\"{}\" takes a non-empty array of values", op.as_str()),
        )),
        (Op::Between, Some(Value::Array(items))) if items.len() == 2 => Ok(Operand::Range(
            scalar(&items[0], &format!("{vpath}[0]"))?,
            scalar(&items[1], &format!("{vpath}[1]"))?,
        )),
        (Op::Between, Some(v)) => Err(fail(&vpath, v, "\"between\" takes [low, high] (inclusive)")),
        (Op::WithinLast, Some(Value::Object(m))) => {
            let unit = |key: &str, factor: i64| {
                m.get(key)
                    .and_then(Value::as_i64)
                    .filter(|n| *n > 0)
                    .map(|n| n.saturating_mul(factor))
            };
            let written = m
                .iter()
                .next()
                .map(|(unit, n)| format!("{n} {unit}"))
                .unwrap_or_default();
            match (m.len(), unit("days", 24), unit("hours", 1)) {
                (1, Some(hours), None) | (1, None, Some(hours)) => {
                    Ok(Operand::Within { hours, written })
                }
                _ => Err(fail(
                    &vpath,
                    node,
                    "\"within_last\" takes {\"days\": N} or {\"hours\": N} with N a positive integer",
                )),
            }
        }
        (Op::WithinLast, Some(v)) => Err(fail(
            &vpath,
            v,
            "\"within_last\" takes {\"days\": N} or {\"hours\": N}",
        )),
        (Op::Contains | Op::StartsWith | Op::EndsWith, Some(v)) if !v.is_string() => Err(fail(
            &vpath,
            v,
            format!("\"{}\" takes a string", op.as_str()),
        )),
        (_, Some(v)) => Ok(Operand::One(scalar(v, &vpath)?)),
    }
}

impl Parser {
    fn count_values(
        &mut self,
        operand: &Operand,
        path: &str,
        node: &Value,
    ) -> Result<(), InvalidValue> {
        self.values += operand.value_count();
        if self.values > MAX_VALUES {
            return Err(fail(
                path,
                node,
                format!(
                    "a filter holds at most {MAX_VALUES} values in all (this one reaches {} here); put long lists of values in a model and filter with \"related\"",
                    self.values
                ),
            ));
        }
        Ok(())
    }

    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Result<Filter, InvalidValue> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(fail(
                path,
                value,
                format!("a filter has at most {MAX_NODES} nodes"),
            ));
        }
        if depth > MAX_DEPTH {
            return Err(fail(
                path,
                value,
                format!("a filter nests at most {MAX_DEPTH} levels"),
            ));
        }
        let map = object(value, path)?;
        for group in ["and", "or"] {
            if let Some(children) = map.get(group) {
                only_keys(map, &[group], path, value)?;
                let Some(children) = children.as_array().filter(|c| !c.is_empty()) else {
                    return Err(fail(
                        path,
                        value,
                        format!("\"{group}\" takes a non-empty array of nodes"),
                    ));
                };
                let nodes = children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let child = if path == "filter" {
                            format!("{group}[{i}]")
                        } else {
                            format!("{path}.{group}[{i}]")
                        };
                        self.node(c, &child, depth + 1)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if group == "and" {
                    Filter::And(nodes)
                } else {
                    Filter::Or(nodes)
                });
            }
        }
        if let Some(inner) = map.get("not") {
            only_keys(map, &["not"], path, value)?;
            let child = if path == "filter" {
                "not".to_string()
            } else {
                format!("{path}.not")
            };
            return Ok(Filter::Not(Box::new(self.node(
                inner,
                &child,
                depth + 1,
            )?)));
        }
        if map.contains_key("related") {
            return self.related(map, value, path, depth);
        }
        if map.contains_key("column") || map.contains_key("op") {
            only_keys(map, &["column", "op", "value"], path, value)?;
            let column = text(map, "column", path, value)?.to_string();
            let op_text = text(map, "op", path, value)?;
            let op = Op::parse(op_text).ok_or_else(|| {
                fail(
                    path,
                    value,
                    format!(
                        "unknown operator {op_text:?}; the operators are {}",
                        Op::names()
                    ),
                )
            })?;
            let operand = operand(op, map.get("value"), path, value)?;
            self.count_values(&operand, path, value)?;
            return Ok(Filter::Condition {
                column,
                op,
                operand,
            });
        }
        Err(fail(
            path,
            value,
            "a node has one of the keys \"and\", \"or\", \"not\", \"column\" or \"related\"",
        ))
    }

    fn related(
        &mut self,
        map: &Map<String, Value>,
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Filter, InvalidValue> {
        only_keys(map, &["related", "on", "where", "aggregate"], path, value)?;
        let model = text(map, "related", path, value)?.to_string();
        let pairs = map
            .get("on")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                fail(
                    path,
                    value,
                    "\"on\" takes [[LOCAL_COLUMN, RELATED_COLUMN], ...] (at least one pair)",
                )
            })?;
        let mut on = Vec::new();
        for (i, pair) in pairs.iter().enumerate() {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(a), Value::String(b)]) if !a.is_empty() && !b.is_empty() => {
                    on.push((a.clone(), b.clone()));
                }
                _ => {
                    return Err(fail(
                        &format!("{path}.on[{i}]"),
                        pair,
                        "a join pair is [LOCAL_COLUMN, RELATED_COLUMN]",
                    ));
                }
            }
        }
        let filter = match map.get("where") {
            Some(w) => Some(Box::new(self.node(
                w,
                &format!("{path}.where"),
                depth + 1,
            )?)),
            None => None,
        };
        let aggregate = match map.get("aggregate") {
            None => None,
            Some(a) => {
                let apath = format!("{path}.aggregate");
                let am = object(a, &apath)?;
                only_keys(am, &["fn", "column", "op", "value"], &apath, a)?;
                let function = match text(am, "fn", &apath, a)? {
                    "count" => AggregateFn::Count,
                    "sum" => AggregateFn::Sum,
                    "min" => AggregateFn::Min,
                    "max" => AggregateFn::Max,
                    "avg" => AggregateFn::Avg,
                    other => {
                        return Err(fail(
                            &apath,
                            a,
                            format!("unknown aggregate {other:?}; use count, sum, min, max or avg"),
                        ));
                    }
                };
                let column = match (function, am.get("column")) {
                    (AggregateFn::Count, None) => None,
                    (AggregateFn::Count, Some(_)) => {
                        return Err(fail(
                            &apath,
                            a,
                            "\"count\" counts rows and takes no \"column\"",
                        ));
                    }
                    (_, _) => Some(text(am, "column", &apath, a)?.to_string()),
                };
                let op_text = text(am, "op", &apath, a)?;
                let op = Op::parse(op_text).filter(|op| op.is_comparison()).ok_or_else(|| {
                    fail(&apath, a, format!("{op_text:?} cannot compare an aggregate; use =, !=, <, <=, >, >= or between"))
                })?;
                let operand = operand(op, am.get("value"), &apath, a)?;
                self.count_values(&operand, &apath, a)?;
                Some(Aggregate {
                    function,
                    column,
                    op,
                    operand,
                })
            }
        };
        Ok(Filter::Related {
            model,
            on,
            filter,
            aggregate,
        })
    }
}

#[cfg(test)]
mod tests;
