//! The segment builder's tree as a form: each node's fields are named after its path (`r` is
//! the root group, `r.0` its first child, `r.1.w` the `where` group of a relation), so the
//! whole tree travels in one form, is rebuilt from it on every edit, and becomes the filter JSON
//! the service checks. This is the form's shape only: what a filter may say, which operators
//! suit which columns, and how values cast are the service's to decide.

use super::session::Fields;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A node as the builder shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Node {
    pub path: String,
    /// `and`, `or` (groups), `cond` (a condition on a column) or `rel` (related rows).
    pub kind: String,
    /// The node is negated ("not").
    pub not: bool,
    pub children: Vec<Node>,
    pub column: String,
    pub op: String,
    pub value: String,
    /// The upper bound of `between`.
    pub value2: String,
    /// `days` or `hours`, for `within_last`.
    pub unit: String,
    /// Relations: the related model, and the columns joined (this model's, the related one's).
    pub model: String,
    pub local: String,
    pub remote: String,
    /// `exists` (any related row), or `count`, `sum`, `avg`, `min`, `max`.
    pub agg: String,
    pub agg_column: String,
    pub agg_op: String,
    pub agg_value: String,
    pub agg_value2: String,
    /// A relation's filter on the related rows (a group).
    #[serde(rename = "where")]
    pub where_: Option<Box<Node>>,
}

/// Deepest nesting the builder reads from a form (the service refuses deeper filters anyway).
const MAX_FORM_DEPTH: usize = 40;
/// Most children one group takes from a form.
const MAX_FORM_CHILDREN: usize = 1000;

impl Node {
    pub fn group(path: &str, kind: &str) -> Node {
        Node {
            path: path.to_string(),
            kind: kind.to_string(),
            ..Node::default()
        }
    }

    pub fn condition(path: &str, column: &str, op: &str) -> Node {
        Node {
            path: path.to_string(),
            kind: "cond".into(),
            column: column.to_string(),
            op: op.to_string(),
            unit: "days".into(),
            ..Node::default()
        }
    }

    /// The tree a form describes, from its root `r`.
    pub fn from_fields(fields: &Fields) -> Node {
        let kinds: BTreeMap<&str, &str> = fields
            .0
            .iter()
            .filter_map(|(k, v)| k.strip_suffix(".kind").map(|p| (p, v.as_str())))
            .collect();
        Self::read(fields, &kinds, "r", 0)
    }

    fn read(fields: &Fields, kinds: &BTreeMap<&str, &str>, path: &str, depth: usize) -> Node {
        let field = |name: &str| fields.text(&format!("{path}.{name}")).to_string();
        let kind = kinds.get(path).copied().unwrap_or("and");
        let mut node = Node {
            path: path.to_string(),
            kind: kind.to_string(),
            not: fields.text(&format!("{path}.not")) == "on",
            column: field("column"),
            op: field("op"),
            value: field("value"),
            value2: field("value2"),
            unit: field("unit"),
            model: field("model"),
            local: field("local"),
            remote: field("remote"),
            agg: field("agg"),
            agg_column: field("agg_column"),
            agg_op: field("agg_op"),
            agg_value: field("agg_value"),
            agg_value2: field("agg_value2"),
            ..Node::default()
        };
        if depth >= MAX_FORM_DEPTH {
            return node;
        }
        if matches!(kind, "and" | "or") {
            let prefix = format!("{path}.");
            let mut indices: Vec<usize> = kinds
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter_map(|rest| rest.parse::<usize>().ok())
                .collect();
            indices.sort_unstable();
            indices.truncate(MAX_FORM_CHILDREN);
            node.children = indices
                .into_iter()
                .map(|i| Self::read(fields, kinds, &format!("{path}.{i}"), depth + 1))
                .collect();
        }
        if kind == "rel" && kinds.contains_key(format!("{path}.w").as_str()) {
            node.where_ = Some(Box::new(Self::read(
                fields,
                kinds,
                &format!("{path}.w"),
                depth + 1,
            )));
        }
        node
    }

    /// Gives every node the path of its place in the tree (after nodes were added or removed).
    pub fn renumber(&mut self, path: &str) {
        self.path = path.to_string();
        for (i, child) in self.children.iter_mut().enumerate() {
            child.renumber(&format!("{path}.{i}"));
        }
        if let Some(w) = &mut self.where_ {
            w.renumber(&format!("{path}.w"));
        }
    }

    fn find_mut(&mut self, path: &str) -> Option<&mut Node> {
        if self.path == path {
            return Some(self);
        }
        if let Some(w) = &mut self.where_
            && path.starts_with(&w.path)
            && let Some(found) = w.find_mut(path)
        {
            return Some(found);
        }
        self.children.iter_mut().find_map(|c| c.find_mut(path))
    }

