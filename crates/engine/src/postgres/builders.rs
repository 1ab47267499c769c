//! One batch's column builders, typed once per batch: a value is appended after one `match`
//! on its column's kind, never a downcast, and text is gathered as bytes and checked as UTF-8
//! once per column when the batch ends (a check per value cost more than the rest of its
//! decoding). An array column's elements go into a builder of the same kind.

use super::columns::{self, Column, Reader, Scalar};
use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListArray, StringArray,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, FieldRef};
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
    /// A list: its elements' builder, each list's length and whether it is null.
    Array {
        item: FieldRef,
        elements: Box<Builder>,
        lengths: Vec<usize>,
        nulls: NullBufferBuilder,
    },
}

impl Builder {
    /// A builder for `column`'s values, with room for `rows`.
    pub(crate) fn new(column: &Column, rows: usize) -> Self {
        let data_type = column.field.data_type();
        match (&column.reader, data_type) {
            (Reader::Scalar(kind), _) => Self::scalar(*kind, data_type, rows),
            (Reader::Array(kind), DataType::List(item)) => Builder::Array {
                item: item.clone(),
                elements: Box::new(Self::scalar(*kind, item.data_type(), rows)),
                lengths: Vec::with_capacity(rows),
                nulls: NullBufferBuilder::new(rows),
            },
            // Read as text (an array's column is always a list).
            _ => Self::scalar(Scalar::Text, data_type, rows),
        }
    }

    /// A builder for values of `kind`, whose Arrow type is `data_type`.
    fn scalar(kind: Scalar, data_type: &DataType, rows: usize) -> Self {
        let bytes = || BinaryBuilder::with_capacity(rows, rows * TEXT_BYTES_PER_ROW);
        match kind {
            Scalar::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Scalar::I16 => Builder::I16(Int16Builder::with_capacity(rows)),
            Scalar::I32 => Builder::I32(Int32Builder::with_capacity(rows)),
            Scalar::I64 => Builder::I64(Int64Builder::with_capacity(rows)),
            Scalar::F32 => Builder::F32(Float32Builder::with_capacity(rows)),
            Scalar::F64 => Builder::F64(Float64Builder::with_capacity(rows)),
            Scalar::Decimal(_, scale) => Builder::Decimal(
                Decimal128Builder::with_capacity(rows).with_data_type(data_type.clone()),
                scale,
            ),
            Scalar::Date => Builder::Date(Date32Builder::with_capacity(rows)),
            Scalar::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            Scalar::Timestamp | Scalar::TimestampTz => Builder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_data_type(data_type.clone()),
            ),
            Scalar::Bytea => Builder::Bytea(bytes()),
            Scalar::Text
            | Scalar::Jsonb
            | Scalar::NumericText
            | Scalar::Uuid
            | Scalar::Interval => Builder::Text(kind, bytes()),
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
            Builder::Array {
                elements,
                lengths,
                nulls,
                ..
            } => match raw {
                None => {
                    lengths.push(0);
                    nulls.append_null();
                }
                Some(r) => {
                    lengths.push(columns::array_elements(r, |e| elements.append(e))?);
                    nulls.append_non_null();
                }
            },
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
            Builder::Array {
                item,
                elements,
                lengths,
                nulls,
            } => {
                let offsets = OffsetBuffer::from_lengths(lengths.drain(..));
                let list =
                    ListArray::try_new(item.clone(), offsets, elements.finish()?, nulls.finish())
                        .map_err(|e| format!("an array arrow refused ({e})"))?;
                Arc::new(list)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int16Array, Int32Array, Int64Array, Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, TimeUnit};

    fn column(reader: Reader, data_type: DataType) -> Column {
        Column {
            name: "c".into(),
            reader,
            field: Field::new("c", data_type, true),
        }
    }

    /// `values` of one column, decoded into one array (or the first error).
    fn decoded(
        reader: Reader,
        data_type: DataType,
        values: &[Option<Vec<u8>>],
    ) -> Result<ArrayRef, String> {
        let mut b = Builder::new(&column(reader, data_type), 2);
        for value in values {
            b.append(value.as_deref())?;
        }
        b.finish()
    }

    fn be(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }

    fn numeric(digits: &[u16], weight: i16, dscale: u16) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        v.extend((digits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(0u16.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        Some(v)
    }

    /// PostgreSQL's binary array of int4 with one dimension.
    fn int4_array(values: &[Option<i32>]) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        v.extend(1i32.to_be_bytes());
        v.extend(i32::from(values.contains(&None)).to_be_bytes());
        v.extend(23i32.to_be_bytes());
        v.extend((values.len() as i32).to_be_bytes());
        v.extend(1i32.to_be_bytes());
        for value in values {
            match value {
                None => v.extend((-1i32).to_be_bytes()),
                Some(n) => {
                    v.extend(4i32.to_be_bytes());
                    v.extend(n.to_be_bytes());
                }
            }
        }
        Some(v)
    }

    #[test]
    fn every_kind_decodes_to_its_arrow_values() {
        let scalar = |kind, data_type, values: &[Option<Vec<u8>>]| {
            decoded(Reader::Scalar(kind), data_type, values).expect("decodes")
        };
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let cases: Vec<(ArrayRef, ArrayRef)> = vec![
            (
                scalar(Scalar::Bool, DataType::Boolean, &[be(&[1]), None, be(&[0])]),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            (
                scalar(
                    Scalar::I16,
                    DataType::Int16,
                    &[be(&(-7i16).to_be_bytes()), None],
                ),
                Arc::new(Int16Array::from(vec![Some(-7), None])),
            ),
            (
                scalar(Scalar::I32, DataType::Int32, &[be(&i32::MIN.to_be_bytes())]),
                Arc::new(Int32Array::from(vec![i32::MIN])),
            ),
            (
                scalar(
                    Scalar::I64,
                    DataType::Int64,
                    &[None, be(&i64::MAX.to_be_bytes())],
                ),
                Arc::new(Int64Array::from(vec![None, Some(i64::MAX)])),
            ),
            (
                scalar(Scalar::F32, DataType::Float32, &[be(&1.5f32.to_be_bytes())]),
                Arc::new(Float32Array::from(vec![1.5])),
            ),
            (
                scalar(
                    Scalar::F64,
                    DataType::Float64,
                    &[be(&(-0.25f64).to_be_bytes()), None],
                ),
                Arc::new(Float64Array::from(vec![Some(-0.25), None])),
            ),
            (
                scalar(
                    Scalar::Decimal(10, 2),
                    DataType::Decimal128(10, 2),
                    &[numeric(&[12, 3400], 0, 2), None],
                ),
                Arc::new(
                    Decimal128Array::from(vec![Some(1234), None])
                        .with_precision_and_scale(10, 2)
                        .expect("decimal"),
                ),
            ),
            (
                scalar(
                    Scalar::NumericText,
                    DataType::Utf8,
                    &[numeric(&[1, 5000], 0, 4), None],
                ),
                Arc::new(StringArray::from(vec![Some("1.5000"), None])),
            ),
            (
                scalar(
                    Scalar::Text,
                    DataType::Utf8,
                    &[be("été".as_bytes()), None, be(b"")],
                ),
                Arc::new(StringArray::from(vec![Some("été"), None, Some("")])),
            ),
            (
                scalar(Scalar::Jsonb, DataType::Utf8, &[be(b"\x01{\"a\":1}")]),
                Arc::new(StringArray::from(vec!["{\"a\":1}"])),
            ),
            (
                scalar(Scalar::Uuid, DataType::Utf8, &[be(&[0xab; 16])]),
                Arc::new(StringArray::from(vec![
                    "abababab-abab-abab-abab-abababababab",
                ])),
            ),
            (
                scalar(Scalar::Bytea, DataType::Binary, &[be(&[0, 255, 1]), None]),
                Arc::new(BinaryArray::from(vec![Some(&[0u8, 255, 1][..]), None])),
            ),
            (
                scalar(
                    Scalar::Date,
                    DataType::Date32,
                    &[be(&(-3i32).to_be_bytes())],
                ),
                Arc::new(Date32Array::from(vec![10_957 - 3])),
            ),
            (
                scalar(
                    Scalar::Time,
                    DataType::Time64(TimeUnit::Microsecond),
                    &[be(&86_399_000_000i64.to_be_bytes())],
                ),
                Arc::new(Time64MicrosecondArray::from(vec![86_399_000_000])),
            ),
            (
                scalar(Scalar::TimestampTz, utc, &[be(&5i64.to_be_bytes()), None]),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(946_684_800_000_005), None])
                        .with_timezone("UTC"),
                ),
            ),
            (
                scalar(
                    Scalar::Interval,
                    DataType::Utf8,
                    &[be(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])],
                ),
                Arc::new(StringArray::from(vec!["P3M2DT0.000001S"])),
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(
                got.to_data(),
                expected.to_data(),
                "{:?}",
                expected.data_type()
            );
        }
    }

