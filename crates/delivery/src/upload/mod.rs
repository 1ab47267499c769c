//! Streaming uploads: one object from a stream of bytes, with bounded memory, checksums S3
//! verifies, retries, and no partial object or open upload left behind on failure.
//!
//! The encoder writes into a [`PartSink`] on a blocking thread; an async task owned by
//! [`ObjectUpload`] turns what it receives into a PutObject (small files) or a multipart upload
//! (bounded number of parts in flight), records the upload id through an [`UploadJournal`]
//! before the first part, completes with `If-None-Match: *` unless overwriting is allowed, and
//! aborts on any failure, including the sink being dropped unfinished.

mod janitor;
pub(crate) mod options;
mod sink;
mod task;

pub use janitor::{JanitorOutcome, StaleRef, abort_stale};
pub use sink::PartSink;
use task::Upload;
pub(crate) use task::abort_upload;

use crate::error::DeliveryError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use crc_fast::CrcAlgorithm;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use wharf_domain::{ChecksumChoice, DeliveryOptions, S3Destination};

/// Why an upload ends when its sink is dropped unfinished.
const CANCELLED_STOPPED: &str = "the export stopped before the file was complete";

/// S3's smallest non-last part.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest part.
pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// S3's most parts per upload.
pub const MAX_PARTS: u32 = 10_000;
/// The part size doubles every this many parts (see [`part_size_for`]).
const PARTS_PER_SIZE_STEP: u32 = 1_000;

/// The size of part `number` (from 1): `base` for the first 1,000 parts, then doubling every
/// 1,000 parts up to S3's 5 GiB. A stream's length is unknown when its first parts go up, so
/// the size grows instead: with an 8 MiB base, 10,000 parts hold about 8 TiB, more than S3's
/// 5 TiB object limit, while small exports keep small parts (and small memory).
pub fn part_size_for(number: u32, base: usize) -> usize {
    let step = number.saturating_sub(1) / PARTS_PER_SIZE_STEP;
    base.max(MIN_PART_SIZE)
        .saturating_mul(1usize << step.min(20))
        .min(MAX_PART_SIZE)
}

/// How uploads are cut and paced.
#[derive(Debug, Clone, Copy)]
pub struct UploadSettings {
    /// The size of the first parts; also the largest object sent as one PutObject.
    pub part_size: usize,
    /// Parts uploading at once, per object. Memory is about (this + 2) x part size per object.
    pub max_in_flight: usize,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            max_in_flight: 4,
        }
    }
}

/// One object to write.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    pub key: String,
    pub content_type: String,
    pub content_encoding: Option<String>,
    /// Replace an existing object. Off: the write carries `If-None-Match: *` and fails with
    /// [`DeliveryError::KeyExists`] if the key exists.
    pub overwrite: bool,
}

/// A destination's bucket, client and delivery options: what every object write needs.
#[derive(Debug, Clone)]
pub struct UploadTarget {
    client: aws_sdk_s3::Client,
    bucket: String,
    delivery: DeliveryOptions,
    checksum: ChecksumChoice,
    /// Requests go to an S3-compatible server, not AWS (see [`UploadTarget::signs_payload`]).
    custom_endpoint: bool,
}

