//! The upload conformance suite: each case written once, as a function of a server handle, and
//! run against S3 servers nobody here wrote (moto, Ceph radosgw, optionally LocalStack) as well as
//! the in-process s3s server. wharf talks to each server through a fault proxy
//! ([`FaultProxy`]) that loses answers, corrupts bodies on the wire and counts requests; checks
//! go straight to the server with an admin client, and expected values are computed here
//! (reference CRCs, the bytes written), never by the code under test.
//!
//! The macro calls at the end are the case-by-server table: a case a server cannot prove is
//! listed under `skips` with the reason, and shows as an ignored test with that reason.
//!
//! radosgw comes from `scripts/radosgw`, started once per run by `scripts/test`
//! (`WHARF_TEST_RADOSGW_*`). LocalStack is optional (a 500 MB venv, 6 s to start): its cases are
//! ignored unless asked for, after `scripts/localstack start DIR` and exporting what it prints
//! as `WHARF_TEST_LOCALSTACK_*`: `cargo test -p wharf-delivery --test conformance localstack::
//! -- --ignored`.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wharf_delivery::upload::{
    self, JanitorOutcome, MIN_PART_SIZE, ObjectSpec, PartSink, StaleRef, UploadProgress,
    UploadSettings, UploadTarget, UploadedObject,
};
use wharf_delivery::{ClientSettings, DeliveryError, s3_client};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Destination};
use wharf_testkit::checksums::{crc32c_record, crc64nvme_record};
use wharf_testkit::{
    FaultProxy, Moto, ProxyFault, RecordingJournal, S3TestServer, bucket_residue, object_bytes,
};

const PART: usize = MIN_PART_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    S3s,
    Moto,
    Radosgw,
    LocalStack,
}

/// What keeps a server alive for the test (radosgw and LocalStack outlive it).
#[allow(dead_code)]
enum Backing {
    S3s(S3TestServer),
    Moto(Moto),
    External,
}

/// A server under test: a bucket of its own, the proxy wharf goes through, admin keys.
struct Server {
    kind: Kind,
    _backing: Backing,
    upstream: String,
    access_key: String,
    secret_key: String,
    bucket: String,
    proxy: FaultProxy,
    /// A KMS key id the server accepts for SSE-KMS.
    kms_key_id: Option<String>,
}

/// What a test needs to reach a server started outside it by `script`: from
/// `WHARF_TEST_<NAME>_ENDPOINT`, `_ACCESS_KEY`, `_SECRET_KEY` and `_KMS_KEY_ID`.
fn external(name: &str, script: &str) -> (String, String, String, String) {
    let var = |suffix: &str| {
        let var = format!("WHARF_TEST_{name}_{suffix}");
        std::env::var(&var).unwrap_or_else(|_| {
            panic!("{var} is not set: run the tests with scripts/test, which starts {script}")
        })
    };
    (
        var("ENDPOINT"),
        var("ACCESS_KEY"),
        var("SECRET_KEY"),
        var("KMS_KEY_ID"),
    )
}

/// moto keeps any KMS key id it is given, as long as it is shaped like one.
const MOTO_KMS_KEY: &str =
    "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

impl Server {
    async fn run(kind: Kind, case: impl AsyncFnOnce(&Server)) {
        let server = Self::start(kind).await;
        case(&server).await;
    }

