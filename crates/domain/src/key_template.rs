//! Object key templates: how a sync names the files of a run.

use crate::error::{InvalidValue, first_control_char};
use crate::prefix::KeyPrefix;
use std::fmt;
use time::OffsetDateTime;

/// S3's limit on the length of a key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The template used when a sync does not choose one.
pub const DEFAULT_KEY_TEMPLATE: &str = "{sync}/{YYYY}/{MM}/{DD}/{run}-{part}.{ext}";

/// The template used when a sync with a manifest does not choose one: each run's files and its
/// `_manifest.json` in a folder of their own.
pub const DEFAULT_MANIFEST_KEY_TEMPLATE: &str = "{sync}/{YYYY}/{MM}/{DD}/{run}/part-{part}.{ext}";

/// The default template for a sync that writes a manifest (`manifest`) or not.
pub fn default_template(manifest: bool) -> &'static str {
    if manifest {
        DEFAULT_MANIFEST_KEY_TEMPLATE
    } else {
        DEFAULT_KEY_TEMPLATE
    }
}

/// A variable of a key template. Times are the run's start, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Model,
    /// The segment's name; the model's name when the sync exports a whole model.
    Segment,
    Sync,
    Run,
    Year,
    Year2,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    /// Unix time in seconds (`X`, as in moment.js and Hightouch).
    UnixSeconds,
    /// Unix time in milliseconds (`x`).
    UnixMillis,
    /// The file's number within the run, from `00000`.
    Part,
    /// The file extension, compression included: `csv.gz`.
    Ext,
    /// The kind of change a diff file holds: `added`, `changed` or `removed` (only for `diff`
    /// syncs with the `files` layout).
    Change,
}

impl Var {
    const ALL: [(Var, &'static str); 17] = [
        (Var::Model, "model"),
        (Var::Segment, "segment"),
        (Var::Sync, "sync"),
        (Var::Run, "run"),
        (Var::Year, "YYYY"),
        (Var::Year2, "YY"),
        (Var::Month, "MM"),
        (Var::Day, "DD"),
        (Var::Hour, "HH"),
        (Var::Minute, "mm"),
        (Var::Second, "ss"),
        (Var::Millisecond, "ms"),
        (Var::UnixSeconds, "X"),
        (Var::UnixMillis, "x"),
        (Var::Part, "part"),
        (Var::Ext, "ext"),
        (Var::Change, "change"),
    ];

    fn parse(name: &str) -> Option<Var> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
    }

    /// The longest text this variable renders to, for the length check at `sync add`.
    fn max_len(self, names: &NameLengths) -> usize {
        match self {
            Var::Model => names.model,
            Var::Segment => names.segment,
            Var::Sync => names.sync,
            Var::Run => RUN_ID_LEN,
            Var::Year => 4,
            Var::Year2 | Var::Month | Var::Day | Var::Hour | Var::Minute | Var::Second => 2,
            Var::Millisecond => 3,
            Var::UnixSeconds => 11,
            Var::UnixMillis => 14,
            Var::Part => 10,
            Var::Ext => 12,
            Var::Change => 7,
        }
    }

