//! What a sync writes: file format and its options, columns, key template, file splitting,
//! manifest, empty-result policy and overwrite rule.

use crate::error::InvalidValue;
use crate::key_template::{DEFAULT_KEY_TEMPLATE, KeyTemplate, Var};
use crate::string_enum::string_enum;
pub use crate::sync_mode::{CHANGE_COLUMN, ChangeCounts, DiffLayout, SyncMode};
use crate::xml_name::is_xml_name;
use serde::{Deserialize, Serialize};
use std::fmt;

string_enum!(
    /// The file format of a sync.
    FileFormat, "format", "the format", {
        Parquet => "parquet",
        Csv => "csv",
        Ndjson => "ndjson",
        Json => "json",
        Xml => "xml",
        Avro => "avro",
    }
);

string_enum!(
    /// Compression of a whole text file (CSV, NDJSON, JSON, XML).
    TextCompression, "compression", "the compression", {
        None => "none",
        Gzip => "gzip",
        Zstd => "zstd",
    }
);

string_enum!(
    /// The codec of Parquet column chunks.
    ParquetCompression, "parquet_compression", "the Parquet compression", {
        Snappy => "snappy",
        Zstd => "zstd",
        Gzip => "gzip",
        Lz4 => "lz4",
        None => "none",
    }
);

string_enum!(
    /// What a run does when the model returns no rows.
    OnEmpty, "on_empty", "the empty-result policy", {
        EmptyFile => "empty-file",
        Skip => "skip",
        ManifestOnly => "manifest-only",
    }
);

impl FileFormat {
    pub fn is_text(self) -> bool {
        matches!(self, Self::Csv | Self::Ndjson | Self::Json | Self::Xml)
    }

    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
            Self::Json => "application/json",
            Self::Xml => "application/xml",
            Self::Avro => "application/avro",
        }
    }
}

impl TextCompression {
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gz"),
            Self::Zstd => Some("zst"),
        }
    }

    /// The `Content-Encoding` an object compressed this way is stored with.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Zstd => Some("zstd"),
        }
    }
}

/// A column of the model written under a (possibly new) name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMapping {
    pub source: String,
    pub target: String,
}

impl ColumnMapping {
    /// Parses `a,b,c:new_name`. Names are trimmed; a target name must be unique.
    pub fn parse_list(value: &str) -> Result<Vec<ColumnMapping>, InvalidValue> {
        let fail = |reason: String| Err(InvalidValue::new("columns", value, reason));
        let mut out: Vec<ColumnMapping> = Vec::new();
        for item in value.split(',') {
            let (source, target) = match item.split_once(':') {
                Some((s, t)) => (s.trim(), t.trim()),
                None => (item.trim(), item.trim()),
            };
            if source.is_empty() || target.is_empty() {
                return fail(format!(
                    "{item:?} is not a column; write columns as a,b,c or a,b:new_name"
                ));
            }
            if target.contains(':') {
                return fail(format!("{item:?} has more than one ':'"));
            }
            if out.iter().any(|m| m.target == target) {
                return fail(format!("the output column {target:?} appears twice"));
            }
            out.push(ColumnMapping {
                source: source.to_string(),
                target: target.to_string(),
            });
        }
        Ok(out)
    }
}

/// CSV options. Defaults: `,`, `"`, a header, empty text for nulls, no BOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvOptions {
    #[serde(with = "byte_text")]
    pub delimiter: u8,
    #[serde(with = "byte_text")]
    pub quote: u8,
    pub header: bool,
    pub null: String,
    pub bom: bool,
}

/// A CSV delimiter or quote in JSON: the character as text (`","`, `"\t"`), as users write it,
/// not its byte value. Reads the byte value too, which stores written before held.
mod byte_text {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(byte: &u8, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&char::from(*byte).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Byte(u8),
            Text(String),
        }
        match Stored::deserialize(deserializer)? {
            Stored::Byte(byte) => Ok(byte),
            Stored::Text(text) => match text.as_bytes() {
                [byte] => Ok(*byte),
                _ => Err(D::Error::custom(format!(
                    "expected one ASCII character, found {text:?}"
                ))),
            },
        }
    }
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            header: true,
            null: String::new(),
            bom: false,
        }
    }
}

/// XML element names. Defaults: `<rows><row>...</row></rows>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmlOptions {
    pub root: String,
    pub row: String,
}

impl Default for XmlOptions {
    fn default() -> Self {
        Self {
            root: "rows".into(),
            row: "row".into(),
        }
    }
}

/// Parquet options. Defaults: zstd, row groups of 1,048,576 rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetOptions {
    pub compression: ParquetCompression,
    pub row_group_rows: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            compression: ParquetCompression::Zstd,
            row_group_rows: 1024 * 1024,
        }
    }
}

/// A file format with its options, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSettings {
    pub format: FileFormat,
    pub compression: TextCompression,
    #[serde(default)]
    pub csv: CsvOptions,
    #[serde(default)]
    pub xml: XmlOptions,
    #[serde(default)]
    pub parquet: ParquetOptions,
}

