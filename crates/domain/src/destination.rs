//! The S3 destination: what a user writes ([`S3DestinationSpec`]) and what the runtime trusts
//! ([`S3Destination`]).

use crate::arn::RoleArn;
use crate::bucket::BucketName;
use crate::endpoint::Endpoint;
use crate::error::InvalidValue;
use crate::external_id::ExternalId;
use crate::kms::KmsKeyId;
use crate::name::Name;
use crate::prefix::KeyPrefix;
use crate::region::Region;
use crate::secret::Secret;
use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An S3 destination as a user describes it, before validation. Field names are the API's and,
/// with `-` for `_`, the CLI's flags.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct S3DestinationSpec {
    /// Unique name, e.g. `partner-exports`.
    pub name: String,
    /// Bucket name, e.g. `acme-exports`.
    pub bucket: String,
    /// The bucket's region, e.g. `eu-west-3`.
    pub region: String,
    /// Folder inside the bucket, e.g. `wharf/` (default: the bucket's root).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Required to add a destination; when replacing one, `None` keeps its current auth.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// Base URL of an S3-compatible service (MinIO, R2...). Access-key auth only.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `aes256` (SSE-S3) or `kms` (SSE-KMS, needs `kms_key_id`). Default: the bucket's default.
    #[serde(default)]
    pub sse: Option<String>,
    /// KMS key for `sse = kms`: key ARN, key id or alias.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Storage class of written objects, e.g. `STANDARD_IA`. Default: `STANDARD`.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Canned ACL; only `bucket-owner-full-control` is offered.
    #[serde(default)]
    pub acl: Option<String>,
    /// `crc32c`, `crc64nvme` or `when-required`. Default: `crc32c` on AWS, `when-required` on
    /// custom endpoints (many S3-compatible servers reject the newer checksum headers).
    #[serde(default)]
    pub checksum: Option<String>,
    /// Never accepted: wharf generates the External ID (a body that sends one is refused,
    /// naming this field).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<serde::de::IgnoredAny>,
}

/// How wharf authenticates to the bucket, as the user describes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSpec {
    #[serde(alias = "access-key")]
    AccessKey {
        access_key_id: String,
        /// Write-only: stored encrypted, never shown again.
        #[schema(value_type = String)]
        secret_access_key: Secret<String>,
    },
    Role {
        role_arn: String,
        /// Lifetime of each set of temporary credentials, 900 to 43200 s. Default 3600.
        #[serde(default)]
        session_duration_seconds: Option<u32>,
    },
}

impl AuthSpec {
    fn validate(self, external_id: impl FnOnce() -> ExternalId) -> Result<S3Auth, InvalidValue> {
        Ok(match self {
            AuthSpec::AccessKey {
                access_key_id,
                secret_access_key,
            } => {
                if secret_access_key.expose().trim().is_empty() {
                    return Err(InvalidValue::new(
                        "secret_access_key",
                        "",
                        "the secret access key is empty: check the variable or standard input it was read from",
                    ));
                }
                S3Auth::AccessKey {
                    access_key_id: AccessKeyId::parse(&access_key_id)?,
                    secret_access_key,
                }
            }
            AuthSpec::Role {
                role_arn,
                session_duration_seconds,
            } => {
                let role_arn = RoleArn::parse(&role_arn)?;
                let duration = session_duration_seconds.unwrap_or(DEFAULT_SESSION_DURATION_SECONDS);
                if !(900..=43_200).contains(&duration) {
                    return Err(InvalidValue::new(
                        "session_duration",
                        duration.to_string(),
                        "AWS allows role sessions of 900 to 43200 seconds (and at most the role's own maximum, 3600 unless raised)",
                    ));
                }
                S3Auth::AssumeRole {
                    role_arn,
                    external_id: external_id(),
                    session_duration_seconds: duration,
                }
            }
        })
    }
}

/// A validated S3 destination.
#[derive(Debug, Clone)]
pub struct S3Destination {
    pub name: Name,
    pub bucket: BucketName,
    pub region: Region,
    pub prefix: KeyPrefix,
    pub auth: S3Auth,
    pub endpoint: Option<Endpoint>,
    pub delivery: DeliveryOptions,
}

/// How wharf authenticates, validated. Each variant carries only its own fields.
#[derive(Debug, Clone)]
pub enum S3Auth {
    AccessKey {
        access_key_id: AccessKeyId,
        secret_access_key: Secret<String>,
    },
    AssumeRole {
        role_arn: RoleArn,
        external_id: ExternalId,
        session_duration_seconds: u32,
    },
}

