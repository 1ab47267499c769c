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
    /// S3 servers and tests). Cloud metadata addresses stay refused. Also set by
    /// `WHARF_ALLOW_PRIVATE_ENDPOINTS=1` (1/0, true/false, yes/no, on/off).
    #[arg(long, global = true)]
    pub allow_private_endpoints: bool,

    /// The workspace to work in: every object belongs to one.
    #[arg(
        long,
        global = true,
        env = "WHARF_WORKSPACE",
        default_value = "default"
    )]
    pub workspace: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Try wharf end to end on this machine: a local S3 endpoint, a destination, a connection
    /// test and generated IAM policies. No AWS account and no network needed.
    Demo(DemoArgs),
    /// Print wharf's own AWS identity (the principal that roles must trust).
    Whoami,
    /// Serve a folder over the S3 protocol on 127.0.0.1 until interrupted.
    LocalS3(LocalS3Args),
    /// Run the wharf server: the REST API under /api/v1 (OpenAPI at /api/openapi.json) and
    /// health probes, until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Run syncs on their schedules, without the API (for deployments that run the API and
    /// the runs apart), until SIGTERM or Ctrl-C. Several workers and servers may share one
    /// `--home`.
    Worker(WorkerArgs),
    /// Add, inspect, test and remove destinations.
    #[command(subcommand)]
    Destination(DestinationCommand),
    /// Register warehouses that models query.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Define named queries (models) on a source and preview them.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Carve audiences out of a model with no-code filters; count, preview and see their SQL.
    #[command(subcommand)]
    Segment(SegmentCommand),
    /// Connect a model or segment to a destination as files, and run it.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Webhook channels told when runs fail, syncs pause and recover.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Runs of syncs, newest first: `wharf runs [--sync NAME]`, `wharf runs show RUN_ID`.
    Runs(RunsArgs),
    /// What a run of a sync would write (keys, rows), without writing anything.
    Plan { name: String },
    /// Workspaces: every object belongs to one (`--workspace W` picks it; default `default`).
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// API tokens of a workspace, for the REST API (served by `wharf serve`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Users of a workspace, who sign in to the web UI.
    #[command(subcommand)]
    User(UserCommand),
    /// The workspace's audit log, newest first: who changed what, when, and how it ended.
    Audit {
        /// How many entries to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Write deterministic sample tables (as `wharf demo` and `scripts/bench` use) to Parquet.
    #[command(subcommand, hide = true)]
    Sample(SampleCommand),
}

