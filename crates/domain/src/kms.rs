//! KMS key identifiers for SSE-KMS.

use crate::arn::Partition;
use crate::error::InvalidValue;
use std::fmt;

/// A KMS key as S3's `x-amz-server-side-encryption-aws-kms-key-id` accepts it: a key ARN, an alias
/// ARN, a key id (a UUID or a multi-Region `mrk-` id) or an alias name (`alias/...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KmsKeyId {
    value: String,
    kind: KmsKeyKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KmsKeyKind {
    /// `arn:aws:kms:REGION:ACCOUNT:key/ID`
    KeyArn {
        partition: Partition,
        region: String,
        account: String,
    },
    /// `arn:aws:kms:REGION:ACCOUNT:alias/NAME`
    AliasArn {
        partition: Partition,
        region: String,
        account: String,
        alias: String,
    },
    /// A bare key id: `1234abcd-12ab-34cd-56ef-1234567890ab` or `mrk-...`.
    KeyId,
    /// `alias/NAME`
    Alias,
}

const SHAPE: &str = "expected a KMS key ARN (\"arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"), a key id, or an alias (\"alias/exports\")";

impl KmsKeyId {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let fail = |reason: String| Err(InvalidValue::new("kms_key_id", value, reason));
        let kind = if let Some(rest) = value.strip_prefix("arn:") {
            let fields: Vec<&str> = rest.splitn(5, ':').collect();
            if fields.len() != 5 {
                return fail(SHAPE.into());
            }
            let (partition, service, region, account, resource) =
                (fields[0], fields[1], fields[2], fields[3], fields[4]);
            let Some(partition) = [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov]
                .into_iter()
                .find(|p| p.as_str() == partition)
            else {
                return fail(format!("{SHAPE}: unknown partition {partition:?}"));
            };
            if service != "kms" {
                return fail(format!("{SHAPE}: the service is \"kms\", not {service:?}"));
            }
            if crate::region::Region::parse(region).is_err() {
                return fail(format!("{SHAPE}: {region:?} is not a region code"));
            }
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return fail(format!(
                    "{SHAPE}: the account id is 12 digits, found {account:?}"
                ));
            }
            let (region, account) = (region.to_string(), account.to_string());
            if let Some(id) = resource.strip_prefix("key/") {
                if !is_key_id(id) {
                    return fail(format!("{SHAPE}: {id:?} is not a key id"));
                }
                KmsKeyKind::KeyArn {
                    partition,
                    region,
                    account,
                }
            } else if let Some(alias) = resource.strip_prefix("alias/") {
                if !is_alias_name(alias) {
                    return fail(format!("{SHAPE}: {alias:?} is not an alias name"));
                }
                let alias = format!("alias/{alias}");
                KmsKeyKind::AliasArn {
                    partition,
                    region,
                    account,
                    alias,
                }
            } else {
                return fail(format!(
                    "{SHAPE}: the resource is \"key/...\" or \"alias/...\""
                ));
            }
        } else if let Some(alias) = value.strip_prefix("alias/") {
            if !is_alias_name(alias) {
                return fail(format!(
                    "{SHAPE}: alias names use letters, digits, '/', '_' and '-'"
                ));
            }
            KmsKeyKind::Alias
        } else if is_key_id(value) {
            KmsKeyKind::KeyId
        } else {
            return fail(SHAPE.into());
        };
        Ok(Self {
            value: value.to_string(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn kind(&self) -> &KmsKeyKind {
        &self.kind
    }

    /// The region written in the ARN, for ARN forms: SSE-KMS needs a key in the bucket's region.
    pub fn region(&self) -> Option<&str> {
        match &self.kind {
            KmsKeyKind::KeyArn { region, .. } | KmsKeyKind::AliasArn { region, .. } => Some(region),
            KmsKeyKind::KeyId | KmsKeyKind::Alias => None,
        }
    }
}

fn is_key_id(id: &str) -> bool {
    is_uuid(id)
        || id
            .strip_prefix("mrk-")
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_alias_name(name: &str) -> bool {
    (1..=250).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_' || b == b'-')
}

impl fmt::Display for KmsKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        for ok in [
            "arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:eu-west-3:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws-cn:kms:cn-north-1:123456789012:alias/exports",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/exports/partner_a",
        ] {
            KmsKeyId::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let key = KmsKeyId::parse(
            "arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .expect("valid");
        assert_eq!(key.region(), Some("eu-west-3"));
    }

    #[test]
    fn invalid_keys_say_why() {
        let cases = [
            ("my-key", "expected a KMS key ARN"),
            (
                "1234abcd-12ab-34cd-56ef-1234567890a",
                "expected a KMS key ARN",
            ),
            (
                "arn:aws:s3:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "the service is \"kms\"",
            ),
            (
                "arn:aws:kms:eu-west-3:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "12 digits",
            ),
            (
                "arn:aws:kms:nowhere:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "not a region code",
            ),
            (
                "arn:aws:kms:eu-west-3:123456789012:key/nope",
                "\"nope\" is not a key id",
            ),
            (
                "arn:aws:kms:eu-west-3:123456789012:grant/x",
                "\"key/...\" or \"alias/...\"",
            ),
            ("alias/has space", "alias names use"),
        ];
        for (value, expected) in cases {
            let err = KmsKeyId::parse(value).expect_err(value);
            assert_eq!(err.field, "kms_key_id");
            assert!(err.to_string().contains(expected), "{value}: {err}");
        }
    }
}
