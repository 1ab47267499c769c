//! One query's rows streamed through `COPY (query) TO STDOUT (FORMAT binary)`: the server sends
//! every row as one message of length-prefixed values in the same binary format a portal's rows
//! carry, and wharf walks them straight into typed builders ([`Batcher`]), with no per-row
//! object in between (a portal's rows cost a `Row` each, with its own vector of ranges, and a
//! lookup per value: about a fifth of a PostgreSQL export's CPU).
//!
//! Messages are gathered into chunks of `max_rows` rows (or [`CHUNK_BYTES`]) and each chunk is
//! decoded on a blocking thread while the next arrives. Memory stays bounded: when wharf stops
//! reading, the server's socket fills and it waits.
//!
//! `COPY` is one statement, so the server's `statement_timeout` would count the whole export,
//! uploads included. wharf reads the session's timeout, turns it off for the `COPY`, and
//! enforces it itself on the time it spends *waiting for the server*, per [`CHUNK_BYTES`] of
//! rows: what a portal's per-fetch timeout measured. A query that overruns it is cancelled and
//! the run fails with `postgres.timeout`.

use super::columns::Column;
use super::failure;
use super::rows::{Batcher, Canceller, Item, Streamed};
use crate::EngineError;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::{FutureExt as _, Stream, StreamExt as _};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::Client;

/// Bytes of rows gathered into one chunk at most; also the span over which the statement
/// timeout counts the time spent waiting for the server.
const CHUNK_BYTES: usize = 16 << 20;

/// The start of every binary COPY stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Signature, flags and the header extension's length.
const HEADER: usize = 19;

/// One query's rows, read with a binary `COPY`.
pub(super) struct CopyOut {
    /// `COPY (...) TO STDOUT (FORMAT binary)`.
    pub statement: String,
    pub columns: Vec<Column>,
    pub schema: SchemaRef,
    pub max_rows: usize,
    pub canceller: Canceller,
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Header,
    Tuples,
    Ended,
}

/// What decoding carries from one chunk to the next: the framing state and the bytes of a row
/// cut between two messages.
struct Carry {
    framing: Framing,
    partial: Vec<u8>,
}

/// The decoding of the chunk before: done (what it carries over), or under way.
enum Decoder {
    Ready(Carry),
    Busy(tokio::task::JoinHandle<Result<(Vec<RecordBatch>, Carry), EngineError>>),
}

