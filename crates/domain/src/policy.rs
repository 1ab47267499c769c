//! The IAM policy documents a user installs in AWS for a destination.
//!
//! The founding document shows `"Version": "2025-10-17"`, which IAM rejects with
//! `MalformedPolicyDocument`: `2012-10-17` is the current (and only useful) policy language
//! version, so every document here uses it.

use crate::destination::{Acl, S3Auth, S3Destination, ServerSideEncryption};
use crate::external_id::ExternalId;
use crate::kms::KmsKeyKind;
use serde_json::{Value, json};

/// The IAM policy language version. Never change this to a date you find elsewhere.
pub const POLICY_VERSION: &str = "2012-10-17";

/// The four S3 actions wharf needs on objects and the bucket: write objects (multipart or not),
/// abort and inspect its own multipart uploads. No read, no delete.
pub const OBJECT_ACTIONS: [&str; 3] = [
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
];
pub const BUCKET_ACTION: &str = "s3:ListBucketMultipartUploads";

/// The principal to name in a role's trust policy for the identity `sts:GetCallerIdentity`
/// returned. When wharf itself runs under a role (EC2 instance profile, ECS task, EKS pod), the
/// caller is a session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) whose name changes with
/// each session; trust policies must name the role (`arn:aws:iam::ACCOUNT:role/ROLE`).
/// A role path is not visible in a session ARN: a role created under a path must be named with it.
pub fn trust_principal(caller_arn: &str) -> String {
    let fields: Vec<&str> = caller_arn.splitn(6, ':').collect();
    if let [arn, partition, "sts", _region, account, resource] = fields[..]
        && let Some(rest) = resource.strip_prefix("assumed-role/")
        && let Some((role, _session)) = rest.split_once('/')
    {
        return format!("{arn}:{partition}:iam::{account}:role/{role}");
    }
    caller_arn.to_string()
}

/// The trust policy of a role destination: `principal` (from [`trust_principal`]) may assume the
/// role only when it presents the destination's External ID.
pub fn trust_policy(principal: &str, external_id: &ExternalId) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "AllowWharfToAssumeThisRole",
            "Effect": "Allow",
            "Principal": { "AWS": principal },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": external_id.as_str() } }
        }]
    })
}

