//! From a failed call to one sentence on what is wrong and one on how to fix it.
//!
//! Messages name the resource, the permission and the setting involved; they never quote the
//! service's own message (S3's echoes key ids).

use super::{Diagnoser, Step};
use crate::aws_error::{AwsFailure, FailureKind};
use wharf_domain::{S3Auth, ServerSideEncryption};

/// One step's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub ok: bool,
    /// Later steps cannot tell anything more (no bucket, no credentials, no network).
    pub fatal: bool,
    pub message: String,
    pub fix: Option<String>,
}

impl Diagnosis {
    pub(crate) fn fail(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            ok: false,
            fatal: false,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    fn fatal(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            fatal: true,
            ..Self::fail(message, fix)
        }
    }

    /// Passes, with something the user should change.
    fn warn(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            ok: true,
            fatal: false,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    fn pass(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            fatal: false,
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn no_identity() -> Self {
        Self::fatal(
            "wharf has no AWS credentials of its own, so it cannot assume the role",
            "give the wharf host AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance, task or pod role) and check them with `wharf whoami`",
        )
    }
}

const RETRYABLE: &[&str] = &[
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
];

impl Diagnoser<'_> {
    fn name(&self) -> &str {
        self.destination.name.as_str()
    }

    fn policy_hint(&self) -> String {
        format!(
            "the destination's page shows it; `wharf destination policy {}` prints it",
            self.name()
        )
    }

    fn bucket_arn(&self) -> String {
        format!(
            "arn:{}:s3:::{}",
            self.destination.region.partition(),
            self.destination.bucket
        )
    }

    fn objects_arn(&self) -> String {
        format!("{}/{}*", self.bucket_arn(), self.destination.prefix)
    }

    fn external_id(&self) -> &str {
        match &self.destination.auth {
            S3Auth::AssumeRole { external_id, .. } => external_id.as_str(),
            S3Auth::AccessKey { .. } => "",
        }
    }

    fn role_arn(&self) -> &str {
        match &self.destination.auth {
            S3Auth::AssumeRole { role_arn, .. } => role_arn.as_str(),
            S3Auth::AccessKey { .. } => "",
        }
    }

    fn principal(&self) -> String {
        self.context
            .principal_arn
            .clone()
            .unwrap_or_else(|| "wharf's principal (see `wharf whoami`)".to_string())
    }

    fn who(&self) -> String {
        match &self.destination.auth {
            S3Auth::AccessKey { access_key_id, .. } => {
                format!("access key {}", access_key_id.fingerprint())
            }
            S3Auth::AssumeRole { role_arn, .. } => format!("role {role_arn}"),
        }
    }

    fn endpoint(&self) -> String {
        match &self.destination.endpoint {
            Some(e) => e.to_string(),
            None => self
                .operator_endpoint
                .clone()
                .unwrap_or_else(|| format!("S3 in {}", self.destination.region)),
        }
    }

    /// AssumeRole with the External ID failed. `without_id_allowed`: the same call without the
    /// External ID succeeded, so the principal is trusted and only the condition differs.
    pub(crate) fn assume_role(&self, f: &AwsFailure, without_id_allowed: bool) -> Diagnosis {
        let role = self.role_arn();
        let id = self.external_id();
        match f.kind {
            FailureKind::NotSent => return Diagnosis::no_identity(),
            FailureKind::Network | FailureKind::Timeout => {
                return Diagnosis::fatal(
                    format!("wharf could not reach AWS STS ({})", f.summary()),
                    "check that the wharf host can reach sts.amazonaws.com (or the endpoint in AWS_ENDPOINT_URL_STS)",
                );
            }
            FailureKind::Service | FailureKind::BadResponse => {}
        }
        if f.is_code(&[
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "UnrecognizedClientException",
        ]) {
            return Diagnosis::fatal(
                "AWS rejected wharf's own credentials before looking at the role",
                "check the credentials the wharf host runs with (`wharf whoami` shows whom they belong to)",
            );
        }
        if f.is_code(&["RegionDisabledException"]) {
            return Diagnosis::fatal(
                "STS is not activated in the region wharf calls it in",
                "activate STS for that region in the IAM console of wharf's account, or set AWS_REGION to an active region",
            );
        }
        if f.is_code(&["ValidationError"]) {
            return Diagnosis::fatal(
                "STS refused the request: the session duration is longer than the role's maximum session duration",
                format!(
                    "shorten the destination's session duration (3600 seconds always works), or raise the maximum session duration of {role}"
                ),
            );
        }
        if f.is_access_denied() {
            if without_id_allowed {
                return Diagnosis::fatal(
                    format!(
                        "External ID mismatch: {role} trusts wharf, but its trust policy requires a different sts:ExternalId than this destination's"
                    ),
                    format!(
                        "in the role's trust policy, set the condition \"StringEquals\": {{\"sts:ExternalId\": \"{id}\"}} ({})",
                        self.policy_hint()
                    ),
                );
            }
            if self.context.external_id_rotated {
                return Diagnosis::fatal(
                    format!(
                        "External ID mismatch: this destination's External ID was rotated after its last passing test, and {role} still refuses wharf"
                    ),
                    format!(
                        "update the role's trust policy to the new External ID \"{id}\" ({})",
                        self.policy_hint()
                    ),
                );
            }
            return Diagnosis::fatal(
                format!(
                    "wharf may not assume {role}: the role does not exist, or its trust policy does not name wharf's principal {}, or it requires another External ID",
                    self.principal()
                ),
                format!(
                    "check the role ARN; in the role's trust policy allow sts:AssumeRole for {} with sts:ExternalId \"{id}\" ({})",
                    self.principal(),
                    self.policy_hint()
                ),
            );
        }
        Diagnosis::fatal(
            format!("STS refused to let wharf assume {role} ({})", f.summary()),
            format!(
                "check the role ARN and its trust policy ({})",
                self.policy_hint()
            ),
        )
    }

    pub(crate) fn assume_role_without_external_id_allowed(&self) -> Diagnosis {
        Diagnosis::warn(
            format!(
                "{} can be assumed without the External ID: its trust policy lacks the sts:ExternalId condition, so another wharf customer who learns the role ARN could make wharf use it (the confused-deputy risk)",
                self.role_arn()
            ),
            format!(
                "add \"Condition\": {{\"StringEquals\": {{\"sts:ExternalId\": \"{}\"}}}} to the trust policy ({})",
                self.external_id(),
                self.policy_hint()
            ),
        )
    }

    pub(crate) fn assume_role_without_external_id_denied(&self, f: &AwsFailure) -> Diagnosis {
        if f.is_access_denied() {
            Diagnosis::pass("the role refuses wharf without the External ID, as it should")
        } else {
            Diagnosis::pass(format!(
                "could not check whether the role requires the External ID ({})",
                f.summary()
            ))
        }
    }

    /// An S3 call of steps 2 to 4 failed.
    pub(crate) fn s3_failure(&self, step: Step, f: &AwsFailure) -> Diagnosis {
        let bucket = &self.destination.bucket;
        let region = &self.destination.region;
        match f.kind {
            FailureKind::Network => {
                let what = f.io_kind.map(|k| format!(" ({k})")).unwrap_or_default();
                return Diagnosis::fatal(
                    format!("wharf could not connect to {}{what}", self.endpoint()),
                    "check the endpoint URL and that the wharf host can reach it",
                );
            }
            FailureKind::Timeout => {
                return Diagnosis::fatal(
                    format!("{} did not answer in time", self.endpoint()),
                    "check the endpoint URL, firewalls and proxies between wharf and S3",
                );
            }
            FailureKind::NotSent => {
                return Diagnosis::fatal(
                    "wharf could not send the request (credentials or settings could not be used)",
                    "check the destination's credentials and settings",
                );
            }
            FailureKind::Service | FailureKind::BadResponse => {}
        }
        let wrong_region = f.is_code(&[
            "PermanentRedirect",
            "AuthorizationHeaderMalformed",
            "IllegalLocationConstraintException",
        ]) || f.status == Some(301)
            || f.bucket_region
                .as_deref()
                .is_some_and(|r| r != region.as_str());
        if wrong_region {
            return match &f.bucket_region {
                Some(actual) => Diagnosis::fatal(
                    format!("bucket {bucket} is in region {actual}, not {region}"),
                    format!("set the destination's region to {actual}"),
                ),
                None => Diagnosis::fatal(
                    format!("bucket {bucket} is not in region {region}"),
                    "find the bucket's region in the S3 console and set the destination's region to it",
                ),
            };
        }
        if f.is_code(&["NoSuchBucket"]) {
            return Diagnosis::fatal(
                format!("bucket {bucket} does not exist"),
                format!(
                    "create bucket {bucket} in {region}, or correct the destination's bucket name"
                ),
            );
        }
        if f.is_code(&["InvalidAccessKeyId", "NotSignedUp"]) {
            return Diagnosis::fatal(
                format!("S3 does not know {}", self.who()),
                "check the access key id, and that the key is active (IAM console, Security credentials)",
            );
        }
        if f.is_code(&["SignatureDoesNotMatch"]) {
            return Diagnosis::fatal(
                format!("the secret access key does not match {}", self.who()),
                "replace the destination's secret access key with the one issued with this access key id",
            );
        }
        if f.is_code(&["InvalidToken", "ExpiredToken", "TokenRefreshRequired"]) {
            return Diagnosis::fatal(
                "S3 rejected the temporary credentials of the role session",
                "run the test again; if it keeps failing, check the wharf host's clock",
            );
        }
        if f.is_code(&["RequestTimeTooSkewed"]) {
            return Diagnosis::fatal(
                "the wharf host's clock is too far from S3's (more than 15 minutes)",
                "synchronise the wharf host's clock (NTP)",
            );
        }
        if f.is_code(&["NotImplemented"]) || f.status == Some(501) {
            return Diagnosis::fatal(
                format!(
                    "{} does not implement {}, which wharf needs",
                    self.endpoint(),
                    step.operation()
                ),
                "use an S3-compatible service that supports multipart uploads and ListMultipartUploads",
            );
        }
        if f.is_code(RETRYABLE) || f.status.is_some_and(|s| s >= 500) {
            return Diagnosis::fatal(
                format!(
                    "S3 answered {} to {}: a temporary problem on its side",
                    f.summary(),
                    step.operation()
                ),
                "run the test again in a minute",
            );
        }
        let kms = match &self.destination.delivery.sse {
            Some(ServerSideEncryption::Kms { key_id }) => Some(key_id.as_str()),
            _ => None,
        };
        if let Some(code) = f.code().filter(|c| c.starts_with("KMS.")) {
            return Diagnosis::fail(
                format!(
                    "KMS key {} cannot be used ({code})",
                    kms.unwrap_or("of the bucket")
                ),
                "check that the key exists in the bucket's region, is enabled, and that its key policy allows wharf's role or user",
            );
        }
        if f.is_code(&["AccessControlListNotSupported"]) {
            return Diagnosis::fail(
                format!(
                    "bucket {bucket} has ACLs disabled (Object Ownership \"bucket owner enforced\"), so the destination's ACL is refused"
                ),
                "clear the destination's ACL setting: with ACLs disabled the bucket owner already owns every object",
            );
        }
        if f.is_code(&["InvalidStorageClass"]) {
            return Diagnosis::fail(
                format!("bucket {bucket} does not accept the destination's storage class"),
                "choose another storage class for the destination (STANDARD always works)",
            );
        }
        if f.is_access_denied() {
            return match step {
                Step::ListMultipartUploads => Diagnosis::fail(
                    format!(
                        "{} is missing s3:ListBucketMultipartUploads on {}",
                        self.who(),
                        self.bucket_arn()
                    ),
                    format!(
                        "attach wharf's permission policy ({}); also check bucket policies and SCPs that deny it",
                        self.policy_hint()
                    ),
                ),
                Step::CreateMultipartUpload | Step::UploadPart
                    if kms.is_some() && f.mentions_kms =>
                {
                    Diagnosis::fail(
                        format!(
                            "KMS refused to encrypt with key {} for {}",
                            kms.unwrap_or("of the bucket"),
                            self.who()
                        ),
                        "grant kms:GenerateDataKey and kms:Decrypt on the key in the IAM policy (the one wharf prints includes them) and allow the principal in the key's key policy",
                    )
                }
                Step::CreateMultipartUpload | Step::UploadPart => {
                    let acl = if self.destination.delivery.acl.is_some() {
                        " (and s3:PutObjectAcl, because the destination sets an ACL)"
                    } else {
                        ""
                    };
                    Diagnosis::fail(
                        format!(
                            "{} is missing s3:PutObject{acl} on {}",
                            self.who(),
                            self.objects_arn()
                        ),
                        format!(
                            "attach wharf's permission policy ({}); also check bucket policies and SCPs",
                            self.policy_hint()
                        ),
                    )
                }
                Step::ListParts => Diagnosis::fail(
                    format!(
                        "{} is missing s3:ListMultipartUploadParts on {}",
                        self.who(),
                        self.objects_arn()
                    ),
                    format!("attach wharf's permission policy ({})", self.policy_hint()),
                ),
            };
        }
        if f.is_code(&["NoSuchUpload"]) {
            return Diagnosis::fail(
                "the test upload disappeared while wharf used it: another process or a lifecycle rule aborted it",
                "check the bucket's lifecycle rules for a very short AbortIncompleteMultipartUpload",
            );
        }
        if f.is_code(&[
            "InvalidArgument",
            "InvalidRequest",
            "InvalidEncryptionAlgorithmError",
        ]) && step == Step::CreateMultipartUpload
        {
            return Diagnosis::fail(
                format!(
                    "S3 refused the destination's delivery options ({})",
                    f.summary()
                ),
                "check the encryption, storage class, ACL and checksum options of the destination",
            );
        }
        Diagnosis::fail(
            format!("S3 refused {} ({})", step.operation(), f.summary()),
            "look up the error code in the S3 documentation (\"Error responses\")",
        )
    }

    /// AbortMultipartUpload failed: the test upload stays open.
    pub(crate) fn abort_failure(&self, f: &AwsFailure, key: &str, upload_id: &str) -> Diagnosis {
        let bucket = &self.destination.bucket;
        let remove = format!(
            "aws s3api abort-multipart-upload --bucket {bucket} --key '{key}' --upload-id '{upload_id}'"
        );
        if f.is_access_denied() {
            return Diagnosis::fail(
                format!(
                    "{} is missing s3:AbortMultipartUpload on {}: the test upload of {key:?} stays open (a few bytes, never a visible object)",
                    self.who(),
                    self.objects_arn()
                ),
                format!(
                    "attach wharf's permission policy ({}), then remove the upload with `{remove}` or a lifecycle rule AbortIncompleteMultipartUpload",
                    self.policy_hint()
                ),
            );
        }
        Diagnosis::fail(
            format!(
                "wharf could not abort the test upload of {key:?} ({}); it stays open (a few bytes, never a visible object)",
                f.summary()
            ),
            format!(
                "remove it with `{remove}`, or add a lifecycle rule AbortIncompleteMultipartUpload"
            ),
        )
    }
}

impl Step {
    /// The step's name in reports (`wharf destination test --json`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Step::ListMultipartUploads => "list_multipart_uploads",
            Step::CreateMultipartUpload => "create_multipart_upload",
            Step::UploadPart => "upload_part",
            Step::ListParts => "list_parts",
        }
    }

    pub(crate) fn operation(self) -> &'static str {
        match self {
            Step::ListMultipartUploads => "ListMultipartUploads",
            Step::CreateMultipartUpload => "CreateMultipartUpload",
            Step::UploadPart => "UploadPart",
            Step::ListParts => "ListParts",
        }
    }
}

