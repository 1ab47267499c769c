//! Reference checksums written from their definitions, so tests compare wharf's checksums with
//! values it did not compute. Slow (a byte at a time) and obviously correct; each is checked
//! against the catalogue's check value for "123456789".

use base64::Engine as _;

/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and final xor all ones.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let table: [u32; 256] = std::array::from_fn(|i| {
        (0..8).fold(i as u32, |crc, _| {
            if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            }
        })
    });
    !bytes.iter().fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5 (0xAD93D23594C93659 reversed), init
/// and final xor all ones.
pub fn crc64nvme(bytes: &[u8]) -> u64 {
    let table: [u64; 256] = std::array::from_fn(|i| {
        (0..8).fold(i as u64, |crc, _| {
            if crc & 1 == 1 {
                (crc >> 1) ^ 0x9A6C_9329_AC4B_C9B5
            } else {
                crc >> 1
            }
        })
    });
    !bytes.iter().fold(!0u64, |crc, &b| {
        table[((crc ^ u64::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// A checksum as wharf records it: `crc32c:<base64 of the big-endian value>`.
pub fn crc32c_record(bytes: &[u8]) -> String {
    format!(
        "crc32c:{}",
        base64::engine::general_purpose::STANDARD.encode(crc32c(bytes).to_be_bytes())
    )
}

/// `crc64nvme:<base64 of the big-endian value>`.
pub fn crc64nvme_record(bytes: &[u8]) -> String {
    format!(
        "crc64nvme:{}",
        base64::engine::general_purpose::STANDARD.encode(crc64nvme(bytes).to_be_bytes())
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_values_from_the_crc_catalogue() {
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(super::crc64nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
        assert_eq!(super::crc32c(b""), 0);
    }
}
