//! The PostgreSQL warehouse: a model's SQL runs in PostgreSQL, verbatim, and its rows stream
//! back as Arrow batches.
//!
//! An export's rows come through a binary `COPY (query) TO STDOUT` in a read-only transaction,
//! in chunks of `batch_rows`, the next arriving while the last is decoded, so memory is bounded
//! whatever the result's size, and the session's `statement_timeout` counts the time spent
//! waiting for PostgreSQL rather than the time wharf spends uploading (`copy`). Values arrive
//! in PostgreSQL's binary format and are decoded straight into Arrow builders typed once per
//! batch (`builders`, `columns`); types without a decoder are cast to text in SQL. Previews
//! and plans use ordinary statements with bound values. Every session is
//! `default_transaction_read_only`, so a model cannot write.

mod builders;
mod columns;
mod copy;
mod rows;
mod tls;

use crate::preview::Preview;
use crate::segment::{Dialect, ScalarValue};
use crate::{EngineError, QueryStream};
use arrow::datatypes::{Schema, SchemaRef};
use columns::{Column, Reader};
use copy::CopyOut;
use futures::TryStreamExt as _;
use rows::{Canceller, Item, Streamed, decode};
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};
use wharf_domain::{PostgresSource, SslMode};

/// How long a connection attempt may take before it is reported as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connected PostgreSQL source.
pub struct PostgresWarehouse {
    source: PostgresSource,
    client: Client,
    batch_rows: usize,
}

fn failure(code: &'static str, message: impl Into<String>) -> EngineError {
    EngineError::Postgres {
        code,
        message: message.into(),
    }
}

/// A PostgreSQL error as wharf reports it. `sql` is the user's SQL when the statement was sent
/// as written, so a position in it can be shown as line and column.
fn error(e: &tokio_postgres::Error, sql: Option<&str>, target: &str) -> EngineError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let message = db.message();
        let hint = db.hint().map(|h| format!(" ({h})")).unwrap_or_default();
        return match code {
            "28P01" | "28000" => failure(
                "postgres.auth",
                format!(
                    "PostgreSQL at {target} refused the login: {message}; check the user and password in the source's URL"
                ),
            ),
            "3D000" => failure(
                "postgres.auth",
                format!("{message} on {target}; check the database name in the source's URL"),
            ),
            "42501" => failure(
                "postgres.permission_denied",
                format!(
                    "{message}: grant the source's user access (for example GRANT SELECT ON the_table TO the_user), or use another user"
                ),
            ),
            "57014" => failure(
                "postgres.timeout",
                format!(
                    "PostgreSQL cancelled the query ({message}): statement_timeout ended it, or someone cancelled it; raise the timeout (URL option `options=-c statement_timeout=30min`) or make the query cheaper"
                ),
            ),
            "57P01" | "57P02" | "57P03" => failure(
                "postgres.connection_lost",
                format!("PostgreSQL ended the session: {message}"),
            ),
            _ if code.starts_with("42") || code.starts_with("22") => {
                let position = match (db.position(), sql) {
                    (Some(tokio_postgres::error::ErrorPosition::Original(at)), Some(sql)) => {
                        line_column(sql, *at as usize)
                    }
                    _ => None,
                };
                let (line, column) = position.unzip();
                EngineError::Sql {
                    message: format!("{message}{hint}"),
                    line,
                    column,
                }
            }
            _ => EngineError::Query(format!("PostgreSQL error {code}: {message}{hint}")),
        };
    }
    if e.is_closed() {
        return failure(
            "postgres.connection_lost",
            format!("the connection to PostgreSQL at {target} was lost: {e}"),
        );
    }
    let detail = e
        .source()
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    if e.to_string().contains("TLS") || detail.contains("TLS") {
        return failure(
            "postgres.tls",
            format!(
                "TLS with PostgreSQL at {target} failed: {detail}; check the server's certificate and the source's sslmode (disable only on a network you trust)"
            ),
        );
    }
    failure(
        "postgres.unreachable",
        format!("cannot reach PostgreSQL at {target}: {detail}"),
    )
}

/// 1-based line and column of the 1-based character `at` of `sql`.
fn line_column(sql: &str, at: usize) -> Option<(u64, u64)> {
    let before: String = sql.chars().take(at.checked_sub(1)?).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line as u64, column as u64))
}

