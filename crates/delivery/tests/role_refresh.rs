//! Assumed-role credentials that expire during a long upload are replaced before they expire,
//! and the same upload carries on: against an STS stand-in whose credentials live 4 seconds and
//! an S3 server that refuses each key the moment it expires.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wharf_delivery::local_s3::Fault;
use wharf_delivery::upload::{self, MIN_PART_SIZE, ObjectSpec, UploadProgress, UploadSettings};
use wharf_delivery::{ClientSettings, Identity, s3_client};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Auth};
use wharf_testkit::checksums::crc32c_record;
use wharf_testkit::{RecordingJournal, S3TestServer, StsStandIn, object_bytes};

const BUCKET: &str = "wharf-role";
const ROLE: &str = "arn:aws:iam::123456789012:role/wharf-lake";
const LIFETIME: Duration = Duration::from_secs(4);
const MARGIN: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_expiring_mid_upload_are_refreshed_and_the_upload_continues() {
    let pool: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("ASIASTANDIN{i:04}"),
                format!("secret-{i}-{}", uuid::Uuid::new_v4()),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = pool.iter().map(|(k, s)| (k.as_str(), s.as_str())).collect();
    let server = Arc::new(S3TestServer::start_with_keys(&borrowed).await);
    server.create_bucket(BUCKET).await;
    let sts = Arc::new(StsStandIn::start(pool, LIFETIME).await);

    // Each key stops working the moment it expires, as AWS's do.
    let revoker = tokio::spawn({
        let (server, sts) = (server.clone(), sts.clone());
        async move {
            loop {
                let now = SystemTime::now();
                for issued in sts.issued() {
                    if issued.expires <= now {
                        server.revoke(&issued.access_key);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });

    // wharf's own identity, with STS at the stand-in.
    let identity = Identity::from_config(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(sts.endpoint())
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIAWHARF",
                "wharf-secret",
                None,
                None,
                "test",
            ))
            .load()
            .await,
    );
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": "lake", "bucket": BUCKET, "region": "us-east-1", "checksum": "crc32c",
        "auth": {"type": "role", "role_arn": ROLE, "session_duration_seconds": 900},
    }))
    .expect("spec");
    let destination = spec
        .validate(
            || ExternalId::from_stored("wharf-0123456789abcdef0123456789abcdef").expect("id"),
            true,
        )
        .expect("valid destination");
    let S3Auth::AssumeRole { external_id, .. } = &destination.auth else {
        panic!("a role destination");
    };
    let external_id = external_id.as_str().to_string();
    let settings = ClientSettings {
        allow_private_endpoints: true,
        max_attempts: 2,
        operator_s3_endpoint: Some(server.endpoint()),
        credential_refresh_margin: MARGIN,
    };
    let client = s3_client(&destination, Some(&identity), "run-1", settings.clone())
        .await
        .expect("client");
    let target = Arc::new(upload::UploadTarget::new(client, &destination, &settings));

    // 16 parts, each held 600 ms by the server, two at a time: about 5 s, longer than a key
    // lives. The hold is shorter than the margin, so a key never expires while its request is
    // held before the server checks it.
    let parts = 16;
    server.faults.inject(
        "UploadPart",
        Fault::Delay(Duration::from_millis(600)),
        parts,
    );
    let journal = Arc::new(RecordingJournal::default());
    let (mut sink, upload) = upload::start(
        target,
        ObjectSpec {
            key: "exports/long.bin".into(),
            content_type: "application/octet-stream".into(),
            content_encoding: None,
            overwrite: false,
        },
        UploadSettings {
            part_size: MIN_PART_SIZE,
            max_in_flight: 2,
        },
        journal.clone(),
        Arc::new(UploadProgress::default()),
    );
    let bytes: Vec<u8> = (0..parts * MIN_PART_SIZE)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let started = Instant::now();
    let writer = tokio::task::spawn_blocking({
        let bytes = bytes.clone();
        move || {
            sink.write_all(&bytes).expect("write");
            sink.finish().expect("finish");
        }
    });
    let finished = upload.finish().await;
    // The timeline, for a failure's report.
    for issued in sts.issued() {
        eprintln!(
            "{} expires {:?} after the start",
            issued.access_key,
            issued
                .expires
                .duration_since(SystemTime::now() - started.elapsed())
        );
    }
    eprintln!("the upload ended after {:?}", started.elapsed());
    let object = finished.expect("the upload outlives its credentials");
    writer.await.expect("writer");
    let took = started.elapsed();
    revoker.abort();

    assert_eq!(object.parts, parts as u32);
    assert_eq!(object.checksum, crc32c_record(&bytes));
    assert!(
        object_bytes(&server.admin(), BUCKET, "exports/long.bin").await == bytes,
        "stored bytes differ"
    );
    // One upload from start to end, not restarted.
    assert_eq!(server.faults.seen("CreateMultipartUpload"), 1);
    assert_eq!(journal.upload_ids().len(), 1);
    assert_eq!(server.faults.seen("UploadPart"), parts);

    // Keys outlived by the upload were replaced: a handful of STS calls, not one per request.
    let issued = sts.issued();
    let requests = parts + 2;
    assert!(
        took > LIFETIME + Duration::from_secs(1),
        "the upload ({took:?}) must outlast a key ({LIFETIME:?}) to prove anything"
    );
    // The client replaces a key between MARGIN and 1.5 x MARGIN before it expires (the SDK
    // jitters the margin by up to half), so a key serves at least LIFETIME - 1.5 x MARGIN.
    let shortest_use = LIFETIME - MARGIN.mul_f64(1.5);
    let most = (took.as_secs_f64() / shortest_use.as_secs_f64()).ceil() as usize + 1;
    assert!(
        issued.len() >= 2 && issued.len() <= most,
        "{} AssumeRole calls in {took:?} (at most {most}) for {requests} requests",
        issued.len()
    );
    assert!(issued.len() < requests, "{} STS calls", issued.len());
    for call in &issued {
        assert_eq!(call.params.get("RoleArn").map(String::as_str), Some(ROLE));
        assert_eq!(
            call.params.get("ExternalId").map(String::as_str),
            Some(external_id.as_str())
        );
        assert_eq!(
            call.params.get("DurationSeconds").map(String::as_str),
            Some("900")
        );
        assert_eq!(
            call.params.get("RoleSessionName").map(String::as_str),
            Some("wharf-lake-run-1")
        );
    }
}
