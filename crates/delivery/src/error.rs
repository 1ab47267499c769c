//! The delivery crate's one public error.

use crate::aws_error::AwsFailure;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(
        "wharf has no AWS credentials of its own: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run wharf with an instance, task or pod role"
    )]
    NoIdentity,
    #[error("{operation} failed: {}", failure.summary())]
    Aws {
        operation: &'static str,
        failure: AwsFailure,
    },
    #[error("endpoint {endpoint} is refused: {reason}")]
    EndpointRefused { endpoint: String, reason: String },
    #[error("endpoint {endpoint}: cannot resolve {host}: {source}")]
    EndpointUnresolvable {
        endpoint: String,
        host: String,
        source: std::io::Error,
    },
}
