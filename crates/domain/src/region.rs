//! AWS region codes.

use crate::arn::Partition;
use crate::error::InvalidValue;
use std::fmt;

/// An AWS region code such as `eu-west-3`, `us-gov-west-1` or `cn-north-1`.
///
/// The check is on shape, not on a list: AWS opens regions every year and a list baked into a
/// binary would reject a real one. Shape: lowercase words joined by `-`, at least two words before
/// a final number (`us-east-1`, `ap-southeast-5`, `us-isob-east-1`, `eusc-de-east-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let parts: Vec<&str> = value.split('-').collect();
        let shaped = parts.len() >= 3
            && value.len() <= 32
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts.last().is_some_and(|n| {
                !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
            });
        if !shaped {
            let hint = if value.bytes().any(|b| b.is_ascii_uppercase()) {
                format!(" (did you mean {:?}?)", value.to_ascii_lowercase())
            } else if value.ends_with(|c: char| c.is_ascii_lowercase()) {
                " (a region code ends with its number, e.g. \"us-east-1\"; availability zones like \"us-east-1a\" are not regions)".to_string()
            } else {
                String::new()
            };
            return Err(InvalidValue::new(
                "region",
                value,
                format!("expected an AWS region code like \"us-east-1\" or \"eu-west-3\"{hint}"),
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The partition a region belongs to, which decides the `arn:<partition>:` of every ARN in it.
    pub fn partition(&self) -> Partition {
        if self.0.starts_with("cn-") {
            Partition::AwsCn
        } else if self.0.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else {
            Partition::Aws
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        for ok in [
            "us-east-1",
            "eu-west-3",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-5",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            Region::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let cases = [
            ("US-EAST-1", "did you mean \"us-east-1\"?"),
            ("us-east-1a", "availability zones"),
            ("useast1", "expected an AWS region code"),
            ("us-east", "expected an AWS region code"),
            ("", "expected an AWS region code"),
            ("us-east-1\n", "expected an AWS region code"),
            ("us--1", "expected an AWS region code"),
        ];
        for (value, expected) in cases {
            let err = Region::parse(value).expect_err(value);
            assert_eq!(err.field, "region");
            assert!(err.to_string().contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn partitions() {
        let p = |r: &str| Region::parse(r).map(|r| r.partition()).ok();
        assert_eq!(p("eu-west-1"), Some(Partition::Aws));
        assert_eq!(p("cn-northwest-1"), Some(Partition::AwsCn));
        assert_eq!(p("us-gov-east-1"), Some(Partition::AwsUsGov));
    }
}
