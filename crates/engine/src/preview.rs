//! Previews: the first rows of a query, as JSON objects and as display text.

use crate::error::EngineError;
use arrow::array::{Array, RecordBatch};
use arrow::datatypes::Schema;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use wharf_domain::ColumnInfo;

/// The schema and first rows of a query.
#[derive(Debug, Clone)]
pub struct Preview {
    pub columns: Vec<ColumnInfo>,
    /// One JSON object per row (as the JSON export writes them).
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The same rows as display text, `NULL` for nulls.
    pub text: Vec<Vec<String>>,
}

pub(crate) fn build(schema: &Schema, batches: &[RecordBatch]) -> Result<Preview, EngineError> {
    let invalid =
        |e: &dyn std::fmt::Display| EngineError::Query(format!("cannot show the rows: {e}"));
    let mut buf = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut buf);
        for batch in batches {
            writer.write(batch).map_err(|e| invalid(&e))?;
        }
        writer.finish().map_err(|e| invalid(&e))?;
    }
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = if buf.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&buf).map_err(|e| invalid(&e))?
    };
    let options = FormatOptions::new().with_null("NULL");
    let mut text = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(&e))?;
        for row in 0..batch.num_rows() {
            text.push(
                formatters
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        if batch.column(i).is_null(row) {
                            "NULL".to_string()
                        } else {
                            f.value(row).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(Preview {
        columns: crate::columns(schema),
        rows,
        text,
    })
}
