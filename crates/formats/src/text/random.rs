//! Random batches of every type a file can hold, for the differential tests of the text
//! encoders against arrow's writers: nulls, unicode, every byte that needs quoting or escaping,
//! extreme numbers, dates and timestamps far from today, decimals of every scale.

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, LargeStringArray, RecordBatch,
    StringArray, StringViewArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    TimestampSecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use std::sync::Arc;

/// A small deterministic generator (xorshift64*): no dependency, the same batches every run.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn null(&mut self) -> bool {
        self.below(7) == 0
    }
}

/// Text with what a writer must get right: delimiters, quotes, line breaks, backslashes,
/// control characters, unicode of every width, and plain words.
fn text(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "a",
        "Zoë",
        "O'Brien",
        "say \"hi\"",
        ",",
        ";",
        "\t",
        "|",
        "\r\n",
        "\n",
        "\r",
        "\\",
        "/",
        " ",
        "é",
        "Αθηνά",
        "顧客",
        "🙂",
        "\u{1}",
        "\u{1f}",
        "\u{7f}",
        "\u{2028}",
        "&",
        "<",
        ">",
        "\u{FFFD}",
        "\u{FFFE}",
        "\u{FFFF}",
        "\u{F8FF}",
        "-",
        ".",
        "1e5",
        "NULL",
        "",
    ];
    let n = rng.below(5);
    (0..n)
        .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
        .collect()
}

fn float(rng: &mut Rng) -> f64 {
    match rng.below(10) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => -0.0,
        4 => 1e300 * (rng.below(1000) as f64),
        5 => 1e-300 / (1.0 + rng.below(1000) as f64),
        6 => (rng.below(1_000_000) as f64) / 100.0,
        _ => f64::from_bits(rng.next()),
    }
}

/// Days since 1970: mostly recent, sometimes before 1970 or outside years 0..=9999.
fn day(rng: &mut Rng) -> i32 {
    match rng.below(8) {
        0 => -(rng.below(800_000) as i32),
        1 => 2_932_897 + rng.below(100_000) as i32, // past 9999-12-31
        2 => -719_528 - rng.below(10_000) as i32,   // before year 0
        _ => 19_000 + rng.below(2_000) as i32,
    }
}

fn micros(rng: &mut Rng) -> i64 {
    let day = i64::from(day(rng)) * 86_400_000_000;
    let within = match rng.below(4) {
        0 => rng.below(86_400) as i64 * 1_000_000,
        1 => rng.below(86_400_000) as i64 * 1_000,
        _ => rng.below(86_400_000_000) as i64,
    };
    day + within
}

/// `rows` rows of every type, each column about one value in seven null.
pub(crate) fn batch(seed: u64, rows: usize) -> RecordBatch {
    let mut rng = Rng::new(seed);
    let r = &mut rng;
    macro_rules! column {
        ($array:ty, $value:expr) => {{
            let values: Vec<_> = (0..rows)
                .map(|_| if r.null() { None } else { Some($value) })
                .collect();
            Arc::new(<$array>::from_iter(values)) as ArrayRef
        }};
    }
    let decimal = |r: &mut Rng, precision: u8, scale: i8| -> ArrayRef {
        let bound = 10_i128.pow(u32::from(precision));
        let values: Vec<Option<i128>> = (0..rows)
            .map(|_| {
                (!r.null()).then(|| {
                    let v = (i128::from(r.next()) << 64 | i128::from(r.next())) % bound;
                    if r.below(3) == 0 { v % 1000 } else { v }
                })
            })
            .collect();
        Arc::new(
            Decimal128Array::from(values)
                .with_precision_and_scale(precision, scale)
                .expect("decimal type"),
        )
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("i8", column!(Int8Array, r.next() as i8)),
        ("i16", column!(Int16Array, r.next() as i16)),
        ("i32", column!(Int32Array, r.next() as i32)),
        ("i64", column!(Int64Array, r.next() as i64)),
        ("u8", column!(UInt8Array, r.next() as u8)),
        ("u16", column!(UInt16Array, r.next() as u16)),
        ("u32", column!(UInt32Array, r.next() as u32)),
        ("u64", column!(UInt64Array, r.next())),
        ("f32", column!(Float32Array, float(r) as f32)),
        ("f64", column!(Float64Array, float(r))),
        ("bool", column!(BooleanArray, r.below(2) == 0)),
        ("text", column!(StringArray, text(r))),
        ("large_text", column!(LargeStringArray, text(r))),
        ("view_text", column!(StringViewArray, text(r))),
        ("date", column!(Date32Array, day(r))),
        (
            "date64",
            column!(Date64Array, i64::from(day(r)) * 86_400_000),
        ),
        ("ts", column!(TimestampMicrosecondArray, micros(r))),
        (
            "ts_utc",
            Arc::new(
                TimestampMicrosecondArray::from(
                    (0..rows)
                        .map(|_| (!r.null()).then(|| micros(r)))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ),
        ("ts_s", column!(TimestampSecondArray, micros(r) / 1_000_000)),
        (
            "time",
            column!(Time64MicrosecondArray, r.below(86_400_000_000) as i64),
        ),
        ("dec_38_0", decimal(r, 38, 0)),
        ("dec_10_2", decimal(r, 10, 2)),
        ("dec_38_10", decimal(r, 38, 10)),
        ("dec_5_5", decimal(r, 5, 5)),
        ("dec_neg_scale", decimal(r, 6, -2)),
        (
            "binary",
            column!(BinaryArray, {
                let n = r.below(4) as usize;
                (0..n).map(|_| r.next() as u8).collect::<Vec<u8>>()
            }),
        ),
    ];
    RecordBatch::try_from_iter(columns).expect("batch")
}
