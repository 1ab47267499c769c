//! PostgreSQL result columns as Arrow: the type mapping, and decoding PostgreSQL's binary wire
//! format into Arrow builders.
//!
//! | PostgreSQL | Arrow |
//! |---|---|
//! | bool | Boolean |
//! | int2, int4, int8 | Int16, Int32, Int64 |
//! | float4, float8 | Float32, Float64 |
//! | numeric(p,s), p <= 38 | Decimal128(p, s) |
//! | numeric (no or larger precision) | Utf8, the exact decimal text |
//! | text, varchar, char, name, citext, enums, json, jsonb, xml | Utf8 |
//! | uuid | Utf8 (`8-4-4-4-12` hex) |
//! | bytea | Binary |
//! | date | Date32 |
//! | time | Time64(µs) |
//! | timestamp | Timestamp(µs) |
//! | timestamptz | Timestamp(µs, UTC) |
//! | interval | Utf8, ISO-8601 duration (`P1Y2M3DT4H5M6.5S`) |
//! | one-dimensional arrays of the above | List (multi-dimensional arrays are flattened) |
//! | anything else (domains use their base type) | Utf8, PostgreSQL's text form (cast in SQL) |

use arrow::datatypes::{DataType, Field, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::types::{Kind, Type};

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How one value of a column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    /// numeric with a known precision and scale.
    Decimal(u8, i8),
    /// numeric without one: the exact text.
    NumericText,
    Text,
    Jsonb,
    Uuid,
    Bytea,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
}

impl Scalar {
    fn data_type(self) -> DataType {
        match self {
            Scalar::Bool => DataType::Boolean,
            Scalar::I16 => DataType::Int16,
            Scalar::I32 => DataType::Int32,
            Scalar::I64 => DataType::Int64,
            Scalar::F32 => DataType::Float32,
            Scalar::F64 => DataType::Float64,
            Scalar::Decimal(p, s) => DataType::Decimal128(p, s),
            Scalar::NumericText
            | Scalar::Text
            | Scalar::Jsonb
            | Scalar::Uuid
            | Scalar::Interval => DataType::Utf8,
            Scalar::Bytea => DataType::Binary,
            Scalar::Date => DataType::Date32,
            Scalar::Time => DataType::Time64(TimeUnit::Microsecond),
            Scalar::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Scalar::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// The scalar kind of `ty`, with its type modifier (numeric precision and scale), or `None`
/// when wharf reads it as text instead.
fn scalar(ty: &Type, modifier: i32) -> Option<Scalar> {
    if let Kind::Domain(base) = ty.kind() {
        return scalar(base, modifier);
    }
    if let Kind::Enum(_) = ty.kind() {
        return Some(Scalar::Text);
    }
    Some(match *ty {
        Type::BOOL => Scalar::Bool,
        Type::INT2 => Scalar::I16,
        Type::INT4 => Scalar::I32,
        Type::INT8 => Scalar::I64,
        Type::FLOAT4 => Scalar::F32,
        Type::FLOAT8 => Scalar::F64,
        Type::NUMERIC => match numeric_modifier(modifier) {
            Some((p, s)) => Scalar::Decimal(p, s),
            None => Scalar::NumericText,
        },
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::XML => {
            Scalar::Text
        }
        Type::JSONB => Scalar::Jsonb,
        Type::UUID => Scalar::Uuid,
        Type::BYTEA => Scalar::Bytea,
        Type::DATE => Scalar::Date,
        Type::TIME => Scalar::Time,
        Type::TIMESTAMP => Scalar::Timestamp,
        Type::TIMESTAMPTZ => Scalar::TimestampTz,
        Type::INTERVAL => Scalar::Interval,
        _ if ty.name() == "citext" => Scalar::Text,
        _ => return None,
    })
}

/// `numeric(p, s)`'s precision and scale from its type modifier, when Decimal128 holds them.
fn numeric_modifier(modifier: i32) -> Option<(u8, i8)> {
    if modifier < 4 {
        return None;
    }
    let m = modifier - 4;
    let precision = (m >> 16) & 0xFFFF;
    let scale = m & 0xFFFF;
    // Negative scales (PostgreSQL 15) come as 11-bit two's complement.
    let scale = if scale > 1000 { scale - 2048 } else { scale };
    if !(1..=38).contains(&precision) || !(0..=precision).contains(&scale) {
        return None;
    }
    Some((u8::try_from(precision).ok()?, i8::try_from(scale).ok()?))
}

/// How a result column is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reader {
    Scalar(Scalar),
    Array(Scalar),
    /// Cast to text in SQL: wharf has no binary decoder for this type.
    AsText,
}

/// A result column: its name, how it is read, and its Arrow field (whose metadata carries the
/// PostgreSQL type name).
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub reader: Reader,
    pub field: Field,
}

pub(crate) fn column(name: &str, ty: &Type, modifier: i32) -> Column {
    let (reader, data_type) = match ty.kind() {
        Kind::Array(element) => match scalar(element, modifier) {
            Some(s) => (
                Reader::Array(s),
                DataType::List(Arc::new(Field::new("item", s.data_type(), true))),
            ),
            None => (Reader::AsText, DataType::Utf8),
        },
        _ => match scalar(ty, modifier) {
            Some(s) => (Reader::Scalar(s), s.data_type()),
            None => (Reader::AsText, DataType::Utf8),
        },
    };
    let metadata = HashMap::from([(
        crate::segment::POSTGRES_TYPE_KEY.to_string(),
        ty.name().to_string(),
    )]);
    Column {
        name: name.to_string(),
        field: Field::new(name, data_type, true).with_metadata(metadata),
        reader,
    }
}

fn take<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("a value of {} bytes where {N} were expected", raw.len()))
}

