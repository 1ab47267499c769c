//! CSV rows written as bytes straight into a buffer: byte for byte what arrow's CSV writer (over
//! the `csv` crate, quote style "necessary", CRLF line ends) writes, at a fraction of the cost.
//!
//! Arrow formats every value through `fmt::Write` into a `String`, hands each row to the `csv`
//! crate as a record, which scans and copies it again. Here each column is resolved to its
//! concrete array once per batch, and each value is appended with `itoa`, a float writer, a
//! cached day prefix for dates and timestamps, or, for text, a check eight bytes at a time and
//! one copy (a fixed 12-byte copy for text held inline in a string view). Types without a fast path
//! (binary, times, durations, intervals, 256-bit decimals...) and values arrow writes in an
//! unusual way (years past 9999) go through arrow's own formatter, so the output never differs.
//!
//! The differential tests in `tests` compare this writer with arrow's on random batches of
//! every type, with nulls, unicode and every character that needs quoting.

use super::columns::{Column, Value, inline_text, push_inline};
use super::words::{any_word, has_zero_byte, inline_words, repeat};
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
    /// The same four bytes, each repeated over a word: text is checked eight bytes at a time.
    words: [u64; 4],
    /// A byte that is not special, to fill the rest of an inline view's words.
    plain: u8,
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
            words: [delimiter, quote, b'\r', b'\n'].map(repeat),
            // Of three bytes, the two that can be set leave one.
            plain: *b"abc"
                .iter()
                .find(|b| ![delimiter, quote].contains(b))
                .unwrap_or(&b'a'),
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
            Value::Inline(view) => self.inline(view, out),
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

    /// Whether any of the 8 bytes of `word` is special.
    fn special_in_word(&self, word: u64) -> bool {
        self.words.iter().any(|w| has_zero_byte(word ^ w))
    }

    fn has_special(&self, text: &[u8]) -> bool {
        any_word(text, |w| self.special_in_word(w))
            .unwrap_or_else(|| text.iter().any(|b| self.special[usize::from(*b)]))
    }

    /// An inline view's text: checked as two words, not byte by byte, and copied whole.
    fn inline(&self, view: u128, out: &mut Vec<u8>) {
        let (bytes, len) = inline_text(view);
        if inline_words(view, len, self.plain)
            .iter()
            .any(|w| self.special_in_word(*w))
        {
            self.text(&bytes[4..4 + len], out);
            return;
        }
        push_inline(&bytes, len, out);
    }

    /// A field's text, in quotes (with quotes inside doubled) when it holds a special byte.
    fn text(&self, text: &[u8], out: &mut Vec<u8>) {
        if !self.has_special(text) {
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