    async fn start(kind: Kind) -> Self {
        let bucket = format!(
            "conformance-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let (backing, upstream, access_key, secret_key, kms_key_id) = match kind {
            Kind::S3s => {
                let s3s = S3TestServer::start().await;
                let (endpoint, key, secret) = (
                    s3s.endpoint(),
                    s3s.access_key.clone(),
                    s3s.secret_key.clone(),
                );
                (Backing::S3s(s3s), endpoint, key, secret, None)
            }
            Kind::Moto => {
                // moto creates the bucket itself.
                let moto = tokio::task::spawn_blocking({
                    let bucket = bucket.clone();
                    move || Moto::start(&bucket)
                })
                .await
                .expect("start moto");
                let (endpoint, key, secret) = (
                    moto.endpoint(),
                    moto.admin.access_key.clone(),
                    moto.admin.secret_key.clone(),
                );
                let kms = Some(MOTO_KMS_KEY.to_string());
                (Backing::Moto(moto), endpoint, key, secret, kms)
            }
            Kind::Radosgw => {
                let (endpoint, key, secret, kms) = external("RADOSGW", "scripts/radosgw");
                (Backing::External, endpoint, key, secret, Some(kms))
            }
            Kind::LocalStack => {
                let (endpoint, key, secret, kms) = external("LOCALSTACK", "scripts/localstack");
                (Backing::External, endpoint, key, secret, Some(kms))
            }
        };
        let proxy = FaultProxy::start(&upstream).await;
        let server = Self {
            kind,
            _backing: backing,
            upstream,
            access_key,
            secret_key,
            bucket,
            proxy,
            kms_key_id,
        };
        if kind != Kind::Moto {
            server
                .admin()
                .create_bucket()
                .bucket(&server.bucket)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: create bucket: {e:?}"));
        }
        server
    }

    /// A client straight to the server, not through the proxy: what the test checks with.
    fn admin(&self) -> aws_sdk_s3::Client {
        wharf_testkit::s3_client(&self.upstream, &self.access_key, &self.secret_key)
    }

    /// wharf's destination for this server's bucket, through the proxy, with `options`
    /// (`checksum`, `sse`, `storage_class`...) added to the spec.
    fn destination(&self, options: serde_json::Value) -> S3Destination {
        let mut spec = serde_json::json!({
            "name": "conformance", "bucket": self.bucket, "region": "us-east-1",
            "endpoint": self.proxy.endpoint(),
            "auth": {"type": "access-key", "access_key_id": self.access_key, "secret_access_key": self.secret_key},
        });
        if let (Some(spec), Some(options)) = (spec.as_object_mut(), options.as_object()) {
            spec.extend(options.clone());
        }
        let spec: S3DestinationSpec = serde_json::from_value(spec).expect("spec");
        spec.validate(
            || ExternalId::from_stored("wharf-unused").expect("id"),
            true,
        )
        .expect("valid destination")
    }

    async fn target(&self, options: serde_json::Value) -> Arc<UploadTarget> {
        let destination = self.destination(options);
        let settings = ClientSettings {
            allow_private_endpoints: true,
            max_attempts: 4,
            ..ClientSettings::default()
        };
        let client = s3_client(&destination, None, "conformance", settings.clone())
            .await
            .expect("client");
        Arc::new(UploadTarget::new(client, &destination, &settings))
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        object_bytes(&self.admin(), &self.bucket, key).await
    }

    /// The bucket's keys and open uploads; asserts that no upload is open.
    async fn objects_without_uploads(&self) -> Vec<String> {
        let (objects, uploads) = bucket_residue(&self.admin(), &self.bucket).await;
        assert!(
            uploads.is_empty(),
            "{:?}: uploads left open: {uploads:?}",
            self.kind
        );
        objects
    }
}

/// Starts an upload of `key` and hands its sink to `write` on a blocking thread.
fn start(
    target: &Arc<UploadTarget>,
    journal: &Arc<RecordingJournal>,
    key: &str,
    overwrite: bool,
) -> (PartSink, upload::ObjectUpload) {
    upload::start(
        target.clone(),
        ObjectSpec {
            key: key.into(),
            content_type: "application/octet-stream".into(),
            content_encoding: None,
            overwrite,
        },
        UploadSettings {
            part_size: PART,
            max_in_flight: 2,
        },
        journal.clone(),
        Arc::new(UploadProgress::default()),
    )
}

/// Uploads `bytes` to `key` in 64 KiB writes.
async fn put(
    target: &Arc<UploadTarget>,
    key: &str,
    bytes: &[u8],
) -> Result<UploadedObject, DeliveryError> {
    put_with(target, &Arc::default(), key, bytes, None).await
}

