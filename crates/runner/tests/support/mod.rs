//! A store, a local warehouse and the in-process S3 server, wired like a user's setup; source
//! rows with every hard character; and the independent readers.

#![allow(dead_code)]

pub mod pg;

pub mod segment_data;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use wharf_delivery::ClientSettings;
use wharf_delivery::upload::{MIN_PART_SIZE, UploadSettings};
use wharf_domain::destination::S3DestinationSpec;
use wharf_domain::{ExternalId, FileSpec, Name, OnEmpty, SourceConfig, SyncSettings};
use wharf_runner::{RunOutcome, RunProgress, RunnerSettings};
use wharf_store::{DEFAULT_WORKSPACE, Store};
use wharf_testkit::S3TestServer;

pub const BUCKET: &str = "exports-test";
pub const PREFIX: &str = "team/exports/";

pub struct Fixture {
    pub server: S3TestServer,
    pub store: Store,
    pub home: tempfile::TempDir,
    pub warehouse: tempfile::TempDir,
    pub settings: RunnerSettings,
}

impl Fixture {
    pub async fn start() -> Self {
        let server = S3TestServer::start().await;
        server.create_bucket(BUCKET).await;
        let home = tempfile::tempdir().expect("home");
        let warehouse = tempfile::tempdir().expect("warehouse");
        let store = Store::open(home.path()).await.expect("store");
        let spec: S3DestinationSpec = serde_json::from_value(json!({
            "name": "lake", "bucket": BUCKET, "region": "us-east-1", "prefix": PREFIX,
            "endpoint": server.endpoint(), "checksum": "crc32c",
            "auth": {"type": "access-key", "access_key_id": server.access_key, "secret_access_key": server.secret_key},
        }))
        .expect("spec");
        let destination = spec
            .validate(
                || ExternalId::from_stored("wharf-unused").expect("id"),
                true,
            )
            .expect("destination");
        store
            .create_destination(DEFAULT_WORKSPACE, &destination)
            .await
            .expect("create destination");
        store
            .create_source(
                DEFAULT_WORKSPACE,
                &Name::parse("name", "wh").expect("name"),
                &SourceConfig::Local {
                    path: warehouse.path().to_path_buf(),
                },
            )
            .await
            .expect("create source");
        let mut settings = RunnerSettings::new(
            home.path(),
            ClientSettings {
                allow_private_endpoints: true,
                max_attempts: 3,
                ..ClientSettings::default()
            },
        );
        settings.upload = UploadSettings {
            part_size: MIN_PART_SIZE,
            max_in_flight: 2,
        };
        Self {
            server,
            store,
            home,
            warehouse,
            settings,
        }
    }

    pub async fn model(&self, name: &str, sql: &str) {
        self.model_keyed(name, sql, "id").await;
    }

    pub async fn model_keyed(&self, name: &str, sql: &str, primary_key: &str) {
        wharf_runner::models::add_model(
            &self.store,
            DEFAULT_WORKSPACE,
            &Name::parse("name", name).expect("name"),
            "wh",
            sql,
            primary_key,
            &self.settings,
        )
        .await
        .expect("add model");
    }

    pub async fn sync(&self, name: &str, model: &str, settings: SyncSettings) {
        self.sync_of(name, wharf_store::Exports::Model(model), settings)
            .await;
    }

    pub async fn sync_of(
        &self,
        name: &str,
        exports: wharf_store::Exports<'_>,
        settings: SyncSettings,
    ) {
        let (settings, _) = settings.validate().expect("valid sync");
        self.store
            .create_sync(
                DEFAULT_WORKSPACE,
                &Name::parse("name", name).expect("name"),
                exports,
                "lake",
                &settings,
                wharf_store::SyncTiming {
                    schedule: &wharf_domain::Schedule::default(),
                    policy: &wharf_domain::RunPolicy::default(),
                    now: time::OffsetDateTime::now_utc(),
                },
            )
            .await
            .expect("add sync");
    }

