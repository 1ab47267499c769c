//! wharf's JSON row and value encoders against arrow's own writer, byte for byte, in both JSON
//! layouts.

use super::{FastValues, JsonEncoder, JsonLayout, json_f32, json_f64};
use crate::Compressed;
use crate::text::{ParallelText, TextKind, random};
use arrow::array::{
    ArrayRef, Decimal128Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Fields};
use arrow::json::writer::{JsonArray, JsonFormat, LineDelimited};
use std::sync::Arc;

/// `batches` as arrow's writer writes them (explicit nulls), with wharf's value encoders when
/// `fast`.
fn write<F: JsonFormat>(batches: &[RecordBatch], fast: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut builder = arrow::json::WriterBuilder::new().with_explicit_nulls(true);
    if fast {
        builder = builder.with_encoder_factory(Arc::new(FastValues));
    }
    let mut writer = builder.build::<_, F>(&mut out);
    for batch in batches {
        writer.write(batch).expect("write");
    }
    writer.finish().expect("finish");
    drop(writer);
    out
}

/// Fails at the first byte where `ours` differs from `arrow`, showing 80 bytes around it.
fn assert_same(what: &str, arrow: &[u8], ours: &[u8]) {
    if arrow == ours {
        return;
    }
    let at = arrow
        .iter()
        .zip(ours)
        .position(|(a, o)| a != o)
        .unwrap_or(arrow.len().min(ours.len()));
    let context = |s: &[u8]| {
        String::from_utf8_lossy(&s[at.saturating_sub(80)..(at + 80).min(s.len())]).into_owned()
    };
    panic!(
        "{what}: first difference at byte {at}\n arrow: {:?}\n  ours: {:?}",
        context(arrow),
        context(ours)
    );
}

/// arrow's writer with and without wharf's value encoders, in both layouts.
fn same(batch: &RecordBatch) {
    let batches = std::slice::from_ref(batch);
    assert_same(
        "lines",
        &write::<LineDelimited>(batches, false),
        &write::<LineDelimited>(batches, true),
    );
    assert_same(
        "array",
        &write::<JsonArray>(batches, false),
        &write::<JsonArray>(batches, true),
    );
}

/// Lists and structs whose values go through the fast encoders too.
fn nested(seed: u64, rows: usize) -> RecordBatch {
    let flat = random::batch(seed, rows * 3);
    let ts = flat.column_by_name("ts_utc").expect("ts_utc").clone();
    let text = flat.column_by_name("text").expect("text").clone();
    let decimal = flat.column_by_name("dec_10_2").expect("decimal").clone();
    let item = Arc::new(Field::new("item", ts.data_type().clone(), true));
    let offsets = arrow::buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(3, rows));
    let list: ArrayRef = Arc::new(ListArray::new(item, offsets, ts, None));
    let fields = Fields::from(vec![
        Field::new("text", DataType::Utf8, true),
        Field::new("amount", decimal.data_type().clone(), true),
    ]);
    let structs: ArrayRef = Arc::new(StructArray::new(
        fields,
        vec![text.slice(0, rows), decimal.slice(0, rows)],
        None,
    ));
    RecordBatch::try_from_iter([("list", list), ("struct", structs)]).expect("batch")
}

#[test]
fn random_batches_of_every_type_are_written_as_arrow_writes_them() {
    for seed in 0..40 {
        same(&random::batch(seed, 300));
        same(&nested(seed, 100));
    }
}

