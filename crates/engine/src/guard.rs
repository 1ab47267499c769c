//! Limits on what one value and one batch may take, so that a query that would need more fails
//! with an error instead of taking the process down.
//!
//! Rust aborts the process when an allocation fails, and DataFusion's memory pool accounts for
//! sorts, joins and aggregations but not for what a scalar function returns: `SELECT
//! repeat('x', 2000000000)` asked for 2 GB per row and the process died at 6 GB. Two guards:
//!
//! - **Before a value is made.** The functions whose output can be far larger than their input
//!   (`repeat`, `lpad`, `rpad`, `replace`, `regexp_replace`, `array_repeat`, `range`,
//!   `generate_series`) are replaced by wrappers that compute, per row, an upper bound of what
//!   they would return, and fail when one value would pass [`MAX_VALUE_BYTES`] or one call
//!   [`MAX_BATCH_BYTES`].
//! - **Before a batch is encoded.** [`check_batch`] fails a batch larger than
//!   [`MAX_BATCH_BYTES`], or with one value over [`MAX_VALUE_BYTES`] or one row over
//!   [`MAX_ROW_BYTES`], naming the column and row: whatever made it (a PostgreSQL value, a
//!   file, a function not listed above), the encoder never sees it.

use arrow::array::{Array, ArrayRef, AsArray as _, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::execution::FunctionRegistry as _;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use std::any::Any;
use wharf_domain::units::human_bytes;

/// Largest single value (a text, a binary, a list) a query may produce: 64 MiB.
pub const MAX_VALUE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest row (all its values together): 64 MiB.
pub const MAX_ROW_BYTES: u64 = 64 * 1024 * 1024;
/// Largest batch of rows on its way to the encoder, and largest output of one function call
/// over a batch: 512 MiB.
pub const MAX_BATCH_BYTES: u64 = 512 * 1024 * 1024;

/// How a guarded function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: `len(text) * n`.
    Repeat,
    /// `lpad(text, n [, fill])`, `rpad`: `n` characters of up to 4 bytes.
    Pad,
    /// `replace(text, from, to)`: every match of `from` (at most `len(text) / len(from) + 1`)
    /// becomes `to`.
    Replace,
    /// `regexp_replace(text, pattern, replacement [, flags])`: a pattern may match at every
    /// position (`len(text) + 1` matches).
    RegexpReplace,
    /// `array_repeat(value, n)`: `n` elements (counted as 16 bytes each).
    ListRepeat,
    /// `range(start, stop [, step])`, `generate_series`: `(stop - start) / step` integers.
    ListRange,
}

/// The functions wrapped, with how each grows.
const GUARDED: [(&str, Growth); 9] = [
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("array_repeat", Growth::ListRepeat),
    ("list_repeat", Growth::ListRepeat),
    ("range", Growth::ListRange),
    ("generate_series", Growth::ListRange),
];

/// Replaces the growing functions of `ctx` with guarded ones.
pub(crate) fn install(ctx: &datafusion::prelude::SessionContext) {
    for (name, growth) in GUARDED {
        if let Ok(inner) = ctx.udf(name) {
            // Aliases (`list_repeat` for `array_repeat`) resolve to the same function: wrap once.
            let implementation: &dyn Any = inner.inner().as_ref();
            if implementation.is::<Guarded>() {
                continue;
            }
            ctx.register_udf(ScalarUDF::new_from_impl(Guarded {
                inner: inner.as_ref().clone(),
                growth,
            }));
        }
    }
}

/// A function that checks the size of what it is about to return before computing it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Guarded {
    inner: ScalarUDF,
    growth: Growth,
}

