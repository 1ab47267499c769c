//! The connection test: proves wharf can write to a destination with exactly the permissions it
//! asks for (`s3:PutObject`, `s3:AbortMultipartUpload`, `s3:ListMultipartUploadParts`,
//! `s3:ListBucketMultipartUploads`) and leaves nothing behind.
//!
//! Those permissions include no read and no delete, so a test object could never be removed.
//! The test therefore writes through a multipart upload that it aborts: parts of an aborted
//! upload are discarded by S3 and no object ever becomes visible. Steps:
//! 1. (role) `sts:AssumeRole` with the External ID; then without it, to warn when the trust
//!    policy does not require it (the confused-deputy risk the External ID exists to stop).
//! 2. ListMultipartUploads on the prefix: bucket, region, credentials, list permission.
//! 3. CreateMultipartUpload and UploadPart of a few bytes under
//!    `PREFIX.wharf-connection-test-<uuid>`: write permission, encryption settings, KMS.
//! 4. ListParts: the part-listing permission, and that the part arrived.
//! 5. AbortMultipartUpload, then a check that the upload is gone.
//!
//! Each step reports the error code and request id S3 gave and one sentence on how to fix it;
//! raw error bodies are never shown (they echo key ids).

mod diagnosis;

use crate::aws_error::AwsFailure;
use crate::client::{
    ClientSettings, check_endpoint, s3_client_with_credentials, session_name, static_credentials,
};
use crate::identity::Identity;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use wharf_domain::{ChecksumChoice, S3Auth, S3Destination};

pub use diagnosis::Diagnosis;

/// The outcome of a connection test, as `wharf destination test --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionReport {
    /// True when every step that ran passed (warnings pass).
    pub ok: bool,
    /// The steps that ran, in order. A step that cannot run because an earlier one failed (no
    /// upload to list when none could be created) is left out.
    pub steps: Vec<StepReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: &'static str,
    pub ok: bool,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub message: String,
    /// How to fix a failure, or what to change after a warning; `null` when there is nothing to do.
    pub fix: Option<String>,
}

impl StepReport {
    fn pass(step: &'static str, message: impl Into<String>, request_id: Option<String>) -> Self {
        Self {
            step,
            ok: true,
            error_code: None,
            request_id,
            message: message.into(),
            fix: None,
        }
    }

    fn from_diagnosis(
        step: &'static str,
        diagnosis: Diagnosis,
        failure: Option<&AwsFailure>,
    ) -> Self {
        Self {
            step,
            ok: diagnosis.ok,
            error_code: failure.and_then(|f| f.code.clone()),
            request_id: failure.and_then(|f| f.request_id.clone()),
            message: diagnosis.message,
            fix: diagnosis.fix,
        }
    }
}

/// What the test knows beyond the destination itself.
#[derive(Debug, Clone, Default)]
pub struct TestContext {
    /// wharf's principal, for fixes that quote the trust policy. `None` when unknown.
    pub principal_arn: Option<String>,
    /// The External ID was rotated after the last passing test: a denial most likely means the
    /// trust policy still holds the old one.
    pub external_id_rotated: bool,
}

/// Runs the connection test. `identity` is required for role destinations.
pub async fn test_connection(
    destination: &S3Destination,
    identity: Option<&Identity>,
    context: &TestContext,
    settings: ClientSettings,
) -> ConnectionReport {
    test_connection_watched(destination, identity, context, settings, &|_| {}).await
}

/// [`test_connection`], calling `on_step` with each step as soon as it ends (for an interface
/// that shows the steps as they complete).
pub async fn test_connection_watched(
    destination: &S3Destination,
    identity: Option<&Identity>,
    context: &TestContext,
    settings: ClientSettings,
    on_step: &(dyn Fn(&StepReport) + Send + Sync),
) -> ConnectionReport {
    let mut steps = Steps {
        list: Vec::new(),
        on_step,
    };
    let d = Diagnoser {
        destination,
        context,
        operator_endpoint: settings.operator_s3_endpoint.clone(),
    };
    let credentials = match &destination.auth {
        S3Auth::AccessKey {
            access_key_id,
            secret_access_key,
        } => static_credentials(access_key_id.as_str(), secret_access_key.expose()),
        S3Auth::AssumeRole { .. } => match assume_role_steps(&d, identity, &mut steps).await {
            Some(credentials) => credentials,
            None => return finish(steps),
        },
    };
    if let Some(endpoint) = &destination.endpoint
        && let Err(e) = check_endpoint(endpoint, settings.allow_private_endpoints).await
    {
        steps.push(StepReport::from_diagnosis(
            "list_multipart_uploads",
            Diagnosis::fail(
                e.to_string(),
                "point the destination at a public S3-compatible endpoint",
            ),
            None,
        ));
        return finish(steps);
    }
    // Two attempts: enough to ride out one transient error, few enough to answer quickly.
    let settings = ClientSettings {
        max_attempts: 2,
        ..settings
    };
    let checksum = settings.checksum_for(destination);
    let s3 = s3_client_with_credentials(destination, credentials, settings);
    upload_steps(&d, &s3, checksum, &mut steps).await;
    finish(steps)
}

