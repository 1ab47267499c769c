//! The key prefix of a destination: the "folder" in a bucket that wharf writes under.

use crate::error::{InvalidValue, first_control_char};
use std::fmt;

/// A key prefix, empty (the bucket's root) or ending in `/`: the user may type `exports/daily` or
/// `exports/daily/`, and wharf keeps `exports/daily/`. Every object wharf writes, the connection
/// test's probe included, lies under it, and the permission policy grants `BUCKET/PREFIX*` only.
///
/// Rules, each for a reason:
/// - no leading `/` and no empty segment (`a//b`): S3 keeps them literally, and most tools show
///   them as folders named "" that nobody can click;
/// - no `.` or `..` segment, also percent-encoded (`%2e%2e`): tools that map keys to paths
///   (`aws s3 sync`, Spark, the AWS console's download) would resolve them out of the folder;
/// - no control characters or `\`: they break terminals, XML listings and Windows tools;
/// - no `*`, `?` or `${`: the prefix is written into an IAM policy resource, where they are
///   wildcards and policy variables and would widen the grant;
/// - at most 512 bytes, leaving room under S3's 1024-byte key limit for file names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub const MAX_LEN: usize = 512;

    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let fail = |reason: String| Err(InvalidValue::new("prefix", value, reason));
        if value.is_empty() {
            return Ok(Self::default());
        }
        if value.starts_with('/') {
            return fail(format!(
                "a prefix does not start with '/' (did you mean {:?}?)",
                value.trim_start_matches('/')
            ));
        }
        if let Some(c) = first_control_char(value) {
            return fail(format!(
                "a prefix cannot contain the control character {c:?}"
            ));
        }
        for (bad, why) in [
            ('\\', "'\\' (use '/' to separate folders)"),
            (
                '*',
                "'*' (it is a wildcard in the IAM policy wharf generates)",
            ),
            (
                '?',
                "'?' (it is a wildcard in the IAM policy wharf generates)",
            ),
        ] {
            if value.contains(bad) {
                return fail(format!("a prefix cannot contain {why}"));
            }
        }
        if value.contains("${") {
            return fail(
                "a prefix cannot contain \"${\" (it starts an IAM policy variable)".into(),
            );
        }
        let trimmed = value.strip_suffix('/').unwrap_or(value);
        for segment in trimmed.split('/') {
            if segment.is_empty() {
                return fail("a prefix cannot contain an empty folder name (\"//\")".into());
            }
            if is_dot_segment(segment) {
                return fail(format!(
                    "a prefix cannot contain a {segment:?} folder name: tools that map keys to paths would leave the folder"
                ));
            }
        }
        let normalized = format!("{trimmed}/");
        if normalized.len() > Self::MAX_LEN {
            return fail(format!(
                "a prefix has at most {} bytes (this one has {})",
                Self::MAX_LEN,
                normalized.len()
            ));
        }
        Ok(Self(normalized))
    }

    /// The prefix as keys start with it: `""` or `something/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decodes only `%2e`/`%2E` (the encodings of `.`), which is all the dot-segment check needs.
fn percent_decode_dots(segment: &str) -> String {
    segment.replace("%2e", ".").replace("%2E", ".")
}

/// Whether a key segment acts as `.` or `..` for a tool that decodes percent-escapes or
/// normalises Unicode (NFKC) before mapping keys to paths: `..`, `%2e%2e`, fullwidth `．．`,
/// the one-dot leader `․`, or a fullwidth slash that splits off a `..` (`a／..`).
pub(crate) fn is_dot_segment(segment: &str) -> bool {
    use unicode_normalization::UnicodeNormalization as _;
    let normalized: String = percent_decode_dots(segment).nfkc().collect();
    percent_decode_dots(&normalized)
        .split(['/', '\\'])
        .any(|part| part == "." || part == "..")
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_to_a_trailing_slash() {
        let p = |v: &str| KeyPrefix::parse(v).map(|p| p.as_str().to_string());
        assert_eq!(p(""), Ok(String::new()));
        assert_eq!(p("exports"), Ok("exports/".into()));
        assert_eq!(p("exports/daily/"), Ok("exports/daily/".into()));
        assert_eq!(p("clients/ünïcode-é/"), Ok("clients/ünïcode-é/".into()));
        assert_eq!(p("a.b/..c/"), Ok("a.b/..c/".into()));
    }

    #[test]
    fn invalid_prefixes_say_why() {
        let cases = [
            (
                "/exports",
                "does not start with '/' (did you mean \"exports\"?)",
            ),
            ("a//b", "empty folder name"),
            ("a/./b", "\".\" folder name"),
            ("../b", "\"..\" folder name"),
            ("a/..", "\"..\" folder name"),
            ("a/%2e%2e/b", "\"%2e%2e\" folder name"),
            // Fullwidth and compatibility dots that NFKC makes into "..".
            ("a/\u{ff0e}\u{ff0e}/b", "folder name"),
            ("\u{ff0e}\u{ff0e}/b", "folder name"),
            ("a/\u{2024}\u{2024}/b", "folder name"),
            ("a/x\u{ff0f}..\u{ff0f}y/b", "folder name"),
            ("a/%2E/b", "\"%2E\" folder name"),
            ("a\\b", "'\\'"),
            ("a\u{0}b", "control character '\\0'"),
            ("a\nb", "control character '\\n'"),
            ("a*", "wildcard"),
            ("a?b", "wildcard"),
            ("team-${aws:username}", "policy variable"),
            (
                &"a".repeat(512) as &str,
                "at most 512 bytes (this one has 513)",
            ),
        ];
        for (value, expected) in cases {
            let err = KeyPrefix::parse(value).expect_err(value);
            assert_eq!(err.field, "prefix");
            assert!(err.to_string().contains(expected), "{value:?}: {err}");
        }
    }
}