impl UploadTarget {
    /// Deletes an object this run wrote (one a run that lost its lease must not leave).
    pub async fn delete(&self, key: &str) -> Result<(), DeliveryError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| task::aws("DeleteObject", &e))
    }

    /// The size and whole-object checksum of the object at `key`, as HeadObject reports them
    /// (`None` when there is none). The checksum is `<algorithm>:<base64>` like an upload's, or
    /// `etag:<etag>` when the server keeps none of wharf's algorithm.
    pub async fn stat(&self, key: &str) -> Result<Option<(u64, String)>, DeliveryError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await;
        let head = match head {
            Ok(head) => head,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(task::aws("HeadObject", &e)),
        };
        let (algorithm, name) = self.algorithm();
        let stored = match algorithm {
            CrcAlgorithm::Crc64Nvme => head.checksum_crc64_nvme(),
            _ => head.checksum_crc32_c(),
        };
        let checksum = match (stored, head.e_tag()) {
            (Some(sum), _) => format!("{name}:{sum}"),
            (None, Some(etag)) => format!("etag:{}", etag.trim_matches('"')),
            (None, None) => String::new(),
        };
        let bytes = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
        Ok(Some((bytes, checksum)))
    }

    /// `settings`: the ones `client` was built with, which decide where requests go and so
    /// the default checksum ([`ClientSettings::checksum_for`]).
    pub fn new(
        client: aws_sdk_s3::Client,
        destination: &S3Destination,
        settings: &crate::ClientSettings,
    ) -> Self {
        Self {
            client,
            bucket: destination.bucket.as_str().to_string(),
            delivery: destination.delivery.clone(),
            checksum: settings.checksum_for(destination),
            custom_endpoint: settings.endpoint_for(destination).is_some(),
        }
    }

    /// The checksum this target's uploads send.
    pub fn checksum(&self) -> ChecksumChoice {
        self.checksum
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The algorithm wharf computes (always) and sends (unless `when-required`).
    fn algorithm(&self) -> (CrcAlgorithm, &'static str) {
        match self.checksum {
            ChecksumChoice::Crc64nvme => (CrcAlgorithm::Crc64Nvme, "crc64nvme"),
            ChecksumChoice::Crc32c | ChecksumChoice::WhenRequired => {
                (CrcAlgorithm::Crc32Iscsi, "crc32c")
            }
        }
    }

    fn sends_checksum(&self) -> bool {
        self.checksum != ChecksumChoice::WhenRequired
    }

    /// Whether request bodies are signed (SigV4's SHA-256 of the payload) as well as carrying
    /// the checksum. AWS verifies the checksum, so there the payload goes unsigned, as the AWS
    /// SDKs' transfer managers send it: hashing every byte twice more adds only CPU. Servers
    /// behind a custom endpoint may ignore `x-amz-checksum-*` (moto 5.1 and Ceph radosgw 16 do:
    /// the conformance suite saw a part damaged in transit stored as sent), while every SigV4
    /// server checks a signed payload's hash: there the payload is signed too.
    fn signs_payload(&self) -> bool {
        !self.sends_checksum() || self.custom_endpoint
    }

    fn encode_crc(&self, crc: u64) -> String {
        match self.algorithm().0 {
            CrcAlgorithm::Crc64Nvme => STANDARD.encode(crc.to_be_bytes()),
            _ => STANDARD.encode((crc as u32).to_be_bytes()),
        }
    }
}

/// Where an upload records its multipart upload ids (the store, through the runner), so that an
/// upload interrupted by a crash can be found and aborted later.
#[async_trait::async_trait]
pub trait UploadJournal: Send + Sync {
    /// Before CreateMultipartUpload: the key about to get an upload. Returns a handle.
    async fn intent(&self, key: &str) -> Result<i64, String>;
    /// After CreateMultipartUpload, before the first part.
    async fn created(&self, handle: i64, upload_id: &str) -> Result<(), String>;
    /// Completed (`true`) or aborted.
    async fn finished(&self, handle: i64, completed: bool);
    /// Just before the request that makes `key` appear (PutObject, CompleteMultipartUpload):
    /// an `Err` (the run lost its lease to another attempt) stops the upload, which is then
    /// aborted, so a run that may no longer commit leaves nothing in the bucket.
    async fn before_commit(&self, _key: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Told how long each part (and each single-request object) took to upload, for metrics.
#[derive(Clone)]
pub struct PartObserver(pub Arc<dyn Fn(std::time::Duration) + Send + Sync>);

impl std::fmt::Debug for PartObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartObserver")
    }
}

/// Counters the caller reads to show progress, and a switch that cancels every upload started
/// with it: each aborts its multipart upload and ends with [`DeliveryError::Cancelled`].
#[derive(Debug)]
pub struct UploadProgress {
    /// Bytes S3 acknowledged.
    pub bytes: AtomicU64,
    /// Parts (and single-request objects) S3 acknowledged.
    pub parts: AtomicU64,
    cancel: tokio::sync::watch::Sender<bool>,
    observer: Option<PartObserver>,
}

impl Default for UploadProgress {
    fn default() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            parts: AtomicU64::new(0),
            cancel: tokio::sync::watch::channel(false).0,
            observer: None,
        }
    }
}

impl UploadProgress {
    /// Progress whose parts' upload times go to `observer`.
    pub fn with_observer(observer: PartObserver) -> Self {
        Self {
            observer: Some(observer),
            ..Self::default()
        }
    }

