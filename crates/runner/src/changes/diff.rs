//! Comparing a model's result with the sync's last snapshot, in three passes with bounded
//! memory:
//!
//! 1. [`Comparison::push`] takes each batch as it streams from the query: it writes the rows,
//!    as they are, to one local file in arrival order, and encodes and hashes each row. Each
//!    row's key columns, key encoding, hash and sequence number go to a small spill file per
//!    partition of the key space. Rows with a null key are counted and left out.
//! 2. [`Comparison::finish`] takes one partition at a time: the previous snapshot's keys of
//!    that partition in a hash map, the partition's new keys against it. It writes the new
//!    snapshot's keys and the removed keys, and notes the sequence numbers of added and changed
//!    rows.
//! 3. If any row was added or changed, it reads the rows file once, in order, and copies those
//!    rows into the change set (`added`, `changed`): they keep the query's order.
//!
//! Memory holds one partition's keys (256 partitions: 40,000 keys each at 10M rows), the small
//! spill buffers and one batch of rows, never the whole result. A null or repeated key fails
//! the comparison before anything is uploaded, with counts and an example.

use super::ChangeError;
use super::encode::{self, ENCODING_VERSION};
use super::snapshot::{self, BlobWriter, SnapshotMeta, SnapshotStore};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, FixedSizeBinaryArray, RecordBatch, UInt32Array,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wharf_domain::ChangeCounts;

/// The key space is cut into `2^PARTITION_BITS` partitions.
pub const PARTITION_BITS: u32 = 8;

/// A partition's spill buffer is written out when it holds about this many bytes.
const FLUSH_BYTES: usize = 64 * 1024;

