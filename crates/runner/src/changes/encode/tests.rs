use super::*;
use arrow::array::{
    DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array, LargeStringArray,
    ListArray, StringArray, StringViewArray, TimestampMillisecondArray, TimestampSecondArray,
};
use arrow::datatypes::Int8Type as Key8;
use std::sync::Arc;

fn encode(columns: &[ArrayRef]) -> Vec<Vec<u8>> {
    let mut rows = vec![Vec::new(); columns[0].len()];
    for (i, c) in columns.iter().enumerate() {
        append_column(&format!("c{i}"), c, &mut rows).expect("encodes");
    }
    rows
}

fn one(column: ArrayRef) -> Vec<Vec<u8>> {
    encode(&[column])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes and the hash of a row are wharf's stored format: this table is the contract. The
/// hashes were computed from the same bytes by Python's `xxhash` package (a binding of the
/// reference C implementation), not by the code under test.
#[test]
fn the_encoding_and_the_hash_of_a_row_never_change() {
    let rows = encode(&[
        Arc::new(Int64Array::from(vec![42])),
        Arc::new(StringArray::from(vec!["é"])),
        Arc::new(Float64Array::from(vec![None::<f64>])),
    ]);
    assert_eq!(hex(&rows[0]), "022a00000000000000070200000000000000c3a900");
    assert_eq!(
        format!("{:032x}", row_hash(&rows[0])),
        "d52218366689652dfdc906cdd3672fcc"
    );
    assert_eq!(
        format!("{:016x}", twox_hash::XxHash3_64::oneshot(&rows[0])),
        "e0154ffdc3a88d76"
    );
    // XXH3's published values for the empty input.
    assert_eq!(
        format!("{:032x}", row_hash(b"")),
        "99aa06d3014798d86001c324468d497f"
    );
    assert_eq!(
        format!("{:016x}", twox_hash::XxHash3_64::oneshot(b"")),
        "2d06800538d394c2"
    );
}

#[test]
fn null_and_the_empty_string_differ() {
    let rows = one(Arc::new(StringArray::from(vec![None, Some("")])));
    assert_eq!(hex(&rows[0]), "00");
    assert_eq!(hex(&rows[1]), "070000000000000000");
    assert_ne!(row_hash(&rows[0]), row_hash(&rows[1]));
}

#[test]
fn a_value_is_the_same_whatever_its_storage_width_or_layout() {
    assert_eq!(
        one(Arc::new(Int32Array::from(vec![5, -1]))),
        one(Arc::new(Int64Array::from(vec![5, -1])))
    );
    assert_eq!(
        one(Arc::new(Float32Array::from(vec![1.5]))),
        one(Arc::new(Float64Array::from(vec![1.5])))
    );
    let plain = one(Arc::new(StringArray::from(vec![
        Some("a"),
        None,
        Some("ü"),
    ])));
    assert_eq!(
        plain,
        one(Arc::new(LargeStringArray::from(vec![
            Some("a"),
            None,
            Some("ü")
        ])))
    );
    assert_eq!(
        plain,
        one(Arc::new(StringViewArray::from(vec![
            Some("a"),
            None,
            Some("ü")
        ])))
    );
    let dictionary: DictionaryArray<Key8> = vec![Some("a"), None, Some("ü")].into_iter().collect();
    assert_eq!(plain, one(Arc::new(dictionary)));
    // The same instant in seconds and in milliseconds.
    assert_eq!(
        one(Arc::new(TimestampSecondArray::from(vec![1_700_000_000]))),
        one(Arc::new(TimestampMillisecondArray::from(vec![
            1_700_000_000_000
        ])))
    );
}

#[test]
fn nans_are_one_value_and_negative_zero_is_its_own() {
    let quiet = f64::NAN;
    let other = f64::from_bits(0x7ff0_0000_0000_0001);
    let rows = one(Arc::new(Float64Array::from(vec![
        quiet, other, -quiet, 0.0, -0.0,
    ])));
    assert_eq!(rows[0], rows[1]);
    assert_eq!(rows[0], rows[2]);
    assert_ne!(rows[3], rows[4]);
}

#[test]
fn signed_and_unsigned_integers_and_floats_stay_apart() {
    let signed = one(Arc::new(Int64Array::from(vec![1])));
    let unsigned = one(Arc::new(arrow::array::UInt64Array::from(vec![1])));
    let float = one(Arc::new(Float64Array::from(vec![1.0])));
    assert_ne!(signed, unsigned);
    assert_ne!(signed, float);
}

#[test]
fn a_type_without_an_encoding_is_refused_with_the_column_name() {
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    let column: ArrayRef = Arc::new(list);
    assert!(!supported(column.data_type()));
    let mut rows = vec![Vec::new()];
    let err = append_column("tags", &column, &mut rows).expect_err("lists have no encoding");
    assert_eq!(err.column, "tags");
    assert!(err.to_string().contains("cast it to text"), "{err}");
}

#[test]
fn partitions_split_into_whole_finer_partitions() {
    for key in [b"a".as_slice(), b"42", b"\x02\x2a\0\0\0\0\0\0\0"] {
        let coarse = partition_of(key, 4);
        let fine = partition_of(key, 6);
        assert_eq!(fine >> 2, coarse);
        assert!(coarse < 16 && fine < 64);
    }
    assert_eq!(partition_of(b"anything", 0), 0);
}