impl S3Auth {
    pub fn kind(&self) -> &'static str {
        match self {
            S3Auth::AccessKey { .. } => "access-key",
            S3Auth::AssumeRole { .. } => "role",
        }
    }
}

pub const DEFAULT_SESSION_DURATION_SECONDS: u32 = 3600;

impl S3DestinationSpec {
    /// Validates a spec. `external_id` is wharf's freshly generated one (used only for role
    /// auth); `allow_private` is the operator's `--allow-private-endpoints`.
    pub fn validate(
        self,
        external_id: impl FnOnce() -> ExternalId,
        allow_private: bool,
    ) -> Result<S3Destination, InvalidValue> {
        self.validate_over(None, external_id, allow_private)
    }

    /// Validates a spec that replaces `current` (of the same name). Without `auth`, the
    /// current auth stays; a role destination that stays one keeps its External ID, since the
    /// role's trust policy names it (rotating it is its own operation).
    pub fn validate_replacing(
        self,
        current: &S3Destination,
        external_id: impl FnOnce() -> ExternalId,
        allow_private: bool,
    ) -> Result<S3Destination, InvalidValue> {
        if self.name != current.name.as_str() {
            return Err(InvalidValue::new(
                "name",
                &self.name,
                format!(
                    "a destination keeps its name; this one is {:?}",
                    current.name.as_str()
                ),
            ));
        }
        self.validate_over(Some(&current.auth), external_id, allow_private)
    }

    fn validate_over(
        self,
        current: Option<&S3Auth>,
        external_id: impl FnOnce() -> ExternalId,
        allow_private: bool,
    ) -> Result<S3Destination, InvalidValue> {
        if self.external_id.is_some() {
            return Err(InvalidValue::new(
                "external_id",
                "(not shown)",
                "the External ID is generated by wharf and cannot be set; to replace it, rotate it",
            ));
        }
        let name = Name::parse("name", &self.name)?;
        let bucket = BucketName::parse(&self.bucket)?;
        let region = Region::parse(&self.region)?;
        let prefix = KeyPrefix::parse(self.prefix.as_deref().unwrap_or(""))?;
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|e| Endpoint::parse(e, allow_private))
            .transpose()?;
        let auth = match (self.auth, current) {
            (Some(spec), current) => {
                let kept = match current {
                    Some(S3Auth::AssumeRole { external_id, .. }) => Some(external_id.clone()),
                    _ => None,
                };
                spec.validate(|| kept.unwrap_or_else(external_id))?
            }
            (None, Some(current)) => current.clone(),
            (None, None) => {
                return Err(InvalidValue::new(
                    "auth",
                    "",
                    "say how wharf authenticates: an access key, or a role to assume",
                ));
            }
        };
        if let S3Auth::AssumeRole { role_arn, .. } = &auth {
            if let Some(endpoint) = &endpoint {
                return Err(InvalidValue::new(
                    "endpoint",
                    endpoint.as_str(),
                    "a custom endpoint works with access-key auth only: role auth always talks to AWS's own STS and S3",
                ));
            }
            if role_arn.partition() != region.partition() {
                return Err(InvalidValue::new(
                    "role_arn",
                    role_arn.as_str(),
                    format!(
                        "the role is in partition \"{}\" but region {} is in \"{}\": a role can only reach buckets of its own partition",
                        role_arn.partition(),
                        region,
                        region.partition()
                    ),
                ));
            }
        }
        let delivery = DeliveryOptions::parse(
            self.sse.as_deref(),
            self.kms_key_id.as_deref(),
            self.storage_class.as_deref(),
            self.acl.as_deref(),
            self.checksum.as_deref(),
        )?;
        if let Some(ServerSideEncryption::Kms { key_id }) = &delivery.sse
            && let Some(key_region) = key_id.region()
            && key_region != region.as_str()
        {
            return Err(InvalidValue::new(
                "kms_key_id",
                key_id.as_str(),
                format!(
                    "the key is in {key_region} but the bucket is in {region}: SSE-KMS needs a key in the bucket's region"
                ),
            ));
        }
        Ok(S3Destination {
            name,
            bucket,
            region,
            prefix,
            auth,
            endpoint,
            delivery,
        })
    }
}

/// An access key id. AWS's are 20 upper-case characters (`AKIA...`); S3-compatible servers use
/// other shapes, so only what no service accepts is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyId(String);

