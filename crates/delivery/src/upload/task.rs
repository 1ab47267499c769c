//! The async half of an upload: PutObject or a multipart upload with bounded parts in flight,
//! completion with the whole-object checksum, and abort on any failure.

use super::{
    CANCELLED_STOPPED, Chunk, MAX_PARTS, ObjectSpec, UploadJournal, UploadProgress, UploadTarget,
    UploadedObject,
};
use crate::aws_error::AwsFailure;
use crate::error::DeliveryError;
use aws_sdk_s3::operation::RequestId as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ObjectCannedAcl,
    ServerSideEncryption as SdkSse, StorageClass as SdkStorageClass,
};
use bytes::Bytes;
use crc_fast::CrcAlgorithm;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::JoinSet;
use wharf_domain::{DeliveryOptions, ServerSideEncryption};

pub(super) struct Upload {
    pub(super) target: Arc<UploadTarget>,
    pub(super) object: ObjectSpec,
    pub(super) max_in_flight: usize,
    pub(super) journal: Arc<dyn UploadJournal>,
    pub(super) progress: Arc<UploadProgress>,
}

fn aws<E>(
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
            .body(ByteStream::from(body));
        if !self.object.overwrite {
            req = req.if_none_match("*");
        }
        if t.sends_checksum() {
            req = match t.algorithm().0 {
                CrcAlgorithm::Crc64Nvme => req.checksum_crc64_nvme(&checksum),
                _ => req.checksum_crc32_c(&checksum),
            };
        }
        // With a checksum S3 verifies, signing the payload too (a SHA-256 of every byte, on both
        // ends) adds nothing but CPU: send it unsigned, as the AWS SDKs' transfer managers do.
        let out = if t.sends_checksum() {
            req.customize().disable_payload_signing().send().await
        } else {
            req.send().await
        }
        .map_err(|e| aws("PutObject", &e))?;
        self.progress.bytes.fetch_add(total, Ordering::Relaxed);
        self.progress.parts.fetch_add(1, Ordering::Relaxed);
        Ok(UploadedObject {
            key: self.object.key.clone(),
            bytes: total,
            parts: 1,
            checksum: format!("{}:{checksum}", t.algorithm().1),
            request_id: out.request_id().map(str::to_owned),
        })
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
        let mut create = t
            .client
            .create_multipart_upload()
            .bucket(&t.bucket)
            .key(&self.object.key)
            .content_type(&self.object.content_type)
            .set_content_encoding(self.object.content_encoding.clone())
            .set_server_side_encryption(sse(&t.delivery))
            .set_ssekms_key_id(kms_key(&t.delivery))
            .set_storage_class(storage_class(&t.delivery))
            .set_acl(acl(&t.delivery));
        if t.sends_checksum() {
            create = create
                .checksum_algorithm(match t.algorithm().0 {
                    CrcAlgorithm::Crc64Nvme => ChecksumAlgorithm::Crc64Nvme,
                    _ => ChecksumAlgorithm::Crc32C,
                })
                .checksum_type(ChecksumType::FullObject);
        }
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
        match self.parts(&upload_id, first, rx).await {
            Ok(done) => {
                self.journal.finished(handle, true).await;
                Ok(done)
            }
            Err(e) => {
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
    ) -> Result<UploadedObject, DeliveryError> {
        let mut cancel = self.progress.cancel.subscribe();
        let mut in_flight: JoinSet<Result<CompletedPart, DeliveryError>> = JoinSet::new();
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
        parts.sort_by_key(|p| p.part_number());
        let count = parts.len() as u32;
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
        let out = req
            .send()
            .await
            .map_err(|e| aws("CompleteMultipartUpload", &e))?;
        Ok(UploadedObject {
            key: self.object.key.clone(),
            bytes: total,
            parts: count,
            checksum: format!("{}:{checksum}", t.algorithm().1),
            request_id: out.request_id().map(str::to_owned),
        })
    }

    /// Aborts the upload; `true` when S3 confirms it is gone (or never knew it).
    async fn abort(&self, upload_id: &str) -> bool {
        abort_upload(&self.target, &self.object.key, upload_id).await
    }
}

pub(crate) async fn abort_upload(target: &UploadTarget, key: &str, upload_id: &str) -> bool {
    match target
        .client
        .abort_multipart_upload()
        .bucket(&target.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        Ok(_) => true,
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            if failure.is_code(&["NoSuchUpload"]) {
                return true;
            }
            tracing::warn!(
                key,
                failure = %failure.summary(),
                "could not abort the multipart upload; the next run's janitor will retry"
            );
            false
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
    // The body is `Bytes`: the SDK's retries resend it without copying.
    let mut req = target
        .client
        .upload_part()
        .bucket(&target.bucket)
        .key(&key)
        .upload_id(&upload_id)
        .part_number(number)
        .content_length(i64::try_from(len).unwrap_or(i64::MAX))
        .body(ByteStream::from(body));
    let sends = target.sends_checksum();
    let crc64 = matches!(target.algorithm().0, CrcAlgorithm::Crc64Nvme);
    if sends {
        req = if crc64 {
            req.checksum_crc64_nvme(&checksum)
        } else {
            req.checksum_crc32_c(&checksum)
        };
    }
    // Unsigned payload when a checksum is sent (see `put`).
    let out = if sends {
        req.customize().disable_payload_signing().send().await
    } else {
        req.send().await
    }
    .map_err(|e| aws("UploadPart", &e))?;
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

fn sse(d: &DeliveryOptions) -> Option<SdkSse> {
    d.sse.as_ref().map(|s| match s {
        ServerSideEncryption::Aes256 => SdkSse::Aes256,
        ServerSideEncryption::Kms { .. } => SdkSse::AwsKms,
    })
}

fn kms_key(d: &DeliveryOptions) -> Option<String> {
    match &d.sse {
        Some(ServerSideEncryption::Kms { key_id }) => Some(key_id.as_str().to_string()),
        _ => None,
    }
}

fn storage_class(d: &DeliveryOptions) -> Option<SdkStorageClass> {
    d.storage_class.map(|c| SdkStorageClass::from(c.as_str()))
}

fn acl(d: &DeliveryOptions) -> Option<ObjectCannedAcl> {
    d.acl.map(|a| ObjectCannedAcl::from(a.as_str()))
}
