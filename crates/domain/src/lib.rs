//! The concepts of wharf as types, and the rules that make a value of each type valid.
//!
//! This crate owns: destinations and their parts (bucket names, regions, role ARNs, key prefixes,
//! KMS key ids, S3-compatible endpoints, External IDs), syncs (file formats and their options,
//! column mappings, object key templates), segment filter trees (shape and limits), the `Secret`
//! wrapper, and the IAM policy documents wharf asks users to install. Every constructor validates, so a value of these types
//! is trusted by every other crate; the error says which field, which value and what rule.
//!
//! It must not know about I/O of any kind: no async, no network, no files, no database. Checks that
//! need the network (does an endpoint's name resolve to a private address?) live in `delivery`,
//! built on the pure address classification here ([`endpoint::classify_ip`]).
//!
//! Rejected alternative: validating in the CLI and API layers. Two front ends would drift; a
//! `BucketName` that can only be built valid cannot.

mod string_enum;

pub mod arn;
pub mod bucket;
pub mod destination;
pub mod endpoint;
pub mod error;
pub mod external_id;
pub mod json;
pub mod key_template;
pub mod kms;
pub mod model;
pub mod name;
pub mod policy;
pub mod prefix;
pub mod region;
pub mod schedule;
pub mod secret;
pub mod segment;
pub mod sync;
pub mod sync_mode;
pub mod units;
pub mod webhook;
pub mod xml_name;

pub use arn::{Partition, RoleArn};
pub use bucket::BucketName;
pub use destination::{
    AccessKeyId, Acl, ChecksumChoice, DeliveryOptions, S3Auth, S3Destination, S3DestinationSpec,
    ServerSideEncryption, StorageClass,
};
pub use endpoint::{AddressClass, Endpoint};
pub use error::InvalidValue;
pub use external_id::ExternalId;
pub use key_template::{KeyTemplate, KeyValues, NameLengths};
pub use kms::KmsKeyId;
pub use model::{ColumnInfo, PostgresSource, PostgresUrl, SourceConfig, SslMode};
pub use name::Name;
pub use prefix::KeyPrefix;
pub use region::Region;
pub use schedule::{Overlap, RunPolicy, Schedule, ScheduleSpec};
pub use secret::Secret;
pub use sync::{
    CHANGE_COLUMN, ChangeCounts, ColumnMapping, CsvOptions, DiffLayout, FileFormat, FileSettings,
    FileSpec, OnEmpty, ParquetCompression, ParquetOptions, SyncMode, SyncSettings, TextCompression,
    XmlOptions,
};
pub use webhook::{AlertEvent, WebhookUrl};
