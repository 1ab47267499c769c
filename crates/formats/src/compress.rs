//! Whole-file compression of text formats, on more than one core.
//!
//! gzip is written the way pigz writes it: the text is deflated in chunks, each chunk on its own
//! (so the chunks of a batch are deflated on different threads at once), primed with the 32 KiB
//! of text before it so the ratio stays what one stream gives, and ended on a byte boundary by a
//! sync flush; the chunks are joined in order into one gzip member, whose CRC-32 is combined
//! from the chunks'. zstd runs its own worker threads, which write one frame. Either way the
//! file is one gzip member or one zstd frame, which every reader reads whole.

use flate2::{Compress, Compression, FlushCompress, Status};
use std::io::{self, Write};
use wharf_domain::TextCompression;

/// zstd level 3 (zstd's default): about gzip's ratio at several times its speed.
const ZSTD_LEVEL: i32 = 3;

/// zstd's jobs on its worker threads: 2 MiB instead of the 8 MiB level 3 picks, which held
/// about 35 MiB more in buffers for a ratio within 0.2% (measured on the benchmark's CSV).
const ZSTD_JOB_BYTES: u32 = 2 << 20;

/// Text written through `Write` to a gzip stream is deflated in chunks of this much.
const GZIP_CHUNK: usize = 1 << 20;

/// deflate looks back at most this far: the text a chunk is primed with.
const WINDOW: usize = 32 * 1024;

