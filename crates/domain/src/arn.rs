//! ARNs: AWS partitions and IAM role ARNs.

use crate::error::InvalidValue;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An AWS partition: the `aws` in `arn:aws:...`. Regions of China and GovCloud live in their own
/// partitions, and an ARN from one never works in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Partition {
    #[serde(rename = "aws")]
    Aws,
    #[serde(rename = "aws-cn")]
    AwsCn,
    #[serde(rename = "aws-us-gov")]
    AwsUsGov,
}

impl Partition {
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "aws" => Some(Partition::Aws),
            "aws-cn" => Some(Partition::AwsCn),
            "aws-us-gov" => Some(Partition::AwsUsGov),
            _ => None,
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ARN of an IAM role: `arn:<partition>:iam::<12-digit account>:role/<optional/path/>name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleArn {
    arn: String,
    partition: Partition,
    account: String,
    name_start: usize,
}

const SHAPE: &str = "expected an IAM role ARN like \"arn:aws:iam::123456789012:role/wharf-export\"";

impl RoleArn {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let fail = |reason: String| Err(InvalidValue::new("role_arn", value, reason));
        let fields: Vec<&str> = value.splitn(6, ':').collect();
        if fields.len() != 6 || fields[0] != "arn" {
            return fail(SHAPE.into());
        }
        let (partition, service, region, account, resource) =
            (fields[1], fields[2], fields[3], fields[4], fields[5]);
        let Some(partition) = Partition::parse(partition) else {
            return fail(format!(
                "unknown partition {partition:?}: use \"aws\", \"aws-cn\" or \"aws-us-gov\""
            ));
        };
        if service == "sts" && resource.starts_with("assumed-role/") {
            return fail(format!(
                "this is an assumed-role session ARN; give the role's own ARN, \"arn:{partition}:iam::{account}:role/<name>\""
            ));
        }
        if service != "iam" {
            return fail(format!("{SHAPE}: the service is \"iam\", not {service:?}"));
        }
        if !region.is_empty() {
            return fail(format!(
                "{SHAPE}: IAM ARNs have no region (\"iam::\"), found {region:?}"
            ));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return fail(format!(
                "{SHAPE}: the account id is 12 digits, found {account:?}"
            ));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            let kind = resource.split('/').next().unwrap_or_default();
            return fail(format!(
                "this ARN names an IAM {kind:?}, not a role: create a role for wharf and give its ARN"
            ));
        };
        let (path, name) = match path_and_name.rsplit_once('/') {
            Some((path, name)) => (Some(path), name),
            None => (None, path_and_name),
        };
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        {
            return fail(format!(
                "role names have 1 to 64 characters from letters, digits and '+=,.@_-', found {name:?}"
            ));
        }
        if let Some(path) = path
            && (path.len() > 510
                || path.split('/').any(|segment| {
                    segment.is_empty() || !segment.bytes().all(|b| (0x21..=0x7e).contains(&b))
                }))
        {
            return fail(format!(
                "role paths are '/'-separated words of printable ASCII, found {path:?}"
            ));
        }
        let name_start = value.len() - name.len();
        Ok(Self {
            arn: value.to_string(),
            partition,
            account: account.to_string(),
            name_start,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The 12-digit id of the account that owns the role.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The role's name, without its path.
    pub fn name(&self) -> &str {
        &self.arn[self.name_start..]
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_arns() {
        let arn = RoleArn::parse("arn:aws:iam::123456789012:role/wharf-export").expect("valid");
        assert_eq!(arn.account(), "123456789012");
        assert_eq!(arn.name(), "wharf-export");
        assert_eq!(arn.partition(), Partition::Aws);
        let arn = RoleArn::parse(
            "arn:aws-cn:iam::123456789012:role/service-role/team/Wharf+Role=1,x.y@z_",
        )
        .expect("valid");
        assert_eq!(arn.name(), "Wharf+Role=1,x.y@z_");
        assert_eq!(arn.partition(), Partition::AwsCn);
        let arn = RoleArn::parse("arn:aws-us-gov:iam::000000000001:role/r").expect("valid");
        assert_eq!(arn.partition(), Partition::AwsUsGov);
    }

    #[test]
    fn invalid_arns_say_why() {
        let cases = [
            ("wharf-export", "expected an IAM role ARN"),
            ("arn:aws:iam::123456789012", "expected an IAM role ARN"),
            (
                "arn:azure:iam::123456789012:role/x",
                "unknown partition \"azure\"",
            ),
            ("arn:aws:s3:::bucket/x", "the service is \"iam\""),
            (
                "arn:aws:iam:us-east-1:123456789012:role/x",
                "IAM ARNs have no region",
            ),
            (
                "arn:aws:iam::12345678901:role/x",
                "12 digits, found \"12345678901\"",
            ),
            ("arn:aws:iam::1234567890ab:role/x", "12 digits"),
            (
                "arn:aws:iam::123456789012:user/wharf",
                "names an IAM \"user\", not a role",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/r/session",
                "assumed-role session ARN",
            ),
            ("arn:aws:iam::123456789012:role/", "role names have 1 to 64"),
            (
                "arn:aws:iam::123456789012:role/has space",
                "role names have 1 to 64",
            ),
            (
                &format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65)) as &str,
                "role names have 1 to 64",
            ),
            ("arn:aws:iam::123456789012:role//r", "role paths"),
            ("arn:aws:iam::123456789012:role/pa\u{7}th/r", "role paths"),
        ];
        for (value, expected) in cases {
            let err = RoleArn::parse(value).expect_err(value);
            assert_eq!(err.field, "role_arn");
            assert!(err.to_string().contains(expected), "{value}: {err}");
        }
    }
}
