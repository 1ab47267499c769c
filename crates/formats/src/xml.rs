//! XML: `<?xml?>`, a root element, one element per row, one child element per non-null column.

use arrow::array::{Array, RecordBatch};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::{self, Write};
use wharf_domain::XmlOptions;

/// Writes rows as XML 1.0 in UTF-8:
/// - column names become element names with [`wharf_domain::xml_name::xml_names`];
/// - a null is an absent element (a missing `<email>` means null; `<email></email>` is the
///   empty string);
/// - `&`, `<` and `>` are escaped; `\r` is written `&#13;` so parsers do not turn `\r\n` into
///   `\n`; characters XML 1.0 forbids even as references (U+0000-U+0008, U+000B, U+000C,
///   U+000E-U+001F, U+FFFE, U+FFFF) are replaced by U+FFFD;
/// - values are formatted like CSV: ISO-8601 dates and timestamps, lists as `[1, 2]`, binary as
///   hex.
pub struct XmlWriter<W: Write> {
    out: W,
    names: Vec<String>,
    options: XmlOptions,
    buf: String,
}

impl<W: Write> XmlWriter<W> {
    pub fn new(mut out: W, columns: Vec<String>, options: &XmlOptions) -> io::Result<Self> {
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{}>\n",
            options.root
        )?;
        Ok(Self {
            out,
            names: columns,
            options: options.clone(),
            buf: String::with_capacity(64 * 1024),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let options = FormatOptions::new();
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        let mut value = String::new();
        for row in 0..batch.num_rows() {
            self.buf.push('<');
            self.buf.push_str(&self.options.row);
            self.buf.push('>');
            for (i, formatter) in formatters.iter().enumerate() {
                if batch.column(i).is_null(row) {
                    continue;
                }
                value.clear();
                formatter
                    .value(row)
                    .write(&mut value)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                let name = &self.names[i];
                self.buf.push('<');
                self.buf.push_str(name);
                self.buf.push('>');
                escape_into(&value, &mut self.buf);
                self.buf.push_str("</");
                self.buf.push_str(name);
                self.buf.push('>');
            }
            self.buf.push_str("</");
            self.buf.push_str(&self.options.row);
            self.buf.push_str(">\n");
            if self.buf.len() >= 60 * 1024 {
                self.out.write_all(self.buf.as_bytes())?;
                self.buf.clear();
            }
        }
        self.out.write_all(self.buf.as_bytes())?;
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        writeln!(self.out, "</{}>", self.options.root)?;
        Ok(self.out)
    }
}

/// Escapes text content for XML 1.0 (see [`XmlWriter`]).
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut out = String::new();
        escape_into("a<b>&c\r\n\u{0}\u{1}\t\u{FFFF}é🌍", &mut out);
        assert_eq!(out, "a&lt;b&gt;&amp;c&#13;\n\u{FFFD}\u{FFFD}\t\u{FFFD}é🌍");
    }
}
