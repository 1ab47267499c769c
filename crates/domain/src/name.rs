//! Names of user objects (destinations now; models, syncs later).

use crate::error::InvalidValue;
use std::fmt;

/// A name a user gives an object: 1-63 characters, lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter or digit. Names appear in object keys, STS session names and URLs, so
/// they are kept to characters that are safe in all three.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 63;

    pub fn parse(field: &'static str, value: &str) -> Result<Self, InvalidValue> {
        let fail = |reason: &str| Err(InvalidValue::new(field, value, reason));
        if value.is_empty() {
            return fail("a name cannot be empty");
        }
        if value.len() > Self::MAX_LEN {
            return fail("a name has at most 63 characters");
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return fail(
                "names use lowercase letters, digits, '-' and '_' (for example \"partner-exports\")",
            );
        }
        if !value.as_bytes()[0].is_ascii_alphanumeric() {
            return fail("a name starts with a letter or a digit");
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Makes names distinct in order: a name seen before gets `_2`, `_3`... (`a`, `a`, `a_2` become
/// `a`, `a_2`, `a_2_2`), so every column keeps its own field when names are rewritten for a
/// format with stricter rules.
pub fn make_unique(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for base in names {
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(Name::parse("name", "partner-exports_2").is_ok());
        for bad in [
            "",
            "Partner",
            "a b",
            "-lead",
            "_lead",
            "a/b",
            "é",
            &"x".repeat(64),
        ] {
            let err = Name::parse("name", bad).expect_err(bad);
            assert_eq!(err.field, "name");
        }
    }
}
