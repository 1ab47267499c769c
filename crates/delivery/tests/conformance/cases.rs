//! The cases, each a function of a server handle; `main.rs` says which server proves which.

use crate::server::{PART, Server, data, eventually, put, put_with, start};
use std::io::Write as _;
use std::sync::Arc;
use wharf_delivery::DeliveryError;
use wharf_delivery::upload::{self, JanitorOutcome, StaleRef};
use wharf_testkit::checksums::{crc32c_record, crc64nvme_record};
use wharf_testkit::{ProxyFault, RecordingJournal};

/// Objects of 0, 1, 5 MiB (one PutObject), 5 MiB + 1 and 15 MiB + 7 (multipart) round-trip
/// byte for byte, with the part count and a CRC32C computed here.
pub(crate) async fn sizes_round_trip(s: &Server) {
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
pub(crate) async fn checksum_modes(s: &Server) {
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
pub(crate) async fn damaged_part_with_a_checksum_is_refused_and_resent(s: &Server) {
    damaged_part_is_refused_and_resent(s, "crc32c").await;
}

/// As [`damaged_part_with_a_checksum_is_refused_and_resent`] without a CRC (`when-required`):
/// only the signed payload's SHA-256 can catch the damage.
pub(crate) async fn damaged_part_without_a_checksum_is_refused_and_resent(s: &Server) {
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
pub(crate) async fn put_never_replaces_an_existing_key(s: &Server) {
    second_write_is_refused(s, "exports/once-put.bin", 20).await;
}

/// `If-None-Match: *` on CompleteMultipartUpload: a second write in parts never replaces the
/// object there.
pub(crate) async fn complete_never_replaces_an_existing_key(s: &Server) {
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
pub(crate) async fn upload_aborted_underneath_fails_clearly(s: &Server) {
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
pub(crate) async fn lost_answers_are_retried_into_one_object(s: &Server) {
    let mut keys = Vec::new();
    // With a CRC the server may keep, and without one (`when-required`): then wharf knows its
    // object by the ETag its bytes give.
    for mode in ["crc32c", "when-required"] {
        let target = s.target(serde_json::json!({"checksum": mode})).await;
        for (len, operation) in [(1000, "PutObject"), (PART + 7, "CompleteMultipartUpload")] {
            let key = format!("exports/{mode}-{operation}-lost.bin");
            let (fired, seen) = (s.proxy.fired(operation), s.proxy.seen(operation));
            s.proxy.inject(operation, ProxyFault::LoseAnswer, 1);
            let bytes = data(len);
            let object = put(&target, &key, &bytes)
                .await
                .unwrap_or_else(|e| panic!("{:?} {key}: {e}", s.kind));
            assert_eq!(
                s.proxy.fired(operation) - fired,
                1,
                "{key}: the answer was lost"
            );
            assert_eq!(s.proxy.seen(operation) - seen, 2, "{key}: sent again once");
            assert_eq!(object.checksum, crc32c_record(&bytes), "{key}");
            assert!(
                s.object(&key).await == bytes,
                "{:?} {key}: stored bytes differ",
                s.kind
            );
            keys.push(key);
        }
    }
    keys.sort();
    assert_eq!(s.objects_without_uploads().await, keys);
}

/// A source that stops mid-stream: the upload is aborted and the server lists no upload and
/// no parts for it.
pub(crate) async fn abort_leaves_no_parts(s: &Server) {
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
pub(crate) async fn janitor_aborts_stale_uploads(s: &Server) {
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
pub(crate) async fn storage_class_and_acl_reach_the_server(s: &Server) {
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
pub(crate) async fn sse_s3_is_applied(s: &Server) {
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
pub(crate) async fn sse_kms_is_applied(s: &Server) {
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