    /// Applies a builder button: `add-cond:PATH`, `add-group:PATH`, `add-rel:PATH` (to the
    /// group at PATH), `add-where:PATH` (to the relation at PATH), `remove:PATH`. `first` is
    /// the column a new condition starts on, with its first operator.
    pub fn apply(&mut self, action: &str, first: (&str, &str)) {
        let Some((verb, path)) = action.split_once(':') else {
            return;
        };
        match verb {
            "remove" if path != "r" => {
                if let Some((parent, _)) = path.rsplit_once('.')
                    && let Some(parent) = self.find_mut(parent)
                {
                    if parent.where_.as_ref().is_some_and(|w| w.path == path) {
                        parent.where_ = None;
                    } else {
                        parent.children.retain(|c| c.path != path);
                    }
                }
            }
            "add-where" => {
                if let Some(rel) = self.find_mut(path)
                    && rel.kind == "rel"
                    && rel.where_.is_none()
                {
                    rel.where_ = Some(Box::new(Node::group(&format!("{path}.w"), "and")));
                }
            }
            "add-cond" | "add-group" | "add-rel" => {
                if let Some(group) = self.find_mut(path)
                    && matches!(group.kind.as_str(), "and" | "or")
                {
                    let child_path = format!("{path}.{}", group.children.len());
                    let child = match verb {
                        "add-cond" => Node::condition(&child_path, first.0, first.1),
                        "add-group" => {
                            let mut g = Node::group(&child_path, "or");
                            g.children.push(Node::condition(
                                &format!("{child_path}.0"),
                                first.0,
                                first.1,
                            ));
                            g
                        }
                        _ => Node {
                            path: child_path,
                            kind: "rel".into(),
                            agg: "exists".into(),
                            agg_op: ">=".into(),
                            ..Node::default()
                        },
                    };
                    group.children.push(child);
                }
            }
            _ => {}
        }
        self.renumber("r");
    }

    /// Whether a condition still waits for its value (blank where its operator needs one): the
    /// builder says so instead of counting.
    pub fn waits_for_a_value(&self) -> bool {
        let blank = |op: &str, v: &str, v2: &str| match op {
            "is_null" | "is_not_null" | "" => false,
            "between" => v.trim().is_empty() || v2.trim().is_empty(),
            _ => v.trim().is_empty(),
        };
        match self.kind.as_str() {
            "cond" => blank(&self.op, &self.value, &self.value2),
            "rel" => {
                (!matches!(self.agg.as_str(), "exists" | "")
                    && blank(&self.agg_op, &self.agg_value, &self.agg_value2))
                    || self.where_.as_ref().is_some_and(|w| w.waits_for_a_value())
            }
            _ => self.children.iter().any(Node::waits_for_a_value),
        }
    }

    /// The filter JSON this tree stands for. `kind_of(model, column)` says what a column
    /// holds (`bool`, `integer`...), to send booleans as booleans; other values go as the text
    /// typed, which the service casts to the column's type (or refuses, naming the node).
    /// Groups left empty are dropped; an empty root is `None`.
    pub fn to_filter(&self, model: &str, kind_of: &dyn Fn(&str, &str) -> String) -> Option<Value> {
        let inner = match self.kind.as_str() {
            "and" | "or" => {
                let children: Vec<Value> = self
                    .children
                    .iter()
                    .filter_map(|c| c.to_filter(model, kind_of))
                    .collect();
                if children.is_empty() {
                    return None;
                }
                json!({ self.kind.clone(): children })
            }
            "rel" => {
                let mut rel = Map::new();
                rel.insert("related".into(), json!(self.model));
                rel.insert("on".into(), json!([[self.local, self.remote]]));
                if let Some(w) = self
                    .where_
                    .as_ref()
                    .and_then(|w| w.to_filter(&self.model, kind_of))
                {
                    rel.insert("where".into(), w);
                }
                if self.agg != "exists" && !self.agg.is_empty() {
                    let column_kind = kind_of(&self.model, &self.agg_column);
                    let mut agg = Map::new();
                    agg.insert("fn".into(), json!(self.agg));
                    if self.agg != "count" {
                        agg.insert("column".into(), json!(self.agg_column));
                    }
                    agg.insert("op".into(), json!(self.agg_op));
                    let kind = if self.agg == "count" {
                        "integer"
                    } else {
                        &column_kind
                    };
                    if let Some(v) = operand(
                        &self.agg_op,
                        &self.agg_value,
                        &self.agg_value2,
                        "days",
                        kind,
                    ) {
                        agg.insert("value".into(), v);
                    }
                    rel.insert("aggregate".into(), Value::Object(agg));
                }
                Value::Object(rel)
            }
            _ => {
                let mut cond = Map::new();
                cond.insert("column".into(), json!(self.column));
                cond.insert("op".into(), json!(self.op));
                let kind = kind_of(model, &self.column);
                if let Some(v) = operand(&self.op, &self.value, &self.value2, &self.unit, &kind) {
                    cond.insert("value".into(), v);
                }
                Value::Object(cond)
            }
        };
        Some(if self.not {
            json!({ "not": inner })
        } else {
            inner
        })
    }

