//! The connection test against moto with IAM enforcement: cross-account roles (External ID,
//! trust policy, the generated permission policy and each of its permissions removed), wharf's
//! own identity, and access keys that S3 rejects.

use aws_sdk_s3::config::Credentials;
use wharf_delivery::{
    ClientSettings, ConnectionReport, Identity, StepReport, TestContext, test_connection,
};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Destination, policy};
use wharf_testkit::{Moto, RoleSpec, bucket_residue};

const BUCKET: &str = "wharf-moto";
const ACCOUNT: &str = "123456789012";

fn role_destination(role: &str) -> S3Destination {
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": "lake", "bucket": BUCKET, "region": "us-east-1", "prefix": "exports/daily",
        "auth": {"type": "role", "role_arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}")},
    }))
    .expect("spec");
    spec.validate(|| ExternalId::generate().expect("random"), false)
        .expect("valid")
}

fn key_destination(bucket: &str, key: &str, secret: &str) -> S3Destination {
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": "partner", "bucket": bucket, "region": "us-east-1", "prefix": "exports/daily",
        "auth": {"type": "access-key", "access_key_id": key, "secret_access_key": secret},
    }))
    .expect("spec");
    spec.validate(|| unreachable!("no External ID for access keys"), false)
        .expect("valid")
}

fn external_id(d: &S3Destination) -> String {
    match &d.auth {
        wharf_domain::S3Auth::AssumeRole { external_id, .. } => external_id.as_str().to_string(),
        wharf_domain::S3Auth::AccessKey { .. } => panic!("role destination expected"),
    }
}

async fn identity(moto: &Moto) -> Identity {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region("us-east-1")
        .endpoint_url(moto.endpoint())
        .credentials_provider(Credentials::new(
            &moto.wharf.access_key,
            &moto.wharf.secret_key,
            None,
            None,
            "test",
        ))
        .load()
        .await;
    Identity::from_config(config)
}

fn settings(moto: &Moto) -> ClientSettings {
    ClientSettings {
        operator_s3_endpoint: Some(moto.endpoint()),
        ..ClientSettings::default()
    }
}

fn step<'a>(report: &'a ConnectionReport, name: &str) -> &'a StepReport {
    report
        .steps
        .iter()
        .find(|s| s.step == name)
        .unwrap_or_else(|| panic!("no step {name} in {report:#?}"))
}

/// Creates `name` trusting `principal`, requiring `external_id`, with `destination`'s generated
/// permission policy minus `without` (an action to leave out).
fn create_role(
    moto: &Moto,
    name: &str,
    principal: &str,
    external_id: &str,
    destination: &S3Destination,
    without: Option<&str>,
) {
    let mut permissions = policy::permission_policy(destination);
    if let Some(action) = without {
        let statements = permissions["Statement"].as_array_mut().expect("statements");
        for statement in statements.iter_mut() {
            if let serde_json::Value::Array(actions) = &mut statement["Action"] {
                actions.retain(|a| a != action);
            }
        }
        // A statement left without actions is dropped: IAM rejects empty ones.
        statements.retain(|s| s["Action"] != action && s["Action"] != serde_json::json!([]));
    }
    moto.create_role(&RoleSpec {
        name: name.to_string(),
        trust_principal: principal.to_string(),
        external_id: Some(external_id.to_string()),
        permission_policy: Some(permissions),
    });
}