/// Uploads `bytes`; with `stop_after`, the writer drops the sink after that many bytes
/// (a source failing mid-stream).
async fn put_with(
    target: &Arc<UploadTarget>,
    journal: &Arc<RecordingJournal>,
    key: &str,
    bytes: &[u8],
    stop_after: Option<usize>,
) -> Result<UploadedObject, DeliveryError> {
    let (mut sink, upload) = start(target, journal, key, false);
    let bytes = bytes.to_vec();
    let writer = tokio::task::spawn_blocking(move || {
        let limit = stop_after.unwrap_or(bytes.len());
        for chunk in bytes[..limit].chunks(64 * 1024) {
            if sink.write_all(chunk).is_err() {
                return;
            }
        }
        if stop_after.is_none() {
            let _ = sink.finish();
        }
    });
    let result = upload.finish().await;
    writer.await.expect("writer thread");
    result
}

/// Bytes that differ at every position, so a part out of order or repeated shows.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- the cases ---------------------------------------------------------------------------

/// Objects of 0, 1, 5 MiB (one PutObject), 5 MiB + 1 and 15 MiB + 7 (multipart) round-trip
/// byte for byte, with the part count and a CRC32C computed here.
async fn sizes_round_trip(s: &Server) {
    let target = s.target(serde_json::json!({"checksum": "crc32c"})).await;
    let mut keys = Vec::new();
    for (len, parts) in [(0, 1), (1, 1), (PART, 1), (PART + 1, 2), (3 * PART + 7, 4)] {
        let key = format!("exports/size-{len}.bin");
        let bytes = data(len);
        let parts_before = s.proxy.seen("UploadPart");
        let object = put(&target, &key, &bytes)
            .await
            .unwrap_or_else(|e| panic!("{:?} {key}: {e}", s.kind));
        assert_eq!(object.bytes, len as u64, "{key}");
        assert_eq!(object.parts, parts, "{key}");
        let part_requests = s.proxy.seen("UploadPart") - parts_before;
        assert_eq!(
            part_requests,
            if parts == 1 { 0 } else { parts as usize },
            "{key}"
        );
        assert_eq!(object.checksum, crc32c_record(&bytes), "{key}");
        assert!(
            s.object(&key).await == bytes,
            "{:?} {key}: stored bytes differ",
            s.kind
        );
        keys.push(key);
    }
    keys.sort();
    assert_eq!(s.objects_without_uploads().await, keys);
}

