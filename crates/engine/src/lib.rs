//! Warehouses: where a model's SQL runs and its rows come from, as a stream of Arrow
//! `RecordBatch`es.
//!
//! This crate owns the local warehouse (a folder of Parquet/CSV/NDJSON files queried in-process
//! with DataFusion, with a memory limit so heavy queries spill to disk), planning and validating
//! model SQL, counting and previewing results, segments compiled to SQL (`segment`), and the
//! PostgreSQL warehouse (`postgres`: SQL pushed down verbatim, rows streamed back through a
//! portal as Arrow batches). [`Warehouse`] is the one face the runner uses.
//!
//! It must not know about files being written, S3 or the metadata store: it hands out batches
//! and schemas, and `RecordBatch` is the only type that crosses to `formats` (through `runner`).
//!
//! Why DataFusion: an embedded, streaming, spilling SQL engine over Arrow, in Rust, that reads
//! Parquet, CSV and NDJSON folders. DuckDB would be the alternative; its bundled build alone
//! takes 22 minutes here and its results would need converting to Arrow anyway.

mod error;
mod guard;
mod local;
mod plan_check;
mod postgres;
mod preview;
pub mod segment;
mod sql_check;
pub mod threads;
mod warehouse;

pub use error::EngineError;
pub use guard::{MAX_BATCH_BYTES, MAX_ROW_BYTES, MAX_VALUE_BYTES};
pub use local::{EngineSettings, LocalWarehouse, QueryStream, TableInfo, discover};
pub use plan_check::MAX_EXPANDED_NODES;
pub use postgres::PostgresWarehouse;
pub use preview::Preview;
pub use sql_check::MAX_EXPRESSION_DEPTH;
pub use warehouse::{Text, Warehouse};

use arrow::datatypes::Schema;
use wharf_domain::ColumnInfo;

/// The columns of a schema, for the store and for display.
pub fn columns(schema: &Schema) -> Vec<ColumnInfo> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnInfo {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}
