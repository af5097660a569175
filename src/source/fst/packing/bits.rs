//! The payload as 32-bit words, and the bit reader every packing uses (fst.md §2: librmn's
//! `extract` macro). Bit streams are MSB-first within each word: token t of a stream of
//! `nbits`-bit tokens starting at bit s occupies bits [s + t·nbits, s + (t+1)·nbits) of the
//! words read left to right, and may straddle two words.

use super::WordOrder;
use super::error::Fault;

/// A run of the payload's u32 words in the container's byte order. Trailing bytes that do not
/// fill a word are not part of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Words<'a> {
    bytes: &'a [u8],
    order: WordOrder,
    /// Index in the whole payload of this run's first word, so errors count from the payload start.
    first: usize,
}

impl<'a> Words<'a> {
    pub(crate) fn new(payload: &'a [u8], order: WordOrder) -> Self {
        let whole = payload.len() - payload.len() % 4;
        Words {
            bytes: payload.get(..whole).unwrap_or_default(),
            order,
            first: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<u32> {
        let bytes = *self.bytes.get(i.checked_mul(4)?..)?.first_chunk::<4>()?;
        Some(match self.order {
            WordOrder::Big => u32::from_be_bytes(bytes),
            WordOrder::Little => u32::from_le_bytes(bytes),
        })
    }

    /// `K` consecutive words from `start`.
    pub(crate) fn array<const K: usize>(&self, start: usize) -> Result<[u32; K], Fault> {
        let mut out = [0; K];
        for (k, slot) in out.iter_mut().enumerate() {
            let i = start.saturating_add(k);
            *slot = self.get(i).ok_or_else(|| self.truncated(i.saturating_add(1)))?;
        }
        Ok(out)
    }

    /// The words from index `start` on (none if `start` is past the end).
    pub(crate) fn skip(&self, start: usize) -> Words<'a> {
        let at = start.saturating_mul(4).min(self.bytes.len());
        Words {
            bytes: self.bytes.get(at..).unwrap_or_default(),
            order: self.order,
            first: self.first.saturating_add(start),
        }
    }

    /// At most the first `len` words.
    pub(crate) fn take(&self, len: usize) -> Words<'a> {
        let end = len.saturating_mul(4).min(self.bytes.len());
        Words {
            bytes: self.bytes.get(..end).unwrap_or_default(),
            ..*self
        }
    }

    /// The raw bytes of these words, as stored.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn order(&self) -> WordOrder {
        self.order
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let order = self.order;
        self.bytes.chunks_exact(4).map(move |c| {
            let bytes = [c[0], c[1], c[2], c[3]];
            match order {
                WordOrder::Big => u32::from_be_bytes(bytes),
                WordOrder::Little => u32::from_le_bytes(bytes),
            }
        })
    }

    /// Checks that these words hold at least `bits` bits.
    pub(crate) fn require_bits(&self, bits: u128) -> Result<(), Fault> {
        let needed = bits.div_ceil(32);
        if needed > self.len() as u128 {
            let needed = usize::try_from(needed).unwrap_or(usize::MAX);
            return Err(self.truncated(needed));
        }
        Ok(())
    }

    /// The fault for a read that needed the first `needed` words of this run.
    pub(crate) fn truncated(&self, needed: usize) -> Fault {
        Fault::Truncated {
            needed: self.first.saturating_add(needed) as u64,
            available: self.first.saturating_add(self.len()) as u64,
        }
    }
}

/// MSB-first reader of tokens of 0 to 32 bits. Reading past the end yields zero bits and
/// records it; [`BitReader::check`] turns that into a [`Fault::Truncated`]. Decoders check
/// their input's size up front where the layout is fixed, and call `check` when done (or in
/// any loop whose progress depends on the bits read).
pub(crate) struct BitReader<'a> {
    words: Words<'a>,
    /// Next word to load into `buf`.
    next: usize,
    /// Unread bits, left-aligned: the next bit to read is bit 63.
    buf: u64,
    /// How many bits of `buf` are unread (0 to 63).
    avail: u32,
    overrun: bool,
}

