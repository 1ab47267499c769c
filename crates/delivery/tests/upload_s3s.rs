//! Streaming uploads against the in-process S3 server: object sizes around the part size,
//! transient faults retried into exactly one object, fatal ones failing fast, a stream that
//! stops mid-way or a server that dies leaving no object and no open upload.

use std::io::Write as _;
use std::sync::Arc;
use wharf_delivery::ClientSettings;
use wharf_delivery::local_s3::Fault;
use wharf_delivery::upload::{
    self, MIN_PART_SIZE, ObjectSpec, UploadProgress, UploadSettings, UploadTarget, UploadedObject,
};
use wharf_delivery::{DeliveryError, s3_client};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Destination};
use wharf_testkit::{RecordingJournal, S3TestServer, bucket_residue, object_bytes};

const BUCKET: &str = "wharf-upload";

fn destination(server: &S3TestServer, checksum: &str) -> S3Destination {
    let spec: S3DestinationSpec = serde_json::from_value(serde_json::json!({
        "name": "up", "bucket": BUCKET, "region": "us-east-1", "prefix": "exports",
        "endpoint": server.endpoint(), "checksum": checksum,
        "auth": {"type": "access-key", "access_key_id": server.access_key, "secret_access_key": server.secret_key},
    }))
    .expect("spec");
    spec.validate(
        || ExternalId::from_stored("wharf-unused").expect("id"),
        true,
    )
    .expect("valid destination")
}

struct Harness {
    server: S3TestServer,
    target: Arc<UploadTarget>,
    journal: Arc<RecordingJournal>,
}

impl Harness {
    async fn start(checksum: &str) -> Self {
        let server = S3TestServer::start().await;
        server.create_bucket(BUCKET).await;
        let d = destination(&server, checksum);
        let settings = ClientSettings {
            allow_private_endpoints: true,
            max_attempts: 4,
            ..ClientSettings::default()
        };
        let client = s3_client(&d, None, "test", settings.clone())
            .await
            .expect("client");
        Self {
            target: Arc::new(UploadTarget::new(client, &d, &settings)),
            server,
            journal: Arc::default(),
        }
    }

    /// Streams `data` in 64 KiB writes; `stop_after` drops the sink after that many bytes
    /// instead of finishing (a source that fails mid-stream).
    async fn upload(
        &self,
        key: &str,
        data: Vec<u8>,
        stop_after: Option<usize>,
    ) -> Result<UploadedObject, DeliveryError> {
        self.upload_in_writes_of(64 * 1024, key, data, stop_after)
            .await
    }

    async fn upload_in_writes_of(
        &self,
        write_size: usize,
        key: &str,
        data: Vec<u8>,
        stop_after: Option<usize>,
    ) -> Result<UploadedObject, DeliveryError> {
        let (mut sink, upload) = upload::start(
            self.target.clone(),
            ObjectSpec {
                key: key.into(),
                content_type: "text/csv; charset=utf-8".into(),
                content_encoding: None,
                overwrite: false,
            },
            UploadSettings {
                part_size: MIN_PART_SIZE,
                max_in_flight: 2,
            },
            self.journal.clone(),
            Arc::new(UploadProgress::default()),
        );
        tokio::task::spawn_blocking(move || {
            let limit = stop_after.unwrap_or(data.len());
            for chunk in data[..limit].chunks(write_size) {
                if sink.write_all(chunk).is_err() {
                    return;
                }
            }
            if stop_after.is_none() {
                let _ = sink.finish();
            }
        })
        .await
        .expect("writer thread");
        upload.finish().await
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        object_bytes(&self.server.admin(), BUCKET, key).await
    }

    async fn residue(&self) -> (Vec<String>, Vec<String>) {
        bucket_residue(&self.server.admin(), BUCKET).await
    }
}

