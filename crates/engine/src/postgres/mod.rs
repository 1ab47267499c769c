//! The PostgreSQL warehouse: a model's SQL runs in PostgreSQL, verbatim, and its rows stream
//! back as Arrow batches.
//!
//! Rows come through a portal in a read-only transaction, `batch_rows` at a time, the next
//! fetch arriving while the last is decoded, so memory is bounded by two fetches whatever the
//! result's size, and `statement_timeout` applies to each fetch rather than to the time wharf
//! spends uploading. Values arrive in PostgreSQL's binary format and
//! are decoded straight into Arrow builders (`columns`); types without a decoder are cast to
//! text in SQL. Every session is `default_transaction_read_only`, so a model cannot write.

mod columns;
mod tls;

use crate::preview::Preview;
use crate::segment::{Dialect, ScalarValue};
use crate::{EngineError, QueryStream};
use arrow::array::{ArrayRef, RecordBatch, make_builder};
use arrow::datatypes::{Schema, SchemaRef};
use columns::{Column, Reader, Scalar};
use futures::TryStreamExt as _;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::{FromSql, ToSql, Type};
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

/// A result column read as raw bytes, whatever its type.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
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

/// How long a cancelled query may take to end before its cancel request is sent again (then
/// twice as long, up to 2 s). A request the server receives while the session waits for its
/// next message is dropped there, and the query that message starts runs to its end: asking
/// once is not enough.
const CANCEL_AGAIN: Duration = Duration::from_millis(250);
/// How long a cancelled query is waited for. Past it the connection is dropped, and the server
/// notices only when it next writes to it.
const CANCEL_PATIENCE: Duration = Duration::from_secs(30);

