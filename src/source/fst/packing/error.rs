//! Why a payload cannot be decoded: [`UnpackError`] for callers, and the decoders' internal
//! [`Fault`], which `unpack` tags with the record's datyp.

/// Why a record payload cannot be decoded. The caller adds the file and record.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("datyp {datyp} is not an RPN standard file data type")]
    UnknownDatyp { datyp: u8 },
    #[error("datyp {datyp} with nbits {nbits} cannot be decoded: {why}")]
    Unsupported { datyp: u8, nbits: u8, why: &'static str },
    #[error("a record of {ni}×{nj}×{nk} values is too large to decode")]
    TooLarge { ni: u32, nj: u32, nk: u32 },
    #[error("datyp {datyp}: payload too short: {needed} 32-bit words needed, {available} available")]
    Truncated { datyp: u8, needed: u64, available: u64 },
    #[error("datyp {datyp}: {what}")]
    Corrupt { datyp: u8, what: String },
}

/// A decoder's complaint, before `unpack` says which datyp it was decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The payload, or a stream inside it, ends before the data it must hold.
    Truncated { needed: u64, available: u64 },
    /// A header or stream field is impossible.
    Corrupt(String),
}

impl Fault {
    pub(crate) fn in_datyp(self, datyp: u8) -> UnpackError {
        match self {
            Fault::Truncated { needed, available } => UnpackError::Truncated {
                datyp,
                needed,
                available,
            },
            Fault::Corrupt(what) => UnpackError::Corrupt { datyp, what },
        }
    }
}
