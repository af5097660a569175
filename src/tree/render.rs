//! `zarr.json` documents, built with `zarrs_metadata` so that what we serve is what the spec says.
//!
//! Group documents carry zarr-python's inline consolidated metadata: a flat map from each
//! descendant's relative path to its own metadata, nested groups with an empty inline block of
//! their own. `xr.open_zarr` then reads one file to open a whole dataset.

use std::num::NonZeroU64;

use serde_json::{Value, json};
use zarrs_metadata::v3::{
    AdditionalFieldV3, AdditionalFieldsV3, ArrayMetadataV3, GroupMetadataV3, MetadataV3,
};
use zarrs_metadata::{ChunkKeySeparator, Endianness};
use zarrs_metadata_ext::chunk_grid::regular::RegularChunkGridConfiguration;
use zarrs_metadata_ext::chunk_key_encoding::default::DefaultChunkKeyEncodingConfiguration;
use zarrs_metadata_ext::codec::bytes::BytesCodecConfigurationV1;

use super::{ArraySpec, Attributes, DataType, Endian, Group, Node};

/// One entry of a group's consolidated metadata: a path relative to the group and the
/// metadata document of the node there.
pub type ConsolidatedEntry = (String, Value);

/// The metadata of an array as zarrs_metadata models it.
pub fn array_metadata(spec: &ArraySpec) -> ArrayMetadataV3 {
    // The spec forbids zero-sized chunks; a zero would be a source bug, so render it as 1
    // rather than emit a document no reader accepts.
    let chunk_shape = spec
        .chunk_shape
        .iter()
        .map(|c| NonZeroU64::new(*c).unwrap_or(NonZeroU64::MIN))
        .collect();
    let grid = RegularChunkGridConfiguration { chunk_shape };
    let endian = match spec.endian {
        Endian::Little => Endianness::Little,
        Endian::Big => Endianness::Big,
    };
    // Single-byte types have no byte order; the spec lets `endian` be omitted for them.
    let endian = (spec.data_type.size() > 1).then_some(endian);
    // `{"name": …}`: zarr-python does not take the bare-string form of a codec.
    let codec = if spec.data_type == DataType::String {
        MetadataV3::new_with_configuration("vlen-utf8", serde_json::Map::new())
    } else if spec.data_type == DataType::Bytes {
        MetadataV3::new_with_configuration("vlen-bytes", serde_json::Map::new())
    } else {
        MetadataV3::new_with_serializable_configuration(
            "bytes".to_string(),
            &BytesCodecConfigurationV1::new(endian),
        )
        .expect("bytes codec configuration serializes")
    };
    let key_encoding = MetadataV3::new_with_serializable_configuration(
        "default".to_string(),
        &DefaultChunkKeyEncodingConfiguration {
            separator: ChunkKeySeparator::Slash,
        },
    )
    .expect("chunk key encoding serializes");
    ArrayMetadataV3::new(
        spec.shape.clone(),
        MetadataV3::new_with_serializable_configuration("regular".to_string(), &grid)
            .expect("regular chunk grid serializes"),
        MetadataV3::new(spec.data_type.zarr_name()),
        spec.fill_value.clone(),
        vec![codec],
    )
    .with_chunk_key_encoding(key_encoding)
    .with_dimension_names(spec.dimension_names.clone())
    .with_attributes(spec.attributes.clone())
}

/// The `zarr.json` of an array.
pub fn array_document(spec: &ArraySpec) -> Vec<u8> {
    pretty(&array_metadata(spec))
}

/// The `zarr.json` of a group with its consolidated metadata.
pub fn group_document(attributes: &Attributes, entries: Vec<ConsolidatedEntry>) -> Vec<u8> {
    let metadata: serde_json::Map<String, Value> = entries.into_iter().collect();
    let consolidated = AdditionalFieldV3::new(json!({ "kind": "inline", "metadata": metadata }), false);
    let fields = AdditionalFieldsV3::from([("consolidated_metadata".to_string(), consolidated)]);
    pretty(
        &GroupMetadataV3::new()
            .with_attributes(attributes.clone())
            .with_additional_fields(fields),
    )
}

/// The metadata of a nested group as it appears inside a parent's consolidated block.
pub fn nested_group_value(attributes: &Attributes) -> Value {
    let value = serde_json::from_slice(&group_document(attributes, Vec::new()));
    value.expect("group documents are JSON")
}

/// The metadata of a node as it appears inside a parent's consolidated block.
pub fn node_value(node: &Node) -> Value {
    match node {
        Node::Group(group) => nested_group_value(&group.attributes),
        Node::Array(spec) => serde_json::to_value(array_metadata(spec)).expect("array metadata is JSON"),
    }
}

