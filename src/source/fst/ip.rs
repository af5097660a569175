//! ip1/ip2/ip3 level codes (fst.md §3.1): a value and its kind, decoded from either the
//! new style (kind, exponent and mantissa packed in 28 bits) or the old one (ranges of
//! plain integers).

/// A decoded ip: the value and its kind (0 height asl, 1 sigma, 2 pressure, 3 arbitrary,
/// 4 height agl, 5 hybrid, 6 theta, 7 depth, 10 hours, 15 integer, 17 index, 21 GalChen;
/// +16 for the alternative range of a kind; −1 with value −999999 for a code librmn
/// rejects, as its `ConvertIp` reports it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub value: f32,
    pub kind: i8,
}

const INVALID: Level = Level {
    value: -999_999.0,
    kind: -1,
};

/// Valid value range of each new-style kind; outside it the kind+16 reading applies.
fn range(kind: u32) -> Option<(f64, f64)> {
    Some(match kind {
        0 | 4 => (-20_000.0, 100_000.0),
        1 | 5 => (0.0, 1.0),
        2 => (0.0, 1100.0),
        3 => (-4.8e8, 1e10),
        6 => (1.0, 200_000.0),
        7 => (0.0, 20_000.0),
        10 => (0.0, 1e10),
        17 => (1.0, 1e10),
        21 => (0.0, 1e6),
        _ => return None,
    })
}

fn factor(kind: u32) -> f64 {
    match kind {
        17 => -1.0,
        21 => 1e4,
        _ => 1.0,
    }
}

pub fn decode(ip: u32) -> Level {
    if ip > 32_767 {
        return decode_new(ip);
    }
    let (value, kind) = match ip {
        12_001..=32_000 => (5.0 * f64::from(ip - 12_001), 0),
        2000..=12_000 => (f64::from(ip - 2000) / 10_000.0, 1),
        0..=1099 => (f64::from(ip), 2),
        1201..=1399 => (f64::from(ip - 1200) / 20_000.0, 2),
        1400..=1599 => (f64::from(ip - 1400) / 2000.0, 2),
        1600..=1799 => (f64::from(ip - 1600) / 200.0, 2),
        1800..=1999 => (f64::from(ip - 1800) / 20.0, 2),
        1100..=1200 => (f64::from(1200 - ip), 3),
        _ => (f64::from(ip), 3),
    };
    Level {
        value: value as f32,
        kind,
    }
}

fn decode_new(ip: u32) -> Level {
    let kind = (ip >> 24) & 0xF;
    if kind == 15 {
        return Level {
            value: (ip & 0xFF_FFFF) as f32,
            kind: 15,
        };
    }
    let exponent = ((ip >> 20) & 0xF) as i32;
    if exponent == 0 {
        // Never written by librmn's encoder (GEM uses such codes as tags on >> and ^^).
        return INVALID;
    }
    let mut mantissa = f64::from(ip & 0xF_FFFF);
    if mantissa > 1_000_000.0 {
        mantissa = -(mantissa - 1_000_000.0);
    }
    let scaled = mantissa / 10f64.powi(exponent - 4);
    let mut kind_out = kind;
    let mut value = scaled / factor(kind);
    if let (Some((lo, hi)), Some(_)) = (range(kind), range(kind + 16))
        && (value < lo || value > hi)
    {
        kind_out = kind + 16;
        value = scaled / factor(kind + 16);
    }
    Level {
        value: value as f32,
        kind: kind_out as i8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_style_values_match_the_fixture_reference() {
        // ip1 / value / kind triples from fixtures/fst/rsf/README.md (librmn ConvertIp).
        for (ip, value, kind) in [
            (39_945_888, 1000.0, 2),
            (41_744_464, 850.0, 2),
            (41_394_464, 500.0, 2),
            (8_488_608, 10.0, 0),
            (76_696_048, 1.5, 4),
            (95_366_840, 0.995, 5),
            (108_303_328, 300.0, 6),
            (60_468_832, 7.0, 3),
            // Exponent 0: librmn 19.5's ConvertIp says invalid (checked through rpnpy).
            (69_901, -999_999.0, -1),
            (0x100_0005, -999_999.0, -1),
            (0xF00_0005, 5.0, 15),
        ] {
            assert_eq!(decode(ip), Level { value, kind }, "ip1 {ip}");
        }
    }

    #[test]
    fn old_style_ranges() {
        assert_eq!(decode(7000), Level { value: 0.5, kind: 1 });
        assert_eq!(
            decode(500),
            Level {
                value: 500.0,
                kind: 2
            }
        );
        assert_eq!(decode(12_011), Level { value: 50.0, kind: 0 });
        assert_eq!(decode(1150), Level { value: 50.0, kind: 3 });
        assert_eq!(decode(0), Level { value: 0.0, kind: 2 });
    }
}
