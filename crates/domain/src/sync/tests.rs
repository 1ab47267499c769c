use super::*;

fn spec(format: &str) -> FileSpec {
    FileSpec {
        format: format.into(),
        ..FileSpec::default()
    }
}

#[test]
fn defaults_and_extensions() {
    let s = spec("parquet").validate().expect("valid");
    assert_eq!(s.parquet.compression, ParquetCompression::Zstd);
    assert_eq!(s.extension(), "parquet");
    let s = FileSpec {
        compression: Some("gzip".into()),
        ..spec("csv")
    }
    .validate()
    .expect("valid");
    assert_eq!(s.extension(), "csv.gz");
    assert_eq!(s.compression.content_encoding(), Some("gzip"));
}

#[test]
fn options_for_another_format_are_refused() {
    let cases = [
        (
            FileSpec {
                csv_delimiter: Some(";".into()),
                ..spec("parquet")
            },
            "csv_delimiter",
            "applies to format csv only",
        ),
        (
            FileSpec {
                compression: Some("gzip".into()),
                ..spec("parquet")
            },
            "compression",
            "set parquet_compression",
        ),
        (
            FileSpec {
                xml_row: Some("1row".into()),
                ..spec("xml")
            },
            "xml_row",
            "XML element name",
        ),
        (
            FileSpec {
                csv_delimiter: Some(";;".into()),
                ..spec("csv")
            },
            "csv_delimiter",
            "exactly one character",
        ),
        (
            FileSpec {
                csv_quote: Some(",".into()),
                ..spec("csv")
            },
            "csv_quote",
            "differ from the delimiter",
        ),
        (
            FileSpec {
                csv_null: Some("a,b".into()),
                ..spec("csv")
            },
            "csv_null",
            "cannot contain the delimiter",
        ),
        (
            spec("excel"),
            "format",
            "parquet, csv, ndjson, json, xml, avro",
        ),
    ];
    for (spec, field, want) in cases {
        let err = spec.validate().expect_err(field);
        assert_eq!(err.field, field);
        assert!(err.reason.contains(want), "{field}: {}", err.reason);
    }
    assert_eq!(
        FileSpec {
            csv_delimiter: Some("tab".into()),
            ..spec("csv")
        }
        .validate()
        .expect("tab")
        .csv
        .delimiter,
        b'\t'
    );
}

#[test]
fn columns_parse_with_renames() {
    let c = ColumnMapping::parse_list("id, email:contact_email ,name").expect("valid");
    assert_eq!(c[1].source, "email");
    assert_eq!(c[1].target, "contact_email");
    assert_eq!(c[2].target, "name");
    for bad in ["a,,b", "a:b:c", "a:x,b:x", ":x"] {
        assert_eq!(
            ColumnMapping::parse_list(bad).expect_err(bad).field,
            "columns"
        );
    }
}

fn settings(template: &str) -> SyncSettings {
    SyncSettings {
        file: spec("csv").validate().expect("csv"),
        columns: vec![],
        key_template: template.into(),
        max_rows_per_file: None,
        max_bytes_per_file: None,
        manifest: false,
        on_empty: OnEmpty::EmptyFile,
        overwrite: false,
        mode: Default::default(),
        diff_layout: Default::default(),
    }
}

#[test]
fn joined_rules() {
    assert!(settings(DEFAULT_KEY_TEMPLATE).validate().is_ok());
    let split = SyncSettings {
        max_rows_per_file: Some(10),
        ..settings("{sync}/{run}.{ext}")
    };
    assert!(
        split
            .validate()
            .expect_err("no part")
            .reason
            .contains("{part}")
    );
    let fixed = settings("latest/customers.{ext}");
    assert!(
        fixed
            .validate()
            .expect_err("fixed")
            .reason
            .contains("let the sync overwrite")
    );
    let fixed = SyncSettings {
        overwrite: true,
        ..settings("latest/customers.{ext}")
    };
    assert!(fixed.validate().is_ok());
    let manifest = SyncSettings {
        manifest: true,
        ..settings(DEFAULT_KEY_TEMPLATE)
    };
    assert!(
        manifest
            .validate()
            .expect_err("shared folder")
            .reason
            .contains("folder of its own")
    );
    let manifest = SyncSettings {
        manifest: true,
        ..settings("{sync}/{run}/part-{part}.{ext}")
    };
    assert!(manifest.validate().is_ok());
}

#[test]
fn csv_characters_are_text_in_json_and_old_byte_values_still_read() {
    let options = CsvOptions {
        delimiter: b'\t',
        ..CsvOptions::default()
    };
    let json = serde_json::to_value(&options).expect("json");
    assert_eq!(json["delimiter"], "\t");
    assert_eq!(json["quote"], "\"");
    let back: CsvOptions = serde_json::from_value(json).expect("read back");
    assert_eq!(back, options);
    let old =
        serde_json::json!({"delimiter": 59, "quote": 34, "header": true, "null": "", "bom": false});
    let read: CsvOptions = serde_json::from_value(old).expect("an older store's bytes");
    assert_eq!(read.delimiter, b';');
    let bad = serde_json::json!({"delimiter": ";;", "quote": "\"", "header": true, "null": "", "bom": false});
    assert!(serde_json::from_value::<CsvOptions>(bad).is_err());
}

#[test]
fn the_change_variable_belongs_to_diffs_by_kind_of_change() {
    let with_change = "{sync}/{run}/{change}-{part}.{ext}";
    let err = settings(with_change).validate().expect_err("mode all");
    assert_eq!(err.field, "key_template");
    assert!(
        err.reason
            .contains("this sync's mode is all: remove {change}"),
        "{}",
        err.reason
    );
    let column = SyncSettings {
        mode: SyncMode::Diff,
        ..settings(with_change)
    };
    assert!(
        column
            .validate()
            .expect_err("column layout")
            .reason
            .contains("diff with diff_layout column")
    );
    let files = SyncSettings {
        mode: SyncMode::Diff,
        diff_layout: DiffLayout::Files,
        ..settings(DEFAULT_KEY_TEMPLATE)
    };
    let err = files.clone().validate().expect_err("no {change}");
    assert!(
        err.reason.contains("put {change} in the key template"),
        "{}",
        err.reason
    );
    let files = SyncSettings {
        key_template: with_change.into(),
        ..files
    };
    assert!(files.clone().validate().is_ok());
    let in_folder = SyncSettings {
        manifest: true,
        key_template: "{sync}/{run}/{change}/part-{part}.{ext}".into(),
        ..files
    };
    assert!(
        in_folder
            .validate()
            .expect_err("manifest folder")
            .reason
            .contains("keep {part} and {change} out of the folders")
    );
}

#[test]
fn modes_parse_and_stored_syncs_without_one_are_all() {
    assert_eq!(SyncMode::parse("DIFF").expect("diff"), SyncMode::Diff);
    let err = SyncMode::parse("mirror").expect_err("unknown");
    assert_eq!(err.field, "mode");
    assert!(
        err.reason.contains("all, insert, diff, delta"),
        "{}",
        err.reason
    );
    assert_eq!(
        DiffLayout::parse("files").expect("files"),
        DiffLayout::Files
    );
    let mut stored = serde_json::to_value(settings(DEFAULT_KEY_TEMPLATE)).expect("json");
    let object = stored.as_object_mut().expect("object");
    object.remove("mode");
    object.remove("diff_layout");
    let read: SyncSettings = serde_json::from_value(stored).expect("reads");
    assert_eq!(read.mode, SyncMode::All);
    assert_eq!(read.diff_layout, DiffLayout::Column);
    assert!(!read.mode.compares() && SyncMode::Delta.compares());
}