/// `crc64nvme` sends that checksum on every part and object, `when-required` none; both sign
/// the payload (a custom endpoint) and record the checksum computed while streaming.
async fn checksum_modes(s: &Server) {
    for mode in ["crc64nvme", "when-required"] {
        let target = s.target(serde_json::json!({"checksum": mode})).await;
        for len in [1000, PART + 1] {
            let key = format!("exports/{mode}-{len}.bin");
            let bytes = data(len);
            let first = s.proxy.requests().len();
            let object = put(&target, &key, &bytes)
                .await
                .unwrap_or_else(|e| panic!("{:?} {key}: {e}", s.kind));
            let expected = match mode {
                "crc64nvme" => crc64nvme_record(&bytes),
                _ => crc32c_record(&bytes),
            };
            assert_eq!(object.checksum, expected, "{key}");
            assert!(
                s.object(&key).await == bytes,
                "{:?} {key}: stored bytes differ",
                s.kind
            );
            let writes: Vec<_> = s.proxy.requests()[first..]
                .iter()
                .filter(|r| matches!(r.operation, "PutObject" | "UploadPart"))
                .cloned()
                .collect();
            assert!(!writes.is_empty(), "{key}");
            for write in writes {
                let header = |name: &str| {
                    write
                        .headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let sent: Vec<_> = write
                    .headers
                    .keys()
                    .filter(|k| k.as_str().starts_with("x-amz-checksum-"))
                    .map(|k| k.as_str().to_owned())
                    .collect();
                if mode == "crc64nvme" {
                    assert_eq!(sent, ["x-amz-checksum-crc64nvme"], "{key}");
                } else {
                    assert!(sent.is_empty(), "{key}: {sent:?}");
                }
                // A custom endpoint may ignore the checksum: the payload is signed either way,
                // so the server checks the body's SHA-256.
                let payload = header("x-amz-content-sha256").unwrap_or_default();
                assert!(
                    payload.len() == 64 && payload.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{key}: a signed payload, got {payload:?}"
                );
            }
        }
    }
}

/// A part sent with a CRC (`crc32c`) whose body is damaged on the wire, after wharf computed
/// its checksum and signature, is refused by the server (by the CRC, or by the signed payload's
/// SHA-256 on a custom endpoint) and sent again: the object holds the right bytes.
async fn damaged_part_with_a_checksum_is_refused_and_resent(s: &Server) {
    damaged_part_is_refused_and_resent(s, "crc32c").await;
}

/// As [`damaged_part_with_a_checksum_is_refused_and_resent`] without a CRC (`when-required`):
/// only the signed payload's SHA-256 can catch the damage.
async fn damaged_part_without_a_checksum_is_refused_and_resent(s: &Server) {
    damaged_part_is_refused_and_resent(s, "when-required").await;
}

async fn damaged_part_is_refused_and_resent(s: &Server, mode: &str) {
    let target = s.target(serde_json::json!({"checksum": mode})).await;
    let key = format!("exports/damaged-{mode}.bin");
    let bytes = data(2 * PART + 3);
    s.proxy.inject("UploadPart", ProxyFault::CorruptBody, 1);
    let object = put(&target, &key, &bytes)
        .await
        .unwrap_or_else(|e| panic!("{:?} {key}: {e}", s.kind));
    assert_eq!(s.proxy.fired("UploadPart"), 1, "{key}: damaged once");
    assert!(
        s.object(&key).await == bytes,
        "{:?} {key}: the server stored a damaged part",
        s.kind
    );
    assert_eq!(object.checksum, crc32c_record(&bytes), "{key}");
    assert_eq!(
        s.proxy.seen("UploadPart"),
        4,
        "{key}: three parts and one sent again"
    );
    let refused: Vec<_> = s
        .proxy
        .requests()
        .iter()
        .filter(|r| r.operation == "UploadPart" && r.status != Some(200))
        .map(|r| r.status)
        .collect();
    // 400 (BadDigest, XAmzContentSHA256Mismatch) from the servers written by others; the local
    // endpoint's s3s answers a payload failing its signed SHA-256 with a 500, which the SDK
    // retries all the same.
    assert_eq!(
        refused.len(),
        1,
        "{key}: the damaged part alone was refused: {refused:?}"
    );
    s.objects_without_uploads().await;
}

/// `If-None-Match: *` on PutObject: a second write of a key never replaces the object there.
async fn put_never_replaces_an_existing_key(s: &Server) {
    second_write_is_refused(s, "exports/once-put.bin", 20).await;
}

/// `If-None-Match: *` on CompleteMultipartUpload: a second write in parts never replaces the
/// object there.
async fn complete_never_replaces_an_existing_key(s: &Server) {
    second_write_is_refused(s, "exports/once-complete.bin", PART + 20).await;
}

async fn second_write_is_refused(s: &Server, key: &str, second_len: usize) {
    let target = s.target(serde_json::json!({})).await;
    put(&target, key, &data(10)).await.expect("first write");
    let err = put(&target, key, &data(second_len))
        .await
        .expect_err("a second write of the key");
    assert!(
        matches!(err, DeliveryError::KeyExists { .. }),
        "{:?}: {err}",
        s.kind
    );
    assert!(
        s.object(key).await == data(10),
        "{:?}: the second write replaced the first object",
        s.kind
    );
    assert_eq!(s.objects_without_uploads().await, [key]);
}

/// The upload aborted underneath (by an admin, a lifecycle rule) fails with NoSuchUpload,
/// named, leaving no object; a run retries it from the start (the scheduler classifies
/// `s3.NoSuchUpload` as transient).
async fn upload_aborted_underneath_fails_clearly(s: &Server) {
    let target = s.target(serde_json::json!({})).await;
    let journal = Arc::new(RecordingJournal::default());
    let key = "exports/aborted-underneath.bin";
    let (mut sink, upload) = start(&target, &journal, key, false);
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let writer = tokio::task::spawn_blocking(move || {
        let bytes = data(4 * PART);
        let written = sink.write_all(&bytes[..PART + 1]).is_ok();
        let _ = wait.recv();
        if written && sink.write_all(&bytes[PART + 1..]).is_ok() {
            let _ = sink.finish();
        }
    });
    eventually("the first part to be stored", || {
        s.proxy
            .requests()
            .iter()
            .any(|r| r.operation == "UploadPart" && r.status == Some(200))
    })
    .await;
    let upload_id = journal.upload_ids().first().cloned().expect("an upload id");
    s.admin()
        .abort_multipart_upload()
        .bucket(&s.bucket)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .expect("the admin aborts the upload");
    go.send(()).expect("writer waiting");
    let err = upload.finish().await.expect_err("the upload is gone");
    writer.await.expect("writer thread");
    assert_eq!(err.code(), "s3.NoSuchUpload", "{:?}: {err}", s.kind);
    assert_eq!(
        journal.events().last().map(String::as_str),
        Some("finished false")
    );
    assert!(s.objects_without_uploads().await.is_empty());
}

/// The answers to a PutObject and to a CompleteMultipartUpload are lost after the server
/// acted; wharf's retry meets its own object and reports success, with one object each.
async fn lost_answers_are_retried_into_one_object(s: &Server) {
    let target = s.target(serde_json::json!({"checksum": "crc32c"})).await;
    s.proxy.inject("PutObject", ProxyFault::LoseAnswer, 1);
    s.proxy
        .inject("CompleteMultipartUpload", ProxyFault::LoseAnswer, 1);
    let mut keys = Vec::new();
    for (key, len, operation) in [
        ("exports/put-lost.bin", 1000, "PutObject"),
        (
            "exports/complete-lost.bin",
            PART + 7,
            "CompleteMultipartUpload",
        ),
    ] {
        let bytes = data(len);
        let object = put(&target, key, &bytes)
            .await
            .unwrap_or_else(|e| panic!("{:?} {key}: {e}", s.kind));
        assert_eq!(s.proxy.fired(operation), 1, "{key}: the answer was lost");
        assert_eq!(s.proxy.seen(operation), 2, "{key}: sent again once");
        assert_eq!(object.checksum, crc32c_record(&bytes), "{key}");
        assert!(
            s.object(key).await == bytes,
            "{:?} {key}: stored bytes differ",
            s.kind
        );
        keys.push(key);
    }
    keys.sort();
    assert_eq!(s.objects_without_uploads().await, keys);
}

/// A source that stops mid-stream: the upload is aborted and the server lists no upload and
/// no parts for it.
async fn abort_leaves_no_parts(s: &Server) {
    let target = s.target(serde_json::json!({})).await;
    let journal = Arc::new(RecordingJournal::default());
    let key = "exports/stopped.bin";
    let err = put_with(&target, &journal, key, &data(3 * PART), Some(2 * PART + 10))
        .await
        .expect_err("the source stopped");
    assert!(matches!(err, DeliveryError::Cancelled(_)), "{err}");
    assert!(
        s.proxy.seen("UploadPart") >= 1,
        "parts were sent before the stop"
    );
    assert!(s.proxy.seen("AbortMultipartUpload") >= 1);
    assert!(s.objects_without_uploads().await.is_empty());
    let upload_id = journal.upload_ids().first().cloned().expect("an upload id");
    let parts = s
        .admin()
        .list_parts()
        .bucket(&s.bucket)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await;
    match parts {
        // radosgw answers NoSuchKey where S3 says NoSuchUpload.
        Err(e) => assert!(
            matches!(
                aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
                Some("NoSuchUpload" | "NoSuchKey")
            ),
            "{:?}: {e:?}",
            s.kind
        ),
        Ok(listed) => assert!(
            listed.parts().is_empty(),
            "{:?}: parts survived the abort",
            s.kind
        ),
    }
}

/// The janitor finds a crashed run's upload by key with ListMultipartUploads and aborts it;
/// against a server answering 501 it leaves the upload pending and says why; by id it aborts
/// regardless.
async fn janitor_aborts_stale_uploads(s: &Server) {
    let admin = s.admin();
    let stale = |key: &'static str| {
        let admin = admin.clone();
        let bucket = s.bucket.clone();
        async move {
            let created = admin
                .create_multipart_upload()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .expect("create");
            let id = created.upload_id().expect("id").to_string();
            admin
                .upload_part()
                .bucket(&bucket)
                .key(key)
                .upload_id(&id)
                .part_number(1)
                .body(data(1000).into())
                .send()
                .await
                .expect("part");
            id
        }
    };
    let target = s.target(serde_json::json!({})).await;
    stale("exports/crashed-1.bin").await;
    let outcome = upload::abort_stale(
        &target,
        &[StaleRef {
            handle: 1,
            key: "exports/crashed-1.bin".into(),
            upload_id: None,
        }],
    )
    .await;
    assert_eq!(outcome, [(1, JanitorOutcome::Gone)], "{:?}", s.kind);
    assert!(s.proxy.seen("ListMultipartUploads") >= 1);
    assert!(s.objects_without_uploads().await.is_empty());

    let id = stale("exports/crashed-2.bin").await;
    s.proxy.inject(
        "ListMultipartUploads",
        ProxyFault::Answer {
            status: 501,
            code: "NotImplemented".into(),
        },
        10,
    );
    let pending = StaleRef {
        handle: 2,
        key: "exports/crashed-2.bin".into(),
        upload_id: None,
    };
    let outcome = upload::abort_stale(&target, std::slice::from_ref(&pending)).await;
    assert!(
        s.proxy.fired("ListMultipartUploads") >= 1,
        "the 501 was answered"
    );
    match &outcome[..] {
        [(2, JanitorOutcome::Pending(reason))] => {
            assert!(reason.contains("ListMultipartUploads"), "{reason}");
        }
        other => panic!("{:?}: {other:?}", s.kind),
    }
    let outcome = upload::abort_stale(
        &target,
        &[StaleRef {
            upload_id: Some(id),
            ..pending
        }],
    )
    .await;
    assert_eq!(outcome, [(2, JanitorOutcome::Gone)], "{:?}", s.kind);
    let uploads = admin
        .list_multipart_uploads()
        .bucket(&s.bucket)
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

/// Uploads a small (PutObject) and a multipart object with `options` and returns the HEAD of
/// each, after checking that every write request carried `headers` and was accepted.
async fn written_with(
    s: &Server,
    name: &str,
    options: serde_json::Value,
    headers: &[(&str, &str)],
) -> Vec<aws_sdk_s3::operation::head_object::HeadObjectOutput> {
    let target = s.target(options).await;
    let first = s.proxy.requests().len();
    let mut heads = Vec::new();
    for (key, len) in [
        (format!("exports/{name}-small.bin"), 1000),
        (format!("exports/{name}-large.bin"), PART + 1),
    ] {
        let bytes = data(len);
        put(&target, &key, &bytes)
            .await
            .unwrap_or_else(|e| panic!("{:?} {key}: {e}", s.kind));
        assert!(
            s.object(&key).await == bytes,
            "{:?} {key}: stored bytes differ",
            s.kind
        );
        heads.push(
            s.admin()
                .head_object()
                .bucket(&s.bucket)
                .key(&key)
                .send()
                .await
                .expect("head"),
        );
    }
    let writes: Vec<_> = s.proxy.requests()[first..]
        .iter()
        .filter(|r| matches!(r.operation, "PutObject" | "CreateMultipartUpload"))
        .cloned()
        .collect();
    assert_eq!(writes.len(), 2);
    for request in writes {
        for (name, value) in headers {
            let sent = request.headers.get(*name).and_then(|v| v.to_str().ok());
            assert_eq!(sent, Some(*value), "{} {name}", request.operation);
        }
        assert_eq!(request.status, Some(200), "{}", request.path_and_query);
    }
    heads
}

/// The storage class and the canned ACL reach the server; the class is reported on HEAD.
async fn storage_class_and_acl_reach_the_server(s: &Server) {
    let heads = written_with(
        s,
        "class",
        serde_json::json!({"storage_class": "STANDARD_IA", "acl": "bucket-owner-full-control"}),
        &[
            ("x-amz-storage-class", "STANDARD_IA"),
            ("x-amz-acl", "bucket-owner-full-control"),
        ],
    )
    .await;
    for head in heads {
        assert_eq!(
            head.storage_class(),
            Some(&aws_sdk_s3::types::StorageClass::StandardIa),
            "{:?}",
            s.kind
        );
    }
}

/// SSE-S3 (`AES256`) reaches the server and the server reports the object encrypted.
async fn sse_s3_is_applied(s: &Server) {
    let heads = written_with(
        s,
        "sse-s3",
        serde_json::json!({"sse": "aes256"}),
        &[("x-amz-server-side-encryption", "AES256")],
    )
    .await;
    for head in heads {
        assert_eq!(
            head.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256),
            "{:?}",
            s.kind
        );
    }
}