/// Asks the server to cancel a session's running query, over the same kind of connection.
enum Canceller {
    Plain,
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl Canceller {
    /// Cancels the query that `running` waits for and waits until it has ended, asking again
    /// after [`CANCEL_AGAIN`], for up to [`CANCEL_PATIENCE`].
    async fn stop<F: Future>(&self, token: &tokio_postgres::CancelToken, running: F) {
        let mut running = std::pin::pin!(running);
        let deadline = tokio::time::Instant::now() + CANCEL_PATIENCE;
        let mut again = CANCEL_AGAIN;
        loop {
            self.cancel(token).await;
            tokio::select! {
                biased;
                _ = &mut running => return,
                () = tokio::time::sleep(again) => {}
            }
            again = (again * 2).min(Duration::from_secs(2));
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    "a cancelled PostgreSQL query was still running after {} s; its connection is closed and the server stops it when it notices",
                    CANCEL_PATIENCE.as_secs()
                );
                return;
            }
        }
    }

    async fn cancel(&self, token: &tokio_postgres::CancelToken) {
        let sent = tokio::time::timeout(CONNECT_TIMEOUT, async {
            match self {
                Canceller::Plain => token.cancel_query(NoTls).await,
                Canceller::Tls(tls) => token.cancel_query(tls.clone()).await,
            }
        })
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cancelling a PostgreSQL query failed: {e}"),
            Err(_) => tracing::warn!(
                "cancelling a PostgreSQL query failed: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }
    }
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
        other => Box::new(
            other
                .to_array()
                .ok()
                .and_then(|a| arrow::util::display::array_value_to_string(&a, 0).ok())
                .unwrap_or_else(|| other.to_string()),
        ),
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

/// A batch's text and binary values together stay well under the 2 GiB that Arrow's 32-bit
/// offsets hold: rows are cut into more batches past this many value bytes.
const MAX_BATCH_BYTES: usize = 256 << 20;

/// Decodes rows into batches (more than one only past [`MAX_BATCH_BYTES`]); also returns the
/// bytes the values took on the wire.
fn decode(
    rows: &[tokio_postgres::Row],
    columns: &[Column],
    schema: &SchemaRef,
) -> Result<(Vec<RecordBatch>, usize), EngineError> {
    let new_builders = || -> Vec<Box<dyn arrow::array::ArrayBuilder>> {
        columns
            .iter()
            .map(|c| make_builder(c.field.data_type(), rows.len()))
            .collect()
    };
    let finish = |builders: &mut Vec<Box<dyn arrow::array::ArrayBuilder>>| {
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
        RecordBatch::try_new(schema.clone(), arrays).map_err(|e| EngineError::Query(e.to_string()))
    };
    let mut builders = new_builders();
    let mut batches = Vec::new();
    let (mut total, mut in_batch, mut rows_in_batch) = (0usize, 0usize, 0usize);
    for row in rows {
        for (i, (column, builder)) in columns.iter().zip(builders.iter_mut()).enumerate() {
            let raw = row
                .try_get::<_, Raw<'_>>(i)
                .map_err(|e| EngineError::Query(format!("column {:?}: {e}", column.name)))?;
            let size = raw.0.map_or(0, <[u8]>::len);
            total += size;
            in_batch += size;
            let appended = match column.reader {
                Reader::Scalar(kind) => columns::append(kind, builder.as_mut(), raw.0),
                Reader::Array(kind) => columns::append_array(kind, builder.as_mut(), raw.0),
                Reader::AsText => columns::append(Scalar::Text, builder.as_mut(), raw.0),
            };
            appended.map_err(|why| {
                EngineError::Query(format!("column {:?} holds {why}", column.name))
            })?;
        }
        rows_in_batch += 1;
        if in_batch >= MAX_BATCH_BYTES {
            batches.push(finish(&mut builders)?);
            (in_batch, rows_in_batch) = (0, 0);
        }
    }
    if rows_in_batch > 0 || batches.is_empty() {
        batches.push(finish(&mut builders)?);
    }
    Ok((batches, total))
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
        let (batches, _) = decode(&rows, &columns, &schema)?;
        crate::preview::build(&schema, &batches)
    }

    /// Runs `sql` with `params` on a connection of its own, streaming its result in batches.
    /// Dropping the stream cancels the query on the server and rolls its transaction back; a
    /// reader that stops without reaching the end of the result is an error, never a short
    /// result.
    pub async fn query_with(
        &self,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<QueryStream, EngineError> {
        let (client, canceller) = connect(&self.source).await?;
        let (statement, columns) = self.reader(&client, sql, params, true).await?;
        let schema = schema_of(&columns);
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let fetch = Fetch {
            statement,
            params: params.to_vec(),
            columns,
            schema: schema.clone(),
            max_rows: self.batch_rows,
            canceller,
        };
        let target = self.source.display.clone();
        tokio::spawn(async move {
            let item = match fetch.run(client, &sender).await {
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

/// What the reader task sends: batches, then the end.
enum Item {
    Batch(RecordBatch),
    End,
}

enum Streamed {
    Pg(tokio_postgres::Error),
    Engine(EngineError),
}

impl From<tokio_postgres::Error> for Streamed {
    fn from(e: tokio_postgres::Error) -> Self {
        Streamed::Pg(e)
    }
}

/// Bytes a fetch aims at: the rows asked for adapt to the rows' size, so wide rows do not
/// make a batch of hundreds of megabytes. Two fetches are in memory at once (one decoded while
/// the next arrives).
const FETCH_BYTES: usize = 16 << 20;
/// Rows of the first fetch, before any row's size is known.
const FIRST_FETCH_ROWS: usize = 256;

/// One query's rows, fetched through a portal.
struct Fetch {
    statement: Statement,
    params: Vec<ScalarValue>,
    columns: Vec<Column>,
    schema: SchemaRef,
    max_rows: usize,
    canceller: Canceller,
}

impl Fetch {
    /// Sends every batch; `Ok(true)` at the end of the result, `Ok(false)` when the receiver went
    /// away (the query is cancelled on the server).
    async fn run(
        self,
        mut client: Client,
        sender: &tokio::sync::mpsc::Sender<Result<Item, EngineError>>,
    ) -> Result<bool, Streamed> {
        let cancel = client.cancel_token();
        let transaction = client.build_transaction().read_only(true).start().await?;
        let portal = transaction
            .bind_raw(&self.statement, parameters(&self.params))
            .await?;
        let fetch = |rows: usize| {
            let (transaction, portal) = (&transaction, &portal);
            async move {
                transaction
                    .query_portal_raw(portal, i32::try_from(rows).unwrap_or(i32::MAX))
                    .await?
                    // Stops at the first error (see `preview`).
                    .try_collect::<Vec<tokio_postgres::Row>>()
                    .await
            }
        };
        let columns: Arc<[Column]> = self.columns.into();
        let mut asked = FIRST_FETCH_ROWS.min(self.max_rows);
        let mut rows_wanted = asked;
        // A reader gone already: the query is never started.
        if sender.is_closed() {
            return Ok(false);
        }
        let mut rows = {
            let mut first = std::pin::pin!(fetch(asked));
            let done = tokio::select! {
                // Polled first, so the query has started whenever the other branch stops it.
                biased;
                rows = &mut first => Some(rows),
                () = sender.closed() => None,
            };
            let Some(rows) = done else {
                self.canceller.stop(&cancel, first).await;
                return Ok(false);
            };
            rows?
        };
        loop {
            let fetched = rows.len();
            // Fewer rows than asked: the portal is exhausted.
            let exhausted = fetched < asked;
            let next_asked = rows_wanted;
            // These rows are decoded on a blocking thread and handed on while PostgreSQL
            // produces the next ones: the server's work and wharf's overlap.
            let deliver = {
                let (columns, schema) = (columns.clone(), self.schema.clone());
                async move {
                    if fetched == 0 {
                        return Ok(Some(0));
                    }
                    let (batches, bytes) =
                        tokio::task::spawn_blocking(move || decode(&rows, &columns, &schema))
                            .await
                            .map_err(|e| {
                                Streamed::Engine(EngineError::Query(format!(
                                    "decoding PostgreSQL rows stopped: {e}"
                                )))
                            })?
                            .map_err(Streamed::Engine)?;
                    for batch in batches {
                        if sender.send(Ok(Item::Batch(batch))).await.is_err() {
                            return Ok(None);
                        }
                    }
                    Ok::<_, Streamed>(Some(bytes))
                }
            };
            let next = async {
                if exhausted {
                    Ok(None)
                } else {
                    fetch(next_asked).await.map(Some)
                }
            };
            let mut both = std::pin::pin!(async { tokio::join!(deliver, next) });
            let done = tokio::select! {
                biased;
                done = &mut both => Some(done),
                () = sender.closed() => None,
            };
            let Some((delivered, next)) = done else {
                // `both` (polled at least once) still waits for the next fetch.
                self.canceller.stop(&cancel, both).await;
                return Ok(false);
            };
            // The reader went away between fetches: no query is running.
            let Some(bytes) = delivered? else {
                return Ok(false);
            };
            if fetched > 0 {
                let per_row = bytes.checked_div(fetched).unwrap_or(1).max(1);
                rows_wanted = (FETCH_BYTES / per_row).clamp(1, self.max_rows);
            }
            match next? {
                Some(next_rows) => (rows, asked) = (next_rows, next_asked),
                None => break,
            }
        }
        transaction.commit().await?;
        Ok(true)
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
