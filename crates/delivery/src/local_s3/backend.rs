//! The storage behind the local S3 endpoint: s3s-fs, made to behave like S3 where wharf relies on
//! S3's behaviour.
//!
//! s3s-fs alone (0.14.1) differs from S3 in ways that would hide bugs in wharf:
//! - ListMultipartUploads answers 501. It is implemented here from a record of open uploads,
//!   rebuilt from s3s-fs's files at start so that uploads survive a restart, as on S3.
//! - Unknown upload ids get AccessDenied; S3 says NoSuchUpload, which wharf must handle.
//! - Only the access key that created an upload may continue it, so refreshed role
//!   credentials (a new key) would be refused mid-upload; here any key may, as on S3.
//! - PutObject and CreateMultipartUpload to a missing bucket create it; S3 says NoSuchBucket.
//! - DeleteObject leaves checksum side files behind that a later multipart upload to the same key
//!   inherits, so the object would be served with a stale checksum.
//! - UploadPart stores a part whatever its bytes; here a part is checked against the CRC its
//!   request carries and refused with BadDigest, as S3 does ([`super::integrity`]).
//! - Keys whose side-file names would pass 255 bytes cannot be stored; S3 takes 1,024 bytes.
//!   Such keys are stored under a hash ([`super::keys`]) and listed under their own names
//!   ([`super::listing`]).
//! - CompleteMultipartUpload reads every part back and hashes it again on one core (seconds for
//!   a large export), checks neither the listed parts' ETags nor that the upload id is the key's,
//!   and loses the upload when it fails halfway. It is done here ([`super::assemble`]), and
//!   parts that arrive where they can be placed are written in place in the object-to-be
//!   ([`super::placed`]), so that completing renames one file instead of copying every byte.
//! - ListParts names no ETags; here those of the parts stored since the endpoint started.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use s3s::dto::*;
use s3s::stream::ByteStream as _;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

use super::assemble::PartDigests;
use super::integrity;
use super::keys::LongKeys;
use super::listing;
use super::placed::{self, Placement};

mod completion;
use completion::CompletionRun;

#[derive(Clone, Debug)]
struct OpenUpload {
    bucket: String,
    key: String,
    initiated: OffsetDateTime,
}