/// SSE-KMS with the server's key: sent on PutObject and CreateMultipartUpload, reported on HEAD
/// with the key.
async fn sse_kms_is_applied(s: &Server) {
    let key_id = s.kms_key_id.clone().expect("a KMS key on this server");
    let heads = written_with(
        s,
        "sse-kms",
        serde_json::json!({"sse": "kms", "kms_key_id": key_id}),
        &[
            ("x-amz-server-side-encryption", "aws:kms"),
            (
                "x-amz-server-side-encryption-aws-kms-key-id",
                key_id.as_str(),
            ),
        ],
    )
    .await;
    for head in heads {
        assert_eq!(
            head.server_side_encryption(),
            Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms),
            "{:?}",
            s.kind
        );
        // The key as given, or its ARN (what AWS reports for a key id).
        let reported = head.ssekms_key_id().unwrap_or_default();
        assert!(
            reported == key_id || reported.ends_with(&format!(":key/{key_id}")),
            "{:?}: {reported:?}",
            s.kind
        );
    }
}

// ---- the case-by-server table ----------------------------------------------------------------

/// Every case, in the order the table lists them.
const CASES: &[&str] = &[
    "sizes_round_trip",
    "checksum_modes",
    "damaged_part_with_a_checksum_is_refused_and_resent",
    "damaged_part_without_a_checksum_is_refused_and_resent",
    "put_never_replaces_an_existing_key",
    "complete_never_replaces_an_existing_key",
    "upload_aborted_underneath_fails_clearly",
    "lost_answers_are_retried_into_one_object",
    "abort_leaves_no_parts",
    "janitor_aborts_stale_uploads",
    "storage_class_and_acl_reach_the_server",
    "sse_s3_is_applied",
    "sse_kms_is_applied",
];

