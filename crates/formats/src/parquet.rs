//! Parquet, with the columns of each batch encoded in parallel.
//!
//! `ArrowWriter` encodes one column after another on the caller's thread. Encoding (dictionary,
//! statistics, compression) is most of an export's CPU, and columns are independent, so this
//! writer keeps one `ArrowColumnWriter` per column and lets a few scoped threads take columns
//! from a shared queue for every batch. Memory is the same as `ArrowWriter`'s: encoded pages of
//! the current row group, nothing more.
//!
//! Dictionary encoding is decided per column from the first batch, as polars does: a column
//! whose sampled values are nearly all distinct (ids, emails, timestamps, amounts) is written
//! plain. Its dictionary would only fill up and be abandoned for plain pages after hashing every
//! value (a fifth of the export's CPU in the 10M-row benchmark's profile); zstd then compresses
//! the plain pages as well.

use arrow::array::{Array, AsArray as _, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

pub struct ParallelParquetWriter<W: Write + Send> {
    state: State<W>,
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

/// The file is opened at the first batch, once its columns' cardinality is known.
enum State<W: Write + Send> {
    Pending(Option<(W, WriterProperties)>),
    Open {
        file: SerializedFileWriter<W>,
        factory: ArrowRowGroupWriterFactory,
    },
}

/// Values sampled from the first batch to decide a column's dictionary.
const CARDINALITY_SAMPLE: usize = 8192;
/// Above this share of distinct values in the sample, a column is written without a
/// dictionary. High, so that a column of a few thousand values (cities, products) keeps its
/// dictionary even when a sample of 8192 rows sees most of them once.
const PLAIN_ABOVE: f64 = 0.9;

impl<W: Write + Send> ParallelParquetWriter<W> {
    pub fn try_new(
        sink: W,
        schema: SchemaRef,
        props: WriterProperties,
        max_rows: usize,
        max_bytes: usize,
        threads: usize,
    ) -> Result<Self> {
        Ok(Self {
            state: State::Pending(Some((sink, props))),
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

    /// Opens the file, with the dictionary off for the columns `first` shows to be near-unique.
    fn open(&mut self, first: Option<&RecordBatch>) -> Result<()> {
        let State::Pending(pending) = &mut self.state else {
            return Ok(());
        };
        let Some((sink, props)) = pending.take() else {
            return Err(ParquetError::General(
                "the Parquet writer failed earlier".into(),
            ));
        };
        let mut builder = props.into_builder();
        if let Some(batch) = first {
            for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
                if distinct_share(column.as_ref()).is_some_and(|share| share > PLAIN_ABOVE) {
                    builder = builder.set_column_dictionary_enabled(
                        ColumnPath::from(field.name().as_str()),
                        false,
                    );
                }
            }
        }
        let (file, factory) =
            ArrowWriter::try_new(sink, self.schema.clone(), Some(builder.build()))?
                .into_serialized_writer()?;
        self.state = State::Open { file, factory };
        Ok(())
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            self.open(Some(batch))?;
        }
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
            let State::Open { file, factory } = &self.state else {
                return Err(ParquetError::General("the Parquet file is not open".into()));
            };
            let index = file.flushed_row_groups().len();
            self.writers = Some(factory.create_column_writers(index)?);
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
        let State::Open { file, .. } = &mut self.state else {
            return Err(ParquetError::General("the Parquet file is not open".into()));
        };
        let mut row_group = file.next_row_group()?;
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
        // An empty result: the file, its schema and no row group.
        self.open(None)?;
        self.flush()?;
        match self.state {
            State::Open { file, .. } => file.into_inner(),
            State::Pending(_) => Err(ParquetError::General("the Parquet file is not open".into())),
        }
    }
}

/// The share of distinct values among the first non-null values of a top-level column of
/// strings, binaries or fixed-width values; none for other types (booleans, nested columns)
/// or an all-null sample.
fn distinct_share(column: &dyn Array) -> Option<f64> {
    fn share<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<f64> {
        let mut seen = HashSet::with_capacity(CARDINALITY_SAMPLE);
        let mut count = 0usize;
        for value in values.take(CARDINALITY_SAMPLE) {
            seen.insert(value);
            count += 1;
        }
        (count > 0).then(|| seen.len() as f64 / count as f64)
    }
    match column.data_type() {
        DataType::Utf8 => share(
            column
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::as_bytes),
        ),
        DataType::LargeUtf8 => share(
            column
                .as_string::<i64>()
                .iter()
                .flatten()
                .map(str::as_bytes),
        ),
        DataType::Binary => share(column.as_binary::<i32>().iter().flatten()),
        DataType::LargeBinary => share(column.as_binary::<i64>().iter().flatten()),
        data_type => {
            let width = data_type.primitive_width()?;
            let data = column.to_data();
            let values = data.buffers().first()?.as_slice();
            let offset = data.offset();
            share(
                (0..data.len())
                    .filter(|i| data.is_valid(*i))
                    .filter_map(|i| values.get((offset + i) * width..(offset + i + 1) * width)),
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use parquet::file::reader::{FileReader as _, SerializedFileReader};
    use std::sync::Arc;

    #[test]
    fn near_unique_columns_are_written_plain_and_repeated_ones_with_a_dictionary() {
        let n = 20_000;
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let emails: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("p{i}@example.com")),
        ));
        // 3000 cities: most of them seen once in a sample of 8192 rows, still a dictionary.
        let cities: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("city {}", (i * 7919) % 3000)),
        ));
        let batch = RecordBatch::try_from_iter([("id", ids), ("email", emails), ("city", cities)])
            .expect("batch");
        let mut writer = ParallelParquetWriter::try_new(
            Vec::new(),
            batch.schema(),
            WriterProperties::builder().build(),
            1 << 20,
            64 << 20,
            2,
        )
        .expect("writer");
        writer.write(&batch.slice(0, 10_000)).expect("write");
        writer.write(&batch.slice(10_000, 10_000)).expect("write");
        let bytes = bytes::Bytes::from(writer.into_inner().expect("finish"));
        let reader = SerializedFileReader::new(bytes.clone()).expect("parquet");
        let group = reader.metadata().row_group(0);
        let dictionary = |i: usize| group.column(i).dictionary_page_offset().is_some();
        assert!(!dictionary(0), "id has a dictionary");
        assert!(!dictionary(1), "email has a dictionary");
        assert!(dictionary(2), "city has no dictionary");
        // Every row reads back.
        let read = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("reader")
            .build()
            .expect("reader")
            .collect::<std::result::Result<Vec<_>, _>>()
            .expect("batches");
        let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, n as usize);
        assert_eq!(
            arrow::compute::concat_batches(&batch.schema(), &read).expect("concat"),
            batch
        );
    }

    #[test]
    fn an_empty_result_is_a_file_with_its_schema() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", DataType::Int64, false),
        ]));
        let writer = ParallelParquetWriter::try_new(
            Vec::new(),
            schema.clone(),
            WriterProperties::builder().build(),
            1024,
            1 << 20,
            2,
        )
        .expect("writer");
        let bytes = bytes::Bytes::from(writer.into_inner().expect("finish"));
        let reader = SerializedFileReader::new(bytes).expect("parquet");
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
        assert_eq!(
            reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .num_columns(),
            1
        );
    }
}