/// The header flate2's `GzEncoder` writes: deflate, no flags, no modification time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A writer that compresses (or not) into `W`. `flush` does nothing on purpose: encoders flush
/// after every batch, and a gzip or zstd flush ends a block early, costing ratio and time; the
/// stream is completed by [`Compressed::finish`].
pub enum Compressed<W: Write> {
    Plain(W),
    Gzip(Gzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressed<W> {
    /// `threads`: the cores compression may use (zstd's worker threads; gzip chunks are
    /// deflated on the caller's threads, see [`Gzip::append`]).
    pub fn new(compression: TextCompression, inner: W, threads: usize) -> io::Result<Self> {
        Ok(match compression {
            TextCompression::None => Self::Plain(inner),
            TextCompression::Gzip => Self::Gzip(Gzip::new(inner)?),
            TextCompression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
                if threads > 1 {
                    encoder.multithread(u32::try_from(threads).unwrap_or(u32::MAX))?;
                    encoder.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_BYTES))?;
                }
                Self::Zstd(encoder)
            }
        })
    }

    /// The gzip stream, for chunks deflated elsewhere.
    pub fn gzip(&mut self) -> Option<&mut Gzip<W>> {
        match self {
            Self::Gzip(g) => Some(g),
            _ => None,
        }
    }

    /// Writes the compressed stream's end and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Self::Plain(w) => Ok(w),
            Self::Gzip(w) => w.finish(),
            Self::Zstd(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Compressed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
            Self::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.write_all(buf),
            Self::Gzip(w) => w.write_all(buf),
            Self::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Deflates chunks of text, each on its own, for one gzip stream. One per thread.
pub struct Deflater {
    compress: Compress,
    /// The last chunk, deflated.
    out: Vec<u8>,
    /// The last chunk's CRC-32 and length.
    crc: crc32fast::Hasher,
}

impl Default for Deflater {
    fn default() -> Self {
        Self {
            compress: Compress::new(Compression::default(), false),
            out: Vec::new(),
            crc: crc32fast::Hasher::new(),
        }
    }
}

impl Deflater {
    /// Deflates `text`, which follows `before` in the file (only its last 32 KiB are read), into
    /// raw deflate blocks that end on a byte boundary and are not the last.
    pub fn deflate(&mut self, before: &[u8], text: &[u8]) -> io::Result<()> {
        self.compress.reset();
        let before = &before[before.len().saturating_sub(WINDOW)..];
        if !before.is_empty() {
            self.compress
                .set_dictionary(before)
                .map_err(io::Error::other)?;
        }
        self.crc = crc32fast::Hasher::new();
        self.crc.update(text);
        self.out.clear();
        self.run(text, FlushCompress::Sync)
    }

    /// The last block of a stream: empty, marked last.
    fn last_block(&mut self) -> io::Result<()> {
        self.compress.reset();
        self.out.clear();
        self.run(&[], FlushCompress::Finish)
    }

    fn run(&mut self, text: &[u8], flush: FlushCompress) -> io::Result<()> {
        let start = self.compress.total_in();
        loop {
            let taken = usize::try_from(self.compress.total_in() - start).unwrap_or(usize::MAX);
            let rest = &text[taken.min(text.len())..];
            self.out.reserve(rest.len() / 2 + 4096);
            let status = self
                .compress
                .compress_vec(rest, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let all_taken = self.compress.total_in() - start == text.len() as u64;
            match (flush, status) {
                (FlushCompress::Finish, Status::StreamEnd) => return Ok(()),
                (FlushCompress::Finish, _) => {}
                // A flush is complete once the input is taken and the output did not fill up.
                _ if all_taken && self.out.len() < self.out.capacity() => return Ok(()),
                _ => {}
            }
        }
    }
}

/// One gzip member written from chunks deflated apart.
pub struct Gzip<W: Write> {
    inner: W,
    /// Text written through `Write`, not deflated yet.
    pending: Vec<u8>,
    /// The last 32 KiB of text before `pending`: what the next chunk is primed with.
    window: Vec<u8>,
    deflater: Deflater,
    crc: crc32fast::Hasher,
}

impl<W: Write> Gzip<W> {
    fn new(mut inner: W) -> io::Result<Self> {
        inner.write_all(&GZIP_HEADER)?;
        Ok(Self {
            inner,
            pending: Vec::new(),
            window: Vec::with_capacity(2 * WINDOW),
            deflater: Deflater::default(),
            crc: crc32fast::Hasher::new(),
        })
    }

    /// The text the next chunk follows (its last 32 KiB), after deflating what was written
    /// through `Write`.
    pub fn before_next(&mut self) -> io::Result<&[u8]> {
        self.deflate_pending()?;
        Ok(&self.window)
    }

    /// Appends `text`, deflated by `deflater` after [`Gzip::before_next`] (or after the text
    /// appended before it).
    pub fn append(&mut self, deflater: &Deflater, text: &[u8]) -> io::Result<()> {
        self.inner.write_all(&deflater.out)?;
        self.crc.combine(&deflater.crc);
        slide(&mut self.window, text);
        Ok(())
    }

    fn deflate_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.deflater.deflate(&self.window, &self.pending)?;
        self.inner.write_all(&self.deflater.out)?;
        self.crc.combine(&self.deflater.crc);
        slide(&mut self.window, &self.pending);
        self.pending.clear();
        Ok(())
    }

    /// Writes the last block and the trailer (CRC-32 and length mod 2^32).
    fn finish(mut self) -> io::Result<W> {
        self.deflate_pending()?;
        self.deflater.last_block()?;
        self.inner.write_all(&self.deflater.out)?;
        // ISIZE: the length modulo 2^32, as RFC 1952 has it.
        let len = (self.crc.total_len() & u64::from(u32::MAX)) as u32;
        self.inner.write_all(&self.crc.finalize().to_le_bytes())?;
        self.inner.write_all(&len.to_le_bytes())?;
        Ok(self.inner)
    }
}

/// Keeps the last 32 KiB of `window` followed by `text`.
fn slide(window: &mut Vec<u8>, text: &[u8]) {
    if text.len() >= WINDOW {
        window.clear();
        window.extend_from_slice(&text[text.len() - WINDOW..]);
    } else {
        window.extend_from_slice(text);
        let excess = window.len().saturating_sub(WINDOW);
        window.drain(..excess);
    }
}

impl<W: Write> Write for Gzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= GZIP_CHUNK {
            self.deflate_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Text that compresses about as CSV does: repeated shapes, changing numbers.
    fn text(bytes: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes + 64);
        let mut i = 0u64;
        while out.len() < bytes {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            out.extend_from_slice(
                format!("{i},customer {x},{}.{:02},\"a, b\"\r\n", x % 997, x % 100).as_bytes(),
            );
            i += 1;
        }
        out
    }

    /// The bytes of one gzip member: `GzDecoder` reads the first member only, so a file of
    /// several would come back short.
    fn gunzip_one_member(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("one gzip member");
        out
    }

    #[test]
    fn gzip_written_through_write_is_one_member_with_the_text() {
        let plain = text(3 * GZIP_CHUNK + 12_345);
        let mut gz = Compressed::new(TextCompression::Gzip, Vec::new(), 1).expect("gzip");
        for piece in plain.chunks(100_000) {
            gz.write_all(piece).expect("write");
        }
        let bytes = gz.finish().expect("finish");
        assert_eq!(gunzip_one_member(&bytes), plain);
        // Primed chunks cost next to nothing against one stream at the same level.
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        one.write_all(&plain).expect("write");
        let one = one.finish().expect("finish");
        assert!(
            bytes.len() * 1000 <= one.len() * 1005,
            "{} bytes in chunks, {} in one stream",
            bytes.len(),
            one.len()
        );
    }

    #[test]
    fn gzip_chunks_deflated_apart_join_into_one_member() {
        let plain = text(2_000_000);
        let mut gz = Compressed::new(TextCompression::Gzip, Vec::new(), 4).expect("gzip");
        gz.write_all(b"a header line\r\n").expect("write");
        let mut written = b"a header line\r\n".to_vec();
        // Batches of four slices, each deflated by its own deflater, as `ParallelText` does.
        let mut deflaters: Vec<Deflater> = (0..4).map(|_| Deflater::default()).collect();
        for batch in plain.chunks(300_001) {
            let slices: Vec<&[u8]> = batch.chunks(batch.len().div_ceil(4)).collect();
            let gzip = gz.gzip().expect("a gzip stream");
            let before = gzip.before_next().expect("pending text").to_vec();
            for (i, (deflater, slice)) in deflaters.iter_mut().zip(&slices).enumerate() {
                let before = if i == 0 { &before[..] } else { slices[i - 1] };
                deflater.deflate(before, slice).expect("deflate");
            }
            for (deflater, slice) in deflaters.iter().zip(&slices) {
                gzip.append(deflater, slice).expect("append");
            }
            written.extend_from_slice(batch);
            // Text written through `Write` between batches lands in order.
            gz.write_all(b"--\r\n").expect("write");
            written.extend_from_slice(b"--\r\n");
        }
        let bytes = gz.finish().expect("finish");
        assert_eq!(gunzip_one_member(&bytes), written);
    }

    #[test]
    fn an_empty_gzip_stream_is_a_valid_empty_file() {
        let bytes = Compressed::new(TextCompression::Gzip, Vec::new(), 2)
            .expect("gzip")
            .finish()
            .expect("finish");
        assert!(gunzip_one_member(&bytes).is_empty());
        assert_eq!(&bytes[..2], b"\x1f\x8b");
    }

    #[test]
    fn zstd_on_worker_threads_writes_one_frame() {
        let plain = text(24 << 20);
        let mut z = Compressed::new(TextCompression::Zstd, Vec::new(), 2).expect("zstd");
        for piece in plain.chunks(1 << 20) {
            z.write_all(piece).expect("write");
        }
        let bytes = z.finish().expect("finish");
        let frame = zstd::zstd_safe::find_frame_compressed_size(&bytes).expect("a frame");
        assert_eq!(frame, bytes.len(), "the file is more than one frame");
        assert_eq!(zstd::stream::decode_all(&bytes[..]).expect("decode"), plain);
    }
}
