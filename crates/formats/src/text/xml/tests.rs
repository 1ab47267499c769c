//! The byte writer against the first XML writer (arrow's formatter per value, escaping per
//! `char`), byte for byte.

use super::{XmlEncoder, escape_into};
use crate::text::random;
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use std::sync::Arc;
use wharf_domain::XmlOptions;

/// The first writer's rows, kept as the reference.
fn reference(batch: &RecordBatch, names: &[String], options: &XmlOptions) -> String {
    fn escape(text: &str, out: &mut String) {
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
    let format_options = FormatOptions::new();
    let formatters: Vec<ArrayFormatter> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &format_options).expect("formatter"))
        .collect();
    let mut buf = String::new();
    let mut value = String::new();
    for row in 0..batch.num_rows() {
        buf.push_str(&format!("<{}>", options.row));
        for (i, formatter) in formatters.iter().enumerate() {
            if batch.column(i).is_null(row) {
                continue;
            }
            value.clear();
            formatter.value(row).write(&mut value).expect("format");
            buf.push_str(&format!("<{}>", names[i]));
            escape(&value, &mut buf);
            buf.push_str(&format!("</{}>", names[i]));
        }
        buf.push_str(&format!("</{}>\n", options.row));
    }
    buf
}

fn ours(batch: &RecordBatch, names: &[String], options: &XmlOptions) -> String {
    let mut out = Vec::new();
    XmlEncoder::new(names.to_vec(), options)
        .encode(batch, &mut out)
        .expect("encode");
    String::from_utf8(out).expect("UTF-8")
}

fn names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

#[test]
fn random_batches_of_every_type_are_written_as_the_first_writer_wrote_them() {
    let options = XmlOptions::default();
    for seed in 0..20 {
        let batch = random::batch(seed, 300);
        let names = names(&batch);
        let want = reference(&batch, &names, &options);
        let got = ours(&batch, &names, &options);
        if got != want {
            let (w, g) = want
                .lines()
                .zip(got.lines())
                .find(|(w, g)| w != g)
                .unwrap_or_default();
            panic!("seed {seed}: first differing row\n first: {w}\n  ours: {g}");
        }
    }
}

#[test]
fn the_root_and_row_names_are_honoured() {
    let options = XmlOptions {
        root: "customers".into(),
        row: "customer".into(),
    };
    let batch = random::batch(7, 20);
    let names = names(&batch);
    assert_eq!(
        ours(&batch, &names, &options),
        reference(&batch, &names, &options)
    );
    let encoder = XmlEncoder::new(names, &options);
    assert_eq!(
        encoder.header(),
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<customers>\n".to_vec()
    );
    assert_eq!(encoder.footer(), b"</customers>\n".to_vec());
}

#[test]
fn escapes() {
    let mut out = Vec::new();
    escape_into(
        "a<b>&c\r\n\u{0}\u{1}\t\u{FFFF}é🌍\u{FFFE}\u{FFFD}\u{F000}\u{EFFF}".as_bytes(),
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).expect("UTF-8"),
        "a&lt;b&gt;&amp;c&#13;\n\u{FFFD}\u{FFFD}\t\u{FFFD}é🌍\u{FFFD}\u{FFFD}\u{F000}\u{EFFF}"
    );
}

#[test]
fn every_character_class_at_a_value_end_is_escaped_like_the_first_writer() {
    // A special byte last in a value, and a 0xEF lead byte with its continuation cut short by
    // the value's end, must not read past the value.
    let values = [
        "&",
        "x\r",
        "\u{FFFF}",
        "ab\u{FFFE}",
        "\u{F8FF}",
        "\u{1F}",
        "",
    ];
    let column: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
    let batch = RecordBatch::try_from_iter([("v", column)]).expect("batch");
    let options = XmlOptions::default();
    let names = names(&batch);
    assert_eq!(
        ours(&batch, &names, &options),
        reference(&batch, &names, &options)
    );
}
