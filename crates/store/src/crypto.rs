//! Sealing secrets with AES-256-GCM, bound to the record they belong to.

use crate::master_key::MasterKey;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// Version tag of the sealed format: `w1 || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
const VERSION: &[u8; 2] = b"w1";
const NONCE_LEN: usize = 12;

/// Seals and opens secrets. The associated data names the record and field a secret belongs to
/// (`destination/<id>/credentials`), so a ciphertext copied onto another record, or into another
/// field, fails to open instead of handing over someone else's credentials.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
    /// Where the master key came from, for messages.
    key_origin: std::sync::Arc<str>,
}

/// Opening failed: wrong key, altered bytes or another record's ciphertext. Deliberately without
/// detail; AES-GCM cannot tell these apart, and should not.
#[derive(Debug)]
pub struct OpenError;

impl Cipher {
    pub fn new(key: &MasterKey) -> Self {
        Self {
            aead: Aes256Gcm::new(key.bytes().into()),
            key_origin: key.origin().into(),
        }
    }

    /// Where the master key came from (`WHARF_MASTER_KEY` or the key file's path).
    pub fn key_origin(&self) -> &str {
        &self.key_origin
    }

    /// Encrypts `plaintext` under a fresh random nonce (96 bits from the OS CSPRNG; with at most
    /// a few million secrets per key, the collision bound is far below 2^-32).
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            // Encryption fails only for inputs over 64 GiB.
            .unwrap_or_default();
        let mut sealed = Vec::with_capacity(VERSION.len() + NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, OpenError> {
        let rest = sealed.strip_prefix(VERSION.as_slice()).ok_or(OpenError)?;
        if rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(byte: u8) -> Cipher {
        Cipher::new(&MasterKey::from_bytes([byte; 32]))
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let c = cipher(1);
        let a = c.seal(b"canary", b"destination/1/credentials");
        let b = c.seal(b"canary", b"destination/1/credentials");
        assert_ne!(a, b, "each seal uses a new nonce");
        assert!(!a.windows(6).any(|w| w == b"canary"));
        assert_eq!(
            c.open(&a, b"destination/1/credentials").expect("open"),
            b"canary"
        );
    }

    #[test]
    fn wrong_record_wrong_key_or_altered_bytes_fail() {
        let c = cipher(1);
        let sealed = c.seal(b"canary", b"destination/1/credentials");
        assert!(c.open(&sealed, b"destination/2/credentials").is_err());
        assert!(
            cipher(2)
                .open(&sealed, b"destination/1/credentials")
                .is_err()
        );
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(c.open(&altered, b"destination/1/credentials").is_err());
        assert!(c.open(b"w1short", b"destination/1/credentials").is_err());
    }
}
