//! CSV rows written as bytes straight into a buffer: byte for byte what arrow's CSV writer (over
//! the `csv` crate, quote style "necessary", CRLF line ends) writes, at a fraction of the cost.
//!
//! Arrow formats every value through `fmt::Write` into a `String`, hands each row to the `csv`
//! crate as a record, which scans and copies it again. Here each column is resolved to its
//! concrete array once per batch, and each value is appended with `itoa`/`ryu`, a cached day
//! prefix for dates and timestamps, or one scan and copy for text. Types without a fast path
//! (binary, times, durations, intervals, 256-bit decimals...) and values arrow writes in an
//! unusual way (years past 9999) go through arrow's own formatter, so the output never differs.
//!
//! The differential tests in `tests` compare this writer with arrow's on random batches of
//! every type, with nulls, unicode and every character that needs quoting.

use super::values::{DayCache, write_decimal128};
use arrow::array::{
    Array, ArrayRef, AsArray as _, BooleanArray, Decimal128Array, GenericStringArray,
    PrimitiveArray, RecordBatch,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// The writer's settings, checked once: which bytes force a field into quotes.
#[derive(Clone)]
pub struct CsvEncoder {
    delimiter: u8,
    quote: u8,
    null: String,
    /// As the `csv` crate decides: the delimiter, the quote, `\r` and `\n`.
    special: Box<[bool; 256]>,
    /// Some byte a number, a date, a timestamp or a boolean can contain is special (a `.` or
    /// `-` delimiter): every value is checked, not only text.
    check_all: bool,
}

impl CsvEncoder {
    pub fn new(delimiter: u8, quote: u8, null: &str) -> Self {
        let mut special = Box::new([false; 256]);
        for b in [delimiter, quote, b'\r', b'\n'] {
            special[usize::from(b)] = true;
        }
        let check_all = b"0123456789+-.:eEinfatrulsNTZ"
            .iter()
            .any(|b| special[usize::from(*b)]);
        Self {
            delimiter,
            quote,
            null: null.to_string(),
            special,
            check_all,
        }
    }

    /// Appends the rows of `batch` (no header) to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let options = FormatOptions::default().with_null(&self.null);
        let mut columns = batch
            .columns()
            .iter()
            .map(|c| Column::new(c, &options))
            .collect::<Result<Vec<_>, _>>()?;
        let lone = columns.len() == 1;
        let mut scratch = String::new();
        for row in 0..batch.num_rows() {
            for (i, column) in columns.iter_mut().enumerate() {
                if i > 0 {
                    out.push(self.delimiter);
                }
                let start = out.len();
                self.value(column, row, out, &mut scratch)?;
                // The csv crate quotes a lone empty field, so the row is not an empty line.
                if lone && out.len() == start {
                    out.extend_from_slice(&[self.quote, self.quote]);
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    fn value(
        &self,
        column: &mut Column<'_>,
        row: usize,
        out: &mut Vec<u8>,
        scratch: &mut String,
    ) -> Result<(), ArrowError> {
        if column.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            self.text(self.null.as_bytes(), out);
            return Ok(());
        }
        let start = out.len();
        let written = match &mut column.kind {
            Kind::Utf8(a) => {
                self.text(a.value(row).as_bytes(), out);
                return Ok(());
            }
            Kind::LargeUtf8(a) => {
                self.text(a.value(row).as_bytes(), out);
                return Ok(());
            }
            Kind::Int8(a) => int(a, row, out),
            Kind::Int16(a) => int(a, row, out),
            Kind::Int32(a) => int(a, row, out),
            Kind::Int64(a) => int(a, row, out),
            Kind::UInt8(a) => int(a, row, out),
            Kind::UInt16(a) => int(a, row, out),
            Kind::UInt32(a) => int(a, row, out),
            Kind::UInt64(a) => int(a, row, out),
            Kind::Float32(a) => {
                out.extend_from_slice(ryu::Buffer::new().format(a.value(row)).as_bytes());
                true
            }
            Kind::Float64(a) => {
                out.extend_from_slice(ryu::Buffer::new().format(a.value(row)).as_bytes());
                true
            }
            Kind::Boolean(a) => {
                out.extend_from_slice(if a.value(row) { b"true" } else { b"false" });
                true
            }
            Kind::Date32(a, days) => days.write_date32(a.value(row), out),
            Kind::TimestampMicros(a, utc, days) => {
                days.write_timestamp_micros(a.value(row), *utc, out)
            }
            Kind::Decimal128(a, precision, scale) => {
                write_decimal128(a.value(row), *precision, *scale, out)
            }
            Kind::Other => false,
        };
        if !written {
            // Arrow's own formatter: every type, and the values the fast paths leave to it.
            out.truncate(start);
            scratch.clear();
            column
                .formatter
                .value(row)
                .write(scratch)
                .map_err(|e| ArrowError::CsvError(format!("row {}: {e}", row + 1)))?;
            self.text(scratch.as_bytes(), out);
        } else if self.check_all && out[start..].iter().any(|b| self.special[usize::from(*b)]) {
            scratch.clear();
            // Only ASCII was written by the fast paths.
            for b in &out[start..] {
                scratch.push(char::from(*b));
            }
            out.truncate(start);
            self.text(scratch.as_bytes(), out);
        }
        Ok(())
    }

    /// A field's text, in quotes (with quotes inside doubled) when it holds a special byte.
    fn text(&self, text: &[u8], out: &mut Vec<u8>) {
        if !text.iter().any(|b| self.special[usize::from(*b)]) {
            out.extend_from_slice(text);
            return;
        }
        out.reserve(text.len() + 2);
        out.push(self.quote);
        let mut rest = text;
        while let Some(at) = memchr::memchr(self.quote, rest) {
            out.extend_from_slice(&rest[..=at]);
            out.push(self.quote);
            rest = &rest[at + 1..];
        }
        out.extend_from_slice(rest);
        out.push(self.quote);
    }
}

fn int<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>, row: usize, out: &mut Vec<u8>) -> bool
where
    T::Native: itoa::Integer,
{
    out.extend_from_slice(itoa::Buffer::new().format(array.value(row)).as_bytes());
    true
}

/// A column resolved to its concrete array once per batch, with arrow's formatter for what the
/// fast paths leave.
struct Column<'a> {
    /// The validity bitmap, read inline (`Array::is_null` is a virtual call per value).
    nulls: Option<NullBuffer>,
    kind: Kind<'a>,
    formatter: ArrayFormatter<'a>,
}

enum Kind<'a> {
    Utf8(&'a GenericStringArray<i32>),
    LargeUtf8(&'a GenericStringArray<i64>),
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
    Date32(&'a PrimitiveArray<Date32Type>, DayCache),
    TimestampMicros(&'a PrimitiveArray<TimestampMicrosecondType>, bool, DayCache),
    Decimal128(&'a Decimal128Array, u8, i8),
    Other,
}

impl<'a> Column<'a> {
    fn new(array: &'a ArrayRef, options: &FormatOptions<'a>) -> Result<Self, ArrowError> {
        let kind = match array.data_type() {
            DataType::Utf8 => Kind::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Kind::LargeUtf8(array.as_string::<i64>()),
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
            DataType::Date32 => Kind::Date32(array.as_primitive(), DayCache::default()),
            // A file's timestamps are microseconds, zoned UTC or naive (normalize::lake_type).
            DataType::Timestamp(TimeUnit::Microsecond, zone)
                if zone.as_deref().is_none_or(|z| z == "UTC") =>
            {
                Kind::TimestampMicros(array.as_primitive(), zone.is_some(), DayCache::default())
            }
            DataType::Decimal128(precision, scale) => {
                Kind::Decimal128(array.as_primitive(), *precision, *scale)
            }
            DataType::Utf8View => Kind::Other,
            other if other.is_nested() => {
                return Err(ArrowError::CsvError(format!(
                    "Nested type {other} is not supported in CSV"
                )));
            }
            _ => Kind::Other,
        };
        Ok(Self {
            nulls: array.logical_nulls(),
            kind,
            formatter: ArrayFormatter::try_new(array.as_ref(), options)?,
        })
    }
}

#[cfg(test)]
mod tests;