/// The column of the small spill holding a row's place in the result.
const SEQ_COLUMN: &str = "_wharf_seq";

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
    /// The key columns, `_wharf_key`, `_wharf_hash` and `_wharf_seq`: what pass 2 compares.
    small: SchemaRef,
    key: Vec<usize>,
    spill_dir: PathBuf,
    spills: Vec<Spill>,
    /// A partition's buffer is written out at this many bytes ([`FLUSH_BYTES`]).
    flush_bytes: usize,
    /// Buffers written out while rows were still arriving (not by the final flush).
    early_flushes: u64,
    /// Every row with a key, in arrival order.
    rows_file: Option<StreamWriter<BufWriter<File>>>,
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
        let key_fields: Vec<Arc<Field>> = key
            .iter()
            .map(|&i| Arc::new(schema.field(i).clone()))
            .collect();
        let mut small: Vec<Arc<Field>> = snapshot::keys_schema(&key_fields)
            .fields()
            .iter()
            .cloned()
            .collect();
        small.push(Arc::new(Field::new(SEQ_COLUMN, DataType::UInt64, false)));
        std::fs::create_dir_all(spill_dir)?;
        Ok(Self {
            store,
            sync: sync.to_string(),
            run: run.to_string(),
            previous,
            small: Arc::new(Schema::new(small)),
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
            flush_bytes: FLUSH_BYTES,
            early_flushes: 0,
            rows_file: None,
            null_keys: 0,
            rows_read: 0,
            rows: Vec::new(),
            keys: Vec::new(),
            complete: false,
        })
    }

    /// Writes one batch of the result to the rows file, and its rows' keys, hashes and
    /// places to the partitions' spills.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), ChangeError> {
        let n = batch.num_rows();
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
        // Rows by partition (a counting sort), leaving out rows with a null key.
        let null_key = |row: usize| self.key.iter().any(|&k| batch.column(k).is_null(row));
        let mut partition = vec![usize::MAX; n];
        let mut counts = vec![0usize; self.spills.len()];
        for (row, p) in partition.iter_mut().enumerate() {
            if null_key(row) {
                self.null_keys += 1;
                continue;
            }
            *p = encode::partition_of(&self.keys[row], PARTITION_BITS);
            counts[*p] += 1;
        }
        let mut starts = Vec::with_capacity(counts.len());
        let mut total = 0usize;
        for &c in &counts {
            starts.push(total);
            total += c;
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; total];
        for (row, &p) in partition.iter().enumerate() {
            if p != usize::MAX {
                order[next[p]] = u32::try_from(row).unwrap_or(u32::MAX);
                next[p] += 1;
            }
        }
        // Every row goes to the rows file, at its place in the result (a null key fails the
        // comparison before the file is read).
        let first = self.rows_read;
        self.rows_read += n as u64;
        let writer = match &mut self.rows_file {
            Some(writer) => writer,
            None => {
                let file = File::create(self.spill_dir.join("rows.arrows"))?;
                self.rows_file.insert(StreamWriter::try_new(
                    BufWriter::with_capacity(256 * 1024, file),
                    &self.schema,
                )?)
            }
        };
        writer.write(batch)?;
        let places = UInt64Array::from_iter_values(order.iter().map(|&r| first + u64::from(r)));

        let keys =
            BinaryArray::from_iter_values(order.iter().map(|&r| self.keys[r as usize].as_slice()));
        let hashes = FixedSizeBinaryArray::try_from_iter(
            order
                .iter()
                .map(|&r| encode::row_hash(&self.rows[r as usize]).to_le_bytes()),
        )?;
        let indices = UInt32Array::from(order);
        let mut columns: Vec<ArrayRef> = self
            .key
            .iter()
            .map(|&k| arrow::compute::take(batch.column(k), &indices, None))
            .collect::<Result<_, _>>()?;
        columns.push(Arc::new(keys));
        columns.push(Arc::new(hashes));
        columns.push(Arc::new(places));
        let sorted = RecordBatch::try_new(self.small.clone(), columns)?;
        let per_row = sorted.get_array_memory_size() / total.max(1);
        for (p, (&start, &count)) in starts.iter().zip(&counts).enumerate() {
            if count == 0 {
                continue;
            }
            let spill = &mut self.spills[p];
            spill.buffer.push(sorted.slice(start, count));
            spill.bytes += count * per_row;
            if spill.bytes >= self.flush_bytes {
                flush(spill, &self.spill_dir, p, &self.small)?;
                self.early_flushes += 1;
            }
        }
        Ok(())
    }

    /// Writes a partition's buffer out at `bytes` instead of [`FLUSH_BYTES`], so a test with
    /// few rows still spills.
    #[cfg(test)]
    fn flush_at(mut self, bytes: usize) -> Self {
        self.flush_bytes = bytes;
        self
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
            flush(&mut self.spills[p], &self.spill_dir, p, &self.small)?;
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
        let mut removed = BlobWriter::create(store, &self.sync, &self.run, REMOVED, &key_schema)?;
        let mut counts = ChangeCounts::default();
        let mut duplicates = Duplicates::default();
        // The places of added and changed rows in the rows file.
        let mut added_at: Vec<u64> = Vec::new();
        let mut changed_at: Vec<u64> = Vec::new();
        let job = PartitionJob {
            store,
            sync: &self.sync,
            run: &self.run,
            previous: self.previous.as_ref().map(|p| p.run.as_str()),
            spill_dir: &self.spill_dir,
            spilled: self.spills.iter().map(|s| s.writer.is_some()).collect(),
            keys_schema: &keys_schema,
            key_schema: &key_schema,
            k: self.key.len(),
        };
        // Partitions are independent: two threads take them in turn, this one gathers.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let partitions = self.spills.len();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Partition, ChangeError>>(4);
        let gathered = std::thread::scope(|scope| -> Result<(), ChangeError> {
            for _ in 0..COMPARE_THREADS {
                let (tx, job, next) = (tx.clone(), &job, &next);
                scope.spawn(move || {
                    loop {
                        let p = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if p >= partitions {
                            return;
                        }
                        let result = job.compare(p);
                        let failed = result.is_err();
                        if tx.send(result).is_err() || failed {
                            // Stop the others too: the comparison failed.
                            next.store(partitions, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                    }
                });
            }
            drop(tx);
            for result in rx {
                let part = result?;
                counts.unchanged += part.unchanged;
                added_at.extend(part.added_at);
                changed_at.extend(part.changed_at);
                duplicates.merge(part.duplicates);
                for batch in &part.removed {
                    counts.removed += batch.num_rows() as u64;
                    removed.write(batch)?;
                }
            }
            Ok(())
        });
        gathered?;
        counts.added = added_at.len() as u64;
        counts.changed = changed_at.len() as u64;
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
        removed.finish()?;
        self.copy_changed_rows(added_at, changed_at)?;
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

impl Comparison<'_> {
    /// Pass 3: copies the rows at `added_at` and `changed_at` (places in the rows file) into
    /// the change set's `added` and `changed` blobs, reading the rows file once, in order.
    fn copy_changed_rows(
        &mut self,
        mut added_at: Vec<u64>,
        mut changed_at: Vec<u64>,
    ) -> Result<(), ChangeError> {
        let mut added = BlobWriter::create(self.store, &self.sync, &self.run, ADDED, &self.schema)?;
        let mut changed =
            BlobWriter::create(self.store, &self.sync, &self.run, CHANGED, &self.schema)?;
        if let Some(writer) = self.rows_file.as_mut() {
            writer.finish()?;
        }
        if !added_at.is_empty() || !changed_at.is_empty() {
            added_at.sort_unstable();
            changed_at.sort_unstable();
            let file = File::open(self.spill_dir.join("rows.arrows"))?;
            let reader = arrow::ipc::reader::StreamReader::try_new(
                BufReader::with_capacity(256 * 1024, file),
                None,
            )?;
            let (mut a, mut c) = (0usize, 0usize);
            let mut first = 0u64;
            for batch in reader {
                let batch = batch?;
                let end = first + batch.num_rows() as u64;
                for (places, next, blob) in [
                    (&added_at, &mut a, &mut added),
                    (&changed_at, &mut c, &mut changed),
                ] {
                    let from = *next;
                    while *next < places.len() && places[*next] < end {
                        *next += 1;
                    }
                    let rows = &places[from..*next];
                    if rows.len() == batch.num_rows() {
                        blob.write(&batch)?;
                    } else if !rows.is_empty() {
                        let rows = rows
                            .iter()
                            .map(|&r| u32::try_from(r - first).unwrap_or(u32::MAX))
                            .collect();
                        blob.write(&take(&batch, rows)?)?;
                    }
                }
                first = end;
            }
            if a < added_at.len() || c < changed_at.len() {
                return Err(ChangeError::Corrupt(format!(
                    "the rows file ends at row {first}, before rows the comparison found"
                )));
            }
        }
        added.finish()?;
        changed.finish()?;
        Ok(())
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

mod keys;
mod partition;
#[cfg(test)]
mod tests;

use keys::Duplicates;
use partition::{COMPARE_THREADS, Partition, PartitionJob};
