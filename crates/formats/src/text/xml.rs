//! XML: `<?xml?>`, a root element, one element per row, one child element per non-null column,
//! written as bytes straight into a buffer (values by [`super::columns`], as CSV's are).
//!
//! - column names become element names with [`wharf_domain::xml_name::xml_names`];
//! - a null is an absent element (a missing `<email>` means null; `<email></email>` is the
//!   empty string);
//! - `&`, `<` and `>` are escaped; `\r` is written `&#13;` so parsers do not turn `\r\n` into
//!   `\n`; characters XML 1.0 forbids even as references (U+0000-U+0008, U+000B, U+000C,
//!   U+000E-U+001F, U+FFFE, U+FFFF) are replaced by U+FFFD;
//! - values are formatted like CSV's: ISO-8601 dates and timestamps, binary as hex (lists and
//!   structs arrive as JSON text, see `normalize::file_schema`).
//!
//! The differential tests in `tests` compare it with the first XML writer (arrow's formatter per
//! value, escaping per `char`) on random batches.

use super::columns::{Column, Value, inline_text, push_inline};
use super::words::{any_word, has_byte_below, has_zero_byte, inline_words, repeat};
use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow::util::display::FormatOptions;
use wharf_domain::XmlOptions;

/// The element names, opening and closing tags prepared once.
#[derive(Clone)]
pub struct XmlEncoder {
    row_open: Vec<u8>,
    row_close: Vec<u8>,
    /// `<name>` and `</name>` of each column.
    columns: Vec<(Vec<u8>, Vec<u8>)>,
    root: String,
}

impl XmlEncoder {
    /// `names` are the columns' element names (already valid XML names).
    pub fn new(names: Vec<String>, options: &XmlOptions) -> Self {
        let tags = |name: &str| {
            (
                format!("<{name}>").into_bytes(),
                format!("</{name}>").into_bytes(),
            )
        };
        let (row_open, mut row_close) = tags(&options.row);
        row_close.push(b'\n');
        Self {
            row_open,
            row_close,
            columns: names.iter().map(|n| tags(n)).collect(),
            root: options.root.clone(),
        }
    }

    /// The XML declaration and the root's start tag.
    pub fn header(&self) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{}>\n",
            self.root
        )
        .into_bytes()
    }

    /// The root's end tag.
    pub fn footer(&self) -> Vec<u8> {
        format!("</{}>\n", self.root).into_bytes()
    }

    /// Appends the rows of `batch` to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        let options = FormatOptions::default();
        let mut columns = batch
            .columns()
            .iter()
            .map(|c| Column::new(c, &options))
            .collect::<Result<Vec<_>, _>>()?;
        let mut scratch = String::new();
        for row in 0..batch.num_rows() {
            out.extend_from_slice(&self.row_open);
            for (column, (open, close)) in columns.iter_mut().zip(&self.columns) {
                if column.is_null(row) {
                    continue;
                }
                out.extend_from_slice(open);
                match column.write(row, out, &mut scratch)? {
                    Value::Text(text) => escape_into(text, out),
                    Value::Inline(view) => {
                        let (bytes, len) = inline_text(view);
                        if inline_words(view, len, b'a')
                            .iter()
                            .any(|w| maybe_special(*w))
                        {
                            escape_into(&bytes[4..4 + len], out);
                        } else {
                            push_inline(&bytes, len, out);
                        }
                    }
                    Value::Formatted => escape_into(scratch.as_bytes(), out),
                    Value::Written => {}
                }
                out.extend_from_slice(close);
            }
            out.extend_from_slice(&self.row_close);
        }
        Ok(())
    }
}

/// Bytes that start something to escape: `&`, `<`, `>`, control bytes other than tab and line
/// feed, and 0xEF (the first byte of U+FFFE and U+FFFF, and of other characters kept as they
/// are).
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b != b'\t' as usize && b != b'\n' as usize;
        b += 1;
    }
    table[b'&' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[0xEF] = true;
    table
};

/// U+FFFD in UTF-8.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Whether a word may hold a [`SPECIAL`] byte: any control byte (tab and line feed too), `&`,
/// `<`, `>` or 0xEF. A hit is checked byte by byte.
fn maybe_special(word: u64) -> bool {
    has_byte_below(word, 0x20)
        || [b'&', b'<', b'>', 0xEF]
            .iter()
            .any(|b| has_zero_byte(word ^ repeat(*b)))
}

/// Escapes UTF-8 text content for XML 1.0 (see the module's rules), copying whole runs of
/// ordinary bytes; text with nothing to escape (checked a word at a time) is copied whole.
pub(crate) fn escape_into(text: &[u8], out: &mut Vec<u8>) {
    if any_word(text, maybe_special) == Some(false) {
        out.extend_from_slice(text);
        return;
    }
    let mut rest = text;
    while let Some(at) = rest.iter().position(|b| SPECIAL[usize::from(*b)]) {
        out.extend_from_slice(&rest[..at]);
        let mut width = 1;
        match rest[at] {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'\r' => out.extend_from_slice(b"&#13;"),
            0xEF => match rest.get(at + 1..at + 3) {
                Some([0xBF, 0xBE | 0xBF]) => {
                    out.extend_from_slice(REPLACEMENT);
                    width = 3;
                }
                _ => out.push(0xEF),
            },
            _ => out.extend_from_slice(REPLACEMENT),
        }
        rest = &rest[at + width..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests;