macro_rules! on_server {
    // An optional server: every case it proves is ignored unless asked for (`--ignored`); the
    // cases it cannot prove are listed, with the reason, and never run.
    ($server:ident, $kind:expr, optional: $optional:literal,
     proves: [$($case:ident),* $(,)?],
     skips: [$($skipped:ident: $reason:literal),* $(,)?]) => {
        mod $server {
            pub const LISTED: &[&str] = &[$(stringify!($case),)* $(stringify!($skipped),)*];
            /// The cases this server cannot prove, and why.
            #[allow(dead_code)]
            pub const SKIPPED: &[(&str, &str)] = &[$((stringify!($skipped), $reason),)*];
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = $optional]
                async fn $case() {
                    super::Server::run($kind, super::$case).await
                }
            )*
        }
    };
    ($server:ident, $kind:expr,
     proves: [$($case:ident),* $(,)?],
     skips: [$($skipped:ident: $reason:literal),* $(,)?]) => {
        mod $server {
            pub const LISTED: &[&str] = &[$(stringify!($case),)* $(stringify!($skipped),)*];
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::Server::run($kind, super::$case).await
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = $reason]
                async fn $skipped() {
                    super::Server::run($kind, super::$skipped).await
                }
            )*
        }
    };
}

on_server!(s3s, super::Kind::S3s,
    proves: [
        sizes_round_trip,
        checksum_modes,
        damaged_part_with_a_checksum_is_refused_and_resent,
        damaged_part_without_a_checksum_is_refused_and_resent,
        put_never_replaces_an_existing_key,
        complete_never_replaces_an_existing_key,
        upload_aborted_underneath_fails_clearly,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
    ],
    skips: [
        storage_class_and_acl_reach_the_server: "s3s-fs refuses every storage class but STANDARD (InvalidStorageClass)",
        sse_s3_is_applied: "s3s-fs neither applies nor reports server-side encryption",
        sse_kms_is_applied: "s3s-fs neither applies nor reports server-side encryption",
    ]
);