/// Consolidated entries for everything below `group`, paths prefixed with `prefix`.
pub fn consolidated_entries(group: &Group, prefix: &str) -> Vec<ConsolidatedEntry> {
    group
        .descendants()
        .into_iter()
        .map(|(path, node)| (join(prefix, &path), node_value(node)))
        .collect()
}

/// Joins relative Zarr node paths; an empty prefix is the group itself.
pub fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_string()
    } else {
        format!("{prefix}/{path}")
    }
}

fn pretty<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("metadata serializes");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tree::{ArrayId, DataType};

    fn sample_group() -> Group {
        let mut temp = ArraySpec::new(ArrayId(0), vec![4, 3, 5], vec![2, 3, 5], DataType::Float64);
        temp.endian = Endian::Big;
        temp.dimension_names = Some(vec!["z".into(), "y".into(), "x".into()]);
        temp.attributes.insert("units".into(), json!("K"));
        let mut level = Group::default();
        level.attributes.insert("dx".into(), json!([0.5, 0.5, 0.5]));
        level.members.insert("temp".into(), Node::Array(Arc::new(temp)));
        let flag = ArraySpec::new(ArrayId(1), vec![], vec![], DataType::Bool);
        let mut root = Group::default();
        root.attributes.insert("time".into(), json!(1.5));
        root.members.insert("level_0".into(), Node::Group(level));
        root.members.insert("flag".into(), Node::Array(Arc::new(flag)));
        root
    }

    fn parse(doc: &[u8]) -> Value {
        serde_json::from_slice(doc).expect("valid JSON")
    }

    #[test]
    fn array_document_has_every_field_the_v3_spec_requires() {
        let root = sample_group();
        let Some(Node::Group(level)) = root.members.get("level_0") else {
            panic!()
        };
        let Some(Node::Array(temp)) = level.members.get("temp") else {
            panic!()
        };
        let doc = parse(&array_document(temp));
        assert_eq!(doc["zarr_format"], 3);
        assert_eq!(doc["node_type"], "array");
        assert_eq!(doc["shape"], json!([4, 3, 5]));
        assert_eq!(doc["data_type"], "float64");
        assert_eq!(
            doc["chunk_grid"],
            json!({"name": "regular", "configuration": {"chunk_shape": [2, 3, 5]}})
        );
        assert_eq!(
            doc["chunk_key_encoding"],
            json!({"name": "default", "configuration": {"separator": "/"}})
        );
        assert_eq!(doc["fill_value"], "NaN");
        assert_eq!(
            doc["codecs"],
            json!([{"name": "bytes", "configuration": {"endian": "big"}}])
        );
        assert_eq!(doc["dimension_names"], json!(["z", "y", "x"]));
        assert_eq!(doc["attributes"]["units"], "K");
        // zarrs itself accepts it as array metadata.
        let meta: zarrs::array::ArrayMetadata = serde_json::from_value(doc).expect("zarrs parses it");
        let store = Arc::new(zarrs::storage::store::MemoryStore::new());
        zarrs::array::Array::new_with_metadata(store, "/temp", meta).expect("zarrs builds an array from it");
    }

    #[test]
    fn single_byte_types_omit_endian() {
        let flag = ArraySpec::new(ArrayId(1), vec![], vec![], DataType::Bool);
        let doc = parse(&array_document(&flag));
        assert_eq!(doc["codecs"], json!([{"name": "bytes"}]));
        assert_eq!(doc["fill_value"], false);
        assert_eq!(doc["shape"], json!([]));
    }

    #[test]
    fn group_document_consolidates_every_descendant_like_zarr_python() {
        let root = sample_group();
        let doc = parse(&group_document(&root.attributes, consolidated_entries(&root, "")));
        assert_eq!(doc["zarr_format"], 3);
        assert_eq!(doc["node_type"], "group");
        assert_eq!(doc["attributes"]["time"], 1.5);
        let cm = &doc["consolidated_metadata"];
        assert_eq!(cm["kind"], "inline");
        assert_eq!(cm["must_understand"], false);
        let keys: Vec<_> = cm["metadata"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["flag", "level_0", "level_0/temp"]);
        assert_eq!(cm["metadata"]["level_0"]["node_type"], "group");
        assert_eq!(
            cm["metadata"]["level_0"]["consolidated_metadata"]["metadata"],
            json!({})
        );
        assert_eq!(cm["metadata"]["level_0/temp"]["data_type"], "float64");
        let group: zarrs::group::GroupMetadata = serde_json::from_value(doc).expect("zarrs parses it");
        assert!(matches!(group, zarrs::group::GroupMetadata::V3(_)));
    }

    #[test]
    fn prefixes_nest_paths() {
        let root = sample_group();
        let keys: Vec<_> = consolidated_entries(&root, "run/plt0")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            ["run/plt0/flag", "run/plt0/level_0", "run/plt0/level_0/temp"]
        );
    }
}
