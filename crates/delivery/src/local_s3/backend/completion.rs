//! CompleteMultipartUpload: one run per upload id, which a client's retry joins (or whose result
//! it gets), the checks S3 makes before it answers, and the assembly on a blocking thread while
//! the answer is kept alive.

use super::*;
use crate::local_s3::assemble::Assembly;

/// The outcome of one CompleteMultipartUpload, kept so that a client's retry gets it too.
#[derive(Clone)]
pub(super) struct Completed {
    bucket: String,
    key: String,
    e_tag: Option<ETag>,
}
pub(super) type Completion = Result<Completed, (S3ErrorCode, Option<String>)>;

/// A CompleteMultipartUpload run that every request for its upload id awaits.
pub(super) type CompletionRun = Shared<BoxFuture<'static, Completion>>;

/// How long a finished Complete is remembered for retries of it.
const COMPLETION_MEMORY: Duration = Duration::from_secs(15 * 60);

impl Backend {
    pub(super) async fn complete(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let mut req = req;
        let id = req.input.upload_id.clone();
        let key = std::mem::take(&mut req.input.key);
        req.input.key = self.keys.stored(&req.input.bucket, &key);
        // A retry (the first request's client gave up waiting) joins that run, or gets its
        // result, as S3 answers a repeated Complete. A run that failed left the upload whole:
        // a new request runs again.
        let joined = |completions: &HashMap<String, (Instant, CompletionRun)>| {
            completions
                .get(&id)
                .filter(|(_, run)| !matches!(run.peek(), Some(Err(_))))
                .map(|(_, run)| run.clone())
        };
        let earlier = {
            let mut completions = lock(&self.completions);
            completions.retain(|_, (started, _)| started.elapsed() < COMPLETION_MEMORY);
            joined(&completions)
        };
        let completion = match earlier {
            Some(run) => run,
            None => {
                // What S3 checks before it answers fails here with its 4xx status.
                self.require_upload(&id)?;
                let input = req.input;
                // An upload id completes only the key it was made for, as on S3.
                let same = lock(&self.uploads)
                    .get(&id)
                    .is_some_and(|u| u.bucket == input.bucket && u.key == key);
                if !same {
                    return Err(s3_error!(
                        NoSuchUpload,
                        "The specified upload does not exist for this key"
                    ));
                }
                let assembly = Arc::new(Assembly {
                    root: self.root.clone(),
                    bucket: input.bucket,
                    key: input.key,
                    upload_id: id.clone(),
                    parts: input
                        .multipart_upload
                        .and_then(|m| m.parts)
                        .unwrap_or_default(),
                    if_match: input.if_match,
                    if_none_match: input.if_none_match,
                });
                let (checking, digests) = (assembly.clone(), self.digests.clone());
                let placed = self
                    .placement
                    .stored_parts(&id)
                    .into_iter()
                    .map(|(number, (stored, _))| (number, stored))
                    .collect();
                let parts = tokio::task::spawn_blocking(move || checking.check(&digests, &placed))
                    .await
                    .map_err(|e| s3_error!(InternalError, "the checks stopped: {e}"))??;
                let slow = req.extensions.get::<crate::local_s3::SlowWork>().copied();
                let mut completions = lock(&self.completions);
                // Another request for this upload got here first: join it.
                if let Some(run) = joined(&completions) {
                    run
                } else {
                    let (uploads, digests) = (self.uploads.clone(), self.digests.clone());
                    let placement = self.placement.clone();
                    // Spawned: assembling a large object takes a while, and a client that
                    // hangs up meanwhile must not cancel it halfway.
                    let task = tokio::task::spawn_blocking(move || {
                        if let Some(crate::local_s3::SlowWork(delay)) = slow {
                            std::thread::sleep(delay);
                        }
                        let result =
                            assembly
                                .run(&parts, &digests, &placement)
                                .map(|e_tag| Completed {
                                    bucket: assembly.bucket.clone(),
                                    key,
                                    e_tag: Some(ETag::Strong(e_tag)),
                                });
                        if result.is_ok() {
                            lock(&uploads).remove(&assembly.upload_id);
                        }
                        result.map_err(|e| (e.code().clone(), e.message().map(str::to_owned)))
                    });
                    let run = async move {
                        task.await.unwrap_or_else(|e| {
                            Err((S3ErrorCode::InternalError, Some(e.to_string())))
                        })
                    }
                    .boxed()
                    .shared();
                    completions.insert(id.clone(), (Instant::now(), run.clone()));
                    run
                }
            }
        };
        // s3s answers 200 at once and sends a space every 100 ms until this resolves, then the
        // result (or an <Error> in the 200 body), as S3 does: clients whose read timeout is
        // shorter than the assembly (the AWS C++ SDK's curl low-speed limit, ~3-9 s) keep waiting.
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            future: Some(Box::pin(async move {
                match completion.await {
                    Ok(done) => Ok(CompleteMultipartUploadOutput {
                        bucket: Some(done.bucket),
                        key: Some(done.key),
                        e_tag: done.e_tag,
                        ..Default::default()
                    }),
                    Err((code, message)) => Err(match message {
                        Some(message) => S3Error::with_message(code, message),
                        None => S3Error::new(code),
                    }),
                }
            })),
            ..Default::default()
        }))
    }
}
