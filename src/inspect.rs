//! `zarrmount inspect`: the tree the sources would mount as, without mounting.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::catalog::{Catalog, Entry};
use crate::source::SourceSpec;
use crate::source::memory::Owner;
use crate::tree::render::join;
use crate::tree::{Attributes, Group, Node};

/// The tree as JSON: groups with `attributes` and `children`, arrays with their shape,
/// data type, chunk shape and dimension names.
pub fn tree(sources: &[String]) -> anyhow::Result<Value> {
    let specs = sources
        .iter()
        .map(|s| SourceSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let owner = Owner {
        uid: 0,
        gid: 0,
        mode: 0o755,
    };
    let catalog = Catalog::build(&specs, u64::MAX, owner)?;
    Ok(entry_json(&catalog.root, ""))
}

/// The tree as indented text, one node per line.
pub fn text(tree: &Value) -> String {
    let mut out = String::new();
    write_text(tree, &mut out);
    out
}

fn group_json(path: &str, attributes: &Attributes, children: Vec<Value>) -> Value {
    json!({ "path": if path.is_empty() { "/" } else { path }, "node_type": "group",
            "attributes": attributes, "children": children })
}

fn entry_json(entry: &Entry, path: &str) -> Value {
    match entry {
        Entry::Dir(dir) => {
            let listing = dir.listing();
            let children = listing
                .children
                .iter()
                .map(|(name, child)| entry_json(child, &join(path, name)));
            group_json(path, &dir.attributes(), children.collect())
        }
        Entry::Dataset(ds) => {
            let mut value = tree_group_json(&ds.root, path);
            value["format"] = json!(ds.format);
            value
        }
        Entry::Memory(slot) => {
            let mut value = group_json(path, &Attributes::new(), Vec::new());
            value["memory_store"] = json!({
                "name": slot.store.name(),
                "present": slot.present.load(Ordering::Acquire),
                "limit": slot.store.usage().limit,
            });
            value
        }
    }
}

fn tree_group_json(group: &Group, path: &str) -> Value {
    let children = group.members.iter().map(|(name, node)| {
        let path = join(path, name);
        match node {
            Node::Group(child) => tree_group_json(child, &path),
            Node::Array(spec) => json!({
                "path": path, "node_type": "array", "shape": spec.shape, "data_type": spec.data_type.zarr_name(),
                "chunk_shape": spec.chunk_shape, "dimension_names": spec.dimension_names,
                "attributes": spec.attributes,
            }),
        }
    });
    group_json(path, &group.attributes, children.collect())
}

fn write_text(node: &Value, out: &mut String) {
    let path = node["path"].as_str().unwrap_or("?");
    let depth = if path == "/" {
        0
    } else {
        path.matches('/').count() + 1
    };
    let indent = "  ".repeat(depth);
    let name = path.rsplit('/').next().unwrap_or(path);
    let name = if name.is_empty() { "/" } else { name };
    let attrs = node["attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
        .map(|a| format!("  {}", Value::from(a.clone())));
    if node["node_type"] == "array" {
        let dims = node["dimension_names"]
            .as_array()
            .map(|d| format!(" dims {}", Value::from(d.clone())));
        out.push_str(&format!(
            "{indent}{name}  array {} shape {} chunks {}{}{}\n",
            node["data_type"].as_str().unwrap_or("?"),
            node["shape"],
            node["chunk_shape"],
            dims.unwrap_or_default(),
            attrs.unwrap_or_default()
        ));
        return;
    }
    let kind = match (&node["format"], &node["memory_store"]) {
        (Value::String(format), _) => format!("group ({format} dataset)"),
        (_, Value::Object(_)) => "group (memory store, writable)".to_string(),
        _ => "group".to_string(),
    };
    out.push_str(&format!("{indent}{name}  {kind}{}\n", attrs.unwrap_or_default()));
    for child in node["children"].as_array().into_iter().flatten() {
        write_text(child, out);
    }
}
