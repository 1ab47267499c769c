//! Test support, never shipped: real peers for wharf's tests, started on 127.0.0.1.
//!
//! - [`S3TestServer`]: the local S3 endpoint (s3s) in-process, with per-key deny rules and a
//!   fault plan that makes chosen operations fail, stall or drop the connection.
//! - [`check_export`]: reads exported files back with readers wharf did not write (pyarrow,
//!   duckdb, polars, fastavro, Python's csv/json/xml) and compares them with the source rows.
//! - [`Moto`]: a moto server (STS, IAM, S3 with IAM enforcement) in the project's Python venv,
//!   with users and roles set up the way a wharf customer would.
//! - [`FaultProxy`]: an HTTP proxy in front of any S3 server that loses answers, corrupts bodies
//!   on the wire and answers for the server, counting requests per operation.
//! - [`StsStandIn`]: an STS `AssumeRole` endpoint handing out credentials that expire in
//!   seconds, for credential-refresh tests.
//! - [`checksums`]: CRC32C and CRC64/NVME from their definitions, to check wharf's against.
//!
//! A test that needs a peer starts it and fails loudly when it cannot: nothing here skips.

pub mod checksums;
mod httpd;
mod journal;
mod moto;
mod proxy;
mod readers;
mod s3;
mod sts;

pub use journal::RecordingJournal;
pub use moto::{Moto, MotoKeys, RoleSpec, pyenv};
pub use proxy::{FaultProxy, ProxyFault, SeenRequest};
pub use readers::{check_export, duckdb_rows};

use aws_sdk_s3::error::ProvideErrorMetadata as _;
pub use s3::{FaultPlan, S3TestServer};
pub use sts::{Issued, StsStandIn};

/// The repository root: the folder holding `Cargo.lock` above the package under test. Found at
/// run time (cargo sets `CARGO_MANIFEST_DIR` for every test it runs), not from the path this
/// crate was compiled at: a build cache shared between two clones can hold this crate compiled
/// in the other one, whose path `env!` would have baked in.
pub fn repo_root() -> std::path::PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or_else(|| panic!("no Cargo.lock above {}", start.display()))
        .canonicalize()
        .expect("repository root")
}

/// An S3 client for a test endpoint, path-style, with the given static keys.
pub fn s3_client(endpoint: &str, access_key: &str, secret: &str) -> aws_sdk_s3::Client {
    let credentials =
        aws_sdk_s3::config::Credentials::new(access_key, secret, None, None, "wharf-testkit");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials)
        // Tests compare the bytes they read with what was written; a server's own checksum
        // header (moto's can be wrong) must not stand between them.
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The bytes of an object (panics if it cannot be read).
pub async fn object_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {}", e.code().unwrap_or("no error code")))
        .body
        .collect()
        .await
        .expect("object body")
        .into_bytes()
        .to_vec()
}

/// Every key and every open multipart upload in a bucket, for "nothing was left behind" checks.
pub async fn bucket_residue(
    client: &aws_sdk_s3::Client,
    bucket: &str,
) -> (Vec<String>, Vec<String>) {
    let objects = client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects");
    let keys = objects
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    let uploads = client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .expect("list multipart uploads");
    let uploads = uploads
        .uploads()
        .iter()
        .map(|u| {
            format!(
                "{} ({})",
                u.key().unwrap_or(""),
                u.upload_id().unwrap_or("")
            )
        })
        .collect();
    (keys, uploads)
}
