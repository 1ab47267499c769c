//! A small HTTP/1 server on 127.0.0.1 for the test doubles (the fault proxy, the STS stand-in).

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;

pub(crate) type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A server answering every request with `handle`: its port, and the task to abort to stop
/// it (which ends every connection). A handler's `Err` closes the connection unanswered.
pub(crate) async fn serve<H, F>(what: &str, handle: H) -> (u16, tokio::task::JoinHandle<()>)
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, HandlerError>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|e| panic!("bind {what} on 127.0.0.1: {e}"));
    let port = listener.local_addr().expect("local address").port();
    let handle = Arc::new(handle);
    let accept = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let handle = handle.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(request));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    });
    (port, accept)
}
