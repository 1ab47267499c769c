//! The connection test against the in-process S3 server (s3s): access-key destinations, each
//! permission missing in turn, bad keys, a missing bucket, transient faults, and the promise that
//! nothing is left behind.

use wharf_delivery::local_s3::Fault;
use wharf_delivery::{ClientSettings, ConnectionReport, TestContext, test_connection};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Destination};
use wharf_testkit::{S3TestServer, bucket_residue};

const BUCKET: &str = "wharf-test";
const WRITER: (&str, &str) = ("AKIAWRITER0000000001", "writer-secret-0001");

fn destination(endpoint: &str, key: &str, secret: &str, bucket: &str) -> S3Destination {
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": "partner", "bucket": bucket, "region": "eu-west-3", "prefix": "exports/daily",
        "endpoint": endpoint,
        "auth": {"type": "access-key", "access_key_id": key, "secret_access_key": secret},
    }))
    .expect("spec");
    spec.validate(
        || ExternalId::from_stored("wharf-unused").expect("id"),
        true,
    )
    .expect("valid destination")
}

fn settings() -> ClientSettings {
    ClientSettings {
        allow_private_endpoints: true,
        ..ClientSettings::default()
    }
}

async fn run(server: &S3TestServer, key: &str, secret: &str, bucket: &str) -> ConnectionReport {
    let d = destination(&server.endpoint(), key, secret, bucket);
    test_connection(&d, None, &TestContext::default(), settings()).await
}

fn step<'a>(report: &'a ConnectionReport, name: &str) -> &'a wharf_delivery::StepReport {
    report
        .steps
        .iter()
        .find(|s| s.step == name)
        .unwrap_or_else(|| panic!("no step {name} in {report:#?}"))
}

fn step_names(report: &ConnectionReport) -> Vec<&'static str> {
    report.steps.iter().map(|s| s.step).collect()
}

async fn assert_no_residue(server: &S3TestServer) {
    let (objects, uploads) = bucket_residue(&server.admin(), BUCKET).await;
    assert!(objects.is_empty(), "objects left: {objects:?}");
    assert!(uploads.is_empty(), "open uploads left: {uploads:?}");
}

#[tokio::test]
async fn passes_with_the_four_permissions_and_leaves_nothing() {
    let server = S3TestServer::start_with_keys(&[WRITER]).await;
    server.create_bucket(BUCKET).await;
    let report = run(&server, WRITER.0, WRITER.1, BUCKET).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(
        step_names(&report),
        [
            "list_multipart_uploads",
            "create_multipart_upload",
            "upload_part",
            "list_parts",
            "abort_multipart_upload"
        ]
    );
    assert!(
        step(&report, "abort_multipart_upload")
            .message
            .contains("confirmed it is gone")
    );
    assert_eq!(server.faults.seen("CreateMultipartUpload"), 1);
    assert_eq!(server.faults.seen("AbortMultipartUpload"), 1);
    assert_no_residue(&server).await;
}

#[tokio::test]
async fn each_missing_permission_is_named() {
    let cases = [
        (
            "s3:ListBucketMultipartUploads",
            "list_multipart_uploads",
            "missing s3:ListBucketMultipartUploads on arn:aws:s3:::wharf-test",
        ),
        (
            "s3:PutObject",
            "create_multipart_upload",
            "missing s3:PutObject on arn:aws:s3:::wharf-test/exports/daily/*",
        ),
        (
            "s3:ListMultipartUploadParts",
            "list_parts",
            "missing s3:ListMultipartUploadParts on arn:aws:s3:::wharf-test/exports/daily/*",
        ),
        (
            "s3:AbortMultipartUpload",
            "abort_multipart_upload",
            "missing s3:AbortMultipartUpload on arn:aws:s3:::wharf-test/exports/daily/*",
        ),
    ];
    for (permission, failing_step, expected) in cases {
        let server = S3TestServer::start_with_keys(&[WRITER]).await;
        server.create_bucket(BUCKET).await;
        server.deny_permission(WRITER.0, permission);
        let report = run(&server, WRITER.0, WRITER.1, BUCKET).await;
        assert!(!report.ok, "{permission}: {report:#?}");
        let failed: Vec<&str> = report
            .steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.step)
            .collect();
        assert_eq!(failed, [failing_step], "{permission}: {report:#?}");
        let s = step(&report, failing_step);
        assert!(s.message.contains(expected), "{permission}: {}", s.message);
        assert_eq!(s.error_code.as_deref(), Some("AccessDenied"));
        assert!(
            s.fix
                .as_deref()
                .is_some_and(|f| f.contains("wharf destination policy partner")),
            "{s:?}"
        );
        if permission == "s3:AbortMultipartUpload" {
            // The one case where something stays: the report says so and how to remove it.
            assert!(s.message.contains("stays open"), "{}", s.message);
            assert!(
                s.fix
                    .as_deref()
                    .is_some_and(|f| f.contains("abort-multipart-upload"))
            );
            let (_, uploads) = bucket_residue(&server.admin(), BUCKET).await;
            assert_eq!(uploads.len(), 1);
        } else {
            assert_no_residue(&server).await;
        }
        if permission == "s3:PutObject" {
            // Without an upload there is nothing to list or abort: those steps do not run.
            assert_eq!(
                step_names(&report),
                ["list_multipart_uploads", "create_multipart_upload"]
            );
        }
    }
}

