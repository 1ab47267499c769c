//! Webhook deliveries: an HMAC-SHA256 signature over the body, and one POST to a URL whose host
//! passes the address rules S3 endpoints pass (checked again at each delivery: DNS changes).

use crate::error::DeliveryError;
use bytes::Bytes;
use hmac::{Hmac, Mac as _};
use http_body_util::{BodyExt as _, Full};
use sha2::Sha256;
use std::time::Duration;
use wharf_domain::{Secret, WebhookUrl};

/// How long one delivery may take, connection included.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The header carrying the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
/// The timestamp is signed with the body, so a receiver refuses replays older than it accepts.
pub const SIGNATURE_HEADER: &str = "x-wharf-signature";

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &Secret<String>, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Why a delivery failed, for the record: never the URL (it may hold a token).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Refused(String),
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("cannot reach the receiver: {0}")]
    Unreachable(String),
    #[error("no answer within {} s", WEBHOOK_TIMEOUT.as_secs())]
    Timeout,
}

/// POSTs `body` (JSON) to `url` with the signature and a delivery id; `Ok` on a 2xx answer.
pub async fn post(
    url: &str,
    body: Vec<u8>,
    secret: &Secret<String>,
    delivery_id: i64,
    allow_private: bool,
) -> Result<u16, WebhookError> {
    let url =
        WebhookUrl::parse(url, allow_private).map_err(|e| WebhookError::Refused(e.to_string()))?;
    let (host, port) = url.host_and_port();
    crate::client::check_host(&url.redacted(), &host, port, allow_private)
        .await
        .map_err(|e: DeliveryError| WebhookError::Refused(e.to_string()))?;
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let request = http::Request::post(url.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("wharf/", env!("CARGO_PKG_VERSION")),
        )
        .header(SIGNATURE_HEADER, sign(secret, timestamp, &body))
        .header("x-wharf-delivery", delivery_id.to_string())
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| WebhookError::Refused(e.to_string()))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| WebhookError::Unreachable(format!("no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let response = tokio::time::timeout(WEBHOOK_TIMEOUT, async {
        let response = client.request(request).await?;
        let status = response.status();
        // Read (and drop) the answer, so the connection closes cleanly.
        let _ = response.into_body().collect().await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    })
    .await
    .map_err(|_| WebhookError::Timeout)?
    .map_err(|e| WebhookError::Unreachable(source_chain(&e)))?;
    if response.is_success() {
        Ok(response.as_u16())
    } else {
        Err(WebhookError::Status(response.as_u16()))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 has no dotted input; this is HMAC-SHA256("key", "1700000000.{}"), computed
        // with Python's hmac module.
        let signed = sign(&Secret::new("key".to_string()), 1_700_000_000, b"{}");
        assert_eq!(
            signed,
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
