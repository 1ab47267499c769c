//! The External ID of a cross-account role destination.

use crate::error::InvalidValue;
use std::fmt;

/// The secret-ish token a role's trust policy requires (`sts:ExternalId`), which stops another
/// wharf customer from pointing wharf at your role (the "confused deputy" problem).
///
/// wharf generates it; a user never chooses it, because a guessable or reused value is exactly the
/// weakness it exists to close. Format: `wharf-` and 32 characters of base32 (160 bits from the
/// operating system's CSPRNG), inside AWS's allowed alphabet `[\w+=,.@:/-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

const PREFIX: &str = "wharf-";
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const RANDOM_BYTES: usize = 20;

impl ExternalId {
    /// A fresh External ID. Fails only if the operating system cannot provide randomness, in
    /// which case no External ID must be made at all.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self::from_random_bytes(bytes))
    }

    fn from_random_bytes(bytes: [u8; RANDOM_BYTES]) -> Self {
        let mut out = String::with_capacity(PREFIX.len() + RANDOM_BYTES * 8 / 5);
        out.push_str(PREFIX);
        // 160 bits make exactly 32 base32 digits: take 5 bits at a time, most significant first.
        let mut acc: u64 = 0;
        let mut bits = 0;
        for byte in bytes {
            acc = (acc << 8) | u64::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
            }
        }
        Self(out)
    }

    /// Reads back an External ID that wharf stored earlier. Not for user input: the API refuses
    /// an `external_id` field outright.
    pub fn from_stored(value: &str) -> Result<Self, InvalidValue> {
        let valid = (2..=1224).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
        if valid {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidValue::new(
                "external_id",
                value,
                "an External ID has 2 to 1224 characters from letters, digits and '_+=,.@:/-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_are_long_unique_and_in_the_aws_alphabet() {
        let ids: HashSet<String> = (0..1000)
            .map(|_| ExternalId::generate().expect("os randomness").0)
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), PREFIX.len() + 32);
            assert!(ExternalId::from_stored(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn encoding_uses_every_bit() {
        assert_eq!(
            ExternalId::from_random_bytes([0; 20]).0,
            format!("wharf-{}", "a".repeat(32))
        );
        assert_eq!(
            ExternalId::from_random_bytes([0xff; 20]).0,
            format!("wharf-{}", "7".repeat(32))
        );
        let mut one = [0u8; 20];
        one[19] = 1;
        assert_eq!(
            ExternalId::from_random_bytes(one).0,
            format!("wharf-{}b", "a".repeat(31))
        );
    }

    #[test]
    fn stored_ids_are_checked() {
        assert!(ExternalId::from_stored("x").is_err());
        assert!(ExternalId::from_stored("has space").is_err());
        assert!(ExternalId::from_stored("40cef540-b3b4-4e86-b343-2fde3a6f0396").is_ok());
    }
}