impl AccessKeyId {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let ok = (3..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(InvalidValue::new(
                "access_key_id",
                value,
                "an access key id has 3 to 128 printable characters without spaces, like \"AKIAIOSFODNN7EXAMPLE\"",
            ));
        }
        Ok(Self(value.to_string()))
    }

    /// The key id itself. It is not a secret, but wharf shows only [`Self::fingerprint`], since
    /// key ids identify accounts and appear in attackers' lists.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `AKIA…MPLE`: enough to recognise a key, not enough to use or look it up.
    pub fn fingerprint(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() >= 12 {
            let head: String = chars[..4].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}…{tail}")
        } else {
            let head: String = chars[..2.min(chars.len())].iter().collect();
            format!("{head}…")
        }
    }
}

/// Delivery options applied to every object wharf writes to the destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOptions {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "sse_serde")]
    pub sse: Option<ServerSideEncryption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumChoice>,
}

impl DeliveryOptions {
    pub fn parse(
        sse: Option<&str>,
        kms_key_id: Option<&str>,
        storage_class: Option<&str>,
        acl: Option<&str>,
        checksum: Option<&str>,
    ) -> Result<Self, InvalidValue> {
        let sse = match (sse, kms_key_id) {
            (None, None) => None,
            (Some("aes256" | "AES256"), None) => Some(ServerSideEncryption::Aes256),
            (Some("kms" | "aws:kms"), Some(key)) => Some(ServerSideEncryption::Kms {
                key_id: KmsKeyId::parse(key)?,
            }),
            (Some("kms" | "aws:kms"), None) => {
                return Err(InvalidValue::new(
                    "kms_key_id",
                    "",
                    "SSE-KMS needs the key: give kms_key_id, the key's ARN (the policy wharf generates grants exactly that key)",
                ));
            }
            (Some("aes256" | "AES256") | None, Some(key)) => {
                return Err(InvalidValue::new(
                    "kms_key_id",
                    key,
                    "a KMS key is used only with sse kms",
                ));
            }
            (Some(other), _) => {
                return Err(InvalidValue::new(
                    "sse",
                    other,
                    "server-side encryption is \"aes256\" (SSE-S3) or \"kms\" (SSE-KMS)",
                ));
            }
        };
        Ok(Self {
            sse,
            storage_class: storage_class.map(StorageClass::parse).transpose()?,
            acl: acl.map(Acl::parse).transpose()?,
            checksum: checksum.map(ChecksumChoice::parse).transpose()?,
        })
    }

    /// The checksum wharf sends: the configured one, or `crc32c` on AWS and `when-required` on
    /// custom endpoints, where newer checksum headers are often rejected.
    pub fn effective_checksum(&self, custom_endpoint: bool) -> ChecksumChoice {
        self.checksum.unwrap_or(if custom_endpoint {
            ChecksumChoice::WhenRequired
        } else {
            ChecksumChoice::Crc32c
        })
    }
}

/// Server-side encryption of written objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// SSE-S3 (`AES256`): keys managed by S3.
    Aes256,
    /// SSE-KMS with a customer key; the role also needs `kms:GenerateDataKey` and `kms:Decrypt`.
    Kms { key_id: KmsKeyId },
}

/// Stored as `{"type": "aes256"}` or `{"type": "kms", "key_id": "..."}`, re-validated on load.
mod sse_serde {
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Stored {
        Aes256,
        Kms { key_id: String },
    }

