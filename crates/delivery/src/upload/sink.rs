//! The synchronous end of an upload: a `Write` that cuts bytes into parts and checksums them.

use super::{Chunk, MIN_PART_SIZE, part_size_for};
use crc_fast::{CrcAlgorithm, checksum_combine};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where an encoder writes a file's bytes. It cuts them into parts (growing the part size so an
/// object never needs more than 10,000), computes each part's CRC and the whole object's while
/// they pass, and hands each full part to the upload task, blocking while the task has as many
/// parts as it may hold: that back-pressure is what bounds memory.
///
/// Call [`PartSink::finish`] when the file is complete. Dropping a sink without finishing
/// cancels the upload: the task aborts it, so nothing partial becomes visible.
///
/// Runs on a blocking thread (the encoder's): `write` may block.
pub struct PartSink {
    pub(super) tx: tokio::sync::mpsc::Sender<Chunk>,
    pub(super) buf: Vec<u8>,
    pub(super) base_part_size: usize,
    /// The number of the part being filled, from 1.
    pub(super) part: u32,
    pub(super) algorithm: CrcAlgorithm,
    /// CRC of the bytes already shipped.
    pub(super) shipped_crc: u64,
    pub(super) shipped: u64,
    /// Bytes written so far, readable from other threads (file splitting, progress).
    pub(super) written: Arc<AtomicU64>,
}

impl PartSink {
    fn current_part_size(&self) -> usize {
        part_size_for(self.part, self.base_part_size)
    }

    /// A counter of the bytes written so far (shipped or buffered), to read while an encoder
    /// owns the sink.
    pub fn written_counter(&self) -> Arc<AtomicU64> {
        self.written.clone()
    }

    fn send(&self, chunk: Chunk) -> io::Result<()> {
        self.tx.blocking_send(chunk).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the upload stopped (its error is reported by the upload)",
            )
        })
    }

    /// Ships the buffered bytes (a full part) as a part.
    fn ship(&mut self) -> io::Result<()> {
        let next_size = part_size_for(self.part + 1, self.base_part_size);
        let next = Vec::with_capacity(next_size.min(64 * 1024 * 1024) + 64 * 1024);
        let body = std::mem::replace(&mut self.buf, next);
        let crc = crc_fast::checksum(self.algorithm, &body);
        self.shipped_crc = if self.shipped == 0 {
            crc
        } else {
            checksum_combine(self.algorithm, self.shipped_crc, crc, body.len() as u64)
        };
        self.shipped += body.len() as u64;
        let number = self.part;
        self.part += 1;
        self.send(Chunk::Part {
            number,
            body: body.into(),
            crc,
        })
    }

    /// Sends the last bytes. A file no larger than one part goes up as a single PutObject.
    pub fn finish(mut self) -> io::Result<()> {
        let body = std::mem::take(&mut self.buf);
        let crc = crc_fast::checksum(self.algorithm, &body);
        let full_crc = if self.shipped == 0 {
            crc
        } else {
            checksum_combine(self.algorithm, self.shipped_crc, crc, body.len() as u64)
        };
        let total = self.shipped + body.len() as u64;
        self.send(Chunk::Last {
            number: self.part,
            body: body.into(),
            crc,
            full_crc,
            total,
        })
    }
}

impl io::Write for PartSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // The buffer never holds more than a part, so a large write (a Parquet column chunk)
        // does not make it grow past the capacity it was given. A full part is shipped only
        // when more bytes come, so the last part is never empty and a file of exactly one part
        // size is a single PutObject.
        let mut rest = data;
        while !rest.is_empty() {
            let size = self.current_part_size();
            debug_assert!(size >= MIN_PART_SIZE);
            if self.buf.len() >= size {
                self.ship()?;
                continue;
            }
            let take = rest.len().min(size - self.buf.len());
            let (now, later) = rest.split_at(take);
            self.buf.extend_from_slice(now);
            rest = later;
        }
        self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