    pub(crate) fn part_took(&self, took: std::time::Duration) {
        if let Some(observer) = &self.observer {
            (observer.0)(took);
        }
    }

    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.cancel.borrow()
    }
}

/// An object S3 holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedObject {
    pub key: String,
    pub bytes: u64,
    /// 1 for a PutObject.
    pub parts: u32,
    /// `crc32c:<base64>` or `crc64nvme:<base64>`, of the whole object.
    pub checksum: String,
    pub request_id: Option<String>,
}

pub(crate) enum Chunk {
    Part {
        number: u32,
        body: Bytes,
        crc: u64,
    },
    Last {
        number: u32,
        body: Bytes,
        crc: u64,
        full_crc: u64,
        total: u64,
    },
}

/// The async half of an upload; await [`ObjectUpload::finish`] after finishing the sink.
pub struct ObjectUpload {
    handle: tokio::task::JoinHandle<Result<UploadedObject, DeliveryError>>,
}

impl ObjectUpload {
    /// The uploaded object, or why it is not there. When the sink was dropped unfinished this
    /// is [`DeliveryError::Cancelled`], after the upload was aborted.
    pub async fn finish(self) -> Result<UploadedObject, DeliveryError> {
        match self.handle.await {
            Ok(result) => result,
            Err(e) => Err(DeliveryError::Cancelled(format!(
                "the upload task ended: {e}"
            ))),
        }
    }
}

/// Starts writing one object. Must be called inside a Tokio runtime; the sink is used from a
/// blocking thread.
pub fn start(
    target: Arc<UploadTarget>,
    object: ObjectSpec,
    settings: UploadSettings,
    journal: Arc<dyn UploadJournal>,
    progress: Arc<UploadProgress>,
) -> (PartSink, ObjectUpload) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let algorithm = target.algorithm().0;
    let part_size = settings.part_size.max(MIN_PART_SIZE);
    let sink = PartSink {
        tx,
        buf: Vec::with_capacity(part_size.min(64 * 1024 * 1024) + 64 * 1024),
        base_part_size: part_size,
        part: 1,
        algorithm,
        shipped_crc: 0,
        shipped: 0,
        written: Arc::default(),
    };
    let task = Upload {
        target,
        object,
        max_in_flight: settings.max_in_flight.max(1),
        journal,
        progress,
    };
    let handle = tokio::spawn(task.run(rx));
    (sink, ObjectUpload { handle })
}

/// Writes a small object from memory (a manifest) with one PutObject, with the same checksum,
/// encryption and overwrite rules as streamed files.
pub async fn put_bytes(
    target: &Arc<UploadTarget>,
    object: &ObjectSpec,
    body: Bytes,
) -> Result<UploadedObject, DeliveryError> {
    let crc = crc_fast::checksum(target.algorithm().0, &body);
    let total = body.len() as u64;
    let upload = Upload {
        target: target.clone(),
        object: object.clone(),
        max_in_flight: 1,
        journal: Arc::new(NoJournal),
        progress: Arc::default(),
    };
    upload.put(body, crc, total).await
}

/// For single-request writes, which have no upload id to record.
struct NoJournal;

#[async_trait::async_trait]
impl UploadJournal for NoJournal {
    async fn intent(&self, _key: &str) -> Result<i64, String> {
        Ok(0)
    }
    async fn created(&self, _handle: i64, _upload_id: &str) -> Result<(), String> {
        Ok(())
    }
    async fn finished(&self, _handle: i64, _completed: bool) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_grow_so_10000_parts_hold_5_tib() {
        let base = 8 * 1024 * 1024;
        assert_eq!(part_size_for(1, base), base);
        assert_eq!(part_size_for(1000, base), base);
        assert_eq!(part_size_for(1001, base), 2 * base);
        let total: u128 = (1..=MAX_PARTS)
            .map(|n| part_size_for(n, base) as u128)
            .sum();
        assert!(total >= 5 * (1u128 << 40), "{total}");
        // Never below S3's minimum, never above its maximum.
        assert_eq!(part_size_for(1, 1024), MIN_PART_SIZE);
        assert_eq!(part_size_for(MAX_PARTS, MAX_PART_SIZE), MAX_PART_SIZE);
    }
}
