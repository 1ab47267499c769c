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

use super::columns::{Column, Value};
use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow::util::display::FormatOptions;

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
        if let Some(field) = batch
            .schema()
            .fields()
            .iter()
            .find(|f| f.data_type().is_nested())
        {
            return Err(ArrowError::CsvError(format!(
                "Nested type {} is not supported in CSV",
                field.data_type()
            )));
        }
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
        if column.is_null(row) {
            self.text(self.null.as_bytes(), out);
            return Ok(());
        }
        let start = out.len();
        match column.write(row, out, scratch)? {
            Value::Text(text) => self.text(text, out),
            Value::Formatted => self.text(scratch.as_bytes(), out),
            Value::Written => {
                if self.check_all && out[start..].iter().any(|b| self.special[usize::from(*b)]) {
                    scratch.clear();
                    // Only ASCII was written by the fast paths.
                    for b in &out[start..] {
                        scratch.push(char::from(*b));
                    }
                    out.truncate(start);
                    self.text(scratch.as_bytes(), out);
                }
            }
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

#[cfg(test)]
mod tests;