/// The JSON text of jsonb's binary form, as bytes (not yet checked as UTF-8).
pub(crate) fn jsonb_text(raw: &[u8]) -> Result<&[u8], String> {
    match raw.split_first() {
        Some((1, rest)) => Ok(rest),
        _ => Err("a jsonb value in an unknown binary version".to_string()),
    }
}

pub(crate) fn boolean(r: &[u8]) -> Result<bool, String> {
    take::<1>(r).map(|b| b[0] != 0)
}

pub(crate) fn int16(r: &[u8]) -> Result<i16, String> {
    take::<2>(r).map(i16::from_be_bytes)
}

pub(crate) fn int32(r: &[u8]) -> Result<i32, String> {
    take::<4>(r).map(i32::from_be_bytes)
}

/// int8, and time (microseconds since midnight).
pub(crate) fn int64(r: &[u8]) -> Result<i64, String> {
    take::<8>(r).map(i64::from_be_bytes)
}

pub(crate) fn float32(r: &[u8]) -> Result<f32, String> {
    take::<4>(r).map(f32::from_be_bytes)
}

pub(crate) fn float64(r: &[u8]) -> Result<f64, String> {
    take::<8>(r).map(f64::from_be_bytes)
}

/// Days since 1970-01-01.
pub(crate) fn date(r: &[u8]) -> Result<i32, String> {
    let days = i32::from_be_bytes(take::<4>(r)?);
    if days == i32::MAX || days == i32::MIN {
        return Err("an infinite date, which no file format can hold; filter it out or cast it in the model's SQL".to_string());
    }
    days.checked_add(EPOCH_DAYS)
        .ok_or_else(|| "a date out of range".to_string())
}

/// Microseconds since 1970-01-01 (timestamp and timestamptz).
pub(crate) fn timestamp(r: &[u8]) -> Result<i64, String> {
    let us = i64::from_be_bytes(take::<8>(r)?);
    if us == i64::MAX || us == i64::MIN {
        return Err("an infinite timestamp, which no file format can hold; filter it out or cast it in the model's SQL".to_string());
    }
    us.checked_add(EPOCH_MICROS)
        .ok_or_else(|| "a timestamp out of range".to_string())
}

pub(crate) fn bytea(r: &[u8]) -> Result<&[u8], String> {
    Ok(r)
}

/// A uuid as its hyphenated text.
pub(crate) fn uuid(r: &[u8]) -> Result<String, String> {
    take::<16>(r).map(uuid_text)
}

/// Calls `each` with every element of a one-dimensional or flattened multi-dimensional array
/// in PostgreSQL's binary format (`None`: a null element), in order; returns how many there
/// were. Lower bounds are dropped: a list starts at its first element.
pub(crate) fn array_elements(
    raw: &[u8],
    mut each: impl FnMut(Option<&[u8]>) -> Result<(), String>,
) -> Result<usize, String> {
    let dims = i32::from_be_bytes(take::<4>(raw)?);
    // ndim, has-null flag, element oid, then (length, lower bound) per dimension.
    let mut at = 12usize;
    let mut count: usize = if dims == 0 { 0 } else { 1 };
    for _ in 0..dims.max(0) {
        let len = i32::from_be_bytes(take::<4>(raw.get(at..).unwrap_or_default())?);
        count = count
            .checked_mul(usize::try_from(len).map_err(|_| "an array of negative length")?)
            .ok_or("an array too large")?;
        at += 8;
    }
    // Every element takes at least its 4-byte length: a header claiming more is malformed.
    if count > raw.len().saturating_sub(at) / 4 {
        return Err("an array header claiming more elements than it holds".into());
    }
    for _ in 0..count {
        let len = i32::from_be_bytes(take::<4>(raw.get(at..).unwrap_or_default())?);
        at += 4;
        if len < 0 {
            each(None)?;
        } else {
            let end = at
                .checked_add(len as usize)
                .ok_or("an array value cut short")?;
            each(Some(raw.get(at..end).ok_or("an array value cut short")?))?;
            at = end;
        }
    }
    Ok(count)
}