    pub fn serialize<S: serde::Serializer>(
        value: &Option<ServerSideEncryption>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        value
            .as_ref()
            .map(|v| match v {
                ServerSideEncryption::Aes256 => Stored::Aes256,
                ServerSideEncryption::Kms { key_id } => Stored::Kms {
                    key_id: key_id.as_str().to_string(),
                },
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ServerSideEncryption>, D::Error> {
        Option::<Stored>::deserialize(d)?
            .map(|stored| match stored {
                Stored::Aes256 => Ok(ServerSideEncryption::Aes256),
                Stored::Kms { key_id } => KmsKeyId::parse(&key_id)
                    .map(|key_id| ServerSideEncryption::Kms { key_id })
                    .map_err(serde::de::Error::custom),
            })
            .transpose()
    }
}

string_enum!(
    /// S3 storage classes that a general purpose bucket accepts on upload.
    StorageClass, "storage_class", "the storage class", {
        Standard => "STANDARD",
        StandardIa => "STANDARD_IA",
        OnezoneIa => "ONEZONE_IA",
        IntelligentTiering => "INTELLIGENT_TIERING",
        GlacierIr => "GLACIER_IR",
        Glacier => "GLACIER",
        DeepArchive => "DEEP_ARCHIVE",
        ReducedRedundancy => "REDUCED_REDUNDANCY",
    }
);

string_enum!(
    /// Canned ACLs wharf offers. Only `bucket-owner-full-control`: it gives the bucket owner
    /// control of objects a cross-account writer creates (needed when Object Ownership is
    /// "object writer"); other ACLs would widen access and are left to bucket policies.
    Acl, "acl", "the ACL", {
        BucketOwnerFullControl => "bucket-owner-full-control",
    }
);

string_enum!(
    /// The checksum sent with each upload so S3 verifies the bytes it stores.
    ChecksumChoice, "checksum", "the checksum", {
        Crc32c => "crc32c",
        Crc64nvme => "crc64nvme",
        WhenRequired => "when-required",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<S3Destination, InvalidValue> {
        let spec: S3DestinationSpec = serde_json::from_value(json).expect("spec shape");
        let id = || ExternalId::from_stored("wharf-test").expect("id");
        spec.validate(id, false)
    }

    #[test]
    fn role_destination_gets_the_generated_external_id() {
        let d = spec(serde_json::json!({
            "name": "partner", "bucket": "acme-exports", "region": "eu-west-3", "prefix": "wharf",
            "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/wharf-export"},
            "sse": "kms", "kms_key_id": "arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "storage_class": "standard-ia", "acl": "bucket-owner-full-control"
        }))
        .expect("valid");
        let S3Auth::AssumeRole {
            external_id,
            session_duration_seconds,
            ..
        } = &d.auth
        else {
            panic!("role auth expected");
        };
        assert_eq!(external_id.as_str(), "wharf-test");
        assert_eq!(*session_duration_seconds, 3600);
        assert_eq!(d.prefix.as_str(), "wharf/");
        assert_eq!(d.delivery.storage_class, Some(StorageClass::StandardIa));
        assert_eq!(d.delivery.effective_checksum(false), ChecksumChoice::Crc32c);
    }

    #[test]
    fn cross_field_rules() {
        let role =
            serde_json::json!({"type": "role", "role_arn": "arn:aws:iam::123456789012:role/r"});
        let key = serde_json::json!({"type": "access-key", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "s3cr3t"});
        let cases = [
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": role, "endpoint": "https://s3.example.com"}),
                "endpoint",
                "access-key auth only",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "cn-north-1", "auth": role}),
                "role_arn",
                "partition \"aws\"",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/r", "session_duration_seconds": 60}}),
                "session_duration",
                "900 to 43200",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "sse": "kms"}),
                "kms_key_id",
                "SSE-KMS needs the key",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "kms_key_id": "alias/x"}),
                "kms_key_id",
                "only with sse kms",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "sse": "des"}),
                "sse",
                "\"aes256\"",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "sse": "kms", "kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}),
                "kms_key_id",
                "bucket's region",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "storage_class": "COLD"}),
                "storage_class",
                "STANDARD_IA",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "acl": "public-read"}),
                "acl",
                "bucket-owner-full-control",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "checksum": "md5"}),
                "checksum",
                "crc64nvme",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": key, "external_id": "mine"}),
                "external_id",
                "generated by wharf",
            ),
            (
                serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1", "auth": {"type": "access-key", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": " "}}),
                "secret_access_key",
                "empty",
            ),
        ];
        for (json, field, expected) in cases {
            let err = spec(json.clone()).expect_err(&json.to_string());
            assert_eq!(err.field, field, "{json}");
            assert!(err.to_string().contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn secrets_do_not_reach_debug_output() {
        let d = spec(serde_json::json!({"name": "d", "bucket": "b-1", "region": "us-east-1",
            "auth": {"type": "access-key", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "canary-9f8e7d"}}))
        .expect("valid");
        assert!(!format!("{d:?}").contains("canary-9f8e7d"));
    }

    #[test]
    fn fingerprints() {
        let f = |v: &str| {
            AccessKeyId::parse(v)
                .map(|k| k.fingerprint())
                .expect("valid")
        };
        assert_eq!(f("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(f("minio"), "mi…");
    }

    #[test]
    fn delivery_options_round_trip_through_storage_json() {
        let options = DeliveryOptions::parse(
            Some("kms"),
            Some("alias/exports"),
            Some("GLACIER_IR"),
            None,
            Some("crc64nvme"),
        )
        .expect("valid");
        let json = serde_json::to_string(&options).expect("serialize");
        let back: DeliveryOptions = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, options);
    }
}
