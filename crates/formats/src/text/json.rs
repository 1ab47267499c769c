//! Faster value encoders for arrow's JSON writers (NDJSON and the JSON array), plugged in through
//! arrow-json's own [`EncoderFactory`]: arrow keeps the rows, objects, keys and numbers; wharf
//! writes the values arrow formats through `fmt` (dates, timestamps, decimals) as bytes, and
//! text with a lookup-table escape over whole runs of plain bytes. The output is byte for byte
//! arrow's (the differential tests in `tests` are the judge).

use super::columns::{INLINE_MAX, inline_text, push_inline};
use super::values::{DayCache, write_decimal128};
use super::words::{any_word, has_byte_below, has_zero_byte, inline_words, repeat};
use arrow::array::{
    Array, AsArray as _, Decimal128Array, GenericStringArray, PrimitiveArray, StringViewArray,
};
use arrow::datatypes::{DataType, Date32Type, FieldRef, TimeUnit, TimestampMicrosecondType};
use arrow::error::ArrowError;
use arrow::json::writer::NullableEncoder;
use arrow::json::{Encoder, EncoderFactory, EncoderOptions};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::Write as _;

/// The factory wharf's JSON writers are built with.
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
        out.push(b'"');
        push_inline(&bytes, len, out);
        out.push(b'"');
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