impl<'a> BitReader<'a> {
    /// A reader starting at bit `start` of `words` (bit 0 = the MSB of the first word).
    pub(crate) fn new(words: Words<'a>, start: u64) -> Self {
        let mut reader = BitReader {
            words,
            next: usize::try_from(start / 32).unwrap_or(usize::MAX),
            buf: 0,
            avail: 0,
            overrun: false,
        };
        reader.read((start % 32) as u32);
        reader
    }

    /// The next `n` bits (at most 32) as an unsigned value.
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> u32 {
        let n = n.min(32);
        if n == 0 {
            return 0;
        }
        if self.avail < n {
            self.refill();
        }
        let value = (self.buf >> (64 - n)) as u32;
        self.buf <<= n;
        self.avail -= n;
        value
    }

    /// Loads one more word below the unread bits (`avail` < 32 here, so it fits).
    #[inline]
    fn refill(&mut self) {
        let word = self.words.get(self.next).unwrap_or_else(|| {
            self.overrun = true;
            0
        });
        self.next = self.next.saturating_add(1);
        self.buf |= u64::from(word) << (32 - self.avail);
        self.avail += 32;
    }

    /// The next `n` bits (1 to 32) as a two's-complement number.
    #[inline]
    pub(crate) fn read_signed(&mut self, n: u32) -> i32 {
        sign_extend(self.read(n), n)
    }

    /// Fails if any read went past the end of the words.
    pub(crate) fn check(&self) -> Result<(), Fault> {
        if self.overrun {
            Err(self.words.truncated(self.next))
        } else {
            Ok(())
        }
    }
}

/// The low `n` bits (1 to 32) of `value` as a two's-complement number.
#[inline]
pub(crate) fn sign_extend(value: u32, n: u32) -> i32 {
    let shift = 32 - n.clamp(1, 32);
    ((value << shift) as i32) >> shift
}

/// A reader over `count` tokens of `nbits` bits starting at bit `start`, after checking that
/// the words hold them all (the fixed layouts: datyp 1, 2, 4, 5, 8).
pub(crate) fn tokens(words: Words, start: u64, count: usize, nbits: u32) -> Result<BitReader, Fault> {
    let bits = u128::from(start) + count as u128 * u128::from(nbits);
    words.require_bits(bits)?;
    Ok(BitReader::new(words, start))
}

/// Builds payloads for tests, the way librmn's `stuff` macro writes them.
#[cfg(test)]
pub(crate) mod testing {
    use super::super::WordOrder;

    /// MSB-first bit writer.
    #[derive(Default)]
    pub(crate) struct BitWriter {
        words: Vec<u32>,
        acc: u64,
        used: u32,
    }

    impl BitWriter {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        /// Appends the low `n` bits (0 to 32) of `value`.
        pub(crate) fn put(&mut self, value: u32, n: u32) -> &mut Self {
            assert!(n <= 32);
            if n == 0 {
                return self;
            }
            let value = u64::from(value) & ((1u64 << n) - 1);
            self.acc |= value << (64 - self.used - n);
            self.used += n;
            if self.used >= 32 {
                self.words.push((self.acc >> 32) as u32);
                self.acc <<= 32;
                self.used -= 32;
            }
            self
        }

        /// Appends a whole word (only on a word boundary).
        pub(crate) fn word(&mut self, value: u32) -> &mut Self {
            assert_eq!(self.used, 0, "word() off a word boundary");
            self.words.push(value);
            self
        }

        /// The words written, the last one padded with zero bits.
        pub(crate) fn finish(&mut self) -> Vec<u32> {
            if self.used > 0 {
                self.words.push((self.acc >> 32) as u32);
                self.acc = 0;
                self.used = 0;
            }
            std::mem::take(&mut self.words)
        }
    }

