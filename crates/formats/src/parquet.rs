//! Parquet, with the columns of every few batches encoded in parallel.
//!
//! `ArrowWriter` encodes one column after another on the caller's thread. Encoding (dictionary,
//! statistics, compression) is most of an export's CPU, and columns are independent, so this
//! writer keeps one `ArrowColumnWriter` per column and lets a few scoped threads take columns
//! from a shared queue. Memory is `ArrowWriter`'s (encoded pages of the current row group) and
//! the batches gathered below.
//!
//! Dictionary encoding is decided per column from the first batch, as polars does: a column
//! whose sampled values are nearly all distinct (ids, emails, timestamps, amounts) is written
//! plain. Its dictionary would only fill up and be abandoned for plain pages after hashing every
//! value (a fifth of the export's CPU in the 10M-row benchmark's profile); zstd then compresses
//! the plain pages as well.
//!
//! Batches are gathered until [`GATHER_ROWS`] rows before they are encoded, and each column
//! thread then writes one column through all of them. A column's pages are so compressed back
//! to back, while its zstd context's tables are still in the cache: with eight-thousand-row
//! batches the twelve columns of the benchmark's table took turns page by page, and twelve zstd
//! contexts used in turn cost 39% more CPU than one on the same pages (measured apart, same
//! zstd).

use arrow::array::{Array, AsArray as _, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
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
    /// Slices of batches not encoded yet, all of the current row group.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    max_rows: usize,
    max_bytes: usize,
    threads: usize,
}

/// Batches smaller than this are encoded on the caller's thread: a thread costs more than it
/// saves.
const PARALLEL_MIN_ROWS: usize = 2048;

