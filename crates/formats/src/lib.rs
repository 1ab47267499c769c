//! File formats: one encoder per format (Parquet, CSV, NDJSON, JSON array, XML, Avro) from Arrow
//! batches to bytes written into any `std::io::Write`, plus gzip/zstd compression of text formats.
//!
//! This crate owns what a file looks like: its types (see [`normalize::lake_type`]), names,
//! escaping, headers and footers, and what an empty result produces. It must not know where bytes
//! go (S3, disk) or where batches come from (a warehouse); the runner connects it to both.
//!
//! Rejected alternative: DataFusion's `COPY TO` / `write_*` writers. They write whole files
//! through `object_store` with no hook for our multipart uploader, checksums, key templates or
//! file splitting, and no XML or Avro.

mod compress;
pub mod normalize;
mod parquet;
mod text;

pub use compress::Compressed;

use ::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use ::parquet::file::properties::WriterProperties;
use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow_avro::compression::CompressionCodec;
use arrow_avro::writer::format::AvroOcfFormat;
use parquet::ParallelParquetWriter;
use std::io::{self, Write};
use text::{CsvEncoder, ParallelText, TextKind};
use wharf_domain::{FileFormat, FileSettings, ParquetCompression};

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot write {format}: {source}")]
    Arrow {
        format: FileFormat,
        source: ArrowError,
    },
    #[error("cannot write parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error("cannot write avro: {0}")]
    Avro(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{format} cannot hold column {column:?} of type {data_type}{hint}")]
    Unsupported {
        format: FileFormat,
        column: String,
        data_type: String,
        hint: &'static str,
    },
}

impl FormatError {
    /// The I/O error underneath, if the failure came from the sink (e.g. the upload stopped).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Largest encoded row group kept in memory before it is written out (Parquet).
const MAX_ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

enum Inner<W: Write + Send> {
    Parquet(Box<ParallelParquetWriter<W>>),
    Text(Box<ParallelText<W>>),
    Avro(arrow_avro::writer::Writer<W, AvroOcfFormat>),
}

/// One file being written. Feed it batches of the schema it was made with; `finish` writes the
/// footer (Parquet), closing bracket (JSON), root end tag (XML), or header of an empty CSV, and
/// ends the compressed stream.
pub struct FileWriter<W: Write + Send> {
    inner: Inner<W>,
    format: FileFormat,
    /// The schema the file is written with.
    schema: SchemaRef,
    /// The schema batches are brought to before they are encoded: [`Self::schema`], or for
    /// the text formats the same with text views kept ([`normalize::with_text_views`]).
    encoded: SchemaRef,
    rows: u64,
    wrote_batch: bool,
}

impl<W: Write + Send> FileWriter<W> {
    /// `schema` is the schema of the batches that will be written (after column selection and
    /// renames).
    pub fn new(settings: &FileSettings, schema: &Schema, mut sink: W) -> Result<Self, FormatError> {
        let format = settings.format;
        check_types(format, schema)?;
        let names: Option<Vec<String>> = match format {
            FileFormat::Avro => Some(normalize::avro_names(
                schema.fields().iter().map(|f| f.name().as_str()),
            )),
            _ => None,
        };
        let nested_as_text = matches!(format, FileFormat::Csv | FileFormat::Xml);
        let file_schema = normalize::file_schema(schema, names.as_deref(), nested_as_text);
        let encoded = if format.is_text() {
            normalize::with_text_views(&file_schema, schema)
        } else {
            file_schema.clone()
        };
        let threads = encoding_threads();
        let inner = match format {
            FileFormat::Parquet => {
                let p = &settings.parquet;
                let compression = match p.compression {
                    ParquetCompression::Snappy => Compression::SNAPPY,
                    ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::try_new(3)?),
                    ParquetCompression::Gzip => Compression::GZIP(GzipLevel::default()),
                    ParquetCompression::Lz4 => Compression::LZ4_RAW,
                    ParquetCompression::None => Compression::UNCOMPRESSED,
                };
                let props = WriterProperties::builder()
                    .set_compression(compression)
                    .set_max_row_group_row_count(Some(p.row_group_rows))
                    .set_created_by(format!("wharf {}", env!("CARGO_PKG_VERSION")))
                    .build();
                Inner::Parquet(Box::new(ParallelParquetWriter::try_new(
                    sink,
                    file_schema.clone(),
                    props,
                    p.row_group_rows,
                    MAX_ROW_GROUP_BYTES,
                    threads,
                )?))
            }
            FileFormat::Csv => {
                let c = &settings.csv;
                let mut out = Compressed::new(settings.compression, sink, threads)?;
                if c.bom {
                    out.write_all(b"\xEF\xBB\xBF")?;
                }
                let builder = arrow::csv::WriterBuilder::new()
                    .with_delimiter(c.delimiter)
                    .with_quote(c.quote)
                    .with_null(c.null.clone())
                    .with_line_terminator(arrow::csv::writer::Terminator::CRLF);
                Inner::Text(Box::new(ParallelText::new(
                    out,
                    TextKind::Csv(CsvEncoder::new(c.delimiter, c.quote, &c.null), builder),
                    c.header,
                    threads,
                )?))
            }
            FileFormat::Ndjson | FileFormat::Json => {
                let layout = if format == FileFormat::Ndjson {
                    text::JsonLayout::Lines
                } else {
                    text::JsonLayout::Array
                };
                Inner::Text(Box::new(ParallelText::new(
                    Compressed::new(settings.compression, sink, threads)?,
                    TextKind::Json(text::JsonEncoder::new(layout)),
                    false,
                    threads,
                )?))
            }
            FileFormat::Xml => {
                let names = wharf_domain::xml_name::xml_names(
                    schema.fields().iter().map(|f| f.name().as_str()),
                );
                Inner::Text(Box::new(ParallelText::new(
                    Compressed::new(settings.compression, sink, threads)?,
                    TextKind::Xml(text::XmlEncoder::new(names, &settings.xml)),
                    false,
                    threads,
                )?))
            }
            FileFormat::Avro => {
                sink.flush()?;
                Inner::Avro(
                    arrow_avro::writer::WriterBuilder::new(file_schema.as_ref().clone())
                        .with_compression(Some(CompressionCodec::Deflate))
                        .build::<_, AvroOcfFormat>(sink)
                        .map_err(|e| FormatError::Avro(e.to_string()))?,
                )
            }
        };
        Ok(Self {
            inner,
            format,
            schema: file_schema,
            encoded,
            rows: 0,
            wrote_batch: false,
        })
    }

