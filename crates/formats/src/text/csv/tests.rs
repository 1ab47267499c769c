//! The fast CSV writer against arrow's, byte for byte.

use super::CsvEncoder;
use crate::text::random;
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use std::sync::Arc;

fn arrow_csv(batch: &RecordBatch, delimiter: u8, quote: u8, null: &str) -> Vec<u8> {
    let mut out = Vec::new();
    arrow::csv::WriterBuilder::new()
        .with_header(false)
        .with_delimiter(delimiter)
        .with_quote(quote)
        .with_null(null.to_string())
        .with_line_terminator(arrow::csv::writer::Terminator::CRLF)
        .build(&mut out)
        .write(batch)
        .expect("arrow writes the batch");
    out
}

fn ours(batch: &RecordBatch, delimiter: u8, quote: u8, null: &str) -> Vec<u8> {
    let mut out = Vec::new();
    CsvEncoder::new(delimiter, quote, null)
        .encode(batch, &mut out)
        .expect("encode");
    out
}

fn same(batch: &RecordBatch, delimiter: u8, quote: u8, null: &str) {
    let want = arrow_csv(batch, delimiter, quote, null);
    let got = ours(batch, delimiter, quote, null);
    if got != want {
        let want = String::from_utf8_lossy(&want);
        let got = String::from_utf8_lossy(&got);
        let (w, g) = want
            .split("\r\n")
            .zip(got.split("\r\n"))
            .find(|(w, g)| w != g)
            .unwrap_or_default();
        panic!(
            "delimiter {:?} quote {:?} null {null:?}: first differing row\n arrow: {w}\n  ours: {g}",
            char::from(delimiter),
            char::from(quote)
        );
    }
}

#[test]
fn random_batches_of_every_type_are_written_as_arrow_writes_them() {
    for seed in 0..40 {
        let batch = random::batch(seed, 300);
        same(&batch, b',', b'"', "");
    }
}

#[test]
fn every_delimiter_quote_and_null_text_is_honoured() {
    let batch = random::batch(99, 500);
    for (delimiter, quote) in [
        (b';', b'"'),
        (b'\t', b'"'),
        (b'|', b'\''),
        (b'.', b'"'),
        (b'-', b'"'),
        (b':', b'"'),
        (b'e', b'"'),
        (b'1', b'"'),
        (b',', b'T'),
        (b'\0', b'"'),
    ] {
        for null in ["", "NULL", "\\N"] {
            same(&batch, delimiter, quote, null);
        }
    }
}

#[test]
fn a_lone_empty_field_is_quoted_so_the_row_is_not_an_empty_line() {
    let column: ArrayRef = Arc::new(StringArray::from(vec![Some(""), None, Some("x"), Some("")]));
    let batch = RecordBatch::try_from_iter([("only", column)]).expect("batch");
    assert_eq!(
        ours(&batch, b',', b'"', ""),
        b"\"\"\r\n\"\"\r\nx\r\n\"\"\r\n"
    );
    same(&batch, b',', b'"', "");
    same(&batch, b',', b'"', "NULL");
    for seed in 0..5 {
        let wide = random::batch(seed, 200);
        for i in 0..wide.num_columns() {
            same(&wide.project(&[i]).expect("one column"), b',', b'"', "");
        }
    }
}
