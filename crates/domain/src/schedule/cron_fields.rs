//! Field-by-field checks of a cron expression, so that a mistake is named precisely
//! (`hour 25 is out of range 0-23`) before the expression is handed to `croner`, whose own
//! messages do not say which field is wrong.

/// The `@` aliases wharf accepts, and the expressions they stand for.
pub(super) const ALIASES: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names accepted for values (`JAN`, `MON`), numbered from `min`.
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

/// Expands an alias and checks the number of fields and every value in them. Returns the
/// expression to parse (the alias expanded) and its fields.
pub(super) fn check(expression: &str) -> Result<(String, Vec<String>), String> {
    let trimmed = expression.trim();
    let expanded = if trimmed.starts_with('@') {
        let lower = trimmed.to_ascii_lowercase();
        match ALIASES.iter().find(|(alias, _)| *alias == lower) {
            Some((_, pattern)) => (*pattern).to_string(),
            None => {
                let names: Vec<&str> = ALIASES.iter().map(|(a, _)| *a).collect();
                return Err(format!(
                    "{trimmed} is not an alias; the aliases are {}",
                    names.join(", ")
                ));
            }
        }
    } else {
        trimmed.to_string()
    };
    let fields: Vec<String> = expanded.split_whitespace().map(str::to_string).collect();
    let kinds: &[&Field] = match fields.len() {
        5 => &[&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK],
        6 => &[&SECOND, &MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK],
        0 => {
            return Err(
                "is empty; write 5 fields: minute hour day-of-month month day-of-week".into(),
            );
        }
        n => {
            return Err(format!(
                "has {n} fields; write 5 (minute hour day-of-month month day-of-week) or 6 (a second first)"
            ));
        }
    };
    for (field, text) in kinds.iter().zip(&fields) {
        check_field(field, text)?;
    }
    Ok((expanded, fields))
}

fn check_field(field: &Field, text: &str) -> Result<(), String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "{} {text:?} has an empty item in its list",
                field.name
            ));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n >= 1 && n <= field.max.max(1) => {}
                _ => {
                    return Err(format!(
                        "{} step {step:?} in {item:?} is not a number from 1 to {}",
                        field.name,
                        field.max.max(1)
                    ));
                }
            }
        }
        check_base(field, base, item)?;
    }
    Ok(())
}

fn check_base(field: &Field, base: &str, item: &str) -> Result<(), String> {
    let upper = base.to_ascii_uppercase();
    if upper == "*" || upper == "?" {
        return Ok(());
    }
    match field.name {
        "day of month" => {
            if upper == "L" || upper == "LW" {
                return Ok(());
            }
            if let Some(day) = upper.strip_suffix('W') {
                return value(field, day, item).map(|_| ());
            }
        }
        "day of week" => {
            if upper == "L" {
                return Ok(());
            }
            if let Some(day) = upper.strip_suffix('L') {
                return value(field, day, item).map(|_| ());
            }
            if let Some((day, nth)) = upper.split_once('#') {
                value(field, day, item)?;
                return match nth.parse::<u32>() {
                    Ok(1..=5) => Ok(()),
                    _ => Err(format!(
                        "day of week {item:?}: the number after # is which week of the month, 1 to 5"
                    )),
                };
            }
        }
        _ => {}
    }
    match upper.split_once('-') {
        Some((from, to)) => {
            let (a, b) = (value(field, from, item)?, value(field, to, item)?);
            if a > b {
                return Err(format!(
                    "{} range {item:?} runs backwards; write the smaller value first",
                    field.name
                ));
            }
            Ok(())
        }
        None => value(field, &upper, item).map(|_| ()),
    }
}

/// One value: a number in the field's range or one of its names.
fn value(field: &Field, text: &str, item: &str) -> Result<u32, String> {
    if let Some(i) = field.names.iter().position(|n| *n == text) {
        return Ok(field.min + u32::try_from(i).unwrap_or(0));
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        let names = if field.names.is_empty() {
            String::new()
        } else {
            format!(
                " or a name ({}-{})",
                field.names[0],
                field.names[field.names.len() - 1]
            )
        };
        return Err(format!(
            "{} {item:?} is not a number from {} to {}{names}",
            field.name, field.min, field.max
        ));
    }
    match text.parse::<u32>() {
        Ok(n) if (field.min..=field.max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{} {text} is out of range {}-{}",
            field.name, field.min, field.max
        )),
    }
}
