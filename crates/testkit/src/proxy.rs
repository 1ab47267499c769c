//! A fault-injecting HTTP proxy in front of any S3 server.
//!
//! Faults that a server written by someone else cannot be asked to produce (an answer lost after
//! the server acted, a byte flipped on the wire after every checksum and signature was computed,
//! an operation the server "does not implement") are made here, between wharf and the server.
//! The proxy forwards each request unchanged, `Host` header included, so SigV4 signatures still
//! verify upstream; it counts requests per S3 operation and keeps each request's headers, so a
//! test can check what reached the server and that its fault fired.

use crate::httpd::HandlerError;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use wharf_delivery::local_s3::operation_name;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the proxy does to one request of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyFault {
    /// Forward the request, let the server act on it, then close the connection instead of
    /// relaying its answer (a response lost in the network).
    LoseAnswer,
    /// Flip one byte in the middle of the request body before forwarding it (corruption in
    /// transit, after the client computed its checksums and signature).
    CorruptBody,
    /// Answer with this status and S3 error code without forwarding (e.g. `501
    /// NotImplemented` from a server that lacks the operation).
    Answer { status: u16, code: String },
}

/// One request the proxy saw: its operation and headers.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub operation: &'static str,
    pub path_and_query: String,
    pub headers: HeaderMap,
    /// The status relayed (or made up) for it; `None` when the answer was lost.
    pub status: Option<u16>,
}

#[derive(Default)]
struct State {
    queued: Mutex<HashMap<String, VecDeque<ProxyFault>>>,
    fired: Mutex<HashMap<String, usize>>,
    seen: Mutex<Vec<SeenRequest>>,
}

/// A proxy on 127.0.0.1:0 forwarding to `upstream`; stops when dropped.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Self {
        let state = Arc::new(State::default());
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let (port, accept) = crate::httpd::serve("the fault proxy", {
            let state = state.clone();
            move |request| forward(state.clone(), client.clone(), upstream.clone(), request)
        })
        .await;
        Self {
            port,
            state,
            accept,
        }
    }

    /// The URL to give wharf instead of the server's.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next `times` requests of `operation` get `fault`.
    pub fn inject(&self, operation: &str, fault: ProxyFault, times: usize) {
        lock(&self.state.queued)
            .entry(operation.to_string())
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// How many requests of `operation` got a fault.
    pub fn fired(&self, operation: &str) -> usize {
        lock(&self.state.fired).get(operation).copied().unwrap_or(0)
    }

    /// How many requests of `operation` reached the proxy (faulted ones included).
    pub fn seen(&self, operation: &str) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|r| r.operation == operation)
            .count()
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.state.seen).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(
    state: Arc<State>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Arc<str>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, HandlerError> {
    let operation = operation_name(request.method(), request.uri(), request.headers());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let fault = lock(&state.queued)
        .get_mut(operation)
        .and_then(VecDeque::pop_front);
    if fault.is_some() {
        *lock(&state.fired).entry(operation.to_string()).or_default() += 1;
    }
    let index = {
        let mut seen = lock(&state.seen);
        seen.push(SeenRequest {
            operation,
            path_and_query: path_and_query.clone(),
            headers: request.headers().clone(),
            status: None,
        });
        seen.len() - 1
    };
    let (mut parts, body) = request.into_parts();
    // The whole body is read before anything is answered: answering first makes hyper close the
    // connection, and the client would see a reset instead of the answer.
    let mut body = body.collect().await?.to_bytes();
    let relayed = match fault {
        Some(ProxyFault::Answer { status, code }) => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>proxy</RequestId></Error>"
            );
            Response::builder()
                .status(StatusCode::from_u16(status)?)
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from(xml)))?
        }
        fault => {
            if fault == Some(ProxyFault::CorruptBody) && !body.is_empty() {
                let mut flipped = body.to_vec();
                let middle = flipped.len() / 2;
                flipped[middle] ^= 0x55;
                body = Bytes::from(flipped);
            }
            parts.uri = format!("{upstream}{path_and_query}").parse()?;
            parts.headers.remove(http::header::CONNECTION);
            let answer = client
                .request(Request::from_parts(parts, Full::new(body)))
                .await?;
            let (mut head, answer_body) = answer.into_parts();
            let answer_body = answer_body.collect().await?.to_bytes();
            if fault == Some(ProxyFault::LoseAnswer) {
                return Err("answer lost by a test fault".into());
            }
            head.headers.remove(http::header::TRANSFER_ENCODING);
            head.headers.remove(http::header::CONNECTION);
            Response::from_parts(head, Full::new(answer_body))
        }
    };
    lock(&state.seen)[index].status = Some(relayed.status().as_u16());
    Ok(relayed)
}