impl FileSettings {
    /// `parquet`, `csv`, `csv.gz`, `ndjson.zst`...
    pub fn extension(&self) -> String {
        match self.compression.extension() {
            Some(ext) => format!("{}.{ext}", self.format.extension()),
            None => self.format.extension().to_string(),
        }
    }
}

/// Everything `sync add` is given about files, before validation. `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct FileSpec {
    pub format: String,
    pub compression: Option<String>,
    pub parquet_compression: Option<String>,
    pub parquet_row_group_rows: Option<u64>,
    pub csv_delimiter: Option<String>,
    pub csv_quote: Option<String>,
    pub csv_header: Option<bool>,
    pub csv_null: Option<String>,
    pub csv_bom: bool,
    pub xml_root: Option<String>,
    pub xml_row: Option<String>,
}

impl FileSpec {
    pub fn validate(&self) -> Result<FileSettings, InvalidValue> {
        let format = FileFormat::parse(&self.format)?;
        let only = |field: &'static str, value: &str, wanted: FileFormat| {
            Err(InvalidValue::new(
                field,
                value,
                format!("this option applies to format {wanted} only (the format is {format})"),
            ))
        };
        let compression = match &self.compression {
            None => TextCompression::None,
            Some(c) => {
                let parsed = TextCompression::parse(c)?;
                if !format.is_text() && parsed != TextCompression::None {
                    return Err(InvalidValue::new(
                        "compression",
                        c,
                        format!(
                            "compression applies to csv, ndjson, json and xml; {format} files compress internally{}",
                            if format == FileFormat::Parquet {
                                " (set parquet_compression)"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                parsed
            }
        };
        let mut parquet = ParquetOptions::default();
        if let Some(c) = &self.parquet_compression {
            if format != FileFormat::Parquet {
                return only("parquet_compression", c, FileFormat::Parquet);
            }
            parquet.compression = ParquetCompression::parse(c)?;
        }
        if let Some(rows) = self.parquet_row_group_rows {
            if format != FileFormat::Parquet {
                return only(
                    "parquet_row_group_rows",
                    &rows.to_string(),
                    FileFormat::Parquet,
                );
            }
            if !(1..=64 * 1024 * 1024).contains(&rows) {
                return Err(InvalidValue::new(
                    "parquet_row_group_rows",
                    rows.to_string(),
                    "a row group holds between 1 and 67108864 rows",
                ));
            }
            parquet.row_group_rows = rows as usize;
        }
        let mut csv = CsvOptions::default();
        let csv_given = [
            ("csv_delimiter", self.csv_delimiter.clone()),
            ("csv_quote", self.csv_quote.clone()),
            ("csv_header", self.csv_header.map(|h| h.to_string())),
            ("csv_null", self.csv_null.clone()),
            ("csv_bom", self.csv_bom.then(|| "true".to_string())),
        ];
        for (field, value) in &csv_given {
            if let Some(value) = value
                && format != FileFormat::Csv
            {
                return only(field, value, FileFormat::Csv);
            }
        }
        if let Some(d) = &self.csv_delimiter {
            csv.delimiter = csv_char("csv_delimiter", d)?;
        }
        if let Some(q) = &self.csv_quote {
            csv.quote = csv_char("csv_quote", q)?;
        }
        if csv.delimiter == csv.quote {
            return Err(InvalidValue::new(
                "csv_quote",
                (csv.quote as char).to_string(),
                "the quote character must differ from the delimiter",
            ));
        }
        if let Some(h) = self.csv_header {
            csv.header = h;
        }
        csv.bom = self.csv_bom;
        if let Some(null) = &self.csv_null {
            if null.contains(['\r', '\n'])
                || null.as_bytes().contains(&csv.delimiter)
                || null.as_bytes().contains(&csv.quote)
            {
                return Err(InvalidValue::new(
                    "csv_null",
                    null,
                    "the null text cannot contain the delimiter, the quote or a line break (readers could not tell it from a value)",
                ));
            }
            csv.null = null.clone();
        }
        let mut xml = XmlOptions::default();
        for (field, value, slot) in [
            ("xml_root", &self.xml_root, &mut xml.root),
            ("xml_row", &self.xml_row, &mut xml.row),
        ] {
            if let Some(value) = value {
                if format != FileFormat::Xml {
                    return only(field, value, FileFormat::Xml);
                }
                if !is_xml_name(value) {
                    return Err(InvalidValue::new(
                        field,
                        value,
                        "an XML element name starts with a letter or '_' and continues with letters, digits, '-', '_' or '.', without ':' and not starting with \"xml\"",
                    ));
                }
                *slot = value.clone();
            }
        }
        Ok(FileSettings {
            format,
            compression,
            csv,
            xml,
            parquet,
        })
    }
}

/// A one-byte CSV control character; `\t` and `tab` mean a tab.
fn csv_char(field: &'static str, value: &str) -> Result<u8, InvalidValue> {
    let c = match value {
        "\\t" | "tab" => '\t',
        v => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(InvalidValue::new(
                        field,
                        value,
                        "give exactly one character (\"\\t\" or \"tab\" for a tab)",
                    ));
                }
            }
        }
    };
    if !c.is_ascii() || c == '\r' || c == '\n' || (c.is_ascii_control() && c != '\t') {
        return Err(InvalidValue::new(
            field,
            value,
            "use a printable ASCII character or a tab",
        ));
    }
    Ok(c as u8)
}

/// How a run splits its output into files and names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSettings {
    pub file: FileSettings,
    /// Empty: all columns, in the model's order, under their own names.
    pub columns: Vec<ColumnMapping>,
    pub key_template: String,
    pub max_rows_per_file: Option<u64>,
    pub max_bytes_per_file: Option<u64>,
    pub manifest: bool,
    pub on_empty: OnEmpty,
    pub overwrite: bool,
    /// Stored syncs from before sync modes are `all`.
    #[serde(default)]
    pub mode: SyncMode,
    /// Only for `diff`.
    #[serde(default)]
    pub diff_layout: DiffLayout,
}

