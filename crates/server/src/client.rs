//! A client of this server's API, for the command line's `--server` mode: trigger a run and
//! follow it. It speaks the same `/api/v1` the OpenAPI document describes, over http or https.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::Value;
use std::time::Duration;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// A server at `base` (`https://wharf.example.com`), called with a bearer token.
pub struct RemoteServer {
    base: String,
    token: String,
    client: Client,
}

/// What a call to the server came to when it was not a success.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Url(String),
    #[error("cannot reach {base}: {reason}")]
    Unreachable { base: String, reason: String },
    /// The API's error: its status, code and message.
    #[error("the server answered {status} [{code}] {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
}

impl RemoteServer {
    pub fn new(base: &str, token: String) -> Result<Self, RemoteError> {
        let url = url::Url::parse(base).map_err(|e| {
            RemoteError::Url(format!(
                "--server {base:?} is not a URL ({e}); write it as https://wharf.example.com"
            ))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(RemoteError::Url(format!(
                "--server {base:?}: the scheme is http or https"
            )));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| RemoteError::Url(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            client,
        })
    }

    async fn call(&self, method: http::Method, path: &str) -> Result<Value, RemoteError> {
        let unreachable = |reason: String| RemoteError::Unreachable {
            base: self.base.clone(),
            reason,
        };
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| RemoteError::Url(e.to_string()))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = tokio::time::timeout(TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| unreachable("the answer stopped".into()))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        Err(RemoteError::Api {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or("unknown").to_string(),
            message: error["message"]
                .as_str()
                .unwrap_or("(no message)")
                .to_string(),
        })
    }

    /// Asks for a run of `sync`; its id.
    pub async fn trigger(&self, sync: &str) -> Result<String, RemoteError> {
        let path = format!("/api/v1/syncs/{}/runs", encode(sync));
        let answer = self.call(http::Method::POST, &path).await?;
        Ok(answer["run_id"].as_str().unwrap_or_default().to_string())
    }

    /// A run, as `GET /api/v1/runs/{id}` shows it.
    pub async fn run(&self, run_id: &str) -> Result<Value, RemoteError> {
        self.call(
            http::Method::GET,
            &format!("/api/v1/runs/{}", encode(run_id)),
        )
        .await
    }
}

/// A path segment, percent-encoded.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
