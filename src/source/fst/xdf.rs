//! The XDF container (fst.md §1): a 208-byte header, a chain of 256-entry directory pages
//! whose entries are the 18 key words, and records addressed in 64-bit words from 1.
//! Everything is big-endian.

use super::file::Container;
use super::file::ReadAt;
use super::keys::Keys;
use super::packing::WordOrder;
use super::record::{Directory, Record, words};

const HEADER_BYTES: usize = 208;
/// Directory page header in u32 (4 w64).
const PAGE_HEADER_WORDS: usize = 8;
const ENTRIES_PER_PAGE: usize = 256;
/// The most pages librmn writes (qstdir.h), so a looping chain cannot run forever.
const MAX_PAGES: usize = 1024;
/// Keys (18 u32) and the 2 aux words precede the payload in a record.
const RECORD_HEADER_BYTES: u64 = 80;

pub fn is_xdf(head: &[u8]) -> bool {
    head.get(8..16) == Some(b"XDF0STDR")
}

/// Byte offset of a w64 address (origin 1).
fn byte_of(addr: u32) -> Option<u64> {
    u64::from(addr).checked_sub(1).map(|a| a * 8)
}

/// Reads the directory of an XDF file of `file_len` bytes: every entry, deleted ones
/// included (flagged), in the order librmn lists them. A corrupt directory fails the file;
/// an entry pointing past the end of the file (a truncated file) is left out with a reason.
pub fn read<R: ReadAt + ?Sized>(file: &R, file_len: u64) -> Result<Directory, String> {
    if file_len < HEADER_BYTES as u64 {
        return Err(format!(
            "the file ends at byte {file_len}, inside the {HEADER_BYTES}-byte XDF header: truncated"
        ));
    }
    let mut header = [0u8; HEADER_BYTES];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| format!("reading the XDF header (bytes 0..{HEADER_BYTES}): {e}"))?;
    if !is_xdf(&header) {
        return Err("not an XDF random-access standard file (no XDF0STDR at byte 8)".into());
    }
    let h: [u32; 16] = words(&header, WordOrder::Big).ok_or("short header")?;
    let header_w64 = h[0] & 0xFF_FFFF;
    let (pages, lprm) = (h[7] as usize, (h[10] & 0xFFFF) as usize);
    if lprm != 9 {
        return Err(format!(
            "header word 10 (byte 40): directory entries of {lprm} w64 (standard files have 9): not a standard file"
        ));
    }
    if pages > MAX_PAGES {
        return Err(format!(
            "header word 7 (byte 28) claims {pages} directory pages (at most {MAX_PAGES})"
        ));
    }
    if h[14] != 0 {
        tracing::debug!(
            "XDF file was not closed by its writer (rwflg {}); checking bounds",
            h[14]
        );
    }
    let entry_words = lprm * 2;
    let page_bytes = (PAGE_HEADER_WORDS + ENTRIES_PER_PAGE * entry_words) * 4;
    let mut dir = Directory::default();
    let mut addr = header_w64 + 1;
    for page in 0..pages {
        let offset = byte_of(addr).ok_or_else(|| {
            format!("directory page {page} at address 0 (header word 8, byte 32, or the previous page's next-page word)")
        })?;
        if offset + page_bytes as u64 > file_len {
            return Err(format!(
                "directory page {page} at byte {offset} runs past the end of the file ({file_len} bytes): truncated"
            ));
        }
        let mut bytes = vec![0u8; page_bytes];
        file.read_exact_at(&mut bytes, offset)
            .map_err(|e| format!("reading directory page {page} at byte {offset}: {e}"))?;
        let (next, count) = parse_page(&bytes, entry_words)
            .map_err(|e| format!("directory page {page} at byte {offset}: {e}"))?;
        for i in 0..count {
            let start = (PAGE_HEADER_WORDS + i * entry_words) * 4;
            let w: [u32; 18] = words(&bytes[start..], WordOrder::Big).ok_or("short entry")?;
            match entry(&w, file_len) {
                Ok(record) => dir.records.push(record),
                Err(e) => dir.skipped.push(format!("directory page {page} entry {i}: {e}")),
            }
        }
        if next == 0 {
            break;
        }
        addr = next;
    }
    Ok(dir)
}

/// Checks a page's checksum and returns (next page address, entries used).
fn parse_page(bytes: &[u8], entry_words: usize) -> Result<(u32, usize), String> {
    let word = |i: usize| {
        bytes
            .get(i * 4..i * 4 + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let total = bytes.len() / 4;
    let expected = (PAGE_HEADER_WORDS / 2 + ENTRIES_PER_PAGE * entry_words / 2) as u32;
    if word(0) & 0xFF_FFFF != expected {
        return Err(format!(
            "page length {} w64, expected {expected}",
            word(0) & 0xFF_FFFF
        ));
    }
    // The XOR of every word from the next-page pointer to the end of the page is 0.
    let checksum = (4..total).fold(0u32, |x, i| x ^ word(i));
    if checksum != 0 {
        return Err(format!(
            "checksum fails (XOR {checksum:#010x}, expected 0): corrupt directory"
        ));
    }
    let count = word(5) as usize;
    if count > ENTRIES_PER_PAGE {
        return Err(format!("{count} entries in a page of {ENTRIES_PER_PAGE}"));
    }
    Ok((word(4), count))
}

fn entry(w: &[u32; 18], file_len: u64) -> Result<Record, String> {
    let len = u64::from(w[0] & 0xFF_FFFF) * 8;
    let offset = byte_of(w[1]).ok_or("record at address 0")?;
    if len < RECORD_HEADER_BYTES || offset.saturating_add(len) > file_len {
        return Err(format!(
            "record of {len} bytes at byte {offset} does not fit in the file ({file_len} bytes)"
        ));
    }
    Ok(Record {
        keys: Keys::parse(w),
        payload_offset: offset + RECORD_HEADER_BYTES,
        payload_len: len - RECORD_HEADER_BYTES,
        offset,
        len,
        order: WordOrder::Big,
        // librmn marks erased entries 0xFE (or 0xFF in older versions) in the top byte.
        deleted: w[0] >> 31 == 1,
        extended: None,
        container: Container::Xdf,
    })
}

/// What in an XDF record's header (a copy of its 18-word directory entry, §1.5) differs
/// from the entry; the top byte of word 0 is not compared (the directory marks deletions
/// there, the record keeps its idtyp).
pub fn header_disagrees(record: &Record, bytes: &[u8]) -> Option<String> {
    let Some(w) = words::<18>(bytes, WordOrder::Big) else {
        return Some("it is cut short".into());
    };
    let (len, at) = (u64::from(w[0] & 0xFF_FFFF) * 8, byte_of(w[1]));
    if (len, at) != (record.len, Some(record.offset)) {
        return Some(format!("{len} bytes at {at:?}"));
    }
    (Keys::parse(&w) != record.keys).then(|| "other keys".into())
}