    fn all_names() -> String {
        Self::ALL
            .iter()
            .map(|(_, n)| format!("{{{n}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Length of a run id (a UUID in its hyphenated form).
pub const RUN_ID_LEN: usize = 36;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Var(Var),
}

/// A validated key template, such as `{sync}/{YYYY}/{MM}/{DD}/{run}-{part}.{ext}`.
///
/// Rules checked when a sync is added, so that a run never meets them:
/// - only known variables, braces balanced (`{` and `}` are not allowed as literal text);
/// - no empty folder (`a//b`, a leading or trailing `/`) and no `.` or `..` folder, also when
///   percent-encoded: tools that map keys to paths would write outside the folder;
/// - no control characters and no `\`;
/// - rendered under the destination prefix, at most 1024 bytes ([`KeyTemplate::check_length`]).
///
/// Values substituted into a key are made safe ([`safe_value`]), and every rendered key is
/// checked again before use, so a key can never leave the destination's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    text: String,
    pieces: Vec<Piece>,
}

/// The longest names the template may be rendered with.
pub struct NameLengths {
    pub model: usize,
    pub segment: usize,
    pub sync: usize,
}

/// What a template is rendered with.
#[derive(Debug, Clone)]
pub struct KeyValues<'a> {
    pub model: &'a str,
    /// The segment's name, or the model's when the sync exports a whole model.
    pub segment: &'a str,
    pub sync: &'a str,
    pub run: &'a str,
    pub started_at: OffsetDateTime,
    pub part: u32,
    pub ext: &'a str,
    /// `added`, `changed` or `removed`, for the files of a diff by kind of change.
    pub change: Option<&'a str>,
}

impl KeyTemplate {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let fail = |reason: String| Err(InvalidValue::new("key_template", value, reason));
        if value.is_empty() {
            return fail(format!(
                "a key template cannot be empty (the default is {DEFAULT_KEY_TEMPLATE:?})"
            ));
        }
        if let Some(c) = first_control_char(value) {
            return fail(format!(
                "a key template cannot contain the control character {c:?}"
            ));
        }
        if value.contains('\\') {
            return fail("a key template cannot contain '\\' (use '/' to separate folders)".into());
        }
        if value.contains('%') {
            return fail(
                "a key template cannot contain '%' (keys are not URL-encoded: write the character itself)".into(),
            );
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = value;
        while let Some(c) = rest.chars().next() {
            match c {
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return fail(format!(
                            "'{{' at byte {} is never closed by '}}'",
                            value.len() - rest.len()
                        ));
                    };
                    let name = &rest[1..end];
                    if name.contains('{') {
                        return fail(format!(
                            "'{{' at byte {} is never closed by '}}'",
                            value.len() - rest.len()
                        ));
                    }
                    let Some(var) = Var::parse(name) else {
                        return fail(format!(
                            "unknown variable {{{name}}}; the variables are {}",
                            Var::all_names()
                        ));
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(var));
                    rest = &rest[end + 1..];
                }
                '}' => {
                    return fail(format!(
                        "'}}' at byte {} has no matching '{{'",
                        value.len() - rest.len()
                    ));
                }
                c => {
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let template = Self {
            text: value.to_string(),
            pieces,
        };
        if let Err(reason) = template.check_segments() {
            return fail(reason);
        }
        Ok(template)
    }

    /// Checks folder names as written: empty ones and `.`/`..` made only of literal text.
    /// (A folder with a variable in it is never empty, and [`safe_value`] keeps it from being
    /// a dot segment; [`KeyTemplate::render`] checks the result again.)
    fn check_segments(&self) -> Result<(), String> {
        // Split the template on '/', marking segments that contain a variable.
        let mut segments: Vec<(String, bool)> = vec![(String::new(), false)];
        for piece in &self.pieces {
            match piece {
                Piece::Var(_) => {
                    if let Some(last) = segments.last_mut() {
                        last.1 = true;
                    }
                }
                Piece::Literal(text) => {
                    let mut parts = text.split('/');
                    if let (Some(first), Some(last)) = (parts.next(), segments.last_mut()) {
                        last.0.push_str(first);
                    }
                    for part in parts {
                        segments.push((part.to_string(), false));
                    }
                }
            }
        }
        let count = segments.len();
        for (i, (text, has_var)) in segments.iter().enumerate() {
            if text.is_empty() && !has_var {
                return Err(if i == 0 {
                    "a key template does not start with '/' (keys are already under the destination prefix)".into()
                } else if i + 1 == count {
                    "a key template does not end with '/': it names a file, not a folder".into()
                } else {
                    "a key template cannot contain an empty folder name (\"//\")".into()
                });
            }
            if !has_var && crate::prefix::is_dot_segment(text) {
                return Err(format!(
                    "a key template cannot contain a {text:?} folder name: tools that map keys to paths would leave the folder"
                ));
            }
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    /// Whether `var` appears in the template's folders (before its last `/`), so that it
    /// changes the folder a file lands in.
    pub fn folder_uses(&self, var: Var) -> bool {
        let last_slash = self
            .pieces
            .iter()
            .rposition(|p| matches!(p, Piece::Literal(text) if text.contains('/')));
        match last_slash {
            Some(end) => self.pieces[..end].contains(&Piece::Var(var)),
            None => false,
        }
    }

    /// Checks that every key this template can render under `prefix` fits S3's 1024 bytes.
    pub fn check_length(
        &self,
        prefix: &KeyPrefix,
        names: &NameLengths,
    ) -> Result<(), InvalidValue> {
        let longest = prefix.as_str().len()
            + self
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Literal(text) => text.len(),
                    Piece::Var(var) => var.max_len(names),
                })
                .sum::<usize>();
        if longest > MAX_KEY_BYTES {
            return Err(InvalidValue::new(
                "key_template",
                &self.text,
                format!(
                    "keys can reach {longest} bytes under the prefix {:?}; S3 allows {MAX_KEY_BYTES}",
                    prefix.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// Renders the key of one file, under `prefix`.
    pub fn render(
        &self,
        prefix: &KeyPrefix,
        values: &KeyValues<'_>,
    ) -> Result<String, InvalidValue> {
        let t = values.started_at.to_offset(time::UtcOffset::UTC);
        let mut key = String::from(prefix.as_str());
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => key.push_str(text),
                Piece::Var(var) => {
                    let text = match var {
                        Var::Model => safe_value(values.model),
                        Var::Segment => safe_value(values.segment),
                        Var::Sync => safe_value(values.sync),
                        Var::Run => safe_value(values.run),
                        Var::Ext => safe_value(values.ext),
                        Var::Year => format!("{:04}", t.year()),
                        Var::Year2 => format!("{:02}", t.year().rem_euclid(100)),
                        Var::Month => format!("{:02}", u8::from(t.month())),
                        Var::Day => format!("{:02}", t.day()),
                        Var::Hour => format!("{:02}", t.hour()),
                        Var::Minute => format!("{:02}", t.minute()),
                        Var::Second => format!("{:02}", t.second()),
                        Var::Millisecond => format!("{:03}", t.millisecond()),
                        Var::UnixSeconds => t.unix_timestamp().to_string(),
                        Var::UnixMillis => (t.unix_timestamp_nanos() / 1_000_000).to_string(),
                        Var::Part => format!("{:05}", values.part),
                        Var::Change => match values.change {
                            Some(change) => safe_value(change),
                            None => {
                                return Err(InvalidValue::new(
                                    "key_template",
                                    &self.text,
                                    "{change} is only set for the files of a diff by kind of change",
                                ));
                            }
                        },
                    };
                    key.push_str(&text);
                }
            }
        }
        check_key(prefix, &key)
            .map_err(|reason| InvalidValue::new("key_template", &self.text, reason))?;
        Ok(key)
    }
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Makes a value safe to put in a key: `/`, `\`, `%` and control characters become `_`, and a
/// value that is empty or only dots becomes underscores, so no value adds a folder, climbs out of
/// one, or hides an encoded dot.
pub fn safe_value(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| match c {
            '/' | '\\' | '%' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') || crate::prefix::is_dot_segment(&out) {
        out = "_".repeat(out.chars().count().max(1));
    }
    out
}

/// The final check of a rendered key: under the prefix, no empty, `.` or `..` folder, no control
/// characters, at most 1024 bytes.
pub fn check_key(prefix: &KeyPrefix, key: &str) -> Result<(), String> {
    let Some(rest) = key.strip_prefix(prefix.as_str()) else {
        return Err(format!(
            "the key {key:?} is not under the prefix {:?}",
            prefix.as_str()
        ));
    };
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "the key is {} bytes long; S3 allows {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    if first_control_char(key).is_some() || key.contains('\\') {
        return Err("a key cannot contain control characters or '\\'".into());
    }
    for segment in rest.split('/') {
        if segment.is_empty() || crate::prefix::is_dot_segment(segment) {
            return Err(format!("the key {key:?} has an empty, '.' or '..' folder"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn values(part: u32) -> KeyValues<'static> {
        KeyValues {
            model: "customers",
            segment: "customers",
            sync: "daily",
            run: "0194f5c2-7d2a-7000-8000-000000000001",
            started_at: datetime!(2026-03-04 05:06:07.089 UTC),
            part,
            ext: "csv.gz",
            change: None,
        }
    }

    #[test]
    fn renders_every_variable() {
        let t = KeyTemplate::parse(
            "{model}/{sync}/{YYYY}-{YY}-{MM}-{DD}T{HH}:{mm}:{ss}.{ms}/{X}-{x}/{run}-{part}.{ext}",
        )
        .expect("valid");
        let prefix = KeyPrefix::parse("exports").expect("prefix");
        assert_eq!(
            t.render(&prefix, &values(7)).expect("renders"),
            "exports/customers/daily/2026-26-03-04T05:06:07.089/1772600767-1772600767089/0194f5c2-7d2a-7000-8000-000000000001-00007.csv.gz"
        );
        let d = KeyTemplate::parse(DEFAULT_KEY_TEMPLATE).expect("default");
        assert_eq!(
            d.render(&KeyPrefix::default(), &values(0))
                .expect("renders"),
            "daily/2026/03/04/0194f5c2-7d2a-7000-8000-000000000001-00000.csv.gz"
        );
    }

    #[test]
    fn bad_templates_say_why() {
        let cases = [
            ("", "cannot be empty"),
            (
                "{sync}/{day}.csv",
                "unknown variable {day}; the variables are {model}",
            ),
            ("{sync", "never closed"),
            ("{sy{nc}", "never closed"),
            ("sync}", "no matching '{'"),
            ("/{sync}", "does not start with '/'"),
            ("{sync}/", "does not end with '/'"),
            ("a//{part}", "empty folder"),
            ("a/../{part}", "\"..\" folder"),
            ("./{part}", "\".\" folder"),
            ("a/%2e%2E/{part}", "cannot contain '%'"),
            ("a\\{part}", "'\\'"),
            ("a\u{0}{part}", "control character '\\0'"),
            ("a\n{part}", "control character '\\n'"),
        ];
        for (template, want) in cases {
            let err = KeyTemplate::parse(template).expect_err(template);
            assert_eq!(err.field, "key_template");
            assert!(err.reason.contains(want), "{template:?}: {}", err.reason);
        }
    }

    #[test]
    fn long_keys_are_refused_at_add_time() {
        let names = NameLengths {
            model: 63,
            segment: 63,
            sync: 63,
        };
        let prefix = KeyPrefix::parse(&"p".repeat(400)).expect("prefix");
        let t =
            KeyTemplate::parse(&format!("{}/{{run}}.{{ext}}", "x".repeat(560))).expect("parses");
        assert!(t.check_length(&prefix, &names).is_ok());
        let t =
            KeyTemplate::parse(&format!("{}/{{run}}.{{ext}}", "x".repeat(600))).expect("parses");
        let err = t.check_length(&prefix, &names).expect_err("too long");
        assert!(err.reason.contains("S3 allows 1024"), "{}", err.reason);
    }

    #[test]
    fn values_are_made_safe() {
        assert_eq!(safe_value("../../etc"), ".._.._etc");
        assert_eq!(safe_value(".."), "__");
        assert_eq!(safe_value("\u{ff0e}\u{ff0e}"), "__");
        assert_eq!(safe_value(""), "_");
        assert_eq!(safe_value("a%2e\u{0}b\\c"), "a_2e_b_c");
        assert_eq!(safe_value("Zürich 🌍"), "Zürich 🌍");
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{model}".to_string()),
            Just("{sync}".to_string()),
            Just("{run}".to_string()),
            Just("{part}".to_string()),
            Just("{ext}".to_string()),
            Just("{YYYY}".to_string()),
            Just("/".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("%2e".to_string()),
            Just("\\".to_string()),
            Just("\u{0}".to_string()),
            Just("{".to_string()),
            "[a-z.%/-]{0,4}",
            "\\PC{0,3}",
        ]
    }

    fn hostile_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("../..".to_string()),
            Just("/".to_string()),
            Just("".to_string()),
            Just("%2e%2e".to_string()),
            "\\PC{0,6}",
            "[./%a\\\\]{0,6}",
        ]
    }

    proptest! {
        /// Whatever template parses and whatever values it is given, a rendered key stays under
        /// the prefix: it starts with it and has no empty, `.` or `..` folder after it.
        #[test]
        fn rendered_keys_stay_under_the_prefix(
            pieces in proptest::collection::vec(piece(), 1..8),
            model in hostile_value(),
            sync in hostile_value(),
            run in hostile_value(),
            ext in hostile_value(),
            part in any::<u32>(),
        ) {
            let text: String = pieces.concat();
            let prefix = KeyPrefix::parse("team/exports").expect("prefix");
            if let Ok(template) = KeyTemplate::parse(&text) {
                let values = KeyValues {
                    model: &model, segment: &model, sync: &sync, run: &run, ext: &ext, part,
                    started_at: datetime!(2026-01-01 00:00 UTC),
                    change: Some(&ext),
                };
                let key = template.render(&prefix, &values).expect("a parsed template renders");
                let rest = key.strip_prefix("team/exports/").expect("under the prefix");
                for segment in rest.split('/') {
                    let decoded = segment.replace("%2e", ".").replace("%2E", ".");
                    prop_assert!(!segment.is_empty() && decoded != "." && decoded != "..", "{key:?}");
                }
                prop_assert!(!key.contains('\\') && !key.chars().any(char::is_control));
            }
        }
    }

    proptest! {
        /// Near S3's 1,024 bytes, with every variable at its longest value: a template whose
        /// longest key fits renders it, to the byte; one byte more and both `check_length` (at
        /// `sync add`) and `render` (at run time) refuse it.
        #[test]
        fn keys_near_1024_bytes_are_refused_exactly_past_it(
            prefix_len in 1usize..KeyPrefix::MAX_LEN,
            vars in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{model}", "{segment}", "{sync}", "{YYYY}", "{MM}", "{X}", "{x}", "{ms}",
                ]),
                0..6,
            ),
            names in (1usize..=63, 1usize..=63, 1usize..=63),
            delta in -4i64..=4,
        ) {
            let names = NameLengths { model: names.0, segment: names.1, sync: names.2 };
            let prefix = KeyPrefix::parse(&"p".repeat(prefix_len)).expect("prefix");
            let vars: String = vars.iter().map(|v| format!("{v}/")).collect();
            let bare = KeyTemplate::parse(&format!("{vars}{{run}}-{{part}}.{{ext}}")).expect("parses");
            let base = longest_key(&bare, &prefix, &names).expect("short keys render").len();
            // A folder of `pad` bytes (its slash included) brings the longest key to 1024 + delta.
            let pad = 1024 + delta - base as i64;
            prop_assume!(pad >= 2);
            let text = format!("{vars}{}/{{run}}-{{part}}.{{ext}}", "x".repeat(pad as usize - 1));
            let template = KeyTemplate::parse(&text).expect("parses");
            let rendered = longest_key(&template, &prefix, &names);
            let checked = template.check_length(&prefix, &names);
            if delta <= 0 {
                let key = rendered.expect("fits, so it renders");
                prop_assert_eq!(key.len() as i64, 1024 + delta);
                prop_assert!(checked.is_ok(), "{:?}", checked);
            } else {
                prop_assert!(rendered.is_err(), "{} bytes rendered", 1024 + delta);
                prop_assert!(checked.is_err(), "{} bytes accepted at add", 1024 + delta);
            }
        }
    }

    /// The key `template` renders under `prefix` with every variable at its longest value.
    fn longest_key(
        template: &KeyTemplate,
        prefix: &KeyPrefix,
        names: &NameLengths,
    ) -> Result<String, InvalidValue> {
        let (model, segment, sync) = (
            "m".repeat(names.model),
            "s".repeat(names.segment),
            "y".repeat(names.sync),
        );
        let run = "r".repeat(RUN_ID_LEN);
        let ext = "e".repeat(12);
        let values = KeyValues {
            model: &model,
            segment: &segment,
            sync: &sync,
            run: &run,
            ext: &ext,
            part: u32::MAX,
            // 11-digit Unix seconds, 14-digit milliseconds: the longest `check_length` allows for.
            started_at: datetime!(5000-12-31 23:59:59.999 UTC),
            change: None,
        };
        template.render(prefix, &values)
    }
}