/// PostgreSQL's binary numeric as exact decimal text (`-12.3400`, `NaN`, `Infinity`).
pub(crate) fn numeric_text(raw: &[u8]) -> Result<String, String> {
    let header = take::<8>(raw)?;
    let ndigits = u16::from_be_bytes([header[0], header[1]]) as usize;
    let weight = i16::from_be_bytes([header[2], header[3]]) as i32;
    let sign = u16::from_be_bytes([header[4], header[5]]);
    let dscale = u16::from_be_bytes([header[6], header[7]]) as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    if raw.len() < 8 + 2 * ndigits {
        return Err(format!(
            "a numeric of {} bytes claiming {ndigits} digits",
            raw.len()
        ));
    }
    let digits: Vec<u16> = raw[8..8 + 2 * ndigits]
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(0).to_string());
        for i in 1..=weight {
            text.push_str(&format!("{:04}", digit(i)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

/// A binary numeric as an integer scaled by `scale` (a `numeric(p, s)` column's `s`): straight
/// from its base-10000 digits when that is exact and fits, through the decimal text otherwise
/// (which also words every error).
pub(crate) fn decimal(raw: &[u8], scale: i8) -> Result<i128, String> {
    match decimal_from_digits(raw, scale) {
        Some(value) => Ok(value),
        None => numeric_text(raw).and_then(|t| scaled(&t, scale)),
    }
}

/// The fast path of [`decimal`]: `None` for NaN and infinities, a display scale over `scale`,
/// an overflow, or a malformed value, which the text path decides.
fn decimal_from_digits(raw: &[u8], scale: i8) -> Option<i128> {
    let header = raw.get(..8)?;
    let ndigits = usize::from(u16::from_be_bytes([header[0], header[1]]));
    let weight = i32::from(i16::from_be_bytes([header[2], header[3]]));
    let sign = u16::from_be_bytes([header[4], header[5]]);
    let dscale = i32::from(u16::from_be_bytes([header[6], header[7]]));
    let scale = i32::from(scale);
    if !matches!(sign, 0 | 0x4000) || dscale > scale || scale < 0 {
        return None;
    }
    let digits = raw.get(8..8 + 2 * ndigits)?;
    // value = n x 10000^(weight - ndigits + 1), n the digits read as one integer.
    let mut n: i128 = 0;
    for pair in digits.chunks_exact(2) {
        n = n
            .checked_mul(10_000)?
            .checked_add(i128::from(u16::from_be_bytes([pair[0], pair[1]])))?;
    }
    // To the display scale: digits past it are left to the text path, which drops them.
    let mut exponent = 4 * (weight - i32::try_from(ndigits).ok()? + 1) + dscale;
    if exponent < 0 {
        let divisor = 10_i128.checked_pow(u32::try_from(-exponent).ok()?)?;
        if n % divisor != 0 {
            return None;
        }
        n /= divisor;
        exponent = 0;
    }
    // Then to the column's scale (at least the display scale).
    let value =
        n.checked_mul(10_i128.checked_pow(u32::try_from(exponent + scale - dscale).ok()?)?)?;
    Some(if sign == 0x4000 { -value } else { value })
}

/// Decimal text as an integer scaled by `scale` (the column's scale; the text has at most that
/// many fraction digits).
fn scaled(text: &str, scale: i8) -> Result<i128, String> {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Err(format!(
            "numeric {text}, which a decimal column cannot hold; cast the column to text in the model's SQL"
        ));
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale.max(0)).unwrap_or(0);
    let mut fraction = fraction.to_string();
    if fraction.len() > scale {
        return Err(format!(
            "numeric {text} has more than {scale} decimal places"
        ));
    }
    while fraction.len() < scale {
        fraction.push('0');
    }
    let value: i128 = format!("{whole}{fraction}")
        .parse()
        .map_err(|_| format!("numeric {text} does not fit 38 digits"))?;
    Ok(if negative { -value } else { value })
}

fn uuid_text(b: [u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An interval as an ISO-8601 duration, each part signed as PostgreSQL's `iso_8601` style does:
/// `P1Y2M3DT4H5M6.5S`, `P-1D`, `PT0S`.
pub(crate) fn interval_text(raw: &[u8]) -> Result<String, String> {
    let b = take::<16>(raw)?;
    let micros = i64::from_be_bytes(b[0..8].try_into().map_err(|_| "interval")?);
    let days = i32::from_be_bytes(b[8..12].try_into().map_err(|_| "interval")?);
    let months = i32::from_be_bytes(b[12..16].try_into().map_err(|_| "interval")?);
    let (years, months) = (months / 12, months % 12);
    let hours = micros / 3_600_000_000;
    let minutes = (micros % 3_600_000_000) / 60_000_000;
    let second_micros = micros % 60_000_000;
    let mut out = String::from("P");
    for (value, unit) in [
        (i64::from(years), 'Y'),
        (i64::from(months), 'M'),
        (i64::from(days), 'D'),
    ] {
        if value != 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if hours != 0 || minutes != 0 || second_micros != 0 {
        out.push('T');
        if hours != 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes != 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if second_micros != 0 {
            let sign = if second_micros < 0 { "-" } else { "" };
            let abs = second_micros.unsigned_abs();
            let (s, us) = (abs / 1_000_000, abs % 1_000_000);
            if us == 0 {
                out.push_str(&format!("{sign}{s}S"));
            } else {
                let fraction = format!("{us:06}");
                out.push_str(&format!("{sign}{s}.{}S", fraction.trim_end_matches('0')));
            }
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: &[u16], weight: i16, negative: bool, dscale: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((ndigits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(if negative { 0x4000u16 } else { 0 }.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in ndigits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_decode_exactly() {
        assert_eq!(
            numeric_text(&numeric(&[12, 3400], 0, true, 4)),
            Ok("-12.3400".into())
        );
        assert_eq!(
            numeric_text(&numeric(&[1, 0, 5], 2, false, 0)),
            Ok("100000005".into())
        );
        assert_eq!(
            numeric_text(&numeric(&[500], -1, false, 3)),
            Ok("0.050".into())
        );
        assert_eq!(numeric_text(&numeric(&[], 0, false, 2)), Ok("0.00".into()));
        assert_eq!(
            numeric_text(&numeric(&[1], 1, false, 0)),
            Ok("10000".into())
        );
        assert_eq!(scaled("-12.34", 4), Ok(-123_400));
        assert!(scaled("1.234", 2).is_err());
        assert!(scaled("NaN", 2).is_err());
        assert_eq!(numeric_modifier(((12 << 16) | 2) + 4), Some((12, 2)));
        assert_eq!(numeric_modifier(-1), None);
        assert_eq!(numeric_modifier(((60 << 16) | 2) + 4), None);
    }

    #[test]
    fn decimals_from_digits_are_what_the_decimal_text_says() {
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut checked = 0;
        for _ in 0..200_000 {
            let n = (next() % 12) as usize;
            let digits: Vec<u16> = (0..n).map(|_| (next() % 10_000) as u16).collect();
            let weight = (next() % 16) as i16 - 6;
            let dscale = (next() % 12) as u16;
            let scale = (next() % 14) as i8;
            let raw = numeric(&digits, weight, next() % 2 == 0, dscale);
            let slow = numeric_text(&raw).and_then(|t| scaled(&t, scale));
            assert_eq!(
                decimal(&raw, scale),
                slow,
                "{digits:?} weight {weight} dscale {dscale} scale {scale}"
            );
            if decimal_from_digits(&raw, scale).is_some() {
                checked += 1;
            }
        }
        // The fast path decided tens of thousands of them (the rest have digits past their
        // display scale, or a display scale past the column's, which PostgreSQL does not send
        // for a numeric(p, s) column, and go through the text).
        assert!(checked > 20_000, "{checked}");
        assert_eq!(decimal(&numeric(&[12, 3400], 0, true, 4), 4), Ok(-123_400));
        assert_eq!(decimal(&numeric(&[1, 5000], 0, false, 1), 2), Ok(150));
        let nan = {
            let mut v = numeric(&[], 0, false, 0);
            v[4..6].copy_from_slice(&0xC000u16.to_be_bytes());
            v
        };
        assert!(decimal(&nan, 2).is_err());
    }

    #[test]
    fn intervals_are_iso_durations() {
        let iv = |micros: i64, days: i32, months: i32| {
            let mut v = micros.to_be_bytes().to_vec();
            v.extend(days.to_be_bytes());
            v.extend(months.to_be_bytes());
            interval_text(&v)
        };
        assert_eq!(
            iv(4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000, 3, 14),
            Ok("P1Y2M3DT4H5M6.5S".into())
        );
        assert_eq!(iv(0, -1, 0), Ok("P-1D".into()));
        assert_eq!(iv(0, 0, 0), Ok("PT0S".into()));
        assert_eq!(iv(-1_000_001, 0, 0), Ok("PT-1.000001S".into()));
    }

    #[test]
    fn uuids_are_hyphenated() {
        let b: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        assert_eq!(uuid_text(b), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
