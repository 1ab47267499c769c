//! Comparing a model's result with the sync's last snapshot, in two passes with bounded memory:
//!
//! 1. [`Comparison::push`] encodes each batch's rows as they stream from the query, hashes them,
//!    and spills them (with their key encoding and hash) to one local file per partition of the
//!    key space. Rows with a null key are counted and left out.
//! 2. [`Comparison::finish`] takes one partition at a time: the previous snapshot's keys of
//!    that partition in a hash map, the new rows of that partition against it. It writes the
//!    change set (`added`, `changed`, `removed`) and the new snapshot's keys beside it.
//!
//! Memory holds one partition's keys and rows (256 partitions: 40,000 rows each at 10M rows),
//! plus the spill buffers, never the whole result. A null or repeated key fails the comparison
//! before anything is uploaded, with counts and an example.

use super::ChangeError;
use super::encode::{self, ENCODING_VERSION};
use super::snapshot::{
    self, BlobWriter, HASH_COLUMN, KEY_COLUMN, SnapshotMeta, SnapshotStore, keys_file,
};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, FixedSizeBinaryArray, RecordBatch, UInt32Array,
};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wharf_domain::ChangeCounts;

/// The key space is cut into `2^PARTITION_BITS` partitions.
pub const PARTITION_BITS: u32 = 8;

/// A partition's spill buffer is written out when it holds this many bytes.
const FLUSH_BYTES: usize = 128 * 1024;

/// The change set's blobs.
pub const ADDED: &str = "added.arrows";
pub const CHANGED: &str = "changed.arrows";
pub const REMOVED: &str = "removed.arrows";
/// The counts of a complete change set (written last: its presence means the set is whole).
pub const CHANGES: &str = "changes.json";

/// The last successful run's snapshot, to compare against.
#[derive(Debug, Clone)]
pub struct Previous {
    pub run: String,
    pub meta: SnapshotMeta,
}

/// One comparison, fed batch by batch, then finished.
pub struct Comparison<'a> {
    store: &'a dyn SnapshotStore,
    sync: String,
    run: String,
    previous: Option<Previous>,
    schema: SchemaRef,
    spilled: SchemaRef,
    key: Vec<usize>,
    spill_dir: PathBuf,
    spills: Vec<Spill>,
    null_keys: u64,
    rows_read: u64,
    rows: Vec<Vec<u8>>,
    keys: Vec<Vec<u8>>,
    complete: bool,
}

impl Drop for Comparison<'_> {
    /// The spill always goes; a comparison that did not complete leaves nothing else either.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.spill_dir);
        if !self.complete {
            let _ = self.store.remove(&self.sync, &self.run);
        }
    }
}

struct Spill {
    writer: Option<StreamWriter<BufWriter<File>>>,
    buffer: Vec<RecordBatch>,
    bytes: usize,
}