#[tokio::test]
async fn cross_account_roles_against_moto() {
    let moto = Moto::start(BUCKET);
    let identity = identity(&moto).await;
    let caller = identity.caller().await.expect("whoami");
    assert_eq!(caller.arn, format!("arn:aws:iam::{ACCOUNT}:user/wharf"));
    assert_eq!(caller.account, ACCOUNT);
    let context = TestContext {
        principal_arn: Some(caller.arn.clone()),
        external_id_rotated: false,
    };
    let admin = moto.admin_s3();

    // The generated policy, exactly: the test passes and leaves nothing.
    let d = role_destination("wharf-export");
    create_role(
        &moto,
        "wharf-export",
        &caller.arn,
        &external_id(&d),
        &d,
        None,
    );
    let report = test_connection(&d, Some(&identity), &context, settings(&moto)).await;
    assert!(report.ok, "{report:#?}");
    assert!(step(&report, "assume_role").ok);
    // moto does not enforce a missing External ID, so the confused-deputy warning shows here.
    let warning = step(&report, "assume_role_without_external_id");
    assert!(warning.ok && warning.fix.is_some(), "{warning:?}");
    assert!(
        warning.message.contains("confused-deputy"),
        "{}",
        warning.message
    );
    let (objects, uploads) = bucket_residue(&admin, BUCKET).await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );

    // The trust policy requires another External ID.
    let d = role_destination("wharf-export-other-id");
    create_role(
        &moto,
        "wharf-export-other-id",
        &caller.arn,
        "wharf-someone-else",
        &d,
        None,
    );
    let report = test_connection(&d, Some(&identity), &context, settings(&moto)).await;
    assert!(!report.ok);
    let s = step(&report, "assume_role");
    assert!(!s.ok);
    assert!(s.message.contains("External ID mismatch"), "{}", s.message);
    assert!(
        s.fix
            .as_deref()
            .is_some_and(|f| f.contains(&external_id(&d))),
        "{s:?}"
    );
    assert_eq!(
        report.steps.len(),
        2,
        "no S3 step runs without credentials: {report:#?}"
    );

    // The trust policy names another principal (no "wharf" in it: moto matches by substring).
    let d = role_destination("partner-role");
    create_role(
        &moto,
        "partner-role",
        &format!("arn:aws:iam::{ACCOUNT}:user/other"),
        &external_id(&d),
        &d,
        None,
    );
    let report = test_connection(&d, Some(&identity), &context, settings(&moto)).await;
    let s = step(&report, "assume_role");
    assert!(!s.ok);
    assert!(s.message.contains("may not assume"), "{}", s.message);
    assert!(s.message.contains(&caller.arn), "{}", s.message);
    let probe = step(&report, "assume_role_without_external_id");
    assert!(probe.ok && probe.fix.is_none(), "{probe:?}");

    // Each permission of the policy removed in turn.
    let cases = [
        (
            "s3:ListBucketMultipartUploads",
            "list_multipart_uploads",
            "missing s3:ListBucketMultipartUploads",
        ),
        (
            "s3:PutObject",
            "create_multipart_upload",
            "missing s3:PutObject",
        ),
        (
            "s3:ListMultipartUploadParts",
            "list_parts",
            "missing s3:ListMultipartUploadParts",
        ),
        (
            "s3:AbortMultipartUpload",
            "abort_multipart_upload",
            "missing s3:AbortMultipartUpload",
        ),
    ];
    for (i, (action, failing, expected)) in cases.into_iter().enumerate() {
        let name = format!("wharf-export-{i}");
        let d = role_destination(&name);
        create_role(
            &moto,
            &name,
            &caller.arn,
            &external_id(&d),
            &d,
            Some(action),
        );
        let report = test_connection(&d, Some(&identity), &context, settings(&moto)).await;
        let failed: Vec<&str> = report
            .steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.step)
            .collect();
        assert_eq!(failed, [failing], "{action}: {report:#?}");
        let s = step(&report, failing);
        assert!(s.message.contains(expected), "{action}: {}", s.message);
        assert!(
            s.message
                .contains(&format!("role arn:aws:iam::{ACCOUNT}:role/{name}")),
            "{}",
            s.message
        );
        assert_eq!(s.error_code.as_deref(), Some("AccessDenied"));
        assert!(s.request_id.is_some(), "{s:?}");
        let (objects, uploads) = bucket_residue(&admin, BUCKET).await;
        assert!(objects.is_empty(), "{objects:?}");
        if action == "s3:AbortMultipartUpload" {
            assert_eq!(
                uploads.len(),
                1,
                "the un-abortable upload is reported and stays"
            );
            let listed = admin
                .list_multipart_uploads()
                .bucket(BUCKET)
                .send()
                .await
                .expect("list");
            for u in listed.uploads() {
                admin
                    .abort_multipart_upload()
                    .bucket(BUCKET)
                    .key(u.key().unwrap_or_default())
                    .upload_id(u.upload_id().unwrap_or_default())
                    .send()
                    .await
                    .expect("admin cleans up");
            }
        } else {
            assert!(uploads.is_empty(), "{action}: {uploads:?}");
        }
    }
}

#[tokio::test]
async fn access_keys_rejected_by_s3_against_moto() {
    let moto = Moto::start(BUCKET);
    let admin = (&moto.admin.access_key, &moto.admin.secret_key);
    let run = |d: S3Destination| {
        let settings = settings(&moto);
        async move { test_connection(&d, None, &TestContext::default(), settings).await }
    };

    let report = run(key_destination(BUCKET, admin.0, admin.1)).await;
    assert!(report.ok, "the admin key may do everything: {report:#?}");

    let report = run(key_destination(
        BUCKET,
        admin.0,
        "wrong-secret-wrong-secret-wrong-secret00",
    ))
    .await;
    let s = step(&report, "list_multipart_uploads");
    assert_eq!(s.error_code.as_deref(), Some("SignatureDoesNotMatch"));
    assert!(
        s.message.contains("secret access key does not match"),
        "{}",
        s.message
    );

    let report = run(key_destination(BUCKET, "AKIAIOSFODNN7EXAMPLE", admin.1)).await;
    let s = step(&report, "list_multipart_uploads");
    assert_eq!(s.error_code.as_deref(), Some("InvalidAccessKeyId"));
    assert!(
        s.message.contains("S3 does not know access key AKIA…MPLE"),
        "{}",
        s.message
    );

    let report = run(key_destination("no-such-bucket", admin.0, admin.1)).await;
    let s = step(&report, "list_multipart_uploads");
    assert_eq!(s.error_code.as_deref(), Some("NoSuchBucket"));
    assert!(
        s.message.contains("bucket no-such-bucket does not exist"),
        "{}",
        s.message
    );
    assert_eq!(report.steps.len(), 1);

    // The wharf user's own key may only assume roles: S3 denies it, permission by permission.
    let report = run(key_destination(
        BUCKET,
        &moto.wharf.access_key,
        &moto.wharf.secret_key,
    ))
    .await;
    assert!(!report.ok);
    assert!(
        step(&report, "list_multipart_uploads")
            .message
            .contains("missing s3:ListBucketMultipartUploads")
    );
    assert!(
        step(&report, "create_multipart_upload")
            .message
            .contains("missing s3:PutObject")
    );
}