    /// The builder's tree for a stored filter (to show a segment, or to start from a copy).
    /// Nodes the builder cannot show (several join pairs) keep their first pair.
    pub fn from_filter(filter: &Value, path: &str) -> Node {
        let Some(map) = filter.as_object() else {
            return Node::group(path, "and");
        };
        if let Some(inner) = map.get("not") {
            let mut node = Self::from_filter(inner, path);
            node.not = !node.not;
            return node;
        }
        for kind in ["and", "or"] {
            if let Some(Value::Array(items)) = map.get(kind) {
                let mut node = Node::group(path, kind);
                node.children = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Self::from_filter(item, &format!("{path}.{i}")))
                    .collect();
                return node;
            }
        }
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        if let Some(model) = map.get("related") {
            let pair = map
                .get("on")
                .and_then(|on| on.get(0))
                .cloned()
                .unwrap_or_default();
            let agg = map.get("aggregate");
            let (agg_value, agg_value2) = values_of(
                &text(agg.and_then(|a| a.get("op"))),
                agg.and_then(|a| a.get("value")),
            );
            let mut node = Node {
                path: path.to_string(),
                kind: "rel".into(),
                model: text(Some(model)),
                local: text(pair.get(0)),
                remote: text(pair.get(1)),
                agg: agg.map_or("exists".into(), |a| text(a.get("fn"))),
                agg_column: text(agg.and_then(|a| a.get("column"))),
                agg_op: agg.map_or(">=".into(), |a| text(a.get("op"))),
                agg_value,
                agg_value2,
                ..Node::default()
            };
            if let Some(w) = map.get("where") {
                let wpath = format!("{path}.w");
                let mut group = Self::from_filter(w, &wpath);
                if !matches!(group.kind.as_str(), "and" | "or") || group.not {
                    let mut child = group;
                    child.renumber(&format!("{wpath}.0"));
                    group = Node::group(&wpath, "and");
                    group.children.push(child);
                }
                node.where_ = Some(Box::new(group));
            }
            return node;
        }
        let value = map.get("value");
        let (unit, within) = match value.and_then(Value::as_object) {
            Some(o) if o.contains_key("hours") => ("hours", o.get("hours")),
            Some(o) => ("days", o.get("days")),
            None => ("days", None),
        };
        let (v1, v2) = match within {
            Some(n) => (n.to_string(), String::new()),
            None => values_of(&text(map.get("op")), value),
        };
        Node {
            path: path.to_string(),
            kind: "cond".into(),
            column: text(map.get("column")),
            op: text(map.get("op")),
            value: v1,
            value2: v2,
            unit: unit.into(),
            ..Node::default()
        }
    }
}

/// A stored value as the form's inputs hold it: `between`'s bounds in two inputs, a list one
/// item per line.
fn values_of(op: &str, value: Option<&Value>) -> (String, String) {
    let one = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match value {
        None | Some(Value::Null) => (String::new(), String::new()),
        Some(Value::Array(items)) if op == "between" && items.len() == 2 => {
            (one(&items[0]), one(&items[1]))
        }
        Some(Value::Array(items)) => (
            items.iter().map(one).collect::<Vec<_>>().join("\n"),
            String::new(),
        ),
        Some(v) => (one(v), String::new()),
    }
}

