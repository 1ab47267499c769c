//! Sources (warehouse connections) and models (named queries with a typed schema).

use crate::error::InvalidValue;
use crate::secret::Secret;
use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// How to reach a warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A folder of Parquet, CSV and NDJSON files, queried in-process.
    Local { path: PathBuf },
    /// A PostgreSQL database; models run their SQL there.
    Postgres(PostgresSource),
}

impl SourceConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local { .. } => "local",
            Self::Postgres(_) => "postgres",
        }
    }
}

string_enum!(
    /// TLS to PostgreSQL, as libpq names it. `prefer` and `require` encrypt without checking the
    /// server's certificate; `verify-full` checks it against the system's roots (or
    /// `--sslrootcert`) and the host name.
    SslMode, "sslmode", "sslmode", {
        Disable => "disable",
        Prefer => "prefer",
        Require => "require",
        VerifyFull => "verify-full",
    }
);

/// A PostgreSQL source. The URL may hold a password: it is sealed in the store, never
/// serialized with the rest, and shown only as [`PostgresSource::display`] (password removed).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresSource {
    #[serde(skip)]
    pub url: PostgresUrl,
    /// The URL without its password, for display.
    pub display: String,
    pub sslmode: SslMode,
    /// A CA certificate file (PEM) to trust for `verify-full`, instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslrootcert: Option<PathBuf>,
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSource")
            .field("display", &self.display)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .finish_non_exhaustive()
    }
}

/// A connection URL (`postgres://user:password@host:5432/db?options=...`), checked and
/// without its TLS parameters (they are [`PostgresSource`]'s fields).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(Secret<String>);

impl Default for PostgresUrl {
    fn default() -> Self {
        Self(Secret::new(String::new()))
    }
}

impl PostgresUrl {
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Restores a sealed URL from the store.
    pub fn from_stored(text: String) -> Self {
        Self(Secret::new(text))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PostgresUrl(redacted)")
    }
}

impl PostgresSource {
    /// Checks a URL and splits out its TLS settings. `sslmode` (a flag) wins over the URL's own
    /// `sslmode` parameter; without either it is `prefer`, as in libpq.
    pub fn parse(
        text: &str,
        sslmode: Option<SslMode>,
        sslrootcert: Option<PathBuf>,
    ) -> Result<Self, InvalidValue> {
        // The error never echoes the URL: it may hold a password.
        let fail = |reason: &str| InvalidValue::new("url", "(hidden)", reason);
        let mut url = url::Url::parse(text.trim()).map_err(|e| {
            fail(&format!(
                "not a URL ({e}); give postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(fail("the scheme is postgres:// or postgresql://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(fail(
                "the URL names no host; give postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            ));
        }
        let mut url_mode = None;
        let mut url_root = None;
        let mut url_password = None;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                // libpq also takes the password as a parameter: move it where it is masked.
                "password" => url_password = Some(v.into_owned()),
                "sslmode" => url_mode = Some(SslMode::parse(&v)?),
                "sslrootcert" => url_root = Some(PathBuf::from(v.as_ref())),
                "sslcert" | "sslkey" | "sslcrl" | "sslpassword" => {
                    return Err(fail(&format!(
                        "{k} (client certificates) is not supported; use password authentication"
                    )));
                }
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        url.set_query(None);
        if let Some(password) = url_password {
            url.set_password(Some(&password))
                .map_err(|()| fail("the URL cannot hold a password"))?;
        }
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
            // Form encoding writes spaces as `+`, which libpq-style URL parsers (tokio-postgres
            // among them) keep as a plus; a literal plus is `%2B`, so every `+` here is a space.
            let query = url.query().map(|q| q.replace('+', "%20"));
            url.set_query(query.as_deref());
        }
        let mut display = url.clone();
        if display.password().is_some() {
            let _ = display.set_password(Some("***"));
        }
        Ok(Self {
            display: display.to_string(),
            url: PostgresUrl(Secret::new(url.to_string())),
            sslmode: sslmode.or(url_mode).unwrap_or(SslMode::Prefer),
            sslrootcert: sslrootcert.or(url_root),
        })
    }
}

/// One column of a model's result, as the warehouse planned it. `data_type` is the Arrow type in
/// Arrow's own notation (`Int64`, `Timestamp(µs, "UTC")`), for display and change detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_their_password_out_of_sight() {
        let s = PostgresSource::parse(
            "postgres://app:s3cret@db.internal:5433/sales?sslmode=require&options=-c%20statement_timeout%3D5s",
            None,
            None,
        )
        .expect("valid");
        assert_eq!(s.sslmode, SslMode::Require);
        assert_eq!(
            s.display,
            "postgres://app:***@db.internal:5433/sales?options=-c%20statement_timeout%3D5s"
        );
        assert!(s.url.expose().contains("s3cret") && !s.url.expose().contains("sslmode"));
        assert!(!format!("{s:?}").contains("s3cret"));
        let stored = serde_json::to_string(&SourceConfig::Postgres(s.clone())).expect("json");
        assert!(!stored.contains("s3cret"), "{stored}");
        let flag = PostgresSource::parse(
            "postgresql://h/db?sslmode=disable",
            Some(SslMode::VerifyFull),
            None,
        )
        .expect("valid");
        assert_eq!(flag.sslmode, SslMode::VerifyFull);
        assert_eq!(
            PostgresSource::parse("postgres://h/db", None, None)
                .expect("valid")
                .sslmode,
            SslMode::Prefer
        );
        let in_query = PostgresSource::parse(
            "postgres://app@h/db?password=s3cret&application_name=x",
            None,
            None,
        )
        .expect("valid");
        assert_eq!(
            in_query.display,
            "postgres://app:***@h/db?application_name=x"
        );
        assert!(
            in_query
                .url
                .expose()
                .starts_with("postgres://app:s3cret@h/db")
        );
        for bad in [
            "mysql://h/db",
            "postgres:///db",
            "not a url",
            "postgres://u:p@h/db?sslcert=x",
        ] {
            let e = PostgresSource::parse(bad, None, None).expect_err(bad);
            assert!(!e.to_string().contains(":p@"), "{e}");
        }
        assert!(PostgresSource::parse("postgres://h/db?sslmode=allow", None, None).is_err());
    }
}
