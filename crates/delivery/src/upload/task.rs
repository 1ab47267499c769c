//! The async half of an upload: PutObject or a multipart upload with bounded parts in flight,
//! completion with the whole-object checksum, and abort on any failure.

use super::options::{self, acl, kms_key, sse, storage_class};
use super::{
    CANCELLED_STOPPED, Chunk, MAX_PARTS, ObjectSpec, UploadJournal, UploadProgress, UploadTarget,
    UploadedObject,
};
use crate::aws_error::AwsFailure;
use crate::error::DeliveryError;
use aws_sdk_s3::operation::RequestId as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use crc_fast::CrcAlgorithm;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::JoinSet;

pub(super) struct Upload {
    pub(super) target: Arc<UploadTarget>,
    pub(super) object: ObjectSpec,
    pub(super) max_in_flight: usize,
    pub(super) journal: Arc<dyn UploadJournal>,
    pub(super) progress: Arc<UploadProgress>,
}

pub(super) fn aws<E>(
    operation: &'static str,
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> DeliveryError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = AwsFailure::from_sdk(err);
    if failure.status == Some(412) || failure.is_code(&["PreconditionFailed"]) {
        return DeliveryError::KeyExists { operation, failure };
    }
    DeliveryError::Aws { operation, failure }
}

impl Upload {
    pub(super) async fn run(
        self,
        mut rx: tokio::sync::mpsc::Receiver<Chunk>,
    ) -> Result<UploadedObject, DeliveryError> {
        match rx.recv().await {
            None => Err(DeliveryError::Cancelled(CANCELLED_STOPPED.into())),
            Some(Chunk::Last {
                body,
                full_crc,
                total,
                ..
            }) => self.put(body, full_crc, total).await,
            Some(first) => self.multipart(first, rx).await,
        }
    }

    pub(super) async fn put(
        &self,
        body: Bytes,
        crc: u64,
        total: u64,
    ) -> Result<UploadedObject, DeliveryError> {
        let t = &self.target;
        let checksum = t.encode_crc(crc);
        self.journal
            .before_commit(&self.object.key)
            .await
            .map_err(DeliveryError::Fenced)?;
        let started = std::time::Instant::now();
        let send = || {
            let mut req = t
                .client
                .put_object()
                .bucket(&t.bucket)
                .key(&self.object.key)
                .content_type(&self.object.content_type)
                .set_content_encoding(self.object.content_encoding.clone())
                .content_length(i64::try_from(total).unwrap_or(i64::MAX))
                .set_server_side_encryption(sse(&t.delivery))
                .set_ssekms_key_id(kms_key(&t.delivery))
                .set_storage_class(storage_class(&t.delivery))
                .set_acl(acl(&t.delivery))
                .body(ByteStream::from(body.clone()));
            if !self.object.overwrite {
                req = req.if_none_match("*");
            }
            if t.sends_checksum() {
                req = match t.algorithm().0 {
                    CrcAlgorithm::Crc64Nvme => req.checksum_crc64_nvme(&checksum),
                    _ => req.checksum_crc32_c(&checksum),
                };
            }
            async move {
                if t.signs_payload() {
                    req.send().await
                } else {
                    req.customize().disable_payload_signing().send().await
                }
            }
        };
        let sent = resend_if_damaged(&self.object.key, 1, send).await;
        let request_id = match sent {
            Ok(out) => out.request_id().map(str::to_owned),
            Err(e) => match aws("PutObject", &e) {
                // The SDK retries a PutObject whose answer was lost (a 5xx, a cut connection);
                // the retry then meets the object the first attempt wrote. Only an object of
                // the same size and checksum is ours.
                exists @ DeliveryError::KeyExists { .. } => {
                    if !self
                        .is_ours(total, &checksum, || Some(body_etag(&body)))
                        .await
                    {
                        return Err(exists);
                    }
                    None
                }
                other => return Err(other),
            },
        };
        self.progress.part_took(started.elapsed());
        self.progress.bytes.fetch_add(total, Ordering::Relaxed);
        self.progress.parts.fetch_add(1, Ordering::Relaxed);
        Ok(UploadedObject {
            key: self.object.key.clone(),
            bytes: total,
            parts: 1,
            checksum: format!("{}:{checksum}", t.algorithm().1),
            request_id,
        })
    }

