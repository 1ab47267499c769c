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
    /// The key exists and the sync does not overwrite (`If-None-Match: *` failed).
    #[error(
        "{operation}: an object already exists at this key and the sync does not overwrite ({}); add {{run}} or a time to the key template, or let the sync overwrite",
        failure.summary()
    )]
    KeyExists {
        operation: &'static str,
        failure: AwsFailure,
    },
    /// The upload was stopped before the object was complete, and aborted.
    #[error("{0}; the upload was aborted, nothing was written")]
    Cancelled(String),
    /// The upload journal (the metadata store) could not record an upload id.
    #[error("cannot record the upload: {0}")]
    Journal(String),
    /// The run may no longer commit: another attempt holds its sync (see `before_commit`).
    #[error("{0}")]
    Fenced(String),
    /// S3 answered something that does not fit the protocol.
    #[error("{0}")]
    Protocol(String),
    #[error("endpoint {endpoint} is refused: {reason}")]
    EndpointRefused { endpoint: String, reason: String },
    #[error("endpoint {endpoint}: cannot resolve {host}: {source}")]
    EndpointUnresolvable {
        endpoint: String,
        host: String,
        source: std::io::Error,
    },
}

impl DeliveryError {
    /// A stable code for run records and `--json`: `s3.AccessDenied`, `s3.key_exists`,
    /// `s3.network`...
    pub fn code(&self) -> String {
        match self {
            Self::NoIdentity => "aws.no_identity".into(),
            Self::Aws { failure, .. } => match (&failure.code, failure.kind) {
                (Some(code), _) => format!("s3.{code}"),
                (None, crate::FailureKind::Network) => "s3.network".into(),
                (None, crate::FailureKind::Timeout) => "s3.timeout".into(),
                (None, _) => match failure.status {
                    Some(status) => format!("s3.http_{status}"),
                    None => "s3.error".into(),
                },
            },
            Self::KeyExists { .. } => "s3.key_exists".into(),
            Self::Cancelled(_) => "cancelled".into(),
            Self::Journal(_) => "store.error".into(),
            Self::Fenced(_) => "lease_lost".into(),
            Self::Protocol(_) => "s3.protocol".into(),
            Self::EndpointRefused { .. } => "endpoint.refused".into(),
            Self::EndpointUnresolvable { .. } => "endpoint.unresolvable".into(),
        }
    }
}