/// The steps so far, and who hears of each new one.
struct Steps<'a> {
    list: Vec<StepReport>,
    on_step: &'a (dyn Fn(&StepReport) + Send + Sync),
}

impl Steps<'_> {
    fn push(&mut self, step: StepReport) {
        (self.on_step)(&step);
        self.list.push(step);
    }
}

fn finish(steps: Steps<'_>) -> ConnectionReport {
    ConnectionReport {
        ok: steps.list.iter().all(|s| s.ok),
        steps: steps.list,
    }
}

struct Diagnoser<'a> {
    destination: &'a S3Destination,
    context: &'a TestContext,
    operator_endpoint: Option<String>,
}

/// Step 1. Returns the role's temporary credentials when wharf may assume it.
async fn assume_role_steps(
    d: &Diagnoser<'_>,
    identity: Option<&Identity>,
    steps: &mut Steps<'_>,
) -> Option<Credentials> {
    let S3Auth::AssumeRole {
        role_arn,
        external_id,
        ..
    } = &d.destination.auth
    else {
        return None;
    };
    let Some(identity) = identity else {
        steps.push(StepReport::from_diagnosis(
            "assume_role",
            Diagnosis::no_identity(),
            None,
        ));
        return None;
    };
    let sts = identity.sts();
    let assume = |with_external_id: bool| {
        let purpose = if with_external_id {
            "test"
        } else {
            "test-no-external-id"
        };
        sts.assume_role()
            .role_arn(role_arn.as_str())
            .role_session_name(session_name(d.destination.name.as_str(), purpose))
            // The shortest session STS allows: these credentials live for one test.
            .duration_seconds(900)
            .set_external_id(with_external_id.then(|| external_id.as_str().to_string()))
            .send()
    };
    let with_id = assume(true).await;
    // The probe without the External ID runs whatever the first call gave: when the first call
    // is denied, its result tells an External ID mismatch apart from an untrusted principal.
    let without_id = assume(false).await;
    let without_id_allowed = without_id.is_ok();
    let without_failure = without_id.as_ref().err().map(AwsFailure::from_sdk);

    let credentials = match with_id {
        Ok(output) => {
            let request_id = request_id(&output);
            let credentials = output.credentials().map(|c| {
                Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    std::time::SystemTime::try_from(*c.expiration()).ok(),
                    "wharf-connection-test",
                )
            });
            steps.push(StepReport::pass(
                "assume_role",
                format!("wharf assumed {role_arn} with the destination's External ID"),
                request_id,
            ));
            credentials
        }
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            steps.push(StepReport::from_diagnosis(
                "assume_role",
                d.assume_role(&failure, without_id_allowed),
                Some(&failure),
            ));
            None
        }
    };
    let (diagnosis, failure) = match &without_failure {
        None => (d.assume_role_without_external_id_allowed(), None),
        Some(failure) => (
            d.assume_role_without_external_id_denied(failure),
            Some(failure),
        ),
    };
    steps.push(StepReport::from_diagnosis(
        "assume_role_without_external_id",
        diagnosis,
        failure,
    ));
    credentials
}

