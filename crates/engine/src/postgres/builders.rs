//! One batch's column builders, typed once per batch: a value is appended after one `match`
//! on its column's kind, never a downcast, and text is gathered as bytes and checked as UTF-8
//! once per column when the batch ends (a check per value cost more than the rest of its
//! decoding). Array columns keep arrow's dynamic builders (`columns::append_array`).

use super::columns::{self, Column, Reader, Scalar};
use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringArray,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, make_builder,
};
use std::sync::Arc;

/// Bytes of text set aside per row of a text column, before its values are seen.
const TEXT_BYTES_PER_ROW: usize = 16;

pub(crate) enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, i8),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    /// Text of any kind (`Text`, `Jsonb`, `NumericText`, `Uuid`, `Interval`, read as text),
    /// checked as UTF-8 by [`Builder::finish`].
    Text(Scalar, BinaryBuilder),
    Bytea(BinaryBuilder),
    Array(Scalar, Box<dyn ArrayBuilder>),
}

impl Builder {
    /// A builder for `column`'s values, with room for `rows`.
    pub(crate) fn new(column: &Column, rows: usize) -> Self {
        let text = |kind| {
            Builder::Text(
                kind,
                BinaryBuilder::with_capacity(rows, rows * TEXT_BYTES_PER_ROW),
            )
        };
        let kind = match column.reader {
            Reader::Scalar(kind) => kind,
            Reader::AsText => return text(Scalar::Text),
            Reader::Array(kind) => {
                return Builder::Array(kind, make_builder(column.field.data_type(), rows));
            }
        };
        match kind {
            Scalar::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Scalar::I16 => Builder::I16(Int16Builder::with_capacity(rows)),
            Scalar::I32 => Builder::I32(Int32Builder::with_capacity(rows)),
            Scalar::I64 => Builder::I64(Int64Builder::with_capacity(rows)),
            Scalar::F32 => Builder::F32(Float32Builder::with_capacity(rows)),
            Scalar::F64 => Builder::F64(Float64Builder::with_capacity(rows)),
            Scalar::Decimal(_, scale) => Builder::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_data_type(column.field.data_type().clone()),
                scale,
            ),
            Scalar::Date => Builder::Date(Date32Builder::with_capacity(rows)),
            Scalar::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            Scalar::Timestamp | Scalar::TimestampTz => Builder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows)
                    .with_data_type(column.field.data_type().clone()),
            ),
            Scalar::Bytea => Builder::Bytea(BinaryBuilder::with_capacity(
                rows,
                rows * TEXT_BYTES_PER_ROW,
            )),
            Scalar::Text
            | Scalar::Jsonb
            | Scalar::NumericText
            | Scalar::Uuid
            | Scalar::Interval => text(kind),
        }
    }

    /// Appends one value in PostgreSQL's binary format (`None`: null).
    pub(crate) fn append(&mut self, raw: Option<&[u8]>) -> Result<(), String> {
        macro_rules! put {
            ($b:expr, $value:expr) => {
                match raw {
                    None => $b.append_null(),
                    Some(raw) => $b.append_value($value(raw)?),
                }
            };
        }
        match self {
            Builder::Bool(b) => put!(b, columns::boolean),
            Builder::I16(b) => put!(b, columns::int16),
            Builder::I32(b) => put!(b, columns::int32),
            Builder::I64(b) => put!(b, columns::int64),
            Builder::F32(b) => put!(b, columns::float32),
            Builder::F64(b) => put!(b, columns::float64),
            Builder::Decimal(b, scale) => put!(b, |r: &[u8]| columns::decimal(r, *scale)),
            Builder::Date(b) => put!(b, columns::date),
            Builder::Time(b) => put!(b, columns::int64),
            Builder::Timestamp(b) => put!(b, columns::timestamp),
            Builder::Bytea(b) => put!(b, columns::bytea),
            Builder::Text(kind, b) => match (raw, *kind) {
                (None, _) => b.append_null(),
                (Some(r), Scalar::Jsonb) => b.append_value(columns::jsonb_text(r)?),
                (Some(r), Scalar::NumericText) => b.append_value(columns::numeric_text(r)?),
                (Some(r), Scalar::Uuid) => b.append_value(columns::uuid(r)?),
                (Some(r), Scalar::Interval) => b.append_value(columns::interval_text(r)?),
                (Some(r), _) => b.append_value(r),
            },
            Builder::Array(kind, b) => return columns::append_array(*kind, b.as_mut(), raw),
        }
        Ok(())
    }

    /// The values appended since the last call, as an array of the column's type.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, String> {
        Ok(match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Decimal(b, _) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Bytea(b) => Arc::new(b.finish()),
            Builder::Text(_, b) => Arc::new(
                StringArray::try_from_binary(b.finish())
                    .map_err(|e| format!("text that is not UTF-8 ({e})"))?,
            ),
            Builder::Array(_, b) => b.finish(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use arrow::datatypes::{DataType, Field};

    fn column(reader: Reader, data_type: DataType) -> Column {
        Column {
            name: "c".into(),
            reader,
            field: Field::new("c", data_type, true),
        }
    }

    /// Values of one column through `Builder` and through the element decoder arrays use
    /// (`columns::append`, the one every column used before): the same array, or the same error.
    fn same_as_element_decoder(kind: Scalar, data_type: DataType, values: &[Option<Vec<u8>>]) {
        let mut typed = Builder::new(&column(Reader::Scalar(kind), data_type.clone()), 2);
        let mut dynamic = make_builder(&data_type, 2);
        let mut typed_error = None;
        let mut dynamic_error = None;
        for value in values {
            let raw = value.as_deref();
            if let Err(e) = typed.append(raw) {
                typed_error.get_or_insert(e);
            }
            if let Err(e) = columns::append(kind, dynamic.as_mut(), raw) {
                dynamic_error.get_or_insert(e);
            }
        }
        match (typed.finish(), dynamic_error) {
            (Ok(array), None) => {
                assert!(typed_error.is_none(), "{kind:?}: {typed_error:?}");
                let expected = dynamic.finish();
                assert_eq!(array.data_type(), &data_type, "{kind:?}");
                assert_eq!(array.to_data(), expected.to_data(), "{kind:?}");
            }
            (finished, Some(expected)) => {
                let error = typed_error.or(finished.err());
                let error =
                    error.unwrap_or_else(|| panic!("{kind:?}: no error, expected {expected}"));
                assert!(
                    error.contains("not UTF-8") == expected.contains("not UTF-8"),
                    "{kind:?}: {error} against {expected}"
                );
            }
            (Err(e), None) => panic!("{kind:?}: {e}, and the element decoder took every value"),
        }
    }

    #[test]
    fn every_kind_decodes_as_the_element_decoder_does() {
        let be = |b: &[u8]| Some(b.to_vec());
        let numeric = |digits: &[u16], weight: i16, dscale: u16| {
            let mut v = Vec::new();
            v.extend((digits.len() as u16).to_be_bytes());
            v.extend(weight.to_be_bytes());
            v.extend(0u16.to_be_bytes());
            v.extend(dscale.to_be_bytes());
            for d in digits {
                v.extend(d.to_be_bytes());
            }
            Some(v)
        };
        type Case = (Scalar, DataType, Vec<Option<Vec<u8>>>);
        let cases: Vec<Case> = vec![
            (
                Scalar::Bool,
                DataType::Boolean,
                vec![be(&[1]), None, be(&[0])],
            ),
            (
                Scalar::I16,
                DataType::Int16,
                vec![be(&(-7i16).to_be_bytes()), None],
            ),
            (
                Scalar::I32,
                DataType::Int32,
                vec![be(&i32::MIN.to_be_bytes()), None],
            ),
            (
                Scalar::I64,
                DataType::Int64,
                vec![None, be(&i64::MAX.to_be_bytes())],
            ),
            (
                Scalar::F32,
                DataType::Float32,
                vec![be(&1.5f32.to_be_bytes()), None],
            ),
            (
                Scalar::F64,
                DataType::Float64,
                vec![be(&f64::NAN.to_be_bytes()), None],
            ),
            (
                Scalar::Decimal(10, 2),
                DataType::Decimal128(10, 2),
                vec![numeric(&[12, 3400], 0, 2), None],
            ),
            (
                Scalar::NumericText,
                DataType::Utf8,
                vec![numeric(&[1, 5000], 0, 4), None],
            ),
            (
                Scalar::Text,
                DataType::Utf8,
                vec![be("été".as_bytes()), None, be(b"")],
            ),
            (
                Scalar::Jsonb,
                DataType::Utf8,
                vec![be(b"\x01{\"a\":1}"), None],
            ),
            (Scalar::Uuid, DataType::Utf8, vec![be(&[0xab; 16]), None]),
            (
                Scalar::Bytea,
                DataType::Binary,
                vec![be(&[0, 255, 1]), None],
            ),
            (
                Scalar::Date,
                DataType::Date32,
                vec![be(&(-3i32).to_be_bytes()), None],
            ),
            (
                Scalar::Time,
                DataType::Time64(arrow::datatypes::TimeUnit::Microsecond),
                vec![be(&86_399_000_000i64.to_be_bytes())],
            ),
            (
                Scalar::TimestampTz,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                vec![be(&5i64.to_be_bytes()), None],
            ),
            (
                Scalar::Interval,
                DataType::Utf8,
                vec![be(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]), None],
            ),
            // Errors: too short, an infinite date, a jsonb of another version, text that is not
            // UTF-8, and halves of one character in two values (the bytes together are UTF-8).
            (Scalar::I64, DataType::Int64, vec![be(&[1, 2])]),
            (
                Scalar::Date,
                DataType::Date32,
                vec![be(&i32::MAX.to_be_bytes())],
            ),
            (Scalar::Jsonb, DataType::Utf8, vec![be(b"\x02{}")]),
            (
                Scalar::Text,
                DataType::Utf8,
                vec![be(b"ok"), be(&[0xff, b'a'])],
            ),
            (Scalar::Text, DataType::Utf8, vec![be(&[0xc3]), be(&[0xa9])]),
            (
                Scalar::Jsonb,
                DataType::Utf8,
                vec![be(b"\x01\"\xc3"), be(b"\x01\xa9\"")],
            ),
        ];
        for (kind, data_type, values) in cases {
            same_as_element_decoder(kind, data_type, &values);
        }
    }

    #[test]
    fn a_batch_after_a_bad_one_starts_clean_and_read_as_text_is_text() {
        let mut b = Builder::new(&column(Reader::AsText, DataType::Utf8), 4);
        b.append(Some(b"(1,2)")).expect("append");
        b.append(None).expect("append");
        let array = b.finish().expect("finish");
        let text = array
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings");
        assert_eq!(text.value(0), "(1,2)");
        assert!(text.is_null(1));
        b.append(Some(&[0xe2, 0x82])).expect("append");
        let error = b.finish().expect_err("a cut character");
        assert!(error.contains("not UTF-8"), "{error}");
        b.append(Some("€".as_bytes())).expect("append");
        let array = b.finish().expect("the next batch");
        assert_eq!(array.len(), 1);
    }
}
