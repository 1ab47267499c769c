//! What an AWS SDK error says, reduced to the parts wharf may show: status, error code, request
//! id, the bucket's region, the kind of network failure.
//!
//! Never format an `SdkError` with `{:?}`: its Debug output includes the raw response body, and
//! S3 error bodies echo the access key id and the string to sign. Its Display output includes the
//! service's message, which may do the same. Everything wharf reports goes through
//! [`AwsFailure`], which holds no free text from the service.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use std::error::Error as StdError;

/// How a call failed, without any text from the response body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsFailure {
    pub kind: FailureKind,
    /// HTTP status, when a response came back.
    pub status: Option<u16>,
    /// The service's error code (`AccessDenied`, `NoSuchBucket`...), from the parsed error, the
    /// `x-amzn-errortype` header, or the body's `<Code>`.
    pub code: Option<String>,
    pub request_id: Option<String>,
    /// `x-amz-bucket-region` or the body's `<Region>`: where S3 says the bucket really is.
    pub bucket_region: Option<String>,
    pub io_kind: Option<std::io::ErrorKind>,
    /// Whether the error body talks about KMS (a denial by the key policy, a disabled key), told
    /// apart without keeping the text.
    pub mentions_kms: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailureKind {
    /// The service answered with an error.
    #[default]
    Service,
    /// No connection: refused, reset, DNS failure.
    Network,
    /// Connect or read timeout.
    Timeout,
    /// Nothing was sent: no credentials could be loaded, or the request could not be built.
    NotSent,
    /// A response came back that could not be read.
    BadResponse,
}

impl AwsFailure {
    pub fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let mut failure = AwsFailure {
            code: err.code().map(str::to_owned),
            request_id: err.request_id().map(str::to_owned),
            io_kind: find_in_chain::<std::io::Error>(err).map(std::io::Error::kind),
            ..Default::default()
        };
        failure.kind = match err {
            SdkError::ServiceError(_) => FailureKind::Service,
            SdkError::TimeoutError(_) => FailureKind::Timeout,
            SdkError::DispatchFailure(d) if d.is_timeout() => FailureKind::Timeout,
            SdkError::DispatchFailure(d) if d.is_io() => FailureKind::Network,
            SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => FailureKind::NotSent,
            SdkError::ResponseError(_) => FailureKind::BadResponse,
            _ => FailureKind::NotSent,
        };
        if let Some(raw) = err.raw_response() {
            failure.status = Some(raw.status().as_u16());
            let headers = raw.headers();
            failure.bucket_region = headers.get("x-amz-bucket-region").map(str::to_owned);
            if failure.code.is_none() {
                // moto (and JSON protocols) name the error in a header; STS error bodies from
                // moto nest <Error> one level deeper than the SDK's parser looks.
                failure.code = headers
                    .get("x-amzn-errortype")
                    .map(|v| v.split(':').next().unwrap_or(v).to_owned());
            }
            if let Some(body) = raw.body().bytes() {
                // Inspected here, never kept or printed.
                if failure.code.is_none() {
                    failure.code = xml_tag(body, "Code");
                }
                if failure.request_id.is_none() {
                    failure.request_id = xml_tag(body, "RequestId");
                }
                if failure.bucket_region.is_none() {
                    failure.bucket_region = xml_tag(body, "Region");
                }
                failure.mentions_kms = String::from_utf8_lossy(body)
                    .to_ascii_lowercase()
                    .contains("kms");
            }
        }
        // Keep only values shaped like codes and ids: a hostile server must not smuggle text.
        failure.code = failure.code.filter(|c| is_token(c));
        failure.request_id = failure.request_id.filter(|c| is_token(c));
        failure.bucket_region = failure
            .bucket_region
            .filter(|r| wharf_domain::Region::parse(r).is_ok());
        failure
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    pub fn is_code(&self, codes: &[&str]) -> bool {
        self.code().is_some_and(|c| codes.contains(&c))
    }

    pub fn is_access_denied(&self) -> bool {
        self.is_code(&["AccessDenied", "AccessDeniedException", "Forbidden"])
            || (self.code.is_none() && self.status == Some(403))
    }

    /// A short description for logs and error chains: kind, status, code, request id.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        match self.kind {
            FailureKind::Service | FailureKind::BadResponse => {}
            FailureKind::Network => parts.push(match self.io_kind {
                Some(kind) => format!("network error ({kind})"),
                None => "network error".to_string(),
            }),
            FailureKind::Timeout => parts.push("timed out".to_string()),
            FailureKind::NotSent => parts.push("request not sent".to_string()),
        }
        if let Some(status) = self.status {
            parts.push(format!("HTTP {status}"));
        }
        if let Some(code) = &self.code {
            parts.push(code.clone());
        }
        if let Some(id) = &self.request_id {
            parts.push(format!("request id {id}"));
        }
        if parts.is_empty() {
            "unknown error".to_string()
        } else {
            parts.join(", ")
        }
    }
}

fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/+=".contains(&b))
}

fn xml_tag(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(text[start..end].trim().to_owned()).filter(|v| !v.is_empty())
}

/// The first error of type `T` in `err`'s source chain.
pub(crate) fn find_in_chain<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_fields_are_read_and_filtered() {
        let body = b"<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region><RequestId>ABC123</RequestId><AWSAccessKeyId>AKIASECRET</AWSAccessKeyId></Error>";
        assert_eq!(
            xml_tag(body, "Code").as_deref(),
            Some("AuthorizationHeaderMalformed")
        );
        assert_eq!(xml_tag(body, "Region").as_deref(), Some("eu-west-1"));
        assert_eq!(xml_tag(body, "Missing"), None);
        assert!(is_token("AccessDenied"));
        assert!(!is_token("two words"));
        assert!(!is_token("<script>"));
    }
}
