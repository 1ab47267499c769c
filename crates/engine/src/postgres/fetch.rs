//! One query's rows streamed through a portal: fetches of about [`FETCH_BYTES`], the next
//! asked for while the last is decoded into Arrow batches, and the query cancelled on the
//! server when the reader goes away.

use super::builders::Builder;
use super::columns::Column;
use super::{CONNECT_TIMEOUT, parameters};
use crate::EngineError;
use crate::segment::ScalarValue;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use futures::TryStreamExt as _;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

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

/// How long a cancelled query may take to end before its cancel request is sent again (then
/// twice as long, up to 2 s). A request the server receives while the session waits for its
/// next message is dropped there, and the query that message starts runs to its end: asking
/// once is not enough.
const CANCEL_AGAIN: Duration = Duration::from_millis(250);
/// How long a cancelled query is waited for. Past it the connection is dropped, and the server
/// notices only when it next writes to it.
const CANCEL_PATIENCE: Duration = Duration::from_secs(30);

/// Asks the server to cancel a session's running query, over the same kind of connection.
pub(super) enum Canceller {
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

/// A batch's text and binary values together stay well under the 2 GiB that Arrow's 32-bit
/// offsets hold: rows are cut into more batches past this many value bytes.
const MAX_BATCH_BYTES: usize = 256 << 20;

/// Decodes rows into batches (more than one only past [`MAX_BATCH_BYTES`]); also returns the
/// bytes the values took on the wire.
pub(super) fn decode(
    rows: &[tokio_postgres::Row],
    columns: &[Column],
    schema: &SchemaRef,
) -> Result<(Vec<RecordBatch>, usize), EngineError> {
    let new_builders = || -> Vec<Builder> {
        columns
            .iter()
            .map(|c| Builder::new(c, rows.len()))
            .collect()
    };
    let finish = |builders: &mut Vec<Builder>| {
        let arrays = builders
            .iter_mut()
            .zip(columns)
            .map(|(b, column)| {
                b.finish().map_err(|why| {
                    EngineError::Query(format!("column {:?} holds {why}", column.name))
                })
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
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
            builder.append(raw.0).map_err(|why| {
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

/// What the reader task sends: batches, then the end.
pub(super) enum Item {
    Batch(RecordBatch),
    End,
}

pub(super) enum Streamed {
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
pub(super) struct Fetch {
    pub statement: Statement,
    pub params: Vec<ScalarValue>,
    pub columns: Vec<Column>,
    pub schema: SchemaRef,
    pub max_rows: usize,
    pub canceller: Canceller,
}

impl Fetch {
    /// Sends every batch; `Ok(true)` at the end of the result, `Ok(false)` when the receiver went
    /// away (the query is cancelled on the server).
    pub(super) async fn run(
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
