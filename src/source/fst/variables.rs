//! Records grouped into variables the way fstd2nc groups them (fst.md §5), so that the
//! mount and `fstd2nc.Buffer(f).to_xarray()` show the same names, dimensions and values.
//!
//! A variable is the records sharing (nomvar, etiket, typvar, ni, nj, nk, ip1 kind, grid);
//! its outer axes are the sorted validity times and levels of those records.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::date::Stamp;
use super::ip;
use super::planner::packing_of;
use super::record::Record;

/// The largest decoded record served as one chunk. XDF caps records at 128 MB packed; a
/// 1-bit packing widened to f64 is 64× that.
const MAX_RECORD_BYTES: u64 = 1 << 32;

/// Records that describe other records rather than hold a field (fstd2nc's exclusions).
const META_NAMES: &[&str] = &[">>", "^^", "^>", "!!", "!!SF", "STNS"];
/// Names that are metadata only as 1-D records.
const META_IF_1D: &[&str] = &["HY", "##", "HH", "SV", "SH"];
/// ip1 codes of a "no level" field: 0 hPa (0) and 0 in kind 5 written new-style.
const NO_LEVEL_IP1: [u32; 2] = [0, 99_614_720];

/// What identifies a variable; its order is the order variables are listed in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VarKey {
    pub nomvar: String,
    pub etiket: String,
    pub typvar: String,
    pub ni: u32,
    pub nj: u32,
    pub nk: u32,
    pub kind: i8,
    pub grtyp: String,
    pub ig: [u32; 4],
}

impl VarKey {
    fn of(r: &Record) -> VarKey {
        let k = &r.keys;
        VarKey {
            nomvar: k.nomvar.clone(),
            etiket: k.etiket.clone(),
            typvar: k.typvar.clone(),
            ni: k.ni,
            nj: k.nj,
            nk: k.nk,
            kind: ip::decode(k.ip1).kind,
            grtyp: k.grtyp.clone(),
            ig: [k.ig1, k.ig2, k.ig3, k.ig4],
        }
    }

    /// fstd2nc's "human" id parts, in its order: the suffix a clashing name gets is made of
    /// those parts that tell the clashing variables apart.
    pub fn id_parts(&self) -> Vec<String> {
        let descr = level_descr(self.kind).to_string();
        vec![
            self.etiket.clone(),
            self.typvar.clone(),
            format!("{}x{}", self.ni, self.nj),
            descr.clone(),
            descr,
            format!("vgrid{}", self.kind),
            self.grtyp.clone(),
            format!("grid_{}_{}_{}_{}", self.ig[0], self.ig[1], self.ig[2], self.ig[3]),
        ]
    }
}

fn level_descr(kind: i8) -> &'static str {
    match kind {
        0 => "depth_levels",
        1 | 5 | 21 => "model_levels",
        2 => "pressure_levels",
        4 => "height_levels",
        _ => "generic_levels",
    }
}

/// One variable: its key, outer axis values and where each record goes.
pub struct Variable {
    pub key: VarKey,
    /// Validity times, seconds since 1970, ascending; `None` when the records carry no date.
    pub times: Option<Vec<i64>>,
    /// Decoded level values, ascending; `None` for a single "no level" ip1.
    pub levels: Option<Vec<f32>>,
    /// Lead time (deet·npas seconds) at each time.
    pub leadtimes: Vec<i64>,
    /// (time index, level index) → record.
    pub records: BTreeMap<(usize, usize), Arc<Record>>,
}

/// Groups the live data records; returns the variables in order and the reasons records
/// were left out.
pub fn group(records: &[Arc<Record>]) -> (Vec<Variable>, Vec<String>) {
    let mut skipped = Vec::new();
    let mut groups: BTreeMap<VarKey, Vec<&Arc<Record>>> = BTreeMap::new();
    for r in records.iter().filter(|r| !r.deleted && is_data(r)) {
        match decodable(r) {
            Ok(()) => groups.entry(VarKey::of(r)).or_default().push(r),
            Err(why) => skipped.push(format!(
                "record {} ({}) at byte {}: {why}",
                r.keys.nomvar, r.keys.etiket, r.offset
            )),
        }
    }
    let mut vars = Vec::new();
    for (key, recs) in groups {
        let time_of = |r: &Record| Stamp(r.keys.datev).to_unix();
        let dated = recs.iter().filter(|r| time_of(r).is_some()).count();
        let times = (dated > 0).then(|| {
            let mut t: Vec<i64> = recs.iter().filter_map(|r| time_of(r)).collect();
            t.sort_unstable();
            t.dedup();
            t
        });
        let mut levels: Vec<f32> = recs.iter().map(|r| ip::decode(r.keys.ip1).value).collect();
        levels.sort_by(f32::total_cmp);
        levels.dedup();
        let no_level = levels.len() == 1 && recs.iter().all(|r| NO_LEVEL_IP1.contains(&r.keys.ip1));
        let mut var = Variable {
            leadtimes: vec![0; times.as_ref().map_or(1, Vec::len)],
            levels: (!no_level).then_some(levels),
            times,
            key,
            records: BTreeMap::new(),
        };
        for r in recs {
            let t = match (&var.times, time_of(r)) {
                (None, _) => 0,
                (Some(times), Some(t)) => times.binary_search(&t).unwrap_or(0),
                (Some(_), None) => {
                    skipped.push(format!(
                        "record {} at byte {}: date stamp {} is not a date, unlike the rest of its variable",
                        r.keys.nomvar, r.offset, r.keys.datev
                    ));
                    continue;
                }
            };
            let l = match &var.levels {
                None => 0,
                Some(levels) => levels
                    .binary_search_by(|v| v.total_cmp(&ip::decode(r.keys.ip1).value))
                    .unwrap_or(0),
            };
            var.leadtimes[t] = i64::from(r.keys.deet) * i64::from(r.keys.npas);
            // A later record with the same keys replaces an earlier one, as librmn's
            // search for the latest match would.
            if let Some(old) = var.records.insert((t, l), r.clone()) {
                skipped.push(format!(
                    "record {} at byte {}: superseded by the record at byte {} with the same time and level",
                    old.keys.nomvar, old.offset, r.offset
                ));
            }
        }
        vars.push(var);
    }
    (vars, skipped)
}

