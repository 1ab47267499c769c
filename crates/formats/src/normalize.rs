//! Types and names every format's readers accept: the schema a file is written with.

use arrow::array::{ArrayBuilder as _, ArrayRef, RecordBatch, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use std::sync::Arc;

/// The type a column is written as:
/// - timestamps in microseconds (Athena, Spark, Hive and Avro 1.11 readers do not read
///   nanoseconds; seconds have no Parquet logical type), with `UTC` as the zone of any
///   zone-aware timestamp (the instant is unchanged: Arrow stores UTC);
/// - view types, dictionaries and small decimals as their plain forms, which every writer and
///   reader supports;
/// - the `Null` type (a column of only `NULL` literals) as a nullable string.
pub fn lake_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(_, tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, tz.as_ref().map(|_| Arc::from("UTC")))
        }
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, value) => lake_type(value),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::Null => DataType::Utf8,
        DataType::List(field) => DataType::List(Arc::new(lake_field(field, field.name()))),
        DataType::LargeList(field) => {
            DataType::LargeList(Arc::new(lake_field(field, field.name())))
        }
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| lake_field(f, f.name()))
                .collect::<Vec<_>>()
                .into(),
        ),
        other => other.clone(),
    }
}

fn lake_field(field: &Field, name: &str) -> Field {
    Field::new(
        name,
        lake_type(field.data_type()),
        field.is_nullable() || field.data_type() == &DataType::Null,
    )
}

/// The schema a file is written with: [`lake_type`] for every column, `names` (same length) as
/// column names when given, and, with `nested_as_text` (CSV, XML), lists, structs and maps as
/// text holding their JSON.
pub fn file_schema(schema: &Schema, names: Option<&[String]>, nested_as_text: bool) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = names
                .and_then(|n| n.get(i))
                .map_or(f.name().as_str(), String::as_str);
            if nested_as_text && f.data_type().is_nested() {
                Field::new(name, DataType::Utf8, true)
            } else {
                lake_field(f, name)
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `file` (from [`file_schema`] of `source`) with the top-level columns `source` has as text
/// views kept as views: the batches the text formats' encoders take, which read views directly
/// (a cast would copy every value once more for nothing). Nested and dictionary text is cast.
pub fn with_text_views(file: &SchemaRef, source: &Schema) -> SchemaRef {
    let fields: Vec<Field> = file
        .fields()
        .iter()
        .zip(source.fields())
        .map(|(f, s)| {
            if s.data_type() == &DataType::Utf8View && f.data_type() == &DataType::Utf8 {
                f.as_ref().clone().with_data_type(DataType::Utf8View)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, file.metadata().clone()))
}

/// `batch` in `schema` (from [`file_schema`] or [`with_text_views`] of the batch's schema): columns cast where the type
/// changed (nested values to JSON text), untouched (no copy) where it did not.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else if column.data_type().is_nested() && field.data_type() == &DataType::Utf8 {
                json_text(column)
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// Each value of a nested column as its JSON text (as the JSON formats write it); nulls stay
/// null.
fn json_text(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let batch = RecordBatch::try_from_iter([("v", column.clone())])?;
    let mut lines = Vec::new();
    {
        let mut writer = arrow::json::LineDelimitedWriter::new(&mut lines);
        writer.write(&batch)?;
        writer.finish()?;
    }
    // Each line is `{"v":VALUE}`, or `{}` for a null. VALUE is taken as written (not parsed
    // again), so decimals and floats keep every digit the JSON writer gave them.
    let mut out = StringBuilder::with_capacity(column.len(), lines.len());
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match line
            .strip_prefix(b"{\"v\":")
            .and_then(|rest| rest.strip_suffix(b"}"))
        {
            None if line == b"{}" => out.append_null(),
            None => {
                return Err(ArrowError::JsonError(format!(
                    "unexpected JSON line {:?}",
                    String::from_utf8_lossy(line)
                )));
            }
            Some(value) => out.append_value(
                std::str::from_utf8(value).map_err(|e| ArrowError::JsonError(e.to_string()))?,
            ),
        }
    }
    if out.len() != column.len() {
        return Err(ArrowError::JsonError(format!(
            "{} JSON values for {} rows",
            out.len(),
            column.len()
        )));
    }
    Ok(Arc::new(out.finish()))
}

/// Avro names: `[A-Za-z_][A-Za-z0-9_]*`, other characters as `_`, made unique with `_2`, `_3`...
pub fn avro_names<'a>(columns: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    wharf_domain::name::make_unique(columns.into_iter().map(|column| {
        let mut base: String = column
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if !base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            base.insert(0, '_');
        }
        base
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_become_their_exact_json_text() {
        use arrow::array::{Array, Decimal128Builder, ListBuilder, StringArray};
        let mut list = ListBuilder::new(
            Decimal128Builder::new()
                .with_precision_and_scale(20, 2)
                .expect("decimal"),
        );
        list.values().append_value(1_234_567_890_123_456_789);
        list.values().append_null();
        list.values().append_value(1990);
        list.append(true);
        list.append_null();
        list.append(true);
        let column: ArrayRef = Arc::new(list.finish());
        let text = json_text(&column).expect("json text");
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings");
        assert_eq!(text.value(0), "[12345678901234567.89,null,19.90]");
        assert!(text.is_null(1));
        assert_eq!(text.value(2), "[]");
    }

    #[test]
    fn lake_types() {
        assert_eq!(
            lake_type(&DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("+02:00".into())
            )),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            lake_type(&DataType::Timestamp(TimeUnit::Second, None)),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(
            lake_type(&DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(DataType::Utf8View)
            )),
            DataType::Utf8
        );
        assert_eq!(
            avro_names(["count(*)", "a b", "a_b", "1st", "é"]),
            ["count___", "a_b", "a_b_2", "_1st", "_"]
        );
    }
}
