//! `.npy` headers: what numpy writes (headers copied from numpy 2.4 output), and refusals.

use super::super::npy::{DType, Endian, Kind, NpyError, header_len, parse};
use super::super::testutil::npy;

fn v1(dict: &str) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

fn padded(dict: &str) -> String {
    let total = (10 + dict.len() + 1).next_multiple_of(64);
    format!("{dict}{}\n", " ".repeat(total - 11 - dict.len()))
}

#[test]
fn headers_numpy_writes() {
    let cases: &[(&str, DType, &[u64], bool, u64)] = &[
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            DType {
                endian: Endian::Little,
                kind: Kind::Float,
                size: 4,
            },
            &[2, 3],
            false,
            24,
        ),
        (
            "{'descr': '>i2', 'fortran_order': False, 'shape': (5,), }",
            DType {
                endian: Endian::Big,
                kind: Kind::Int,
                size: 2,
            },
            &[5],
            false,
            10,
        ),
        (
            "{'descr': '|b1', 'fortran_order': False, 'shape': (), }",
            DType {
                endian: Endian::NotApplicable,
                kind: Kind::Bool,
                size: 1,
            },
            &[],
            false,
            1,
        ),
        (
            "{'descr': '<c16', 'fortran_order': True, 'shape': (2, 3), }",
            DType {
                endian: Endian::Little,
                kind: Kind::Complex,
                size: 16,
            },
            &[2, 3],
            true,
            96,
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 7), }",
            DType {
                endian: Endian::NotApplicable,
                kind: Kind::UInt,
                size: 1,
            },
            &[0, 7],
            false,
            0,
        ),
    ];
    for (dict, dtype, shape, fortran, nbytes) in cases {
        let bytes = v1(&padded(dict));
        assert_eq!(bytes.len(), 128, "{dict}");
        let h = parse(&bytes, 128 + nbytes).unwrap_or_else(|e| panic!("{dict}: {e}"));
        assert_eq!(
            (&h.dtype, h.shape.as_slice(), h.fortran_order),
            (dtype, *shape, *fortran)
        );
        assert_eq!((h.data_offset, h.data_len, h.version), (128, *nbytes, (1, 0)));
    }
}

#[test]
fn versions_2_and_3_have_a_u32_length() {
    for major in [2u8, 3] {
        let dict = "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }";
        let total = (12 + dict.len() + 1).next_multiple_of(64);
        let text = format!("{dict}{}\n", " ".repeat(total - 13 - dict.len()));
        let mut bytes = vec![0x93, b'N', b'U', b'M', b'P', b'Y', major, 0];
        bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
        bytes.extend_from_slice(text.as_bytes());
        assert_eq!(header_len(&bytes), Ok(128));
        let h = parse(&bytes, 144).expect("parse");
        assert_eq!((h.version, h.data_offset, h.data_len), ((major, 0), 128, 16));
        assert_eq!(h.dtype.zarr_name(), "uint64");
    }
}

#[test]
fn key_order_quotes_and_python2_longs_are_accepted() {
    let text = padded(r#"{"shape": (3L, 4L), "fortran_order": False, "descr": "<f8"}"#);
    let h = parse(&v1(&text), 1000).expect("parse");
    assert_eq!(
        (h.shape.as_slice(), h.dtype.zarr_name()),
        (&[3u64, 4][..], "float64")
    );
    let built = npy("<f2", &[3], false, &[0u8; 6]);
    let h = parse(&built, built.len() as u64).expect("testutil npy");
    assert_eq!((h.data_offset, h.data_len), (128, 6));
}

#[test]
fn every_supported_dtype_and_some_refused_ones() {
    for (descr, zarr) in [
        ("|b1", "bool"),
        ("|i1", "int8"),
        ("<i2", "int16"),
        (">i4", "int32"),
        ("<i8", "int64"),
        ("|u1", "uint8"),
        ("<u2", "uint16"),
        ("<u4", "uint32"),
        ("<u8", "uint64"),
        ("<f2", "float16"),
        ("<f4", "float32"),
        (">f8", "float64"),
        ("<c8", "complex64"),
        ("<c16", "complex128"),
    ] {
        assert_eq!(DType::parse(descr).map(|d| d.zarr_name()), Ok(zarr), "{descr}");
    }
    for descr in [
        "<U10", "|O", "<f16", "<c32", "<M8[ns]", "|S5", "|V8", "=f4", "|f4", "f4", "<i3", "<f04", "",
    ] {
        assert!(
            matches!(DType::parse(descr), Err(NpyError::Unsupported(_))),
            "{descr}"
        );
    }
    let structured = padded("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }");
    assert!(matches!(
        parse(&v1(&structured), 1000),
        Err(NpyError::Unsupported(_))
    ));
    let strings = padded("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }");
    assert_eq!(
        parse(&v1(&strings), 1000),
        Err(NpyError::Unsupported("<U3".into()))
    );
}

#[test]
fn bad_headers_are_refused_with_reasons() {
    let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    let bad_dicts = [
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x",
        "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}",
        "['descr', '<f4']",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
    ];
    for dict in bad_dicts {
        assert!(parse(&v1(&padded(dict)), 1 << 20).is_err(), "{dict}");
    }
    // No final newline.
    let mut text = padded(ok);
    text.pop();
    text.push(' ');
    assert!(parse(&v1(&text), 1000).is_err());
    // Magic, version, a header longer than the member, a payload that does not fit.
    let good = v1(&padded(ok));
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(parse(&bad, 1000), Err(NpyError::Magic));
    bad = good.clone();
    bad[6] = 4;
    assert_eq!(parse(&bad, 1000), Err(NpyError::Version(4, 0)));
    assert!(matches!(parse(&good, 100), Err(NpyError::Short { .. })));
    assert!(matches!(
        parse(&good, 128 + 7),
        Err(NpyError::Payload { needed: 8, .. })
    ));
    assert!(parse(&good, 128 + 8).is_ok());
    let mut huge = b"\x93NUMPY\x02\x00".to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(header_len(&huge), Err(NpyError::HeaderTooLong(u32::MAX as usize)));
    let overflow = padded(
        "{'descr': '<c16', 'fortran_order': False, 'shape': (18446744073709551615, 18446744073709551615, 2), }",
    );
    assert!(matches!(
        parse(&v1(&overflow), u64::MAX),
        Err(NpyError::Shape { .. })
    ));
    // An empty array is 0 bytes, but its chunk counts the empty dimension as 1: a shape
    // whose chunk would not fit in u64 is refused (fuzz finding, wds_tar).
    let empty = |shape: &str| {
        padded(&format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
        ))
    };
    assert!(matches!(
        parse(&v1(&empty("(1099511627776, 1099511627776, 0)")), 1 << 20),
        Err(NpyError::Shape { .. })
    ));
    assert_eq!(
        parse(&v1(&empty("(1000, 0)")), 1 << 20).map(|h| h.data_len),
        Ok(0)
    );
}
