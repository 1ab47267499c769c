//! The janitor: aborts multipart uploads that wharf started and a crash left open.

use super::{UploadTarget, abort_upload};
use crate::aws_error::AwsFailure;

/// An upload wharf recorded and never finished. `upload_id` is `None` when wharf stopped
/// between recording the intent and receiving the id from S3.
#[derive(Debug, Clone)]
pub struct StaleRef {
    pub handle: i64,
    pub key: String,
    pub upload_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JanitorOutcome {
    /// Aborted now, or already gone.
    Gone,
    /// S3 did not confirm; try again next time.
    Pending(String),
}

/// Aborts each stale upload. Uploads with an id are aborted by id. For the others, the uploads
/// of that exact key are found with ListMultipartUploads; a server that does not implement it
/// (some S3-compatible stores) leaves them pending, with the reason.
pub async fn abort_stale(target: &UploadTarget, stale: &[StaleRef]) -> Vec<(i64, JanitorOutcome)> {
    let mut out = Vec::with_capacity(stale.len());
    for upload in stale {
        let outcome = match &upload.upload_id {
            Some(id) => {
                if abort_upload(target, &upload.key, id).await {
                    JanitorOutcome::Gone
                } else {
                    JanitorOutcome::Pending("AbortMultipartUpload failed".into())
                }
            }
            None => abort_by_key(target, &upload.key).await,
        };
        out.push((upload.handle, outcome));
    }
    out
}

async fn abort_by_key(target: &UploadTarget, key: &str) -> JanitorOutcome {
    let listed = target
        .client()
        .list_multipart_uploads()
        .bucket(target.bucket())
        .prefix(key)
        .send()
        .await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => {
            let failure = AwsFailure::from_sdk(&e);
            return JanitorOutcome::Pending(format!(
                "cannot list multipart uploads ({}); if the server does not support ListMultipartUploads, abort uploads of {key:?} by hand",
                failure.summary()
            ));
        }
    };
    let mut all_gone = true;
    for upload in listed.uploads() {
        if upload.key() == Some(key)
            && let Some(id) = upload.upload_id()
        {
            all_gone &= abort_upload(target, key, id).await;
        }
    }
    if all_gone {
        JanitorOutcome::Gone
    } else {
        JanitorOutcome::Pending("AbortMultipartUpload failed".into())
    }
}
