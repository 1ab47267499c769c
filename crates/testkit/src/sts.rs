//! A stand-in for STS `AssumeRole` whose credentials live as briefly as a test needs.
//!
//! Real STS (and moto) hand out credentials for 15 minutes at least; a test of "credentials
//! that expire during an upload are refreshed before they do" cannot wait that long. This
//! endpoint answers `AssumeRole` with the next key pair of a pool the test gave it (keys the S3
//! test server knows), expiring `lifetime` after it was issued, and records every call.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One `AssumeRole` call and the credentials it got.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The call's form parameters (`RoleArn`, `ExternalId`, `RoleSessionName`,
    /// `DurationSeconds`...).
    pub params: HashMap<String, String>,
    pub access_key: String,
    pub expires: SystemTime,
}

struct State {
    pool: Mutex<Vec<(String, String)>>,
    issued: Mutex<Vec<Issued>>,
    lifetime: Duration,
}

/// An STS endpoint on 127.0.0.1:0; stops when dropped.
pub struct StsStandIn {
    port: u16,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl StsStandIn {
    /// Hands out `pool`'s `(access key, secret)` pairs in order, each valid for `lifetime`.
    pub async fn start(pool: Vec<(String, String)>, lifetime: Duration) -> Self {
        let mut pool = pool;
        pool.reverse();
        let state = Arc::new(State {
            pool: Mutex::new(pool),
            issued: Mutex::default(),
            lifetime,
        });
        let (port, accept) = crate::httpd::serve("the STS stand-in", {
            let state = state.clone();
            move |request| answer(state.clone(), request)
        })
        .await;
        Self {
            port,
            state,
            accept,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every `AssumeRole` answered so far.
    pub fn issued(&self) -> Vec<Issued> {
        lock(&self.state.issued).clone()
    }
}

impl Drop for StsStandIn {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, crate::httpd::HandlerError> {
    let body = request.into_body().collect().await?.to_bytes();
    let params: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let respond = |status: StatusCode, xml: String| {
        Response::builder()
            .status(status)
            .header("content-type", "text/xml")
            .body(Full::new(Bytes::from(xml)))
    };
    if params.get("Action").map(String::as_str) != Some("AssumeRole") {
        return Ok(respond(
            StatusCode::BAD_REQUEST,
            sts_error("InvalidAction", "the stand-in answers AssumeRole only"),
        )?);
    }
    let Some((access_key, secret)) = lock(&state.pool).pop() else {
        return Ok(respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            sts_error("ServiceUnavailable", "the stand-in ran out of keys"),
        )?);
    };
    let expires = SystemTime::now() + state.lifetime;
    let expiration = time::OffsetDateTime::from(expires)
        .replace_nanosecond(0)?
        .format(&time::format_description::well_known::Rfc3339)?;
    let role = params.get("RoleArn").cloned().unwrap_or_default();
    let session = params.get("RoleSessionName").cloned().unwrap_or_default();
    lock(&state.issued).push(Issued {
        params,
        access_key: access_key.clone(),
        expires,
    });
    let xml = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{access_key}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>stand-in-token-{access_key}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROASTANDIN:{session}</AssumedRoleId>
      <Arn>{role}/{session}</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>stand-in</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
    );
    Ok(respond(StatusCode::OK, xml)?)
}

fn sts_error(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>stand-in</RequestId></ErrorResponse>"#
    )
}
