//! Schedule arithmetic against tables computed by hand (and checked against a calendar):
//! intervals, every kind of cron field, aliases, `L`/`#`/`W`, custom recurrence, and both
//! daylight-saving changes of Europe/Paris (2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)
//! and America/New_York (2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00).

use super::*;

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).expect("test time")
}

fn utc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

fn cron(expression: &str, zone: Option<&str>) -> Schedule {
    ScheduleSpec::Cron {
        cron: expression.into(),
        timezone: zone.map(str::to_string),
    }
    .validate()
    .unwrap_or_else(|e| panic!("{expression}: {e}"))
}

/// The next `n` due times after `from`, in UTC.
fn next(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
    schedule
        .next_runs(at(from), n)
        .into_iter()
        .map(utc)
        .collect()
}

#[test]
fn intervals_count_elapsed_time_from_their_anchor() {
    let every = |e: &str, start: Option<&str>| {
        ScheduleSpec::Interval {
            every: e.into(),
            start_at: start.map(str::to_string),
        }
        .validate()
        .expect("interval")
    };
    // No anchor: aligned to midnight UTC.
    assert_eq!(
        next(&every("6h", None), "2026-12-06T09:10:00Z", 3),
        [
            "2026-12-06T12:00:00Z",
            "2026-12-06T18:00:00Z",
            "2026-12-07T00:00:00Z"
        ]
    );
    // A due time is strictly after the instant asked about.
    assert_eq!(
        next(&every("5m", None), "2026-12-06T09:05:00Z", 2),
        ["2026-12-06T09:10:00Z", "2026-12-06T09:15:00Z"]
    );
    let anchored = every("5m", Some("2026-12-06T09:02:00Z"));
    assert_eq!(
        next(&anchored, "2026-12-06T09:00:00Z", 2),
        ["2026-12-06T09:02:00Z", "2026-12-06T09:07:00Z"]
    );
    // Before its start: the start itself.
    assert_eq!(
        next(&anchored, "2026-01-01T00:00:00Z", 1),
        ["2026-12-06T09:02:00Z"]
    );
    // Elapsed time across the Paris change: 02:00 CET becomes 03:00 CEST.
    let daily = every("1d", Some("2026-03-28T01:00:00Z"));
    assert_eq!(
        next(&daily, "2026-03-28T00:00:00Z", 3),
        [
            "2026-03-28T01:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T01:00:00Z"
        ]
    );
    assert_eq!(every("90m", None).describe(), "every 90 minutes");
    assert_eq!(every("1d", None).describe(), "every day");
    assert_eq!(every("2H", None).describe(), "every 2 hours");
    assert_eq!(
        every("6h", None).spec(),
        &ScheduleSpec::Interval {
            every: "6h".into(),
            start_at: None
        }
    );
}

