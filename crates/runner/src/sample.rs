//! Deterministic sample data: the customers and orders of `wharf demo`, and the customers table
//! `scripts/bench` exports. Same seed, same bytes, on every machine.

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::path::Path;
use std::sync::Arc;
use wharf_domain::{FileSettings, FileSpec};
use wharf_formats::FileWriter;

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Emma", "Liam", "Olivia", "Noah", "Zoë", "José", "Björn", "Chloé", "Mateo", "Aïcha", "Yuki",
    "Søren", "Ana", "Łukasz", "Nadia", "Omar", "Lena", "Hugo", "Inès", "Marta",
];
const LAST: &[&str] = &[
    "Smith", "Martin", "Müller", "García", "Rossi", "Dubois", "Nowak", "Silva", "Kowalski",
    "O'Brien", "Jensen", "Novák", "Lefèvre", "Schmidt", "Tanaka", "Haddad", "Costa", "Ivanova",
];
/// Country codes with a skew: about 40% US, then a long tail.
const COUNTRIES: &[(&str, u32, &[&str])] = &[
    ("US", 40, &["New York", "Austin", "San José", "Seattle"]),
    ("FR", 15, &["Paris", "Lyon", "Besançon", "Orléans"]),
    ("DE", 10, &["Berlin", "München", "Köln", "Düsseldorf"]),
    ("GB", 10, &["London", "Manchester", "Edinburgh"]),
    ("ES", 6, &["Madrid", "A Coruña", "Cádiz"]),
    ("BR", 5, &["São Paulo", "Brasília", "Belém"]),
    ("PL", 4, &["Kraków", "Łódź", "Gdańsk"]),
    ("CA", 4, &["Montréal", "Québec", "Toronto"]),
    ("JP", 3, &["東京", "大阪", "Sapporo"]),
    ("EG", 3, &["القاهرة", "Alexandria"]),
];
const SEGMENTS: &[&str] = &["churn_risk", "loyal", "new", "vip"];
const STATUSES: &[&str] = &["paid", "shipped", "delivered", "refunded", "cancelled"];

/// 2018-01-01T00:00:00Z and 2026-01-01T00:00:00Z in microseconds.
const SIGNUP_FROM: i64 = 1_514_764_800_000_000;
const SIGNUP_TO: i64 = 1_767_225_600_000_000;
/// 2026-01-01 as days since the epoch.
const LAST_DAY: i32 = 20_454;

pub fn customers_schema() -> SchemaRef {
    let utc = Some(Arc::from("UTC"));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("email", DataType::Utf8, false),
        Field::new("first_name", DataType::Utf8, false),
        Field::new("last_name", DataType::Utf8, false),
        Field::new("country_code", DataType::Utf8, false),
        Field::new("city", DataType::Utf8, false),
        Field::new(
            "signup_ts",
            DataType::Timestamp(TimeUnit::Microsecond, utc),
            false,
        ),
        Field::new("last_purchase", DataType::Date32, true),
        Field::new("lifetime_value", DataType::Float64, false),
        Field::new("orders", DataType::Int32, false),
        Field::new("is_subscribed", DataType::Boolean, false),
        Field::new("segment", DataType::Utf8, true),
    ]))
}

/// Customers `from..to` (ids from 1): each row depends only on its id.
pub fn customers_batch(from: u64, to: u64) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = (to - from) as usize;
    let mut id = Int64Builder::with_capacity(n);
    let mut email = StringBuilder::with_capacity(n, n * 32);
    let mut first = StringBuilder::with_capacity(n, n * 6);
    let mut last = StringBuilder::with_capacity(n, n * 7);
    let mut country = StringBuilder::with_capacity(n, n * 2);
    let mut city = StringBuilder::with_capacity(n, n * 8);
    let mut signup = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut purchase = Date32Builder::with_capacity(n);
    let mut ltv = Float64Builder::with_capacity(n);
    let mut orders = Int32Builder::with_capacity(n);
    let mut subscribed = BooleanBuilder::with_capacity(n);
    let mut segment = StringBuilder::with_capacity(n, n * 5);
    let total_weight: u32 = COUNTRIES.iter().map(|c| c.1).sum();
    for i in from..to {
        let mut r = Rng(i.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let f = r.pick(FIRST);
        let l = r.pick(LAST);
        id.append_value(i as i64);
        first.append_value(f);
        last.append_value(l);
        let local: String = format!("{f}.{l}")
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        email.append_value(format!("{local}.{i}@example.com"));
        let mut w = r.below(u64::from(total_weight)) as u32;
        let (code, _, cities) = COUNTRIES
            .iter()
            .find(|c| {
                if w < c.1 {
                    true
                } else {
                    w -= c.1;
                    false
                }
            })
            .copied()
            .unwrap_or(COUNTRIES[0]);
        country.append_value(code);
        city.append_value(r.pick(cities));
        let ts = SIGNUP_FROM + (r.unit() * (SIGNUP_TO - SIGNUP_FROM) as f64) as i64;
        signup.append_value(ts);
        if r.below(100) < 17 {
            purchase.append_null();
        } else {
            purchase.append_value(LAST_DAY - r.below(900) as i32);
        }
        let n_orders = r.below(40) as i32;
        orders.append_value(n_orders);
        ltv.append_value((f64::from(n_orders) * (20.0 + r.unit() * 180.0) * 100.0).round() / 100.0);
        subscribed.append_value(r.below(100) < 62);
        if r.below(2) == 0 {
            segment.append_null();
        } else {
            segment.append_value(r.pick(SEGMENTS));
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(email.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(country.finish()),
        Arc::new(city.finish()),
        Arc::new(signup.finish()),
        Arc::new(purchase.finish()),
        Arc::new(ltv.finish()),
        Arc::new(orders.finish()),
        Arc::new(subscribed.finish()),
        Arc::new(segment.finish()),
    ];
    RecordBatch::try_new(customers_schema(), columns)
}

pub fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new(
            "ordered_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            false,
        ),
        Field::new("amount", DataType::Decimal128(12, 2), false),
        Field::new("status", DataType::Utf8, false),
    ]))
}