    #[test]
    fn arrays_are_lists_of_their_elements_kind() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let got = decoded(
            Reader::Array(Scalar::I32),
            list,
            &[int4_array(&[Some(1), None, Some(3)]), None, int4_array(&[])],
        )
        .expect("decodes");
        let expected = ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            None,
            Some(vec![]),
        ]);
        assert_eq!(got.to_data(), expected.to_data());
    }

    #[test]
    fn values_no_column_can_hold_are_refused() {
        let refused = |kind, data_type, values: &[Option<Vec<u8>>]| {
            decoded(Reader::Scalar(kind), data_type, values).expect_err("refused")
        };
        assert!(refused(Scalar::I64, DataType::Int64, &[be(&[1, 2])]).contains("2 bytes"));
        assert!(
            refused(
                Scalar::Date,
                DataType::Date32,
                &[be(&i32::MAX.to_be_bytes())]
            )
            .contains("infinite date")
        );
        assert!(
            refused(Scalar::Jsonb, DataType::Utf8, &[be(b"\x02{}")])
                .contains("unknown binary version")
        );
        let not_utf8 = [
            vec![be(b"ok"), be(&[0xff, b'a'])],
            // Halves of one character in two values: together the bytes are UTF-8.
            vec![be(&[0xc3]), be(&[0xa9])],
        ];
        for values in not_utf8 {
            assert!(refused(Scalar::Text, DataType::Utf8, &values).contains("not UTF-8"));
        }
        assert!(
            refused(
                Scalar::Jsonb,
                DataType::Utf8,
                &[be(b"\x01\"\xc3"), be(b"\x01\xa9\"")]
            )
            .contains("not UTF-8")
        );
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let mut short = int4_array(&[Some(1), Some(2)]).expect("array");
        short.truncate(short.len() - 2);
        let error =
            decoded(Reader::Array(Scalar::I32), list, &[Some(short)]).expect_err("cut short");
        assert!(
            error.contains("cut short") || error.contains("bytes"),
            "{error}"
        );
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