impl Guarded {
    /// Fails when a row's output, or the whole call's, would pass the limits.
    fn check(&self, args: &ScalarFunctionArgs) -> DfResult<()> {
        let rows = args.number_rows.max(1);
        let arg = |i: usize| args.args.get(i).map(|a| a.to_array(rows)).transpose();
        let Some(first) = arg(0)? else {
            return Ok(());
        };
        let sizes: Vec<u64> = match self.growth {
            Growth::Repeat => {
                let counts = integers(arg(1)?.as_ref(), rows)?;
                let lens = byte_lengths(&first)?;
                lens.iter()
                    .zip(&counts)
                    .map(|(len, n)| len.saturating_mul(non_negative(*n)))
                    .collect()
            }
            Growth::Pad => integers(arg(1)?.as_ref(), rows)?
                .iter()
                .map(|n| non_negative(*n).saturating_mul(4))
                .collect(),
            Growth::Replace => {
                let lens = byte_lengths(&first)?;
                let from = arg(1)?.map(|a| byte_lengths(&a)).transpose()?;
                let to = arg(2)?.map(|a| byte_lengths(&a)).transpose()?;
                (0..lens.len())
                    .map(|i| {
                        let len = lens[i];
                        let from = from.as_ref().map_or(1, |f| f[i].max(1));
                        let to = to.as_ref().map_or(0, |t| t[i]);
                        len.saturating_add((len / from + 1).saturating_mul(to))
                    })
                    .collect()
            }
            Growth::RegexpReplace => {
                let lens = byte_lengths(&first)?;
                let to = arg(2)?.map(|a| byte_lengths(&a)).transpose()?;
                (0..lens.len())
                    .map(|i| {
                        let to = to.as_ref().map_or(0, |t| t[i]);
                        lens[i].saturating_add((lens[i] + 1).saturating_mul(to))
                    })
                    .collect()
            }
            Growth::ListRepeat => integers(arg(1)?.as_ref(), rows)?
                .iter()
                .map(|n| non_negative(*n).saturating_mul(16))
                .collect(),
            Growth::ListRange => {
                // Only integer ranges are bounded here; date and timestamp ranges are rare
                // and still pass the batch check.
                if !first.data_type().is_integer() {
                    return Ok(());
                }
                let (start, stop) = match args.args.len() {
                    1 => (vec![Some(0); rows], integers(Some(&first), rows)?),
                    _ => (
                        integers(Some(&first), rows)?,
                        integers(arg(1)?.as_ref(), rows)?,
                    ),
                };
                let step = match arg(2)? {
                    Some(a) => integers(Some(&a), rows)?,
                    None => vec![Some(1); rows],
                };
                (0..rows)
                    .map(|i| match (start[i], stop[i], step[i]) {
                        (Some(a), Some(b), Some(s)) if s != 0 => {
                            (b.abs_diff(a) / s.unsigned_abs()).saturating_mul(8)
                        }
                        _ => 0,
                    })
                    .collect()
            }
        };
        let name = self.inner.name();
        if let Some((row, size)) = sizes
            .iter()
            .enumerate()
            .find(|(_, size)| **size > MAX_VALUE_BYTES)
        {
            return exec_err!(
                "{name}() would make a value of {} in row {} of its batch, over wharf's limit of {} for one value; make the arguments smaller (a value this large cannot be exported either)",
                human_bytes(*size),
                row + 1,
                human_bytes(MAX_VALUE_BYTES)
            );
        }
        let total = sizes.iter().fold(0u64, |sum, s| sum.saturating_add(*s));
        if total > MAX_BATCH_BYTES {
            return exec_err!(
                "{name}() would make {} of values for one batch of {rows} rows, over wharf's limit of {} per batch; make the arguments smaller",
                human_bytes(total),
                human_bytes(MAX_BATCH_BYTES)
            );
        }
        Ok(())
    }
}

fn non_negative(n: Option<i64>) -> u64 {
    n.map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// `array` as 64-bit integers (nulls and unconvertible values as `None`), `rows` of them.
fn integers(array: Option<&ArrayRef>, rows: usize) -> DfResult<Vec<Option<i64>>> {
    let Some(array) = array else {
        return Ok(vec![None; rows]);
    };
    let cast = arrow::compute::cast(array, &DataType::Int64)?;
    Ok(cast.as_primitive::<Int64Type>().iter().collect())
}

/// The byte length of each value of a text or binary `array` (0 for nulls).
fn byte_lengths(array: &ArrayRef) -> DfResult<Vec<u64>> {
    let lengths = match array.data_type() {
        DataType::Utf8View | DataType::BinaryView | DataType::Dictionary(..) => {
            let plain = arrow::compute::cast(array, &DataType::LargeUtf8)?;
            arrow::compute::kernels::length::length(&plain)?
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
            arrow::compute::kernels::length::length(array)?
        }
        // Not text: the size of its text form is unknown here; the batch check covers it.
        _ => return Ok(vec![0; array.len()]),
    };
    let lengths = arrow::compute::cast(&lengths, &DataType::Int64)?;
    Ok(lengths
        .as_primitive::<Int64Type>()
        .iter()
        .map(non_negative)
        .collect())
}

impl ScalarUDFImpl for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> DfResult<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Fails a batch that breaks the limits above, naming the column and the row.
pub fn check_batch(batch: &RecordBatch) -> Result<(), crate::EngineError> {
    let too_large = |message: String| Err(crate::EngineError::TooLarge(message));
    let total = batch_bytes(batch);
    if total > MAX_BATCH_BYTES {
        return too_large(format!(
            "a batch of {} rows takes {}, over wharf's limit of {} per batch; select fewer or smaller columns",
            batch.num_rows(),
            human_bytes(total),
            human_bytes(MAX_BATCH_BYTES)
        ));
    }
    let mut rows = vec![0u64; batch.num_rows()];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let Some(sizes) = value_sizes(column.as_ref()) else {
            continue;
        };
        for (row, size) in sizes.into_iter().enumerate() {
            if size > MAX_VALUE_BYTES {
                return too_large(format!(
                    "column {:?} holds a value of {} (row {} of its batch), over wharf's limit of {} for one value",
                    field.name(),
                    human_bytes(size),
                    row + 1,
                    human_bytes(MAX_VALUE_BYTES)
                ));
            }
            rows[row] = rows[row].saturating_add(size);
            if rows[row] > MAX_ROW_BYTES {
                return too_large(format!(
                    "a row's values take {} (row {} of its batch, reached at column {:?}), over wharf's limit of {} for one row",
                    human_bytes(rows[row]),
                    row + 1,
                    field.name(),
                    human_bytes(MAX_ROW_BYTES)
                ));
            }
        }
    }
    Ok(())
}

