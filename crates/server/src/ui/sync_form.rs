//! The sync form's fields: the values a new form starts with, a submitted form read into the
//! [`NewSync`] the service checks (columns and renames, format options, the schedule), and a
//! stored sync read back into the form to edit it.

use super::form::FormState;
use super::session::Fields;
use wharf_service::{FileSpec, NewSync, PolicyPatch, ScheduleSpec, ServiceError, SyncView};

/// Fields shown again after an error (the form holds no secret).
pub(super) const SHOWN_BACK: &[&str] = &[
    "name",
    "export",
    "destination",
    "format",
    "compression",
    "parquet_compression",
    "csv_delimiter",
    "csv_header",
    "csv_null",
    "xml_root",
    "xml_row",
    "key_template",
    "max_rows_per_file",
    "max_mib_per_file",
    "manifest",
    "on_empty",
    "overwrite",
    "mode",
    "diff_layout",
    "schedule",
    "every",
    "start_at",
    "cron",
    "timezone",
    "times",
    "overlap",
    "max_attempts",
    "retry_base_seconds",
    "pause_after",
];

/// The form's starting values: a daily Parquet export of everything, with a manifest.
pub(super) fn defaults(export: &str) -> FormState {
    let mut form = FormState::with(&SHOWN_BACK.iter().map(|k| (*k, "")).collect::<Vec<_>>());
    let set = FormState::with(&[
        ("export", export),
        ("format", "parquet"),
        ("compression", "none"),
        ("parquet_compression", "zstd"),
        ("csv_delimiter", ","),
        ("csv_header", "on"),
        ("manifest", "on"),
        ("on_empty", "empty-file"),
        ("mode", "all"),
        ("diff_layout", "column"),
        ("schedule", "custom"),
        ("times", "02:00"),
        ("timezone", "UTC"),
        ("every", "6h"),
        ("cron", "0 2 * * *"),
        ("overlap", "skip"),
        ("max_attempts", "3"),
        ("retry_base_seconds", "60"),
        ("pause_after", "3"),
    ]);
    form.values.extend(set.values);
    form
}

/// A number field: blank is `None`; anything else must be a whole number.
fn whole(fields: &Fields, name: &str) -> Result<Option<u64>, ServiceError> {
    match fields.opt(name) {
        None => Ok(None),
        Some(text) => text.replace(['_', ' '], "").parse().map(Some).map_err(|_| {
            ServiceError::bad_input(
                name,
                format!("{text:?} is not a whole number; write digits only, e.g. 1000000"),
            )
        }),
    }
}

/// The sync a submitted form describes.
pub(super) fn new_sync(fields: &Fields) -> Result<NewSync, ServiceError> {
    let format = fields.text("format").to_string();
    let text_format = matches!(format.as_str(), "csv" | "ndjson" | "json" | "xml");
    let (model, segment) = match fields.text("export").split_once(':') {
        Some(("segment", s)) => (None, Some(s.to_string())),
        Some(("model", m)) => (Some(m.to_string()), None),
        _ => (None, None),
    };
    // Columns: every column of the model is listed; unticked ones are left out, and a
    // "rename to" renames. All ticked, none renamed: every column, as the model has them.
    let mut mapping = Vec::new();
    let mut all_plain = true;
    for (key, column) in &fields.0 {
        let Some(index) = key
            .strip_prefix("col.")
            .and_then(|k| k.strip_suffix(".name"))
        else {
            continue;
        };
        let included = fields.text(&format!("col.{index}.include")) == "on";
        let rename = fields.opt(&format!("col.{index}.as"));
        if !included {
            all_plain = false;
            continue;
        }
        match rename {
            Some(to) if &to != column => {
                all_plain = false;
                mapping.push(format!("{column}:{to}"));
            }
            _ => mapping.push(column.clone()),
        }
    }
    let columns = (!all_plain).then(|| mapping.join(","));
    if columns.as_deref() == Some("") {
        return Err(ServiceError::bad_input(
            "columns",
            "tick at least one column to export",
        ));
    }
    let schedule = match fields.text("schedule") {
        "interval" => ScheduleSpec::Interval {
            every: fields.text("every").trim().to_string(),
            start_at: fields.opt("start_at"),
        },
        "cron" => ScheduleSpec::Cron {
            cron: fields.text("cron").trim().to_string(),
            timezone: fields.opt("timezone"),
        },
        "custom" => ScheduleSpec::Custom {
            times: fields
                .text("times")
                .split([',', ' '])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            weekdays: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .filter(|d| fields.text(&format!("day.{d}")) == "on")
                .map(|d| d.to_string())
                .collect(),
            timezone: fields.opt("timezone"),
        },
        _ => ScheduleSpec::Manual {},
    };
    let mode = fields.opt("mode").unwrap_or_else(|| "all".into());
    let max_mib = whole(fields, "max_mib_per_file")?;
    Ok(NewSync {
        name: fields.text("name").trim().to_string(),
        model,
        segment,
        destination: fields.text("destination").to_string(),
        file: FileSpec {
            format: format.clone(),
            compression: fields.opt("compression").filter(|_| text_format),
            parquet_compression: fields
                .opt("parquet_compression")
                .filter(|_| format == "parquet"),
            parquet_row_group_rows: None,
            csv_delimiter: fields.opt("csv_delimiter").filter(|_| format == "csv"),
            csv_quote: None,
            csv_header: (format == "csv").then(|| fields.text("csv_header") == "on"),
            csv_null: if format == "csv" {
                fields.opt("csv_null")
            } else {
                None
            },
            csv_bom: false,
            xml_root: fields.opt("xml_root").filter(|_| format == "xml"),
            xml_row: fields.opt("xml_row").filter(|_| format == "xml"),
        },
        columns,
        key_template: fields.opt("key_template"),
        max_rows_per_file: whole(fields, "max_rows_per_file")?,
        max_bytes_per_file: max_mib.map(|m| m.saturating_mul(1024 * 1024)),
        manifest: fields.text("manifest") == "on",
        on_empty: fields
            .opt("on_empty")
            .unwrap_or_else(|| "empty-file".into()),
        overwrite: fields.text("overwrite") == "on",
        schedule: Some(schedule),
        policy: PolicyPatch {
            overlap: fields.opt("overlap"),
            max_attempts: whole(fields, "max_attempts")?.map(|n| n.min(u32::MAX as u64) as u32),
            retry_base_seconds: whole(fields, "retry_base_seconds")?
                .map(|n| n.min(u32::MAX as u64) as u32),
            retry_cap_seconds: None,
            pause_after: whole(fields, "pause_after")?.map(|n| n.min(u32::MAX as u64) as u32),
        },
        diff_layout: (mode == "diff")
            .then(|| fields.opt("diff_layout").unwrap_or_else(|| "column".into())),
        mode: Some(mode),
    })
}

