//! Characters (fst.md §2.4, §2.5): datyp 3 ("R4A", whole words) and datyp 7 (8-bit tokens)
//! both come down to the bytes of the word values taken big-endian, so an RSF file written on
//! a little-endian machine stores them byte-swapped within each word ("LLEH" for "HELL").

use super::bits::Words;
use super::error::Fault;

/// The first `n` characters.
pub(crate) fn unpack(words: Words, n: usize) -> Result<Vec<u8>, Fault> {
    words.require_bits(n as u128 * 8)?;
    let mut out = Vec::with_capacity(n.div_ceil(4) * 4);
    for word in words.iter().take(n.div_ceil(4)) {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Element, Packing, UnpackError, WordOrder, unpack};

    #[test]
    fn characters_are_word_big_endian_in_both_containers() {
        let text = b"HELLO RSF!";
        let p = Packing {
            datyp: 7,
            nbits: 8,
            dasiz: 8,
            ni: text.len() as u32,
            nj: 1,
            nk: 1,
        };
        assert_eq!(p.element().unwrap(), Element::U8);
        // XDF: the file bytes are the text, padded to whole words.
        let xdf = b"HELLO RSF!\0\0";
        assert_eq!(unpack(&p, xdf, WordOrder::Big).unwrap(), text);
        // RSF (little-endian words): swapped within each word.
        let rsf = b"LLEHSR O\0\0!F";
        assert_eq!(unpack(&p, rsf, WordOrder::Little).unwrap(), text);
        // datyp 3 (R4A) reads the same way, whatever nbits says.
        let r4a = Packing {
            datyp: 3,
            nbits: 32,
            ..p
        };
        assert_eq!(unpack(&r4a, xdf, WordOrder::Big).unwrap(), text);
        assert!(matches!(
            unpack(&p, &xdf[..8], WordOrder::Big),
            Err(UnpackError::Truncated {
                datyp: 7,
                needed: 3,
                available: 2
            })
        ));
    }
}
