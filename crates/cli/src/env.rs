//! The environment variables wharf reads, checked like flags before any command runs.
//!
//! A value that does not parse is bad input (exit 2) whose message names the variable, quotes
//! the value and says what is accepted; nothing is ever silently ignored. `WHARF_HOME` is a
//! path and is read by clap with `--home`; `WHARF_MASTER_KEY` is checked where it is used (the
//! store), without echoing it.

use crate::error::CliError;

/// Lets destinations use endpoints on loopback or private networks (as `--allow-private-endpoints`).
pub const ALLOW_PRIVATE_ENDPOINTS: &str = "WHARF_ALLOW_PRIVATE_ENDPOINTS";
/// The query engine's memory budget, in MiB.
pub const QUERY_MEMORY_MB: &str = "WHARF_QUERY_MEMORY_MB";
/// Threads that encode one file.
pub const ENCODE_THREADS: &str = "WHARF_ENCODE_THREADS";
/// Folders that local sources must lie in, for `wharf serve` (a path list, `:`-separated).
pub const LOCAL_SOURCE_ROOTS: &str = "WHARF_LOCAL_SOURCE_ROOTS";
/// Log filter (tracing's `EnvFilter` syntax).
pub const RUST_LOG: &str = "RUST_LOG";

/// Smallest query memory budget: below it DataFusion cannot even merge a sort's spill files.
pub const QUERY_MEMORY_MB_MIN: u64 = 32;
/// Largest query memory budget (1 TiB), to catch a value given in bytes or KiB.
pub const QUERY_MEMORY_MB_MAX: u64 = 1 << 20;

/// The checked values of wharf's own variables (unset ones are `None`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Environment {
    pub allow_private_endpoints: Option<bool>,
    pub query_memory_mb: Option<u64>,
    pub encode_threads: Option<u64>,
    pub local_source_roots: Option<Vec<std::path::PathBuf>>,
}

impl Environment {
    /// Reads and checks every variable from the process environment.
    pub fn from_process() -> Result<Self, CliError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads and checks every variable through `lookup` (tests pass a map).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, CliError> {
        let value = |name: &str| -> Result<Option<String>, CliError> {
            match lookup(name) {
                None => Ok(None),
                Some(v) => match v.into_string() {
                    Ok(v) if v.trim().is_empty() => Ok(None),
                    Ok(v) => Ok(Some(v)),
                    Err(_) => Err(CliError::bad(format!(
                        "environment variable {name} is not valid UTF-8: set it to plain text, or unset it"
                    ))),
                },
            }
        };
        Ok(Self {
            allow_private_endpoints: value(ALLOW_PRIVATE_ENDPOINTS)?
                .map(|v| parse_bool(ALLOW_PRIVATE_ENDPOINTS, &v))
                .transpose()?,
            query_memory_mb: value(QUERY_MEMORY_MB)?
                .map(|v| {
                    parse_count(
                        QUERY_MEMORY_MB,
                        &v,
                        QUERY_MEMORY_MB_MIN..=QUERY_MEMORY_MB_MAX,
                        "a whole number of mebibytes, e.g. 512 for 512 MiB",
                    )
                })
                .transpose()?,
            encode_threads: value(ENCODE_THREADS)?
                .map(|v| parse_count(ENCODE_THREADS, &v, 1..=256, "a number of threads, e.g. 2"))
                .transpose()?,
            local_source_roots: value(LOCAL_SOURCE_ROOTS)?
                .map(|v| parse_roots(LOCAL_SOURCE_ROOTS, &v))
                .transpose()?,
        })
    }
}

/// Folders, `:`-separated, each one absolute.
pub fn parse_roots(name: &str, value: &str) -> Result<Vec<std::path::PathBuf>, CliError> {
    let roots: Vec<std::path::PathBuf> = std::env::split_paths(value)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if let Some(relative) = roots.iter().find(|p| !p.is_absolute()) {
        return Err(CliError::bad(format!(
            "environment variable {name}: {:?} is not an absolute path; give absolute folders separated by `:`",
            relative.display().to_string()
        )));
    }
    Ok(roots)
}

/// A boolean as people write them in environments: 1/0, true/false, yes/no, on/off (any case).
pub fn parse_bool(name: &str, value: &str) -> Result<bool, CliError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(CliError::bad(format!(
            "environment variable {name}={value:?} is not a boolean: use 1 or 0 (also true/false, yes/no, on/off), or unset it"
        ))),
    }
}

fn parse_count(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
    expected: &str,
) -> Result<u64, CliError> {
    let bad = |problem: &str| {
        CliError::bad(format!(
            "environment variable {name}={value:?} {problem}: expected {expected}, between {} and {}; or unset it for the default",
            range.start(),
            range.end()
        ))
    };
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|_| bad("is not a whole number"))?;
    if !range.contains(&n) {
        return Err(bad("is out of range"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> Result<Environment, CliError> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Environment::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        for (text, expected) in [
            ("1", true),
            ("TRUE", true),
            ("yes", true),
            ("On", true),
            ("0", false),
            ("false", false),
            ("no", false),
            ("off", false),
        ] {
            let parsed = env(&[(ALLOW_PRIVATE_ENDPOINTS, text)]).expect(text);
            assert_eq!(parsed.allow_private_endpoints, Some(expected), "{text}");
        }
        assert_eq!(env(&[]).expect("unset"), Environment::default());
        assert_eq!(
            env(&[(ALLOW_PRIVATE_ENDPOINTS, "")])
                .expect("empty is unset")
                .allow_private_endpoints,
            None
        );
    }

    #[test]
    fn bad_values_name_the_variable_the_value_and_the_fix() {
        let err = env(&[(ALLOW_PRIVATE_ENDPOINTS, "maybe")]).expect_err("bad");
        let text = err.to_string();
        assert!(
            text.contains("WHARF_ALLOW_PRIVATE_ENDPOINTS=\"maybe\"") && text.contains("use 1 or 0"),
            "{text}"
        );
        assert_eq!(err.exit_code(), 2);
        for value in ["abc", "-1", "2g", "1.5", "0", "99999999999"] {
            let err = env(&[(QUERY_MEMORY_MB, value)]).expect_err(value);
            let text = err.to_string();
            assert!(
                text.contains(&format!("WHARF_QUERY_MEMORY_MB={value:?}"))
                    && text.contains("mebibytes"),
                "{text}"
            );
        }
        assert_eq!(
            env(&[(QUERY_MEMORY_MB, "256")])
                .expect("ok")
                .query_memory_mb,
            Some(256)
        );
        let err = env(&[(ENCODE_THREADS, "lots")]).expect_err("bad");
        assert!(err.to_string().contains("WHARF_ENCODE_THREADS"), "{err}");
    }
}
