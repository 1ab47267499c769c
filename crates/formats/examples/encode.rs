//! Times the file encoders alone, without a source or an upload, over the batches of a Parquet
//! file (text columns as string views, as the local source reads them):
//!
//! ```text
//! WHARF_ENCODE_THREADS=1 cargo run --profile bench-release -p wharf-formats --example encode \
//!     -- customers.parquet csv 5
//! ```
//!
//! Prints the fastest of the repeats, in ns per row and MB/s of output (the CRC-32 is computed
//! in every repeat, the same for both builds being compared). A tool for profiling one
//! encoder (`perf record` on this process sees nothing else); `scripts/bench` is the benchmark.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use wharf_domain::{FileFormat, FileSettings, TextCompression};
use wharf_formats::FileWriter;

/// Counts what the encoder writes, with a CRC-32 of it to compare two builds' output.
struct Count(u64, crc32fast::Hasher);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        self.1.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: encode FILE.parquet [parquet|csv|ndjson|json|xml|avro] [REPEAT]";
    let path = args.next().ok_or(usage)?;
    let format = FileFormat::parse(args.next().as_deref().unwrap_or("csv"))?;
    let repeat: usize = args.next().as_deref().unwrap_or("3").parse()?;

    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path)?)?
        .with_batch_size(8192)
        .build()?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(as_views(&batch?)?);
    }
    let schema = batches.first().ok_or("the file has no rows")?.schema();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let settings = FileSettings {
        format,
        compression: TextCompression::None,
        csv: Default::default(),
        xml: Default::default(),
        parquet: Default::default(),
    };

    let mut best = f64::INFINITY;
    let (mut bytes, mut crc) = (0, 0);
    for _ in 0..repeat {
        let started = Instant::now();
        let mut writer = FileWriter::new(&settings, &schema, Count(0, Default::default()))?;
        for batch in &batches {
            writer.write(batch)?;
        }
        let count = writer.finish()?;
        (bytes, crc) = (count.0, count.1.finalize());
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{format}: {rows} rows, {bytes} bytes (crc32 {crc:08x}), best of {repeat}: {:.3} s, {:.1} ns/row, {:.0} MB/s",
        best,
        best * 1e9 / rows as f64,
        bytes as f64 / best / 1e6
    );
    Ok(())
}

/// The batch with its `Utf8` columns as `Utf8View`.
fn as_views(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type() == &DataType::Utf8 {
            fields.push(Field::new(
                field.name(),
                DataType::Utf8View,
                field.is_nullable(),
            ));
            columns.push(arrow::compute::cast(column, &DataType::Utf8View)?);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}