impl<'a> Comparison<'a> {
    /// Compares rows of `schema` (as exported) whose key is the columns `key`, against
    /// `previous` (none: every row is added). The change set and the new snapshot go to the
    /// `run` folder of `sync` in `store`; the spill to `spill_dir`, removed by [`Self::finish`].
    /// A previous snapshot made with another encoding, partitioning, key or columns is not
    /// compared against: the run is a full one.
    pub fn new(
        store: &'a dyn SnapshotStore,
        sync: &str,
        run: &str,
        previous: Option<Previous>,
        schema: SchemaRef,
        key: Vec<usize>,
        spill_dir: &Path,
    ) -> Result<Self, ChangeError> {
        for field in schema.fields() {
            if !encode::supported(field.data_type()) {
                return Err(ChangeError::Unsupported(encode::Unsupported {
                    column: field.name().clone(),
                    data_type: field.data_type().to_string(),
                }));
            }
        }
        let key_columns: Vec<String> = key
            .iter()
            .map(|&i| schema.field(i).name().clone())
            .collect();
        let previous = previous.filter(|p| {
            p.meta.encoding_version == ENCODING_VERSION
                && p.meta.partition_bits == PARTITION_BITS
                && p.meta.key_columns == key_columns
                && p.meta.columns == SnapshotMeta::columns_of(&schema)
        });
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            KEY_COLUMN,
            arrow::datatypes::DataType::Binary,
            false,
        )));
        fields.push(Arc::new(Field::new(
            HASH_COLUMN,
            arrow::datatypes::DataType::FixedSizeBinary(16),
            false,
        )));
        std::fs::create_dir_all(spill_dir)?;
        Ok(Self {
            store,
            sync: sync.to_string(),
            run: run.to_string(),
            previous,
            spilled: Arc::new(Schema::new(fields)),
            schema,
            key,
            spill_dir: spill_dir.to_path_buf(),
            spills: (0..1usize << PARTITION_BITS)
                .map(|_| Spill {
                    writer: None,
                    buffer: Vec::new(),
                    bytes: 0,
                })
                .collect(),
            null_keys: 0,
            rows_read: 0,
            rows: Vec::new(),
            keys: Vec::new(),
            complete: false,
        })
    }

    /// Whether a previous snapshot is compared against (`false`: every row is added).
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    /// Encodes, hashes and spills one batch of the result.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), ChangeError> {
        let n = batch.num_rows();
        self.rows_read += n as u64;
        if n == 0 {
            return Ok(());
        }
        for buffers in [&mut self.rows, &mut self.keys] {
            buffers.resize_with(n, Vec::new);
            buffers.truncate(n);
            buffers.iter_mut().for_each(Vec::clear);
        }
        for (i, field) in self.schema.fields().iter().enumerate() {
            encode::append_column(field.name(), batch.column(i), &mut self.rows)?;
        }
        for &i in &self.key {
            encode::append_column(self.schema.field(i).name(), batch.column(i), &mut self.keys)?;
        }
        let null_key = |row: usize| self.key.iter().any(|&k| batch.column(k).is_null(row));
        let mut by_partition: Vec<Vec<u32>> = vec![Vec::new(); self.spills.len()];
        for row in 0..n {
            if null_key(row) {
                self.null_keys += 1;
                continue;
            }
            let p = encode::partition_of(&self.keys[row], PARTITION_BITS);
            by_partition[p].push(u32::try_from(row).unwrap_or(u32::MAX));
        }
        let hashes = FixedSizeBinaryArray::try_from_iter(
            self.rows.iter().map(|r| encode::row_hash(r).to_le_bytes()),
        )?;
        let keys = BinaryArray::from_iter_values(self.keys.iter());
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(keys));
        columns.push(Arc::new(hashes));
        let full = RecordBatch::try_new(self.spilled.clone(), columns)?;
        for (p, rows) in by_partition.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = arrow::compute::take_record_batch(&full, &UInt32Array::from(rows))?;
            let spill = &mut self.spills[p];
            spill.bytes += part.get_array_memory_size();
            spill.buffer.push(part);
            if spill.bytes >= FLUSH_BYTES {
                flush(spill, &self.spill_dir, p, &self.spilled)?;
            }
        }
        Ok(())
    }

    /// Compares partition by partition, writes the change set and the new snapshot (pending:
    /// it becomes the sync's when the run succeeds), and removes the spill.
    /// The spill is removed, and on failure everything this comparison wrote: the next run
    /// compares against the last snapshot.
    pub fn finish(mut self) -> Result<ChangeCounts, ChangeError> {
        let result = self.compare();
        self.complete = result.is_ok();
        result
    }

    fn compare(&mut self) -> Result<ChangeCounts, ChangeError> {
        let key_names = || {
            self.key
                .iter()
                .map(|&i| self.schema.field(i).name().clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.null_keys > 0 {
            return Err(ChangeError::NullKeys {
                column: key_names(),
                rows: self.null_keys,
            });
        }
        for p in 0..self.spills.len() {
            flush(&mut self.spills[p], &self.spill_dir, p, &self.spilled)?;
            if let Some(writer) = self.spills[p].writer.as_mut() {
                writer.finish()?;
            }
        }
        let store = self.store;
        let key_fields: Vec<Arc<Field>> = self
            .key
            .iter()
            .map(|&i| Arc::new(self.schema.field(i).clone()))
            .collect();
        let keys_schema = snapshot::keys_schema(&key_fields);
        let key_schema = Arc::new(Schema::new(key_fields));
        let mut added = BlobWriter::create(store, &self.sync, &self.run, ADDED, &self.schema)?;
        let mut changed = BlobWriter::create(store, &self.sync, &self.run, CHANGED, &self.schema)?;
        let mut removed = BlobWriter::create(store, &self.sync, &self.run, REMOVED, &key_schema)?;
        let mut counts = ChangeCounts::default();
        let mut duplicates = Duplicates::default();
        let data_columns: Vec<usize> = (0..self.schema.fields().len()).collect();
        let mut keys_columns = self.key.clone();
        keys_columns.extend([self.schema.fields().len(), self.schema.fields().len() + 1]);
        for p in 0..self.spills.len() {
            let old: Vec<RecordBatch> = match &self.previous {
                Some(previous) => {
                    match snapshot::read_blob(store, &self.sync, &previous.run, &keys_file(p))? {
                        Some(reader) => reader.collect::<Result<_, _>>()?,
                        None => Vec::new(),
                    }
                }
                None => Vec::new(),
            };
            let new: Vec<RecordBatch> = match self.spills[p].writer.is_some() {
                true => {
                    let file = File::open(spill_path(&self.spill_dir, p))?;
                    arrow::ipc::reader::StreamReader::try_new(BufReader::new(file), None)?
                        .collect::<Result<_, _>>()?
                }
                false => Vec::new(),
            };
            // The old keys of this partition: key -> (hash, where, seen in the new result).
            let mut index: HashMap<&[u8], (&[u8], u32, u32, bool)> = HashMap::new();
            for (b, batch) in old.iter().enumerate() {
                let keys = column_binary(batch, KEY_COLUMN)?;
                let hashes = column_fixed(batch, HASH_COLUMN)?;
                for row in 0..batch.num_rows() {
                    index.insert(
                        keys.value(row),
                        (hashes.value(row), b as u32, row as u32, false),
                    );
                }
            }
            let mut fresh: HashMap<&[u8], ()> = HashMap::new();
            let mut snapshot_keys =
                BlobWriter::create(store, &self.sync, &self.run, &keys_file(p), &keys_schema)?;
            for batch in &new {
                let width = self.schema.fields().len();
                let keys = batch.column(width).as_binary::<i32>();
                let hashes = batch.column(width + 1).as_fixed_size_binary();
                let mut added_rows = Vec::new();
                let mut changed_rows = Vec::new();
                for row in 0..batch.num_rows() {
                    let key = keys.value(row);
                    let hash = hashes.value(row);
                    match index.get_mut(key) {
                        Some(entry) if entry.3 => duplicates.note(batch, &self.key, row),
                        Some(entry) => {
                            entry.3 = true;
                            if entry.0 == hash {
                                counts.unchanged += 1;
                            } else {
                                changed_rows.push(row as u32);
                            }
                        }
                        None => match fresh.entry(key) {
                            Entry::Occupied(_) => duplicates.note(batch, &self.key, row),
                            Entry::Vacant(slot) => {
                                slot.insert(());
                                added_rows.push(row as u32);
                            }
                        },
                    }
                }
                snapshot_keys.write(&RecordBatch::try_new(
                    keys_schema.clone(),
                    keys_columns
                        .iter()
                        .map(|&i| batch.column(i).clone())
                        .collect(),
                )?)?;
                let data = batch.project(&data_columns)?;
                counts.added += added_rows.len() as u64;
                counts.changed += changed_rows.len() as u64;
                added.write(&take(&data, added_rows)?)?;
                changed.write(&take(&data, changed_rows)?)?;
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
                counts.removed += rows.len() as u64;
                let keys_only = old[b].project(&(0..self.key.len()).collect::<Vec<_>>())?;
                let keys_only =
                    RecordBatch::try_new(key_schema.clone(), keys_only.columns().to_vec())?;
                removed.write(&take(&keys_only, rows)?)?;
            }
        }
        if let Some(error) = duplicates.into_error(key_names()) {
            return Err(error);
        }
        if counts.rows_read() != self.rows_read {
            return Err(ChangeError::Corrupt(format!(
                "{} rows were read but {} compared; the spill lost rows",
                self.rows_read,
                counts.rows_read()
            )));
        }
        added.finish()?;
        changed.finish()?;
        removed.finish()?;
        let rows = counts.added + counts.changed + counts.unchanged;
        SnapshotMeta {
            encoding_version: ENCODING_VERSION,
            partition_bits: PARTITION_BITS,
            rows,
            key_columns: key_schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            columns: SnapshotMeta::columns_of(&self.schema),
        }
        .write(store, &self.sync, &self.run)?;
        let mut done = store.create(&self.sync, &self.run, CHANGES)?;
        let text = serde_json::to_vec(&counts)
            .map_err(|e| ChangeError::Corrupt(format!("changes.json: {e}")))?;
        std::io::Write::write_all(&mut done, &text)?;
        std::io::Write::flush(&mut done)?;
        Ok(counts)
    }
}

/// The counts of the whole change set in a run's folder; `None` when it has none (never
/// compared, not complete, or already exported and removed).
pub fn read_counts(
    store: &dyn SnapshotStore,
    sync: &str,
    run: &str,
) -> Result<Option<ChangeCounts>, ChangeError> {
    let Some(mut reader) = store.open(sync, run, CHANGES)? else {
        return Ok(None);
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ChangeError::Corrupt(format!("{sync}/{run}/{CHANGES}: {e}")))
}

fn spill_path(dir: &Path, partition: usize) -> PathBuf {
    dir.join(format!("p-{partition:04}.arrows"))
}

fn flush(
    spill: &mut Spill,
    dir: &Path,
    partition: usize,
    schema: &SchemaRef,
) -> Result<(), ChangeError> {
    if spill.buffer.is_empty() {
        return Ok(());
    }
    let batch = arrow::compute::concat_batches(schema, &spill.buffer)?;
    spill.buffer.clear();
    spill.bytes = 0;
    if spill.writer.is_none() {
        let file = File::create(spill_path(dir, partition))?;
        spill.writer = Some(StreamWriter::try_new(
            BufWriter::with_capacity(64 * 1024, file),
            schema,
        )?);
    }
    if let Some(writer) = spill.writer.as_mut() {
        writer.write(&batch)?;
    }
    Ok(())
}

fn take(batch: &RecordBatch, rows: Vec<u32>) -> Result<RecordBatch, ChangeError> {
    if rows.is_empty() {
        return Ok(batch.slice(0, 0));
    }
    Ok(arrow::compute::take_record_batch(
        batch,
        &UInt32Array::from(rows),
    )?)
}

fn column_binary<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b BinaryArray, ChangeError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_binary_opt::<i32>())
        .ok_or_else(|| ChangeError::Corrupt(format!("a snapshot file has no {name} column")))
}

fn column_fixed<'b>(
    batch: &'b RecordBatch,
    name: &str,
) -> Result<&'b FixedSizeBinaryArray, ChangeError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_fixed_size_binary_opt())
        .filter(|c| c.value_length() == 16)
        .ok_or_else(|| ChangeError::Corrupt(format!("a snapshot file has no {name} column")))
}

/// Keys seen more than once: how many extra rows, and the first one's value.
#[derive(Default)]
struct Duplicates {
    rows: u64,
    example: Option<String>,
}

impl Duplicates {
    fn note(&mut self, batch: &RecordBatch, key: &[usize], row: usize) {
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

    /// The error, when a key was repeated.
    fn into_error(self, column: String) -> Option<ChangeError> {
        (self.rows > 0).then_some(ChangeError::DuplicateKeys {
            column,
            extra_rows: self.rows,
            example: self.example.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests;
