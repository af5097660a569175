//! Every record of the librmn 20 reference files (`fixtures/fst/rsf`, see its README) decodes
//! to exactly the bytes librmn returned; and `unpack`'s type and size rules.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fst/rsf")
}

/// The dtype and data bytes of a C-order `.npy` file.
fn npy(path: &Path) -> (String, Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
    let (len, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
    };
    let header = std::str::from_utf8(&b[start..start + len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header
        .split("'descr': '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    (descr.to_string(), b[start + len..].to_vec())
}

fn npy_descr(element: Element) -> &'static str {
    match element {
        Element::F32 => "<f4",
        Element::F64 => "<f8",
        Element::U8 => "|u1",
        Element::U32 => "<u4",
        Element::U64 => "<u8",
        Element::I32 => "<i4",
        Element::I64 => "<i8",
        Element::C64 => "<c8",
        Element::C128 => "<c16",
    }
}

/// Decodes every record of `file` and compares it with librmn's; returns the datyps seen.
fn check_file(file: &str, order: WordOrder, xdf: bool) -> Vec<u8> {
    let reference: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("reference.json")).unwrap()).unwrap();
    let data = std::fs::read(fixtures().join(file)).unwrap();
    let records = reference[file]["records"].as_array().unwrap();
    let mut datyps = Vec::new();
    for r in records {
        let field = |key: &str| r[key].as_u64().unwrap_or_else(|| panic!("{key}"));
        let name = format!("{file} record {} {}", field("index"), r["nomvar"]);
        let (offset, len) = if xdf {
            // 18 directory-key words and 2 aux words precede the data.
            (field("file_offset") + 80, field("total_stored_bytes") - 80)
        } else {
            // Start of record (16 bytes) and metadata before; end of record (12 bytes) after.
            let meta = field("num_meta_bytes");
            (
                field("file_offset") + 16 + meta,
                field("total_stored_bytes") - 16 - meta - 12,
            )
        };
        let payload = &data[offset as usize..(offset + len) as usize];
        let p = Packing {
            datyp: field("datyp") as u8,
            nbits: field("nbits") as u8,
            dasiz: field("dasiz") as u8,
            ni: field("ni") as u32,
            nj: field("nj") as u32,
            nk: field("nk") as u32,
        };
        let element = p.element().unwrap();
        let mut got = unpack(&p, payload, order).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.len() as u64, p.decoded_bytes().unwrap(), "{name}");
        let (descr, expected) = npy(&fixtures().join(r["npy"].as_str().unwrap()));
        assert_eq!(descr, npy_descr(element), "{name}: element type");
        if p.datyp & MISSING_FLAG != 0 {
            // librmn put its float flag, −1e38, at the one missing point.
            assert_eq!(mark_missing(element, &mut got, -1e38), 1, "{name}");
        }
        assert!(got == expected, "{name}: decoded bytes differ from librmn's");
        datyps.push(p.datyp);
    }
    datyps.sort_unstable();
    datyps.dedup();
    datyps
}

/// Every datyp of the reference files, in order.
const REFERENCE_DATYPS: [u8; 12] = [1, 2, 4, 5, 6, 7, 8, 65, 129, 130, 133, 134];

#[test]
fn rsf_sample_matches_librmn() {
    assert_eq!(
        check_file("sample.rsf", WordOrder::Little, false),
        REFERENCE_DATYPS
    );
}

#[test]
fn xdf_sample_matches_librmn() {
    assert_eq!(
        check_file("sample_xdf.fst", WordOrder::Big, true),
        REFERENCE_DATYPS
    );
}

#[test]
fn multisegment_rsf_matches_librmn() {
    assert_eq!(check_file("multiseg.rsf", WordOrder::Little, false), [5]);
}

fn packing(datyp: u8, nbits: u8, dasiz: u8) -> Packing {
    Packing {
        datyp,
        nbits,
        dasiz,
        ni: 4,
        nj: 3,
        nk: 1,
    }
}

#[test]
fn element_types_follow_datyp_nbits_and_dasiz() {
    use Element::*;
    let cases = [
        (0, 32, 32, F32),
        (0, 64, 64, F64),
        (1, 16, 32, F32),
        (1, 16, 64, F64),
        (65, 12, 0, F32),
        (2, 8, 32, U32),
        (2, 32, 64, U64),
        (2, 64, 64, U64),
        (3, 8, 0, U8),
        (4, 16, 32, I32),
        (4, 64, 64, I64),
        (5, 32, 32, F32),
        (5, 64, 64, F64),
        (5, 64, 32, F64),
        (6, 16, 32, F32),
        (7, 8, 8, U8),
        (8, 32, 32, C64),
        (8, 64, 64, C128),
        (129, 12, 32, F32),
        (130, 16, 32, U32),
        (130, 16, 64, U32),
        (133, 16, 32, F32),
        (134, 12, 32, F32),
        (134 | 64, 16, 32, F32),
    ];
    for (datyp, nbits, dasiz, element) in cases {
        assert_eq!(
            packing(datyp, nbits, dasiz).element().unwrap(),
            element,
            "{datyp}/{nbits}/{dasiz}"
        );
    }
}

