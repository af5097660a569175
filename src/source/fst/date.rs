//! CMC date-time stamps (fst.md §3.2). Three encodings share one u32: the "new" one counts
//! 5-second steps since 1980, the "old" one is decimal `MMDDYYHHR` (1900–1999, whole hours),
//! and the "extended" one (negative as i32) counts hours since year 0 for climate runs.

/// Unix time of 1980-01-01 00:00 UTC, the origin of new-style stamps.
const EPOCH_1980: i64 = 315_532_800;
const NEW_STYLE_MIN: u32 = 123_200_000;
/// Offset of extended stamps, which are negative as i32.
const EXTENDED_OFFSET: u32 = 3_000_000_000;
/// Julian day number that extended stamps count hours from (librmn `newdate`), and the
/// Julian day number of 1970-01-01.
const EXTENDED_JDN: i64 = 1_721_060;
const UNIX_JDN: i64 = 2_440_588;

/// A CMC stamp as stored (after undoing the directory's octal packing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp(pub u32);

impl Stamp {
    /// Seconds since 1970-01-01 UTC, or `None` for the "no date" stamps and invalid ones.
    pub fn to_unix(self) -> Option<i64> {
        let s = self.0;
        if matches!(s, 0 | 10_101_011 | 101_010_101) {
            return None;
        }
        if s as i32 >= NEW_STYLE_MIN as i32 {
            let n = i64::from(s - NEW_STYLE_MIN);
            return Some(EPOCH_1980 + (n / 10 * 8 + n % 10) * 5);
        }
        if (s as i32) > 0 {
            let (month, day) = (s / 10_000_000, s / 100_000 % 100);
            let (year, hour) = (1900 + s / 1000 % 100, s / 10 % 100);
            if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 {
                return None;
            }
            let days = days_from_civil(i64::from(year), month, day);
            return Some(days * 86_400 + i64::from(hour) * 3600);
        }
        let u = i64::from(s.wrapping_sub(EXTENDED_OFFSET));
        let hours = u / 10 * 8 + u % 10;
        Some((EXTENDED_JDN - UNIX_JDN) * 86_400 + hours * 3600)
    }

    /// This stamp moved by `seconds` (how librmn's `incdatr` derives dateo from datev).
    /// `None` for a "no date" stamp.
    pub fn add_seconds(self, seconds: i64) -> Option<Stamp> {
        if seconds == 0 {
            return Some(self);
        }
        Stamp::from_unix(self.to_unix()?.checked_add(seconds)?)
    }

    /// The stamp librmn writes for an instant: old style for whole hours of 1900–1999,
    /// new style from 1980 on, extended otherwise.
    pub fn from_unix(t: i64) -> Option<Stamp> {
        let (year, month, day) = civil_from_days(t.div_euclid(86_400));
        let in_day = t.rem_euclid(86_400);
        if (1900..2000).contains(&year) && in_day % 3600 == 0 {
            let packed = i64::from(month) * 10_000_000
                + i64::from(day) * 100_000
                + (year - 1900) * 1000
                + in_day / 3600 * 10;
            return u32::try_from(packed).ok().map(Stamp);
        }
        if t >= EPOCH_1980 && year < 2236 {
            let n = (t - EPOCH_1980).div_euclid(5);
            let packed = n / 8 * 10 + n % 8 + i64::from(NEW_STYLE_MIN);
            return u32::try_from(packed).ok().map(Stamp);
        }
        let hours = (t - (EXTENDED_JDN - UNIX_JDN) * 86_400).div_euclid(3600);
        let packed = hours / 8 * 10 + hours % 8;
        u32::try_from(packed)
            .ok()
            .map(|p| Stamp(p.wrapping_add(EXTENDED_OFFSET)))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(y: i64, mo: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600
    }

    #[test]
    fn new_style_counts_five_seconds_since_1980() {
        // fst.md: 470646800 is 2024-01-15 12:00, 470647700 one hour later.
        assert_eq!(Stamp(470_646_800).to_unix(), Some(unix(2024, 1, 15, 12)));
        assert_eq!(Stamp(470_647_700).to_unix(), Some(unix(2024, 1, 15, 13)));
        assert_eq!(Stamp(470_652_200).to_unix(), Some(unix(2024, 1, 15, 18)));
    }

    #[test]
    fn old_style_is_decimal_month_day_year_hour() {
        // 1995-07-04 06:00, run digit 0
        assert_eq!(Stamp(70_495_060).to_unix(), Some(unix(1995, 7, 4, 6)));
        assert_eq!(Stamp(0).to_unix(), None);
        assert_eq!(Stamp(10_101_011).to_unix(), None);
    }

    #[test]
    fn moved_stamps_take_the_style_librmn_writes() {
        let s = Stamp(470_648_600); // 14:00
        assert_eq!(s.add_seconds(-2 * 3600), Some(Stamp(470_646_800)));
        let old = Stamp(70_495_060);
        let moved = old.add_seconds(-7 * 3600).unwrap();
        assert_eq!(moved, Stamp(70_395_230)); // 1995-07-03 23:00, old style
        // Half past: only the new style has minutes.
        let half = old.add_seconds(1800).unwrap();
        assert!(half.0 >= NEW_STYLE_MIN);
        assert_eq!(half.to_unix(), Some(unix(1995, 7, 4, 6) + 1800));
        let ext = Stamp(EXTENDED_OFFSET.wrapping_add(1_234_567));
        let back = ext.add_seconds(3 * 3600).unwrap();
        assert_eq!(back.to_unix().unwrap() - ext.to_unix().unwrap(), 3 * 3600);
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-800_000, -1, 0, 1, 19_000, 3_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1980, 1, 1) * 86_400, EPOCH_1980);
    }
}
