//! One log line per request: method, route (the template, not the names in it), status,
//! latency and request id. The id comes from the client's `x-request-id` when it is a sane
//! one, or is made here, and is echoed in the response. Bodies, query strings and headers are
//! never logged: they carry secrets and tokens.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

pub const REQUEST_ID: &str = "x-request-id";

/// A client's request id is kept when it is 1 to 128 visible ASCII characters.
fn sane(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
}

pub async fn requests(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .filter(|id| sane(id))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or(HeaderValue::from_static("none"))
        });
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(no route)", |p| p.as_str())
        .to_string();
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let latency_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    let request_id = id.to_str().unwrap_or_default();
    if status >= 500 {
        tracing::error!(%method, %route, status, latency_ms, request_id, "request");
    } else {
        tracing::info!(%method, %route, status, latency_ms, request_id, "request");
    }
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
