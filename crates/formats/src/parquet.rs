//! Parquet, with the columns of each batch encoded in parallel.
//!
//! `ArrowWriter` encodes one column after another on the caller's thread. Encoding (dictionary,
//! statistics, compression) is most of an export's CPU, and columns are independent, so this
//! writer keeps one `ArrowColumnWriter` per column and lets a few scoped threads take columns
//! from a shared queue for every batch. Memory is the same as `ArrowWriter`'s: encoded pages of
//! the current row group, nothing more.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::io::Write;
use std::sync::Mutex;

pub struct ParallelParquetWriter<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    writers: Option<Vec<ArrowColumnWriter>>,
    rows_in_group: usize,
    max_rows: usize,
    max_bytes: usize,
    threads: usize,
}

/// Batches smaller than this are encoded on the caller's thread: a thread costs more than it
/// saves.
const PARALLEL_MIN_ROWS: usize = 2048;

impl<W: Write + Send> ParallelParquetWriter<W> {
    pub fn try_new(
        sink: W,
        schema: SchemaRef,
        props: WriterProperties,
        max_rows: usize,
        max_bytes: usize,
        threads: usize,
    ) -> Result<Self> {
        let (file, factory) =
            ArrowWriter::try_new(sink, schema.clone(), Some(props))?.into_serialized_writer()?;
        Ok(Self {
            file,
            factory,
            schema,
            writers: None,
            rows_in_group: 0,
            max_rows: max_rows.max(1),
            max_bytes,
            threads: threads.max(1),
        })
    }

    /// Encoded bytes of the row group being built.
    pub fn in_progress_size(&self) -> usize {
        self.writers.as_ref().map_or(0, |w| {
            w.iter()
                .map(ArrowColumnWriter::get_estimated_total_bytes)
                .sum()
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (batch.num_rows() - offset).min(self.max_rows - self.rows_in_group);
            self.encode(&batch.slice(offset, take))?;
            offset += take;
            self.rows_in_group += take;
            if self.rows_in_group >= self.max_rows || self.in_progress_size() >= self.max_bytes {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writers.is_none() {
            let index = self.file.flushed_row_groups().len();
            self.writers = Some(self.factory.create_column_writers(index)?);
        }
        let Some(writers) = self.writers.as_mut() else {
            return Ok(());
        };
        let mut leaves: Vec<ArrowLeafColumn> = Vec::with_capacity(writers.len());
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        let work: Vec<(&mut ArrowColumnWriter, &ArrowLeafColumn)> =
            writers.iter_mut().zip(leaves.iter()).collect();
        if self.threads == 1 || batch.num_rows() < PARALLEL_MIN_ROWS || work.len() < 2 {
            for (writer, leaf) in work {
                writer.write(leaf)?;
            }
            return Ok(());
        }
        run_parallel(self.threads, work, |(writer, leaf)| writer.write(leaf))
    }

    /// Ends the row group: closes the column writers (in parallel) and appends their chunks.
    pub fn flush(&mut self) -> Result<()> {
        let Some(writers) = self.writers.take() else {
            return Ok(());
        };
        self.rows_in_group = 0;
        let slots: Vec<Mutex<Option<ArrowColumnChunk>>> =
            writers.iter().map(|_| Mutex::new(None)).collect();
        let work: Vec<(usize, ArrowColumnWriter)> = writers.into_iter().enumerate().collect();
        run_parallel(self.threads, work, |(i, writer)| {
            let chunk = writer.close()?;
            if let Some(slot) = slots.get(i) {
                *slot.lock().map_err(|_| poisoned())? = Some(chunk);
            }
            Ok(())
        })?;
        let mut row_group = self.file.next_row_group()?;
        for slot in slots {
            let chunk = slot
                .into_inner()
                .map_err(|_| poisoned())?
                .ok_or_else(|| ParquetError::General("a column chunk is missing".into()))?;
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }

    /// Writes the last row group and the footer; returns the sink.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        self.file.into_inner()
    }
}

fn poisoned() -> ParquetError {
    ParquetError::General("a Parquet encoding thread panicked".into())
}

/// Runs `f` on every item, on up to `threads` threads (the caller's included) taking items from
/// a shared queue, so a slow column (long strings) does not hold the others back. Returns the
/// first error.
fn run_parallel<T: Send>(
    threads: usize,
    items: Vec<T>,
    f: impl Fn(T) -> Result<()> + Sync,
) -> Result<()> {
    let queue = Mutex::new(items.into_iter());
    let next = || queue.lock().ok().and_then(|mut q| q.next());
    let worker = || -> Result<()> {
        while let Some(item) = next() {
            f(item)?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut result = worker();
        for helper in helpers {
            let joined = helper.join().unwrap_or_else(|_| Err(poisoned()));
            if result.is_ok() {
                result = joined;
            }
        }
        result
    })
}
