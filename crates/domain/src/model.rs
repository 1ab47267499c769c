//! Sources (warehouse connections) and models (named queries with a typed schema).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How to reach a warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A folder of Parquet, CSV and NDJSON files, queried in-process.
    Local { path: PathBuf },
}

impl SourceConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local { .. } => "local",
        }
    }
}

/// One column of a model's result, as the warehouse planned it. `data_type` is the Arrow type in
/// Arrow's own notation (`Int64`, `Timestamp(µs, "UTC")`), for display and change detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}
