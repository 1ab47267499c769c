//! Delivery to S3: clients and credentials, streaming uploads (multipart with bounded memory,
//! checksums, abort on failure) and the janitor, the connection test and its diagnoses, and a
//! local S3 endpoint for trying wharf without AWS.
//!
//! This crate owns every call to AWS (S3 and STS) and what their errors mean. It receives
//! validated `wharf_domain` destinations and returns plain reports; it must not know about the
//! metadata store, Arrow or the HTTP API, and no AWS SDK type leaves it except the S3 client
//! the runner drives.
//!
//! Rejected alternative: `object_store`'s S3 backend. It hides the multipart upload ids that the
//! connection test, the janitor and resumable uploads need, and its errors do not carry S3's
//! error code and request id, which every diagnosis here is built on.

mod aws_error;
mod client;
pub mod connection_test;
mod error;
mod etag;
mod identity;
pub mod local_s3;
pub mod upload;
pub mod webhook;

pub use aws_error::{AwsFailure, FailureKind};
pub use client::{ClientSettings, check_endpoint, operator_s3_endpoint, s3_client, session_name};
pub use connection_test::{
    ConnectionReport, StepReport, TestContext, test_connection, test_connection_watched,
};
pub use error::DeliveryError;
pub use identity::{Caller, Identity};
