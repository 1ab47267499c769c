//! The PostgreSQL cluster `scripts/test` starts (`WHARF_TEST_POSTGRES_URL`): SQL run as its
//! owner, a schema per test, and a source and models on it. Without the cluster the tests that
//! use it fail: in CI every suite runs.

use super::Fixture;
use std::process::Command;
use wharf_domain::{Name, PostgresSource, SslMode};
use wharf_runner::RunnerError;
use wharf_store::DEFAULT_WORKSPACE;

pub fn server_url() -> url::Url {
    let text = std::env::var("WHARF_TEST_POSTGRES_URL").expect(
        "WHARF_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a PostgreSQL cluster",
    );
    url::Url::parse(&text).expect("WHARF_TEST_POSTGRES_URL is a URL")
}

/// Runs SQL as the cluster's owner.
pub fn psql(sql: &str) {
    run_psql("-q", sql);
}

/// Runs one query as the cluster's owner and returns its result unaligned (`a|b` per row),
/// trimmed.
pub fn psql_value(sql: &str) -> String {
    run_psql("-At", sql)
}

/// psql with `flags` on `sql`, stopping at the first error; its standard output.
fn run_psql(flags: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .arg(server_url().as_str())
        .args(["-X", flags, "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql failed on {sql}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A schema of this test's own, and URLs whose search_path starts there.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn create(test: &str) -> Self {
        let name = format!("{test}_{}", std::process::id());
        psql(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ));
        Self { name }
    }

    pub fn url(&self) -> url::Url {
        let mut url = server_url();
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={}", self.name));
        url
    }

    /// Runs SQL in this schema.
    pub fn run(&self, sql: &str) {
        psql(&format!("SET search_path = {}; {sql}", self.name));
    }
}

pub async fn add_source(
    fx: &Fixture,
    name: &str,
    url: &str,
    mode: Option<SslMode>,
) -> Result<(), RunnerError> {
    let source = PostgresSource::parse(url, mode, None).expect("valid URL");
    add_parsed_source(fx, name, source).await
}

pub async fn add_parsed_source(
    fx: &Fixture,
    name: &str,
    source: PostgresSource,
) -> Result<(), RunnerError> {
    wharf_runner::models::add_postgres_source(
        &fx.store,
        DEFAULT_WORKSPACE,
        &Name::parse("name", name).expect("name"),
        source,
        &fx.settings,
    )
    .await
    .map(|_| ())
}

/// A model keyed by `id` on `source`.
pub async fn add_model(
    fx: &Fixture,
    name: &str,
    source: &str,
    sql: &str,
) -> Result<(), RunnerError> {
    wharf_runner::models::add_model(
        &fx.store,
        DEFAULT_WORKSPACE,
        &Name::parse("name", name).expect("name"),
        source,
        sql,
        "id",
        &fx.settings,
    )
    .await
    .map(|_| ())
}
