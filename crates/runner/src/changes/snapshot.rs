//! Where a sync's snapshots live, and their files. A snapshot is a folder named after the run
//! that wrote it: `meta.json`, and per partition of the key space an Arrow IPC stream
//! (`keys-NNNN.arrows`) of the key columns as exported, the key's canonical encoding
//! (`_wharf_key`) and the row's hash (`_wharf_hash`, 16 bytes). The same folder keeps the run's
//! change set (`added.arrows`, `changed.arrows`, `removed.arrows`) until the run succeeds, so
//! that a retry sends the same changes.
//!
//! Arrow IPC streams rather than Parquet: wharf alone reads them, whole and in order, every run;
//! they cost no encoding or decoding, and they need no seeking, so the [`SnapshotStore`] behind
//! them can later be object storage shared by several wharf machines.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::ChangeError;

/// The column holding a key's canonical encoding.
pub const KEY_COLUMN: &str = "_wharf_key";
/// The column holding a row's hash.
pub const HASH_COLUMN: &str = "_wharf_hash";

/// Blobs by name under a sync's folder. The local disk today; object storage later.
pub trait SnapshotStore: Send + Sync {
    fn create(&self, sync: &str, run: &str, name: &str) -> std::io::Result<Box<dyn Write + Send>>;
    /// `Ok(None)` when the blob does not exist.
    fn open(
        &self,
        sync: &str,
        run: &str,
        name: &str,
    ) -> std::io::Result<Option<Box<dyn Read + Send>>>;
    /// Removes one blob (nothing when it does not exist).
    fn remove_blob(&self, sync: &str, run: &str, name: &str) -> std::io::Result<()>;
    /// Removes a run's folder and everything in it (nothing when it does not exist).
    fn remove(&self, sync: &str, run: &str) -> std::io::Result<()>;
    /// The runs that have a folder for this sync.
    fn runs(&self, sync: &str) -> std::io::Result<Vec<String>>;
}

/// Snapshots under `$WHARF_HOME/snapshots/<sync id>/<run id>/`.
#[derive(Debug, Clone)]
pub struct LocalSnapshots {
    root: PathBuf,
}

impl LocalSnapshots {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn dir(&self, sync: &str, run: &str) -> PathBuf {
        self.root.join(sync).join(run)
    }
}

impl SnapshotStore for LocalSnapshots {
    fn create(&self, sync: &str, run: &str, name: &str) -> std::io::Result<Box<dyn Write + Send>> {
        let dir = self.dir(sync, run);
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::File::create(dir.join(name))?;
        Ok(Box::new(BufWriter::with_capacity(256 * 1024, file)))
    }

    fn open(
        &self,
        sync: &str,
        run: &str,
        name: &str,
    ) -> std::io::Result<Option<Box<dyn Read + Send>>> {
        match std::fs::File::open(self.dir(sync, run).join(name)) {
            Ok(file) => Ok(Some(Box::new(BufReader::with_capacity(256 * 1024, file)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn remove_blob(&self, sync: &str, run: &str, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir(sync, run).join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn remove(&self, sync: &str, run: &str) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.dir(sync, run)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn runs(&self, sync: &str) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(self.root.join(sync)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut runs = Vec::new();
        for entry in entries {
            if let Some(name) = entry?.file_name().to_str() {
                runs.push(name.to_string());
            }
        }
        runs.sort();
        Ok(runs)
    }
}

/// What a snapshot's `meta.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The canonical encoding's version its hashes were made with.
    pub encoding_version: u32,
    /// The key space is cut into `2^partition_bits` partitions.
    pub partition_bits: u32,
    pub rows: u64,
    /// The key columns, as exported.
    pub key_columns: Vec<String>,
    /// The exported columns the row hashes cover, in order, with their types: a snapshot
    /// whose columns differ from the run's is not compared against.
    pub columns: Vec<(String, String)>,
}

impl SnapshotMeta {
    pub const FILE: &str = "meta.json";

    pub fn read(
        store: &dyn SnapshotStore,
        sync: &str,
        run: &str,
    ) -> Result<Option<Self>, ChangeError> {
        let Some(mut reader) = store.open(sync, run, Self::FILE)? else {
            return Ok(None);
        };
        let mut text = String::new();
        reader.read_to_string(&mut text)?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ChangeError::Corrupt(format!("{sync}/{run}/{}: {e}", Self::FILE)))
    }

    pub fn write(
        &self,
        store: &dyn SnapshotStore,
        sync: &str,
        run: &str,
    ) -> Result<(), ChangeError> {
        let mut writer = store.create(sync, run, Self::FILE)?;
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| ChangeError::Corrupt(format!("meta.json: {e}")))?;
        writer.write_all(&text)?;
        writer.flush()?;
        Ok(())
    }

    /// The column list a snapshot of `schema` records.
    pub fn columns_of(schema: &Schema) -> Vec<(String, String)> {
        schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect()
    }
}

/// The name of a partition's keys file.
pub fn keys_file(partition: usize) -> String {
    format!("keys-{partition:04}.arrows")
}

/// The schema of a keys file: the key columns, then the key's encoding and the row's hash.
pub fn keys_schema(key_fields: &[Arc<Field>]) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = key_fields.to_vec();
    fields.push(Arc::new(Field::new(KEY_COLUMN, DataType::Binary, false)));
    fields.push(Arc::new(Field::new(
        HASH_COLUMN,
        DataType::FixedSizeBinary(16),
        false,
    )));
    Arc::new(Schema::new(fields))
}

/// An Arrow IPC stream being written to a blob.
pub struct BlobWriter {
    writer: StreamWriter<Box<dyn Write + Send>>,
    pub rows: u64,
}

impl BlobWriter {
    pub fn create(
        store: &dyn SnapshotStore,
        sync: &str,
        run: &str,
        name: &str,
        schema: &Schema,
    ) -> Result<Self, ChangeError> {
        let blob = store.create(sync, run, name)?;
        Ok(Self {
            writer: StreamWriter::try_new(blob, schema)?,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ChangeError> {
        if batch.num_rows() > 0 {
            self.writer.write(batch)?;
            self.rows += batch.num_rows() as u64;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<u64, ChangeError> {
        self.writer.finish()?;
        self.writer.get_mut().flush()?;
        Ok(self.rows)
    }
}

/// Every batch of a blob (`None` when it does not exist).
pub fn read_blob(
    store: &dyn SnapshotStore,
    sync: &str,
    run: &str,
    name: &str,
) -> Result<Option<BlobReader>, ChangeError> {
    let Some(blob) = store.open(sync, run, name)? else {
        return Ok(None);
    };
    Ok(Some(BlobReader {
        reader: StreamReader::try_new(blob, None)?,
    }))
}

/// The batches of one blob, in order.
pub struct BlobReader {
    reader: StreamReader<Box<dyn Read + Send>>,
}

impl BlobReader {
    pub fn schema(&self) -> SchemaRef {
        self.reader.schema()
    }
}

impl Iterator for BlobReader {
    type Item = Result<RecordBatch, ChangeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next().map(|r| r.map_err(ChangeError::from))
    }
}