impl Decoder {
    /// Waits for the decoding under way and hands its batches on; `None` when the reader has
    /// gone away.
    async fn finish(self, sender: &Sender) -> Result<Option<Carry>, Streamed> {
        let (batches, carry) = match self {
            Decoder::Ready(carry) => return Ok(Some(carry)),
            Decoder::Busy(decoding) => decoding
                .await
                .map_err(|e| {
                    Streamed::Engine(EngineError::Query(format!(
                        "decoding PostgreSQL rows stopped: {e}"
                    )))
                })?
                .map_err(Streamed::Engine)?,
        };
        for batch in batches {
            if batch.num_rows() > 0 && sender.send(Ok(Item::Batch(batch))).await.is_err() {
                return Ok(None);
            }
        }
        Ok(Some(carry))
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<Item, EngineError>>;

/// Why reading stopped early.
enum Stop {
    /// The reader went away.
    Gone,
    /// The statement timeout ran out.
    TimedOut,
}

/// The time spent waiting for the server, per [`CHUNK_BYTES`] of rows received.
struct Clock {
    limit: Option<Duration>,
    waited: Duration,
    bytes: usize,
}

impl CopyOut {
    /// Sends every batch; `Ok(true)` at the end of the result, `Ok(false)` when the receiver
    /// went away (the query is cancelled on the server).
    pub(super) async fn run(self, mut client: Client, sender: &Sender) -> Result<bool, Streamed> {
        let cancel = client.cancel_token();
        let transaction = client.build_transaction().read_only(true).start().await?;
        let limit = statement_timeout(&transaction).await?;
        // A reader gone already: the query is never started.
        if sender.is_closed() {
            return Ok(false);
        }
        let mut clock = Clock {
            limit,
            waited: Duration::ZERO,
            bytes: 0,
        };
        let stream = {
            let mut starting = std::pin::pin!(transaction.copy_out(self.statement.as_str()));
            match clock.wait(&mut starting, sender).await {
                Ok(started) => started?,
                Err(stop) => {
                    let ended = async {
                        if let Ok(stream) = starting.await {
                            drain(std::pin::pin!(stream)).await;
                        }
                    };
                    self.canceller.stop(&cancel, ended).await;
                    return stopped(stop, limit);
                }
            }
        };
        let mut stream = std::pin::pin!(stream);
        let columns: Arc<[Column]> = self.columns.into();
        let mut decoder = Decoder::Ready(Carry {
            framing: Framing::Header,
            partial: Vec::new(),
        });
        loop {
            let (chunk, ended) = match gather(&mut stream, self.max_rows, &mut clock, sender).await
            {
                Ok(gathered) => gathered?,
                Err(stop) => {
                    self.canceller.stop(&cancel, drain(stream)).await;
                    return stopped(stop, limit);
                }
            };
            // This chunk is decoded on a blocking thread while the next one arrives; the one
            // before it is handed on first.
            let Some(carry) = decoder.finish(sender).await? else {
                self.canceller.stop(&cancel, drain(stream)).await;
                return Ok(false);
            };
            let (columns, schema) = (columns.clone(), self.schema.clone());
            decoder = Decoder::Busy(tokio::task::spawn_blocking(move || {
                decode(&chunk, carry, &columns, &schema)
            }));
            if ended {
                break;
            }
        }
        let Some(last) = decoder.finish(sender).await? else {
            return Ok(false);
        };
        if last.framing != Framing::Ended || !last.partial.is_empty() {
            return Err(Streamed::Engine(malformed(
                "it ended in the middle of a row",
            )));
        }
        transaction.commit().await?;
        Ok(true)
    }
}

/// Gathers the next chunk of messages: up to `max_rows` of them or [`CHUNK_BYTES`]; also
/// whether the stream ended.
async fn gather<S>(
    stream: &mut Pin<&mut S>,
    max_rows: usize,
    clock: &mut Clock,
    sender: &Sender,
) -> Result<Result<(Vec<Bytes>, bool), Streamed>, Stop>
where
    S: Stream<Item = Result<Bytes, tokio_postgres::Error>>,
{
    let mut chunk = Vec::with_capacity(max_rows.min(1 << 16));
    let mut bytes = 0;
    while chunk.len() < max_rows && bytes < CHUNK_BYTES {
        // Rows already here are taken without a timer or a wake-up; only a wait for the
        // server is timed.
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            None => clock.wait(&mut stream.next(), sender).await?,
        };
        match next {
            Some(Ok(message)) => {
                bytes += message.len();
                clock.received(message.len());
                chunk.push(message);
            }
            Some(Err(e)) => return Ok(Err(e.into())),
            None => return Ok(Ok((chunk, true))),
        }
    }
    Ok(Ok((chunk, false)))
}

fn stopped(stop: Stop, limit: Option<Duration>) -> Result<bool, Streamed> {
    match stop {
        Stop::Gone => Ok(false),
        Stop::TimedOut => Err(Streamed::Engine(failure(
            "postgres.timeout",
            format!(
                "PostgreSQL took longer than the session's statement_timeout ({}) to produce the query's next rows, so wharf cancelled it; raise the timeout (URL option `options=-c statement_timeout=30min`) or make the query cheaper",
                shown(limit.unwrap_or_default())
            ),
        ))),
    }
}

impl Clock {
    /// Awaits `next` unless the reader goes away or the time left runs out.
    async fn wait<F: Future + Unpin>(
        &mut self,
        next: &mut F,
        sender: &Sender,
    ) -> Result<F::Output, Stop> {
        let started = Instant::now();
        let deadline = self
            .limit
            .map(|limit| started + limit.saturating_sub(self.waited));
        let result = tokio::select! {
            // Polled first: what has arrived is taken before anything else is looked at.
            biased;
            item = next => Ok(item),
            () = sender.closed() => Err(Stop::Gone),
            () = sleep_until(deadline) => Err(Stop::TimedOut),
        };
        self.waited += started.elapsed();
        result
    }

