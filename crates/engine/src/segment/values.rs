//! Column types as segments see them, which operators each allows, and casting a filter's JSON
//! values to typed parameters of the column's type.

use arrow::datatypes::DataType;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use datafusion::scalar::ScalarValue;
use std::sync::Arc;
use wharf_domain::segment::{AggregateFn, Op, Scalar};

/// What a column holds, as far as filtering goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Class {
    Integer,
    Float,
    Decimal,
    Text,
    Bool,
    Date,
    /// The zone the column is in (`None`: a wall-clock timestamp, compared as UTC).
    Timestamp(Option<Arc<str>>),
    Time,
    /// Binary, lists, structs, intervals...: only `is_null` and `is_not_null`.
    Other,
}

impl Class {
    /// The class of a result column. A PostgreSQL `numeric` without precision arrives as exact
    /// text but compares as a number; an `interval` arrives as ISO-8601 text that PostgreSQL
    /// would not compare as such, so it takes only the null checks.
    pub(crate) fn of_field(field: &arrow::datatypes::Field) -> Class {
        match field
            .metadata()
            .get(super::POSTGRES_TYPE_KEY)
            .map(String::as_str)
        {
            Some("numeric") => Class::Decimal,
            Some("interval") => Class::Other,
            _ => Class::of(field.data_type()),
        }
    }

    pub(crate) fn of(data_type: &DataType) -> Class {
        match data_type {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Class::Integer,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Class::Float,
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => Class::Decimal,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Class::Text,
            DataType::Boolean => Class::Bool,
            DataType::Date32 | DataType::Date64 => Class::Date,
            DataType::Timestamp(_, tz) => Class::Timestamp(tz.clone()),
            DataType::Time32(_) | DataType::Time64(_) => Class::Time,
            DataType::Dictionary(_, value) => Class::of(value),
            _ => Class::Other,
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Class::Integer | Class::Float | Class::Decimal)
    }

    fn is_ordered(&self) -> bool {
        self.is_numeric()
            || matches!(
                self,
                Class::Text | Class::Date | Class::Timestamp(_) | Class::Time
            )
    }

    /// Whether two columns can be joined on: values that compare exactly. Integers and decimals
    /// mix (no two distinct values of one equal the same value of the other); floats join only
    /// floats, and timestamps only timestamps of the same kind (with or without a zone), since
    /// coercing across them could make two related groups equal one base row and repeat it.
    pub(crate) fn joins_with(&self, other: &Class) -> bool {
        match (self, other) {
            (Class::Integer | Class::Decimal, Class::Integer | Class::Decimal) => true,
            (Class::Timestamp(a), Class::Timestamp(b)) => a.is_some() == b.is_some(),
            (Class::Other, _) | (_, Class::Other) => false,
            (a, b) => a == b,
        }
    }

    /// Why `op` does not apply to a column of this class, if it does not.
    pub(crate) fn refuses(&self, op: Op) -> Option<&'static str> {
        let ok = match op {
            Op::IsNull | Op::IsNotNull => true,
            Op::Eq | Op::Ne | Op::In | Op::NotIn => *self != Class::Other,
            Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Between => self.is_ordered(),
            Op::Contains | Op::StartsWith | Op::EndsWith => *self == Class::Text,
            Op::WithinLast => matches!(self, Class::Date | Class::Timestamp(_)),
        };
        if ok {
            return None;
        }
        Some(match op {
            Op::Contains | Op::StartsWith | Op::EndsWith => "applies to text columns only",
            Op::WithinLast => "applies to date and timestamp columns only",
            Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Between => {
                "applies to numbers, text, dates, times and timestamps only"
            }
            _ => "does not apply to this column's type; only is_null and is_not_null do",
        })
    }

    /// The class of `function` over a column of this class (`None` for `count`), or why the
    /// aggregate does not apply.
    pub(crate) fn aggregate(
        function: AggregateFn,
        column: Option<&Class>,
    ) -> Result<Class, String> {
        match (function, column) {
            (AggregateFn::Count, _) => Ok(Class::Integer),
            (AggregateFn::Sum, Some(c)) if c.is_numeric() => Ok(c.clone()),
            (AggregateFn::Avg, Some(Class::Integer | Class::Float)) => Ok(Class::Float),
            (AggregateFn::Avg, Some(Class::Decimal)) => Ok(Class::Decimal),
            (AggregateFn::Min | AggregateFn::Max, Some(c)) if c.is_ordered() => Ok(c.clone()),
            (AggregateFn::Sum | AggregateFn::Avg, _) => {
                Err("sum and avg apply to numeric columns only".into())
            }
            _ => Err("min and max apply to numbers, text, dates, times and timestamps only".into()),
        }
    }
}