/// Whether the record's packing is one zarrmount decodes, to a size it is willing to hold.
fn decodable(r: &Record) -> Result<(), String> {
    let p = packing_of(r);
    p.element().map_err(|e| e.to_string())?;
    let bytes = p.decoded_bytes().map_err(|e| e.to_string())?;
    if bytes > MAX_RECORD_BYTES {
        return Err(format!(
            "decodes to {bytes} bytes, more than the {MAX_RECORD_BYTES} one chunk may hold"
        ));
    }
    // A size the payload cannot hold is a damaged directory entry: refusing it here keeps
    // the grid's coordinates from being built for the claim.
    let values = p.values().map_err(|e| e.to_string())?;
    let stored_bits = r.payload_len.saturating_mul(8);
    let needed_bits = match (p.datyp & 0x3F, p.datyp & 128 != 0) {
        // The turbo compressors spend at least a few bits per tile of 9 to 25 values.
        (_, true) => values / 32,
        (3 | 7, _) => values * 8,
        (6, _) => values * 16,
        (8, _) => values * 2 * u64::from(p.nbits),
        _ => values * u64::from(p.nbits),
    };
    if needed_bits > stored_bits {
        return Err(format!(
            "{}x{}x{} values cannot fit in its {}-byte payload: damaged entry",
            p.ni, p.nj, p.nk, r.payload_len
        ));
    }
    Ok(())
}

fn is_data(r: &Record) -> bool {
    let k = &r.keys;
    let one_d = k.ni == 1 || k.nj == 1;
    !(META_NAMES.contains(&k.nomvar.as_str()) || (one_d && META_IF_1D.contains(&k.nomvar.as_str())))
}

/// Resolves clashing names: variables whose ids all parse get fstd2nc's id suffix
/// (`TT_ANALYSIS`), anything else `_1`, `_2` … in order. `names[i]` is the base name of
/// object i; `ids[i]` its id parts, if it is a data variable.
pub fn unique_names(names: &[String], ids: &[Option<Vec<String>>]) -> Vec<String> {
    let mut out = names.to_vec();
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        by_name.entry(n).or_default().push(i);
    }
    for (name, members) in by_name {
        if members.len() < 2 {
            continue;
        }
        let all_ids: Option<Vec<&Vec<String>>> = members.iter().map(|i| ids[*i].as_ref()).collect();
        let suffixes: Vec<String> = match all_ids {
            Some(ids) => id_suffixes(&ids),
            None => (1..=members.len()).map(|n| n.to_string()).collect(),
        };
        for (i, suffix) in members.iter().zip(suffixes) {
            out[*i] = format!("{name}_{suffix}");
        }
    }
    out
}

/// Keeps the id parts that differ, then drops parts from the right while the rest still
/// tell every variable apart.
fn id_suffixes(ids: &[&Vec<String>]) -> Vec<String> {
    let width = ids.iter().map(|v| v.len()).min().unwrap_or(0);
    let mut parts: Vec<usize> = (0..width)
        .filter(|p| ids.iter().any(|v| v[*p] != ids[0][*p]))
        .collect();
    for j in (0..parts.len()).rev() {
        let without: Vec<usize> = parts.iter().copied().filter(|p| *p != parts[j]).collect();
        let mut seen: Vec<Vec<&String>> = ids
            .iter()
            .map(|v| without.iter().map(|p| &v[*p]).collect())
            .collect();
        seen.sort();
        seen.dedup();
        if seen.len() == ids.len() {
            parts = without;
        }
    }
    ids.iter()
        .map(|v| parts.iter().map(|p| v[*p].as_str()).collect::<Vec<_>>().join("_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(nomvar: &str, etiket: &str, typvar: &str, ni: u32, kind: i8) -> VarKey {
        VarKey {
            nomvar: nomvar.into(),
            etiket: etiket.into(),
            typvar: typvar.into(),
            ni,
            nj: 5,
            nk: 1,
            kind,
            grtyp: "L".into(),
            ig: [0; 4],
        }
    }

    #[test]
    fn clashing_names_take_the_part_that_differs() {
        let keys = [
            key("GZ", "F", "P", 3, 2),
            key("GZ", "F", "P", 6, 2),
            key("UU", "F", "P", 6, 2),
            key("UU", "F", "P", 6, 4),
            key("TT", "ANALYSIS", "P", 6, 2),
            key("TT", "FORECAST", "P", 6, 4),
            key("HU", "F", "A", 6, 2),
            key("HU", "F", "P", 6, 2),
            key("lat", "", "", 0, 0),
        ];
        let mut names: Vec<String> = keys.iter().map(|k| k.nomvar.clone()).collect();
        let mut ids: Vec<Option<Vec<String>>> = keys.iter().map(|k| Some(k.id_parts())).collect();
        names.push("lat".into());
        ids[8] = None;
        ids.push(None);
        let got = unique_names(&names, &ids);
        assert_eq!(
            got,
            [
                "GZ_3x5",
                "GZ_6x5",
                "UU_pressure_levels",
                "UU_height_levels",
                // etiket wins over the level kind, as in fstd2nc
                "TT_ANALYSIS",
                "TT_FORECAST",
                "HU_A",
                "HU_P",
                "lat_1",
                "lat_2"
            ]
        );
    }
}