    /// The schema rows are written with (types normalised, Avro names made valid).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes held inside the encoder, not yet handed to the sink (a Parquet row group being
    /// built). Files are split on written + buffered bytes. Rows the Parquet writer gathers
    /// before encoding them are encoded first, so that they count.
    pub fn buffered_bytes(&mut self) -> Result<usize, FormatError> {
        Ok(match &mut self.inner {
            Inner::Parquet(w) => {
                w.encode_pending()?;
                w.in_progress_size()
            }
            _ => 0,
        })
    }

    /// At least [`Self::buffered_bytes`], without encoding the rows the Parquet writer
    /// gathers: enough to tell that a file is far below a size limit.
    pub fn buffered_bytes_high(&self) -> usize {
        match &self.inner {
            Inner::Parquet(w) => w.in_progress_size() + w.pending_size_high(),
            _ => 0,
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let format = self.format;
        let arrow = |source| FormatError::Arrow { format, source };
        let batch = normalize::conform(batch, &self.encoded).map_err(arrow)?;
        match &mut self.inner {
            Inner::Parquet(w) => w.write(&batch)?,
            Inner::Text(w) => w.write(&batch).map_err(arrow)?,
            Inner::Avro(w) => w
                .write(&batch)
                .map_err(|e| FormatError::Avro(e.to_string()))?,
        }
        self.rows += batch.num_rows() as u64;
        self.wrote_batch = true;
        Ok(())
    }

    /// Completes the file and returns the sink, with every byte of the file written to it.
    pub fn finish(self) -> Result<W, FormatError> {
        let format = self.format;
        let arrow = |source| FormatError::Arrow { format, source };
        Ok(match self.inner {
            Inner::Parquet(w) => w.into_inner()?,
            Inner::Text(w) => w.finish(&self.schema).map_err(arrow)?,
            Inner::Avro(mut w) => {
                w.finish().map_err(|e| FormatError::Avro(e.to_string()))?;
                w.into_inner()
            }
        })
    }
}

/// Threads that encode one file: the machine's cores, at most 4 (the query, compression and
/// uploads need some too). `WHARF_ENCODE_THREADS` overrides.
fn encoding_threads() -> usize {
    std::env::var("WHARF_ENCODE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
        .max(1)
}

/// Refuses, before anything is written, columns a format cannot hold.
fn check_types(format: FileFormat, schema: &Schema) -> Result<(), FormatError> {
    for field in schema.fields() {
        let dt = normalize::lake_type(field.data_type());
        let unsupported = |hint| {
            Err(FormatError::Unsupported {
                format,
                column: field.name().clone(),
                data_type: field.data_type().to_string(),
                hint,
            })
        };
        match format {
            FileFormat::Csv | FileFormat::Xml
                if matches!(
                    dt,
                    arrow::datatypes::DataType::Union(..) | arrow::datatypes::DataType::Map(..)
                ) =>
            {
                return unsupported(
                    ": lists and structs are written as JSON text here, but maps and unions are not (cast the column to a string in the model's SQL, or use parquet, json or avro)",
                );
            }
            FileFormat::Parquet if matches!(dt, arrow::datatypes::DataType::Union(..)) => {
                return unsupported(": Parquet has no union type");
            }
            FileFormat::Parquet | FileFormat::Avro
                if matches!(
                    dt,
                    arrow::datatypes::DataType::Decimal128(_, scale)
                        | arrow::datatypes::DataType::Decimal256(_, scale) if scale < 0
                ) =>
            {
                return unsupported(
                    ": its scale is negative, which Parquet and Avro decimals cannot hold (cast the column to a decimal with a scale of 0 or more in the model's SQL, e.g. CAST(x AS DECIMAL(38, 0)), or use csv or json)",
                );
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::ArrayRef;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    use wharf_domain::{CsvOptions, ParquetOptions, TextCompression, XmlOptions};

    fn settings(format: FileFormat) -> FileSettings {
        FileSettings {
            format,
            compression: TextCompression::None,
            csv: CsvOptions::default(),
            xml: XmlOptions::default(),
            parquet: ParquetOptions::default(),
        }
    }

    fn file(format: FileFormat, batch: &RecordBatch) -> Vec<u8> {
        let mut w = FileWriter::new(&settings(format), &batch.schema(), Vec::new()).expect("new");
        // Text views reach the text encoders as views (no cast), never the file's schema.
        for (i, field) in batch.schema().fields().iter().enumerate() {
            let encoded = w.encoded.field(i).data_type();
            let views = format.is_text() && field.data_type() == &DataType::Utf8View;
            assert_eq!(encoded == &DataType::Utf8View, views, "{format:?} {field}");
            assert_ne!(w.schema().field(i).data_type(), &DataType::Utf8View);
        }
        w.write(batch).expect("write");
        w.write(&batch.slice(0, 5)).expect("write");
        w.finish().expect("finish")
    }

    /// `batch` with its text views cast to plain strings: what the source gave before views.
    fn without_views(batch: &RecordBatch) -> RecordBatch {
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| match f.data_type() {
                DataType::Utf8View => (
                    f.as_ref().clone().with_data_type(DataType::Utf8),
                    arrow::compute::cast(c, &DataType::Utf8).expect("cast"),
                ),
                _ => (f.as_ref().clone(), c.clone()),
            })
            .unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
    }

    /// A negative decimal scale is refused before anything is written, naming the column and
    /// the way out, where the format has no such decimal; CSV writes it.
    #[test]
    fn a_negative_decimal_scale_is_refused_where_the_format_cannot_hold_it() {
        let column = arrow::array::Decimal128Array::from(vec![
            Some(123_i128),
            None,
            Some(-4),
            Some(0),
            Some(1),
            Some(7),
        ])
        .with_precision_and_scale(6, -2)
        .expect("decimal");
        let batch = RecordBatch::try_from_iter([("hundreds", Arc::new(column) as ArrayRef)])
            .expect("batch");
        for format in [FileFormat::Parquet, FileFormat::Avro] {
            let Err(e) = FileWriter::new(&settings(format), &batch.schema(), Vec::new()) else {
                panic!("{format:?} took a negative scale");
            };
            let text = e.to_string();
            assert!(
                text.contains("hundreds") && text.contains("scale") && text.contains("CAST"),
                "{text}"
            );
        }
        let csv = String::from_utf8(file(FileFormat::Csv, &batch)).expect("utf-8");
        assert!(csv.starts_with("hundreds\r\n12300\r\n"), "{csv:?}");
    }

    /// The text formats write text views as they come, not cast: the file is byte for byte the
    /// one the same rows as plain strings give. Parquet still writes plain strings.
    #[test]
    fn text_views_make_the_same_files_as_plain_strings() {
        let views = text::random::batch(11, 3000);
        assert!(
            views
                .schema()
                .fields()
                .iter()
                .any(|f| f.data_type() == &DataType::Utf8View)
        );
        let plain = without_views(&views);
        for format in [
            FileFormat::Csv,
            FileFormat::Ndjson,
            FileFormat::Json,
            FileFormat::Xml,
        ] {
            let written = file(format, &views);
            assert!(written.len() > 3000, "{format:?}");
            assert!(written == file(format, &plain), "{format:?} differs");
        }
        // Parquet has no negative decimal scales.
        let schema = views.schema();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|i| schema.field(*i).name() != "dec_neg_scale")
            .collect();
        let parquet = file(FileFormat::Parquet, &views.project(&keep).expect("project"));
        let reader = ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(parquet),
        )
        .expect("reader");
        assert_eq!(
            reader
                .schema()
                .field_with_name("view_text")
                .expect("column")
                .data_type(),
            &DataType::Utf8
        );
    }
}
