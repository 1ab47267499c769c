//! Pass 2 of a comparison for one partition of the key space: the previous snapshot's keys in a
//! hash map, the result's keys against it, the new snapshot's keys written.

use super::keys::{Duplicates, KeyMap, Keyed};
use super::{column_binary, column_fixed, spill_path, take};
use crate::changes::ChangeError;
use crate::changes::snapshot::{
    self, BlobWriter, HASH_COLUMN, KEY_COLUMN, SnapshotStore, keys_file,
};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{SchemaRef, UInt64Type};
use std::collections::hash_map::Entry;
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::io::BufReader;
use std::path::Path;

/// Threads comparing partitions in pass 2.
pub(super) const COMPARE_THREADS: usize = 2;

/// What pass 2 needs to compare one partition, shared by its threads.
pub(super) struct PartitionJob<'a> {
    pub(super) store: &'a dyn SnapshotStore,
    pub(super) sync: &'a str,
    pub(super) run: &'a str,
    /// The previous snapshot's folder, if any.
    pub(super) previous: Option<&'a str>,
    pub(super) spill_dir: &'a Path,
    /// Which partitions have a spill file.
    pub(super) spilled: Vec<bool>,
    pub(super) keys_schema: &'a SchemaRef,
    pub(super) key_schema: &'a SchemaRef,
    /// How many key columns.
    pub(super) k: usize,
}

/// One partition compared.
pub(super) struct Partition {
    pub(super) unchanged: u64,
    pub(super) added_at: Vec<u64>,
    pub(super) changed_at: Vec<u64>,
    pub(super) duplicates: Duplicates,
    /// The keys of the previous snapshot the result no longer has.
    pub(super) removed: Vec<RecordBatch>,
}

impl PartitionJob<'_> {
    /// Compares partition `p`: its keys in the previous snapshot (a hash map) against the
    /// result's, writing the new snapshot's keys of the partition.
    pub(super) fn compare(&self, p: usize) -> Result<Partition, ChangeError> {
        let k = self.k;
        let old: Vec<RecordBatch> = match self.previous {
            Some(previous) => {
                match snapshot::read_blob(self.store, self.sync, previous, &keys_file(p))? {
                    Some(reader) => reader.collect::<Result<_, _>>()?,
                    None => Vec::new(),
                }
            }
            None => Vec::new(),
        };
        let new: Vec<RecordBatch> = if self.spilled[p] {
            let file = File::open(spill_path(self.spill_dir, p))?;
            arrow::ipc::reader::StreamReader::try_new(BufReader::new(file), None)?
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        // The old keys of this partition: key -> (hash, where, seen in the new result).
        let capacity = old.iter().map(RecordBatch::num_rows).sum();
        let mut index: KeyMap<(u128, u32, u32, bool)> =
            KeyMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default());
        for (b, batch) in old.iter().enumerate() {
            let keys = column_binary(batch, KEY_COLUMN)?;
            let hashes = column_fixed(batch, HASH_COLUMN)?;
            for row in 0..batch.num_rows() {
                index.insert(
                    Keyed::new(keys.value(row)),
                    (hash_of(hashes.value(row)), b as u32, row as u32, false),
                );
            }
        }
        let mut out = Partition {
            unchanged: 0,
            added_at: Vec::new(),
            changed_at: Vec::new(),
            duplicates: Duplicates::default(),
            removed: Vec::new(),
        };
        let small_keys: Vec<usize> = (0..k).collect();
        let snapshot_columns: Vec<usize> = (0..k + 2).collect();
        let mut fresh: KeyMap<()> = KeyMap::default();
        let mut snapshot_keys = BlobWriter::create(
            self.store,
            self.sync,
            self.run,
            &keys_file(p),
            self.keys_schema,
        )?;
        for batch in &new {
            let keys = batch.column(k).as_binary::<i32>();
            let hashes = batch.column(k + 1).as_fixed_size_binary();
            let places = batch.column(k + 2).as_primitive::<UInt64Type>();
            for row in 0..batch.num_rows() {
                let key = Keyed::new(keys.value(row));
                match index.get_mut(&key) {
                    Some(entry) if entry.3 => out.duplicates.note(batch, &small_keys, row),
                    Some(entry) => {
                        entry.3 = true;
                        if entry.0 == hash_of(hashes.value(row)) {
                            out.unchanged += 1;
                        } else {
                            out.changed_at.push(places.value(row));
                        }
                    }
                    None => match fresh.entry(key) {
                        Entry::Occupied(_) => out.duplicates.note(batch, &small_keys, row),
                        Entry::Vacant(slot) => {
                            slot.insert(());
                            out.added_at.push(places.value(row));
                        }
                    },
                }
            }
            snapshot_keys.write(&RecordBatch::try_new(
                self.keys_schema.clone(),
                batch.project(&snapshot_columns)?.columns().to_vec(),
            )?)?;
        }
        snapshot_keys.finish()?;
        // Keys of the old snapshot that the new result does not have.
        let mut gone: Vec<Vec<u32>> = vec![Vec::new(); old.len()];
        for (_, b, row, seen) in index.values() {
            if !seen {
                gone[*b as usize].push(*row);
            }
        }
        for (b, rows) in gone.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let keys_only = old[b].project(&(0..k).collect::<Vec<_>>())?;
            let keys_only =
                RecordBatch::try_new(self.key_schema.clone(), keys_only.columns().to_vec())?;
            out.removed.push(take(&keys_only, rows)?);
        }
        Ok(out)
    }
}

/// A row hash as one number (its 16 bytes, little-endian): compared without a call.
fn hash_of(bytes: &[u8]) -> u128 {
    <[u8; 16]>::try_from(bytes).map_or(0, u128::from_le_bytes)
}
