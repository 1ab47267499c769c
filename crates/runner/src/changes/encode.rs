//! The canonical encoding of exported values, from which a row's hash and a key's identity
//! are computed. It is part of wharf's stored format: a snapshot written by one version is
//! compared by the next, so the bytes below never change for a given value (a new encoding gets
//! a new [`ENCODING_VERSION`], and a snapshot of another version makes the next run a full one).
//!
//! Each value is a tag byte and its bytes, little-endian:
//!
//! | value | bytes |
//! |---|---|
//! | null (any type) | `00` |
//! | boolean | `01`, `00`/`01` |
//! | signed integer (any width) | `02`, i64 |
//! | unsigned integer (any width) | `03`, u64 |
//! | float (any width) | `04`, the f64's bits; every NaN as `0x7ff8000000000000` |
//! | decimal (32 to 128 bits) | `05`, scale as i8, i128 |
//! | decimal (256 bits) | `06`, scale as i8, i256 |
//! | text (any offset width, views) | `07`, length as u64, UTF-8 bytes |
//! | binary (any offset width, views, fixed size) | `08`, length as u64, bytes |
//! | date (days) | `09`, i64 days since 1970-01-01 |
//! | date (milliseconds) | `0a`, i64 ms |
//! | timestamp (any unit, any zone) | `0b`, i128 nanoseconds since the epoch |
//! | time of day (any unit) | `0c`, i128 nanoseconds since midnight |
//! | duration (any unit) | `0d`, i128 nanoseconds |
//!
//! Dictionary-encoded columns are encoded as their values. Consequences, on purpose:
//! - null and the empty string differ (`00` against `07 0000000000000000`);
//! - integers and floats are compared by value, not by storage width (an `Int32` 5 and an
//!   `Int64` 5 are the same value), but signed and unsigned, integer and float, stay apart;
//! - `-0.0` and `0.0` differ (readers print them differently), and all NaNs are one value (a
//!   NaN that stays NaN is not a change);
//! - a decimal's scale is part of its value (`1.50` and `1.5` print differently);
//! - a timestamp's zone is not (it is the column's, and changing it is a change of the model).
//!
//! Types with no encoding here (lists, structs, maps, intervals) are refused with the column's
//! name: a sync that compares rows cannot use them.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};

/// The version of the encoding below, recorded with every snapshot.
pub const ENCODING_VERSION: u32 = 1;

const NULL: u8 = 0x00;
const BOOL: u8 = 0x01;
const INT: u8 = 0x02;
const UINT: u8 = 0x03;
const FLOAT: u8 = 0x04;
const DECIMAL: u8 = 0x05;
const DECIMAL256: u8 = 0x06;
const TEXT: u8 = 0x07;
const BINARY: u8 = 0x08;
const DATE_DAYS: u8 = 0x09;
const DATE_MILLIS: u8 = 0x0a;
const TIMESTAMP: u8 = 0x0b;
const TIME: u8 = 0x0c;
const DURATION: u8 = 0x0d;

const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// A column whose type has no canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "column {column:?} has type {data_type}, which a sync that compares rows cannot compare; cast it to text in the model's SQL, or leave it out of the sync's columns"
)]
pub struct Unsupported {
    pub column: String,
    pub data_type: String,
}

/// Whether every value of `data_type` has an encoding (checked before a run reads anything).
pub fn supported(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => supported(value),
        DataType::Null
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_)
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(..)
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Duration(_) => true,
        _ => false,
    }
}