/// Bytes that differ at every position, so a part out of order or repeated shows.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The checksum wharf must record, from a CRC32C written from its definition (not the
/// library wharf uses).
fn crc32c(bytes: &[u8]) -> String {
    wharf_testkit::checksums::crc32c_record(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_around_the_part_size_round_trip_byte_for_byte() {
    let h = Harness::start("crc32c").await;
    let cases = [
        (0, 0, 1),
        (1, 0, 1),
        (MIN_PART_SIZE, 0, 1),
        (MIN_PART_SIZE + 1, 2, 2),
        (3 * MIN_PART_SIZE + 7, 4, 4),
    ];
    // In 64 KiB writes, and in one write of the whole object (a Parquet column chunk can be
    // larger than a part): the parts are cut at the same places.
    let writes = [64 * 1024, usize::MAX];
    for ((len, uploaded_parts, parts), write_size) in
        cases.into_iter().flat_map(|case| writes.map(|w| (case, w)))
    {
        let key = format!("exports/size-{len}-writes-{write_size}.bin");
        let before = h.server.faults.seen("UploadPart");
        let bytes = data(len);
        let object = h
            .upload_in_writes_of(write_size, &key, bytes.clone(), None)
            .await
            .expect("uploads");
        assert_eq!(object.bytes, len as u64, "{key}");
        assert_eq!(object.parts, parts, "{key}");
        assert_eq!(
            h.server.faults.seen("UploadPart") - before,
            uploaded_parts,
            "{key}"
        );
        assert_eq!(object.checksum, crc32c(&bytes), "{key}: recorded checksum");
        assert!(h.object(&key).await == bytes, "{key}: stored bytes differ");
    }
    let (_, uploads) = h.residue().await;
    assert!(uploads.is_empty(), "{uploads:?}");
    // Single-request objects carry the checksum S3 verified and stored.
    let head = h
        .server
        .admin()
        .head_object()
        .bucket(BUCKET)
        .key(format!("exports/size-1-writes-{}.bin", 64 * 1024))
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.checksum_crc32_c().map(|c| format!("crc32c:{c}")),
        Some(crc32c(&data(1)))
    );
    assert_eq!(head.content_type(), Some("text/csv; charset=utf-8"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_on_every_step_retry_into_exactly_one_object() {
    let faults = [
        Fault::Error {
            code: "SlowDown".into(),
            status: 503,
        },
        Fault::Error {
            code: "InternalError".into(),
            status: 500,
        },
        Fault::Drop,
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let h = Harness::start("crc32c").await;
        for operation in [
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
        ] {
            h.server.faults.inject(operation, fault.clone(), 2);
        }
        let key = format!("exports/retried-{i}.csv");
        let bytes = data(2 * MIN_PART_SIZE + 5);
        let object = h
            .upload(&key, bytes.clone(), None)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(object.parts, 3);
        assert!(h.object(&key).await == bytes, "{fault:?}: bytes differ");
        let (objects, uploads) = h.residue().await;
        assert_eq!(objects, vec![key.clone()], "{fault:?}: exactly one object");
        assert!(uploads.is_empty(), "{fault:?}: {uploads:?}");
        // Every step met its two faults and then succeeded: two requests more than a clean
        // upload's one Create, three parts and one Complete.
        assert_eq!(
            h.server.faults.seen("CreateMultipartUpload"),
            3,
            "{fault:?}"
        );
        assert_eq!(
            h.server.faults.seen("CompleteMultipartUpload"),
            3,
            "{fault:?}"
        );
        assert_eq!(h.server.faults.seen("UploadPart"), 3 + 2, "{fault:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_with_an_error_body_on_complete_is_not_success() {
    let h = Harness::start("crc32c").await;
    // More than the SDK retries: the upload must fail, not be reported as written.
    h.server
        .faults
        .inject("CompleteMultipartUpload", Fault::OkWithErrorBody, 10);
    let err = h
        .upload("exports/error-body.csv", data(MIN_PART_SIZE + 1), None)
        .await
        .expect_err("an <Error> body is a failure");
    assert_eq!(err.code(), "s3.InternalError", "{err}");
    let (objects, uploads) = h.residue().await;
    assert!(objects.is_empty(), "{objects:?}");
    assert!(uploads.is_empty(), "aborted: {uploads:?}");
    assert_eq!(
        h.journal.events().last().map(String::as_str),
        Some("finished false")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_fails_fast_and_leaves_nothing() {
    let h = Harness::start("crc32c").await;
    h.server.deny(&h.server.access_key.clone(), "UploadPart");
    let err = h
        .upload("exports/denied.csv", data(3 * MIN_PART_SIZE), None)
        .await
        .expect_err("denied");
    assert_eq!(err.code(), "s3.AccessDenied", "{err}");
    // Fails fast: a 403 is not retried. The server answers before reading a part's body and
    // closes the connection, so a part still being sent can see a reset instead of the 403 and
    // be retried once as a transport error: at most two requests for each of the three parts
    // (seen under load: 5), where retrying the 403 would make twelve (4 attempts each).
    assert!(
        h.server.faults.seen("UploadPart") <= 6,
        "{}",
        h.server.faults.seen("UploadPart")
    );
    let (objects, uploads) = h.residue().await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_stops_mid_way_leaves_no_object_and_no_upload() {
    let h = Harness::start("crc32c").await;
    let err = h
        .upload(
            "exports/stopped.csv",
            data(3 * MIN_PART_SIZE),
            Some(2 * MIN_PART_SIZE + 10),
        )
        .await
        .expect_err("cancelled");
    assert!(matches!(err, DeliveryError::Cancelled(_)), "{err}");
    assert!(
        h.server.faults.seen("UploadPart") >= 1,
        "parts were sent before the stop"
    );
    let (objects, uploads) = h.residue().await;
    assert!(
        objects.is_empty() && uploads.is_empty(),
        "{objects:?} {uploads:?}"
    );
    let events = h.journal.events();
    assert_eq!(
        events,
        [
            "intent exports/stopped.csv",
            "created true",
            "finished false"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_key_is_an_error_not_a_silent_replace() {
    let h = Harness::start("crc32c").await;
    let key = "exports/once.csv";
    h.upload(key, data(10), None).await.expect("first write");
    let err = h
        .upload(key, data(20), None)
        .await
        .expect_err("second write");
    assert!(matches!(err, DeliveryError::KeyExists { .. }), "{err}");
    let err = h
        .upload(key, data(MIN_PART_SIZE + 20), None)
        .await
        .expect_err("second write, multipart");
    assert!(matches!(err, DeliveryError::KeyExists { .. }), "{err}");
    assert!(
        h.object(key).await == data(10),
        "the first object is untouched"
    );
    let (_, uploads) = h.residue().await;
    assert!(uploads.is_empty(), "{uploads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_upload_leaves_no_object() {
    let h = Harness::start("crc32c").await;
    // Parts stall; the server dies while they do.
    h.server.faults.inject(
        "UploadPart",
        Fault::Delay(std::time::Duration::from_secs(30)),
        10,
    );
    let target = h.target.clone();
    let journal = h.journal.clone();
    let (mut sink, upload) = upload::start(
        target,
        ObjectSpec {
            key: "exports/killed.csv".into(),
            content_type: "text/csv".into(),
            content_encoding: None,
            overwrite: false,
        },
        UploadSettings {
            part_size: MIN_PART_SIZE,
            max_in_flight: 2,
        },
        journal,
        Arc::new(UploadProgress::default()),
    );
    let writer = tokio::task::spawn_blocking(move || {
        let bytes = data(3 * MIN_PART_SIZE);
        for chunk in bytes.chunks(64 * 1024) {
            if sink.write_all(chunk).is_err() {
                return;
            }
        }
        let _ = sink.finish();
    });
    // The server dies once parts are stalled inside it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while h.server.faults.seen("UploadPart") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no part reached the server"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let root = h.server.stop_keeping_files().await;
    let err = upload.finish().await.expect_err("the server is gone");
    assert!(err.code().starts_with("s3."), "{err}");
    writer.await.expect("writer");
    // Nothing at the final key (the bucket's folder is where the server kept it); the upload
    // id is in the journal for the janitor.
    let bucket = root.path().join(BUCKET);
    assert!(bucket.is_dir(), "{} holds the bucket", bucket.display());
    assert!(!bucket.join("exports/killed.csv").exists());
    let events = h.journal.events();
    assert_eq!(
        events[..2],
        [
            "intent exports/killed.csv".to_string(),
            "created true".to_string()
        ]
    );
}

#[test]
fn data_is_not_periodic() {
    let d = data(1 << 20);
    assert_ne!(d[..4096], d[4096..8192]);
}

/// The local endpoint answers CompleteMultipartUpload at once and keeps the connection alive
/// while it assembles the object (as S3 does), so a client whose read timeout is shorter than
/// the assembly neither gives up nor retries: one request, one whole object. (A Complete that is
/// retried after all, its answer lost, is `a_retried_write_that_meets_its_own_object_is_a_success`
/// and the conformance suite's `lost_answers_are_retried_into_one_object`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_slower_than_the_client_timeout_is_kept_alive_and_sent_once() {
    let server = S3TestServer::start().await;
    server.create_bucket(BUCKET).await;
    let admin = server.admin();
    let key = "exports/slow-complete.bin";
    let upload = admin
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("create");
    let upload_id = upload.upload_id().expect("id").to_string();
    let part = bytes::Bytes::from(data(MIN_PART_SIZE));
    let mut parts = Vec::new();
    for number in 1..=12 {
        let out = admin
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(part.clone().into())
            .send()
            .await
            .expect("part");
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
    }
    let read_timeout = std::time::Duration::from_millis(250);
    // 60 MiB assemble in tens of milliseconds: the test makes the assembly slow.
    server.faults.inject(
        "CompleteMultipartUpload",
        Fault::SlowWork(4 * read_timeout),
        1,
    );
    let impatient = aws_sdk_s3::Client::from_conf(
        admin
            .config()
            .to_builder()
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .read_timeout(read_timeout)
                    .build(),
            )
            .build(),
    );
    let started = std::time::Instant::now();
    impatient
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("completes despite the short read timeout");
    let took = started.elapsed();
    assert!(
        took > 2 * read_timeout,
        "the assembly ({took:?}) must outlast the read timeout ({read_timeout:?}) for this to prove anything"
    );
    assert_eq!(
        server.faults.seen("CompleteMultipartUpload"),
        1,
        "kept alive: the client never gave up and retried"
    );
    let stored = object_bytes(&admin, BUCKET, key).await;
    assert_eq!(stored.len(), 12 * MIN_PART_SIZE);
    assert!(
        stored.chunks(MIN_PART_SIZE).all(|c| c == part.as_ref()),
        "every part in place"
    );
    let (_, uploads) = bucket_residue(&admin, BUCKET).await;
    assert!(uploads.is_empty(), "{uploads:?}");
}

/// A write whose answer is lost (the server stored it, then a 500) is retried by the SDK, and
/// the retry meets the object its first attempt wrote: a 412 under `If-None-Match: *` for a
/// PutObject, the first attempt's result for a Complete. Either way the upload succeeded; it
/// must not be reported as someone else's object at the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_that_meets_its_own_object_is_a_success() {
    let h = Harness::start("crc32c").await;
    let lost = Fault::LoseAnswer {
        code: "InternalError".into(),
        status: 500,
    };
    h.server.faults.inject("PutObject", lost.clone(), 1);
    h.server.faults.inject("CompleteMultipartUpload", lost, 1);
    for (key, len, operation) in [
        ("exports/put-retried.csv", 1000, "PutObject"),
        (
            "exports/complete-retried.csv",
            MIN_PART_SIZE + 7,
            "CompleteMultipartUpload",
        ),
    ] {
        let object = h
            .upload(key, data(len), None)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(object.bytes, len as u64, "{key}");
        assert_eq!(object.checksum, crc32c(&data(len)), "{key}");
        assert!(h.object(key).await == data(len), "{key}: bytes differ");
        assert_eq!(h.server.faults.seen(operation), 2, "{key}: one retry");
    }
    let (objects, uploads) = h.residue().await;
    assert_eq!(
        objects,
        ["exports/complete-retried.csv", "exports/put-retried.csv"]
    );
    assert!(uploads.is_empty(), "{uploads:?}");
}