/// About three orders per customer of `1..=customers`, dated in the 400 days to `until`
/// (microseconds since the epoch).
fn orders_batch(
    customers_from: u64,
    customers_to: u64,
    first_order: &mut i64,
    until: i64,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut order_id = Int64Builder::new();
    let mut customer = Int64Builder::new();
    let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut amount = Decimal128Builder::new().with_precision_and_scale(12, 2)?;
    let mut status = StringBuilder::new();
    for c in customers_from..customers_to {
        let mut r = Rng(c.wrapping_mul(0x9E37_79B9) ^ 0xA5A5);
        for _ in 0..r.below(7) {
            order_id.append_value(*first_order);
            *first_order += 1;
            customer.append_value(c as i64);
            at.append_value(until - (r.unit() * 400.0 * 86_400e6) as i64);
            amount.append_value(500 + r.below(50_000) as i128);
            status.append_value(r.pick(STATUSES));
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(order_id.finish()),
        Arc::new(customer.finish()),
        Arc::new(at.finish()),
        Arc::new(amount.finish()),
        Arc::new(status.finish()),
    ];
    RecordBatch::try_new(orders_schema(), columns)
}

const BATCH: u64 = 65_536;

fn parquet() -> Result<FileSettings, String> {
    FileSpec {
        format: "parquet".into(),
        ..FileSpec::default()
    }
    .validate()
    .map_err(|e| e.to_string())
}

/// Writes `rows` customers to a Parquet file (zstd).
pub fn write_customers(path: &Path, rows: u64) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut writer = FileWriter::new(
        &parquet()?,
        &customers_schema(),
        std::io::BufWriter::new(file),
    )
    .map_err(|e| e.to_string())?;
    let mut from = 1;
    while from <= rows {
        let to = (from + BATCH).min(rows + 1);
        let batch = customers_batch(from, to).map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
        from = to;
    }
    writer.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// 2026-01-01T00:00:00Z, where the sample's orders end unless told otherwise.
pub const ORDERS_UNTIL: i64 = SIGNUP_TO;

/// Writes the orders of customers `1..=customers` to a Parquet file (zstd), dated in the 400
/// days to `until` (microseconds since the epoch; [`ORDERS_UNTIL`] for the fixed sample).
pub fn write_orders(path: &Path, customers: u64, until: i64) -> Result<u64, String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut writer = FileWriter::new(&parquet()?, &orders_schema(), std::io::BufWriter::new(file))
        .map_err(|e| e.to_string())?;
    let mut next_order = 1;
    let mut from = 1;
    while from <= customers {
        let to = (from + BATCH).min(customers + 1);
        let batch = orders_batch(from, to, &mut next_order, until).map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
        from = to;
    }
    writer.finish().map_err(|e| e.to_string())?;
    Ok((next_order - 1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_deterministic_and_shaped() {
        let a = customers_batch(1, 1001).expect("batch");
        let b = customers_batch(1, 1001).expect("batch");
        assert_eq!(a, b);
        assert_eq!(a.num_rows(), 1000);
        let nulls = a.column(7).null_count();
        assert!((100..250).contains(&nulls), "last_purchase nulls {nulls}");
        let seg_nulls = a.column(11).null_count();
        assert!((400..600).contains(&seg_nulls), "segment nulls {seg_nulls}");
    }
}
