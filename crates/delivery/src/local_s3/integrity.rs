//! Checking an UploadPart's bytes against the checksum its request carries, as S3 does (s3s-fs
//! checks PutObject's but stores any part). The body is checked while it streams to disk; a
//! mismatch fails the stream at its end, before s3s-fs moves the part into place, so a part that
//! fails the check is never stored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use crc_fast::{CrcAlgorithm, Digest};
use futures::Stream;
use s3s::dto::{StreamingBlob, UploadPartInput};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// The checksum a part must match: its header's name, the algorithm, the expected value.
pub(super) struct Expected {
    pub(super) header: &'static str,
    algorithm: CrcAlgorithm,
    value: String,
}

impl Expected {
    /// The CRC the request carries in a header, if any (CRC32, CRC32C or CRC64NVME).
    pub(super) fn of(input: &UploadPartInput) -> Option<Self> {
        let candidates = [
            (
                "x-amz-checksum-crc32c",
                CrcAlgorithm::Crc32Iscsi,
                &input.checksum_crc32c,
            ),
            (
                "x-amz-checksum-crc64nvme",
                CrcAlgorithm::Crc64Nvme,
                &input.checksum_crc64nvme,
            ),
            (
                "x-amz-checksum-crc32",
                CrcAlgorithm::Crc32IsoHdlc,
                &input.checksum_crc32,
            ),
        ];
        candidates
            .into_iter()
            .find_map(|(header, algorithm, value)| {
                value.as_ref().map(|value| Self {
                    header,
                    algorithm,
                    value: value.clone(),
                })
            })
    }

    fn matches(&self, digest: &Digest) -> bool {
        let crc = digest.finalize();
        let encoded = match self.algorithm {
            CrcAlgorithm::Crc64Nvme => STANDARD.encode(crc.to_be_bytes()),
            _ => STANDARD.encode((crc as u32).to_be_bytes()),
        };
        encoded == self.value
    }
}

/// `body`, checked against `expected` as it streams; `mismatch` is set when it failed.
pub(super) fn checked(
    body: StreamingBlob,
    expected: Expected,
    mismatch: Arc<AtomicBool>,
) -> StreamingBlob {
    let digest = Digest::new(expected.algorithm);
    StreamingBlob::wrap(Checked {
        body,
        expected,
        digest,
        mismatch,
        done: false,
    })
}

struct Checked {
    body: StreamingBlob,
    expected: Expected,
    digest: Digest,
    mismatch: Arc<AtomicBool>,
    done: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug)]
enum PartError {
    Body(BoxError),
    Mismatch(&'static str),
}

impl std::fmt::Display for PartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Body(e) => write!(f, "reading the part: {e}"),
            Self::Mismatch(header) => {
                write!(f, "the part's bytes do not match its {header} header")
            }
        }
    }
}

impl std::error::Error for PartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Body(e) => Some(e.as_ref()),
            Self::Mismatch(_) => None,
        }
    }
}

impl Stream for Checked {
    type Item = Result<Bytes, PartError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.body).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.digest.update(&bytes);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(PartError::Body(e)))),
            Poll::Ready(None) => {
                self.done = true;
                if self.expected.matches(&self.digest) {
                    Poll::Ready(None)
                } else {
                    self.mismatch.store(true, Ordering::SeqCst);
                    Poll::Ready(Some(Err(PartError::Mismatch(self.expected.header))))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
