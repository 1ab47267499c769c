//! Values as bytes, exactly as arrow's `ArrayFormatter` writes them with default options, but
//! appended straight to a buffer: integers with `itoa` (the same digits as arrow's `lexical`),
//! floats as `ryu` writes them (what arrow uses: amounts from their integer hundredths, others
//! with `zmij`), dates and timestamps from a table of day prefixes, decimals from their integer
//! digits. A value these cannot write exactly (a year outside 0..=9999, a
//! negative decimal scale, a decimal wider than its precision) returns `false`, and the caller
//! formats it with arrow instead.

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// 1900-01-01 and 2100-01-01, in days since 1970-01-01: the days [`DAYS`] holds.
const TABLE_FIRST_DAY: i64 = -25_567;
const TABLE_END_DAY: i64 = 47_482;

/// `YYYY-MM-DD` of every day of the years 1900 to 2099 (714 KiB, built at first use). Columns
/// of dates spread over years (birth dates, signups, purchases) would otherwise convert nearly
/// every value: 6% of the 10M-row CSV export's CPU went to that.
static DAYS: std::sync::LazyLock<Vec<[u8; 10]>> = std::sync::LazyLock::new(|| {
    (TABLE_FIRST_DAY..TABLE_END_DAY)
        .filter_map(|day| civil_from_days(day).map(|(y, m, d)| date_text(y, m, d)))
        .collect()
});

/// `YYYY-MM-DD`, for a year of at most four digits.
fn date_text(year: u32, month: u32, dom: u32) -> [u8; 10] {
    [
        b'0' + (year / 1000) as u8,
        b'0' + (year / 100 % 10) as u8,
        b'0' + (year / 10 % 10) as u8,
        b'0' + (year % 10) as u8,
        b'-',
        b'0' + (month / 10) as u8,
        b'0' + (month % 10) as u8,
        b'-',
        b'0' + (dom / 10) as u8,
        b'0' + (dom % 10) as u8,
    ]
}

/// `YYYY-MM-DD` of the last day written outside [`DAYS`], so a column of timestamps from the
/// same few days converts each day once.
#[derive(Default)]
pub(crate) struct DayCache {
    day: Option<i64>,
    text: [u8; 10],
    /// The day's year is outside 0..=9999: arrow writes it differently (`+10000-01-01`).
    out_of_range: bool,
}

impl DayCache {
    /// The day (since 1970-01-01) as `YYYY-MM-DD`, or none when arrow would write it otherwise.
    fn date(&mut self, day: i64) -> Option<&[u8; 10]> {
        if let Some(text) = usize::try_from(day - TABLE_FIRST_DAY)
            .ok()
            .and_then(|i| DAYS.get(i))
        {
            return Some(text);
        }
        if self.day != Some(day) {
            self.day = Some(day);
            match civil_from_days(day) {
                Some((year, month, dom)) => {
                    self.text = date_text(year, month, dom);
                    self.out_of_range = false;
                }
                _ => self.out_of_range = true,
            }
        }
        (!self.out_of_range).then_some(&self.text)
    }

    /// A `Date32` value as arrow writes it (`2026-01-31`).
    pub(crate) fn write_date32(&mut self, days: i32, out: &mut Vec<u8>) -> bool {
        match self.date(i64::from(days)) {
            Some(text) => {
                out.extend_from_slice(text);
                true
            }
            None => false,
        }
    }

