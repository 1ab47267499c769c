//! Whole-file compression of text formats.

use std::io::{self, Write};
use wharf_domain::TextCompression;

/// A writer that compresses (or not) into `W`. `flush` does nothing on purpose: encoders flush
/// after every batch, and a gzip or zstd flush ends a block early, costing ratio and time; the
/// stream is completed by [`Compressed::finish`].
pub enum Compressed<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

/// zstd level 3 (zstd's default): about gzip's ratio at several times its speed.
const ZSTD_LEVEL: i32 = 3;

impl<W: Write> Compressed<W> {
    pub fn new(compression: TextCompression, inner: W) -> io::Result<Self> {
        Ok(match compression {
            TextCompression::None => Self::Plain(inner),
            TextCompression::Gzip => Self::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::default(),
            )),
            TextCompression::Zstd => {
                Self::Zstd(zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?)
            }
        })
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