/// Casts a filter value to a parameter for a column of class `class`. The error says what the
/// value should look like.
pub(crate) fn cast(value: &Scalar, class: &Class) -> Result<ScalarValue, String> {
    match (class, value) {
        (Class::Integer, Scalar::Int(i)) => Ok(ScalarValue::Int64(Some(*i))),
        (Class::Integer, Scalar::Float(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            Ok(ScalarValue::Int64(Some(*f as i64)))
        }
        (Class::Integer, Scalar::Text(s)) => s
            .trim()
            .parse::<i64>()
            .map(|i| ScalarValue::Int64(Some(i)))
            .map_err(|_| "the column holds integers; give a whole number such as 42".into()),
        (Class::Integer, _) => Err("the column holds integers; give a whole number such as 42".into()),
        (Class::Float, Scalar::Int(i)) => Ok(ScalarValue::Float64(Some(*i as f64))),
        (Class::Float, Scalar::Float(f)) => Ok(ScalarValue::Float64(Some(*f))),
        (Class::Float, Scalar::Text(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| ScalarValue::Float64(Some(f)))
            .ok_or_else(|| "the column holds numbers; give a number such as 2.5".into()),
        (Class::Decimal, Scalar::Int(i)) => decimal(&i.to_string()),
        // Beyond 2^53 a JSON number has already lost digits on its way through f64.
        (Class::Decimal, Scalar::Float(f)) if f.abs() >= 9_007_199_254_740_992.0 => Err(
            "numbers this large lose digits in JSON; give the value as a string such as \"12345678901234567890\"".into(),
        ),
        (Class::Decimal, Scalar::Float(f)) => decimal(&f.to_string()),
        (Class::Decimal, Scalar::Text(s)) => decimal(s.trim()),
        (Class::Float | Class::Decimal, Scalar::Bool(_)) => {
            Err("the column holds numbers; give a number such as 2.5".into())
        }
        (Class::Text, Scalar::Text(s)) => Ok(ScalarValue::Utf8(Some(s.clone()))),
        (Class::Text, Scalar::Int(i)) => Ok(ScalarValue::Utf8(Some(i.to_string()))),
        (Class::Text, Scalar::Float(f)) => Ok(ScalarValue::Utf8(Some(f.to_string()))),
        (Class::Text, Scalar::Bool(_)) => {
            Err("the column holds text; give a string such as \"true\"".into())
        }
        (Class::Bool, Scalar::Bool(b)) => Ok(ScalarValue::Boolean(Some(*b))),
        (Class::Bool, Scalar::Text(s)) if s == "true" || s == "false" => {
            Ok(ScalarValue::Boolean(Some(s == "true")))
        }
        (Class::Bool, _) => Err("the column holds booleans; give true or false".into()),
        (Class::Date, Scalar::Text(s)) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(|d| ScalarValue::Date32(Some(days(d))))
            .map_err(|_| "the column holds dates; give an ISO-8601 date such as \"2026-03-31\"".into()),
        (Class::Date, _) => {
            Err("the column holds dates; give an ISO-8601 date such as \"2026-03-31\"".into())
        }
        (Class::Timestamp(zone), Scalar::Text(s)) => timestamp_micros(s.trim())
            .map(|us| ScalarValue::TimestampMicrosecond(Some(us), zone.clone()))
            .ok_or_else(|| {
                "the column holds timestamps; give an ISO-8601 timestamp such as \"2026-03-31T14:30:00Z\" (without an offset it is read as UTC)".into()
            }),
        (Class::Timestamp(_), _) => Err(
            "the column holds timestamps; give an ISO-8601 timestamp such as \"2026-03-31T14:30:00Z\"".into(),
        ),
        (Class::Time, Scalar::Text(s)) => ["%H:%M:%S%.f", "%H:%M"]
            .iter()
            .find_map(|f| NaiveTime::parse_from_str(s.trim(), f).ok())
            .map(|t| {
                let us = i64::from(t.num_seconds_from_midnight()) * 1_000_000
                    + i64::from(t.nanosecond() / 1_000);
                ScalarValue::Time64Microsecond(Some(us))
            })
            .ok_or_else(|| "the column holds times of day; give a time such as \"14:30:00\"".into()),
        (Class::Time, _) => {
            Err("the column holds times of day; give a time such as \"14:30:00\"".into())
        }
        (Class::Other, _) => Err("values cannot be compared with this column's type".into()),
    }
}

/// Days since 1970-01-01.
pub(crate) fn days(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((date - epoch).num_days()).unwrap_or(i32::MAX)
}

/// An ISO-8601 timestamp as microseconds since the epoch, UTC. With an offset, the instant;
/// without one, the wall-clock time read as UTC; a bare date is its midnight.
pub fn timestamp_micros(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

/// A decimal literal as a Decimal128 of exactly its own precision and scale, so comparing it with
/// a column of another scale loses nothing (`10.005` against `decimal(12,2)` is not rounded).
fn decimal(text: &str) -> Result<ScalarValue, String> {
    let bad = || format!("the column holds decimals; give a number such as 19.99 (not {text:?})");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    // Exponent form (`1.5e-30`, `2E6`): move the point in the digits themselves, exactly.
    let expanded;
    let digits = match digits.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => {
            let exponent: i32 = exponent.parse().map_err(|_| bad())?;
            if exponent.abs() > 76 {
                return Err(bad());
            }
            let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            let all = format!("{whole}{fraction}");
            let point = whole.len() as i32 + exponent;
            expanded = if point <= 0 {
                format!("0.{}{all}", "0".repeat(point.unsigned_abs() as usize))
            } else if point as usize >= all.len() {
                format!("{all}{}", "0".repeat(point as usize - all.len()))
            } else {
                format!("{}.{}", &all[..point as usize], &all[point as usize..])
            };
            expanded.as_str()
        }
        None => digits,
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let precision = (whole.len() + fraction.len()).max(1);
    if precision > 38 {
        return Err(format!(
            "{text} has {precision} significant digits; decimals hold at most 38"
        ));
    }
    let unscaled: i128 = format!("{whole}{fraction}").parse().unwrap_or(0);
    let unscaled = if negative { -unscaled } else { unscaled };
    let scale = i8::try_from(fraction.len()).map_err(|_| bad())?;
    let precision = u8::try_from(precision).map_err(|_| bad())?;
    Ok(ScalarValue::Decimal128(
        Some(unscaled),
        precision.max(scale as u8).max(1),
        scale,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cast_to_the_columns_type() {
        let int = Class::Integer;
        assert_eq!(cast(&Scalar::Int(3), &int), Ok(ScalarValue::Int64(Some(3))));
        assert_eq!(
            cast(&Scalar::Text(" 7 ".into()), &int),
            Ok(ScalarValue::Int64(Some(7)))
        );
        assert!(cast(&Scalar::Float(1.5), &int).is_err());
        assert!(cast(&Scalar::Text("abc".into()), &int).is_err());
        assert!(cast(&Scalar::Bool(true), &int).is_err());
        assert_eq!(
            cast(&Scalar::Text("10.005".into()), &Class::Decimal),
            Ok(ScalarValue::Decimal128(Some(10005), 5, 3))
        );
        assert_eq!(
            cast(&Scalar::Text("-0.50".into()), &Class::Decimal),
            Ok(ScalarValue::Decimal128(Some(-5), 1, 1))
        );
        assert_eq!(
            cast(&Scalar::Float(1e-7), &Class::Decimal),
            Ok(ScalarValue::Decimal128(Some(1), 7, 7))
        );
        assert!(cast(&Scalar::Text("1.2.3".into()), &Class::Decimal).is_err());
        assert_eq!(
            cast(&Scalar::Text("1.5e-30".into()), &Class::Decimal),
            Ok(ScalarValue::Decimal128(Some(15), 31, 31))
        );
        assert_eq!(
            cast(&Scalar::Text("2E6".into()), &Class::Decimal),
            Ok(ScalarValue::Decimal128(Some(2_000_000), 7, 0))
        );
        assert_eq!(
            cast(
                &Scalar::Text("12345678901234567890".into()),
                &Class::Decimal
            ),
            Ok(ScalarValue::Decimal128(
                Some(12_345_678_901_234_567_890),
                20,
                0
            ))
        );
        assert!(cast(&Scalar::Float(1.2345678901234567e19), &Class::Decimal).is_err());
        assert!(cast(&Scalar::Text("".into()), &Class::Decimal).is_err());
        assert_eq!(
            cast(&Scalar::Text("2026-03-31".into()), &Class::Date),
            Ok(ScalarValue::Date32(Some(20543)))
        );
        assert!(cast(&Scalar::Text("31/03/2026".into()), &Class::Date).is_err());
        let utc = Class::Timestamp(Some("UTC".into()));
        for (text, want) in [
            ("2026-03-31T14:30:00Z", 1_774_967_400_000_000),
            ("2026-03-31T16:30:00+02:00", 1_774_967_400_000_000),
            ("2026-03-31 14:30:00", 1_774_967_400_000_000),
            ("2026-03-31T14:30:00.000001", 1_774_967_400_000_001),
            ("2026-03-31", 1_774_915_200_000_000),
        ] {
            assert_eq!(
                cast(&Scalar::Text(text.into()), &utc),
                Ok(ScalarValue::TimestampMicrosecond(
                    Some(want),
                    Some("UTC".into())
                )),
                "{text}"
            );
        }
        assert!(cast(&Scalar::Int(1), &utc).is_err());
        assert_eq!(
            cast(&Scalar::Text("14:30".into()), &Class::Time),
            Ok(ScalarValue::Time64Microsecond(Some(52_200_000_000)))
        );
        assert_eq!(
            cast(&Scalar::Int(75001), &Class::Text),
            Ok(ScalarValue::Utf8(Some("75001".into())))
        );
        assert!(cast(&Scalar::Int(1), &Class::Other).is_err());
    }

    #[test]
    fn operators_fit_types() {
        assert!(Class::Integer.refuses(Op::Contains).is_some());
        assert!(Class::Text.refuses(Op::WithinLast).is_some());
        assert!(Class::Bool.refuses(Op::Lt).is_some());
        assert!(Class::Other.refuses(Op::Eq).is_some());
        assert!(Class::Other.refuses(Op::IsNull).is_none());
        assert!(Class::Timestamp(None).refuses(Op::WithinLast).is_none());
        assert!(Class::Integer.joins_with(&Class::Decimal));
        assert!(!Class::Integer.joins_with(&Class::Text));
        assert!(!Class::Float.joins_with(&Class::Integer));
        assert!(!Class::Timestamp(None).joins_with(&Class::Timestamp(Some("UTC".into()))));
    }
}
