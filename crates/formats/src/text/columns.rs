//! A batch's columns resolved once to their concrete arrays, each value appended as the bytes
//! arrow's `ArrayFormatter` (default options) would write: the fast paths of [`super::values`]
//! where there is one, arrow's formatter for the rest. Shared by the CSV and XML encoders, which
//! differ only in how they quote or escape what this writes.

use super::values::{DayCache, write_decimal128, write_f64, write_float};
use arrow::array::{
    Array, ArrayRef, AsArray as _, BooleanArray, Decimal128Array, GenericStringArray,
    PrimitiveArray, StringViewArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// What [`Column::write`] did with a value.
pub(crate) enum Value<'a> {
    /// A text value, not written: the caller quotes or escapes it.
    Text(&'a [u8]),
    /// A string view's text of at most 12 bytes, held in the view itself (see [`inline_text`]):
    /// a caller can check and copy it as whole words, not byte by byte.
    Inline(u128),
    /// Appended to `out` by a fast path: ASCII digits, signs, `.`, `:`, `-`, `T`, `Z`, `e`,
    /// `inf`, `NaN`, `true`, `false`; never a quote, an `&`, a `<` or a control character.
    Written,
    /// Written by arrow's formatter into the scratch string: any text, to quote or escape.
    Formatted,
}

/// A column resolved to its concrete array once per batch, with arrow's formatter for what the
/// fast paths leave.
pub(crate) struct Column<'a> {
    /// The validity bitmap, read inline (`Array::is_null` is a virtual call per value).
    nulls: Option<NullBuffer>,
    kind: Kind<'a>,
    formatter: ArrayFormatter<'a>,
}

enum Kind<'a> {
    Utf8(&'a GenericStringArray<i32>),
    LargeUtf8(&'a GenericStringArray<i64>),
    /// Text as the local source reads it: written from the views, never cast to `Utf8` first.
    Utf8View(&'a StringViewArray),
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
    /// `options` are the formatter's for the types without a fast path (the fast paths write
    /// what default options write).
    pub(crate) fn new(
        array: &'a ArrayRef,
        options: &FormatOptions<'a>,
    ) -> Result<Self, ArrowError> {
        let kind = match array.data_type() {
            DataType::Utf8 => Kind::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Kind::LargeUtf8(array.as_string::<i64>()),
            DataType::Utf8View => Kind::Utf8View(array.as_string_view()),
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
            _ => Kind::Other,
        };
        Ok(Self {
            nulls: array.logical_nulls(),
            kind,
            formatter: ArrayFormatter::try_new(array.as_ref(), options)?,
        })
    }

    #[inline(always)]
    pub(crate) fn is_null(&self, row: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n.is_null(row))
    }

    /// The value at `row` (not null): appended to `out`, formatted into `scratch`, or handed
    /// back as text (see [`Value`]).
    #[inline(always)]
    pub(crate) fn write(
        &mut self,
        row: usize,
        out: &mut Vec<u8>,
        scratch: &mut String,
    ) -> Result<Value<'a>, ArrowError> {
        let start = out.len();
        let written = match &mut self.kind {
            Kind::Utf8(a) => return Ok(Value::Text(a.value(row).as_bytes())),
            Kind::LargeUtf8(a) => return Ok(Value::Text(a.value(row).as_bytes())),
            Kind::Utf8View(a) => {
                // Bounds-checked here: `views()` is the array's own slice.
                let view = a.views()[row];
                if view as u32 <= INLINE_MAX {
                    return Ok(Value::Inline(view));
                }
                return Ok(Value::Text(a.value(row).as_bytes()));
            }
            Kind::Int8(a) => int(a, row, out),
            Kind::Int16(a) => int(a, row, out),
            Kind::Int32(a) => int(a, row, out),
            Kind::Int64(a) => int(a, row, out),
            Kind::UInt8(a) => int(a, row, out),
            Kind::UInt16(a) => int(a, row, out),
            Kind::UInt32(a) => int(a, row, out),
            Kind::UInt64(a) => int(a, row, out),
            Kind::Float32(a) => write_float(a.value(row), out),
            Kind::Float64(a) => write_f64(a.value(row), out),
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
        if written {
            return Ok(Value::Written);
        }
        // Arrow's own formatter: every type, and the values the fast paths leave to it.
        out.truncate(start);
        scratch.clear();
        self.formatter
            .value(row)
            .write(scratch)
            .map_err(|e| ArrowError::InvalidArgumentError(format!("row {}: {e}", row + 1)))?;
        Ok(Value::Formatted)
    }
}

/// The longest text a string view holds inline, in its bytes 4..16 after the length.
pub(crate) const INLINE_MAX: u32 = 12;

/// An inline view's text: its bytes (4..16 hold the text) and the text's length.
pub(crate) fn inline_text(view: u128) -> ([u8; 16], usize) {
    (view.to_le_bytes(), (view as u32).min(INLINE_MAX) as usize)
}

/// Appends an inline view's text (from [`inline_text`]) as a fixed 12-byte copy cut back to its
/// length: a copy of a slice of it would be a `memcpy` call.
#[inline(always)]
pub(crate) fn push_inline(bytes: &[u8; 16], len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&bytes[4..]);
    out.truncate(start + len);
}

fn int<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>, row: usize, out: &mut Vec<u8>) -> bool
where
    T::Native: itoa::Integer,
{
    out.extend_from_slice(itoa::Buffer::new().format(array.value(row)).as_bytes());
    true
}