async fn connect(source: &PostgresSource) -> Result<(Client, Canceller), EngineError> {
    let target = &source.display;
    let mut config: tokio_postgres::Config = source.url.expose().parse().map_err(|e| {
        failure(
            "postgres.url",
            format!("the source's URL does not parse: {e}"),
        )
    })?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("wharf")
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(60));
    let connecting = async {
        match source.sslmode {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                let (client, connection) = config
                    .connect(NoTls)
                    .await
                    .map_err(|e| error(&e, None, target))?;
                tokio::spawn(drive(connection));
                Ok::<_, EngineError>((client, Canceller::Plain))
            }
            mode => {
                let tls = match mode {
                    SslMode::VerifyFull => tls::verifying(source.sslrootcert.as_deref())?,
                    _ => tls::unverified()?,
                };
                config.ssl_mode(match mode {
                    SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                    _ => tokio_postgres::config::SslMode::Require,
                });
                let (client, connection) = config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| error(&e, None, target))?;
                tokio::spawn(drive(connection));
                Ok((client, Canceller::Tls(tls)))
            }
        }
    };
    let (client, canceller) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| {
            failure(
                "postgres.unreachable",
                format!(
                    "cannot reach PostgreSQL at {target}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )
        })??;
    client
        .batch_execute("SET default_transaction_read_only = on")
        .await
        .map_err(|e| error(&e, None, target))?;
    Ok((client, canceller))
}

/// Runs a connection until it closes.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::debug!("PostgreSQL connection ended: {e}");
    }
}

/// A parameter as PostgreSQL receives it: numbers and booleans as themselves, everything else
/// as text that the placeholder's cast parses (`$2::text::timestamptz`).
fn parameter(value: &ScalarValue) -> Box<dyn ToSql + Sync + Send> {
    match value {
        ScalarValue::Int64(Some(v)) => Box::new(*v),
        ScalarValue::Float64(Some(v)) => Box::new(*v),
        ScalarValue::Boolean(Some(v)) => Box::new(*v),
        ScalarValue::Utf8(Some(v)) => Box::new(v.clone()),
        other => Box::new(crate::segment::postgres_text(other)),
    }
}

fn parameters(values: &[ScalarValue]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    values.iter().map(parameter).collect()
}

/// The statement wharf runs to read `sql`: the SQL itself, or wrapped so that columns without
/// a binary decoder come back as text.
fn read_sql(sql: &str, columns: &[Column]) -> Option<String> {
    if !columns.iter().any(|c| c.reader == Reader::AsText) {
        return None;
    }
    // Columns are renamed by position (`q(c1, c2...)`) so duplicate names in the query's result
    // stay distinct, then given their names back.
    let positions: Vec<String> = (1..=columns.len()).map(|i| format!("c{i}")).collect();
    let list: Vec<String> = columns
        .iter()
        .zip(&positions)
        .map(|(c, position)| {
            let name = crate::segment::quote(&c.name);
            match c.reader {
                Reader::AsText => format!("CAST(q.{position} AS text) AS {name}"),
                _ => format!("q.{position} AS {name}"),
            }
        })
        .collect();
    Some(format!(
        "SELECT {} FROM (\n{}\n) AS q({})",
        list.join(", "),
        crate::segment::model_sql(sql),
        positions.join(", ")
    ))
}

fn schema_of(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(|c| c.field.clone()).collect::<Vec<_>>(),
    ))
}

impl PostgresWarehouse {
    /// Connects (TLS by `sslmode`) and checks the connection.
    pub async fn connect(source: &PostgresSource, batch_rows: usize) -> Result<Self, EngineError> {
        let (client, _) = connect(source).await?;
        Ok(Self {
            source: source.clone(),
            client,
            batch_rows: batch_rows.max(1),
        })
    }

    pub fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    /// The server's version string, for `source add`.
    pub async fn version(&self) -> Result<String, EngineError> {
        let row = self
            .client
            .query_one("SHOW server_version", &[])
            .await
            .map_err(|e| error(&e, None, &self.source.display))?;
        row.try_get::<_, String>(0)
            .map_err(|e| EngineError::Query(e.to_string()))
    }

    /// Prepares `sql` (nothing runs) and maps its result columns.
    async fn describe(
        &self,
        client: &Client,
        sql: &str,
        as_written: bool,
    ) -> Result<(Statement, Vec<Column>), EngineError> {
        let statement = client
            .prepare(sql)
            .await
            .map_err(|e| error(&e, as_written.then_some(sql), &self.source.display))?;
        let columns = statement
            .columns()
            .iter()
            .map(|c| columns::column(c.name(), c.type_(), c.type_modifier()))
            .collect();
        Ok((statement, columns))
    }

    /// The statement that reads `sql`, with its columns, on `client`.
    async fn reader(
        &self,
        client: &Client,
        sql: &str,
        params: &[ScalarValue],
        as_written: bool,
    ) -> Result<(Statement, Vec<Column>), EngineError> {
        crate::sql_check::check_postgres_model(sql)?;
        let (statement, columns) = self.describe(client, sql, as_written).await?;
        let statement = match read_sql(sql, &columns) {
            Some(wrapped) => self.describe(client, &wrapped, false).await?.0,
            None => statement,
        };
        if statement.params().len() != params.len() {
            return Err(EngineError::Query(format!(
                "the query takes {} parameters and {} were given",
                statement.params().len(),
                params.len()
            )));
        }
        Ok((statement, columns))
    }