/// Appends the encoding of every row of `column` to `rows[i]` (one buffer per row, in order).
pub fn append_column(
    name: &str,
    column: &ArrayRef,
    rows: &mut [Vec<u8>],
) -> Result<(), Unsupported> {
    let unsupported = || Unsupported {
        column: name.to_string(),
        data_type: column.data_type().to_string(),
    };
    if let DataType::Dictionary(_, value) = column.data_type() {
        let values = arrow::compute::cast(column, value).map_err(|_| unsupported())?;
        return append_column(name, &values, rows);
    }
    let c = column.as_ref();
    macro_rules! each {
        ($array:expr, |$out:ident, $v:ident| $body:block) => {{
            let array = $array;
            for (i, $out) in rows.iter_mut().enumerate() {
                if array.is_null(i) {
                    $out.push(NULL);
                } else {
                    let $v = array.value(i);
                    $body
                }
            }
        }};
    }
    let int = |out: &mut Vec<u8>, v: i64| {
        out.push(INT);
        out.extend_from_slice(&v.to_le_bytes());
    };
    let uint = |out: &mut Vec<u8>, v: u64| {
        out.push(UINT);
        out.extend_from_slice(&v.to_le_bytes());
    };
    let float = |out: &mut Vec<u8>, v: f64| {
        out.push(FLOAT);
        let bits = if v.is_nan() {
            CANONICAL_NAN
        } else {
            v.to_bits()
        };
        out.extend_from_slice(&bits.to_le_bytes());
    };
    let decimal = |out: &mut Vec<u8>, scale: i8, v: i128| {
        out.push(DECIMAL);
        out.push(scale.to_le_bytes()[0]);
        out.extend_from_slice(&v.to_le_bytes());
    };
    let bytes = |out: &mut Vec<u8>, tag: u8, v: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        out.extend_from_slice(v);
    };
    let wide = |out: &mut Vec<u8>, tag: u8, v: i128| {
        out.push(tag);
        out.extend_from_slice(&v.to_le_bytes());
    };
    match column.data_type() {
        DataType::Null => rows.iter_mut().for_each(|out| out.push(NULL)),
        DataType::Boolean => each!(c.as_boolean(), |out, v| {
            out.push(BOOL);
            out.push(u8::from(v));
        }),
        DataType::Int8 => each!(c.as_primitive::<Int8Type>(), |out, v| {
            int(out, v.into())
        }),
        DataType::Int16 => each!(c.as_primitive::<Int16Type>(), |out, v| {
            int(out, v.into())
        }),
        DataType::Int32 => each!(c.as_primitive::<Int32Type>(), |out, v| {
            int(out, v.into())
        }),
        DataType::Int64 => each!(c.as_primitive::<Int64Type>(), |out, v| { int(out, v) }),
        DataType::UInt8 => each!(c.as_primitive::<UInt8Type>(), |out, v| {
            uint(out, v.into())
        }),
        DataType::UInt16 => {
            each!(c.as_primitive::<UInt16Type>(), |out, v| {
                uint(out, v.into())
            })
        }
        DataType::UInt32 => {
            each!(c.as_primitive::<UInt32Type>(), |out, v| {
                uint(out, v.into())
            })
        }
        DataType::UInt64 => each!(c.as_primitive::<UInt64Type>(), |out, v| { uint(out, v) }),
        DataType::Float16 => {
            each!(c.as_primitive::<Float16Type>(), |out, v| {
                float(out, v.to_f64())
            })
        }
        DataType::Float32 => {
            each!(c.as_primitive::<Float32Type>(), |out, v| {
                float(out, v.into())
            })
        }
        DataType::Float64 => each!(c.as_primitive::<Float64Type>(), |out, v| { float(out, v) }),
        DataType::Decimal32(_, scale) => {
            each!(c.as_primitive::<Decimal32Type>(), |out, v| {
                decimal(out, *scale, v.into())
            })
        }
        DataType::Decimal64(_, scale) => {
            each!(c.as_primitive::<Decimal64Type>(), |out, v| {
                decimal(out, *scale, v.into())
            })
        }
        DataType::Decimal128(_, scale) => {
            each!(c.as_primitive::<Decimal128Type>(), |out, v| {
                decimal(out, *scale, v)
            })
        }
        DataType::Decimal256(_, scale) => each!(c.as_primitive::<Decimal256Type>(), |out, v| {
            out.push(DECIMAL256);
            out.push(scale.to_le_bytes()[0]);
            out.extend_from_slice(&v.to_le_bytes());
        }),
        DataType::Utf8 => each!(c.as_string::<i32>(), |out, v| {
            bytes(out, TEXT, v.as_bytes())
        }),
        DataType::LargeUtf8 => each!(c.as_string::<i64>(), |out, v| {
            bytes(out, TEXT, v.as_bytes())
        }),
        DataType::Utf8View => each!(c.as_string_view(), |out, v| {
            bytes(out, TEXT, v.as_bytes())
        }),
        DataType::Binary => each!(c.as_binary::<i32>(), |out, v| { bytes(out, BINARY, v) }),
        DataType::LargeBinary => {
            each!(c.as_binary::<i64>(), |out, v| { bytes(out, BINARY, v) })
        }
        DataType::BinaryView => each!(c.as_binary_view(), |out, v| { bytes(out, BINARY, v) }),
        DataType::FixedSizeBinary(_) => {
            each!(c.as_fixed_size_binary(), |out, v| { bytes(out, BINARY, v) })
        }
        DataType::Date32 => each!(c.as_primitive::<Date32Type>(), |out, v| {
            wide_i64(out, DATE_DAYS, v.into())
        }),
        DataType::Date64 => each!(c.as_primitive::<Date64Type>(), |out, v| {
            wide_i64(out, DATE_MILLIS, v)
        }),
        DataType::Timestamp(unit, _) => {
            let factor = nanos_per(*unit);
            match unit {
                TimeUnit::Second => each!(c.as_primitive::<TimestampSecondType>(), |out, v| {
                    wide(out, TIMESTAMP, i128::from(v) * factor)
                }),
                TimeUnit::Millisecond => {
                    each!(c.as_primitive::<TimestampMillisecondType>(), |out, v| {
                        wide(out, TIMESTAMP, i128::from(v) * factor)
                    })
                }
                TimeUnit::Microsecond => {
                    each!(c.as_primitive::<TimestampMicrosecondType>(), |out, v| {
                        wide(out, TIMESTAMP, i128::from(v) * factor)
                    })
                }
                TimeUnit::Nanosecond => {
                    each!(c.as_primitive::<TimestampNanosecondType>(), |out, v| {
                        wide(out, TIMESTAMP, i128::from(v))
                    })
                }
            }
        }
        DataType::Time32(TimeUnit::Second) => {
            each!(c.as_primitive::<Time32SecondType>(), |out, v| {
                wide(out, TIME, i128::from(v) * 1_000_000_000)
            })
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            each!(c.as_primitive::<Time32MillisecondType>(), |out, v| {
                wide(out, TIME, i128::from(v) * 1_000_000)
            })
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            each!(c.as_primitive::<Time64MicrosecondType>(), |out, v| {
                wide(out, TIME, i128::from(v) * 1_000)
            })
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            each!(c.as_primitive::<Time64NanosecondType>(), |out, v| {
                wide(out, TIME, i128::from(v))
            })
        }
        DataType::Duration(unit) => {
            let factor = nanos_per(*unit);
            match unit {
                TimeUnit::Second => each!(c.as_primitive::<DurationSecondType>(), |out, v| {
                    wide(out, DURATION, i128::from(v) * factor)
                }),
                TimeUnit::Millisecond => {
                    each!(c.as_primitive::<DurationMillisecondType>(), |out, v| {
                        wide(out, DURATION, i128::from(v) * factor)
                    })
                }
                TimeUnit::Microsecond => {
                    each!(c.as_primitive::<DurationMicrosecondType>(), |out, v| {
                        wide(out, DURATION, i128::from(v) * factor)
                    })
                }
                TimeUnit::Nanosecond => {
                    each!(c.as_primitive::<DurationNanosecondType>(), |out, v| {
                        wide(out, DURATION, i128::from(v))
                    })
                }
            }
        }
        _ => return Err(unsupported()),
    }
    Ok(())
}

fn wide_i64(out: &mut Vec<u8>, tag: u8, v: i64) {
    out.push(tag);
    out.extend_from_slice(&v.to_le_bytes());
}

fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// The hash of a row's encoding: 128 bits of XXH3 (a specified, stable algorithm). Two
/// different rows of one key collide with odds of 2^-128.
pub fn row_hash(encoded: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(encoded)
}

/// Which of `2^bits` partitions a key's encoding falls in: the top bits of its 64-bit XXH3,
/// so that a partition of `2^b` splits into whole partitions of `2^(b+1)`.
pub fn partition_of(key: &[u8], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let h = twox_hash::XxHash3_64::oneshot(key);
    usize::try_from(h >> (64 - bits)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