on_server!(moto, super::Kind::Moto,
    proves: [
        sizes_round_trip,
        checksum_modes,
        put_never_replaces_an_existing_key,
        complete_never_replaces_an_existing_key,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
        storage_class_and_acl_reach_the_server,
        sse_s3_is_applied,
        sse_kms_is_applied,
    ],
    skips: [
        damaged_part_with_a_checksum_is_refused_and_resent: "moto 5.1.22 checks neither x-amz-checksum-* on UploadPart nor a signed payload's SHA-256: a damaged part is stored",
        damaged_part_without_a_checksum_is_refused_and_resent: "moto 5.1.22 does not check a signed payload's SHA-256: a damaged part is stored",
        upload_aborted_underneath_fails_clearly: "moto 5.1.22 answers UploadPart to an aborted upload with a 500 (a KeyError), not NoSuchUpload",
    ]
);

on_server!(radosgw, super::Kind::Radosgw,
    proves: [
        sizes_round_trip,
        checksum_modes,
        damaged_part_with_a_checksum_is_refused_and_resent,
        damaged_part_without_a_checksum_is_refused_and_resent,
        put_never_replaces_an_existing_key,
        upload_aborted_underneath_fails_clearly,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
        storage_class_and_acl_reach_the_server,
        sse_kms_is_applied,
    ],
    skips: [
        complete_never_replaces_an_existing_key: "radosgw 16.2 ignores If-None-Match on CompleteMultipartUpload: the second object replaces the first",
        sse_s3_is_applied: "radosgw 16.2 accepts AES256 without a key store: the object is stored unencrypted and HEAD reports no encryption",
    ]
);

