//! S3 bucket names.

use crate::error::InvalidValue;
use std::fmt;

/// A bucket name that S3 accepts for a general purpose bucket.
///
/// The rules are AWS's ("Bucket naming rules" in the S3 user guide): 3-63 characters; lowercase
/// letters, digits, `.` and `-`; starting and ending with a letter or digit; no `..`; not shaped
/// like an IPv4 address; none of the prefixes and suffixes S3 reserves for access points and
/// directory buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketName(String);

const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

impl BucketName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let fail = |reason: String| Err(InvalidValue::new("bucket", value, reason));
        let len = value.len();
        if !(3..=63).contains(&len) {
            return fail(format!(
                "S3 bucket names have 3 to 63 characters (this one has {len})"
            ));
        }
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
        {
            let hint = if c.is_ascii_uppercase() {
                format!(" (did you mean {:?}?)", value.to_ascii_lowercase())
            } else {
                String::new()
            };
            return fail(format!(
                "S3 bucket names use lowercase letters, digits, '.' and '-', not {c:?}{hint}"
            ));
        }
        let bytes = value.as_bytes();
        if !bytes[0].is_ascii_alphanumeric() || !bytes[len - 1].is_ascii_alphanumeric() {
            return fail("S3 bucket names start and end with a letter or a digit".into());
        }
        if value.contains("..") {
            return fail("S3 bucket names cannot contain two adjacent dots".into());
        }
        if value.parse::<std::net::Ipv4Addr>().is_ok() {
            return fail("S3 bucket names cannot be formatted as an IP address".into());
        }
        if let Some(p) = RESERVED_PREFIXES.iter().find(|p| value.starts_with(*p)) {
            return fail(format!("S3 reserves bucket names starting with {p:?}"));
        }
        if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| value.ends_with(*s)) {
            return fail(format!("S3 reserves bucket names ending with {s:?}"));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for ok in [
            "abc",
            "my-bucket",
            "my.bucket.2024",
            "a1b",
            &"a".repeat(63),
            "192.168.5.4x",
        ] {
            BucketName::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn invalid_names_say_why() {
        let cases = [
            ("ab", "3 to 63 characters (this one has 2)"),
            (
                &"a".repeat(64) as &str,
                "3 to 63 characters (this one has 64)",
            ),
            ("My_Bucket", "not 'M' (did you mean \"my_bucket\"?)"),
            ("my_bucket", "not '_'"),
            ("my bucket", "not ' '"),
            ("-bucket", "start and end with a letter or a digit"),
            ("bucket-", "start and end with a letter or a digit"),
            ("my..bucket", "two adjacent dots"),
            ("192.168.5.4", "formatted as an IP address"),
            ("xn--bucket", "starting with \"xn--\""),
            ("sthree-bucket", "starting with \"sthree-\""),
            ("bucket-s3alias", "ending with \"-s3alias\""),
            ("bucket--ol-s3", "ending with \"--ol-s3\""),
            ("bucket--x-s3", "ending with \"--x-s3\""),
            ("bücket", "not 'ü'"),
        ];
        for (value, expected) in cases {
            let err = BucketName::parse(value).expect_err(value);
            assert_eq!(err.field, "bucket");
            let text = err.to_string();
            assert!(text.contains(expected), "{value}: {text}");
            assert!(text.starts_with("bucket \""), "{text}");
        }
    }
}