    /// Plans `sql` with `params` bound to `$1`, `$2`... and returns its result's schema.
    pub async fn plan_with(
        &self,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<SchemaRef, EngineError> {
        let (_, columns) = self.reader(&self.client, sql, params, true).await?;
        Ok(schema_of(&columns))
    }

    /// The number of rows `sql` returns (counted in PostgreSQL).
    pub async fn count(&self, sql: &str, params: &[ScalarValue]) -> Result<u64, EngineError> {
        crate::sql_check::check_postgres_model(sql)?;
        let counting = format!(
            "SELECT count(*) FROM (\n{}\n) AS q",
            crate::segment::model_sql(sql)
        );
        let row = self
            .client
            .query_one(
                counting.as_str(),
                &parameters(params)
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                    .collect::<Vec<_>>(),
            )
            .await
            .map_err(|e| error(&e, None, &self.source.display))?;
        let n: i64 = row
            .try_get(0)
            .map_err(|e| EngineError::Query(e.to_string()))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The schema and first `limit` rows of `sql`.
    pub async fn preview(
        &self,
        sql: &str,
        params: &[ScalarValue],
        limit: usize,
    ) -> Result<Preview, EngineError> {
        let limited = format!(
            "SELECT * FROM (\n{}\n) AS q LIMIT {}",
            crate::segment::model_sql(sql),
            limit
        );
        let (statement, columns) = self.reader(&self.client, &limited, params, false).await?;
        let rows = self
            .client
            .query_raw(&statement, parameters(params))
            .await
            .map_err(|e| error(&e, None, &self.source.display))?;
        // `try_collect` stops at the first error: a row stream whose connection closed keeps
        // yielding the same error, and collecting every item would never end.
        let rows: Vec<tokio_postgres::Row> = rows
            .try_collect()
            .await
            .map_err(|e| error(&e, None, &self.source.display))?;
        let schema = schema_of(&columns);
        let batches = decode(&rows, &columns, &schema)?;
        crate::preview::build(&schema, &batches)
    }

    /// Runs `sql` on a connection of its own, streaming its result in batches. Dropping the
    /// stream cancels the query on the server and rolls its transaction back; a reader that
    /// stops without reaching the end of the result is an error, never a short result.
    ///
    /// `COPY` takes no parameters: a segment's values come written into its SQL
    /// (`CompiledSegment::into_export`), and `params` must be empty.
    pub async fn query_with(
        &self,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<QueryStream, EngineError> {
        if !params.is_empty() {
            return Err(EngineError::Query(format!(
                "a PostgreSQL export reads with COPY, which takes no parameters, and {} were given: write the values into the SQL (CompiledSegment::into_export)",
                params.len()
            )));
        }
        let (client, canceller) = connect(&self.source).await?;
        let (_, columns) = self.reader(&client, sql, params, true).await?;
        let read =
            read_sql(sql, &columns).unwrap_or_else(|| crate::segment::model_sql(sql).to_string());
        let schema = schema_of(&columns);
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let copy = CopyOut {
            statement: format!("COPY (\n{read}\n) TO STDOUT (FORMAT binary)"),
            columns,
            schema: schema.clone(),
            max_rows: self.batch_rows,
            canceller,
        };
        let target = self.source.display.clone();
        tokio::spawn(async move {
            let item = match copy.run(client, &sender).await {
                Ok(true) => Ok(Item::End),
                // The reader is gone: nobody to tell.
                Ok(false) => return,
                Err(Streamed::Pg(e)) => Err(error(&e, None, &target)),
                Err(Streamed::Engine(e)) => Err(e),
            };
            let _ = sender.send(item).await;
        });
        let batches = futures::stream::unfold(Some(receiver), |receiver| async move {
            let mut receiver = receiver?;
            match receiver.recv().await {
                Some(Ok(Item::Batch(batch))) => Some((Ok(batch), Some(receiver))),
                Some(Ok(Item::End)) => None,
                Some(Err(e)) => Some((Err(e), None)),
                None => Some((
                    Err(EngineError::Query(
                        "the PostgreSQL reader stopped before the end of the result".into(),
                    )),
                    None,
                )),
            }
        });
        Ok(QueryStream::new(schema, Box::pin(batches)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_become_lines_and_columns() {
        assert_eq!(line_column("SELECT x\nFROM nope", 15), Some((2, 6)));
        assert_eq!(line_column("SELECT", 1), Some((1, 1)));
        assert_eq!(line_column("", 0), None);
    }
}
