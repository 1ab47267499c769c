//! What reading rows takes, whichever way they come (an export's COPY, a preview's statement):
//! values appended into typed builders and cut into batches ([`Batcher`]), the rows of a small
//! result decoded at once ([`decode`], for previews), and a running query cancelled on the
//! server ([`Canceller`]).

use super::CONNECT_TIMEOUT;
use super::builders::Builder;
use super::columns::Column;
use crate::EngineError;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use std::error::Error as StdError;
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::types::{FromSql, Type};

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
    pub(super) async fn stop<F: Future>(&self, token: &tokio_postgres::CancelToken, running: F) {
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

/// Values appended row by row into builders typed once per batch, cut into more batches past
/// [`MAX_BATCH_BYTES`].
pub(super) struct Batcher<'a> {
    columns: &'a [Column],
    schema: &'a SchemaRef,
    capacity: usize,
    builders: Vec<Builder>,
    rows: usize,
    bytes: usize,
    batches: Vec<RecordBatch>,
}

impl<'a> Batcher<'a> {
    /// A batcher with room for `rows` rows.
    pub(super) fn new(columns: &'a [Column], schema: &'a SchemaRef, rows: usize) -> Self {
        Self {
            columns,
            schema,
            capacity: rows,
            builders: columns.iter().map(|c| Builder::new(c, rows)).collect(),
            rows: 0,
            bytes: 0,
            batches: Vec::new(),
        }
    }

    /// The number of columns.
    pub(super) fn columns(&self) -> usize {
        self.columns.len()
    }

    /// Appends column `i`'s value of the current row (`None` for NULL).
    #[inline]
    pub(super) fn value(&mut self, i: usize, raw: Option<&[u8]>) -> Result<(), EngineError> {
        let size = raw.map_or(0, <[u8]>::len);
        self.bytes += size;
        self.builders[i].append(raw).map_err(|why| {
            EngineError::Query(format!("column {:?} holds {why}", self.columns[i].name))
        })
    }

    /// Ends the current row.
    pub(super) fn end_row(&mut self) -> Result<(), EngineError> {
        self.rows += 1;
        if self.bytes >= MAX_BATCH_BYTES {
            self.cut()?;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<(), EngineError> {
        let arrays = self
            .builders
            .iter_mut()
            .zip(self.columns)
            .map(|(b, column)| {
                b.finish().map_err(|why| {
                    EngineError::Query(format!("column {:?} holds {why}", column.name))
                })
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| EngineError::Query(e.to_string()))?;
        self.batches.push(batch);
        (self.rows, self.bytes) = (0, 0);
        self.builders = self
            .columns
            .iter()
            .map(|c| Builder::new(c, self.capacity))
            .collect();
        Ok(())
    }

    /// The batches (at least one, maybe empty).
    pub(super) fn finish(mut self) -> Result<Vec<RecordBatch>, EngineError> {
        if self.rows > 0 || self.batches.is_empty() {
            self.cut()?;
        }
        Ok(self.batches)
    }
}

/// Decodes rows of a query's result into batches (more than one only past
/// [`MAX_BATCH_BYTES`]).
pub(super) fn decode(
    rows: &[tokio_postgres::Row],
    columns: &[Column],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, EngineError> {
    let mut batcher = Batcher::new(columns, schema, rows.len());
    for row in rows {
        for (i, column) in columns.iter().enumerate() {
            let raw = row
                .try_get::<_, Raw<'_>>(i)
                .map_err(|e| EngineError::Query(format!("column {:?}: {e}", column.name)))?;
            batcher.value(i, raw.0)?;
        }
        batcher.end_row()?;
    }
    batcher.finish()
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
