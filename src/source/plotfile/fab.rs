//! Value types (AMReX's RealDescriptor) and the per-FAB header line of VisMF version 1
//! (plotfile.md §4.1).

use super::gather::ElemType;
use super::text::{Cursor, IBox};
use crate::tree::{DataType, Endian};

/// Parses `((8, (64 11 52 0 1 12 0 1023)),(8, (8 7 6 5 4 3 2 1)))`: the format words say f32
/// or f64, the byte-order array little or big endian. Anything else (other float layouts,
/// AMReX's never-used `2 1 4 3` orders) is refused.
pub fn real_descriptor(text: &str) -> Result<ElemType, String> {
    let numbers: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap_or(-1))
        .collect();
    let bad = || format!("unsupported RealDescriptor '{}'", text.trim());
    let (&nformat, rest) = numbers.split_first().ok_or_else(bad)?;
    if nformat != 8 || rest.len() < 9 {
        return Err(bad());
    }
    let (format, rest) = rest.split_at(8);
    let (&norder, order) = rest.split_first().ok_or_else(bad)?;
    let data_type = match (format[0], format[1], format[2]) {
        (64, 11, 52) => DataType::Float64,
        (32, 8, 23) => DataType::Float32,
        _ => return Err(bad()),
    };
    let n = data_type.size() as i64;
    if norder != n || order.len() != n as usize {
        return Err(bad());
    }
    let little = order.iter().rev().zip(1..).all(|(o, i)| *o == i);
    let big = order.iter().zip(1..).all(|(o, i)| *o == i);
    let endian = match (little, big) {
        (true, _) => Endian::Little,
        (_, true) => Endian::Big,
        _ => return Err(bad()),
    };
    Ok(ElemType { data_type, endian })
}

/// The `FAB <descriptor><box> <ncomp>` line that starts a version-1 FAB record.
#[derive(Clone, Debug, PartialEq)]
pub struct FabHeader {
    pub real: ElemType,
    pub fab_box: IBox,
    pub ncomp: usize,
    /// Bytes of the line including its newline: the data start this far past the record.
    pub len: u64,
}

/// Parses the FAB header at the start of `bytes` (the first bytes of a FAB record).
pub fn fab_header(bytes: &[u8]) -> Result<FabHeader, String> {
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no end of line in the FAB header")?;
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| "FAB header is not text")?;
    if line.starts_with("FAB:") {
        return Err("pre-AMReX BoxLib FAB format (FAB:) is not supported".into());
    }
    let rest = line.strip_prefix("FAB ").ok_or_else(|| {
        format!(
            "not a FAB header: '{}'",
            line.chars().take(24).collect::<String>()
        )
    })?;
    let split = balanced_end(rest).ok_or("unbalanced RealDescriptor in FAB header")?;
    let real = real_descriptor(&rest[..split])?;
    let mut c = Cursor::new(&rest[split..], "FAB header");
    let fab_box = c.ibox()?;
    let ncomp = c.int("the component count")?;
    Ok(FabHeader {
        real,
        fab_box,
        ncomp: usize::try_from(ncomp).map_err(|_| "negative component count")?,
        len: end as u64 + 1,
    })
}

/// Index just past the parenthesised group that starts `text`.
fn balanced_end(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_of_every_kind() {
        let f64le = real_descriptor("((8, (64 11 52 0 1 12 0 1023)),(8, (8 7 6 5 4 3 2 1)))").unwrap();
        assert_eq!(
            (f64le.data_type, f64le.endian),
            (DataType::Float64, Endian::Little)
        );
        let f32be = real_descriptor("((8, (32 8 23 0 1 9 0 127)),(4, (1 2 3 4)))").unwrap();
        assert_eq!((f32be.data_type, f32be.endian), (DataType::Float32, Endian::Big));
        let f32le = real_descriptor("((8, (32 8 23 0 1 9 0 127)),(4, (4 3 2 1)))").unwrap();
        assert_eq!(f32le.endian, Endian::Little);
        assert!(real_descriptor("((8, (32 8 23 0 1 9 0 127)),(4, (2 1 4 3)))").is_err());
        assert!(real_descriptor("((8, (16 5 10 0 1 6 0 15)),(2, (2 1)))").is_err());
        assert!(real_descriptor("garbage").is_err());
    }

    #[test]
    fn fab_header_line() {
        let record = b"FAB ((8, (64 11 52 0 1 12 0 1023)),(8, (8 7 6 5 4 3 2 1)))((-1,0,0) (16,15,15) (0,0,0)) 3\n\x01\x02";
        let h = fab_header(record).unwrap();
        assert_eq!(h.real.data_type, DataType::Float64);
        assert_eq!(h.fab_box.lo, vec![-1, 0, 0]);
        assert_eq!(h.ncomp, 3);
        assert_eq!(h.len as usize, record.len() - 2);
        assert!(fab_header(b"FAB:1 2 3\n").unwrap_err().contains("BoxLib"));
        assert!(fab_header(b"\0\0\0\0").is_err());
        assert!(fab_header(b"FAB ((8, (64 11 52 0 1 12 0 1023)),(8, (8 7 6 5 4 3 2 1))\n").is_err());
    }
}
