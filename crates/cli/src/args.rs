//! The command line, as clap parses it. Help texts are the user manual.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// wharf ships data models and audience segments from your warehouse into S3 buckets as files.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, propagate_version = true)]
pub struct Cli {
    /// Where wharf keeps its state: metadata database, master key, local data.
    #[arg(long, global = true, env = "WHARF_HOME", default_value = ".wharf")]
    pub home: PathBuf,

    /// Machine-readable JSON on stdout (and nothing else on stdout).
    #[arg(long, global = true)]
    pub json: bool,

    /// Let destinations use S3-compatible endpoints on loopback or private networks (for local
    /// S3 servers and tests). Cloud metadata addresses stay refused.
    #[arg(long, global = true, env = "WHARF_ALLOW_PRIVATE_ENDPOINTS")]
    pub allow_private_endpoints: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Try wharf end to end on this machine: a local S3 endpoint, a destination, a connection
    /// test and generated IAM policies. No AWS account and no network needed.
    Demo,
    /// Print wharf's own AWS identity (the principal that roles must trust).
    Whoami,
    /// Serve a folder over the S3 protocol on 127.0.0.1 until interrupted.
    LocalS3(LocalS3Args),
    /// Add, inspect, test and remove destinations.
    #[command(subcommand)]
    Destination(DestinationCommand),
}

#[derive(Debug, Args)]
pub struct LocalS3Args {
    /// Folder holding the buckets (one sub-folder each); created if missing.
    #[arg(long)]
    pub data: PathBuf,
    /// Port on 127.0.0.1 (default: a free one, printed at start).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Access key id clients sign with.
    #[arg(long)]
    pub access_key: String,
    /// Name of the environment variable holding the secret key.
    #[arg(long)]
    pub secret_key_env: String,
}

#[derive(Debug, Subcommand)]
pub enum DestinationCommand {
    /// Add a destination.
    #[command(subcommand)]
    Add(AddDestination),
    /// List destinations.
    List,
    /// Show one destination (never its secrets).
    Show { name: String },
    /// Remove a destination.
    Rm { name: String },
    /// Replace a role destination's External ID. The destination becomes unverified until its
    /// role's trust policy names the new one and a connection test passes.
    RotateExternalId { name: String },
    /// Print the IAM policies to install in AWS for a destination.
    Policy(PolicyArgs),
    /// Prove that wharf can write to the destination, without leaving anything in the bucket.
    Test { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AddDestination {
    /// An Amazon S3 (or S3-compatible) bucket.
    S3(Box<AddS3>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMethod {
    /// An IAM user's access key (or an S3-compatible service's key).
    AccessKey,
    /// A role in the bucket owner's account that wharf assumes with a generated External ID.
    Role,
}

#[derive(Debug, Args)]
pub struct AddS3 {
    /// Unique name, e.g. partner-exports.
    pub name: String,
    /// Bucket name.
    #[arg(long)]
    pub bucket: String,
    /// The bucket's region, e.g. eu-west-3.
    #[arg(long)]
    pub region: String,
    /// Folder in the bucket that wharf writes under (default: the bucket's root).
    #[arg(long)]
    pub prefix: Option<String>,
    /// How wharf authenticates.
    #[arg(long, value_enum)]
    pub auth: AuthMethod,
    /// Access key id (access-key auth).
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// Read the secret access key from this environment variable (access-key auth).
    #[arg(long, conflicts_with = "secret_access_key_stdin")]
    pub secret_access_key_env: Option<String>,
    /// Read the secret access key from standard input (access-key auth).
    #[arg(long)]
    pub secret_access_key_stdin: bool,
    /// Base URL of an S3-compatible service, e.g. https://minio.example.com:9000 (access-key auth).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// ARN of the role wharf assumes (role auth).
    #[arg(long)]
    pub role_arn: Option<String>,
    /// Lifetime of each role session, 900 to 43200 seconds (role auth; default 3600).
    #[arg(long)]
    pub session_duration: Option<u32>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// Server-side encryption: aes256 (SSE-S3) or kms (SSE-KMS, with --kms-key-id).
    #[arg(long)]
    pub sse: Option<String>,
    /// KMS key for --sse kms: key ARN, key id or alias/NAME.
    #[arg(long)]
    pub kms_key_id: Option<String>,
    /// Storage class of written objects, e.g. STANDARD_IA.
    #[arg(long)]
    pub storage_class: Option<String>,
    /// Canned ACL: bucket-owner-full-control.
    #[arg(long)]
    pub acl: Option<String>,
    /// Checksum S3 verifies on upload: crc32c, crc64nvme or when-required (default: crc32c on
    /// AWS, when-required on custom endpoints).
    #[arg(long)]
    pub checksum: Option<String>,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    pub name: String,
    /// Name this principal in the trust policy instead of asking AWS who wharf is (for a wharf
    /// deployment whose credentials are elsewhere).
    #[arg(long)]
    pub principal_arn: Option<String>,
}