    /// A `Timestamp(Microsecond, _)` value as arrow writes it: `2026-01-31T07:13:00`, with
    /// `.123` or `.123456` when the fraction is not zero, and `Z` when the column has a zone
    /// (always UTC in a file's schema). Built on the stack and appended as one fixed-size copy.
    pub(crate) fn write_timestamp_micros(
        &mut self,
        micros: i64,
        utc: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let day = micros.div_euclid(DAY_MICROS);
        let in_day = micros.rem_euclid(DAY_MICROS);
        let Some(date) = self.date(day) else {
            return false;
        };
        let mut text = [0u8; 28];
        text[..10].copy_from_slice(date);
        let seconds = (in_day / 1_000_000) as u32;
        let mut fraction = (in_day % 1_000_000) as u32;
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        text[10..19].copy_from_slice(&[
            b'T',
            b'0' + (h / 10) as u8,
            b'0' + (h % 10) as u8,
            b':',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b':',
            b'0' + (s / 10) as u8,
            b'0' + (s % 10) as u8,
        ]);
        let mut len = 19;
        if fraction != 0 {
            // Milliseconds are the first three of the six digits.
            len = if fraction.is_multiple_of(1000) {
                23
            } else {
                26
            };
            text[19] = b'.';
            for digit in text[20..26].iter_mut().rev() {
                *digit = b'0' + (fraction % 10) as u8;
                fraction /= 10;
            }
        }
        if utc {
            text[len] = b'Z';
            len += 1;
        }
        let start = out.len();
        out.extend_from_slice(&text);
        out.truncate(start + len);
        true
    }
}

/// Below this, a float that is some integer divided by 100 is written from that integer: the
/// doubles here are closer together than 0.01, so no other decimal of two places or fewer reads
/// back as the same value, and that decimal is the shortest (what ryu writes).
const HUNDREDTHS_BELOW: f64 = (1_u64 << 46) as f64;

/// An `f64` as arrow writes it (see [`write_float`]). Amounts and prices, with at most two
/// decimals, are common floats in business data: they are written from their integer hundredths,
/// checked to read back as the same value, at a fraction of the shortest-digits search.
pub(crate) fn write_f64(value: f64, out: &mut Vec<u8>) -> bool {
    write_hundredths(value, out) || write_float(value, out)
}

/// An `f64` below 2^46 with at most two decimals, from its integer hundredths (see
/// [`write_f64`]); `false`, with nothing written, for any other.
pub(crate) fn write_hundredths(value: f64, out: &mut Vec<u8>) -> bool {
    if value.abs() < HUNDREDTHS_BELOW {
        let scaled = value * 100.0;
        let hundredths = (scaled + 0.5_f64.copysign(scaled)) as i64;
        // Exact: the division rounds correctly, so this decimal reads back as `value`.
        if hundredths as f64 / 100.0 == value {
            if value.is_sign_negative() {
                out.push(b'-');
            }
            let n = hundredths.unsigned_abs();
            out.extend_from_slice(itoa::Buffer::new().format(n / 100).as_bytes());
            let cents = (n % 100) as u8;
            if cents.is_multiple_of(10) {
                out.extend_from_slice(&[b'.', b'0' + cents / 10]);
            } else {
                out.extend_from_slice(&[b'.', b'0' + cents / 10, b'0' + cents % 10]);
            }
            return true;
        }
    }
    false
}

/// A float as arrow writes it (with `ryu`): the shortest digits that read back as the same
/// value, `NaN`, `inf`, `-inf`. `zmij` finds the same digits faster (17% of the CSV encoder's
/// profile with ryu, 12% with zmij) but writes a positive exponent as `e+16` where ryu writes
/// `e16`, so a value with an exponent (below 1e-5 or from 1e16) is written by ryu.
pub(crate) fn write_float<F: zmij::Float + ryu::Float>(value: F, out: &mut Vec<u8>) -> bool {
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format(value).as_bytes();
    if memchr::memchr(b'e', text).is_none() {
        out.extend_from_slice(text);
    } else {
        out.extend_from_slice(ryu::Buffer::new().format(value).as_bytes());
    }
    true
}