on_server!(localstack, super::Kind::LocalStack,
    optional: "LocalStack is optional: scripts/localstack start DIR, export WHARF_TEST_LOCALSTACK_*, run with --ignored",
    proves: [
        sizes_round_trip,
        checksum_modes,
        damaged_part_with_a_checksum_is_refused_and_resent,
        put_never_replaces_an_existing_key,
        complete_never_replaces_an_existing_key,
        upload_aborted_underneath_fails_clearly,
        lost_answers_are_retried_into_one_object,
        abort_leaves_no_parts,
        janitor_aborts_stale_uploads,
        storage_class_and_acl_reach_the_server,
        sse_s3_is_applied,
        sse_kms_is_applied,
    ],
    skips: [
        damaged_part_without_a_checksum_is_refused_and_resent: "LocalStack checks neither SigV4 signatures nor a signed payload's SHA-256: without a CRC a damaged part is stored",
    ]
);

#[test]
fn every_server_lists_every_case_once() {
    for (server, listed) in [
        ("s3s", s3s::LISTED),
        ("moto", moto::LISTED),
        ("radosgw", radosgw::LISTED),
        ("localstack", localstack::LISTED),
    ] {
        let mut listed = listed.to_vec();
        let mut cases = CASES.to_vec();
        listed.sort_unstable();
        cases.sort_unstable();
        assert_eq!(listed, cases, "{server}");
    }
}
