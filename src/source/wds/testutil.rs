//! Hand-made tar bytes for tests: headers written field by field (ustar, GNU, PAX `x`/`g`,
//! prefixes, broken checksums) where the `tar` crate's Builder cannot make them.

use super::header::{BLOCK, flag};

/// A header block. `magic` is `ustar\0` + `00` (POSIX) unless `gnu` is set (`ustar  \0`).
pub struct Hdr<'a> {
    pub name: &'a [u8],
    pub prefix: &'a [u8],
    pub typeflag: u8,
    pub size: u64,
    pub gnu: bool,
}

impl<'a> Hdr<'a> {
    pub fn file(name: &'a [u8], size: u64) -> Self {
        Hdr {
            name,
            prefix: b"",
            typeflag: flag::REG,
            size,
            gnu: false,
        }
    }

    pub fn block(&self) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[..self.name.len()].copy_from_slice(self.name);
        b[100..108].copy_from_slice(b"0000644\0");
        b[108..116].copy_from_slice(b"0000000\0");
        b[116..124].copy_from_slice(b"0000000\0");
        if self.size < 8u64.pow(11) {
            b[124..136].copy_from_slice(format!("{:011o}\0", self.size).as_bytes());
        } else {
            // GNU base-256: 0x80, then the size big-endian in the other 11 bytes.
            b[124] = 0x80;
            b[128..136].copy_from_slice(&self.size.to_be_bytes());
        }
        b[136..148].copy_from_slice(b"00000000000\0");
        b[156] = self.typeflag;
        if self.gnu {
            b[257..265].copy_from_slice(b"ustar  \0");
        } else {
            b[257..265].copy_from_slice(b"ustar\x0000");
        }
        b[345..345 + self.prefix.len()].copy_from_slice(self.prefix);
        set_checksum(&mut b);
        b
    }
}

pub fn set_checksum(b: &mut [u8; BLOCK]) {
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// One PAX record with its self-counting length.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A tar under construction.
#[derive(Default)]
pub struct TarBuf {
    pub bytes: Vec<u8>,
}

impl TarBuf {
    pub fn header(&mut self, h: &Hdr<'_>) -> &mut Self {
        self.bytes.extend_from_slice(&h.block());
        self
    }

    /// Data padded to whole blocks.
    pub fn data(&mut self, data: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(data);
        let pad = data.len().next_multiple_of(BLOCK) - data.len();
        self.bytes.resize(self.bytes.len() + pad, 0);
        self
    }

    /// A plain ustar member; returns its data offset.
    pub fn file(&mut self, name: &str, data: &[u8]) -> u64 {
        self.header(&Hdr::file(name.as_bytes(), data.len() as u64));
        let at = self.bytes.len() as u64;
        self.data(data);
        at
    }

    /// A PAX `x` or `g` header with these records.
    pub fn pax(&mut self, typeflag: u8, records: &[(&str, &[u8])]) -> &mut Self {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let h = Hdr {
            typeflag,
            ..Hdr::file(b"././@PaxHeader", body.len() as u64)
        };
        self.header(&h).data(&body)
    }

    /// A GNU `L` (or `K`) header carrying `name` (NUL-terminated, as GNU tar writes it).
    pub fn gnu_long(&mut self, typeflag: u8, name: &[u8]) -> &mut Self {
        let mut body = name.to_vec();
        body.push(0);
        let h = Hdr {
            typeflag,
            gnu: true,
            ..Hdr::file(b"././@LongLink", body.len() as u64)
        };
        self.header(&h).data(&body)
    }

    /// The end-of-archive marker (two zero blocks).
    pub fn end(&mut self) -> &mut Self {
        self.bytes.resize(self.bytes.len() + 2 * BLOCK, 0);
        self
    }
}

/// A minimal `.npy` file (v1.0, header padded to 64 bytes as numpy 1.x/2.x do).
pub fn npy(descr: &str, shape: &[u64], fortran: bool, payload: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    let total = (10 + dict.len() + 1).next_multiple_of(64);
    while 10 + dict.len() + 1 < total {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(payload);
    out
}
