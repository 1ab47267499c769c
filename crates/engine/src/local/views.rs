//! String views inside a query, plain strings out of it.
//!
//! The Parquet reader gives text and binary columns as views (`Utf8View`, `BinaryView`): 16-byte
//! handles into the decompressed pages, so the values of rows that a filter drops are never
//! copied. A query's result is cast to plain strings at its end, after any filter: the type
//! every page, stored schema and most writers work with. A stream for a consumer that reads
//! views (the text formats: [`crate::Text::AsRead`]) keeps them.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, cast};
use datafusion::prelude::DataFrame;
use std::sync::Arc;

/// `data_type` with every view type in it, at any depth, as its plain form.
fn plain(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(field) => DataType::List(plain_field(field)),
        DataType::LargeList(field) => DataType::LargeList(plain_field(field)),
        DataType::FixedSizeList(field, n) => DataType::FixedSizeList(plain_field(field), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(plain_field).collect()),
        DataType::Map(field, sorted) => DataType::Map(plain_field(field), *sorted),
        DataType::Dictionary(key, value) => {
            DataType::Dictionary(key.clone(), Box::new(plain(value)))
        }
        other => other.clone(),
    }
}

fn plain_field(field: &FieldRef) -> FieldRef {
    Arc::new(
        field
            .as_ref()
            .clone()
            .with_data_type(plain(field.data_type())),
    )
}