#[test]
fn every_control_character_is_escaped_as_serde_json_does() {
    let all: String = (0u8..=0x7f).map(char::from).collect();
    let text: ArrayRef = Arc::new(StringArray::from(vec![
        Some(all.as_str()),
        Some("\"\\/\u{2028}🙂é"),
        None,
        Some(""),
    ]));
    let ts: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from(vec![Some(0), Some(-1), None, Some(1_500)])
            .with_timezone("UTC"),
    );
    let decimal: ArrayRef = Arc::new(
        Decimal128Array::from(vec![Some(-5), Some(0), None, Some(12345)])
            .with_precision_and_scale(5, 3)
            .expect("decimal"),
    );
    let batch =
        RecordBatch::try_from_iter([("t", text), ("ts", ts), ("d", decimal)]).expect("batch");
    same(&batch);
    let line = write::<LineDelimited>(std::slice::from_ref(&batch), true);
    let first = String::from_utf8_lossy(&line);
    assert!(first.starts_with(r#"{"t":"\u0000\u0001"#), "{first}");
    assert!(
        first.contains(r#""ts":"1969-12-31T23:59:59.999999Z""#),
        "{first}"
    );
    assert!(first.contains(r#""d":-0.005"#), "{first}");
}

/// The batches as arrow's plain writer writes them (explicit nulls, no wharf encoder), and as
/// [`ParallelText`] with [`JsonEncoder`] does, over `threads` threads.
fn rows_same(batches: &[RecordBatch], threads: usize) {
    for (layout, arrow) in [
        (JsonLayout::Lines, write::<LineDelimited>(batches, false)),
        (JsonLayout::Array, write::<JsonArray>(batches, false)),
    ] {
        let out = Compressed::new(wharf_domain::TextCompression::None, Vec::new(), threads)
            .expect("compressed");
        let kind = TextKind::Json(JsonEncoder::new(layout));
        let mut writer = ParallelText::new(out, kind, false, threads).expect("writer");
        for batch in batches {
            writer.write(batch).expect("write");
        }
        let schema = batches[0].schema();
        let ours = writer.finish(&schema).expect("finish");
        assert_same(&format!("{layout:?}, {threads} threads"), &arrow, &ours);
    }
}

#[test]
fn rows_of_random_batches_are_written_as_arrow_writes_them() {
    for seed in 0..30 {
        let batch = random::batch(seed, 300);
        // Batches of one row, of a few, and one big enough to be cut between threads.
        let big = random::batch(seed + 1000, 9_000);
        let batches = [batch.slice(0, 1), batch.slice(1, 299), big];
        rows_same(&batches, 1);
        rows_same(&batches, 3);
        rows_same(&[nested(seed, 100)], 2);
    }
}

#[test]
fn rows_without_columns_and_names_to_escape_are_written_as_arrow_writes_them() {
    let empty = RecordBatch::try_new_with_options(
        Arc::new(arrow::datatypes::Schema::empty()),
        vec![],
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(3)),
    )
    .expect("batch without columns");
    rows_same(&[empty.clone(), empty], 1);
    let value: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None]));
    let null: ArrayRef = Arc::new(arrow::array::NullArray::new(2));
    let batch = RecordBatch::try_from_iter([
        ("a \"quoted\" name, with a long tail\n", value.clone()),
        ("é", value),
        ("nothing", null),
    ])
    .expect("batch");
    rows_same(&[batch], 1);
}

/// Floats as arrow-json writes them: `lexical`, with `null` for what JSON cannot hold.
#[test]
fn floats_are_written_as_lexical_writes_them() {
    fn lexical<N: lexical_core::ToLexical>(value: N) -> Vec<u8> {
        let mut buffer = [0u8; lexical_core::BUFFER_SIZE];
        lexical_core::write(value, &mut buffer).to_vec()
    }
    let mut rng = random::Rng::new(7);
    let mut values = vec![
        0.0,
        -0.0,
        1.0,
        0.1,
        -0.05,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
    ];
    // Both sides of lexical's plain-digit range (the hundredths' edge is the upper one).
    for edge in [1e-5, 1e10] {
        let mut below = edge;
        let mut above = edge;
        for _ in 0..50 {
            values.extend([below, above, -below]);
            below = f64::next_down(below);
            above = f64::next_up(above);
        }
    }
    for _ in 0..200_000 {
        let bits = rng.next();
        values.push(f64::from_bits(bits));
        values.push((bits % 100_000_000) as f64 / 100.0);
        // Every magnitude from 1e-8 to 1e12.
        let magnitude = 10f64.powi((bits % 21) as i32 - 8);
        values.push(magnitude * (1.0 + (bits >> 11) as f64 / (1u64 << 53) as f64));
    }
    let mut out = Vec::new();
    for value in values {
        let want = if value.is_finite() {
            lexical(value)
        } else {
            b"null".to_vec()
        };
        out.clear();
        json_f64(value, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want),
            "{value:e}"
        );
        let single = value as f32;
        let want = if single.is_finite() {
            lexical(single)
        } else {
            b"null".to_vec()
        };
        out.clear();
        json_f32(single, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want),
            "{single:e}"
        );
    }
}