/// The memory a batch's rows take. A view column counts its views and the bytes its values
/// use, not the buffers it shares: a sorted result's views point into the whole sort's
/// buffers, which every batch of it would otherwise count again.
fn batch_bytes(batch: &RecordBatch) -> u64 {
    let views = |len: usize, used: usize| len * 16 + used;
    batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8View => {
                let a = column.as_string_view();
                views(a.len(), a.total_buffer_bytes_used())
            }
            DataType::BinaryView => {
                let a = column.as_binary_view();
                views(a.len(), a.total_buffer_bytes_used())
            }
            _ => column.get_array_memory_size(),
        })
        .map(|bytes| bytes as u64)
        .sum()
}

/// The byte size of each value of a text or binary column; `None` for other columns.
/// Fixed-width values are a few bytes each; nested values (lists, structs) are left to the
/// batch check, since a slice reports the memory of the buffers it shares, not its own share.
fn value_sizes(column: &dyn Array) -> Option<Vec<u64>> {
    let offsets_i32 = |offsets: &[i32]| {
        offsets
            .windows(2)
            .map(|w| u64::try_from(w[1] - w[0]).unwrap_or(0))
            .collect()
    };
    let offsets_i64 = |offsets: &[i64]| {
        offsets
            .windows(2)
            .map(|w| u64::try_from(w[1] - w[0]).unwrap_or(0))
            .collect()
    };
    match column.data_type() {
        DataType::Utf8 => Some(offsets_i32(column.as_string::<i32>().value_offsets())),
        DataType::LargeUtf8 => Some(offsets_i64(column.as_string::<i64>().value_offsets())),
        DataType::Binary => Some(offsets_i32(column.as_binary::<i32>().value_offsets())),
        DataType::LargeBinary => Some(offsets_i64(column.as_binary::<i64>().value_offsets())),
        DataType::Utf8View => Some(
            column
                .as_string_view()
                .views()
                .iter()
                .map(|v| u64::from(*v as u32))
                .collect(),
        ),
        DataType::BinaryView => Some(
            column
                .as_binary_view()
                .views()
                .iter()
                .map(|v| u64::from(*v as u32))
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn a_batch_with_a_value_over_the_limit_names_its_column_and_row() {
        let big = "x".repeat(usize::try_from(MAX_VALUE_BYTES).expect("fits") + 1);
        let schema = Arc::new(Schema::new(vec![Field::new("note", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![
                Some("small"),
                Some(big.as_str()),
            ]))],
        )
        .expect("batch");
        let err = check_batch(&batch).expect_err("too large");
        let text = err.to_string();
        assert!(
            text.contains("column \"note\"") && text.contains("row 2") && text.contains("64.0 MiB"),
            "{text}"
        );
    }

    /// Ten rows of views into 10 MB of shared text count their own 10 values, not the 10 MB.
    #[test]
    fn a_view_batch_counts_the_values_it_uses_not_the_buffers_it_shares() {
        use arrow::array::StringViewArray;
        let text: Vec<String> = (0..100_000).map(|i| format!("{i:0>100}")).collect();
        let all = StringViewArray::from_iter_values(&text);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "t",
            DataType::Utf8View,
            false,
        )]));
        let ten = RecordBatch::try_new(schema, vec![Arc::new(all.slice(0, 10))]).expect("batch");
        assert!(ten.get_array_memory_size() > 10_000_000);
        assert_eq!(batch_bytes(&ten), 10 * (16 + 100));
        let plain = RecordBatch::try_from_iter([(
            "t",
            Arc::new(StringArray::from_iter_values(&text[..10])) as ArrayRef,
        )])
        .expect("batch");
        assert_eq!(batch_bytes(&plain), plain.get_array_memory_size() as u64);
        assert!(check_batch(&ten).is_ok());
    }

    #[test]
    fn a_row_over_the_limit_is_refused_even_when_each_value_fits() {
        let half = "y".repeat(usize::try_from(MAX_ROW_BYTES / 2).expect("fits") + 1);
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let column: ArrayRef = Arc::new(StringArray::from(vec![half.as_str()]));
        let batch = RecordBatch::try_new(schema, vec![column.clone(), column]).expect("batch");
        let err = check_batch(&batch).expect_err("row too large");
        assert!(err.to_string().contains("a row's values take"), "{err}");
    }
}
