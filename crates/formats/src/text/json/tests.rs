//! wharf's JSON value encoders against arrow's own, byte for byte, in both JSON layouts.

use super::FastValues;
use crate::text::random;
use arrow::array::{
    ArrayRef, Decimal128Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Fields};
use arrow::json::writer::{JsonArray, JsonFormat, LineDelimited};
use std::sync::Arc;

fn write<F: JsonFormat>(batch: &RecordBatch, fast: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut builder = arrow::json::WriterBuilder::new().with_explicit_nulls(true);
    if fast {
        builder = builder.with_encoder_factory(Arc::new(FastValues));
    }
    let mut writer = builder.build::<_, F>(&mut out);
    writer.write(batch).expect("write");
    writer.finish().expect("finish");
    drop(writer);
    out
}

fn same(batch: &RecordBatch) {
    for (arrow, ours) in [
        (
            write::<LineDelimited>(batch, false),
            write::<LineDelimited>(batch, true),
        ),
        (
            write::<JsonArray>(batch, false),
            write::<JsonArray>(batch, true),
        ),
    ] {
        if arrow != ours {
            let arrow = String::from_utf8_lossy(&arrow);
            let ours = String::from_utf8_lossy(&ours);
            let (a, o) = arrow
                .split('\n')
                .zip(ours.split('\n'))
                .find(|(a, o)| a != o)
                .unwrap_or_default();
            panic!("first differing line\n arrow: {a}\n  ours: {o}");
        }
    }
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
    let line = write::<LineDelimited>(&batch, true);
    let first = String::from_utf8_lossy(&line);
    assert!(first.starts_with(r#"{"t":"\u0000\u0001"#), "{first}");
    assert!(
        first.contains(r#""ts":"1969-12-31T23:59:59.999999Z""#),
        "{first}"
    );
    assert!(first.contains(r#""d":-0.005"#), "{first}");
}
