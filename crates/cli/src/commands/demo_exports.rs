//! The export part of `wharf demo`: a sample warehouse, a model, one sync per format, runs.

use super::Context;
use super::sync::human_bytes;
use crate::error::CliError;
use std::path::Path;
use wharf_domain::{FileSpec, Name, OnEmpty, SyncSettings};
use wharf_runner::{RunOutcome, sample};
use wharf_store::{DEFAULT_WORKSPACE, Store, StoreError};

const SOURCE: &str = "demo-warehouse";
const MODEL: &str = "demo-customers";
const CUSTOMERS: u64 = 100_000;

/// The demo syncs: name, format, compression, and whether it writes a manifest.
const SYNCS: &[(&str, &str, Option<&str>)] = &[
    ("demo-parquet", "parquet", None),
    ("demo-csv", "csv", Some("gzip")),
    ("demo-ndjson", "ndjson", None),
    ("demo-json", "json", Some("zstd")),
    ("demo-xml", "xml", None),
    ("demo-avro", "avro", None),
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

pub async fn run(
    store: &Store,
    context: &Context,
    destination: &str,
    bucket_dir: &Path,
) -> Result<Vec<DemoExport>, CliError> {
    let say = |line: String| {
        if !context.json {
            println!("{line}");
        }
    };
    let warehouse = context.home.join("warehouse");
    let customers = warehouse.join("customers.parquet");
    let orders = warehouse.join("orders.parquet");
    if !customers.exists() || !orders.exists() {
        std::fs::create_dir_all(&warehouse)
            .map_err(|e| CliError::failed(format!("cannot create {}: {e}", warehouse.display())))?;
        sample::write_customers(&customers, CUSTOMERS).map_err(CliError::failed)?;
        sample::write_orders(&orders, CUSTOMERS).map_err(CliError::failed)?;
    }
    say(format!(
        "\n4. Sample warehouse {} (customers.parquet: {CUSTOMERS} customers; orders.parquet), model {MODEL}, one sync per format:",
        warehouse.display()
    ));
    let settings = context.runner_settings();
    match store.source(DEFAULT_WORKSPACE, SOURCE).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            let name = Name::parse("name", SOURCE)?;
            wharf_runner::models::add_local_source(
                store,
                DEFAULT_WORKSPACE,
                &name,
                &warehouse,
                &settings,
            )
            .await?;
        }
        Err(e) => return Err(e.into()),
    }
    match store.model(DEFAULT_WORKSPACE, MODEL).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            let name = Name::parse("name", MODEL)?;
            wharf_runner::models::add_model(
                store,
                DEFAULT_WORKSPACE,
                &name,
                SOURCE,
                "SELECT * FROM customers",
                "id",
                &settings,
            )
            .await?;
        }
        Err(e) => return Err(e.into()),
    }
    let mut exports = Vec::new();
    for (sync, format, compression) in SYNCS {
        if let Err(StoreError::NotFound { .. }) = store.sync(DEFAULT_WORKSPACE, sync).await {
            let file = FileSpec {
                format: (*format).into(),
                compression: compression.map(str::to_owned),
                ..FileSpec::default()
            }
            .validate()?;
            let (settings, _) = SyncSettings {
                file,
                columns: Vec::new(),
                key_template: TEMPLATE.into(),
                max_rows_per_file: None,
                max_bytes_per_file: None,
                manifest: true,
                on_empty: OnEmpty::EmptyFile,
                overwrite: false,
            }
            .validate()?;
            let name = Name::parse("name", sync)?;
            store
                .create_sync(DEFAULT_WORKSPACE, &name, MODEL, destination, &settings)
                .await?;
        }
        let outcome = super::sync::run_with_progress(context, store, sync).await?;
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
        println!(
            "   Each run wrote _manifest.json last, in its run's folder. Read the files back:"
        );
        for e in &exports {
            if let Some(cmd) = &e.read_back {
                println!("   {cmd}");
            }
        }
        println!("   (`wharf runs` lists the runs; `wharf sync run demo-csv` runs one again.)");
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
