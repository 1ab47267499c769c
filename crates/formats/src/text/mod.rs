//! CSV, NDJSON and XML, with each batch's rows encoded in parallel.
//!
//! Text encoding is per row, so a batch's rows are cut into one slice per thread, each slice is
//! encoded into its own buffer, and the buffers are written in order. The output is byte-for-byte
//! what one writer would produce. CSV rows are written by [`CsvEncoder`] (bytes straight into
//! the buffer, arrow's output exactly), NDJSON by arrow's writer with wharf's value encoders
//! ([`FastValues`]), XML by [`XmlEncoder`] (values as CSV writes them, escaped for XML).

mod columns;
mod csv;
mod json;
#[cfg(test)]
mod random;
mod values;
mod xml;

pub use csv::CsvEncoder;
pub use json::FastValues;
pub use xml::XmlEncoder;

use crate::Compressed;
use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use std::io::Write;

/// Batches smaller than this are encoded on the caller's thread.
const PARALLEL_MIN_ROWS: usize = 4096;

/// Which text format, with its writer settings.
#[derive(Clone)]
pub enum TextKind {
    /// Rows by wharf's encoder; the header (once per file) by arrow's writer, whose quoting
    /// rules the encoder follows.
    Csv(CsvEncoder, arrow::csv::WriterBuilder),
    Ndjson,
    /// Rows only: the declaration and root tags are written by [`ParallelText::new`] and
    /// [`ParallelText::finish`].
    Xml(XmlEncoder),
}

pub struct ParallelText<W: Write> {
    out: Compressed<W>,
    kind: TextKind,
    /// CSV: the header is still to be written.
    header_pending: bool,
    threads: usize,
    buffers: Vec<Vec<u8>>,
}

impl<W: Write> ParallelText<W> {
    /// `header`: whether a CSV file starts with its header line (others ignore it). XML's
    /// declaration and root start tag are written to `out` here.
    pub fn new(
        mut out: Compressed<W>,
        kind: TextKind,
        header: bool,
        threads: usize,
    ) -> std::io::Result<Self> {
        if let TextKind::Xml(encoder) = &kind {
            out.write_all(&encoder.header())?;
        }
        Ok(Self {
            out,
            header_pending: header && matches!(kind, TextKind::Csv(..)),
            kind,
            threads: threads.max(1),
            buffers: Vec::new(),
        })
    }

    fn encode(kind: &TextKind, batch: &RecordBatch, buf: &mut Vec<u8>) -> Result<(), ArrowError> {
        match kind {
            TextKind::Csv(encoder, _) => encoder.encode(batch, buf),
            TextKind::Xml(encoder) => encoder.encode(batch, buf),
            TextKind::Ndjson => {
                let mut writer = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .with_encoder_factory(std::sync::Arc::new(FastValues))
                    .build::<_, arrow::json::writer::LineDelimited>(buf);
                writer.write(batch)?;
                writer.finish()
            }
        }
    }

    /// Writes the CSV header now if it is still due (an empty result still has one).
    fn header(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        if !self.header_pending {
            return Ok(());
        }
        self.header_pending = false;
        if let TextKind::Csv(_, builder) = &self.kind {
            let mut buf = Vec::new();
            builder
                .clone()
                .with_header(true)
                .build(&mut buf)
                .write(&batch.slice(0, 0))?;
            self.out.write_all(&buf)?;
        }
        Ok(())
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.header(batch)?;
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let slices = if rows < PARALLEL_MIN_ROWS {
            1
        } else {
            self.threads
        };
        self.buffers.resize_with(slices, Vec::new);
        for buf in &mut self.buffers {
            buf.clear();
        }
        let per_slice = rows.div_ceil(slices);
        let kind = &self.kind;
        if slices == 1 {
            Self::encode(kind, batch, &mut self.buffers[0])?;
        } else {
            std::thread::scope(|scope| -> Result<(), ArrowError> {
                let mut buffers = self.buffers.iter_mut().enumerate();
                let (_, first) = buffers
                    .next()
                    .ok_or_else(|| ArrowError::ComputeError("no buffer".into()))?;
                let helpers: Vec<_> = buffers
                    .map(|(i, buf)| {
                        let start = (i * per_slice).min(rows);
                        let slice = batch.slice(start, per_slice.min(rows - start));
                        scope.spawn(move || Self::encode(kind, &slice, buf))
                    })
                    .collect();
                let mut result = Self::encode(kind, &batch.slice(0, per_slice.min(rows)), first);
                for helper in helpers {
                    let joined = helper.join().unwrap_or_else(|_| {
                        Err(ArrowError::ComputeError(
                            "an encoding thread panicked".into(),
                        ))
                    });
                    if result.is_ok() {
                        result = joined;
                    }
                }
                result
            })?;
        }
        for buf in &self.buffers {
            self.out.write_all(buf)?;
        }
        Ok(())
    }

    /// Ends the file (the CSV header of an empty result, XML's root end tag, the end of the
    /// compressed stream).
    pub fn finish(mut self, schema: &arrow::datatypes::SchemaRef) -> Result<W, ArrowError> {
        self.header(&RecordBatch::new_empty(schema.clone()))?;
        if let TextKind::Xml(encoder) = &self.kind {
            self.out.write_all(&encoder.footer())?;
        }
        Ok(self.out.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    use wharf_domain::TextCompression;

    fn encode(kind: TextKind, threads: usize, batch: &RecordBatch) -> Vec<u8> {
        let out = Compressed::new(TextCompression::None, Vec::new()).expect("plain");
        let mut w = ParallelText::new(out, kind, true, threads).expect("new");
        w.write(batch).expect("write");
        w.write(&batch.slice(0, batch.num_rows().min(10)))
            .expect("write a small batch");
        w.finish(&batch.schema()).expect("finish")
    }

    #[test]
    fn parallel_output_is_byte_for_byte_the_serial_output() {
        let n = 10_001;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let s: ArrayRef = Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 7 != 0).then(|| format!("v{i}, \"q\"\nline"))),
        ));
        let batch = RecordBatch::try_new(schema, vec![ids, s]).expect("batch");
        let csv = || {
            TextKind::Csv(
                CsvEncoder::new(b',', b'"', ""),
                arrow::csv::WriterBuilder::new(),
            )
        };
        let serial = encode(csv(), 1, &batch);
        assert_eq!(encode(csv(), 3, &batch), serial);
        assert!(serial.starts_with(b"id,s\n0,\r\n1,\"v1, \"\"q\"\"\nline\"\r\n"));
        assert_eq!(
            encode(TextKind::Ndjson, 4, &batch),
            encode(TextKind::Ndjson, 1, &batch)
        );
        let xml = || {
            TextKind::Xml(XmlEncoder::new(
                vec!["id".into(), "s".into()],
                &wharf_domain::XmlOptions::default(),
            ))
        };
        let serial = encode(xml(), 1, &batch);
        assert_eq!(encode(xml(), 3, &batch), serial);
        assert!(serial.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n<row><id>0</id></row>\n<row><id>1</id><s>v1, \"q\"\nline</s></row>\n"));
        assert!(serial.ends_with(b"</row>\n</rows>\n"));
        // An empty result still has its header.
        let empty = RecordBatch::new_empty(batch.schema());
        assert_eq!(encode(csv(), 2, &empty), b"id,s\n".to_vec());
    }
}
