//! The master key that seals every stored secret.

use crate::error::StoreError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use wharf_domain::Secret;

/// Environment variable holding the master key (base64 of 32 bytes). When set, no key file is
/// read or created: the operator keeps the key in a secret manager, apart from the database.
pub const MASTER_KEY_ENV: &str = "WHARF_MASTER_KEY";

/// Key file created in `$WHARF_HOME` on first use when the variable is not set.
pub const MASTER_KEY_FILE: &str = "master.key";

/// A 256-bit key. Never printed; zeroed on drop.
pub struct MasterKey {
    bytes: Secret<[u8; 32]>,
    /// Where it came from, for messages: `WHARF_MASTER_KEY` or the key file's path.
    origin: String,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes: Secret::new(bytes),
            origin: "the given key".into(),
        }
    }

    /// Where the key came from, as messages name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        self.bytes.expose()
    }

    /// The key from `WHARF_MASTER_KEY`, else from `home/master.key`, creating that file (mode
    /// 0600, 32 bytes from the OS CSPRNG) when it does not exist yet.
    pub fn load_or_create(home: &Path) -> Result<Self, StoreError> {
        Self::load(home, true)
    }

    /// As [`MasterKey::load_or_create`], but a missing key file is created only when `create`
    /// is true: for a store that already exists, a missing key file means its sealed secrets
    /// cannot be opened, and a new key would only hide that until the first decryption.
    pub fn load(home: &Path, create: bool) -> Result<Self, StoreError> {
        if let Ok(value) = std::env::var(MASTER_KEY_ENV) {
            return Self::decode(&value)
                .map(|key| key.with_origin(MASTER_KEY_ENV.to_string()))
                .map_err(|problem| {
                    StoreError::MasterKey(format!(
                        "{MASTER_KEY_ENV} is invalid: {problem}; it must be the base64 of exactly 32 random bytes (make one with `openssl rand -base64 32`)"
                    ))
                });
        }
        let path = home.join(MASTER_KEY_FILE);
        if !create && std::fs::symlink_metadata(&path).is_err() {
            return Err(StoreError::MasterKey(format!(
                "the master key file {} is missing, and the secrets sealed in {} (access keys, warehouse URLs) cannot be opened without it: restore {MASTER_KEY_FILE} from your backup, or set {MASTER_KEY_ENV} to the key (base64)",
                path.display(),
                home.join(crate::DATABASE_FILE).display()
            )));
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let mut bytes = [0u8; 32];
                getrandom_fill(&mut bytes)?;
                let io = |source| StoreError::Io {
                    path: path.clone(),
                    source,
                };
                file.write_all(format!("{}\n", BASE64.encode(bytes)).as_bytes())
                    .map_err(io)?;
                file.sync_all().map_err(io)?;
                tracing::info!(path = %path.display(), "created a new master key");
                Ok(Self::from_bytes(bytes).with_origin(path.display().to_string()))
            }
            // Another process created it first, or it existed: read it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::read(&path),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn read(path: &Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(StoreError::MasterKey(format!(
                "{} is readable by other users (mode {:o}): run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::decode(&text)
            .map(|key| key.with_origin(path.display().to_string()))
            .map_err(|problem| {
                StoreError::MasterKey(format!("{} is invalid: {problem}", path.display()))
            })
    }

    fn with_origin(mut self, origin: String) -> Self {
        self.origin = origin;
        self
    }

    /// Decodes base64; the problem text never contains the value.
    fn decode(text: &str) -> Result<Self, String> {
        let mut bytes = BASE64
            .decode(text.trim())
            .map_err(|_| "it is not valid base64".to_string())?;
        let key: Result<[u8; 32], _> = bytes.as_slice().try_into();
        let len = bytes.len();
        zeroize::Zeroize::zeroize(&mut bytes);
        key.map(Self::from_bytes)
            .map_err(|_| format!("it decodes to {len} bytes, not 32"))
    }
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), StoreError> {
    use aes_gcm::aead::rand_core::RngCore as _;
    aes_gcm::aead::OsRng
        .try_fill_bytes(bytes)
        .map_err(|e| StoreError::MasterKey(format!("the operating system gave no randomness: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let home = tempfile::tempdir().expect("tempdir");
        let first = MasterKey::load_or_create(home.path()).expect("create");
        let path = home.path().join(MASTER_KEY_FILE);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = MasterKey::load_or_create(home.path()).expect("read");
        assert_eq!(first.bytes(), second.bytes());
    }

    #[test]
    fn a_missing_key_file_of_an_existing_store_is_an_error_not_a_new_key() {
        let home = tempfile::tempdir().expect("tempdir");
        let err = MasterKey::load(home.path(), false).err().expect("missing");
        let text = err.to_string();
        assert!(
            text.contains("master.key is missing") && text.contains("restore master.key"),
            "{text}"
        );
        assert!(
            !home.path().join(MASTER_KEY_FILE).exists(),
            "nothing created"
        );
    }

    #[test]
    fn a_world_readable_key_file_is_refused() {
        let home = tempfile::tempdir().expect("tempdir");
        MasterKey::load_or_create(home.path()).expect("create");
        let path = home.path().join(MASTER_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = MasterKey::read(&path).err().expect("refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn bad_keys_are_explained_without_echoing_them() {
        let err = MasterKey::decode("not base64!").err().expect("bad");
        assert_eq!(err, "it is not valid base64");
        let err = MasterKey::decode(&BASE64.encode([7u8; 16]))
            .err()
            .expect("short");
        assert_eq!(err, "it decodes to 16 bytes, not 32");
        assert!(MasterKey::decode(&BASE64.encode([7u8; 32])).is_ok());
    }
}