#[test]
fn every_kind_of_cron_field() {
    let table: &[(&str, &str, &[&str])] = &[
        // steps and ranges
        (
            "*/15 9-10 * * *",
            "2026-12-06T10:40:00Z",
            &["2026-12-06T10:45:00Z", "2026-12-07T09:00:00Z"],
        ),
        // lists
        (
            "0 6,18 * * *",
            "2026-12-06T07:00:00Z",
            &["2026-12-06T18:00:00Z", "2026-12-07T06:00:00Z"],
        ),
        // a step over a range
        (
            "0 0-12/6 * * *",
            "2026-12-06T01:00:00Z",
            &[
                "2026-12-06T06:00:00Z",
                "2026-12-06T12:00:00Z",
                "2026-12-07T00:00:00Z",
            ],
        ),
        // day of month and month names
        (
            "0 0 1 jan,jul *",
            "2026-12-06T00:00:00Z",
            &["2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"],
        ),
        // weekday names and ranges (2026-12-06 is a Sunday)
        (
            "0 8 * * MON-FRI",
            "2026-12-06T00:00:00Z",
            &["2026-12-07T08:00:00Z", "2026-12-08T08:00:00Z"],
        ),
        // 7 is Sunday, as 0
        (
            "0 8 * * 7",
            "2026-12-06T09:00:00Z",
            &["2026-12-13T08:00:00Z"],
        ),
        // six fields: seconds first
        (
            "30 0 12 * * *",
            "2026-12-06T12:00:00Z",
            &["2026-12-06T12:00:30Z", "2026-12-07T12:00:30Z"],
        ),
        // last day of the month (2028 is a leap year)
        (
            "0 0 L * *",
            "2028-02-01T00:00:00Z",
            &["2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"],
        ),
        // the last Friday of the month
        (
            "0 0 * * 5L",
            "2026-12-01T00:00:00Z",
            &["2026-12-25T00:00:00Z"],
        ),
        // the second Monday
        (
            "0 0 * * MON#2",
            "2026-12-01T00:00:00Z",
            &["2026-12-14T00:00:00Z", "2027-01-11T00:00:00Z"],
        ),
        // the weekday nearest the 15th: 2026-08-15 is a Saturday, so Friday the 14th
        (
            "0 0 15W * *",
            "2026-08-01T00:00:00Z",
            &["2026-08-14T00:00:00Z"],
        ),
        // aliases
        ("@daily", "2026-12-06T09:00:00Z", &["2026-12-07T00:00:00Z"]),
        (
            "@midnight",
            "2026-12-06T09:00:00Z",
            &["2026-12-07T00:00:00Z"],
        ),
        ("@hourly", "2026-12-06T09:00:00Z", &["2026-12-06T10:00:00Z"]),
        ("@weekly", "2026-12-06T09:00:00Z", &["2026-12-13T00:00:00Z"]),
        (
            "@monthly",
            "2026-12-06T09:00:00Z",
            &["2027-01-01T00:00:00Z"],
        ),
        ("@yearly", "2026-12-06T09:00:00Z", &["2027-01-01T00:00:00Z"]),
        (
            "@annually",
            "2026-12-06T09:00:00Z",
            &["2027-01-01T00:00:00Z"],
        ),
    ];
    for (expression, from, expected) in table {
        let schedule = cron(expression, None);
        assert_eq!(
            next(&schedule, from, expected.len()),
            *expected,
            "{expression} after {from}"
        );
    }
}

#[test]
fn paris_daylight_saving_changes() {
    let daily = cron("30 2 * * *", Some("Europe/Paris"));
    // Spring forward: 02:30 does not exist on 2026-03-29; it runs once, at 03:00 CEST.
    assert_eq!(
        next(&daily, "2026-03-28T12:00:00Z", 3),
        [
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z",
            "2026-03-31T00:30:00Z"
        ]
    );
    assert_eq!(
        daily.local_time(at("2026-03-29T01:00:00Z")),
        "2026-03-29T03:00:00+02:00"
    );
    // Fall back: 02:30 happens twice on 2026-10-25; it runs once, at the first (CEST).
    assert_eq!(
        next(&daily, "2026-10-24T12:00:00Z", 3),
        [
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
            "2026-10-27T01:30:00Z"
        ]
    );
    // A schedule that repeats within the hour runs in both passes, 30 minutes apart.
    let half_hourly = cron("*/30 * * * *", Some("Europe/Paris"));
    assert_eq!(
        next(&half_hourly, "2026-10-24T23:45:00Z", 5),
        [
            "2026-10-25T00:00:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T01:30:00Z",
            "2026-10-25T02:00:00Z"
        ]
    );
    // ...and skips the hour that does not exist in spring.
    assert_eq!(
        next(&half_hourly, "2026-03-29T00:15:00Z", 3),
        [
            "2026-03-29T00:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T01:30:00Z"
        ]
    );
    assert_eq!(daily.describe(), "at 02:30 every day, Europe/Paris");
}

#[test]
fn new_york_daylight_saving_changes() {
    let daily = cron("30 2 * * *", Some("America/New_York"));
    // 2026-03-08: 02:00 EST -> 03:00 EDT; 02:30 runs at 03:00 EDT (07:00 UTC).
    assert_eq!(
        next(&daily, "2026-03-07T12:00:00Z", 3),
        [
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
            "2026-03-10T06:30:00Z"
        ]
    );
    // 2026-11-01: 02:00 EDT -> 01:00 EST; 01:30 happens twice and runs once, at 01:30 EDT.
    let early = cron("30 1 * * *", Some("America/New_York"));
    assert_eq!(
        next(&early, "2026-10-31T12:00:00Z", 3),
        [
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z",
            "2026-11-03T06:30:00Z"
        ]
    );
    assert_eq!(
        early.local_time(at("2026-11-02T06:30:00Z")),
        "2026-11-02T01:30:00-05:00"
    );
}

