//! Keys up to S3's 1,024 bytes on a file system whose names stop at 255 bytes.
//!
//! s3s-fs stores an object at `<bucket>/<key>` and names its side files after the base64 of the
//! bucket and key (`.bucket-<b64>.object-<b64>.internal.json`). A key with a segment over 255
//! bytes, or one whose side-file name would be, cannot be stored that way. Such a key is stored
//! under `.wharf-long-keys/<hash>` instead, and a small file outside the bucket remembers which
//! key that hash stands for, so listings show the key the client wrote. Keys that fit are stored
//! as they are: the folder stays readable by a person for every ordinary key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The folder, inside a bucket's folder, that holds objects stored under a hash of their key.
/// A client key that starts with it is stored hashed too, so it never collides with one.
pub(crate) const LONG_KEY_DIR: &str = ".wharf-long-keys";

/// Longest file name on the file systems the endpoint serves from (ext4, xfs, btrfs, tmpfs).
const MAX_FILE_NAME_BYTES: usize = 255;

/// The longest key whose side-file names fit [`MAX_FILE_NAME_BYTES`] in `bucket`. A multipart
/// upload's `.upload-<uuid>.metadata.json` is the longest side file; every key is judged by it,
/// so a key maps to the same stored key whether it is written whole or in parts.
fn max_direct_key_bytes(bucket: &str) -> usize {
    let suffix = ".upload-00000000-0000-0000-0000-000000000000.metadata.json";
    let fixed =
        ".bucket-".len() + URL_SAFE_NO_PAD.encode(bucket).len() + ".object-".len() + suffix.len();
    MAX_FILE_NAME_BYTES.saturating_sub(fixed) * 3 / 4
}

/// Whether s3s-fs can store `key` in `bucket` as it is.
fn is_direct(bucket: &str, key: &str) -> bool {
    key.len() <= max_direct_key_bytes(bucket)
        && key.split('/').all(|s| s.len() <= MAX_FILE_NAME_BYTES)
        && key.split('/').next() != Some(LONG_KEY_DIR)
}

/// Translates client keys to the keys s3s-fs stores, and back.
pub(crate) struct LongKeys {
    /// `<root>/.wharf-long-keys`: one folder per bucket (named by its base64), one file per
    /// hashed key holding the client's key.
    names: PathBuf,
}

impl LongKeys {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            names: root.join(LONG_KEY_DIR),
        }
    }

    fn name_file(&self, bucket: &str, hash: &str) -> PathBuf {
        self.names.join(URL_SAFE_NO_PAD.encode(bucket)).join(hash)
    }

    /// The key s3s-fs stores `key` under, for reading: no record is written.
    pub(crate) fn stored(&self, bucket: &str, key: &str) -> String {
        if is_direct(bucket, key) {
            key.to_string()
        } else {
            format!("{LONG_KEY_DIR}/{}", hash(key))
        }
    }

    /// The key s3s-fs stores `key` under, for writing: a hashed key's name is recorded first, so
    /// that an object never exists without it.
    pub(crate) fn stored_for_write(&self, bucket: &str, key: &str) -> io::Result<String> {
        if is_direct(bucket, key) {
            return Ok(key.to_string());
        }
        let hash = hash(key);
        let path = self.name_file(bucket, &hash);
        if std::fs::read(&path).ok().as_deref() != Some(key.as_bytes()) {
            let dir = path.parent().unwrap_or(&self.names);
            std::fs::create_dir_all(dir)?;
            // Written whole, then renamed: a reader never sees half a name.
            let mut tmp = tempfile_in(dir)?;
            tmp.1.write_all(key.as_bytes())?;
            tmp.1.sync_all()?;
            std::fs::rename(&tmp.0, &path)?;
        }
        Ok(format!("{LONG_KEY_DIR}/{hash}"))
    }

    /// The client's key for a stored key; `None` for a hashed key whose name is lost.
    pub(crate) fn original(&self, bucket: &str, stored: &str) -> Option<String> {
        match stored
            .strip_prefix(LONG_KEY_DIR)
            .and_then(|s| s.strip_prefix('/'))
        {
            Some(hash) => std::fs::read(self.name_file(bucket, hash))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok()),
            None => Some(stored.to_string()),
        }
    }

    /// Forgets a hashed key's name once nothing stored uses it.
    pub(crate) fn forget(&self, bucket: &str, stored: &str) {
        if let Some(hash) = stored
            .strip_prefix(LONG_KEY_DIR)
            .and_then(|s| s.strip_prefix('/'))
        {
            let _ = std::fs::remove_file(self.name_file(bucket, hash));
        }
    }
}

/// 128 bits of SHA-256, in hex: short enough that the stored key fits the side-file names of the
/// longest bucket name (63 bytes), long enough that two keys never meet.
fn hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A new file in `dir` with a name no other writer uses.
fn tempfile_in(dir: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_are_stored_as_they_are() {
        let dir = tempfile::tempdir().expect("dir");
        let keys = LongKeys::new(dir.path());
        let key = "exports/2026/12/06/customers.csv";
        assert_eq!(keys.stored_for_write("b", key).expect("stored"), key);
        assert_eq!(keys.original("b", key).as_deref(), Some(key));
        assert!(!dir.path().join(LONG_KEY_DIR).exists(), "no record written");
    }

    #[test]
    fn long_keys_and_long_segments_are_hashed_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let keys = LongKeys::new(dir.path());
        let bucket = "b".repeat(63);
        let long = format!("exports/{}", "k".repeat(1016));
        let segment = "s".repeat(256);
        let reserved = format!("{LONG_KEY_DIR}/x");
        for key in [&long, &segment, &reserved] {
            let stored = keys.stored_for_write(&bucket, key).expect("stored");
            assert!(stored.starts_with(LONG_KEY_DIR), "{stored}");
            assert!(
                stored.len() <= max_direct_key_bytes(&bucket),
                "{stored} must itself fit"
            );
            assert_eq!(keys.stored(&bucket, key), stored);
            assert_eq!(
                keys.original(&bucket, &stored).as_deref(),
                Some(key.as_str())
            );
            assert_eq!(
                keys.original("other", &stored),
                None,
                "names are per bucket"
            );
            keys.forget(&bucket, &stored);
            assert_eq!(keys.original(&bucket, &stored), None);
        }
    }

    #[test]
    fn the_direct_limit_is_where_side_file_names_reach_255_bytes() {
        let bucket = "b".repeat(63);
        let max = max_direct_key_bytes(&bucket);
        let name = |key: &str| {
            format!(
                ".bucket-{}.object-{}.upload-00000000-0000-0000-0000-000000000000.metadata.json",
                URL_SAFE_NO_PAD.encode(&bucket),
                URL_SAFE_NO_PAD.encode(key)
            )
        };
        assert!(name(&"k".repeat(max)).len() <= MAX_FILE_NAME_BYTES);
        assert!(is_direct(&bucket, &"k".repeat(max)));
        assert!(!is_direct(&bucket, &"k".repeat(max + 1)));
    }
}
