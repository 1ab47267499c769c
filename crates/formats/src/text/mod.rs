//! CSV, NDJSON and XML, with each batch's rows encoded in parallel.
//!
//! Text encoding is per row, so a batch's rows are cut into one slice per thread, each slice is
//! encoded into its own buffer, and the buffers are written in order. The output is byte-for-byte
//! what one writer would produce. CSV rows are written by [`CsvEncoder`], NDJSON and the JSON
//! array by [`JsonEncoder`] (bytes straight into the buffer, arrow's output exactly), XML by
//! [`XmlEncoder`] (values as CSV writes them, escaped for XML).

mod columns;
mod csv;
mod json;
#[cfg(test)]
pub(crate) mod random;
mod values;
mod words;
mod xml;

pub use csv::CsvEncoder;
pub use json::{JsonEncoder, JsonLayout};
pub use xml::XmlEncoder;

use crate::Compressed;
use crate::compress::Deflater;
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
    /// Rows only: an array's `[` and `]` are written by [`ParallelText::new`] and
    /// [`ParallelText::finish`].
    Json(JsonEncoder),
    /// Rows only: the declaration and root tags are written by [`ParallelText::new`] and
    /// [`ParallelText::finish`].
    Xml(XmlEncoder),
}

pub struct ParallelText<W: Write> {
    out: Compressed<W>,
    kind: TextKind,
    /// CSV: the header is still to be written.
    header_pending: bool,
    /// No row has been written yet (a JSON array's first has no `,` before it).
    first_row: bool,
    threads: usize,
    /// One per slice: the slice's text.
    buffers: Vec<Vec<u8>>,
    /// One per slice, gzip only: the slice deflated.
    deflaters: Vec<Deflater>,
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
        match &kind {
            TextKind::Xml(encoder) => out.write_all(&encoder.header())?,
            TextKind::Json(encoder) if encoder.layout() == JsonLayout::Array => {
                out.write_all(b"[")?
            }
            _ => {}
        }
        Ok(Self {
            out,
            header_pending: header && matches!(kind, TextKind::Csv(..)),
            first_row: true,
            kind,
            threads: threads.max(1),
            buffers: Vec::new(),
            deflaters: Vec::new(),
        })
    }

    /// `first`: the batch's first row is the file's first.
    fn encode(
        kind: &TextKind,
        batch: &RecordBatch,
        first: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), ArrowError> {
        match kind {
            TextKind::Csv(encoder, _) => encoder.encode(batch, buf),
            TextKind::Xml(encoder) => encoder.encode(batch, buf),
            TextKind::Json(encoder) => encoder.encode(batch, first, buf),
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
        let per_slice = rows.div_ceil(slices);
        let kind = &self.kind;
        let first_row = self.first_row;
        in_parallel(&mut self.buffers, |i, buf| {
            buf.clear();
            let start = (i * per_slice).min(rows);
            let slice = batch.slice(start, per_slice.min(rows - start));
            Self::encode(kind, &slice, first_row && start == 0, buf)
        })?;
        self.first_row = false;
        let buffers = &self.buffers;
        if let Some(gzip) = self.out.gzip() {
            // Each slice is deflated on the thread that encoded it, primed with the text
            // before it: the last slice's of this batch, or what the stream holds so far.
            let before = gzip.before_next()?.to_vec();
            if self.deflaters.len() < slices {
                self.deflaters.resize_with(slices, Deflater::default);
            }
            in_parallel(&mut self.deflaters[..slices], |i, deflater| {
                let before = if i == 0 { &before } else { &buffers[i - 1] };
                Ok(deflater.deflate(before, &buffers[i])?)
            })?;
            for (deflater, text) in self.deflaters.iter().zip(buffers) {
                gzip.append(deflater, text)?;
            }
        } else {
            for buf in buffers {
                self.out.write_all(buf)?;
            }
        }
        Ok(())
    }

    /// Ends the file (the CSV header of an empty result, XML's root end tag, a JSON array's
    /// `]`, the end of the compressed stream).
    pub fn finish(mut self, schema: &arrow::datatypes::SchemaRef) -> Result<W, ArrowError> {
        self.header(&RecordBatch::new_empty(schema.clone()))?;
        match &self.kind {
            TextKind::Xml(encoder) => self.out.write_all(&encoder.footer())?,
            TextKind::Json(encoder) if encoder.layout() == JsonLayout::Array => {
                self.out.write_all(b"]")?
            }
            _ => {}
        }
        Ok(self.out.finish()?)
    }
}

