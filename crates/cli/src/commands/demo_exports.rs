//! The export part of `wharf demo`: a sample warehouse, a model, one sync per format, runs.

use super::Context;
use crate::error::CliError;
use std::path::Path;
use wharf_domain::FileSpec;
use wharf_domain::units::human_bytes;
use wharf_runner::sample;
use wharf_service::{Caller, ErrorKind, NewModelInput, NewSync, RunOutcome, Service, ServiceError};

const SOURCE: &str = "demo-warehouse";
const MODEL: &str = "demo-customers";
const ORDERS_MODEL: &str = "demo-orders";
const SEGMENT: &str = "demo-loyal";
const CUSTOMERS: u64 = 100_000;

/// The demo segment: subscribed customers with at least 3 orders in the last 90 days.
pub const SEGMENT_FILTER: &str = r#"{"and": [
  {"column": "is_subscribed", "op": "=", "value": true},
  {"related": "demo-orders", "on": [["id", "customer_id"]],
   "where": {"column": "ordered_at", "op": "within_last", "value": {"days": 90}},
   "aggregate": {"fn": "count", "op": ">=", "value": 3}}
]}"#;

/// The demo syncs: name, format, compression, and whether it exports the segment (rather than
/// every customer).
const SYNCS: &[(&str, &str, Option<&str>, bool)] = &[
    ("demo-parquet", "parquet", None, false),
    ("demo-csv", "csv", Some("gzip"), false),
    ("demo-ndjson", "ndjson", None, false),
    ("demo-json", "json", Some("zstd"), false),
    ("demo-xml", "xml", None, false),
    ("demo-avro", "avro", None, false),
    ("demo-segment", "csv", None, true),
];

/// Key template of the demo syncs: one folder per run, so each run's manifest has its own.
const TEMPLATE: &str = "{sync}/{YYYY}-{MM}-{DD}/{run}/part-{part}.{ext}";

#[derive(Debug, serde::Serialize)]
pub struct DemoExport {
    pub sync: String,
    pub format: String,
    #[serde(flatten)]
    pub outcome: RunOutcome,
    pub read_back: Option<String>,
    #[serde(skip)]
    pub error: Option<String>,
}