/// A `Decimal128(precision, scale)` value as arrow writes it (`-0.05`, `12.50`, `125`).
pub(crate) fn write_decimal128(value: i128, precision: u8, scale: i8, out: &mut Vec<u8>) -> bool {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value).as_bytes();
    let (sign, rest) = match text.split_first() {
        Some((b'-', rest)) => (&b"-"[..], rest),
        _ => (&b""[..], text),
    };
    // Arrow cuts digits beyond the precision and pads negative scales: rare, left to arrow.
    if scale < 0 || rest.len() > usize::from(precision) {
        return false;
    }
    let scale = scale as usize;
    if scale == 0 {
        out.extend_from_slice(text);
    } else if rest.len() > scale {
        let (whole, fraction) = text.split_at(text.len() - scale);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    } else {
        out.extend_from_slice(sign);
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - rest.len(), b'0');
        out.extend_from_slice(rest);
    }
    true
}

/// Year, month and day of a day counted from 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, in integers), for years 0..=9999 only.
fn civil_from_days(day: i64) -> Option<(u32, u32, u32)> {
    // Days from 0000-03-01 (the algorithm's eras start in March); no overflow for any day an
    // i64 of microseconds or an i32 of days can hold.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dom = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some((year as u32, month as u32, dom as u32))
}

#[cfg(test)]
mod tests {
    use super::{
        DAYS, DayCache, TABLE_END_DAY, TABLE_FIRST_DAY, civil_from_days, date_text, write_f64,
        write_float,
    };
    use chrono::{Datelike as _, NaiveDate};

    /// The table holds every day from 1900-01-01 to 2099-12-31, each as the conversion writes
    /// it, and days on either side of it are converted.
    #[test]
    fn the_day_table_is_the_conversion_of_every_day_it_holds() {
        assert_eq!(DAYS.len() as i64, TABLE_END_DAY - TABLE_FIRST_DAY);
        assert_eq!(&DAYS[0], b"1900-01-01");
        assert_eq!(DAYS.last().map(|d| &d[..]), Some(&b"2099-12-31"[..]));
        let mut cache = DayCache::default();
        for day in TABLE_FIRST_DAY - 800..TABLE_END_DAY + 800 {
            let (y, m, d) = civil_from_days(day).expect("a four-digit year");
            assert_eq!(cache.date(day), Some(&date_text(y, m, d)), "day {day}");
        }
        assert_eq!(cache.date(3_000_000), None);
    }

    /// zmij's digits with ryu's exponents: every float is written as ryu writes it.
    #[test]
    fn floats_are_written_as_ryu_writes_them() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            0.01,
            -0.05,
            1e-5,
            1e-7,
            0.0001,
            123456.789,
            1e15,
            1e16,
            1e17,
            1.5e300,
            70_368_744_177_663.99,
            70_368_744_177_664.0,
            70_368_744_177_664.5,
            9_007_199_254_740_993.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for _ in 0..200_000 {
            let bits = next();
            values.push(f64::from_bits(bits));
            values.push((bits % 100_000_000) as f64 / 100.0);
            // Amounts of every size up to past the hundredths limit, some a hair off.
            let amount = (bits >> 8) as f64 / 100.0 * if bits & 1 == 0 { 1.0 } else { -1.0 };
            values.extend([amount, amount.next_up(), amount / 10.0, amount / 1000.0]);
        }
        for value in values {
            let mut out = Vec::new();
            write_f64(value, &mut out);
            assert_eq!(
                out,
                ryu::Buffer::new().format(value).as_bytes(),
                "{value:e}"
            );
            let single = value as f32;
            out.clear();
            write_float(single, &mut out);
            assert_eq!(
                out,
                ryu::Buffer::new().format(single).as_bytes(),
                "{single:e}"
            );
        }
    }

    #[test]
    fn every_day_of_years_0_to_9999_is_the_date_chrono_gives() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        for day in -800_000_i64..3_000_000 {
            let date = epoch + chrono::Duration::days(day);
            let want = (0..=9999)
                .contains(&date.year())
                .then(|| (date.year() as u32, date.month(), date.day()));
            assert_eq!(civil_from_days(day), want, "day {day} ({date})");
        }
        assert_eq!(civil_from_days(i64::from(i32::MIN)), None);
        assert_eq!(civil_from_days(106_751_991), None);
    }
}