/// A condition's value as filter JSON, from the inputs: none for the null checks, a list for
/// `in` (one value per line), a pair for `between`, `{"days": N}` for `within_last`.
fn operand(op: &str, value: &str, value2: &str, unit: &str, kind: &str) -> Option<Value> {
    let scalar = |text: &str| -> Value {
        let text = text.trim();
        match (kind, text) {
            ("bool", "true") => Value::Bool(true),
            ("bool", "false") => Value::Bool(false),
            _ => Value::String(text.to_string()),
        }
    };
    match op {
        "is_null" | "is_not_null" => None,
        "in" | "not_in" => Some(Value::Array(
            value
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(scalar)
                .collect(),
        )),
        "between" => Some(json!([scalar(value), scalar(value2)])),
        "within_last" => {
            let unit = if unit == "hours" { "hours" } else { "days" };
            Some(match value.trim().parse::<i64>() {
                Ok(n) => json!({ unit: n }),
                Err(_) => json!({ unit: value.trim() }),
            })
        }
        _ => Some(scalar(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn kinds(_model: &str, column: &str) -> String {
        match column {
            "subscribed" => "bool".into(),
            "age" | "amount" => "integer".into(),
            _ => "text".into(),
        }
    }

    #[test]
    fn a_form_becomes_the_filter_it_shows() {
        let form = fields(&[
            ("r.kind", "and"),
            ("r.0.kind", "cond"),
            ("r.0.column", "country"),
            ("r.0.op", "in"),
            ("r.0.value", "FR\nBE\n"),
            ("r.1.kind", "cond"),
            ("r.1.column", "subscribed"),
            ("r.1.op", "="),
            ("r.1.value", "true"),
            ("r.2.kind", "or"),
            ("r.2.not", "on"),
            ("r.2.0.kind", "cond"),
            ("r.2.0.column", "age"),
            ("r.2.0.op", "between"),
            ("r.2.0.value", "18"),
            ("r.2.0.value2", "30"),
            ("r.3.kind", "rel"),
            ("r.3.model", "orders"),
            ("r.3.local", "id"),
            ("r.3.remote", "customer_id"),
            ("r.3.agg", "count"),
            ("r.3.agg_op", ">="),
            ("r.3.agg_value", "3"),
            ("r.3.w.kind", "and"),
            ("r.3.w.0.kind", "cond"),
            ("r.3.w.0.column", "ordered_at"),
            ("r.3.w.0.op", "within_last"),
            ("r.3.w.0.value", "90"),
            ("r.3.w.0.unit", "days"),
        ]);
        let tree = Node::from_fields(&form);
        let filter = tree.to_filter("customers", &kinds).expect("a filter");
        assert_eq!(
            filter,
            json!({"and": [
                {"column": "country", "op": "in", "value": ["FR", "BE"]},
                {"column": "subscribed", "op": "=", "value": true},
                {"not": {"or": [{"column": "age", "op": "between", "value": ["18", "30"]}]}},
                {"related": "orders", "on": [["id", "customer_id"]],
                 "where": {"and": [{"column": "ordered_at", "op": "within_last", "value": {"days": 90}}]},
                 "aggregate": {"fn": "count", "op": ">=", "value": "3"}},
            ]})
        );
        // And back: the stored filter shows as the same tree.
        let again = Node::from_filter(&filter, "r");
        assert_eq!(again.to_filter("customers", &kinds), Some(filter));
    }

    #[test]
    fn buttons_add_and_remove_nodes_and_paths_follow() {
        let mut tree = Node::group("r", "and");
        tree.apply("add-cond:r", ("country", "="));
        tree.apply("add-group:r", ("country", "="));
        tree.apply("add-rel:r", ("country", "="));
        tree.apply("add-where:r.2", ("country", "="));
        tree.apply("add-cond:r.2.w", ("country", "="));
        assert_eq!(tree.children.len(), 3);
        assert_eq!(tree.children[1].children[0].path, "r.1.0");
        assert_eq!(
            tree.children[2]
                .where_
                .as_ref()
                .map(|w| w.children[0].path.clone()),
            Some("r.2.w.0".to_string())
        );
        tree.apply("remove:r.0", ("country", "="));
        assert_eq!(tree.children[0].kind, "or");
        assert_eq!(tree.children[1].path, "r.1");
        assert_eq!(
            tree.children[1]
                .where_
                .as_ref()
                .map(|w| w.children[0].path.clone()),
            Some("r.1.w.0".to_string())
        );
        tree.apply("remove:r.1.w", ("country", "="));
        assert!(tree.children[1].where_.is_none());
        tree.apply("remove:r", ("country", "="));
        assert_eq!(tree.path, "r", "the root stays");
    }

    #[test]
    fn an_empty_tree_is_no_filter_and_odd_paths_are_ignored() {
        let tree = Node::from_fields(&fields(&[("r.kind", "and"), ("r.x.kind", "cond")]));
        assert!(tree.children.is_empty());
        assert!(!tree.waits_for_a_value());
        assert_eq!(tree.to_filter("m", &kinds), None);
        let mut tree = Node::group("r", "and");
        tree.apply("add-cond:r", ("country", "="));
        assert!(tree.waits_for_a_value());
        tree.children[0].op = "is_null".into();
        assert!(!tree.waits_for_a_value());
    }
}