pub(crate) struct Backend {
    fs: Arc<FileSystem>,
    root: PathBuf,
    keys: Arc<LongKeys>,
    /// Open multipart uploads by upload id.
    uploads: Arc<Mutex<BTreeMap<String, OpenUpload>>>,
    /// CompleteMultipartUpload runs by upload id, running or finished, with when they started.
    completions: Mutex<HashMap<String, (Instant, CompletionRun)>>,
    /// The MD5 of each part stored since the endpoint started, for the object's ETag.
    digests: Arc<PartDigests>,
    /// Parts written where they will sit in the object.
    placement: Arc<Placement>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backend {
    pub(crate) fn new(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let fs = FileSystem::new(&root).map_err(|e| {
            std::io::Error::other(format!("cannot serve {}: {e:?}", root.display()))
        })?;
        let keys = Arc::new(LongKeys::new(&root));
        let uploads = recover_uploads(&root, &keys)?;
        let placement = Placement::recover(&root, &uploads.keys().cloned().collect())?;
        Ok(Self {
            fs: Arc::new(fs),
            root,
            keys,
            uploads: Arc::new(Mutex::new(uploads)),
            completions: Mutex::new(HashMap::new()),
            digests: Arc::default(),
            placement: Arc::new(placement),
        })
    }

    /// The key s3s-fs stores `key` under, recording it first when it is hashed.
    fn stored_for_write(&self, bucket: &str, key: &str) -> S3Result<String> {
        self.keys
            .stored_for_write(bucket, key)
            .map_err(|e| s3_error!(InternalError, "cannot record the key's name: {e}"))
    }

    fn sidecar(&self, bucket: &str, key: &str, kind: &str) -> PathBuf {
        sidecar(&self.root, bucket, key, kind)
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: i32,
    ) -> S3Result<listing::Page> {
        self.require_bucket(bucket)?;
        let (root, keys) = (self.root.join(bucket), self.keys.clone());
        let (bucket, prefix) = (bucket.to_owned(), prefix.unwrap_or("").to_owned());
        let (delimiter, after) = (delimiter.map(str::to_owned), after.map(str::to_owned));
        let max_keys = usize::try_from(max_keys.clamp(0, 1000)).unwrap_or(1000);
        tokio::task::spawn_blocking(move || {
            let query = listing::Query {
                prefix: &prefix,
                delimiter: delimiter.as_deref(),
                after: after.as_deref(),
                max_keys,
            };
            listing::list(&root, &bucket, &keys, &query)
        })
        .await
        .map_err(|e| s3_error!(InternalError, "listing stopped: {e}"))?
        .map_err(|e| s3_error!(InternalError, "cannot list the bucket: {e}"))
    }

    fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        if self.root.join(bucket).is_dir() {
            Ok(())
        } else {
            Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist"
            ))
        }
    }

    /// s3s-fs lets only the access key that created an upload continue it; S3 lets any caller
    /// the bucket's policy allows (assumed-role credentials are replaced mid-upload, with a new
    /// key). A request for a known upload, already authenticated and authorised, goes on under
    /// the creator's key.
    fn as_creator(&self, upload_id: &str, credentials: &mut Option<s3s::auth::Credentials>) {
        let Some(credentials) = credentials.as_mut() else {
            return;
        };
        if !lock(&self.uploads).contains_key(upload_id) {
            return;
        }
        let info = std::fs::read(self.root.join(format!(".upload-{upload_id}.json")));
        if let Ok(info) = info
            && let Ok(Some(creator)) = serde_json::from_slice::<Option<String>>(&info)
        {
            credentials.access_key = creator;
        }
    }

    /// UploadPart for a part with a place in the upload's data file (see [`placed`]).
    async fn upload_placed(
        &self,
        input: UploadPartInput,
        place: placed::Place,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let (id, number) = (input.upload_id, input.part_number);
        let Some(body) = input.body else {
            self.placement.failed(&id, number);
            return Err(s3_error!(IncompleteBody));
        };
        let written = placed::write(self.placement.data_path(&id), place, body).await;
        let md5 = match written {
            Ok(md5) => md5,
            Err(e) => {
                self.placement.failed(&id, number);
                return Err(e);
            }
        };
        let placement = self.placement.clone();
        let recording = id.clone();
        tokio::task::spawn_blocking(move || placement.stored(&recording, number, place, md5))
            .await
            .map_err(|e| s3_error!(InternalError, "recording the part stopped: {e}"))?
            .inspect_err(|_| self.placement.failed(&id, number))?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(crate::etag::hex(&md5))),
            ..Default::default()
        }))
    }

    fn require_upload(&self, upload_id: &str) -> S3Result<()> {
        if lock(&self.uploads).contains_key(upload_id) {
            Ok(())
        } else {
            Err(s3_error!(
                NoSuchUpload,
                "The specified upload does not exist"
            ))
        }
    }
}

/// `<root>/.bucket-<b64(bucket)>.object-<b64(stored key)>.<kind>.json`, s3s-fs's side files.
pub(super) fn sidecar(root: &Path, bucket: &str, key: &str, kind: &str) -> PathBuf {
    root.join(format!(
        ".bucket-{}.object-{}.{kind}.json",
        URL_SAFE_NO_PAD.encode(bucket),
        URL_SAFE_NO_PAD.encode(key)
    ))
}

/// Rebuilds the open uploads from s3s-fs's files: `.upload-<id>.json` marks an open upload and
/// `.bucket-<b64>.object-<b64>.upload-<id>.metadata.json` names its bucket and key.
fn recover_uploads(root: &Path, keys: &LongKeys) -> std::io::Result<BTreeMap<String, OpenUpload>> {
    let mut uploads = BTreeMap::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(".bucket-") else {
            continue;
        };
        let Some(rest) = rest.strip_suffix(".metadata.json") else {
            continue;
        };
        let Some((bucket, rest)) = rest.split_once(".object-") else {
            continue;
        };
        let Some((key, upload_id)) = rest.split_once(".upload-") else {
            continue;
        };
        if !root.join(format!(".upload-{upload_id}.json")).exists() {
            continue;
        }
        let decode = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        };
        let (Some(bucket), Some(stored)) = (decode(bucket), decode(key)) else {
            continue;
        };
        let Some(key) = keys.original(&bucket, &stored) else {
            continue;
        };
        let initiated = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(OffsetDateTime::from)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        uploads.insert(
            upload_id.to_string(),
            OpenUpload {
                bucket,
                key,
                initiated,
            },
        );
    }
    Ok(uploads)
}