/// Steps 2 to 5.
/// `checksum`: the one a run's uploads send ([`ClientSettings::checksum_for`]).
async fn upload_steps(
    d: &Diagnoser<'_>,
    s3: &aws_sdk_s3::Client,
    checksum: ChecksumChoice,
    steps: &mut Steps<'_>,
) {
    let destination = d.destination;
    let bucket = destination.bucket.as_str();
    let prefix = destination.prefix.as_str();

    // 2. ListMultipartUploads
    match s3
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(prefix)
        .max_uploads(1)
        .send()
        .await
    {
        Ok(output) => steps.push(StepReport::pass(
            "list_multipart_uploads",
            format!(
                "bucket {bucket} is reachable and wharf may list its multipart uploads under {:?}",
                prefix
            ),
            request_id(&output),
        )),
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            let diagnosis = d.s3_failure(Step::ListMultipartUploads, &failure);
            let fatal = diagnosis.fatal;
            steps.push(StepReport::from_diagnosis(
                "list_multipart_uploads",
                diagnosis,
                Some(&failure),
            ));
            if fatal {
                return;
            }
        }
    }

    // 3. CreateMultipartUpload + UploadPart
    let key = format!("{prefix}.wharf-connection-test-{}", uuid::Uuid::new_v4());
    // The very request a run starts its uploads with (options, checksum algorithm and type).
    let algorithm = crate::upload::options::checksum_algorithm(checksum);
    let create =
        crate::upload::options::create_multipart(s3, bucket, &key, &destination.delivery, checksum)
            .content_type("text/plain");
    let upload_id = match create.send().await {
        Ok(output) => {
            let request_id = request_id(&output);
            match output.upload_id() {
                Some(id) => {
                    steps.push(StepReport::pass(
                        "create_multipart_upload",
                        format!("wharf may start uploads under {prefix:?} with the destination's delivery options"),
                        request_id,
                    ));
                    id.to_string()
                }
                None => {
                    steps.push(StepReport::from_diagnosis(
                        "create_multipart_upload",
                        Diagnosis::fail(
                            "S3 accepted the upload but returned no upload id",
                            "check that the endpoint is a complete S3 implementation",
                        ),
                        None,
                    ));
                    return;
                }
            }
        }
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            steps.push(d.s3_step(Step::CreateMultipartUpload, &failure));
            return;
        }
    };
    // From here on an upload is open: whatever happens, it is aborted below.
    let body =
        b"wharf connection test: this upload is aborted at once and never becomes an object\n";
    let part = s3
        .upload_part()
        .bucket(bucket)
        .key(&key)
        .upload_id(&upload_id)
        .part_number(1)
        .content_length(body.len() as i64)
        .set_checksum_algorithm(algorithm)
        .body(ByteStream::from_static(body))
        .send()
        .await;
    let part_uploaded = match part {
        Ok(output) => {
            steps.push(StepReport::pass(
                "upload_part",
                format!("wrote a {}-byte part", body.len()),
                request_id(&output),
            ));
            true
        }
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            steps.push(d.s3_step(Step::UploadPart, &failure));
            false
        }
    };

    // 4. ListParts
    match s3
        .list_parts()
        .bucket(bucket)
        .key(&key)
        .upload_id(&upload_id)
        .send()
        .await
    {
        Ok(output) => {
            let request_id = request_id(&output);
            let listed = output.parts().iter().any(|p| p.part_number() == Some(1));
            if part_uploaded && !listed {
                steps.push(StepReport::from_diagnosis(
                    "list_parts",
                    Diagnosis::fail(
                        "the part wharf uploaded is missing from the upload's part list",
                        "the S3 service loses parts; check its health or consistency settings",
                    ),
                    None,
                ));
            } else {
                steps.push(StepReport::pass(
                    "list_parts",
                    "wharf may list the parts of its uploads",
                    request_id,
                ));
            }
        }
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            steps.push(d.s3_step(Step::ListParts, &failure));
        }
    }

    // 5. AbortMultipartUpload, then confirm the upload is gone.
    match s3
        .abort_multipart_upload()
        .bucket(bucket)
        .key(&key)
        .upload_id(&upload_id)
        .send()
        .await
    {
        Ok(output) => {
            let request_id = request_id(&output);
            let report = match upload_still_open(s3, bucket, &key, &upload_id).await {
                Some(true) => StepReport::from_diagnosis(
                    "abort_multipart_upload",
                    Diagnosis::fail(
                        format!(
                            "S3 accepted the abort but upload {upload_id} of {key:?} is still listed"
                        ),
                        "the S3 service does not abort uploads; add a lifecycle rule AbortIncompleteMultipartUpload to the bucket",
                    ),
                    None,
                ),
                Some(false) => StepReport::pass(
                    "abort_multipart_upload",
                    "wharf aborted the test upload and confirmed it is gone: nothing was left in the bucket",
                    request_id,
                ),
                None => StepReport::pass(
                    "abort_multipart_upload",
                    "wharf aborted the test upload; nothing was left in the bucket",
                    request_id,
                ),
            };
            steps.push(report);
        }
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            tracing::warn!(bucket, key = %key, upload_id = %upload_id, failure = %failure.summary(), "connection test could not abort its upload");
            steps.push(StepReport::from_diagnosis(
                "abort_multipart_upload",
                d.abort_failure(&failure, &key, &upload_id),
                Some(&failure),
            ));
        }
    }
}

/// Whether an aborted upload is still there: asks ListParts (expects NoSuchUpload), then
/// ListMultipartUploads. `None` when neither may be asked.
async fn upload_still_open(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Option<bool> {
    match s3
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        Ok(_) => return Some(true),
        Err(e) if AwsFailure::from_sdk(&e).is_code(&["NoSuchUpload"]) => return Some(false),
        Err(_) => {}
    }
    let listed = s3
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .ok()?;
    Some(
        listed
            .uploads()
            .iter()
            .any(|u| u.upload_id() == Some(upload_id)),
    )
}

/// The request id of a successful call, for the report.
fn request_id(output: &impl aws_sdk_s3::operation::RequestId) -> Option<String> {
    output.request_id().map(str::to_string)
}

impl Diagnoser<'_> {
    /// The report of an S3 step that failed with `failure`.
    fn s3_step(&self, step: Step, failure: &AwsFailure) -> StepReport {
        StepReport::from_diagnosis(step.name(), self.s3_failure(step, failure), Some(failure))
    }
}

/// The S3 steps, for diagnoses that depend on which call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    ListMultipartUploads,
    CreateMultipartUpload,
    UploadPart,
    ListParts,
}
