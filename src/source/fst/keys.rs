//! The 18-word record description both containers share (fst.md §1.3, `stdf_dir_keys`):
//! XDF directory entries are exactly these words, RSF directory metadata carries them at
//! words 1..19. Words 0 and 1 (XDF length and address) are read by the containers.

/// One record's metadata, as librmn's `fstprm` reports it (date: the stored validity stamp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub nomvar: String,
    pub typvar: String,
    pub etiket: String,
    pub grtyp: String,
    pub ni: u32,
    pub nj: u32,
    pub nk: u32,
    pub datyp: u8,
    pub nbits: u8,
    /// Element size in bits of the writer's array (librmn ≥ 20; 0 in older files).
    pub dasiz: u8,
    pub deet: u32,
    pub npas: u32,
    pub ip1: u32,
    pub ip2: u32,
    pub ip3: u32,
    pub ig1: u32,
    pub ig2: u32,
    pub ig3: u32,
    pub ig4: u32,
    /// CMC date stamp of the validity time (datev), decoded from its "octal" storage form.
    pub datev: u32,
    pub ubc: u32,
}

impl Keys {
    /// Parses the 18 key words (values already in host order; words 0 and 1 are ignored).
    pub fn parse(w: &[u32; 18]) -> Keys {
        let ni = (w[3] >> 8) | ((w[12] & 0xFF) << 24);
        let nj = (w[4] >> 8) | ((w[15] & 0xF) << 24) | ((w[16] & 0xF) << 28);
        let etiket = sixbit(w[10] >> 2, 5) + &sixbit(w[11] >> 2, 5) + &sixbit(w[12] >> 20, 2);
        Keys {
            nomvar: trimmed(sixbit(w[13] >> 8, 4)),
            typvar: trimmed(sixbit((w[12] >> 8) & 0xFFF, 2)),
            etiket: trimmed(etiket),
            grtyp: char::from((w[3] & 0xFF) as u8).to_string(),
            ni,
            nj,
            nk: w[5] >> 12,
            datyp: (w[4] & 0xFF) as u8,
            nbits: (w[2] & 0xFF) as u8,
            dasiz: (w[13] & 0xFF) as u8,
            deet: w[2] >> 8,
            npas: w[6] >> 6,
            ip1: w[14] >> 4,
            ip2: w[15] >> 4,
            ip3: w[16] >> 4,
            ig1: w[8] >> 8,
            ig2: ((w[7] & 0xFF) << 16) | ((w[8] & 0xFF) << 8) | (w[9] & 0xFF),
            ig3: w[9] >> 8,
            ig4: w[7] >> 8,
            // Stored as 8*(datev/10) + datev%10 (fst.md §3.2); the arithmetic wraps in u32
            // exactly as librmn's does.
            datev: ((u64::from(w[17] >> 3) * 10 + u64::from(w[17] & 7)) & 0xFFFF_FFFF) as u32,
            ubc: w[5] & 0xFFF,
        }
    }

    /// The origin date stamp (dateo = datev − deet·npas), as `fstprm` reports it.
    pub fn dateo(&self) -> u32 {
        let seconds = i64::from(self.deet) * i64::from(self.npas);
        super::date::Stamp(self.datev)
            .add_seconds(-seconds)
            .map_or(self.datev, |s| s.0)
    }
}

/// `n` characters of 6 bits each, most significant first; a code is the character − 32.
fn sixbit(v: u32, n: u32) -> String {
    (0..n)
        .map(|i| char::from(((v >> (6 * (n - 1 - i))) & 0x3F) as u8 + 32))
        .collect()
}

fn trimmed(s: String) -> String {
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_six_bit_codes_offset_by_32() {
        // "TT  " = 52,52,0,0 (T = 84 = 32 + 52)
        assert_eq!(sixbit((52 << 18) | (52 << 12), 4), "TT  ");
        assert_eq!(sixbit(0, 2), "  ");
    }

    #[test]
    fn wide_grids_take_their_high_bits_from_the_extension_fields() {
        let mut w = [0u32; 18];
        w[3] = (5 << 8) | u32::from(b'Z');
        w[12] = 1; // ni bit 24
        w[4] = 7 << 8;
        w[15] = 2; // nj bit 25
        w[16] = 1; // nj bit 28
        let k = Keys::parse(&w);
        assert_eq!(k.ni, (1 << 24) | 5);
        assert_eq!(k.nj, (1 << 28) | (2 << 24) | 7);
        assert_eq!(k.grtyp, "Z");
    }

    #[test]
    fn ig2_is_spread_over_three_low_bytes() {
        let mut w = [0u32; 18];
        w[7] = (4 << 8) | 0x12;
        w[8] = (1 << 8) | 0x34;
        w[9] = (3 << 8) | 0x56;
        let k = Keys::parse(&w);
        assert_eq!((k.ig1, k.ig2, k.ig3, k.ig4), (1, 0x123456, 3, 4));
    }
}
