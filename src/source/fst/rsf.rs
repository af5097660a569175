//! The RSF container (fst.md §4): a sequence of segments, each with its own directory
//! record whose entries carry the same key words as XDF (plus optional JSON). Words are in
//! the writer's byte order, 64-bit values are [high, low] word pairs, offsets are bytes
//! from the segment start.

use super::file::Container;
use super::file::ReadAt;
use super::keys::Keys;
use super::packing::WordOrder;
use super::record::{Directory, Record, words};

const SOS_BYTES: u64 = 72;
const SOR_BYTES: u64 = 16;
const EOR_BYTES: u64 = 12;
const ENTRY_BYTES: usize = 32;
const RT_SOS: u32 = 3;
const RT_DIRECTORY: u32 = 6;
/// A directory larger than this is not believed (2^31 records of 108 bytes would be 200 GiB).
const MAX_DIRECTORY: u64 = 1 << 30;

pub fn is_rsf(head: &[u8]) -> bool {
    head.get(16..24) == Some(b"RSF0STDF")
}

/// The byte order, from the first start-of-record word `rt | rlm<<8 | 0xFE<<24`.
fn order_of(head: &[u8]) -> Option<WordOrder> {
    match (head.first(), head.get(3)) {
        (_, Some(0xFE)) => Some(WordOrder::Little),
        (Some(0xFE), _) => Some(WordOrder::Big),
        _ => None,
    }
}

