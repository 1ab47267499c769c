//! JSON from users, read strictly: a key given twice in one object is an error, not "the last
//! one wins".
//!
//! `serde_json::Value` keeps the last of two equal keys, so `{"column": "id", "op": "=",
//! "value": 1, "value": 2}` would compare with 2 while a reviewer reading the text sees 1, and
//! two `"and"` keys would silently drop the first group. Every JSON document a user writes
//! (segment filters today, API bodies later) goes through [`parse_strict`].

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Parses `text` as JSON, refusing duplicate keys. The error names the key and its path from
/// `root` (`filter.and[0]`) and, from serde_json, the line and column.
pub fn parse_strict(text: &str, root: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Strict { path: root }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A value at `path`.
struct Strict<'p> {
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, items.len());
            match seq.next_element_seed(Strict { path: &path })? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} appears twice in the object at {}: keep one (with duplicate keys, what is read differs from what a person reads)",
                    self.path
                )));
            }
            let path = format!("{}.{key}", self.path);
            let value = map.next_value_seed(Strict { path: &path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let err = parse_strict(
            r#"{"and":[{"column":"id","op":"=","value":1}],"and":[{"column":"id","op":">","value":0}]}"#,
            "filter",
        )
        .expect_err("two and");
        let text = err.to_string();
        assert!(
            text.contains("the key \"and\" appears twice in the object at filter"),
            "{text}"
        );
        let err = parse_strict(
            r#"{"or":[{"x":1},{"column":"id","op":"=","value":1,"value":2}]}"#,
            "filter",
        )
        .expect_err("two values");
        assert!(
            err.to_string()
                .contains("\"value\" appears twice in the object at filter.or[1]"),
            "{err}"
        );
    }

    #[test]
    fn documents_without_duplicates_read_as_serde_json_reads_them() {
        let text = r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":18446744073709551615}"#;
        assert_eq!(
            parse_strict(text, "doc").expect("valid"),
            serde_json::from_str::<Value>(text).expect("valid")
        );
        // The same key in two different objects is fine.
        assert!(parse_strict(r#"{"a":{"k":1},"b":{"k":2}}"#, "doc").is_ok());
        assert!(parse_strict("{} x", "doc").is_err(), "trailing text");
    }
}