/// Rows gathered before they are encoded: sixteen of the query's batches, some 10 MiB of Arrow
/// arrays held, and each column's pages (20,000 rows or 1 MiB) compressed about six at a time.
/// On the benchmark's table, 65,536 rows saved about 9% of the export's CPU, 131,072 rows 11%.
const GATHER_ROWS: usize = 131_072;

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
            pending: Vec::new(),
            pending_rows: 0,
            max_rows: max_rows.max(1),
            max_bytes,
            threads: threads.max(1),
        })
    }

    /// Encoded bytes of the row group being built; rows gathered and not encoded yet are not
    /// counted ([`Self::encode_pending`] encodes them).
    pub fn in_progress_size(&self) -> usize {
        self.writers.as_ref().map_or(0, |w| {
            w.iter()
                .map(ArrowColumnWriter::get_estimated_total_bytes)
                .sum()
        })
    }

    /// A size that the gathered rows, once encoded, will not pass: twice their size in memory
    /// and 64 KiB (encoding and compression shrink values; levels, page headers and
    /// statistics add a little). Asking for it encodes nothing.
    pub fn pending_size_high(&self) -> usize {
        self.pending
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            .saturating_mul(2)
            .saturating_add(if self.pending.is_empty() { 0 } else { 64 << 10 })
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
            self.pending.push(batch.slice(offset, take));
            self.pending_rows += take;
            offset += take;
            self.rows_in_group += take;
            if self.rows_in_group >= self.max_rows {
                self.flush()?;
            } else if self.pending_rows >= GATHER_ROWS {
                self.encode_pending()?;
                if self.in_progress_size() >= self.max_bytes {
                    self.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Encodes the rows gathered so far: each top-level column on one thread, through every
    /// batch, its levels computed there one batch at a time (they take 10 bytes a value).
    pub fn encode_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        let rows = std::mem::take(&mut self.pending_rows);
        let State::Open { file, factory } = &self.state else {
            return Err(ParquetError::General("the Parquet file is not open".into()));
        };
        if self.writers.is_none() {
            let index = file.flushed_row_groups().len();
            self.writers = Some(factory.create_column_writers(index)?);
        }
        let Some(writers) = self.writers.as_mut() else {
            return Ok(());
        };
        // The leaf writers of each top-level column (a nested column has several), in order.
        let schema = file.schema_descr();
        let mut work: Vec<(usize, &mut [ArrowColumnWriter])> = Vec::new();
        let mut rest = writers.as_mut_slice();
        for column in 0..self.schema.fields().len() {
            let leaves = (0..schema.num_columns())
                .filter(|&leaf| schema.get_column_root_idx(leaf) == column)
                .count();
            if leaves > rest.len() {
                return Err(ParquetError::General(
                    "the Parquet schema has more columns than the writer".into(),
                ));
            }
            let (these, others) = rest.split_at_mut(leaves);
            work.push((column, these));
            rest = others;
        }
        if !rest.is_empty() {
            return Err(ParquetError::General(
                "the writer has more columns than the Parquet schema".into(),
            ));
        }
        let fields = self.schema.fields();
        let write = |(column, writers): (usize, &mut [ArrowColumnWriter])| -> Result<()> {
            let missing = || ParquetError::General(format!("column {column} is missing"));
            let field = fields.get(column).ok_or_else(missing)?;
            for batch in &batches {
                let array = batch.columns().get(column).ok_or_else(missing)?;
                let leaves = compute_leaves(field, array)?;
                for (writer, leaf) in writers.iter_mut().zip(&leaves) {
                    writer.write(leaf)?;
                }
            }
            Ok(())
        };
        if self.threads == 1 || rows < PARALLEL_MIN_ROWS || work.len() < 2 {
            return work.into_iter().try_for_each(write);
        }
        run_parallel(self.threads, work, write)
    }

    /// Ends the row group: encodes what is gathered, closes the column writers (in parallel)
    /// and appends their chunks.
    pub fn flush(&mut self) -> Result<()> {
        self.encode_pending()?;
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
        let read = read_back(bytes);
        let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, n as usize);
        assert_eq!(
            arrow::compute::concat_batches(&batch.schema(), &read).expect("concat"),
            batch
        );
    }

    /// The row count of each row group of a Parquet file.
    fn row_group_rows(bytes: &bytes::Bytes) -> Vec<i64> {
        let reader = SerializedFileReader::new(bytes.clone()).expect("parquet");
        reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect()
    }

    /// Every batch of a Parquet file, read with parquet-rs' own reader.
    fn read_back(bytes: bytes::Bytes) -> Vec<RecordBatch> {
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("reader")
            .build()
            .expect("reader")
            .collect::<std::result::Result<Vec<_>, _>>()
            .expect("batches")
    }

    /// Batches are gathered before they are encoded; row groups still end at their row limit,
    /// whatever the batches' size, and every row reads back in order.
    #[test]
    fn gathered_batches_keep_row_groups_exact() {
        let n: i64 = 250_000;
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let names: ArrayRef = Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 7 != 0).then(|| format!("name {}", i % 100))),
        ));
        let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).expect("batch");
        let mut writer = ParallelParquetWriter::try_new(
            Vec::new(),
            batch.schema(),
            WriterProperties::builder().build(),
            100_000,
            64 << 20,
            2,
        )
        .expect("writer");
        // Batches of 8192 rows, then a few odd sizes.
        let mut offset = 0;
        for size in std::iter::repeat_n(8192, 20).chain([1, 3, 77_000, 9_999]) {
            let take = size.min(batch.num_rows() - offset);
            writer.write(&batch.slice(offset, take)).expect("write");
            offset += take;
        }
        writer
            .write(&batch.slice(offset, batch.num_rows() - offset))
            .expect("write");
        let bytes = bytes::Bytes::from(writer.into_inner().expect("finish"));
        assert_eq!(row_group_rows(&bytes), [100_000, 100_000, 50_000]);
        let read = read_back(bytes);
        assert_eq!(
            arrow::compute::concat_batches(&batch.schema(), &read).expect("concat"),
            batch
        );
    }

    /// The estimate for gathered rows is never below what encoding them adds, and asking for
    /// it encodes nothing.
    #[test]
    fn the_gathered_rows_estimate_errs_high() {
        let n: i64 = 20_000;
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let names: ArrayRef =
            Arc::new(StringArray::from_iter((0..n).map(|i| {
                (i % 5 != 0).then(|| format!("customer {i} of a sample"))
            })));
        let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).expect("batch");
        for compression in [
            parquet::basic::Compression::UNCOMPRESSED,
            parquet::basic::Compression::SNAPPY,
        ] {
            let mut writer = ParallelParquetWriter::try_new(
                Vec::new(),
                batch.schema(),
                WriterProperties::builder()
                    .set_compression(compression)
                    .build(),
                1 << 20,
                64 << 20,
                2,
            )
            .expect("writer");
            writer.write(&batch).expect("write");
            assert_eq!(writer.in_progress_size(), 0, "nothing encoded yet");
            let high = writer.pending_size_high();
            writer.encode_pending().expect("encode");
            let encoded = writer.in_progress_size();
            assert!(encoded > 0 && high >= encoded, "{high} < {encoded}");
            assert_eq!(writer.pending_size_high(), 0);
        }
    }

    /// A row group also ends when its encoded bytes pass the limit, which gathered rows are
    /// measured against once they are encoded.
    #[test]
    fn a_row_group_ends_at_its_byte_limit() {
        let n: i64 = 300_000;
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let batch = RecordBatch::try_from_iter([("id", ids)]).expect("batch");
        let mut writer = ParallelParquetWriter::try_new(
            Vec::new(),
            batch.schema(),
            WriterProperties::builder()
                .set_compression(parquet::basic::Compression::UNCOMPRESSED)
                .build(),
            1 << 20,
            256 << 10,
            2,
        )
        .expect("writer");
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = 8192.min(batch.num_rows() - offset);
            writer.write(&batch.slice(offset, take)).expect("write");
            offset += take;
        }
        let bytes = bytes::Bytes::from(writer.into_inner().expect("finish"));
        let groups = row_group_rows(&bytes);
        // 8-byte ids, plain: 256 KiB is 32,768 rows, passed at the first encode of gathered
        // rows, so every row group but the last holds one gathering.
        const { assert!(GATHER_ROWS * 8 > 256 << 10) };
        let gathered = GATHER_ROWS as i64;
        let mut expected = vec![gathered; (n / gathered) as usize];
        expected.push(n % gathered);
        assert_eq!(groups, expected);
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
