//! Schedules: when a sync runs by itself. `manual` (only when triggered), `interval` (every N
//! minutes, hours or days of elapsed time), `cron` (5 or 6 fields, `@daily`-style aliases,
//! `L`/`#`/`W`, in UTC or an IANA time zone) and `custom` (times of day on chosen weekdays, in a
//! time zone). Cron and custom schedules are evaluated by `croner`, in the zone's local time.
//!
//! Daylight-saving time, for schedules in a zone that has it (`croner`'s rules, from the Open
//! Cron Pattern Specification):
//! - A local time that does not exist (02:30 on the day clocks go from 02:00 to 03:00) runs once,
//!   at the first instant after the gap (03:00 local).
//! - A local time that happens twice (02:30 on the day clocks go from 03:00 back to 02:00) runs
//!   once, at its first occurrence, when the schedule names fixed times; schedules that repeat
//!   within the hour (`*/30 * * * *`) run in both passes, so they keep their spacing in real time.
//!
//! An interval counts elapsed time (it ignores clock changes): `every:1d` from 02:00 Paris runs
//! at 03:00 local after the clocks go forward. A schedule that follows the wall clock is a cron
//! or a custom one.

mod cron_fields;
mod policy;

pub use policy::{Overlap, RunPolicy, parse_seconds};

use crate::error::InvalidValue;
use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A schedule as users write it (the API's `schedule` object, stored as such).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleSpec {
    /// Runs only when triggered.
    // A struct variant, so that unknown fields beside `kind` are refused.
    Manual {},
    /// Every `every` (`30m`, `6h`, `1d`) of elapsed time, counted from `start_at` (RFC 3339;
    /// default: from midnight UTC on 1970-01-01, so `every:6h` runs at 00, 06, 12 and 18 UTC).
    Interval {
        #[schema(example = "6h")]
        every: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_at: Option<String>,
    },
    /// A cron expression, in `timezone` (an IANA name; default UTC).
    Cron {
        #[schema(example = "0 2 * * *")]
        cron: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(example = "Europe/Paris")]
        timezone: Option<String>,
    },
    /// Times of day (`HH:MM`) on the chosen weekdays (`mon` ... `sun`; none: every day), in
    /// `timezone` (default UTC).
    Custom {
        #[schema(example = json!(["08:00", "17:30"]))]
        times: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schema(example = json!(["mon", "wed", "fri"]))]
        weekdays: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
    },
}

const WEEKDAYS: &[(&str, &str)] = &[
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
];

const FLAG_FORMS: &str = "write manual, every:<N><m|h|d> (every:6h), cron:<expression> (cron:0 2 * * *) or custom:<HH:MM,...> [on <days>] (custom:08:00,17:30 on mon-fri)";

impl ScheduleSpec {
    /// Parses the command-line form: `manual`, `every:6h` (optionally `every:6h@START`),
    /// `cron:0 2 * * *` or `custom:08:00,17:30 on mon,wed,fri`, with an optional time zone.
    pub fn parse_flag(value: &str, timezone: Option<&str>) -> Result<Self, InvalidValue> {
        let value = value.trim();
        let timezone = timezone.map(str::to_string);
        let (kind, rest) = value.split_once(':').unwrap_or((value, ""));
        let kind = kind.trim().to_ascii_lowercase();
        if (kind == "manual" || kind == "every") && timezone.is_some() {
            return Err(InvalidValue::new(
                "timezone",
                timezone.unwrap_or_default(),
                "a time zone applies to cron and custom schedules; an interval counts elapsed time",
            ));
        }
        let spec = match kind.as_str() {
            "manual" if rest.is_empty() => Self::Manual {},
            "every" => {
                let (every, start_at) = match rest.split_once('@') {
                    Some((every, start)) => (every, Some(start.trim().to_string())),
                    None => (rest, None),
                };
                Self::Interval {
                    every: every.trim().to_string(),
                    start_at,
                }
            }
            "cron" => Self::Cron {
                cron: rest.trim().to_string(),
                timezone,
            },
            "custom" => {
                let (times, days) = match rest.split_once(" on ") {
                    Some((times, days)) => (times, days),
                    None => (rest, ""),
                };
                Self::Custom {
                    times: split_list(times),
                    weekdays: split_list(days),
                    timezone,
                }
            }
            _ => return Err(InvalidValue::new("schedule", value, FLAG_FORMS)),
        };
        Ok(spec)
    }