fn w64(hi: u32, lo: u32) -> u64 {
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Walks every closed segment and lists its directory entries, deleted ones flagged.
pub fn read<R: ReadAt + ?Sized>(file: &R, file_len: u64) -> Result<Directory, String> {
    let mut dir = Directory::default();
    let mut offset = 0u64;
    let mut order = None;
    while offset + SOS_BYTES <= file_len {
        let mut sos = [0u8; SOS_BYTES as usize];
        file.read_exact_at(&mut sos, offset)
            .map_err(|e| format!("reading the segment at byte {offset}: {e}"))?;
        let o = *order
            .get_or_insert(order_of(&sos).ok_or("no start-of-record marker at byte 0: not an RSF file")?);
        let s: [u32; 18] = words(&sos, o).ok_or("short segment header")?;
        if s[0] & 0xFF != RT_SOS || !is_rsf(&sos) || s[6] != 0xDEAD_BEEF {
            return Err(format!(
                "no segment header at byte {offset}: corrupt or truncated"
            ));
        }
        let (sseg, vdir, vdirs) = (w64(s[9], s[10]), w64(s[11], s[12]), w64(s[13], s[14]));
        if sseg == 0 {
            // librmn is still writing this segment (or crashed while writing it): its
            // directory does not exist yet.
            dir.skipped.push(format!(
                "segment at byte {offset} is still open for writing: its records are not listed"
            ));
            break;
        }
        if sseg < SOS_BYTES || offset.saturating_add(sseg) > file_len {
            dir.skipped.push(format!(
                "segment at byte {offset} claims {sseg} bytes, past the end of the file ({file_len}): truncated, its records are not listed"
            ));
            break;
        }
        if vdirs > 0 {
            if vdirs > MAX_DIRECTORY || vdir.saturating_add(vdirs) > sseg {
                return Err(format!(
                    "segment at byte {offset}: directory of {vdirs} bytes at {vdir} lies outside the segment"
                ));
            }
            let mut bytes = vec![0u8; vdirs as usize];
            file.read_exact_at(&mut bytes, offset + vdir)
                .map_err(|e| format!("reading the directory at byte {}: {e}", offset + vdir))?;
            directory(&bytes, o, offset, sseg, &mut dir)
                .map_err(|e| format!("directory of the segment at byte {offset}: {e}"))?;
        }
        offset += sseg;
    }
    if order.is_none() {
        return Err(format!(
            "the file ends at byte {file_len}, inside the first {SOS_BYTES}-byte segment header"
        ));
    }
    if offset < file_len && offset + SOS_BYTES > file_len {
        dir.skipped.push(format!(
            "{} bytes at byte {offset} are no whole segment header: truncated",
            file_len - offset
        ));
    }
    Ok(dir)
}

/// Parses one directory record (`bytes`) of the segment at `segment` (`sseg` bytes long).
fn directory(
    bytes: &[u8],
    order: WordOrder,
    segment: u64,
    sseg: u64,
    dir: &mut Directory,
) -> Result<(), String> {
    let head: [u32; 5] = words(bytes, order).ok_or("shorter than its header")?;
    if head[0] & 0xFF != RT_DIRECTORY {
        return Err(format!(
            "record type {} where a directory (6) belongs",
            head[0] & 0xFF
        ));
    }
    let count = head[4] as usize;
    if count > bytes.len() / ENTRY_BYTES {
        return Err(format!("{count} entries cannot fit in {} bytes", bytes.len()));
    }
    let mut at = SOR_BYTES as usize + 4;
    for i in 0..count {
        let e: [u32; 8] = words(bytes.get(at..).unwrap_or_default(), order)
            .ok_or_else(|| format!("entry {i} runs past the directory"))?;
        let ml = e[6];
        let dir_meta = if ml >> 16 != 0 { ml >> 16 } else { ml & 0xFFFF } as usize;
        let meta_at = at + ENTRY_BYTES;
        let meta = bytes
            .get(meta_at..meta_at + dir_meta * 4)
            .ok_or_else(|| format!("entry {i}: metadata runs past the directory"))?;
        at = meta_at + dir_meta * 4;
        match entry(&e, meta, order, segment, sseg) {
            Ok(record) => dir.records.push(record),
            Err(why) => dir
                .skipped
                .push(format!("segment at byte {segment}, entry {i}: {why}")),
        }
    }
    Ok(())
}

fn entry(e: &[u32; 8], meta: &[u8], order: WordOrder, segment: u64, sseg: u64) -> Result<Record, String> {
    let (wa, rl) = (w64(e[0], e[1]), w64(e[2], e[3]));
    let record_meta = u64::from(e[6] & 0xFFFF) * 4;
    let m: [u32; 19] = words(meta, order).ok_or("fewer than 19 metadata words")?;
    let keys: &[u32; 18] = m[1..].try_into().map_err(|_| "metadata words")?;
    if wa.saturating_add(rl) > sseg || rl < SOR_BYTES + record_meta + EOR_BYTES {
        return Err(format!(
            "record of {rl} bytes at {wa} does not fit in its segment"
        ));
    }
    let (num_keys, extra) = (((m[2] >> 16) & 0xFF) as usize, (m[2] & 0xFFFF) as usize);
    let extended = (extra > 0)
        .then(|| meta.get(num_keys * 4..(num_keys + extra) * 4))
        .flatten()
        .map(json_text);
    let offset = segment + wa;
    Ok(Record {
        keys: Keys::parse(keys),
        payload_offset: offset + SOR_BYTES + record_meta,
        payload_len: rl - SOR_BYTES - record_meta - EOR_BYTES,
        offset,
        len: rl,
        order,
        deleted: m[0] & 0xFF == 0x80,
        extended,
        container: Container::Rsf,
    })
}

/// The NUL-terminated JSON text of an entry's extension words. librmn stores it as a byte
/// string in memory, so on disk its bytes are in file order whatever the word order.
fn json_text(raw: &[u8]) -> String {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// What in an RSF record's start (its SOR and metadata, which the directory entry copies)
/// differs from the entry.
pub fn header_disagrees(record: &Record, bytes: &[u8]) -> Option<String> {
    let sor: Option<[u32; 4]> = words(bytes, record.order);
    let meta: Option<[u32; 19]> = words(bytes.get(SOR_BYTES as usize..).unwrap_or_default(), record.order);
    let (Some(sor), Some(meta)) = (sor, meta) else {
        return Some("it is cut short".into());
    };
    let (rt, rlm, zr) = (sor[0] & 0xFF, (sor[0] >> 8) & 0xFFFF, sor[0] >> 24);
    let rl = w64(sor[1], sor[2]);
    if (rt, zr) != (1, 0xFE) {
        return Some(format!("no data record starts there (type {rt}, marker {zr:#x})"));
    }
    if (u64::from(rlm) * 4 + SOR_BYTES, rl) != (record.header_len(), record.len) {
        return Some(format!("{rl} bytes with {rlm} metadata words"));
    }
    let mut keys = [0u32; 18];
    keys.copy_from_slice(&meta[1..]);
    (Keys::parse(&keys) != record.keys).then(|| "other keys".into())
}
