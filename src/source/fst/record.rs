//! A record as both containers locate it: its keys and where its payload lies.

use super::file::Container;
use super::keys::Keys;
use super::packing::WordOrder;

#[derive(Clone, Debug)]
pub struct Record {
    pub keys: Keys,
    /// Byte offset and length of the packed payload in the file (after the record's own
    /// header; may include slack words past what the datyp needs).
    pub payload_offset: u64,
    pub payload_len: u64,
    /// Byte offset and length of the whole record, as `fstprm` reports them (swa/lng).
    pub offset: u64,
    pub len: u64,
    pub order: WordOrder,
    pub deleted: bool,
    /// RSF extended metadata: json-c text, kept as is (it may hold a bare `NaN`).
    pub extended: Option<String>,
    pub container: Container,
}

impl Record {
    /// Bytes from the record's start to its payload: the container's own record header.
    pub fn header_len(&self) -> u64 {
        self.payload_offset - self.offset
    }

    /// Whether the record's own header, `bytes`, agrees with the directory entry that led
    /// here. Both containers repeat a record's length and keys at its start; a directory
    /// whose address or length is damaged would otherwise have other bytes decoded as
    /// this record.
    pub fn check_header(&self, bytes: &[u8]) -> Result<(), String> {
        let disagree = match self.container {
            Container::Xdf => super::xdf::header_disagrees(self, bytes),
            Container::Rsf => super::rsf::header_disagrees(self, bytes),
        };
        match disagree {
            None => Ok(()),
            Some(what) => Err(format!(
                "the record's own header at byte {} disagrees with its directory entry: {what}",
                self.offset
            )),
        }
    }
}

/// What a container's directory lists.
#[derive(Debug, Default)]
pub struct Directory {
    pub records: Vec<Record>,
    /// Entries left out, each with its reason.
    pub skipped: Vec<String>,
}

/// Reads `n` u32 words at the start of `bytes` in `order`; `None` if too short.
pub fn words<const N: usize>(bytes: &[u8], order: WordOrder) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    for (i, w) in out.iter_mut().enumerate() {
        let b: [u8; 4] = bytes.get(i * 4..i * 4 + 4)?.try_into().ok()?;
        *w = match order {
            WordOrder::Big => u32::from_be_bytes(b),
            WordOrder::Little => u32::from_le_bytes(b),
        };
    }
    Some(out)
}