    /// Checks every field; the result can compute due times.
    pub fn validate(self) -> Result<Schedule, InvalidValue> {
        let rule = match &self {
            Self::Manual {} => Rule::Manual,
            Self::Interval { every, start_at } => Rule::Interval {
                every: parse_every(every)?,
                anchor: match start_at {
                    None => 0,
                    Some(text) => OffsetDateTime::parse(text, &Rfc3339)
                        .map_err(|_| {
                            InvalidValue::new(
                                "schedule.start_at",
                                text,
                                "write a time in RFC 3339, e.g. 2026-12-06T09:00:00Z",
                            )
                        })?
                        .unix_timestamp(),
                },
            },
            Self::Cron { cron, timezone } => {
                let tz = parse_zone(timezone.as_deref())?;
                let (expanded, _) = cron_fields::check(cron)
                    .map_err(|reason| InvalidValue::new("schedule.cron", cron, reason))?;
                let parsed = parse_cron(&expanded)
                    .map_err(|reason| InvalidValue::new("schedule.cron", cron, reason))?;
                Rule::Cron {
                    crons: vec![parsed],
                    tz,
                }
            }
            Self::Custom {
                times,
                weekdays,
                timezone,
            } => {
                let tz = parse_zone(timezone.as_deref())?;
                let days = weekdays_of(weekdays)?;
                let times = times_of(times)?;
                // One cron per time of day: croner then applies the same DST rules to both kinds.
                let dow = if days.len() == 7 {
                    "*".to_string()
                } else {
                    days.iter()
                        .map(|d| ((d + 1) % 7).to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let crons = times
                    .iter()
                    .map(|(h, m)| parse_cron(&format!("{m} {h} * * {dow}")))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|reason| {
                        InvalidValue::new("schedule.times", times_text(&times), reason)
                    })?;
                Rule::Cron { crons, tz }
            }
        };
        let spec = normalize(self);
        let schedule = Schedule { spec, rule };
        if !schedule.is_manual() && schedule.next_after(OffsetDateTime::UNIX_EPOCH).is_none() {
            let field = match schedule.spec {
                ScheduleSpec::Custom { .. } => "schedule.times",
                _ => "schedule.cron",
            };
            return Err(InvalidValue::new(
                field,
                schedule.describe(),
                "never matches a real date (e.g. February 30); check the day and month",
            ));
        }
        Ok(schedule)
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A checked schedule that computes due times. Serializes as its [`ScheduleSpec`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "ScheduleSpec", into = "ScheduleSpec")]
pub struct Schedule {
    spec: ScheduleSpec,
    rule: Rule,
}

#[derive(Debug, Clone)]
enum Rule {
    Manual,
    /// Seconds between runs, and the instant (Unix seconds) they count from.
    Interval {
        every: i64,
        anchor: i64,
    },
    /// The earliest next time of any of `crons`, in `tz`'s local time.
    Cron {
        crons: Vec<Cron>,
        tz: Tz,
    },
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        Self::Manual {}
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            spec: ScheduleSpec::Manual {},
            rule: Rule::Manual,
        }
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl TryFrom<ScheduleSpec> for Schedule {
    type Error = InvalidValue;

    fn try_from(spec: ScheduleSpec) -> Result<Self, Self::Error> {
        spec.validate()
    }
}

impl From<Schedule> for ScheduleSpec {
    fn from(schedule: Schedule) -> Self {
        schedule.spec
    }
}

impl Schedule {
    pub fn spec(&self) -> &ScheduleSpec {
        &self.spec
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.rule, Rule::Manual)
    }

    /// `manual`, `interval`, `cron` or `custom`.
    pub fn kind(&self) -> &'static str {
        match self.spec {
            ScheduleSpec::Manual {} => "manual",
            ScheduleSpec::Interval { .. } => "interval",
            ScheduleSpec::Cron { .. } => "cron",
            ScheduleSpec::Custom { .. } => "custom",
        }
    }

