//! The servers the conformance suite runs against, and how a case reaches one: a bucket of
//! its own, wharf's upload target through the fault proxy, an admin client straight to the
//! server, and the upload helpers every case uses.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wharf_delivery::upload::{
    self, MIN_PART_SIZE, ObjectSpec, PartSink, UploadProgress, UploadSettings, UploadTarget,
    UploadedObject,
};
use wharf_delivery::{ClientSettings, DeliveryError, s3_client};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, S3Destination};
use wharf_testkit::{
    FaultProxy, Moto, RecordingJournal, S3TestServer, bucket_residue, object_bytes,
};

pub(crate) const PART: usize = MIN_PART_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
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
pub(crate) struct Server {
    pub(crate) kind: Kind,
    _backing: Backing,
    pub(crate) upstream: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    pub(crate) bucket: String,
    pub(crate) proxy: FaultProxy,
    /// A KMS key id the server accepts for SSE-KMS.
    pub(crate) kms_key_id: Option<String>,
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
    pub(crate) async fn run(kind: Kind, case: impl AsyncFnOnce(&Server)) {
        let server = Self::start(kind).await;
        case(&server).await;
    }

    pub(crate) async fn start(kind: Kind) -> Self {
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
    pub(crate) fn admin(&self) -> aws_sdk_s3::Client {
        wharf_testkit::s3_client(&self.upstream, &self.access_key, &self.secret_key)
    }

    /// wharf's destination for this server's bucket, through the proxy, with `options`
    /// (`checksum`, `sse`, `storage_class`...) added to the spec.
    pub(crate) fn destination(&self, options: serde_json::Value) -> S3Destination {
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

    pub(crate) async fn target(&self, options: serde_json::Value) -> Arc<UploadTarget> {
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

    pub(crate) async fn object(&self, key: &str) -> Vec<u8> {
        object_bytes(&self.admin(), &self.bucket, key).await
    }

    /// The bucket's keys and open uploads; asserts that no upload is open.
    pub(crate) async fn objects_without_uploads(&self) -> Vec<String> {
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
pub(crate) fn start(
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
pub(crate) async fn put(
    target: &Arc<UploadTarget>,
    key: &str,
    bytes: &[u8],
) -> Result<UploadedObject, DeliveryError> {
    put_with(target, &Arc::default(), key, bytes, None).await
}

/// Uploads `bytes`; with `stop_after`, the writer drops the sink after that many bytes
/// (a source failing mid-stream).
pub(crate) async fn put_with(
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
pub(crate) fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
