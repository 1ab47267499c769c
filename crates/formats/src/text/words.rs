//! Byte tests eight bytes at a time (the SWAR tests of "Bit Twiddling Hacks"), for the text
//! encoders' one question per value: does it hold a byte that must be quoted or escaped? Most
//! values do not, and are then copied whole.

/// `0x0101..01`: a byte times this is that byte in every byte of a word.
const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGHS: u64 = ONES << 7;

/// `byte` in every byte of a word.
pub(crate) const fn repeat(byte: u8) -> u64 {
    ONES * byte as u64
}

/// Whether some byte of `word` is zero. Exact: the borrow that can make a false hit only
/// reaches bytes above a true one.
pub(crate) fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// Whether some byte of `word` is below `n` (`n <= 128`), exact as [`has_zero_byte`].
pub(crate) fn has_byte_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(repeat(n)) & !word & HIGHS != 0
}

/// Whether `test` holds for some 8-byte word of `text` (the last word overlaps the one before
/// it); `None` for text shorter than a word.
pub(crate) fn any_word(text: &[u8], test: impl Fn(u64) -> bool) -> Option<bool> {
    let last = text.last_chunk::<8>()?;
    let (words, _) = text.as_chunks::<8>();
    Some(
        words
            .iter()
            .chain([last])
            .any(|w| test(u64::from_le_bytes(*w))),
    )
}

/// An inline string view's text (bytes 4..4 + `len` of the view) as two words, the bytes after
/// the text set to `fill`, a byte the caller's test passes over.
pub(crate) fn inline_words(view: u128, len: usize, fill: u8) -> [u64; 2] {
    let mask = (1u128 << (8 * len)) - 1;
    let text = (view >> 32) & mask | u128::from_le_bytes([fill; 16]) & !mask;
    [text as u64, (text >> 64) as u64]
}

#[cfg(test)]
mod tests {
    use super::{any_word, has_byte_below, has_zero_byte, inline_words, repeat};

    /// Every byte value at every position of a word, against the byte-by-byte answer.
    #[test]
    fn word_tests_agree_with_byte_tests() {
        for at in 0..8 {
            for b in 0..=255u8 {
                let mut bytes = [b'a'; 8];
                bytes[at] = b;
                // The bytes around the tested one vary too, so borrows cross them.
                bytes[(at + 1) % 8] = b.wrapping_add(1);
                let word = u64::from_le_bytes(bytes);
                assert_eq!(has_zero_byte(word), bytes.contains(&0), "{bytes:?}");
                assert_eq!(
                    has_zero_byte(word ^ repeat(b'"')),
                    bytes.contains(&b'"'),
                    "{bytes:?}"
                );
                for n in [1, 0x20, 0x80] {
                    assert_eq!(
                        has_byte_below(word, n),
                        bytes.iter().any(|x| *x < n),
                        "{bytes:?} < {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_word_of_a_text_is_tested() {
        let quote = |w| has_zero_byte(w ^ repeat(b'"'));
        assert_eq!(any_word(b"short", quote), None);
        for len in 8..40 {
            for at in 0..len {
                let mut text = vec![b'x'; len];
                text[at] = b'"';
                assert_eq!(any_word(&text, quote), Some(true), "{len} {at}");
            }
            assert_eq!(any_word(&vec![b'x'; len], quote), Some(false));
        }
    }

    #[test]
    fn an_inline_view_is_its_text_then_the_fill() {
        // Length 5, "hello", then bytes that are not zero (a view need not clear them).
        let mut view = [0xAB_u8; 16];
        view[..4].copy_from_slice(&5u32.to_le_bytes());
        view[4..9].copy_from_slice(b"hello");
        let [low, high] = inline_words(u128::from_le_bytes(view), 5, b'-');
        assert_eq!(&low.to_le_bytes(), b"hello---");
        assert_eq!(&high.to_le_bytes(), b"--------");
        let mut view = [0u8; 16];
        view[..4].copy_from_slice(&12u32.to_le_bytes());
        view[4..].copy_from_slice(b"twelve bytes");
        let [low, high] = inline_words(u128::from_le_bytes(view), 12, b'-');
        assert_eq!(&low.to_le_bytes(), b"twelve b");
        assert_eq!(&high.to_le_bytes(), b"ytes----");
        assert_eq!(inline_words(0, 0, b'-'), [repeat(b'-'); 2]);
    }
}
