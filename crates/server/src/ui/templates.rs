//! The page templates: minijinja, HTML auto-escaped. Release builds carry them in the binary;
//! debug builds read them from `crates/server/templates` on every render when that folder is
//! there, so an edit shows on reload without a rebuild.

use minijinja::Environment;
use std::sync::OnceLock;

/// Every template, by name, as embedded in the binary.
macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name)))),*]
    };
}

const EMBEDDED: &[(&str, &str)] = embedded![
    "base.html",
    "macros.html",
    "sign_in.html",
    "error.html",
    "confirm.html",
    "destinations/list.html",
    "destinations/form.html",
    "destinations/fields.html",
    "destinations/show.html",
    "destinations/test.html",
    "destinations/steps.html",
    "sources/list.html",
    "sources/form.html",
    "sources/show.html",
    "models/list.html",
    "models/form.html",
    "models/pk.html",
    "models/preview.html",
    "models/rows.html",
    "models/show.html",
    "segments/list.html",
    "segments/form.html",
    "segments/builder.html",
    "segments/count.html",
    "segments/show.html",
    "syncs/list.html",
    "syncs/form.html",
    "syncs/columns.html",
    "syncs/preview.html",
    "syncs/show.html",
    "runs/macros.html",
    "runs/list.html",
    "runs/progress.html",
    "runs/show.html",
    "alerts/list.html",
    "alerts/show.html",
    "access/tokens.html",
    "access/users.html",
    "access/audit.html",
];

/// Renders `name` with `context`. A template error is wharf's bug: it is logged, and the page
/// says only that something went wrong.
pub(crate) fn render(name: &str, context: minijinja::Value) -> Result<String, minijinja::Error> {
    #[cfg(debug_assertions)]
    if let Some(dir) = development_folder() {
        let mut env = environment();
        env.set_loader(minijinja::path_loader(dir));
        return env.get_template(name)?.render(context);
    }
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let mut env = environment();
        for (name, source) in EMBEDDED {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!("template {name} does not parse: {e}");
            }
        }
        env
    });
    env.get_template(name)?.render(context)
}

/// The templates' folder in the source tree, when this build runs where it was built.
#[cfg(debug_assertions)]
fn development_folder() -> Option<&'static std::path::Path> {
    static DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        dir.is_dir().then_some(dir)
    })
    .as_deref()
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("when", when);
    env.add_filter("bytes", bytes);
    env.add_filter("thousands", thousands);
    env.add_filter("sentence", sentence);
    env
}

/// `2026-12-06T18:07:54.123456Z` as `2026-12-06 18:07 UTC`.
fn when(value: Option<String>) -> String {
    let Some(value) = value else {
        return "never".to_string();
    };
    match (value.get(..10), value.get(11..16)) {
        (Some(day), Some(minute)) if value.len() >= 16 => format!("{day} {minute} UTC"),
        _ => value,
    }
}

/// A byte count in the largest unit that keeps it at least 1 (binary units, one decimal).
fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut size = value as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// The text with its first letter in upper case (Jinja's `capitalize` lowers the rest, which
/// would turn `UTC` into `utc`).
fn sentence(value: String) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => value,
    }
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_template_parses() {
        let mut env = environment();
        for (name, source) in EMBEDDED {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn times_and_sizes_read_as_people_write_them() {
        assert_eq!(
            when(Some("2026-12-06T18:07:54.123456Z".into())),
            "2026-12-06 18:07 UTC"
        );
        assert_eq!(when(None), "never");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(5 * 1024 * 1024 + 1), "5.0 MiB");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(
            sentence("at 02:00 every day, UTC".into()),
            "At 02:00 every day, UTC"
        );
    }
}