    pub async fn run(&self, sync: &str) -> RunOutcome {
        self.run_with(sync, Arc::new(RunProgress::default())).await
    }

    pub async fn run_with(&self, sync: &str, progress: Arc<RunProgress>) -> RunOutcome {
        self.try_run(sync, progress).await.expect("the run starts")
    }

    /// Claims a run of the sync and executes it, recording its end as the service does
    /// (without retries or pauses: those are the service's).
    pub async fn try_run(
        &self,
        sync: &str,
        progress: Arc<RunProgress>,
    ) -> Result<RunOutcome, wharf_runner::RunnerError> {
        let claim = wharf_runner::claim_now(
            &self.store,
            DEFAULT_WORKSPACE,
            sync,
            &self.settings,
            wharf_store::Trigger::Manual,
            Some("test"),
        )
        .await?;
        let wharf_runner::Claim::Now(claimed) = claim else {
            panic!("the sync is busy");
        };
        Ok(self.execute_and_finish(claimed, progress).await)
    }

    /// Queues a retry of the failed run `of` (attempt `attempt`), as the scheduler does for a
    /// transient failure, then claims and executes it.
    pub async fn retry(&self, sync: &str, of: &str, attempt: u32) -> RunOutcome {
        let record = self
            .store
            .sync(DEFAULT_WORKSPACE, sync)
            .await
            .expect("sync");
        let now = time::OffsetDateTime::now_utc();
        let queued = self
            .store
            .enqueue_run(&wharf_store::NewRun {
                workspace: DEFAULT_WORKSPACE,
                sync_id: &record.id,
                trigger: wharf_store::Trigger::Retry,
                actor: None,
                retry_of: Some(of),
                attempt,
                due_at: now,
            })
            .await
            .expect("queue the retry");
        let wharf_store::Enqueued::Queued(run_id) = queued else {
            panic!("not queued: {queued:?}");
        };
        let lease = self
            .store
            .claim_run(&run_id, &self.settings.lease.terms(), now)
            .await
            .expect("claim")
            .expect("the retry is claimed");
        self.execute_and_finish(
            wharf_runner::Claimed::from_lease(lease),
            Arc::new(RunProgress::default()),
        )
        .await
    }

    /// Executes a claimed run and records its end as the service does (without retries or
    /// pauses: those are the service's).
    async fn execute_and_finish(
        &self,
        claimed: wharf_runner::Claimed,
        progress: Arc<RunProgress>,
    ) -> RunOutcome {
        let executed =
            wharf_runner::leased::execute(&self.store, claimed, &self.settings, progress).await;
        let status = if executed.failure.is_some() {
            wharf_store::RunStatus::Failed
        } else {
            wharf_store::RunStatus::Succeeded
        };
        let code = executed.failure.as_ref().map(|f| f.code.clone());
        let error = executed
            .failure
            .as_ref()
            .map(|f| (f.code.as_str(), f.message.as_str()));
        self.store
            .finish_leased_run(
                &executed.lease,
                &wharf_store::Finish {
                    succeeded: executed.failure.is_none(),
                    rows: executed.rows(),
                    bytes: executed.bytes(),
                    error,
                    retry_at: None,
                    counts_towards_pause: false,
                    mode: executed.mode,
                    changes: executed.changes,
                    snapshot: executed.snapshot.clone(),
                },
            )
            .await
            .expect("record the end");
        if let Some(current) = executed
            .snapshot
            .as_deref()
            .filter(|_| executed.failure.is_none())
        {
            wharf_runner::changes::keep_only(&self.settings, &executed.lease.sync_id, current);
        }
        executed.outcome(status.shown(code.as_deref()))
    }

