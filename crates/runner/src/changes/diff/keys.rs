//! Keys in pass 2 of a comparison: hash maps keyed by a key's encoding with its precomputed
//! hash, and the repeated keys found on the way.

use super::super::ChangeError;
use arrow::array::RecordBatch;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A key encoding with its precomputed 64-bit hash: hash maps of keys hash nothing again.
#[derive(Clone, Copy)]
pub(super) struct Keyed<'b> {
    hash: u64,
    bytes: &'b [u8],
}

impl Keyed<'_> {
    pub(super) fn new(bytes: &[u8]) -> Keyed<'_> {
        Keyed {
            hash: twox_hash::XxHash3_64::oneshot(bytes),
            bytes,
        }
    }
}

impl PartialEq for Keyed<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.bytes == other.bytes
    }
}

impl Eq for Keyed<'_> {}

impl Hash for Keyed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Passes a [`Keyed`]'s hash through.
#[derive(Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `Keyed`); anything else is folded in, correctly if slowly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

pub(super) type KeyMap<'b, V> = HashMap<Keyed<'b>, V, BuildHasherDefault<PassThrough>>;

/// Keys seen more than once: how many extra rows, and the first one's value.
#[derive(Default)]
pub(super) struct Duplicates {
    rows: u64,
    example: Option<String>,
}

impl Duplicates {
    pub(super) fn note(&mut self, batch: &RecordBatch, key: &[usize], row: usize) {
        self.rows += 1;
        if self.example.is_none() {
            let values: Vec<String> = key
                .iter()
                .map(|&k| {
                    arrow::util::display::array_value_to_string(batch.column(k), row)
                        .unwrap_or_else(|_| "?".into())
                })
                .collect();
            self.example = Some(values.join(", "));
        }
    }

    /// Adds what another partition found.
    pub(super) fn merge(&mut self, other: Duplicates) {
        self.rows += other.rows;
        if self.example.is_none() {
            self.example = other.example;
        }
    }

    /// The error, when a key was repeated.
    pub(super) fn into_error(self, column: String) -> Option<ChangeError> {
        (self.rows > 0).then_some(ChangeError::DuplicateKeys {
            column,
            extra_rows: self.rows,
            example: self.example.unwrap_or_default(),
        })
    }
}