#[async_trait::async_trait]
impl S3 for Backend {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let mut req = req;
        self.require_bucket(&req.input.bucket)?;
        req.input.key = self.stored_for_write(&req.input.bucket, &req.input.key)?;
        self.fs.put_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let mut req = req;
        self.require_bucket(&req.input.bucket)?;
        req.input.key = self.keys.stored(&req.input.bucket, &req.input.key);
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let mut req = req;
        req.input.key = self.keys.stored(&req.input.bucket, &req.input.key);
        self.fs.head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let mut req = req;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let stored = self.keys.stored(&bucket, &key);
        req.input.key = stored.clone();
        let response = self.fs.delete_object(req).await?;
        for kind in ["internal", "metadata"] {
            let _ = std::fs::remove_file(self.sidecar(&bucket, &stored, kind));
        }
        // The name of a hashed key goes with its object, unless an open upload still needs it.
        let uploading = lock(&self.uploads)
            .values()
            .any(|u| u.bucket == bucket && u.key == key);
        if !uploading {
            self.keys.forget(&bucket, &stored);
        }
        Ok(response)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let mut req = req;
        if let CopySource::Bucket { bucket, key, .. } = &mut req.input.copy_source {
            *key = self.keys.stored(bucket, key).into();
        }
        req.input.key = self.stored_for_write(&req.input.bucket, &req.input.key)?;
        self.fs.copy_object(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let max_keys = input.max_keys.unwrap_or(1000);
        let page = self
            .list(
                &input.bucket,
                input.prefix.as_deref(),
                input.delimiter.as_deref(),
                input.marker.as_deref(),
                max_keys,
            )
            .await?;
        Ok(S3Response::new(ListObjectsOutput {
            contents: Some(page.objects),
            common_prefixes: Some(page.common_prefixes),
            is_truncated: Some(page.is_truncated),
            next_marker: page.next_marker,
            max_keys: Some(max_keys),
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            marker: input.marker,
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let max_keys = input.max_keys.unwrap_or(1000);
        let after = match (
            input.continuation_token.as_deref(),
            input.start_after.as_deref(),
        ) {
            (Some(token), Some(start)) => Some(token.max(start)),
            (token, start) => token.or(start),
        };
        let page = self
            .list(
                &input.bucket,
                input.prefix.as_deref(),
                input.delimiter.as_deref(),
                after,
                max_keys,
            )
            .await?;
        let key_count = page.objects.len() + page.common_prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            key_count: i32::try_from(key_count).ok(),
            contents: Some(page.objects),
            common_prefixes: Some(page.common_prefixes),
            is_truncated: Some(page.is_truncated),
            next_continuation_token: page.next_marker,
            max_keys: Some(max_keys),
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            continuation_token: input.continuation_token,
            start_after: input.start_after,
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let mut req = req;
        self.require_bucket(&req.input.bucket)?;
        let key = req.input.key.clone();
        req.input.key = self.stored_for_write(&req.input.bucket, &key)?;
        let mut response = self.fs.create_multipart_upload(req).await?;
        let out = &mut response.output;
        out.key = Some(key.clone());
        if let (Some(bucket), Some(id)) = (&out.bucket, &out.upload_id) {
            self.placement.open(id);
            lock(&self.uploads).insert(
                id.clone(),
                OpenUpload {
                    bucket: bucket.clone(),
                    key,
                    initiated: OffsetDateTime::now_utc(),
                },
            );
        }
        Ok(response)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let mut req = req;
        self.require_upload(&req.input.upload_id)?;
        self.as_creator(&req.input.upload_id, &mut req.credentials);
        req.input.key = self.keys.stored(&req.input.bucket, &req.input.key);
        let (id, number) = (req.input.upload_id.clone(), req.input.part_number);
        let place = req
            .input
            .body
            .as_ref()
            .and_then(|body| body.remaining_length().exact())
            .and_then(|len| self.placement.reserve(&id, number, len as u64));
        let mut check = None;
        if let Some(expected) = integrity::Expected::of(&req.input)
            && let Some(body) = req.input.body.take()
        {
            let mismatch = Arc::new(AtomicBool::new(false));
            check = Some((expected.header, mismatch.clone()));
            req.input.body = Some(integrity::checked(body, expected, mismatch));
        }
        let stored = match place {
            Some(place) => self.upload_placed(req.input, place).await,
            None => self.fs.upload_part(req).await,
        };
        if let Some((header, mismatch)) = check
            && mismatch.load(Ordering::SeqCst)
        {
            return Err(s3_error!(
                BadDigest,
                "The part's bytes do not match its {header} header: it was not stored."
            ));
        }
        // The MD5s of parts in files of their own; a placed part's is kept with its place.
        // An upload of a part to its own file wins over its place's (see `assemble`), so the
        // two must not share a record.
        if place.is_none()
            && let Ok(response) = &stored
            && let Some(e_tag) = &response.output.e_tag
        {
            self.digests.record(&id, number, e_tag.value());
        }
        stored
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let mut req = req;
        self.require_upload(&req.input.upload_id)?;
        let key = std::mem::take(&mut req.input.key);
        req.input.key = self.keys.stored(&req.input.bucket, &key);
        let id = req.input.upload_id.clone();
        let mut response = self.fs.list_parts(req).await?;
        response.output.key = Some(key);
        let parts = response.output.parts.get_or_insert_with(Vec::new);
        // s3s-fs names no ETags: those of the parts stored since the endpoint started.
        let known = self.digests.of(&id);
        for part in parts.iter_mut() {
            if let Some(md5) = part.part_number.and_then(|n| known.get(&n)) {
                part.e_tag = Some(ETag::Strong(crate::etag::hex(md5)));
            }
        }
        // Parts in the data file, but those sent again to files of their own (newer).
        let own: std::collections::BTreeSet<i32> =
            parts.iter().filter_map(|p| p.part_number).collect();
        for (number, (stored, when)) in self.placement.stored_parts(&id) {
            if !own.contains(&number) {
                parts.push(Part {
                    part_number: Some(number),
                    size: i64::try_from(stored.place.len).ok(),
                    e_tag: Some(ETag::Strong(crate::etag::hex(&stored.md5))),
                    last_modified: Some(Timestamp::from(when)),
                    ..Default::default()
                });
            }
        }
        // s3s-fs lists parts in directory order; S3 lists them by part number.
        parts.sort_by_key(|p| p.part_number);
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.complete(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let mut req = req;
        let id = req.input.upload_id.clone();
        self.require_upload(&id)?;
        self.as_creator(&id, &mut req.credentials);
        req.input.key = self.keys.stored(&req.input.bucket, &req.input.key);
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.fs.abort_multipart_upload(req).await?;
        self.digests.forget(&id);
        let placement = self.placement.clone();
        let forgotten = id.clone();
        let _ = tokio::task::spawn_blocking(move || placement.forget(&forgotten)).await;
        let mut uploads = lock(&self.uploads);
        if let Some(aborted) = uploads.remove(&id) {
            // A hashed key's name goes too when no object and no other upload uses it.
            let in_use = uploads
                .values()
                .any(|u| u.bucket == aborted.bucket && u.key == aborted.key);
            if !in_use && !self.root.join(&bucket).join(&key).exists() {
                self.keys.forget(&bucket, &key);
            }
        }
        Ok(response)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket)?;
        let max = usize::try_from(input.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let prefix = input.prefix.clone().unwrap_or_default();
        let mut rows: Vec<(String, OpenUpload)> = lock(&self.uploads)
            .iter()
            .filter(|(_, u)| u.bucket == input.bucket && u.key.starts_with(&prefix))
            .map(|(id, u)| (id.clone(), u.clone()))
            .collect();
        rows.sort_by(|a, b| (&a.1.key, &a.0).cmp(&(&b.1.key, &b.0)));
        if let Some(key_marker) = input.key_marker.as_deref() {
            let id_marker = input.upload_id_marker.as_deref();
            rows.retain(|(id, u)| match id_marker {
                Some(m) => u.key.as_str() > key_marker || (u.key == key_marker && id.as_str() > m),
                None => u.key.as_str() > key_marker,
            });
        }
        let is_truncated = rows.len() > max;
        rows.truncate(max);
        let (next_key_marker, next_upload_id_marker) = match rows.last() {
            Some((id, u)) if is_truncated => (Some(u.key.clone()), Some(id.clone())),
            _ => (None, None),
        };
        let uploads = rows
            .into_iter()
            .map(|(id, u)| MultipartUpload {
                upload_id: Some(id),
                key: Some(u.key),
                initiated: Some(Timestamp::from(u.initiated)),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(is_truncated),
            next_key_marker,
            next_upload_id_marker,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