    /// A run of `sync` recorded as `running` by a process that is not this test's, started a
    /// minute ago; its lease.
    pub async fn foreign_running_run(&self, sync: &str) -> wharf_store::Lease {
        let record = self
            .store
            .sync(DEFAULT_WORKSPACE, sync)
            .await
            .expect("sync");
        let queued = self
            .store
            .enqueue_run(&wharf_store::NewRun {
                workspace: DEFAULT_WORKSPACE,
                sync_id: &record.id,
                trigger: wharf_store::Trigger::Manual,
                actor: Some("other"),
                retry_of: None,
                attempt: 1,
                due_at: time::OffsetDateTime::now_utc(),
            })
            .await
            .expect("queue");
        let wharf_store::Enqueued::Queued(run_id) = queued else {
            panic!("queued: {queued:?}");
        };
        let a_minute_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
        self.store
            .claim_run(
                &run_id,
                &wharf_store::LeaseTerms {
                    // Another process of this machine.
                    owner: self
                        .settings
                        .lease
                        .owner
                        .replace(&format!(":{}", std::process::id()), ":999999"),
                    duration: time::Duration::minutes(10),
                },
                a_minute_ago,
            )
            .await
            .expect("claim")
            .expect("claimed")
    }

    /// Downloads the objects `keys` into `dir`, for readers that read local files; their
    /// paths as a DuckDB list (`['a', 'b']`).
    pub async fn download(&self, dir: &Path, keys: &[impl AsRef<str>]) -> String {
        let client = self.server.admin();
        let mut paths = Vec::new();
        for key in keys {
            let key = key.as_ref();
            let path = dir.join(key.replace('/', "_"));
            std::fs::write(
                &path,
                wharf_testkit::object_bytes(&client, BUCKET, key).await,
            )
            .expect("write");
            paths.push(format!("'{}'", path.display()));
        }
        format!("[{}]", paths.join(", "))
    }

    /// Every key and open upload in the bucket.
    pub async fn residue(&self) -> (Vec<String>, Vec<String>) {
        wharf_testkit::bucket_residue(&self.server.admin(), BUCKET).await
    }

    /// The checker's spec for `keys`, to complete with format options.
    pub fn spec(
        &self,
        format: &str,
        compression: &str,
        keys: &[String],
        expected: &[Value],
    ) -> Value {
        json!({
            "endpoint": self.server.endpoint(),
            "access_key": self.server.access_key,
            "secret_key": self.server.secret_key,
            "region": "us-east-1",
            "bucket": BUCKET,
            "format": format,
            "compression": compression,
            "keys": keys,
            "key_column": "id",
            "expected": expected,
            "types": people_types(),
            "columns": PEOPLE_COLUMNS,
        })
    }
}

/// Sync settings for `format` with everything else default.
pub fn settings(format: &str) -> SyncSettings {
    SyncSettings {
        file: FileSpec {
            format: format.into(),
            ..FileSpec::default()
        }
        .validate()
        .expect("file spec"),
        columns: Vec::new(),
        key_template: wharf_domain::key_template::DEFAULT_KEY_TEMPLATE.into(),
        max_rows_per_file: None,
        max_bytes_per_file: None,
        manifest: false,
        on_empty: OnEmpty::EmptyFile,
        overwrite: false,
        mode: Default::default(),
        diff_layout: Default::default(),
    }
}

/// Strings that break naive writers: quotes, delimiters, line breaks, RTL, emoji, XML-illegal
/// control characters, a reserved-looking `NULL`, a long value.
pub fn hard_strings() -> Vec<String> {
    vec![
        "plain".into(),
        "Zoë 🌍 — naïve café".into(),
        "שלום עולם".into(),
        "مرحبا بالعالم".into(),
        "quote \" inside \"\"".into(),
        "comma, semicolon; tab\there | pipe".into(),
        "line\nbreak".into(),
        "crlf\r\nend".into(),
        "xml <tag attr='1'> & ampersand ]]>".into(),
        "control \u{1}\u{8}\u{b}\u{1f} chars".into(),
        "backslash \\ and \\N".into(),
        "NULL".into(),
        " leading and trailing space ".into(),
        "family 👩‍👩‍👧‍👦 zwj".into(),
        "汉字 かな 한국어".into(),
        "x".repeat(10_000),
    ]
}