#[cfg(test)]
mod tests {
    //! Diagnoses no test server can produce (wrong region, KMS, ACLs disabled, clock skew), from
    //! failures shaped like real S3's answers.
    use super::super::{Diagnoser, Step, TestContext};
    use crate::aws_error::{AwsFailure, FailureKind};
    use wharf_domain::destination::S3DestinationSpec;
    use wharf_domain::{ExternalId, S3Destination};

    fn destination(extra: serde_json::Value) -> S3Destination {
        let mut spec = serde_json::json!({
            "name": "lake", "bucket": "acme-lake", "region": "us-east-1", "prefix": "wharf",
            "auth": {"type": "role", "role_arn": "arn:aws:iam::123456789012:role/wharf-export"},
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let spec: S3DestinationSpec = serde_json::from_value(spec).expect("spec");
        spec.validate(|| ExternalId::from_stored("wharf-abc").expect("id"), false)
            .expect("valid")
    }

    fn failure(status: u16, code: Option<&str>) -> AwsFailure {
        AwsFailure {
            kind: FailureKind::Service,
            status: Some(status),
            code: code.map(str::to_string),
            ..AwsFailure::default()
        }
    }

    fn diagnose(d: &S3Destination, step: Step, f: &AwsFailure) -> super::Diagnosis {
        let context = TestContext::default();
        Diagnoser {
            destination: d,
            context: &context,
            operator_endpoint: None,
        }
        .s3_failure(step, f)
    }

    #[test]
    fn wrong_region_names_the_bucket_region() {
        let d = destination(serde_json::json!({}));
        let mut f = failure(301, Some("PermanentRedirect"));
        f.bucket_region = Some("eu-west-1".into());
        let diagnosis = diagnose(&d, Step::ListMultipartUploads, &f);
        assert!(diagnosis.fatal);
        assert_eq!(
            diagnosis.message,
            "bucket acme-lake is in region eu-west-1, not us-east-1"
        );
        assert!(
            diagnosis
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("region to eu-west-1"))
        );
        // A HEAD-style 301 without a body or header still says which setting is wrong.
        let diagnosis = diagnose(&d, Step::ListMultipartUploads, &failure(301, None));
        assert_eq!(
            diagnosis.message,
            "bucket acme-lake is not in region us-east-1"
        );
    }

    #[test]
    fn kms_denials_are_told_apart_from_missing_put_object() {
        let d = destination(serde_json::json!({"sse": "kms", "kms_key_id": "alias/exports"}));
        let mut f = failure(403, Some("AccessDenied"));
        f.mentions_kms = true;
        let diagnosis = diagnose(&d, Step::CreateMultipartUpload, &f);
        assert!(
            diagnosis
                .message
                .starts_with("KMS refused to encrypt with key alias/exports"),
            "{}",
            diagnosis.message
        );
        let diagnosis = diagnose(
            &d,
            Step::CreateMultipartUpload,
            &failure(403, Some("AccessDenied")),
        );
        assert!(
            diagnosis.message.contains("missing s3:PutObject"),
            "{}",
            diagnosis.message
        );
        let diagnosis = diagnose(
            &d,
            Step::CreateMultipartUpload,
            &failure(400, Some("KMS.DisabledException")),
        );
        assert!(
            diagnosis
                .message
                .contains("KMS key alias/exports cannot be used (KMS.DisabledException)")
        );
    }

    #[test]
    fn other_named_diagnoses() {
        let d = destination(serde_json::json!({"acl": "bucket-owner-full-control"}));
        let cases = [
            (
                failure(400, Some("AccessControlListNotSupported")),
                "has ACLs disabled",
            ),
            (
                failure(403, Some("RequestTimeTooSkewed")),
                "clock is too far",
            ),
            (
                failure(403, Some("AccessDenied")),
                "s3:PutObject (and s3:PutObjectAcl",
            ),
            (failure(503, Some("SlowDown")), "temporary problem"),
            (
                failure(501, Some("NotImplemented")),
                "does not implement CreateMultipartUpload",
            ),
            (failure(400, Some("InvalidToken")), "temporary credentials"),
        ];
        for (f, expected) in cases {
            let diagnosis = diagnose(&d, Step::CreateMultipartUpload, &f);
            assert!(
                diagnosis.message.contains(expected),
                "{f:?}: {}",
                diagnosis.message
            );
        }
    }

    #[test]
    fn rotation_is_named_when_sts_cannot_say_more() {
        let d = destination(serde_json::json!({}));
        let context = TestContext {
            principal_arn: Some("arn:aws:iam::111122223333:user/wharf".into()),
            external_id_rotated: true,
        };
        let diagnoser = Diagnoser {
            destination: &d,
            context: &context,
            operator_endpoint: None,
        };
        let diagnosis = diagnoser.assume_role(&failure(403, None), false);
        assert!(
            diagnosis.message.contains("was rotated"),
            "{}",
            diagnosis.message
        );
        let context = TestContext {
            external_id_rotated: false,
            ..context
        };
        let diagnoser = Diagnoser {
            destination: &d,
            context: &context,
            operator_endpoint: None,
        };
        let diagnosis = diagnoser.assume_role(&failure(403, None), false);
        assert!(
            diagnosis
                .message
                .contains("does not name wharf's principal arn:aws:iam::111122223333:user/wharf"),
            "{}",
            diagnosis.message
        );
        let diagnosis = diagnoser.assume_role(&failure(400, Some("ValidationError")), false);
        assert!(diagnosis.message.contains("maximum session duration"));
    }
}