/// Runs `work` on every item at once: the first on this thread, each other on a thread of its
/// own. The first error wins.
fn in_parallel<T: Send>(
    items: &mut [T],
    work: impl Fn(usize, &mut T) -> Result<(), ArrowError> + Sync,
) -> Result<(), ArrowError> {
    let Some((first, rest)) = items.split_first_mut() else {
        return Ok(());
    };
    if rest.is_empty() {
        return work(0, first);
    }
    let work = &work;
    std::thread::scope(|scope| {
        let helpers: Vec<_> = rest
            .iter_mut()
            .enumerate()
            .map(|(i, item)| scope.spawn(move || work(i + 1, item)))
            .collect();
        let mut result = work(0, first);
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    use wharf_domain::TextCompression;

    fn encode(kind: TextKind, threads: usize, batch: &RecordBatch) -> Vec<u8> {
        encode_as(TextCompression::None, kind, threads, batch)
    }

    fn encode_as(
        compression: TextCompression,
        kind: TextKind,
        threads: usize,
        batch: &RecordBatch,
    ) -> Vec<u8> {
        let out = Compressed::new(compression, Vec::new(), threads).expect("compressed");
        let mut w = ParallelText::new(out, kind, true, threads).expect("new");
        w.write(batch).expect("write");
        w.write(&batch.slice(0, batch.num_rows().min(10)))
            .expect("write a small batch");
        w.finish(&batch.schema()).expect("finish")
    }

    /// A batch of `n` rows: `id` 0..n and `s` as `text` gives it.
    fn ids_and_text(n: i64, text: impl Fn(i64) -> Option<String>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let s: ArrayRef = Arc::new(StringArray::from_iter((0..n).map(text)));
        RecordBatch::try_new(schema, vec![ids, s]).expect("batch")
    }

    #[test]
    fn parallel_output_is_byte_for_byte_the_serial_output() {
        let batch = ids_and_text(10_001, |i| {
            (i % 7 != 0).then(|| format!("v{i}, \"q\"\nline"))
        });
        let csv = || {
            TextKind::Csv(
                CsvEncoder::new(b',', b'"', ""),
                arrow::csv::WriterBuilder::new(),
            )
        };
        let serial = encode(csv(), 1, &batch);
        assert_eq!(encode(csv(), 3, &batch), serial);
        assert!(serial.starts_with(b"id,s\n0,\r\n1,\"v1, \"\"q\"\"\nline\"\r\n"));
        for layout in [JsonLayout::Lines, JsonLayout::Array] {
            let json = || TextKind::Json(JsonEncoder::new(layout));
            assert_eq!(encode(json(), 4, &batch), encode(json(), 1, &batch));
        }
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

    #[test]
    fn compressed_parallel_output_holds_the_serial_text() {
        use std::io::Read;
        let batch = ids_and_text(50_000, |i| {
            (i % 5 != 0).then(|| format!("name {}", i * 7919 % 1000))
        });
        let csv = || {
            TextKind::Csv(
                CsvEncoder::new(b',', b'"', ""),
                arrow::csv::WriterBuilder::new(),
            )
        };
        let plain = encode(csv(), 1, &batch);
        for threads in [1, 3] {
            // One gzip member (`GzDecoder` stops after the first) with every byte.
            let gz = encode_as(TextCompression::Gzip, csv(), threads, &batch);
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut text)
                .expect("gunzip");
            assert_eq!(text, plain, "gzip, {threads} threads");
            let z = encode_as(TextCompression::Zstd, csv(), threads, &batch);
            assert_eq!(
                zstd::zstd_safe::find_frame_compressed_size(&z).expect("a frame"),
                z.len(),
                "zstd, {threads} threads: more than one frame"
            );
            assert_eq!(zstd::stream::decode_all(&z[..]).expect("unzstd"), plain);
        }
    }
}