/// `df` with its view columns cast to their plain forms (the same names and qualifiers); `df`
/// itself when it has none.
pub(super) fn without_views(df: DataFrame) -> Result<DataFrame> {
    let changes = |data_type: &DataType| plain(data_type) != *data_type;
    if !df.schema().fields().iter().any(|f| changes(f.data_type())) {
        return Ok(df);
    }
    let columns: Vec<Expr> = df
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::from((qualifier, field)));
            if changes(field.data_type()) {
                cast(column, plain(field.data_type()))
                    .alias_qualified(qualifier.cloned(), field.name())
            } else {
                column
            }
        })
        .collect();
    df.select(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineSettings, LocalWarehouse};
    use datafusion::arrow::array::{
        Array as _, ArrayRef, AsArray as _, BinaryArray, Int64Array, ListBuilder, RecordBatch,
        StringArray, StringBuilder, StructArray,
    };
    use datafusion::arrow::datatypes::Field;
    use futures::StreamExt as _;

    /// t(n, name, raw, tags, address): 2,000 rows over several pages, text of every length
    /// around the 12 bytes a view holds inline, nulls, unicode.
    fn write_table(dir: &std::path::Path) -> Vec<Option<String>> {
        let names: Vec<Option<String>> = (0..2000)
            .map(|i| (i % 7 != 3).then(|| format!("é{}", "x".repeat(i % 30))))
            .collect();
        let mut tags = ListBuilder::new(StringBuilder::new());
        for name in &names {
            tags.values().append_option(name.as_deref());
            tags.values()
                .append_value("a long tag, longer than twelve bytes");
            tags.append(true);
        }
        let city: ArrayRef = Arc::new(StringArray::from_iter(names.iter().map(|n| n.as_deref())));
        let address = StructArray::from(vec![(
            Arc::new(Field::new("city", DataType::Utf8, true)),
            city,
        )]);
        let batch = RecordBatch::try_from_iter([
            (
                "n",
                Arc::new(Int64Array::from_iter_values(0..2000)) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from_iter(names.iter().map(|n| n.as_deref()))),
            ),
            (
                "raw",
                Arc::new(BinaryArray::from_iter(
                    names.iter().map(|n| n.as_deref().map(str::as_bytes)),
                )),
            ),
            ("tags", Arc::new(tags.finish())),
            ("address", Arc::new(address)),
        ])
        .expect("batch");
        let file = std::fs::File::create(dir.join("t.parquet")).expect("create");
        let props = datafusion::parquet::file::properties::WriterProperties::builder()
            .set_data_page_row_count_limit(300)
            .set_write_batch_size(300)
            .build();
        let mut w =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))
                .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        names
    }

    #[tokio::test]
    async fn a_filtered_query_over_parquet_returns_plain_strings_with_every_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = write_table(dir.path());
        let wh = LocalWarehouse::open(dir.path(), &EngineSettings::new(dir.path().join("spill")))
            .await
            .expect("open");
        let sql =
            "SELECT n, name, raw, tags, address, upper(name) AS shout FROM t WHERE n % 3 = $1";
        let params = [datafusion::common::ScalarValue::Int64(Some(1))];
        let planned = wh.plan_with(sql, &params).await.expect("plan");
        let item = Arc::new(Field::new("item", DataType::Utf8, true));
        let types: Vec<DataType> = planned
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Utf8,
                DataType::Binary,
                DataType::List(item),
                DataType::Struct(vec![Field::new("city", DataType::Utf8, true)].into()),
                DataType::Utf8,
            ]
        );
        let mut stream = wh.query_with(sql, &params).await.expect("query");
        let mut seen = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch.expect("batch");
            assert_eq!(batch.schema().as_ref(), planned.as_ref());
            let n = batch
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let name = batch.column(1).as_string::<i32>();
            let raw = batch.column(2).as_binary::<i32>();
            let tags = batch.column(3).as_list::<i32>();
            let city = batch
                .column(4)
                .as_struct()
                .column(0)
                .as_string::<i32>()
                .clone();
            for row in 0..batch.num_rows() {
                let i = usize::try_from(n.value(row)).expect("n");
                assert_eq!(i % 3, 1);
                let expected = names[i].as_deref();
                assert_eq!(
                    name.is_valid(row).then(|| name.value(row)),
                    expected,
                    "row {i}"
                );
                assert_eq!(
                    raw.is_valid(row).then(|| raw.value(row)),
                    expected.map(str::as_bytes)
                );
                assert_eq!(city.is_valid(row).then(|| city.value(row)), expected);
                let tag = tags.value(row);
                let tag = tag.as_string::<i32>();
                assert_eq!(tag.is_valid(0).then(|| tag.value(0)), expected);
                assert_eq!(tag.value(1), "a long tag, longer than twelve bytes");
                seen += 1;
            }
        }
        assert_eq!(seen, (0..2000).filter(|i| i % 3 == 1).count());
    }

    /// A stream for a consumer that reads views keeps them, with the plain stream's values.
    #[tokio::test]
    async fn a_stream_as_read_keeps_the_views() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_table(dir.path());
        let wh = LocalWarehouse::open(dir.path(), &EngineSettings::new(dir.path().join("spill")))
            .await
            .expect("open");
        let sql = "SELECT n, name, raw, tags FROM t WHERE n % 3 = $1 ORDER BY n";
        let params = &[datafusion::common::ScalarValue::Int64(Some(2))];
        let collect = |text| {
            let wh = &wh;
            async move {
                let stream = wh.stream(sql, params, text).await.expect("query");
                let schema = stream.schema();
                let batches: Vec<RecordBatch> =
                    stream.map(|b| b.expect("batch")).collect::<Vec<_>>().await;
                datafusion::arrow::compute::concat_batches(&schema, &batches).expect("concat")
            }
        };
        let plain_rows = collect(crate::Text::Plain).await;
        let as_read = collect(crate::Text::AsRead).await;
        assert_eq!(as_read.column(1).data_type(), &DataType::Utf8View);
        assert_eq!(as_read.column(2).data_type(), &DataType::BinaryView);
        assert_eq!(as_read.num_rows(), (0..2000).filter(|i| i % 3 == 2).count());
        for (i, (read, plain_column)) in as_read
            .columns()
            .iter()
            .zip(plain_rows.columns())
            .enumerate()
        {
            let cast =
                datafusion::arrow::compute::cast(read, &plain(read.data_type())).expect("cast");
            assert_eq!(&cast, plain_column, "column {i}");
        }
    }

    #[test]
    fn views_become_plain_at_every_depth_and_nothing_else_changes() {
        let item = Arc::new(Field::new("item", DataType::Utf8View, true));
        assert_eq!(plain(&DataType::Utf8View), DataType::Utf8);
        assert_eq!(plain(&DataType::BinaryView), DataType::Binary);
        assert_eq!(
            plain(&DataType::List(item)),
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        );
        let inner = DataType::Struct(vec![Field::new("a", DataType::BinaryView, false)].into());
        assert_eq!(
            plain(&inner),
            DataType::Struct(vec![Field::new("a", DataType::Binary, false)].into())
        );
        for unchanged in [DataType::Utf8, DataType::Int64, DataType::LargeUtf8] {
            assert_eq!(plain(&unchanged), unchanged);
        }
    }
}
