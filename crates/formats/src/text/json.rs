//! JSON rows (NDJSON and the JSON array) written as bytes straight into a buffer: byte for byte
//! what arrow-json's writer writes with explicit nulls, at a fraction of the cost.
//!
//! Arrow's writer encodes each row through a struct encoder that calls one boxed encoder per
//! value and writes every number with `lexical`. Here each column is resolved to its concrete
//! array once per batch ([`JsonEncoder`]), its key (`"name":`) prepared once, and each value
//! appended with `itoa`, the float writer of [`super::values`] (`lexical` for the floats it
//! writes with an exponent), a table of day prefixes for dates and timestamps, or, for text, a
//! lookup-table escape over whole runs of plain bytes. Types without a fast path (lists,
//! structs, maps, binary, times, other timestamp units...) go through arrow's own encoder built
//! with wharf's value encoders ([`FastValues`]), so the output never differs.
//!
//! The differential tests in `tests` compare both with arrow's plain writer on random batches
//! of every type, with nulls, unicode and every character JSON escapes.

use super::columns::{INLINE_MAX, inline_text};
use super::values::write_hundredths;
use super::values::{DayCache, write_decimal128};
use super::words::{any_word, has_byte_below, has_zero_byte, inline_words, repeat};
use arrow::array::{
    Array, AsArray as _, BooleanArray, Decimal128Array, GenericStringArray, PrimitiveArray,
    RecordBatch, StringViewArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Date32Type, FieldRef, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::error::ArrowError;
use arrow::json::writer::{NullableEncoder, make_encoder};
use arrow::json::{Encoder, EncoderFactory, EncoderOptions};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::Write as _;
use std::sync::Arc;

/// How rows are laid out in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonLayout {
    /// One object per line (NDJSON).
    Lines,
    /// One array of objects, `,` between them: `[` and `]` are the file's to write.
    Array,
}

/// Writes rows as JSON objects (see the module's documentation).
#[derive(Clone, Copy, Debug)]
pub struct JsonEncoder {
    layout: JsonLayout,
}

impl JsonEncoder {
    pub fn new(layout: JsonLayout) -> Self {
        Self { layout }
    }

    pub fn layout(&self) -> JsonLayout {
        self.layout
    }