#[test]
fn custom_recurrence() {
    let custom = ScheduleSpec::Custom {
        times: vec!["17:30".into(), "08:00".into(), "8:00".into()],
        weekdays: vec!["fri".into(), "mon".into(), "Wednesday".into()],
        timezone: Some("Europe/Paris".into()),
    };
    // "8:00" is not HH:MM.
    let error = custom.clone().validate().expect_err("8:00");
    assert_eq!(error.field, "schedule.times");
    let custom = match custom {
        ScheduleSpec::Custom {
            weekdays, timezone, ..
        } => ScheduleSpec::Custom {
            times: vec!["17:30".into(), "08:00".into(), "08:00".into()],
            weekdays,
            timezone,
        },
        other => other,
    }
    .validate()
    .expect("custom");
    // 2026-12-07 is a Monday; Paris is UTC+1 in December.
    assert_eq!(
        next(&custom, "2026-12-06T12:00:00Z", 5),
        [
            "2026-12-07T07:00:00Z",
            "2026-12-07T16:30:00Z",
            "2026-12-09T07:00:00Z",
            "2026-12-09T16:30:00Z",
            "2026-12-11T07:00:00Z"
        ]
    );
    assert_eq!(
        custom.describe(),
        "at 08:00 and 17:30 on Monday, Wednesday and Friday, Europe/Paris"
    );
    // Stored sorted, without repeats, days in week order.
    assert_eq!(
        custom.spec(),
        &ScheduleSpec::Custom {
            times: vec!["08:00".into(), "17:30".into()],
            weekdays: vec!["mon".into(), "wed".into(), "fri".into()],
            timezone: Some("Europe/Paris".into()),
        }
    );
    // Every day, across the New York spring change: 02:30 runs at 03:00 EDT.
    let nightly = ScheduleSpec::Custom {
        times: vec!["02:30".into()],
        weekdays: vec!["mon-sun".into()],
        timezone: Some("America/New_York".into()),
    }
    .validate()
    .expect("nightly");
    assert_eq!(
        next(&nightly, "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    assert_eq!(nightly.describe(), "at 02:30 every day, America/New_York");
}

#[test]
fn validation_names_the_field_and_the_problem() {
    let fails = |spec: ScheduleSpec| spec.validate().expect_err("invalid").to_string();
    let c = |e: &str| ScheduleSpec::Cron {
        cron: e.into(),
        timezone: None,
    };
    assert_eq!(
        fails(c("0 25 * * *")),
        r#"schedule.cron "0 25 * * *" is invalid: hour 25 is out of range 0-23"#
    );
    assert!(fails(c("61 * * * *")).contains("minute 61 is out of range 0-59"));
    assert!(fails(c("0 0 32 * *")).contains("day of month 32 is out of range 1-31"));
    assert!(fails(c("0 0 * 13 *")).contains("month 13 is out of range 1-12"));
    assert!(fails(c("0 0 * * 8")).contains("day of week 8 is out of range 0-7"));
    assert!(fails(c("0 0 * *")).contains("has 4 fields"));
    assert!(fails(c("1 2 3 4 5 6 7")).contains("has 7 fields"));
    assert!(fails(c("@fortnightly")).contains("the aliases are @yearly"));
    assert!(fails(c("0 9-5 * * *")).contains("runs backwards"));
    assert!(fails(c("*/0 * * * *")).contains("step \"0\""));
    assert!(fails(c("0 0 * * MON#6")).contains("1 to 5"));
    assert!(fails(c("0 0 * * funday")).contains("is not a number from 0 to 7"));
    assert!(fails(c("0 0 30 2 *")).contains("never matches a real date"));
    let zone = fails(ScheduleSpec::Cron {
        cron: "0 2 * * *".into(),
        timezone: Some("Europe/Pari".into()),
    });
    assert!(
        zone.starts_with("schedule.timezone \"Europe/Pari\""),
        "{zone}"
    );
    let every = |e: &str| ScheduleSpec::Interval {
        every: e.into(),
        start_at: None,
    };
    assert!(fails(every("0m")).contains("from 1 minute to 366 days"));
    assert!(fails(every("5x")).starts_with("schedule.every \"5x\""));
    assert!(fails(every("367d")).contains("366 days"));
    assert!(
        fails(ScheduleSpec::Interval {
            every: "1h".into(),
            start_at: Some("tomorrow".into())
        })
        .starts_with("schedule.start_at")
    );
    assert!(
        fails(ScheduleSpec::Custom {
            times: vec!["25:00".into()],
            weekdays: vec![],
            timezone: None
        })
        .contains("00:00 to 23:59")
    );
    assert!(
        fails(ScheduleSpec::Custom {
            times: vec!["08:00".into()],
            weekdays: vec!["funday".into()],
            timezone: None
        })
        .starts_with("schedule.weekdays \"funday\"")
    );
}

#[test]
fn the_command_line_forms() {
    let parse = |v: &str, tz: Option<&str>| ScheduleSpec::parse_flag(v, tz);
    assert_eq!(parse("manual", None), Ok(ScheduleSpec::Manual {}));
    assert_eq!(
        parse("every:6h", None),
        Ok(ScheduleSpec::Interval {
            every: "6h".into(),
            start_at: None
        })
    );
    assert_eq!(
        parse("every:30m@2026-12-06T09:00:00Z", None),
        Ok(ScheduleSpec::Interval {
            every: "30m".into(),
            start_at: Some("2026-12-06T09:00:00Z".into())
        })
    );
    assert_eq!(
        parse("cron:0 2 * * *", Some("Europe/Paris")),
        Ok(ScheduleSpec::Cron {
            cron: "0 2 * * *".into(),
            timezone: Some("Europe/Paris".into())
        })
    );
    assert_eq!(
        parse("custom:08:00,17:30 on mon-fri", None),
        Ok(ScheduleSpec::Custom {
            times: vec!["08:00".into(), "17:30".into()],
            weekdays: vec!["mon-fri".into()],
            timezone: None
        })
    );
    let error = parse("daily", None).expect_err("not a form");
    assert_eq!(error.field, "schedule");
    assert!(error.reason.contains("every:<N><m|h|d>"));
    let error = parse("every:6h", Some("Europe/Paris")).expect_err("zone with interval");
    assert_eq!(error.field, "timezone");
    let described = parse("cron:0 2 * * *", Some("Europe/Paris"))
        .and_then(ScheduleSpec::validate)
        .expect("valid");
    assert_eq!(described.describe(), "at 02:00 every day, Europe/Paris");
    assert_eq!(
        described
            .next_runs(at("2026-12-06T09:00:00Z"), 3)
            .into_iter()
            .map(|t| described.local_time(t))
            .collect::<Vec<_>>(),
        [
            "2026-12-07T02:00:00+01:00",
            "2026-12-08T02:00:00+01:00",
            "2026-12-09T02:00:00+01:00"
        ]
    );
    assert_eq!(
        parse("manual", None)
            .and_then(ScheduleSpec::validate)
            .map(|s| s.next_runs(at("2026-12-06T09:00:00Z"), 3)),
        Ok(vec![])
    );
}

#[test]
fn schedules_round_trip_through_json() {
    let schedule = cron("0 2 * * *", Some("Europe/Paris"));
    let text = serde_json::to_string(&schedule).expect("json");
    assert_eq!(
        text,
        r#"{"kind":"cron","cron":"0 2 * * *","timezone":"Europe/Paris"}"#
    );
    let back: Schedule = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, schedule);
    let bad = serde_json::from_str::<Schedule>(r#"{"kind":"cron","cron":"0 25 * * *"}"#)
        .expect_err("invalid");
    assert!(bad.to_string().contains("hour 25"), "{bad}");
    let unknown =
        serde_json::from_str::<ScheduleSpec>(r#"{"kind":"manual","every":"1h"}"#).expect_err("x");
    assert!(unknown.to_string().contains("unknown field"), "{unknown}");
}

#[test]
fn backoff_doubles_up_to_its_cap_with_full_jitter() {
    let policy = RunPolicy::default();
    let top = |attempt| policy.backoff(attempt, 0.999_999).as_secs();
    assert_eq!(
        [top(1), top(2), top(3), top(7), top(20)],
        [59, 119, 239, 3599, 3599]
    );
    assert_eq!(policy.backoff(3, 0.0).as_millis(), 0);
    assert_eq!(policy.backoff(2, 0.5).as_secs(), 60);
    assert!(
        RunPolicy {
            retry_cap_seconds: 10,
            ..RunPolicy::default()
        }
        .validate()
        .is_err()
    );
    assert_eq!(parse_seconds("retry_base", "2m"), Ok(120));
    assert!(parse_seconds("retry_base", "2 weeks").is_err());
}