#[test]
fn undecodable_packings_are_refused_before_reading() {
    let unsupported = [
        (0, 16),
        (5, 0),
        (5, 65),
        (5, 48),
        (2, 40),
        (129, 17),
        (130, 24),
        (134, 32),
        (133, 64),
        (132, 16),
        (135, 8),
        (136, 32),
    ];
    for (datyp, nbits) in unsupported {
        let p = packing(datyp, nbits, 32);
        assert!(
            matches!(p.element(), Err(UnpackError::Unsupported { .. })),
            "{datyp}/{nbits}"
        );
        assert!(matches!(
            unpack(&p, &[0; 64], WordOrder::Big),
            Err(UnpackError::Unsupported { .. })
        ));
    }
    for datyp in [9, 63, 9 + 64, 9 + 128] {
        let p = packing(datyp, 16, 32);
        let err = unpack(&p, &[0; 64], WordOrder::Big).unwrap_err();
        assert!(matches!(err, UnpackError::UnknownDatyp { .. }));
        assert!(err.to_string().contains(&datyp.to_string()), "{err}");
    }
}

#[test]
fn sizes_are_checked_for_overflow() {
    let huge = Packing {
        ni: u32::MAX,
        nj: u32::MAX,
        nk: u32::MAX,
        ..packing(5, 32, 32)
    };
    assert!(matches!(huge.values(), Err(UnpackError::TooLarge { .. })));
    assert!(matches!(
        unpack(&huge, &[0; 64], WordOrder::Big),
        Err(UnpackError::TooLarge { .. })
    ));
    // 2^62 complex doubles of 16 bytes overflow u64.
    let wide = Packing {
        ni: 1 << 31,
        nj: 1 << 31,
        nk: 1,
        ..packing(8, 64, 64)
    };
    assert_eq!(wide.values().unwrap(), 1 << 62);
    assert!(matches!(wide.decoded_bytes(), Err(UnpackError::TooLarge { .. })));
    assert_eq!(packing(8, 32, 32).decoded_bytes().unwrap(), 12 * 8);
}

/// A record claiming 2^60 values with a small payload is an error, not an allocation, for
/// every kind of packing. (An allocation would abort the test process.)
#[test]
fn absurd_sizes_meet_a_small_payload() {
    let payload = [0xFFu8; 4096];
    for (datyp, nbits) in [
        (0, 32),
        (1, 16),
        (2, 12),
        (2, 64),
        (3, 8),
        (4, 32),
        (5, 64),
        (6, 16),
        (7, 8),
        (8, 32),
    ] {
        let p = Packing {
            ni: 1 << 20,
            nj: 1 << 20,
            nk: 1 << 20,
            ..packing(datyp, nbits, 32)
        };
        for order in [WordOrder::Big, WordOrder::Little] {
            match unpack(&p, &payload, order) {
                Err(UnpackError::Truncated {
                    needed, available, ..
                }) => {
                    assert_eq!(available, 1024);
                    assert!(needed > 1 << 50, "{datyp}: {needed}");
                }
                other => panic!("datyp {datyp}: {other:?}"),
            }
        }
    }
    // Turbo streams are 2-D, 2^30 × 2^30 here, with valid headers: the stream must hold the
    // bits such a grid needs even if nothing in it varies.
    const PARALLELOGRAM16: u32 = 4 | 1 << 4 | 3 << 7 | 16 << 10; // step 3, 16 bits
    const PARALLELOGRAM32: u32 = 5 | 1 << 4 | 3 << 7 | 23 << 10; // armn_compress32, 23 bits
    let side = 1u32 << 30;
    let float_packer = [0xEFF0_0000 | 15 << 16 | 127 << 8, 0, 0];
    let cases: [(u8, u32, &[u32]); 4] = [
        (129, side, &[0xFFF0_0000, 4096 << 16, 0, 16 << 8, PARALLELOGRAM16]),
        (130, side, &[PARALLELOGRAM16]),
        (133, side, &[PARALLELOGRAM32, 0, 0]),
        // float_packer's header counts the values in a u32: a 2^15 × 2^15 grid.
        (134, 1 << 15, &[float_packer[0], 0, 1 << 30, PARALLELOGRAM16]),
    ];
    for (datyp, side, header) in cases {
        let mut words = vec![1024u32];
        words.extend(header);
        words.resize(1024, u32::MAX); // every tile header says 7 bits
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let p = Packing {
            ni: side,
            nj: side,
            nk: 1,
            ..packing(datyp, if datyp == 133 { 32 } else { 16 }, 32)
        };
        match unpack(&p, &bytes, WordOrder::Big) {
            Err(UnpackError::Truncated {
                needed, available, ..
            }) => {
                assert_eq!(available, 1024);
                assert!(needed > 1 << 20, "{datyp}: {needed}");
            }
            other => panic!("datyp {datyp}: {other:?}"),
        }
    }
}

#[test]
fn truncated_payloads_say_what_was_needed() {
    let p = packing(2, 16, 32); // 12 values of 16 bits = 6 words
    let err = unpack(&p, &[0; 20], WordOrder::Little).unwrap_err();
    assert!(matches!(
        err,
        UnpackError::Truncated {
            datyp: 2,
            needed: 6,
            available: 5
        }
    ));
    assert_eq!(
        err.to_string(),
        "datyp 2: payload too short: 6 32-bit words needed, 5 available"
    );
    // A trailing partial word does not count; extra words are ignored.
    assert!(unpack(&p, &[0; 23], WordOrder::Little).is_err());
    assert_eq!(unpack(&p, &[0; 27], WordOrder::Little).unwrap(), vec![0; 48]);
    assert!(matches!(
        unpack(&packing(130, 16, 32), &[], WordOrder::Big),
        Err(UnpackError::Truncated {
            needed: 1,
            available: 0,
            ..
        })
    ));
}

#[test]
fn empty_records_decode_to_nothing() {
    let p = Packing {
        nk: 0,
        ..packing(1, 16, 32)
    };
    assert_eq!(unpack(&p, &[], WordOrder::Big).unwrap(), Vec::<u8>::new());
}