#[tokio::test]
async fn missing_bucket_stops_at_the_first_step() {
    let server = S3TestServer::start_with_keys(&[WRITER]).await;
    server.create_bucket(BUCKET).await;
    let report = run(&server, WRITER.0, WRITER.1, "no-such-bucket").await;
    assert!(!report.ok);
    assert_eq!(step_names(&report), ["list_multipart_uploads"]);
    let s = step(&report, "list_multipart_uploads");
    assert_eq!(s.error_code.as_deref(), Some("NoSuchBucket"));
    assert!(
        s.message.contains("bucket no-such-bucket does not exist"),
        "{}",
        s.message
    );
    assert!(
        !server.root.path().join("no-such-bucket").exists(),
        "the test must not create buckets"
    );
}

#[tokio::test]
async fn unknown_key_and_wrong_secret_are_told_apart() {
    let server = S3TestServer::start_with_keys(&[WRITER]).await;
    server.create_bucket(BUCKET).await;

    let report = run(&server, "AKIAUNKNOWN000000000", WRITER.1, BUCKET).await;
    let s = step(&report, "list_multipart_uploads");
    assert!(!s.ok);
    assert!(
        s.message.contains("S3 does not know access key AKIA…0000"),
        "{}",
        s.message
    );
    assert_eq!(report.steps.len(), 1);

    let report = run(&server, WRITER.0, "not-the-secret", BUCKET).await;
    let s = step(&report, "list_multipart_uploads");
    assert_eq!(s.error_code.as_deref(), Some("SignatureDoesNotMatch"));
    assert!(
        s.message
            .contains("secret access key does not match access key AKIA…0001"),
        "{}",
        s.message
    );
    assert!(!format!("{report:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn a_transient_503_is_retried_and_the_test_still_leaves_nothing() {
    let server = S3TestServer::start_with_keys(&[WRITER]).await;
    server.create_bucket(BUCKET).await;
    server.faults.inject(
        "CreateMultipartUpload",
        Fault::Error {
            code: "SlowDown".into(),
            status: 503,
        },
        1,
    );
    server.faults.inject(
        "UploadPart",
        Fault::Error {
            code: "InternalError".into(),
            status: 500,
        },
        1,
    );
    let report = run(&server, WRITER.0, WRITER.1, BUCKET).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(server.faults.seen("CreateMultipartUpload"), 2);
    assert_eq!(server.faults.seen("UploadPart"), 2);
    assert_no_residue(&server).await;
}

#[tokio::test]
async fn a_persistent_failure_after_create_still_aborts_the_upload() {
    let server = S3TestServer::start_with_keys(&[WRITER]).await;
    server.create_bucket(BUCKET).await;
    server.faults.inject(
        "UploadPart",
        Fault::Error {
            code: "SlowDown".into(),
            status: 503,
        },
        5,
    );
    let report = run(&server, WRITER.0, WRITER.1, BUCKET).await;
    assert!(!report.ok);
    // The connection test makes two attempts of each request: both met the SlowDown.
    assert_eq!(server.faults.seen("UploadPart"), 2);
    let s = step(&report, "upload_part");
    assert!(s.message.contains("temporary problem"), "{}", s.message);
    assert!(step(&report, "abort_multipart_upload").ok);
    assert_no_residue(&server).await;
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_network_diagnosis() {
    let server = S3TestServer::start().await;
    let endpoint = server.endpoint();
    server.stop().await;
    let d = destination(&endpoint, WRITER.0, WRITER.1, BUCKET);
    let report = test_connection(&d, None, &TestContext::default(), settings()).await;
    let s = step(&report, "list_multipart_uploads");
    assert!(!s.ok);
    assert!(
        s.message
            .contains(&format!("could not connect to {endpoint}")),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn private_endpoints_are_refused_unless_the_operator_allows_them() {
    let server = S3TestServer::start_with_keys(&[WRITER]).await;
    server.create_bucket(BUCKET).await;
    let d = destination(&server.endpoint(), WRITER.0, WRITER.1, BUCKET);
    // A host name that resolves to loopback is caught at connection time.
    let named = destination(
        &server.endpoint().replace("127.0.0.1", "localhost"),
        WRITER.0,
        WRITER.1,
        BUCKET,
    );
    let refused = ClientSettings::default();
    for d in [&d, &named] {
        let report = test_connection(d, None, &TestContext::default(), refused.clone()).await;
        assert!(!report.ok);
        assert!(
            report.steps[0].message.contains("loopback"),
            "{:?}",
            report.steps[0]
        );
    }
    assert_eq!(
        server.faults.seen("ListMultipartUploads"),
        0,
        "no request may reach a refused endpoint"
    );
}