/// `Ok(false)` when the lookup found nothing: the demo then creates the object.
fn exists<T>(found: Result<T, ServiceError>) -> Result<bool, CliError> {
    match found {
        Ok(_) => Ok(true),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the demo's source, models, segment and syncs where missing (through the same
/// checks as `wharf ... add`), and runs each sync.
pub async fn run(
    service: &Service,
    caller: &Caller,
    context: &Context,
    destination: &str,
    bucket_dir: &Path,
) -> Result<Vec<DemoExport>, CliError> {
    let say = |line: String| {
        if !context.json {
            outln!("{line}");
        }
    };
    let warehouse = context.home.join("warehouse");
    let customers = warehouse.join("customers.parquet");
    let orders = warehouse.join("orders.parquet");
    if !customers.exists() || !orders.exists() {
        std::fs::create_dir_all(&warehouse)
            .map_err(|e| CliError::failed(format!("cannot create {}: {e}", warehouse.display())))?;
        sample::write_customers(&customers, CUSTOMERS).map_err(CliError::failed)?;
        // Orders end today, so "in the last 90 days" means something on the day the demo runs.
        let today = time::OffsetDateTime::now_utc()
            .date()
            .midnight()
            .assume_utc();
        let until = i64::try_from(today.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        sample::write_orders(&orders, CUSTOMERS, until).map_err(CliError::failed)?;
    }
    say(format!(
        "\n4. Sample warehouse {} (customers.parquet: {CUSTOMERS} customers; orders.parquet), models {MODEL} and {ORDERS_MODEL}, segment {SEGMENT} (subscribed, 3+ orders in 90 days), one sync per format:",
        warehouse.display()
    ));
    let has_source = service
        .sources(caller)
        .await?
        .iter()
        .any(|source| source.name == SOURCE);
    if !has_source {
        service.add_local_source(caller, SOURCE, &warehouse).await?;
    }
    for (model, sql, key) in [
        (MODEL, "SELECT * FROM customers", "id"),
        (ORDERS_MODEL, "SELECT * FROM orders", "order_id"),
    ] {
        if !exists(service.model(caller, model).await)? {
            let input = NewModelInput {
                name: model,
                source: SOURCE,
                sql,
                primary_key: key,
            };
            service.add_model(caller, input).await?;
        }
    }
    if !exists(service.segment(caller, SEGMENT).await)? {
        service
            .add_segment(caller, SEGMENT, MODEL, SEGMENT_FILTER)
            .await?;
    }
    let mut exports = Vec::new();
    for (sync, format, compression, segment) in SYNCS {
        if !exists(service.sync(caller, sync).await)? {
            let new = NewSync {
                name: (*sync).into(),
                model: (!*segment).then(|| MODEL.into()),
                segment: segment.then(|| SEGMENT.into()),
                destination: destination.into(),
                file: FileSpec {
                    format: (*format).into(),
                    compression: compression.map(str::to_owned),
                    ..FileSpec::default()
                },
                key_template: Some(TEMPLATE.into()),
                manifest: true,
                on_empty: "empty-file".into(),
                ..NewSync::default()
            };
            service.add_sync(caller, new).await?;
        }
        let outcome = super::sync::run_with_progress(context, service, caller, sync).await?;
        let error = outcome
            .error
            .as_ref()
            .map(|e| format!("[{}] {}", e.code, e.message));
        let read_back = outcome
            .files
            .first()
            .map(|f| read_back_command(format, *compression, &bucket_dir.join(&f.key)));
        match (&error, outcome.files.first()) {
            (None, Some(file)) => say(format!(
                "   {sync:<13} {} rows  {:>9}  s3://wharf-demo/{}",
                outcome.rows,
                human_bytes(outcome.bytes),
                file.key
            )),
            (Some(e), _) => say(format!("   {sync:<13} FAILED {e}")),
            (None, None) => say(format!("   {sync:<13} no file")),
        }
        exports.push(DemoExport {
            sync: (*sync).into(),
            format: (*format).into(),
            outcome,
            read_back,
            error,
        });
    }
    if !context.json {
        outln!("   Each run wrote _manifest.json last, in its run's folder. Read the files back:");
        for e in &exports {
            if let Some(cmd) = &e.read_back {
                outln!("   {cmd}");
            }
        }
        outln!("   (`wharf runs` lists the runs; `wharf sync run demo-csv` runs one again.)");
    }
    Ok(exports)
}

/// A one-line command that reads a file back with a reader wharf did not write.
fn read_back_command(format: &str, compression: Option<&str>, path: &Path) -> String {
    let p = path.display();
    match (format, compression) {
        ("parquet", _) => format!("duckdb -c \"SELECT count(*), min(signup_ts) FROM '{p}'\""),
        ("csv", _) => format!("duckdb -c \"SELECT count(*) FROM read_csv('{p}')\""),
        ("ndjson", _) => format!(
            "duckdb -c \"SELECT count(*) FROM read_json('{p}', format='newline_delimited')\""
        ),
        ("json", Some("zstd")) => format!(
            "zstd -dc '{p}' | python3 -c \"import json,sys; print(len(json.load(sys.stdin)))\""
        ),
        ("json", _) => {
            format!("duckdb -c \"SELECT count(*) FROM read_json('{p}', format='array')\"")
        }
        ("xml", _) => format!(
            "python3 -c \"import xml.etree.ElementTree as E; print(len(E.parse('{p}').getroot()))\""
        ),
        _ => format!(
            "python3 -c \"import fastavro; print(sum(1 for _ in fastavro.reader(open('{p}', 'rb'))))\""
        ),
    }
}