    /// Words as payload bytes in the given order.
    pub(crate) fn payload(words: &[u32], order: WordOrder) -> Vec<u8> {
        words
            .iter()
            .flat_map(|w| match order {
                WordOrder::Big => w.to_be_bytes(),
                WordOrder::Little => w.to_le_bytes(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{BitWriter, payload};
    use super::*;

    #[test]
    fn words_follow_the_byte_order_and_ignore_a_partial_tail() {
        let bytes = [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0xFF, 0xFF];
        let big = Words::new(&bytes, WordOrder::Big);
        let little = Words::new(&bytes, WordOrder::Little);
        assert_eq!(big.len(), 2);
        assert_eq!(big.get(0), Some(0x1234_5678));
        assert_eq!(little.get(1), Some(0xF0DE_BC9A));
        assert_eq!(big.get(2), None);
        assert_eq!(big.iter().collect::<Vec<_>>(), [0x1234_5678, 0x9ABC_DEF0]);
        assert_eq!(big.skip(1).get(0), Some(0x9ABC_DEF0));
        assert_eq!(big.skip(5).len(), 0);
        assert_eq!(big.take(1).len(), 1);
        assert_eq!(big.take(1).get(1), None);
    }

    #[test]
    fn tokens_straddle_word_boundaries_msb_first() {
        let words = [0x1234_5678, 0x9ABC_DEF0, 0x0F0F_0F0F];
        for order in [WordOrder::Big, WordOrder::Little] {
            let bytes = payload(&words, order);
            let mut r = BitReader::new(Words::new(&bytes, order), 0);
            assert_eq!(r.read(12), 0x123);
            assert_eq!(r.read(12), 0x456);
            // 20 bits across the first boundary: 0x78 then 0x9ABC.
            assert_eq!(r.read(20), 0x7_89AB);
            assert_eq!(r.read(4), 0xC);
            // A whole 32-bit token starting mid-word.
            assert_eq!(r.read(32), 0xDEF0_0F0F);
            assert_eq!(r.read(0), 0);
            assert_eq!(r.read(16), 0x0F0F);
            assert!(r.check().is_ok());
        }
    }

    #[test]
    fn a_start_bit_inside_a_later_word_and_signed_tokens() {
        let bytes = payload(&[0, 0x00FF_F800, 0x4000_0000], WordOrder::Big);
        let mut r = BitReader::new(Words::new(&bytes, WordOrder::Big), 32 + 8);
        assert_eq!(r.read(12), 0xFFF);
        assert_eq!(r.read_signed(12), -2048);
        assert_eq!(r.read_signed(32), 0x4000_0000);
        assert_eq!(sign_extend(0xFFFF_FFFF, 32), -1);
        assert_eq!(sign_extend(0b011, 3), 3);
        assert_eq!(sign_extend(0b100, 3), -4);
    }

    #[test]
    fn reading_past_the_end_is_reported_with_word_counts() {
        let bytes = payload(&[0xFFFF_FFFF, 0xFFFF_FFFF, 7], WordOrder::Little);
        let words = Words::new(&bytes, WordOrder::Little).skip(1);
        let mut r = BitReader::new(words, 0);
        assert_eq!(r.read(32), 0xFFFF_FFFF);
        assert_eq!(r.read(31), 3);
        assert!(r.check().is_ok());
        assert_eq!(r.read(2), 0b10, "the last real bit, then zeros");
        assert_eq!(
            r.check(),
            Err(Fault::Truncated {
                needed: 4,
                available: 3
            })
        );
        assert_eq!(
            tokens(words, 0, 5, 13).err(),
            Some(Fault::Truncated {
                needed: 4,
                available: 3
            })
        );
        assert!(tokens(words, 0, 4, 16).is_ok());
    }

    #[test]
    fn the_test_writer_round_trips() {
        let mut w = BitWriter::new();
        w.put(0b101, 3).put(0xABCDE, 20).put(u32::MAX, 32).put(1, 1);
        let bytes = payload(&w.finish(), WordOrder::Big);
        let mut r = BitReader::new(Words::new(&bytes, WordOrder::Big), 0);
        assert_eq!(
            [r.read(3), r.read(20), r.read(32), r.read(1)],
            [0b101, 0xABCDE, u32::MAX, 1]
        );
        assert_eq!(bytes.len(), 8);
    }
}