    /// The first due time strictly after `after`; `None` for a manual schedule.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match &self.rule {
            Rule::Manual => None,
            Rule::Interval { every, anchor } => {
                let t = after.unix_timestamp();
                let next = if t < *anchor {
                    *anchor
                } else {
                    anchor + ((t - anchor) / every + 1) * every
                };
                OffsetDateTime::from_unix_timestamp(next).ok()
            }
            Rule::Cron { crons, tz } => {
                let start = to_chrono(after)?.with_timezone(tz);
                crons
                    .iter()
                    .filter_map(|c| c.find_next_occurrence(&start, false).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .min()
                    .and_then(from_chrono)
            }
        }
    }

    /// The next `n` due times after `after`.
    pub fn next_runs(&self, after: OffsetDateTime, n: usize) -> Vec<OffsetDateTime> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// A due time as people read it: RFC 3339 with the schedule's local offset
    /// (`2026-12-07T02:00:00+01:00`; `Z` in UTC).
    pub fn local_time(&self, at: OffsetDateTime) -> String {
        let zoned = match (&self.rule, to_chrono(at)) {
            (Rule::Cron { tz, .. }, Some(t)) => t.with_timezone(tz).fixed_offset(),
            (_, Some(t)) => t.fixed_offset(),
            (_, None) => return at.format(&Rfc3339).unwrap_or_default(),
        };
        if zoned.offset().local_minus_utc() == 0 {
            zoned.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        } else {
            zoned.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
        }
    }

    /// The schedule in words: "at 02:00 every day, Europe/Paris", "every 6 hours".
    pub fn describe(&self) -> String {
        match &self.spec {
            ScheduleSpec::Manual {} => "manual: runs only when triggered".to_string(),
            ScheduleSpec::Interval { start_at, .. } => {
                let Rule::Interval { every, .. } = self.rule else {
                    return String::new();
                };
                let mut text = format!("every {}", duration_words(every));
                if let Some(start) = start_at {
                    text.push_str(&format!(", from {start}"));
                }
                text
            }
            ScheduleSpec::Cron { cron, timezone } => {
                let zone = timezone.as_deref().unwrap_or("UTC");
                let Rule::Cron { crons, .. } = &self.rule else {
                    return String::new();
                };
                let Some(parsed) = crons.first() else {
                    return cron.clone();
                };
                let mut text = parsed.describe();
                while text.ends_with('.') {
                    text.pop();
                }
                let mut text = lower_first(&text);
                if every_day(parsed) {
                    text.push_str(" every day");
                }
                format!("{text}, {zone}")
            }
            ScheduleSpec::Custom {
                times,
                weekdays,
                timezone,
            } => {
                let zone = timezone.as_deref().unwrap_or("UTC");
                let days = if weekdays.is_empty() {
                    "every day".to_string()
                } else {
                    let names: Vec<&str> = weekdays
                        .iter()
                        .filter_map(|d| WEEKDAYS.iter().find(|(s, _)| s == d).map(|(_, l)| *l))
                        .collect();
                    format!("on {}", join_words(&names))
                };
                let times: Vec<&str> = times.iter().map(String::as_str).collect();
                format!("at {} {days}, {zone}", join_words(&times))
            }
        }
    }
}

/// Whether a cron runs on every day: its day-of-month, month and day-of-week are wildcards and
/// its hours are fixed (so "at 02:00" needs "every day" to be read right).
fn every_day(cron: &Cron) -> bool {
    let text = cron.pattern.to_string();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let n = fields.len();
    if n < 5 {
        return false;
    }
    let wild = |f: &str| f == "*" || f == "?";
    wild(fields[n - 3])
        && wild(fields[n - 2])
        && wild(fields[n - 1])
        && !fields[n - 4].contains('*')
        && !fields[n - 4].contains('/')
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn join_words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn duration_words(seconds: i64) -> String {
    let (n, unit) = if seconds % 86_400 == 0 {
        (seconds / 86_400, "day")
    } else if seconds % 3_600 == 0 {
        (seconds / 3_600, "hour")
    } else {
        (seconds / 60, "minute")
    };
    if n == 1 {
        unit.to_string()
    } else {
        format!("{n} {unit}s")
    }
}

/// The longest interval: a year.
const MAX_INTERVAL_SECONDS: i64 = 366 * 86_400;

fn parse_every(text: &str) -> Result<i64, InvalidValue> {
    let fail = || {
        InvalidValue::new(
            "schedule.every",
            text,
            "write a whole number and a unit: m (minutes), h (hours) or d (days), e.g. 30m, 6h, 1d",
        )
    };
    let trimmed = text.trim().to_ascii_lowercase();
    let unit = match trimmed.chars().last() {
        Some('m') => 60,
        Some('h') => 3_600,
        Some('d') => 86_400,
        _ => return Err(fail()),
    };
    let digits = &trimmed[..trimmed.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail());
    }
    let n: i64 = digits.parse().map_err(|_| fail())?;
    let seconds = n.saturating_mul(unit);
    if n == 0 || seconds > MAX_INTERVAL_SECONDS {
        return Err(InvalidValue::new(
            "schedule.every",
            text,
            "an interval is from 1 minute to 366 days",
        ));
    }
    Ok(seconds)
}

