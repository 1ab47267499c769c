//! A local S3 endpoint: a folder served over the S3 protocol on 127.0.0.1, with real SigV4
//! checks. `wharf local-s3` and `wharf demo` run it so wharf can be tried without an AWS account,
//! and the test suite runs it in-process as its main S3 peer.
//!
//! Built on s3s (protocol, signatures) and s3s-fs (storage), with the gaps that matter to wharf
//! filled in `backend`. Tests reach two hook points: an [`AccessRule`] that denies operations per
//! access key (IAM-style AccessDenied), and a [`RequestHook`] that injects faults before a request
//! reaches S3 logic (503 SlowDown, 500, a 200 with an error body, a dropped connection, a delay, an
//! answer lost after the request took effect).

mod assemble;
mod backend;
mod integrity;
mod keys;
mod listing;
mod operation;
mod placed;

pub use operation::operation_name;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, HttpError, HttpResponse, S3Result, s3_error};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Decides whether an access key may perform an operation, like an IAM policy would.
pub trait AccessRule: Send + Sync + 'static {
    /// `operation` is S3's name for it (`PutObject`, `UploadPart`, `ListMultipartUploads`...).
    fn allows(
        &self,
        access_key: &str,
        operation: &str,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> bool;
}

/// What happens to one request, decided before S3 logic sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Serve it normally.
    Pass,
    /// Wait, then serve it normally.
    Delay(Duration),
    /// Answer with an S3 error (`SlowDown` and 503, `InternalError` and 500...).
    Error { code: String, status: u16 },
    /// Answer `200 OK` with an `<Error>` body, as S3 may do for CompleteMultipartUpload.
    OkWithErrorBody,
    /// Close the connection without answering (a reset, from the client's side).
    Drop,
    /// Serve it, then answer with this S3 error instead of the result: the request took
    /// effect, but the client believes it failed (a lost answer) and retries.
    LoseAnswer { code: String, status: u16 },
    /// Serve it, with the work done after the answer has begun (CompleteMultipartUpload's
    /// assembly) taking this much longer: the client waits on a kept-alive answer.
    SlowWork(Duration),
}

/// [`Fault::SlowWork`]'s delay, handed to the backend with the request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlowWork(pub(crate) Duration);

/// Sees every request (its operation name, bucket and key) and may inject a fault.
pub trait RequestHook: Send + Sync + 'static {
    fn on_request(&self, operation: &str, path: &str) -> Fault;
}

/// Settings of a local S3 endpoint.
pub struct LocalS3Config {
    /// Folder that holds the buckets (one sub-folder each).
    pub root: PathBuf,
    /// Address to listen on; port 0 picks a free port. Loopback only, by design.
    pub port: u16,
    /// Access key ids and secrets that may sign requests.
    pub credentials: Vec<(String, String)>,
    pub access_rule: Option<Arc<dyn AccessRule>>,
    pub hook: Option<Arc<dyn RequestHook>>,
}

/// A running local S3 endpoint. Dropping it stops it: the accept loop and every open connection
/// (keep-alive connections would otherwise go on serving).
pub struct LocalS3Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    accept: JoinHandle<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalS3Error {
    #[error("cannot serve {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("a local S3 endpoint needs at least one access key")]
    NoCredentials,
}

impl LocalS3Server {
    pub async fn start(config: LocalS3Config) -> Result<Self, LocalS3Error> {
        let backend = backend::Backend::new(&config.root).map_err(|source| LocalS3Error::Root {
            path: config.root.clone(),
            source,
        })?;
        let mut credentials = config.credentials.into_iter();
        let (first_key, first_secret) = credentials.next().ok_or(LocalS3Error::NoCredentials)?;
        let mut auth = SimpleAuth::from_single(first_key, first_secret);
        for (key, secret) in credentials {
            auth.register(key, secret.into());
        }
        let mut builder = S3ServiceBuilder::new(backend);
        builder.set_auth(auth);
        builder.set_access(Access {
            rule: config.access_rule,
        });
        let service = builder.build();

        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| LocalS3Error::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| LocalS3Error::Bind {
            port: config.port,
            source,
        })?;
        let (stop, stop_rx) = oneshot::channel();
        let accept = tokio::spawn(accept_loop(listener, service, config.hook, stop_rx));
        tracing::debug!(%addr, "local S3 endpoint listening");
        Ok(Self {
            addr,
            stop: Some(stop),
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes every connection and waits until they are gone.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.accept).await;
    }
}

impl Drop for LocalS3Server {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    service: S3Service,
    hook: Option<Arc<dyn RequestHook>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let service = service.clone();
                let hook = hook.clone();
                connections.spawn(async move {
                    let handler = service_fn(move |request: Request<Incoming>| {
                        handle(service.clone(), hook.clone(), request)
                    });
                    // HTTP/1 only: HTTP/2 would run streams as tasks outside `connections`, and
                    // stopping the server would not stop them.
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .http1_only()
                        .serve_connection(TokioIo::new(stream), handler)
                        .await;
                });
            }
        }
    }
    connections.shutdown().await;
}

async fn handle(
    service: S3Service,
    hook: Option<Arc<dyn RequestHook>>,
    mut request: Request<Incoming>,
) -> Result<HttpResponse, HttpError> {
    let fault = match &hook {
        Some(hook) => {
            let operation = operation_name(request.method(), request.uri(), request.headers());
            hook.on_request(operation, request.uri().path())
        }
        None => Fault::Pass,
    };
    let respond_with = match fault {
        Fault::Pass => None,
        Fault::Delay(duration) => {
            tokio::time::sleep(duration).await;
            None
        }
        Fault::SlowWork(duration) => {
            request.extensions_mut().insert(SlowWork(duration));
            None
        }
        Fault::Drop => return Err(HttpError::new("connection dropped by a test fault".into())),
        Fault::Error { code, status } => Some((status, code)),
        Fault::OkWithErrorBody => Some((200, "InternalError".to_string())),
        Fault::LoseAnswer { code, status } => {
            let _ = service.call(request.map(Body::from)).await;
            return error_response(status, &code);
        }
    };
    let Some((status, code)) = respond_with else {
        return service.call(request.map(Body::from)).await;
    };
    // Read the request body first: answering before it is read makes hyper close the
    // connection, and the client would see a reset instead of this answer.
    let (_parts, body) = request.into_parts();
    let _ = Body::from(body).store_all_limited(usize::MAX).await;
    error_response(status, &code)
}

/// An S3 `<Error>` answer with `status` and `code`, as a test fault sends it.
fn error_response(status: u16, code: &str) -> Result<HttpResponse, HttpError> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by a test</Message><RequestId>local-fault</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-amz-request-id", "local-fault")
        .body(Body::from(xml))
        .map_err(|e| HttpError::new(Box::new(e)))
}

/// Adapts an [`AccessRule`] to s3s; without one, every signed request is allowed.
struct Access {
    rule: Option<Arc<dyn AccessRule>>,
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        };
        let Some(rule) = &self.rule else {
            return Ok(());
        };
        let path = cx.s3_path();
        let operation = cx.s3_op().name();
        if rule.allows(
            &credentials.access_key,
            operation,
            path.get_bucket_name(),
            path.get_object_key(),
        ) {
            Ok(())
        } else {
            Err(s3_error!(AccessDenied, "Access Denied"))
        }
    }
}