    /// Appends the rows of `batch` to `out`. `first`: the first row is the file's first (no
    /// `,` before it in an array).
    pub fn encode(
        &self,
        batch: &RecordBatch,
        first: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ArrowError> {
        let schema = batch.schema();
        let options = EncoderOptions::default()
            .with_explicit_nulls(true)
            .with_encoder_factory(Arc::new(FastValues));
        let mut fields = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .enumerate()
            .map(|(i, (field, array))| Field::new(i, field, array.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            if self.layout == JsonLayout::Array && (row > 0 || !first) {
                out.push(b',');
            }
            if fields.is_empty() {
                out.push(b'{');
            }
            for field in &mut fields {
                field.key.push(out);
                field.value(row, out);
            }
            out.push(b'}');
            if self.layout == JsonLayout::Lines {
                out.push(b'\n');
            }
        }
        Ok(())
    }
}

/// What goes before a value: `{"name":` for the first column, `,"name":` for the others.
struct Key {
    text: Vec<u8>,
    /// The text padded to 16 bytes, when it fits: copied as a fixed 16 bytes and cut back to
    /// its length (a copy of a slice of unknown length is a `memcpy` call).
    short: Option<[u8; 16]>,
}

impl Key {
    fn new(first: bool, name: &str) -> Self {
        let mut text = vec![if first { b'{' } else { b',' }];
        write_json_string(name.as_bytes(), &mut text);
        text.push(b':');
        let short = (text.len() <= 16).then(|| {
            let mut bytes = [0; 16];
            bytes[..text.len()].copy_from_slice(&text);
            bytes
        });
        Self { text, short }
    }

    #[inline(always)]
    fn push(&self, out: &mut Vec<u8>) {
        match &self.short {
            Some(bytes) => {
                let start = out.len();
                out.extend_from_slice(bytes);
                out.truncate(start + self.text.len());
            }
            None => out.extend_from_slice(&self.text),
        }
    }
}

/// A column resolved to its concrete array once per batch.
struct Field<'a> {
    key: Key,
    /// The validity bitmap, read inline (not for [`Kind::Arrow`], whose encoder has its own).
    nulls: Option<NullBuffer>,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Utf8(Text<'a, i32>),
    LargeUtf8(Text<'a, i64>),
    Utf8View(TextView<'a>),
    Int8(&'a PrimitiveArray<Int8Type>),
    Int16(&'a PrimitiveArray<Int16Type>),
    Int32(&'a PrimitiveArray<Int32Type>),
    Int64(&'a PrimitiveArray<Int64Type>),
    UInt8(&'a PrimitiveArray<UInt8Type>),
    UInt16(&'a PrimitiveArray<UInt16Type>),
    UInt32(&'a PrimitiveArray<UInt32Type>),
    UInt64(&'a PrimitiveArray<UInt64Type>),
    Float32(&'a PrimitiveArray<Float32Type>),
    Float64(&'a PrimitiveArray<Float64Type>),
    Boolean(&'a BooleanArray),
    Date32(Date32<'a>),
    Timestamp(Timestamp<'a>),
    Decimal128(Decimal<'a>),
    /// Every other type, by arrow's encoder (with its own null check: a `Null` column's nulls
    /// are logical).
    Arrow(NullableEncoder<'a>),
}

impl<'a> Field<'a> {
    fn new(
        index: usize,
        field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> Result<Self, ArrowError> {
        let kind = match array.data_type() {
            DataType::Utf8 => Kind::Utf8(Text(array.as_string())),
            DataType::LargeUtf8 => Kind::LargeUtf8(Text(array.as_string())),
            DataType::Utf8View => Kind::Utf8View(TextView(array.as_string_view())),
            DataType::Int8 => Kind::Int8(array.as_primitive()),
            DataType::Int16 => Kind::Int16(array.as_primitive()),
            DataType::Int32 => Kind::Int32(array.as_primitive()),
            DataType::Int64 => Kind::Int64(array.as_primitive()),
            DataType::UInt8 => Kind::UInt8(array.as_primitive()),
            DataType::UInt16 => Kind::UInt16(array.as_primitive()),
            DataType::UInt32 => Kind::UInt32(array.as_primitive()),
            DataType::UInt64 => Kind::UInt64(array.as_primitive()),
            DataType::Float32 => Kind::Float32(array.as_primitive()),
            DataType::Float64 => Kind::Float64(array.as_primitive()),
            DataType::Boolean => Kind::Boolean(array.as_boolean()),
            DataType::Date32 => Kind::Date32(Date32 {
                array: array.as_primitive(),
                days: DayCache::default(),
                fallback: fallback(array)?,
            }),
            DataType::Timestamp(TimeUnit::Microsecond, zone)
                if zone.as_deref().is_none_or(|z| z == "UTC") =>
            {
                Kind::Timestamp(Timestamp {
                    array: array.as_primitive(),
                    utc: zone.is_some(),
                    days: DayCache::default(),
                    fallback: fallback(array)?,
                })
            }
            DataType::Decimal128(precision, scale) => Kind::Decimal128(Decimal {
                array: array.as_primitive(),
                precision: *precision,
                scale: *scale,
                fallback: fallback(array)?,
            }),
            _ => Kind::Arrow(make_encoder(field, array, options)?),
        };
        Ok(Self {
            key: Key::new(index == 0, field.name()),
            nulls: array.nulls().cloned(),
            kind,
        })
    }

    #[inline(always)]
    fn value(&mut self, row: usize, out: &mut Vec<u8>) {
        let null = match &self.kind {
            Kind::Arrow(encoder) => encoder.is_null(row),
            _ => self.nulls.as_ref().is_some_and(|n| n.is_null(row)),
        };
        if null {
            out.extend_from_slice(b"null");
            return;
        }
        match &mut self.kind {
            Kind::Utf8(e) => e.encode(row, out),
            Kind::LargeUtf8(e) => e.encode(row, out),
            Kind::Utf8View(e) => e.encode(row, out),
            Kind::Int8(a) => int(a.value(row), out),
            Kind::Int16(a) => int(a.value(row), out),
            Kind::Int32(a) => int(a.value(row), out),
            Kind::Int64(a) => int(a.value(row), out),
            Kind::UInt8(a) => int(a.value(row), out),
            Kind::UInt16(a) => int(a.value(row), out),
            Kind::UInt32(a) => int(a.value(row), out),
            Kind::UInt64(a) => int(a.value(row), out),
            Kind::Float32(a) => json_f32(a.value(row), out),
            Kind::Float64(a) => json_f64(a.value(row), out),
            Kind::Boolean(a) => {
                out.extend_from_slice(if a.value(row) { b"true" } else { b"false" });
            }
            Kind::Date32(e) => e.encode(row, out),
            Kind::Timestamp(e) => e.encode(row, out),
            Kind::Decimal128(e) => e.encode(row, out),
            Kind::Arrow(encoder) => encoder.encode(row, out),
        }
    }
}

fn int(value: impl itoa::Integer, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// An `f64` as arrow-json writes it: `null` when not finite, else `lexical`'s digits (plain
/// from 1e-5 to 1e10, `1.0e10` beyond). Amounts with at most two decimals are written from
/// their integer hundredths ([`write_hundredths`]): lexical writes the same digits for them, the
/// one decimal of two places that reads back as the value (none lies halfway between two
/// doubles below 2^46). Other values go to lexical, not ryu or zmij: those accept digits that
/// lie exactly halfway to the next float, lexical does not (`157114200.0` against
/// `157114210.0` for the same `f32`).
fn json_f64(value: f64, out: &mut Vec<u8>) {
    if !value.is_finite() {
        out.extend_from_slice(b"null");
    } else if !(value.abs() < 1e10 && write_hundredths(value, out)) {
        lexical(value, out);
    }
}

/// An `f32` as arrow-json writes it (see [`json_f64`]).
fn json_f32(value: f32, out: &mut Vec<u8>) {
    if value.is_finite() {
        lexical(value, out);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn lexical<N: lexical_core::ToLexical>(value: N, out: &mut Vec<u8>) {
    let mut buffer = [0u8; lexical_core::BUFFER_SIZE];
    out.extend_from_slice(lexical_core::write(value, &mut buffer));
}

/// Arrow's JSON encoders with wharf's value encoders: for the values of nested columns (lists,
/// structs, maps), which [`JsonEncoder`] leaves to arrow.
#[derive(Debug)]
pub struct FastValues;

impl EncoderFactory for FastValues {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        // Custom date or timestamp formats: arrow's formatter, as configured.
        let default_formats = options.date_format().is_none()
            && options.timestamp_format().is_none()
            && options.timestamp_tz_format().is_none();
        let encoder: Box<dyn Encoder + 'a> = match array.data_type() {
            DataType::Utf8 => Box::new(Text(array.as_string::<i32>())),
            DataType::LargeUtf8 => Box::new(Text(array.as_string::<i64>())),
            DataType::Utf8View => Box::new(TextView(array.as_string_view())),
            DataType::Date32 if default_formats => Box::new(Date32 {
                array: array.as_primitive(),
                days: DayCache::default(),
                fallback: fallback(array)?,
            }),
            DataType::Timestamp(TimeUnit::Microsecond, zone)
                if default_formats && zone.as_deref().is_none_or(|z| z == "UTC") =>
            {
                Box::new(Timestamp {
                    array: array.as_primitive(),
                    utc: zone.is_some(),
                    days: DayCache::default(),
                    fallback: fallback(array)?,
                })
            }
            DataType::Decimal128(precision, scale) => Box::new(Decimal {
                array: array.as_primitive(),
                precision: *precision,
                scale: *scale,
                fallback: fallback(array)?,
            }),
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(encoder, array.nulls().cloned())))
    }
}

/// Arrow's formatter for a value the fast path leaves to it, as arrow-json builds it.
fn fallback(array: &dyn Array) -> Result<ArrayFormatter<'_>, ArrowError> {
    ArrayFormatter::try_new(array, &FormatOptions::new().with_display_error(true))
}

struct Text<'a, O: arrow::array::OffsetSizeTrait>(&'a GenericStringArray<O>);

impl<O: arrow::array::OffsetSizeTrait> Encoder for Text<'_, O> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        write_json_string(self.0.value(idx).as_bytes(), out);
    }
}

/// Text as the local source reads it, written from the views.
struct TextView<'a>(&'a StringViewArray);

impl Encoder for TextView<'_> {
    #[inline]
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let view = self.0.views()[idx];
        if view as u32 > INLINE_MAX {
            return write_json_string(self.0.value(idx).as_bytes(), out);
        }
        // Inline text: checked as two words, not byte by byte.
        let (bytes, len) = inline_text(view);
        if inline_words(view, len, b' ')
            .iter()
            .any(|w| escaped_in_word(*w))
        {
            return write_json_string(&bytes[4..4 + len], out);
        }
        // In quotes, as one fixed 16-byte copy cut back to its length.
        let text = (view >> 32) & ((1u128 << (8 * len)) - 1);
        let quoted = text << 8 | u128::from(b'"') | u128::from(b'"') << (8 * (len + 1));
        let start = out.len();
        out.extend_from_slice(&quoted.to_le_bytes());
        out.truncate(start + len + 2);
    }
}

struct Date32<'a> {
    array: &'a PrimitiveArray<Date32Type>,
    days: DayCache,
    fallback: ArrayFormatter<'a>,
}

impl Encoder for Date32<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        if !self.days.write_date32(self.array.value(idx), out) {
            let _ = write!(out, "{}", self.fallback.value(idx));
        }
        out.push(b'"');
    }
}

struct Timestamp<'a> {
    array: &'a PrimitiveArray<TimestampMicrosecondType>,
    utc: bool,
    days: DayCache,
    fallback: ArrayFormatter<'a>,
}

impl Encoder for Timestamp<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        let start = out.len();
        if !self
            .days
            .write_timestamp_micros(self.array.value(idx), self.utc, out)
        {
            out.truncate(start);
            let _ = write!(out, "{}", self.fallback.value(idx));
        }
        out.push(b'"');
    }
}

struct Decimal<'a> {
    array: &'a Decimal128Array,
    precision: u8,
    scale: i8,
    fallback: ArrayFormatter<'a>,
}

impl Encoder for Decimal<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let start = out.len();
        if !write_decimal128(self.array.value(idx), self.precision, self.scale, out) {
            out.truncate(start);
            let _ = write!(out, "{}", self.fallback.value(idx));
        }
    }
}

/// What follows a `\` for each byte that JSON strings escape (`u`: as `\u00XX`); 0: as is.
/// The same choice as serde_json, which arrow uses: `"`, `\` and the control characters.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether a word holds a byte JSON escapes: a control character, `"` or `\`.
fn escaped_in_word(word: u64) -> bool {
    has_byte_below(word, 0x20)
        || has_zero_byte(word ^ repeat(b'"'))
        || has_zero_byte(word ^ repeat(b'\\'))
}

/// `text` as a JSON string: quoted, copied whole when nothing in it is escaped (checked a word
/// at a time), else runs of plain bytes copied whole.
pub(crate) fn write_json_string(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push(b'"');
    if !any_word(text, escaped_in_word)
        .unwrap_or_else(|| text.iter().any(|b| ESCAPE[usize::from(*b)] != 0))
    {
        out.extend_from_slice(text);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&text[run..i]);
        run = i + 1;
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
    }
    out.extend_from_slice(&text[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests;