/// The form's values with the columns as submitted, to show it again.
pub(super) fn typed(fields: &Fields) -> FormState {
    let mut form = FormState::typed(fields, SHOWN_BACK);
    for (k, v) in &fields.0 {
        if k.starts_with("col.") || k.starts_with("day.") {
            form.values.insert(k.clone(), v.clone());
        }
    }
    form.values.insert("columns_submitted".into(), "on".into());
    form
}

/// The form's values for a stored sync.
pub(super) fn stored_values(sync: &SyncView) -> FormState {
    let json = serde_json::to_value(sync).unwrap_or_default();
    let settings = &json["settings"];
    let file = &settings["file"];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let on = |v: &serde_json::Value| if v.as_bool() == Some(true) { "on" } else { "" };
    let export = match &sync.segment {
        Some(s) => format!("segment:{s}"),
        None => format!("model:{}", sync.model),
    };
    let mut form = defaults(&export);
    let mut set = |k: &str, v: String| {
        form.values.insert(k.to_string(), v);
    };
    set("name", sync.name.clone());
    set("destination", sync.destination.clone());
    set("format", text(&file["format"]));
    set("compression", text(&file["compression"]));
    set("parquet_compression", text(&file["parquet"]["compression"]));
    set("csv_delimiter", text(&file["csv"]["delimiter"]));
    set("csv_header", on(&file["csv"]["header"]).into());
    set("csv_null", text(&file["csv"]["null"]));
    set("xml_root", text(&file["xml"]["root"]));
    set("xml_row", text(&file["xml"]["row"]));
    set("key_template", text(&settings["key_template"]));
    set("max_rows_per_file", text(&settings["max_rows_per_file"]));
    set(
        "max_mib_per_file",
        settings["max_bytes_per_file"]
            .as_u64()
            .map(|b| (b / (1024 * 1024)).to_string())
            .unwrap_or_default(),
    );
    set("manifest", on(&settings["manifest"]).into());
    set("on_empty", text(&settings["on_empty"]));
    set("overwrite", on(&settings["overwrite"]).into());
    set("mode", text(&settings["mode"]));
    set("diff_layout", text(&settings["diff_layout"]));
    let schedule = &json["schedule"];
    set("schedule", text(&schedule["kind"]));
    if let Some(every) = schedule["every"].as_str() {
        set("every", every.into());
    }
    set("start_at", text(&schedule["start_at"]));
    if let Some(cron) = schedule["cron"].as_str() {
        set("cron", cron.into());
    }
    if let Some(times) = schedule["times"].as_array() {
        set(
            "times",
            times.iter().map(text).collect::<Vec<_>>().join(", "),
        );
    }
    for day in schedule["weekdays"].as_array().into_iter().flatten() {
        set(&format!("day.{}", text(day)), "on".into());
    }
    set(
        "timezone",
        schedule["timezone"].as_str().unwrap_or("UTC").into(),
    );
    let policy = &json["policy"];
    set("overlap", text(&policy["overlap"]));
    set("max_attempts", text(&policy["max_attempts"]));
    set("retry_base_seconds", text(&policy["retry_base_seconds"]));
    set("pause_after", text(&policy["pause_after"]));
    // Columns: ticked and renamed as the sync maps them (none listed: every column).
    let mapped = settings["columns"].as_array().cloned().unwrap_or_default();
    if !mapped.is_empty() {
        set("columns_submitted", "on".into());
        for m in &mapped {
            let source = text(&m["source"]);
            set(&format!("map.{source}"), text(&m["target"]));
        }
    }
    form
}