/// The permission policy for a destination, scoped to its bucket and prefix. For role auth it is
/// attached to the role; for access-key auth to the user owning the key.
pub fn permission_policy(destination: &S3Destination) -> Value {
    let partition = destination.region.partition();
    let bucket_arn = format!("arn:{partition}:s3:::{}", destination.bucket);
    let objects_arn = format!("{bucket_arn}/{}*", destination.prefix);
    let mut object_actions: Vec<&str> = OBJECT_ACTIONS.to_vec();
    if destination.delivery.acl == Some(Acl::BucketOwnerFullControl) {
        // Sending an `x-amz-acl` header with PutObject/CreateMultipartUpload is authorised as
        // s3:PutObjectAcl as well; without it S3 denies the upload.
        object_actions.push("s3:PutObjectAcl");
    }
    let mut statements = vec![
        json!({
            "Sid": "WharfWriteObjects",
            "Effect": "Allow",
            "Action": object_actions,
            "Resource": objects_arn,
        }),
        json!({
            "Sid": "WharfFindOwnMultipartUploads",
            "Effect": "Allow",
            "Action": BUCKET_ACTION,
            "Resource": bucket_arn,
        }),
    ];
    if let Some(ServerSideEncryption::Kms { key_id }) = &destination.delivery.sse {
        // GenerateDataKey encrypts each object; Decrypt is needed too, because multipart uploads
        // decrypt the data key to encrypt every further part.
        let actions = ["kms:GenerateDataKey", "kms:Decrypt"];
        let role_account = match &destination.auth {
            S3Auth::AssumeRole { role_arn, .. } => role_arn.account().to_string(),
            // An access key's account is not known without a call; the key id pins the key.
            S3Auth::AccessKey { .. } => "*".to_string(),
        };
        let region = destination.region.as_str();
        let statement = match key_id.kind() {
            KmsKeyKind::KeyArn { .. } => json!({
                "Sid": "WharfEncryptWithKmsKey",
                "Effect": "Allow",
                "Action": actions,
                "Resource": key_id.as_str(),
            }),
            // A bare key id is resolved in the caller's account.
            KmsKeyKind::KeyId => json!({
                "Sid": "WharfEncryptWithKmsKey",
                "Effect": "Allow",
                "Action": actions,
                "Resource": format!("arn:{partition}:kms:{region}:{role_account}:key/{}", key_id.as_str()),
            }),
            // IAM cannot grant on an alias ARN for key use; grant the keys the alias points to.
            KmsKeyKind::Alias => kms_alias_statement(
                &format!("arn:{partition}:kms:{region}:{role_account}:key/*"),
                key_id.as_str(),
            ),
            KmsKeyKind::AliasArn {
                partition,
                region,
                account,
                alias,
            } => kms_alias_statement(
                &format!("arn:{partition}:kms:{region}:{account}:key/*"),
                alias,
            ),
        };
        statements.push(statement);
    }
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

fn kms_alias_statement(keys: &str, alias: &str) -> Value {
    json!({
        "Sid": "WharfEncryptWithKmsKey",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": keys,
        "Condition": { "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::S3DestinationSpec;

    fn destination(extra: Value) -> S3Destination {
        let mut spec = json!({
            "name": "partner", "bucket": "acme-exports", "region": "eu-west-3",
            "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/wharf-export"},
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let spec: S3DestinationSpec = serde_json::from_value(spec).expect("spec");
        spec.validate(|| ExternalId::from_stored("wharf-abc").expect("id"), false)
            .expect("valid")
    }

    fn round_trip(v: &Value) -> Value {
        serde_json::from_str(&serde_json::to_string_pretty(v).expect("ser")).expect("de")
    }

    #[test]
    fn trust_policy_names_principal_and_external_id() {
        let id = ExternalId::from_stored("wharf-abc").expect("id");
        let policy = round_trip(&trust_policy("arn:aws:iam::111122223333:user/wharf", &id));
        assert_eq!(policy["Version"], "2012-10-17");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "sts:AssumeRole");
        assert_eq!(
            statement["Principal"]["AWS"],
            "arn:aws:iam::111122223333:user/wharf"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["sts:ExternalId"],
            "wharf-abc"
        );
    }

    #[test]
    fn session_principals_become_their_role() {
        assert_eq!(
            trust_principal("arn:aws:sts::111122223333:assumed-role/wharf-server/i-0abc"),
            "arn:aws:iam::111122223333:role/wharf-server"
        );
        assert_eq!(
            trust_principal("arn:aws-cn:sts::111122223333:assumed-role/r/s"),
            "arn:aws-cn:iam::111122223333:role/r"
        );
        assert_eq!(
            trust_principal("arn:aws:iam::111122223333:user/wharf"),
            "arn:aws:iam::111122223333:user/wharf"
        );
    }

    #[test]
    fn permission_policy_is_scoped_to_bucket_and_prefix() {
        let policy = round_trip(&permission_policy(&destination(
            json!({"prefix": "exports/daily"}),
        )));
        assert_eq!(policy["Version"], "2012-10-17");
        let statements = policy["Statement"].as_array().expect("statements");
        assert_eq!(statements.len(), 2);
        assert_eq!(
            statements[0]["Action"],
            json!([
                "s3:PutObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts"
            ])
        );
        assert_eq!(
            statements[0]["Resource"],
            "arn:aws:s3:::acme-exports/exports/daily/*"
        );
        assert_eq!(statements[1]["Action"], "s3:ListBucketMultipartUploads");
        assert_eq!(statements[1]["Resource"], "arn:aws:s3:::acme-exports");
    }

    #[test]
    fn permission_policy_without_prefix_covers_the_bucket() {
        let policy = permission_policy(&destination(json!({})));
        assert_eq!(
            policy["Statement"][0]["Resource"],
            "arn:aws:s3:::acme-exports/*"
        );
    }

    #[test]
    fn partitions_follow_the_region() {
        let mut d = destination(json!({}));
        d.region = crate::Region::parse("cn-north-1").expect("region");
        let policy = permission_policy(&d);
        assert_eq!(
            policy["Statement"][1]["Resource"],
            "arn:aws-cn:s3:::acme-exports"
        );
    }

    #[test]
    fn kms_statements() {
        let key = "arn:aws:kms:eu-west-3:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let policy = permission_policy(&destination(json!({"sse": "kms", "kms_key_id": key})));
        let kms = &policy["Statement"][2];
        assert_eq!(kms["Action"], json!(["kms:GenerateDataKey", "kms:Decrypt"]));
        assert_eq!(kms["Resource"], key);

        let policy = permission_policy(&destination(
            json!({"sse": "kms", "kms_key_id": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
        ));
        assert_eq!(
            policy["Statement"][2]["Resource"],
            "arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );

        let policy = permission_policy(&destination(
            json!({"sse": "kms", "kms_key_id": "alias/exports"}),
        ));
        assert_eq!(
            policy["Statement"][2]["Resource"],
            "arn:aws:kms:eu-west-3:123456789012:key/*"
        );
        assert_eq!(
            policy["Statement"][2]["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            "alias/exports"
        );

        let policy = permission_policy(&destination(json!({"sse": "aes256"})));
        assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn acl_adds_put_object_acl() {
        let policy = permission_policy(&destination(json!({"acl": "bucket-owner-full-control"})));
        let actions = policy["Statement"][0]["Action"]
            .as_array()
            .expect("actions");
        assert!(actions.contains(&json!("s3:PutObjectAcl")));
    }
}