/// The people table's columns, in file order (the checker's spec is a JSON object, whose keys
/// serde_json sorts).
pub const PEOPLE_COLUMNS: [&str; 9] = [
    "id", "name", "note", "amount", "score", "active", "born", "seen_at", "visits",
];

fn people_types() -> Value {
    json!({
        "id": "int64", "name": "string", "note": "string", "amount": "decimal(10,2)",
        "score": "float64", "active": "bool", "born": "date", "seen_at": "timestamp_us_utc",
        "visits": "int32",
    })
}

/// Writes `rows` people to `dir/people.parquet` (or `.csv` when `csv`) and returns them as the
/// checker expects them.
pub fn write_people(dir: &Path, rows: usize) -> Vec<Value> {
    let strings = hard_strings();
    let utc: Option<Arc<str>> = Some("UTC".into());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("note", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("score", DataType::Float64, false),
        Field::new("active", DataType::Boolean, true),
        Field::new("born", DataType::Date32, true),
        Field::new(
            "seen_at",
            DataType::Timestamp(TimeUnit::Microsecond, utc.clone()),
            true,
        ),
        Field::new("visits", DataType::Int32, true),
    ]));
    let mut expected = Vec::with_capacity(rows);
    let (
        mut id,
        mut name,
        mut note,
        mut amount,
        mut score,
        mut active,
        mut born,
        mut seen,
        mut visits,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for i in 0..rows {
        let n = i as i64 + 1;
        let s = strings[i % strings.len()].clone();
        let nul = i % 5 == 3;
        let cents = (n * 12_345) % 10_000_000 - 5_000_000;
        let day = 18_000 + (i as i32 * 37) % 3_000;
        let micros = 1_700_000_000_000_000i64 + n * 1_234_567_891;
        id.push(n);
        name.push(s.clone());
        note.push((!nul).then(|| strings[(i * 7 + 3) % strings.len()].clone()));
        amount.push((!nul).then_some(cents as i128));
        score.push(n as f64 * 0.25 - 17.0);
        active.push((!nul).then_some(i % 2 == 0));
        born.push((!nul).then_some(day));
        seen.push((!nul).then_some(micros));
        visits.push((!nul).then_some((i % 1000) as i32 - 500));
        let date = time::Date::from_julian_day(2_440_588 + day).expect("date");
        let ts = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .expect("timestamp");
        expected.push(json!({
            "id": n,
            "name": s,
            "note": if nul { Value::Null } else { json!(strings[(i * 7 + 3) % strings.len()]) },
            "amount": if nul { Value::Null } else { json!(format_cents(cents)) },
            "score": n as f64 * 0.25 - 17.0,
            "active": if nul { Value::Null } else { json!(i % 2 == 0) },
            "born": if nul { Value::Null } else { json!(date.to_string()) },
            "seen_at": if nul { Value::Null } else { json!(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                ts.year(), u8::from(ts.month()), ts.day(), ts.hour(), ts.minute(), ts.second(), ts.microsecond()
            )) },
            "visits": if nul { Value::Null } else { json!((i % 1000) as i64 - 500) },
        }));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(id)),
        Arc::new(StringArray::from(name)),
        Arc::new(StringArray::from(note)),
        Arc::new(
            Decimal128Array::from(amount)
                .with_precision_and_scale(10, 2)
                .expect("decimal"),
        ),
        Arc::new(Float64Array::from(score)),
        Arc::new(BooleanArray::from(active)),
        Arc::new(Date32Array::from(born)),
        Arc::new(TimestampMicrosecondArray::from(seen).with_timezone_opt(utc)),
        Arc::new(Int32Array::from(visits)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let file = std::fs::File::create(dir.join("people.parquet")).expect("create");
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    expected
}

fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}