fn parse_zone(zone: Option<&str>) -> Result<Tz, InvalidValue> {
    match zone {
        None => Ok(Tz::UTC),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            InvalidValue::new(
                "schedule.timezone",
                name,
                "is not an IANA time zone name; write e.g. Europe/Paris, America/New_York or UTC",
            )
        }),
    }
}

fn parse_cron(expression: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expression)
        .map_err(|e| format!("is not a cron expression wharf can read: {e}"))
}

/// Weekday numbers (0 = Monday) from names or ranges (`mon`, `Monday`, `mon-fri`), sorted.
fn weekdays_of(names: &[String]) -> Result<Vec<usize>, InvalidValue> {
    let index = |name: &str| -> Result<usize, InvalidValue> {
        let lower = name.trim().to_ascii_lowercase();
        WEEKDAYS
            .iter()
            .position(|(short, long)| lower == *short || lower == long.to_ascii_lowercase())
            .ok_or_else(|| {
                InvalidValue::new(
                    "schedule.weekdays",
                    name,
                    "a weekday is mon, tue, wed, thu, fri, sat or sun (or a range: mon-fri)",
                )
            })
    };
    let mut days = Vec::new();
    for name in names {
        match name.split_once('-') {
            Some((from, to)) => {
                let (a, b) = (index(from)?, index(to)?);
                if a > b {
                    return Err(InvalidValue::new(
                        "schedule.weekdays",
                        name,
                        "a range runs from Monday towards Sunday, e.g. mon-fri",
                    ));
                }
                days.extend(a..=b);
            }
            None => days.push(index(name)?),
        }
    }
    if days.is_empty() {
        days.extend(0..7);
    }
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

/// Times of day as (hour, minute), sorted and without repeats.
fn times_of(times: &[String]) -> Result<Vec<(u32, u32)>, InvalidValue> {
    if times.is_empty() {
        return Err(InvalidValue::new(
            "schedule.times",
            "",
            "name at least one time of day, e.g. 08:00",
        ));
    }
    if times.len() > 96 {
        return Err(InvalidValue::new(
            "schedule.times",
            times.len().to_string(),
            "at most 96 times a day; for more, use an interval or a cron schedule",
        ));
    }
    let mut out = Vec::new();
    for text in times {
        let parsed = text.trim().split_once(':').and_then(|(h, m)| {
            let ok = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
            (ok(h) && ok(m))
                .then(|| (h.parse::<u32>().ok(), m.parse::<u32>().ok()))
                .and_then(|(h, m)| Some((h?, m?)))
        });
        match parsed {
            Some((h, m)) if h < 24 && m < 60 => out.push((h, m)),
            _ => {
                return Err(InvalidValue::new(
                    "schedule.times",
                    text,
                    "a time of day is HH:MM, from 00:00 to 23:59",
                ));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn times_text(times: &[(u32, u32)]) -> String {
    times
        .iter()
        .map(|(h, m)| format!("{h:02}:{m:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The spec as stored: custom times as `HH:MM` in order, weekdays as short names in week order
/// (none when every day), an explicit `UTC` zone left out.
fn normalize(spec: ScheduleSpec) -> ScheduleSpec {
    let zone = |tz: Option<String>| tz.filter(|z| z != "UTC");
    match spec {
        ScheduleSpec::Interval { every, start_at } => ScheduleSpec::Interval {
            every: every.trim().to_ascii_lowercase(),
            start_at,
        },
        ScheduleSpec::Cron { cron, timezone } => ScheduleSpec::Cron {
            cron: cron.trim().to_string(),
            timezone: zone(timezone),
        },
        ScheduleSpec::Custom {
            times,
            weekdays,
            timezone,
        } => {
            let times = times_of(&times)
                .map(|t| t.iter().map(|(h, m)| format!("{h:02}:{m:02}")).collect())
                .unwrap_or(times);
            let weekdays = match weekdays_of(&weekdays) {
                Ok(days) if days.len() == 7 => Vec::new(),
                Ok(days) => days.iter().map(|d| WEEKDAYS[*d].0.to_string()).collect(),
                Err(_) => weekdays,
            };
            ScheduleSpec::Custom {
                times,
                weekdays,
                timezone: zone(timezone),
            }
        }
        manual => manual,
    }
}

fn to_chrono(t: OffsetDateTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.unix_timestamp(), t.nanosecond())
        .single()
}

fn from_chrono(t: DateTime<Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()
}

#[cfg(test)]
mod tests;
