//! What each run of a sync sends: its mode (the whole result or what changed), the layout of
//! a diff, and the counts a comparison with the last snapshot gives.

use crate::error::InvalidValue;
use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};
use std::fmt;

string_enum!(
    /// What each run of a sync sends: the whole result, or what changed since the last
    /// successful run.
    SyncMode, "mode", "the sync mode", {
        All => "all",
        Insert => "insert",
        Diff => "diff",
        Delta => "delta",
    }
);

// The enum comes from `string_enum!`, whose variants take no `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for SyncMode {
    fn default() -> Self {
        Self::All
    }
}

impl SyncMode {
    /// Whether runs compare with the last snapshot (every mode but `all`).
    pub fn compares(self) -> bool {
        self != Self::All
    }
}

string_enum!(
    /// How a `diff` run lays out its changes: one file with a `_change` column, or a file per
    /// kind of change (`{change}` in the key template).
    DiffLayout, "diff_layout", "the diff layout", {
        Column => "column",
        Files => "files",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for DiffLayout {
    fn default() -> Self {
        Self::Column
    }
}

/// How a run's result compared with the sync's last snapshot: every row read is added,
/// changed or unchanged; removed keys were in the snapshot and are not in the result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub unchanged: u64,
}

impl ChangeCounts {
    /// The rows of the model's result.
    pub fn rows_read(&self) -> u64 {
        self.added + self.changed + self.unchanged
    }
}

/// The column a `diff` run with the `column` layout adds to every row.
pub const CHANGE_COLUMN: &str = "_change";
