//! The in-process S3 test server.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use wharf_delivery::local_s3::{AccessRule, Fault, LocalS3Config, LocalS3Server, RequestHook};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Operations denied per access key: `(access key, operation)`.
#[derive(Default)]
struct DenyList(Mutex<HashSet<(String, String)>>);

impl AccessRule for DenyList {
    fn allows(
        &self,
        access_key: &str,
        operation: &str,
        _bucket: Option<&str>,
        _key: Option<&str>,
    ) -> bool {
        let denied = lock(&self.0);
        !denied.contains(&(access_key.to_string(), operation.to_string()))
            && !denied.contains(&(access_key.to_string(), "*".to_string()))
    }
}

/// Faults to inject, per operation, in order; and a count of every request seen.
#[derive(Default)]
pub struct FaultPlan {
    queued: Mutex<HashMap<String, VecDeque<Fault>>>,
    seen: Mutex<HashMap<String, usize>>,
}

impl FaultPlan {
    /// The next `times` requests of `operation` get `fault`.
    pub fn inject(&self, operation: &str, fault: Fault, times: usize) {
        let mut queued = lock(&self.queued);
        let queue = queued.entry(operation.to_string()).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Drops the faults still waiting for `operation`.
    pub fn clear(&self, operation: &str) {
        lock(&self.queued).remove(operation);
    }

    /// How many requests of `operation` reached the server (faulted ones included).
    pub fn seen(&self, operation: &str) -> usize {
        lock(&self.seen).get(operation).copied().unwrap_or(0)
    }
}

impl RequestHook for FaultPlan {
    fn on_request(&self, operation: &str, _path: &str) -> Fault {
        *lock(&self.seen).entry(operation.to_string()).or_default() += 1;
        lock(&self.queued)
            .get_mut(operation)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Fault::Pass)
    }
}

/// A local S3 endpoint on 127.0.0.1:0 over a temporary folder. The admin key may do anything;
/// more keys can be added with [`S3TestServer::start_with_keys`], and operations denied per key.
pub struct S3TestServer {
    server: LocalS3Server,
    pub faults: Arc<FaultPlan>,
    deny: Arc<DenyList>,
    pub access_key: String,
    pub secret_key: String,
    pub root: tempfile::TempDir,
}

impl S3TestServer {
    pub async fn start() -> Self {
        Self::start_with_keys(&[]).await
    }

    /// Starts with the admin key and `extra` `(access key, secret)` pairs.
    pub async fn start_with_keys(extra: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().expect("temporary folder"), extra).await
    }

    /// Starts again on the folder a stopped server kept ([`Self::stop_keeping_files`]), with
    /// a new admin key: what its objects and open uploads are after a restart.
    pub async fn restart(root: tempfile::TempDir) -> Self {
        Self::start_in(root, &[]).await
    }

    async fn start_in(root: tempfile::TempDir, extra: &[(&str, &str)]) -> Self {
        let access_key = format!(
            "AKIATEST{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )
        .to_uppercase();
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        let faults = Arc::new(FaultPlan::default());
        let deny = Arc::new(DenyList::default());
        let mut credentials = vec![(access_key.clone(), secret_key.clone())];
        credentials.extend(extra.iter().map(|(k, s)| (k.to_string(), s.to_string())));
        let server = LocalS3Server::start(LocalS3Config {
            root: root.path().to_path_buf(),
            port: 0,
            credentials,
            access_rule: Some(deny.clone()),
            hook: Some(faults.clone()),
        })
        .await
        .expect("start the local S3 test server");
        Self {
            server,
            faults,
            deny,
            access_key,
            secret_key,
            root,
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// A client with the admin key.
    pub fn admin(&self) -> aws_sdk_s3::Client {
        crate::s3_client(&self.endpoint(), &self.access_key, &self.secret_key)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        self.admin()
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
    }

    /// Denies `operation` (`PutObject`, `ListParts`...) to `access_key`, as a missing IAM
    /// permission would.
    pub fn deny(&self, access_key: &str, operation: &str) {
        lock(&self.deny.0).insert((access_key.to_string(), operation.to_string()));
    }

    /// Refuses every request signed with `access_key` from now on (credentials that expired).
    pub fn revoke(&self, access_key: &str) {
        self.deny(access_key, "*");
    }

    /// Denies an IAM action to `access_key` the way S3 authorises it: `s3:PutObject` covers
    /// PutObject, CreateMultipartUpload, UploadPart and CompleteMultipartUpload.
    pub fn deny_permission(&self, access_key: &str, action: &str) {
        let operations: &[&str] = match action {
            "s3:PutObject" => &[
                "PutObject",
                "CreateMultipartUpload",
                "UploadPart",
                "CompleteMultipartUpload",
            ],
            "s3:AbortMultipartUpload" => &["AbortMultipartUpload"],
            "s3:ListMultipartUploadParts" => &["ListParts"],
            "s3:ListBucketMultipartUploads" => &["ListMultipartUploads"],
            other => panic!("no operation mapping for {other}"),
        };
        for operation in operations {
            self.deny(access_key, operation);
        }
    }

    /// Stops the server and closes every connection.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }

    /// Stops the server and hands over its folder (deleted when the returned value drops), so
    /// a test can look at what the server left on disk.
    pub async fn stop_keeping_files(self) -> tempfile::TempDir {
        self.server.shutdown().await;
        self.root
    }
}
