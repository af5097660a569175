//! `records/`: the file's whole directory as a table, one 1-D array per header field, in
//! directory order (deleted entries included, flagged), for pandas and polars users.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::date::Stamp;
use super::ip;
use super::planner::Builder;
use super::record::Record;
use crate::tree::{DataType, Group, Node};

/// `variable_of` names the array each record is a chunk of.
pub fn build(
    records: &[Arc<Record>],
    variable_of: &HashMap<*const Record, String>,
    b: &mut Builder,
) -> Group {
    let n = records.len() as u64;
    let mut group = Group::default();
    group.attributes.insert(
        "description".into(),
        json!("the file's directory, one row per entry"),
    );
    for (name, f) in [
        (
            "nomvar",
            &(|r: &Record| r.keys.nomvar.clone()) as &dyn Fn(&Record) -> String,
        ),
        ("typvar", &|r: &Record| r.keys.typvar.clone()),
        ("etiket", &|r: &Record| r.keys.etiket.clone()),
        ("grtyp", &|r: &Record| r.keys.grtyp.clone()),
    ] {
        let values: Vec<String> = records.iter().map(|r| f(r)).collect();
        let spec = b.strings(&values, "record", Map::new());
        group.members.insert(name.into(), Node::Array(Arc::new(spec)));
    }
    {
        let values: Vec<String> = records
            .iter()
            .map(|r| variable_of.get(&Arc::as_ptr(r)).cloned().unwrap_or_default())
            .collect();
        let attrs = json!({"long_name": "the array this record is a chunk of (empty: none, see `skipped`)"});
        let spec = b.strings(&values, "record", attrs.as_object().cloned().unwrap_or_default());
        group
            .members
            .insert("variable".into(), Node::Array(Arc::new(spec)));
    }
    let mut column = |name: &str, data_type: DataType, bytes: Vec<u8>, attrs: Value| {
        let attrs: Map<String, Value> = attrs.as_object().cloned().unwrap_or_default();
        let spec = b.inline(vec![n], data_type, bytes, &["record"], attrs);
        group.members.insert(name.into(), Node::Array(Arc::new(spec)));
    };
    let u32s =
        |f: &dyn Fn(&Record) -> u32| -> Vec<u8> { records.iter().flat_map(|r| f(r).to_le_bytes()).collect() };
    let u8s = |f: &dyn Fn(&Record) -> u8| -> Vec<u8> { records.iter().map(|r| f(r)).collect() };
    for (name, f) in [
        ("ni", &(|r: &Record| r.keys.ni) as &dyn Fn(&Record) -> u32),
        ("nj", &|r: &Record| r.keys.nj),
        ("nk", &|r: &Record| r.keys.nk),
        ("deet", &|r: &Record| r.keys.deet),
        ("npas", &|r: &Record| r.keys.npas),
        ("ip1", &|r: &Record| r.keys.ip1),
        ("ip2", &|r: &Record| r.keys.ip2),
        ("ip3", &|r: &Record| r.keys.ip3),
        ("ig1", &|r: &Record| r.keys.ig1),
        ("ig2", &|r: &Record| r.keys.ig2),
        ("ig3", &|r: &Record| r.keys.ig3),
        ("ig4", &|r: &Record| r.keys.ig4),
        ("ubc", &|r: &Record| r.keys.ubc),
    ] {
        column(name, DataType::UInt32, u32s(f), json!({}));
    }
    // Stamps as librmn's fstprm returns them: signed (extended dates are negative).
    for (name, stamp) in [
        ("datev", &(|r: &Record| r.keys.datev) as &dyn Fn(&Record) -> u32),
        ("dateo", &|r: &Record| r.keys.dateo()),
    ] {
        let bytes = records
            .iter()
            .flat_map(|r| (stamp(r) as i32).to_le_bytes())
            .collect();
        column(
            name,
            DataType::Int32,
            bytes,
            json!({"long_name": "CMC date-time stamp"}),
        );
    }
    for (name, f) in [
        ("datyp", &(|r: &Record| r.keys.datyp) as &dyn Fn(&Record) -> u8),
        ("nbits", &|r: &Record| r.keys.nbits),
        ("dasiz", &|r: &Record| r.keys.dasiz),
    ] {
        column(name, DataType::UInt8, u8s(f), json!({}));
    }
    column(
        "kind",
        DataType::Int8,
        records
            .iter()
            .map(|r| ip::decode(r.keys.ip1).kind as u8)
            .collect(),
        json!({"long_name": "ip1 kind (-1: not a level code librmn decodes)"}),
    );
    column(
        "deleted",
        DataType::Bool,
        u8s(&|r| u8::from(r.deleted)),
        json!({"long_name": "erased by fsteff: not part of any variable"}),
    );
    column(
        "level",
        DataType::Float32,
        records
            .iter()
            .flat_map(|r| ip::decode(r.keys.ip1).value.to_le_bytes())
            .collect(),
        json!({"long_name": "ip1 decoded (its kind in `kind`)"}),
    );
    column(
        "offset",
        DataType::UInt64,
        records.iter().flat_map(|r| r.offset.to_le_bytes()).collect(),
        json!({"long_name": "byte offset of the record in the file", "units": "bytes"}),
    );
    column(
        "length",
        DataType::UInt64,
        records.iter().flat_map(|r| r.len.to_le_bytes()).collect(),
        json!({"long_name": "stored length of the record", "units": "bytes"}),
    );
    // NaT for stamps that are not dates.
    let never = i64::MIN;
    column(
        "valid_time",
        DataType::Int64,
        records
            .iter()
            .flat_map(|r| Stamp(r.keys.datev).to_unix().unwrap_or(never).to_le_bytes())
            .collect(),
        json!({"units": "seconds since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian", "_FillValue": never}),
    );
    group
}