    fn received(&mut self, bytes: usize) {
        self.bytes += bytes;
        if self.bytes >= CHUNK_BYTES {
            (self.waited, self.bytes) = (Duration::ZERO, 0);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The session's `statement_timeout`, which is then turned off for this transaction (see the
/// module's doc); `None` when there is none.
async fn statement_timeout(
    transaction: &tokio_postgres::Transaction<'_>,
) -> Result<Option<Duration>, tokio_postgres::Error> {
    let row = transaction
        .query_one(
            "SELECT setting::int8, set_config('statement_timeout', '0', true) \
             FROM pg_settings WHERE name = 'statement_timeout'",
            &[],
        )
        .await?;
    let millis: i64 = row.try_get(0)?;
    Ok(u64::try_from(millis)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis))
}

/// A timeout as PostgreSQL's settings show it.
fn shown(limit: Duration) -> String {
    let ms = limit.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// Reads what is left of a stream (the server ends it once cancelled).
async fn drain<S>(mut stream: Pin<&mut S>)
where
    S: Stream<Item = Result<Bytes, tokio_postgres::Error>>,
{
    while let Some(Ok(_)) = stream.next().await {}
}

/// Decodes a chunk of messages, `carry` being where the last one left off.
fn decode(
    chunk: &[Bytes],
    mut carry: Carry,
    columns: &[Column],
    schema: &SchemaRef,
) -> Result<(Vec<RecordBatch>, Carry), EngineError> {
    let mut batcher = Batcher::new(columns, schema, chunk.len());
    for message in chunk {
        if carry.partial.is_empty() {
            let used = tuples(message, &mut carry.framing, &mut batcher)?;
            carry.partial.extend_from_slice(&message[used..]);
        } else {
            carry.partial.extend_from_slice(message);
            let used = tuples(&carry.partial, &mut carry.framing, &mut batcher)?;
            carry.partial.drain(..used);
        }
    }
    Ok((batcher.finish()?, carry))
}

fn malformed(why: impl std::fmt::Display) -> EngineError {
    EngineError::Query(format!("PostgreSQL's COPY stream is malformed: {why}"))
}

fn int16(buf: &[u8], at: usize) -> i16 {
    let mut bytes = [0; 2];
    bytes.copy_from_slice(&buf[at..at + 2]);
    i16::from_be_bytes(bytes)
}

fn int32(buf: &[u8], at: usize) -> i32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(bytes)
}

/// Appends the complete rows at the start of `buf` to `batcher` and returns the bytes they
/// took; a row cut at the end of `buf` is left for when the rest of it arrives.
fn tuples(
    buf: &[u8],
    framing: &mut Framing,
    batcher: &mut Batcher<'_>,
) -> Result<usize, EngineError> {
    let columns = batcher.columns();
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        match framing {
            Framing::Header => {
                if rest.len() < HEADER {
                    return Ok(at);
                }
                if &rest[..SIGNATURE.len()] != SIGNATURE {
                    return Err(malformed(
                        "it does not start with the binary COPY signature",
                    ));
                }
                // Bit 16: each row starts with its OID, which a query's COPY never sends.
                if int32(rest, 11) & (1 << 16) != 0 {
                    return Err(malformed("its rows carry OIDs"));
                }
                let extension = usize::try_from(int32(rest, 15))
                    .map_err(|_| malformed("its header extension has a negative length"))?;
                if rest.len() < HEADER + extension {
                    return Ok(at);
                }
                at += HEADER + extension;
                *framing = Framing::Tuples;
            }
            Framing::Tuples => {
                if rest.len() < 2 {
                    return Ok(at);
                }
                let fields = int16(rest, 0);
                if fields == -1 {
                    at += 2;
                    *framing = Framing::Ended;
                    continue;
                }
                if usize::try_from(fields).ok() != Some(columns) {
                    return Err(malformed(format!(
                        "a row has {fields} values where the query has {columns} columns"
                    )));
                }
                // The whole row must be here before any of it is appended.
                let mut end = 2;
                for _ in 0..columns {
                    if rest.len() < end + 4 {
                        return Ok(at);
                    }
                    let len = int32(rest, end);
                    end += 4;
                    if len > 0 {
                        end += len as usize;
                    } else if len < -1 {
                        return Err(malformed(format!("a value has length {len}")));
                    }
                }
                if rest.len() < end {
                    return Ok(at);
                }
                let mut p = 2;
                for i in 0..columns {
                    let len = int32(rest, p);
                    p += 4;
                    let raw = if len < 0 {
                        None
                    } else {
                        let value = &rest[p..p + len as usize];
                        p += len as usize;
                        Some(value)
                    };
                    batcher.value(i, raw)?;
                }
                batcher.end_row()?;
                at += end;
            }
            Framing::Ended => {
                if !rest.is_empty() {
                    return Err(malformed("data follows its end"));
                }
                return Ok(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::columns;
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::Schema;
    use tokio_postgres::types::Type;

    /// Rows as (id, name).
    type Rows = Vec<(Option<i64>, Option<String>)>;

    fn table() -> (Vec<Column>, SchemaRef) {
        let columns = vec![
            columns::column("id", &Type::INT8, -1),
            columns::column("name", &Type::TEXT, -1),
        ];
        let schema = Arc::new(Schema::new(
            columns.iter().map(|c| c.field.clone()).collect::<Vec<_>>(),
        ));
        (columns, schema)
    }

    fn row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = (values.len() as i16).to_be_bytes().to_vec();
        for value in values {
            match value {
                Some(v) => {
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v);
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out
    }

    /// A whole stream: header (with a 3-byte extension), three rows, trailer.
    fn stream() -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&3i32.to_be_bytes());
        out.extend_from_slice(b"ext");
        out.extend(row(&[Some(&1i64.to_be_bytes()), Some(b"a")]));
        out.extend(row(&[None, Some("ünï".as_bytes())]));
        out.extend(row(&[Some(&3i64.to_be_bytes()), None]));
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn start() -> Carry {
        Carry {
            framing: Framing::Header,
            partial: Vec::new(),
        }
    }

    /// Decodes `chunks` one after the other, as the reader does; the rows as (id, name).
    fn read(chunks: &[Vec<Bytes>]) -> Result<(Rows, Carry), EngineError> {
        let (columns, schema) = table();
        let mut carry = start();
        let mut rows = Vec::new();
        for chunk in chunks {
            let (batches, next) = decode(chunk, carry, &columns, &schema)?;
            carry = next;
            for batch in batches {
                let ids = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("ids");
                let names = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("names");
                for i in 0..batch.num_rows() {
                    rows.push((
                        ids.is_valid(i).then(|| ids.value(i)),
                        names.is_valid(i).then(|| names.value(i).to_string()),
                    ));
                }
            }
        }
        Ok((rows, carry))
    }

    fn expected() -> Rows {
        vec![
            (Some(1), Some("a".into())),
            (None, Some("ünï".into())),
            (Some(3), None),
        ]
    }

    #[test]
    fn rows_cut_anywhere_between_messages_and_chunks_decode_the_same() {
        let all = stream();
        for cut in 0..=all.len() {
            let (a, b) = all.split_at(cut);
            let (a, b) = (Bytes::copy_from_slice(a), Bytes::copy_from_slice(b));
            // Two messages in one chunk, then in two chunks.
            for chunks in [
                vec![vec![a.clone(), b.clone()]],
                vec![vec![a.clone()], vec![b.clone()]],
            ] {
                let (rows, carry) = read(&chunks).expect("decodes");
                assert_eq!(rows, expected(), "cut at {cut}");
                assert_eq!(carry.framing, Framing::Ended, "cut at {cut}");
                assert!(carry.partial.is_empty(), "cut at {cut}");
            }
        }
        // A byte per message.
        let bytes: Vec<Bytes> = all.iter().map(|b| Bytes::copy_from_slice(&[*b])).collect();
        assert_eq!(read(&[bytes]).expect("decodes").0, expected());
    }

    #[test]
    fn a_stream_cut_short_is_left_unfinished_and_malformed_ones_are_refused() {
        let all = stream();
        // Everything but the trailer's last byte: the reader sees it has not ended.
        let (rows, carry) =
            read(&[vec![Bytes::copy_from_slice(&all[..all.len() - 1])]]).expect("decodes");
        assert_eq!(rows, expected());
        assert_eq!(carry.framing, Framing::Tuples);
        assert_eq!(carry.partial.len(), 1);

        let refused = |bytes: Vec<u8>| match read(&[vec![Bytes::from(bytes)]]) {
            Err(e) => e.to_string(),
            Ok((rows, _)) => panic!("accepted: {rows:?}"),
        };
        let mut wrong = all.clone();
        wrong[0] = b'X';
        assert!(refused(wrong).contains("signature"));
        let mut oids = all.clone();
        oids[11..15].copy_from_slice(&(1i32 << 16).to_be_bytes());
        assert!(refused(oids).contains("OIDs"));
        let mut three = all[..HEADER + 3].to_vec();
        three.extend(row(&[None, None, None]));
        assert!(refused(three).contains("3 values where the query has 2 columns"));
        let mut negative = all[..HEADER + 3].to_vec();
        negative.extend_from_slice(&2i16.to_be_bytes());
        negative.extend_from_slice(&(-5i32).to_be_bytes());
        assert!(refused(negative).contains("length -5"));
        let mut after = all.clone();
        after.push(0);
        assert!(refused(after).contains("data follows its end"));
        // A value the column's decoder refuses names the column.
        let mut short = all[..HEADER + 3].to_vec();
        short.extend(row(&[Some(b"123"), None]));
        let message = refused(short);
        assert!(message.contains("\"id\""), "{message}");
    }
}
