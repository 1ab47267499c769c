//! S3's ETags as MD5s: the one an object written in parts gets, read by the uploader (to know
//! its own object after a lost answer) and given by the local endpoint.

use md5::{Digest as _, Md5};

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The MD5 an ETag holds (`"<32 hex digits>"`, quotes optional); `None` for any other ETag
/// (a multipart object's, SSE-KMS's).
pub(crate) fn md5(e_tag: &str) -> Option<[u8; 16]> {
    let digits = e_tag.trim_matches('"').as_bytes();
    if digits.len() != 32 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// The ETag of an object written in parts with these MD5s: the MD5 of the MD5s, `-`, the number
/// of parts (unquoted).
pub(crate) fn multipart(parts: &[[u8; 16]]) -> String {
    let mut all = Md5::new();
    for part in parts {
        all.update(part);
    }
    format!("{}-{}", hex(&all.finalize()), parts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_round_trips_and_refuses_what_is_not_one() {
        let digest: [u8; 16] = Md5::digest(b"part").into();
        assert_eq!(md5(&hex(&digest)), Some(digest));
        assert_eq!(md5(&format!("\"{}\"", hex(&digest))), Some(digest));
        assert_eq!(md5("abc"), None);
        assert_eq!(md5(&"zz".repeat(16)), None);
        assert_eq!(md5(&format!("+f{}", "0".repeat(30))), None);
        assert_eq!(md5(&format!("{}-2", multipart(&[digest, digest]))), None);
    }

    #[test]
    fn a_multipart_e_tag_is_the_md5_of_the_md5s_and_the_count() {
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        assert_eq!(
            multipart(&[a, b]),
            format!("{}-2", hex(&Md5::digest(&both)))
        );
    }
}