/// The smallest `--max-bytes-per-file`: smaller files would be mostly headers and footers.
pub const MIN_BYTES_PER_FILE: u64 = 1024;

impl SyncSettings {
    /// Checks the rules that join several options. The key template is parsed again here, so a
    /// stored sync is re-validated on load like every other record.
    pub fn validate(self) -> Result<(Self, KeyTemplate), InvalidValue> {
        let template = KeyTemplate::parse(&self.key_template)?;
        if let Some(0) = self.max_rows_per_file {
            return Err(InvalidValue::new(
                "max_rows_per_file",
                "0",
                "a file holds at least one row",
            ));
        }
        if let Some(b) = self.max_bytes_per_file
            && b < MIN_BYTES_PER_FILE
        {
            return Err(InvalidValue::new(
                "max_bytes_per_file",
                b.to_string(),
                format!("files are at least {MIN_BYTES_PER_FILE} bytes"),
            ));
        }
        let files_per_change = self.mode == SyncMode::Diff && self.diff_layout == DiffLayout::Files;
        if template.uses(Var::Change) && !files_per_change {
            return Err(InvalidValue::new(
                "key_template",
                &self.key_template,
                format!(
                    "{{change}} names the kind of change (added, changed, removed) of a diff sync with diff_layout files; this sync's mode is {}: remove {{change}}",
                    if self.mode == SyncMode::Diff {
                        "diff with diff_layout column"
                    } else {
                        self.mode.as_str()
                    }
                ),
            ));
        }
        if files_per_change && !template.uses(Var::Change) {
            return Err(InvalidValue::new(
                "key_template",
                &self.key_template,
                "a diff with diff_layout files writes added, changed and removed rows to files of their own: put {change} in the key template (for example \"{sync}/{YYYY}/{MM}/{DD}/{run}/{change}-{part}.{ext}\")",
            ));
        }
        let splits = self.max_rows_per_file.is_some() || self.max_bytes_per_file.is_some();
        if splits && !template.uses(Var::Part) {
            return Err(InvalidValue::new(
                "key_template",
                &self.key_template,
                "a sync that splits files needs {part} in its key template, or its files would share one key",
            ));
        }
        if self.manifest || self.on_empty == OnEmpty::ManifestOnly {
            if template.folder_uses(Var::Part) || template.folder_uses(Var::Change) {
                return Err(InvalidValue::new(
                    "key_template",
                    &self.key_template,
                    "with a manifest, a run's files share one folder: keep {part} and {change} out of the folders",
                ));
            }
            if !self.overwrite && !template.folder_uses(Var::Run) {
                return Err(InvalidValue::new(
                    "key_template",
                    &self.key_template,
                    "each run's _manifest.json needs a folder of its own: put {run} in a folder (for example \"{sync}/{YYYY}/{MM}/{DD}/{run}/part-{part}.{ext}\"), or let the sync overwrite",
                ));
            }
        }
        if !self.overwrite && !template.uses(Var::Run) && !uses_time(&template) {
            // Without the run or a time in the key every run targets the same keys; without
            // --overwrite the second run would then fail on "the key exists". Say so now.
            return Err(InvalidValue::new(
                "key_template",
                &self.key_template,
                "every run would write the same keys: add {run} or a time such as {x}, or let the sync overwrite to replace the files each run",
            ));
        }
        Ok((self, template))
    }

    pub fn default_key_template() -> &'static str {
        DEFAULT_KEY_TEMPLATE
    }
}

fn uses_time(template: &KeyTemplate) -> bool {
    [
        Var::Second,
        Var::Millisecond,
        Var::UnixSeconds,
        Var::UnixMillis,
    ]
    .into_iter()
    .any(|v| template.uses(v))
}

impl fmt::Display for FileSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.extension())
    }
}

#[cfg(test)]
mod tests;