    /// Whether the object at the key is the one this upload meant to write, read with
    /// HeadObject: the same size and the same whole-object checksum or, where the server keeps
    /// no checksum of wharf's algorithm (S3-compatible servers, `when-required`), the ETag this
    /// upload's bytes give (`etag`: the body's MD5, or the parts' for a multipart upload).
    /// `false` when that cannot be known (HeadObject refused: the granted policy has no
    /// `s3:GetObject`).
    async fn is_ours(
        &self,
        total: u64,
        checksum: &str,
        etag: impl FnOnce() -> Option<String>,
    ) -> bool {
        let t = &self.target;
        let head = t
            .client
            .head_object()
            .bucket(&t.bucket)
            .key(&self.object.key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await;
        let Ok(head) = head else {
            return false;
        };
        if head.content_length() != i64::try_from(total).ok() {
            return false;
        }
        let stored = match t.algorithm().0 {
            CrcAlgorithm::Crc64Nvme => head.checksum_crc64_nvme(),
            _ => head.checksum_crc32_c(),
        };
        // wharf computes the whole-object CRC whether it sends it or not, so a full-object CRC
        // the server reports settles it; without one (or with a composite `…-N` one), the ETag.
        let ours = match stored {
            Some(stored) if !stored.contains('-') => stored == checksum,
            _ => head
                .e_tag()
                .zip(etag())
                .is_some_and(|(stored, ours)| stored.trim_matches('"') == ours),
        };
        if ours {
            tracing::info!(
                key = %self.object.key,
                "a retried write found this upload's own object already complete"
            );
        }
        ours
    }

    async fn multipart(
        &self,
        first: Chunk,
        rx: tokio::sync::mpsc::Receiver<Chunk>,
    ) -> Result<UploadedObject, DeliveryError> {
        let t = &self.target;
        let handle = self
            .journal
            .intent(&self.object.key)
            .await
            .map_err(DeliveryError::Journal)?;
        let create = options::create_multipart(
            &t.client,
            &t.bucket,
            &self.object.key,
            &t.delivery,
            t.checksum,
        )
        .content_type(&self.object.content_type)
        .set_content_encoding(self.object.content_encoding.clone());
        let created = match create.send().await {
            Ok(out) => out,
            Err(e) => {
                self.journal.finished(handle, false).await;
                return Err(aws("CreateMultipartUpload", &e));
            }
        };
        let Some(upload_id) = created.upload_id().map(str::to_owned) else {
            self.journal.finished(handle, false).await;
            return Err(DeliveryError::Protocol(
                "CreateMultipartUpload answered without an upload id".into(),
            ));
        };
        if let Err(e) = self.journal.created(handle, &upload_id).await {
            self.abort(&upload_id).await;
            self.journal.finished(handle, false).await;
            return Err(DeliveryError::Journal(e));
        }
        let mut in_flight = JoinSet::new();
        match self.parts(&upload_id, first, rx, &mut in_flight).await {
            Ok(done) => {
                self.journal.finished(handle, true).await;
                Ok(done)
            }
            Err(e) => {
                // A part still on the wire when the abort arrives can land after it and stay
                // stored (and billed) under a dead upload: let the parts settle first.
                settle(&mut in_flight).await;
                let aborted = self.abort(&upload_id).await;
                if aborted {
                    self.journal.finished(handle, false).await;
                }
                Err(e)
            }
        }
    }

    /// Uploads parts (at most `max_in_flight` at once) until the last, then completes.
    async fn parts(
        &self,
        upload_id: &str,
        first: Chunk,
        mut rx: tokio::sync::mpsc::Receiver<Chunk>,
        in_flight: &mut JoinSet<Result<CompletedPart, DeliveryError>>,
    ) -> Result<UploadedObject, DeliveryError> {
        let mut cancel = self.progress.cancel.subscribe();
        let mut done: Vec<CompletedPart> = Vec::new();
        let mut next = Some(first);
        let mut last: Option<(u64, u64)> = None;
        while last.is_none() {
            let chunk = match next.take() {
                Some(chunk) => chunk,
                None if in_flight.len() >= self.max_in_flight => {
                    // Full: wait for a part before taking another (the sink blocks meanwhile).
                    tokio::select! {
                        _ = cancel.wait_for(|c| *c) => return Err(DeliveryError::Cancelled("the run was cancelled".into())),
                        Some(result) = in_flight.join_next() => done.push(joined(result)?),
                    }
                    continue;
                }
                None => tokio::select! {
                    _ = cancel.wait_for(|c| *c) => return Err(DeliveryError::Cancelled("the run was cancelled".into())),
                    chunk = rx.recv() => chunk.ok_or_else(|| DeliveryError::Cancelled(CANCELLED_STOPPED.into()))?,
                    Some(result) = in_flight.join_next(), if !in_flight.is_empty() => {
                        done.push(joined(result)?);
                        continue;
                    }
                },
            };
            let (number, body, crc) = match chunk {
                Chunk::Part { number, body, crc } => (number, body, crc),
                Chunk::Last {
                    number,
                    body,
                    crc,
                    full_crc,
                    total,
                } => {
                    last = Some((full_crc, total));
                    (number, body, crc)
                }
            };
            if number > MAX_PARTS {
                return Err(DeliveryError::Protocol(format!(
                    "the object needs more than {MAX_PARTS} parts"
                )));
            }
            in_flight.spawn(upload_part(
                self.target.clone(),
                self.object.key.clone(),
                upload_id.to_string(),
                number,
                body,
                crc,
                self.progress.clone(),
            ));
        }
        loop {
            tokio::select! {
                _ = cancel.wait_for(|c| *c) => return Err(DeliveryError::Cancelled("the run was cancelled".into())),
                result = in_flight.join_next() => match result {
                    Some(result) => done.push(joined(result)?),
                    None => break,
                },
            }
        }
        let (full_crc, total) = last.unwrap_or_default();
        self.complete(upload_id, done, full_crc, total).await
    }

    async fn complete(
        &self,
        upload_id: &str,
        mut parts: Vec<CompletedPart>,
        full_crc: u64,
        total: u64,
    ) -> Result<UploadedObject, DeliveryError> {
        let t = &self.target;
        self.journal
            .before_commit(&self.object.key)
            .await
            .map_err(DeliveryError::Fenced)?;
        parts.sort_by_key(|p| p.part_number());
        let count = parts.len() as u32;
        let etag = multipart_etag(&parts);
        let checksum = t.encode_crc(full_crc);
        let mut req = t
            .client
            .complete_multipart_upload()
            .bucket(&t.bucket)
            .key(&self.object.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        if !self.object.overwrite {
            req = req.if_none_match("*");
        }
        if t.sends_checksum() {
            req = req
                .checksum_type(ChecksumType::FullObject)
                .mpu_object_size(i64::try_from(total).unwrap_or(i64::MAX));
            req = match t.algorithm().0 {
                CrcAlgorithm::Crc64Nvme => req.checksum_crc64_nvme(&checksum),
                _ => req.checksum_crc32_c(&checksum),
            };
        }
        // A 200 whose body is an <Error> is turned into an error by the SDK (and retried when
        // the code is retryable), so `Ok` here means S3 assembled the object.
        let request_id = match req.send().await {
            Ok(out) => out.request_id().map(str::to_owned),
            Err(e) => {
                let failed = aws("CompleteMultipartUpload", &e);
                // A retried Complete whose first attempt assembled the object (its answer
                // lost) meets that object under `If-None-Match` (412), or finds the upload
                // gone (NoSuchUpload: LocalStack, and S3 once it has forgotten the upload).
                let maybe_ours = match &failed {
                    DeliveryError::KeyExists { .. } => true,
                    DeliveryError::Aws { failure, .. } => failure.is_code(&["NoSuchUpload"]),
                    _ => false,
                };
                if !maybe_ours || !self.is_ours(total, &checksum, || etag).await {
                    return Err(failed);
                }
                None
            }
        };
        Ok(UploadedObject {
            key: self.object.key.clone(),
            bytes: total,
            parts: count,
            checksum: format!("{}:{checksum}", t.algorithm().1),
            request_id,
        })
    }

    /// Aborts the upload; `true` when S3 confirms it is gone (or never knew it).
    async fn abort(&self, upload_id: &str) -> bool {
        abort_upload(&self.target, &self.object.key, upload_id).await
    }
}

/// How long a failed or cancelled upload waits for its parts in flight before it aborts.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits for the parts in flight to finish (their results no longer matter), at most
/// [`SETTLE_TIMEOUT`]; what is left then is cancelled.
async fn settle(in_flight: &mut JoinSet<Result<CompletedPart, DeliveryError>>) {
    let drained = tokio::time::timeout(SETTLE_TIMEOUT, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
    }
}

/// Attempts of abort-then-verify before the janitor is left to finish the job.
const ABORT_ATTEMPTS: u32 = 3;

/// Aborts an upload and checks with ListParts that it is gone: S3 documents that a part
/// still being uploaded when the abort arrives may survive it, and that aborting again frees
/// it. `true` when the upload is confirmed gone (or cannot be checked but the abort succeeded).
pub(crate) async fn abort_upload(target: &UploadTarget, key: &str, upload_id: &str) -> bool {
    for attempt in 1..=ABORT_ATTEMPTS {
        if let Err(e) = target
            .client
            .abort_multipart_upload()
            .bucket(&target.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            let failure = AwsFailure::from_sdk(&e);
            if !failure.is_code(&["NoSuchUpload"]) {
                tracing::warn!(
                    key,
                    failure = %failure.summary(),
                    "could not abort the multipart upload; the next run's janitor will retry"
                );
                return false;
            }
        }
        match target
            .client
            .list_parts()
            .bucket(&target.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(out) => {
                tracing::info!(
                    key,
                    attempt,
                    parts = out.parts().len(),
                    "the upload outlived its abort; aborting again"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            Err(e) => {
                let failure = AwsFailure::from_sdk(&e);
                if !failure.is_code(&["NoSuchUpload"]) {
                    // No ListParts (permission, or a server without it): the abort itself
                    // succeeded, which is all that can be known.
                    tracing::debug!(key, failure = %failure.summary(), "cannot verify an abort");
                }
                return true;
            }
        }
    }
    tracing::warn!(
        key,
        "the multipart upload is still listed after {ABORT_ATTEMPTS} aborts; the next run's janitor will retry"
    );
    false
}

/// The ETag S3 gives an object written by one PutObject of `body`: its MD5, in hex.
fn body_etag(body: &Bytes) -> String {
    use md5::Digest as _;
    crate::etag::hex(&md5::Md5::digest(body))
}

/// The ETag S3 gives a multipart object: the MD5 of its parts' MD5s, then `-` and the number
/// of parts. `None` when a part's ETag is not an MD5 (SSE-KMS on AWS, some servers).
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    let md5s = parts
        .iter()
        .map(|part| part.e_tag().and_then(crate::etag::md5))
        .collect::<Option<Vec<_>>>()?;
    Some(crate::etag::multipart(&md5s))
}

/// Error codes with which a server refuses a body that does not match the checksum or the
/// signed SHA-256 sent with it: bytes damaged on the way. S3 says BadDigest for a checksum;
/// S3-compatible servers say XAmzContentSHA256Mismatch for a signed payload.
const DAMAGED_IN_TRANSIT: &[&str] = &[
    "BadDigest",
    "XAmzContentSHA256Mismatch",
    "XAmzContentChecksumMismatch",
];

/// Times a body refused as damaged is sent again. The SDK does not retry these (a 400): the
/// bytes wharf holds are right, so sending them again is the repair.
const DAMAGED_RESENDS: u32 = 2;

/// Sends the request `send` builds, and sends it again (at most [`DAMAGED_RESENDS`] times)
/// while the server refuses its body as damaged in transit.
async fn resend_if_damaged<T, E, F>(
    key: &str,
    part: i32,
    send: impl Fn() -> F,
) -> Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>
where
    F: std::future::Future<
            Output = Result<
                T,
                aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
            >,
        >,
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut resends = 0;
    loop {
        match send().await {
            Err(e)
                if resends < DAMAGED_RESENDS
                    && AwsFailure::from_sdk(&e).is_code(DAMAGED_IN_TRANSIT) =>
            {
                resends += 1;
                tracing::warn!(
                    key,
                    part,
                    failure = %AwsFailure::from_sdk(&e).summary(),
                    "the server refused the bytes as damaged in transit; sending them again"
                );
            }
            other => return other,
        }
    }
}

fn joined(
    result: Result<Result<CompletedPart, DeliveryError>, tokio::task::JoinError>,
) -> Result<CompletedPart, DeliveryError> {
    result.map_err(|e| DeliveryError::Cancelled(format!("a part upload ended: {e}")))?
}

async fn upload_part(
    target: Arc<UploadTarget>,
    key: String,
    upload_id: String,
    number: u32,
    body: Bytes,
    crc: u64,
    progress: Arc<UploadProgress>,
) -> Result<CompletedPart, DeliveryError> {
    let len = body.len() as u64;
    let checksum = target.encode_crc(crc);
    let number = i32::try_from(number).unwrap_or(i32::MAX);
    let sends = target.sends_checksum();
    let signs = target.signs_payload();
    let crc64 = matches!(target.algorithm().0, CrcAlgorithm::Crc64Nvme);
    let send = || {
        // The body is `Bytes`: retries and resends send it again without copying.
        let mut req = target
            .client
            .upload_part()
            .bucket(&target.bucket)
            .key(&key)
            .upload_id(&upload_id)
            .part_number(number)
            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
            .body(ByteStream::from(body.clone()));
        if sends {
            req = if crc64 {
                req.checksum_crc64_nvme(&checksum)
            } else {
                req.checksum_crc32_c(&checksum)
            };
        }
        async move {
            if signs {
                req.send().await
            } else {
                req.customize().disable_payload_signing().send().await
            }
        }
    };
    let started = std::time::Instant::now();
    let out = resend_if_damaged(&key, number, send)
        .await
        .map_err(|e| aws("UploadPart", &e))?;
    progress.part_took(started.elapsed());
    progress.bytes.fetch_add(len, Ordering::Relaxed);
    progress.parts.fetch_add(1, Ordering::Relaxed);
    let mut part = CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_owned));
    if sends {
        part = if crc64 {
            part.checksum_crc64_nvme(checksum)
        } else {
            part.checksum_crc32_c(checksum)
        };
    }
    Ok(part.build())
}