#[derive(Debug, Subcommand)]
pub enum SampleCommand {
    /// The 12-column customers table, ids 1..=ROWS.
    Customers {
        #[arg(long)]
        rows: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// About three orders per customer of 1..=CUSTOMERS.
    Orders {
        #[arg(long)]
        customers: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Add a source.
    #[command(subcommand)]
    Add(AddSource),
    /// List sources.
    List,
    /// Remove a source (refused while a model reads it).
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AddSource {
    /// A folder of .parquet, .csv, .ndjson or .jsonl files (or folders of them); each is a table
    /// named after the file or folder, queried with SQL in-process.
    Local {
        /// Unique name, e.g. warehouse.
        name: String,
        /// The folder.
        #[arg(long)]
        path: PathBuf,
    },
    /// A PostgreSQL database: models run their SQL there. The connection URL
    /// (postgres://USER:PASSWORD@HOST:PORT/DATABASE) may hold a password, so it is read from an
    /// environment variable or standard input, never taken as an argument; it is encrypted at
    /// rest and shown without its password.
    Postgres {
        /// Unique name, e.g. production.
        name: String,
        /// The environment variable holding the URL (without it: read from standard input).
        #[arg(long)]
        url_env: Option<String>,
        /// TLS: disable, prefer (default, as libpq), require (encrypted, certificate not
        /// checked), verify-full (certificate checked against the system's roots or
        /// --sslrootcert, and the host name). Overrides the URL's sslmode.
        #[arg(long)]
        sslmode: Option<String>,
        /// A PEM file of CA certificates to trust for verify-full.
        #[arg(long)]
        sslrootcert: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Add a model: a SQL query on a source, with a primary key column. The query is planned (not
    /// run) to check it.
    Add {
        /// Unique name, e.g. customers.
        name: String,
        /// The source the query runs on.
        #[arg(long)]
        source: String,
        /// A SELECT query (DataFusion SQL for local sources).
        #[arg(long)]
        sql: String,
        /// The column that identifies a row.
        #[arg(long)]
        primary_key: String,
    },
    /// List models.
    List,
    /// Show a model's query and columns.
    Show { name: String },
    /// Remove a model (refused while a segment or sync uses it).
    Rm { name: String },
    /// Print a model's schema and first rows.
    Preview {
        name: String,
        /// Rows to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Add a workspace.
    Add { name: String },
    /// List the workspaces.
    List,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: a free one, printed at start).
    #[arg(long, env = "WHARF_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Serve /metrics without a token (default: an admin token, as the API takes).
    #[arg(long, env = "WHARF_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Browsers reach wharf through an HTTPS proxy: session cookies are marked Secure, and
    /// sign-in throttling counts the address the proxy appends to X-Forwarded-For.
    #[arg(long, env = "WHARF_BEHIND_HTTPS_PROXY")]
    pub behind_https_proxy: bool,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Runs this process keeps in flight at most, across syncs; the rest wait in order of due
    /// time.
    #[arg(long, env = "WHARF_MAX_CONCURRENT_RUNS", default_value_t = wharf_service::DEFAULT_MAX_CONCURRENT_RUNS)]
    pub max_concurrent_runs: usize,
    /// Attempts to deliver each alert before it is recorded failed.
    #[arg(long, env = "WHARF_ALERT_ATTEMPTS", default_value_t = 6)]
    pub alert_attempts: u32,
    /// The wait before an alert's second attempt, in seconds, doubling after each (at most 10
    /// minutes).
    #[arg(long, env = "WHARF_ALERT_RETRY_BASE_SECONDS", default_value_t = 10)]
    pub alert_retry_base_seconds: u64,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Add a webhook channel: a signed JSON POST (with a `text` field Slack shows) for each
    /// event. Loopback and private addresses need --allow-private-endpoints; the cloud metadata
    /// service is always refused.
    Add {
        name: String,
        /// The URL events are POSTed to (it may hold a token: it is never shown back whole).
        #[arg(long)]
        url: String,
        /// Events: failed (a run failed and no retry follows), paused, recovered; e.g.
        /// failed,paused,recovered.
        #[arg(long)]
        on: String,
        /// Only this sync's events (default: every sync of the workspace).
        #[arg(long)]
        sync: Option<String>,
        /// Name of the environment variable holding the HMAC signing secret (default: wharf
        /// generates one and shows it once).
        #[arg(long)]
        secret_env: Option<String>,
    },
    /// List alert channels.
    List,
    /// Show a channel and its latest deliveries (attempts, status, last error).
    Show { name: String },
    /// Remove a channel and its deliveries.
    Rm { name: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to `--workspace` with a role. The password comes from an environment
    /// variable or standard input, never an argument; it is kept as an argon2id hash. A user
    /// already in another workspace gives their current password.
    Add {
        email: String,
        /// `admin`, `editor` or `viewer`.
        #[arg(long)]
        role: String,
        /// Read the password from this environment variable.
        #[arg(long, conflicts_with = "password_stdin")]
        password_env: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the workspace's users.
    List,
    /// Remove a user from the workspace.
    Rm { email: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for `--workspace`; its text is printed once, and only its SHA-256 kept.
    Create {
        name: String,
        /// `admin` (everything), `editor` (objects and runs) or `viewer` (read only).
        #[arg(long)]
        role: String,
        /// Lifetime: whole days, hours or minutes (`90d`, `12h`, `30m`); default: no expiry.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List the workspace's tokens (never their text).
    List,
    /// Revoke a token: it stops working at once.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SegmentCommand {
    /// Add a segment: a filter over a model, given as a JSON tree (see docs/guide.md). It is
    /// checked against the model's columns and types before it is stored.
    Add(AddSegment),
    /// List segments.
    List,
    /// Show a segment's model and filter.
    Show { name: String },
    /// Remove a segment (refused while a sync exports it).
    Rm { name: String },
    /// Count a segment's rows and print the first ones.
    Preview {
        name: String,
        /// Rows to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// The time `within_last` counts back from (ISO-8601; default: now).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Print the SQL a segment compiles to, with its parameters shown separately.
    Sql {
        name: String,
        /// The time `within_last` counts back from (ISO-8601; default: now).
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AddSegment {
    /// Unique name, e.g. loyal-customers.
    pub name: String,
    /// The model the segment filters.
    #[arg(long)]
    pub model: String,
    /// A file holding the filter's JSON (`-` for standard input).
    #[arg(long, required_unless_present = "filter", conflicts_with = "filter")]
    pub filter_file: Option<PathBuf>,
    /// The filter's JSON, e.g. '{"column": "country", "op": "=", "value": "FR"}'.
    #[arg(long)]
    pub filter: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Add a sync: a model's (or segment's) rows as files in a destination.
    Add(Box<AddSync>),
    /// List syncs.
    List,
    /// Show a sync's settings.
    Show { name: String },
    /// Replace a sync's settings (the same options as `add`, checked the same way); its runs
    /// stay.
    Update(Box<AddSync>),
    /// Remove a sync and its run history (refused while it runs).
    Rm { name: String },
    /// Run a sync now: query, encode and upload, with progress; exit 1 if the run fails. With
    /// --server, a running wharf server runs it (through its queue) and this follows it.
    Run {
        name: String,
        /// A wharf server's URL (https://wharf.example.com): ask it to run the sync instead of
        /// running it here.
        #[arg(long, requires = "token_env")]
        server: Option<String>,
        /// The environment variable holding the API token for --server.
        #[arg(long, requires = "server")]
        token_env: Option<String>,
    },
    /// Resume a paused sync: the scheduler runs it again and its failures in a row are
    /// forgotten.
    Resume { name: String },
    /// Pause a sync: the scheduler skips it until it is resumed (`sync run` still works).
    Pause { name: String },
    /// Forget the snapshot of an insert, diff or delta sync: its next run sends every row.
    Reset { name: String },
}

#[derive(Debug, Args)]
pub struct AddSync {
    /// Unique name, e.g. customers-daily.
    pub name: String,
    /// The model whose rows are exported.
    #[arg(long, required_unless_present = "segment", conflicts_with = "segment")]
    pub model: Option<String>,
    /// The segment whose rows are exported (instead of a whole model).
    #[arg(long)]
    pub segment: Option<String>,
    /// The destination the files go to.
    #[arg(long)]
    pub destination: String,
    /// File format: parquet, csv, ndjson (one object per line), json (one array), xml, avro.
    #[arg(long)]
    pub format: String,
    /// Columns to export, in order, with optional renames: `id,email:contact_email` (default:
    /// all, as named by the model).
    #[arg(long)]
    pub columns: Option<String>,
    /// Compression of text formats: none, gzip, zstd (sets the extension and Content-Encoding).
    #[arg(long)]
    pub compression: Option<String>,
    /// Parquet codec: snappy, zstd, gzip, lz4, none (default zstd).
    #[arg(long)]
    pub parquet_compression: Option<String>,
    /// Rows per Parquet row group (default 1048576).
    #[arg(long)]
    pub parquet_row_group_rows: Option<u64>,
    /// CSV delimiter, one character (`tab` for a tab; default `,`).
    #[arg(long)]
    pub csv_delimiter: Option<String>,
    /// CSV quote character (default `"`).
    #[arg(long)]
    pub csv_quote: Option<String>,
    /// Write a CSV header line: true or false (default true).
    #[arg(long)]
    pub csv_header: Option<bool>,
    /// Text written for NULL in CSV (default: empty).
    #[arg(long)]
    pub csv_null: Option<String>,
    /// Start CSV files with a UTF-8 byte order mark (for Excel).
    #[arg(long)]
    pub csv_bom: bool,
    /// XML root element name (default rows).
    #[arg(long)]
    pub xml_root: Option<String>,
    /// XML row element name (default row).
    #[arg(long)]
    pub xml_row: Option<String>,
    /// Object key under the destination prefix. Variables: {model} {segment} {sync} {run} {YYYY}
    /// {YY} {MM} {DD} {HH} {mm} {ss} {ms} {X} (unix seconds) {x} (unix ms) {part} {ext}, in UTC;
    /// {change} (added, changed, removed) for --mode diff --diff-layout files.
    /// Default: {sync}/{YYYY}/{MM}/{DD}/{run}-{part}.{ext}, or, with a manifest,
    /// {sync}/{YYYY}/{MM}/{DD}/{run}/part-{part}.{ext} (a folder per run).
    #[arg(long)]
    pub key_template: Option<String>,
    /// Start a new file after this many rows.
    #[arg(long)]
    pub max_rows_per_file: Option<u64>,
    /// Start a new file once a file reaches this many bytes (checked as rows are written; a file
    /// may pass it by about one row, and compressed files by what the compressor holds).
    #[arg(long)]
    pub max_bytes_per_file: Option<u64>,
    /// Write `_manifest.json` (files, rows, checksums, schema) after all files of a run.
    #[arg(long)]
    pub manifest: bool,
    /// When the model returns no rows: empty-file, skip or manifest-only.
    #[arg(long, default_value = "empty-file")]
    pub on_empty: String,
    /// Replace existing objects at the same keys (default: an existing key fails the run).
    #[arg(long)]
    pub overwrite: bool,
    /// What each run sends: all (the whole result; the default), insert (rows whose primary
    /// key is new since the last successful run), diff (added, changed and removed rows) or
    /// delta (added and changed rows, for partners that upsert). The first run of a sync that
    /// sends changes sends every row. On update: unchanged when left out.
    #[arg(long)]
    pub mode: Option<String>,
    /// For --mode diff: column (one set of files per run, each row with a _change column of
    /// added, changed or removed; the default) or files (a file per kind of change: put
    /// {change} in the key template). On update: unchanged when left out.
    #[arg(long)]
    pub diff_layout: Option<String>,
    /// When the sync runs by itself (under `wharf serve` or `wharf worker`): manual (default),
    /// every:<N><m|h|d> (every:6h, optionally every:6h@2026-12-06T09:00:00Z to count from a
    /// start), cron:<expression> (cron:0 2 * * *; 5 or 6 fields, @daily-style aliases, L # W),
    /// or custom:<HH:MM,...> [on <days>] (custom:08:00,17:30 on mon-fri). On update: unchanged
    /// when left out.
    #[arg(long, allow_hyphen_values = true)]
    pub schedule: Option<String>,
    /// The IANA time zone a cron or custom schedule is read in (default UTC), e.g. Europe/Paris.
    #[arg(long, requires = "schedule")]
    pub timezone: Option<String>,
    /// A trigger while the sync runs: skip (refused; a due time is skipped; the default) or
    /// queue (it runs once the current run ends).
    #[arg(long)]
    pub overlap: Option<String>,
    /// Attempts per due time, the first included (default 3; 1: never retry). Transient
    /// failures (network, throttling, 5xx, a lost warehouse connection) are retried.
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// The wait before the first retry, doubling after each (default 1m), e.g. 30s, 5m.
    #[arg(long)]
    pub retry_base: Option<String>,
    /// The longest wait between retries (default 1h).
    #[arg(long)]
    pub retry_cap: Option<String>,
    /// Pause the sync after this many scheduled runs in a row failed for good (default 3;
    /// 0: never). `wharf sync resume NAME` resumes it.
    #[arg(long)]
    pub pause_after: Option<u32>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    /// Only the runs of this sync.
    #[arg(long)]
    pub sync: Option<String>,
    /// How many runs to list.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: status, timings, files with checksums, error.
    Show { run_id: String },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Then keep the demo's local S3 endpoint and serve the web UI (and the API) with a demo
    /// user, whose new password is printed, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Where --serve listens (a free port instead when this one is taken).
    #[arg(long, default_value = "127.0.0.1:8080", requires = "serve")]
    pub listen: String,
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
