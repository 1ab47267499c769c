//! The one validation error of this crate.

use std::fmt;

/// A value that breaks a rule. Displays as
/// `bucket "My_Bucket" is invalid: S3 bucket names use lowercase letters, ...`.
///
/// `field` is the name the user typed it under (the API field, which is also the CLI flag without
/// its dashes), so every front end can point at it. Values are quoted with Rust's debug escaping so
/// control characters show as `\u{0}` instead of corrupting a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
    /// Where in a structured value (a segment filter's `and[2].value`) the problem is; `value`
    /// is then that part, not the whole.
    pub at: Option<String>,
}

impl InvalidValue {
    pub fn new(field: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut value = value.into();
        // A 1 MB value makes an unreadable error; the start is enough to recognise it.
        if value.len() > 200 {
            let mut cut = 200;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
            value.push('…');
        }
        Self {
            field,
            value,
            reason: reason.into(),
            at: None,
        }
    }

    /// The same error, located at `path` inside the field's value.
    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.at = Some(path.into());
        self
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            None => write!(
                f,
                "{} {:?} is invalid: {}",
                self.field, self.value, self.reason
            ),
            Some(at) => write!(
                f,
                "{} is invalid at {at}: {} (found {})",
                self.field,
                self.reason,
                self.value.escape_debug(),
            ),
        }
    }
}

impl std::error::Error for InvalidValue {}

/// The first control character in `s`, if any, for messages that name it.
pub(crate) fn first_control_char(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}
