//! The format-agnostic Zarr v3 node model every source builds.
//!
//! A source describes its dataset as a [`Group`] of [`Group`]s and [`ArraySpec`]s; nothing here
//! knows about files or FUSE. [`render`] turns nodes into `zarr.json` documents (through
//! `zarrs_metadata`) and [`chunks`] says which chunk files an array has and how big they are.

pub mod chunks;
pub mod render;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs_metadata::v3::FillValueMetadataV3;

pub use chunks::{ChunkCoords, ChunkIndex};

/// JSON attributes of a group or array.
pub type Attributes = Map<String, Value>;

/// Identifies an array inside one dataset; the dataset's chunk planner is asked by this id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArrayId(pub u32);

/// A Zarr v3 group: attributes plus named members.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub attributes: Attributes,
    pub members: BTreeMap<String, Node>,
}

/// A member of a group.
#[derive(Clone, Debug)]
pub enum Node {
    Group(Group),
    Array(Arc<ArraySpec>),
}

impl Group {
    /// Follows `path` (member names) from this group to a descendant group.
    pub fn subgroup(&self, path: &[String]) -> Option<&Group> {
        path.iter()
            .try_fold(self, |group, name| match group.members.get(name) {
                Some(Node::Group(child)) => Some(child),
                _ => None,
            })
    }

    /// Every descendant with its `/`-joined path relative to this group, depth first.
    pub fn descendants(&self) -> Vec<(String, &Node)> {
        let mut out = Vec::new();
        self.collect_descendants("", &mut out);
        out
    }

    fn collect_descendants<'a>(&'a self, prefix: &str, out: &mut Vec<(String, &'a Node)>) {
        for (name, node) in &self.members {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            out.push((path.clone(), node));
            if let Node::Group(group) = node {
                group.collect_descendants(&path, out);
            }
        }
    }
}

/// The element types sources can present. Names are the Zarr v3 core data type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float16,
    Float32,
    Float64,
    Complex64,
    Complex128,
    /// Variable-length UTF-8 strings (zarr-python 3's `string` with the `vlen-utf8` codec):
    /// chunk files have no fixed size, so such arrays list each chunk's size.
    String,
    /// Variable-length byte strings (zarr-python 3's `variable_length_bytes` with the
    /// `vlen-bytes` codec); sized per chunk like [`DataType::String`].
    Bytes,
}

impl DataType {
    pub fn zarr_name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Int32 => "int32",
            DataType::Int64 => "int64",
            DataType::UInt8 => "uint8",
            DataType::UInt16 => "uint16",
            DataType::UInt32 => "uint32",
            DataType::UInt64 => "uint64",
            DataType::Float16 => "float16",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
            DataType::Complex64 => "complex64",
            DataType::Complex128 => "complex128",
            DataType::String => "string",
            DataType::Bytes => "variable_length_bytes",
        }
    }

    /// Bytes per element (0 for variable-length types).
    pub fn size(self) -> u64 {
        match self {
            DataType::Bool | DataType::Int8 | DataType::UInt8 => 1,
            DataType::Int16 | DataType::UInt16 | DataType::Float16 => 2,
            DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
            DataType::Int64 | DataType::UInt64 | DataType::Float64 | DataType::Complex64 => 8,
            DataType::Complex128 => 16,
            DataType::String | DataType::Bytes => 0,
        }
    }

    /// Whether elements have no fixed size (chunk files are then listed with their sizes).
    pub fn is_variable(self) -> bool {
        self.size() == 0
    }
}

/// Byte order of the chunk files an array serves (the Zarr `bytes` codec's `endian`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

/// A Zarr v3 array as a source presents it: chunk files are the raw elements of one regular
/// chunk in C order, in `endian` byte order (the `bytes` codec alone), so a chunk that already
/// sits contiguously in a source file can be served as one byte range.
#[derive(Clone, Debug)]
pub struct ArraySpec {
    pub id: ArrayId,
    pub shape: Vec<u64>,
    pub chunk_shape: Vec<u64>,
    pub data_type: DataType,
    pub endian: Endian,
    pub fill_value: FillValueMetadataV3,
    pub dimension_names: Option<Vec<String>>,
    pub attributes: Attributes,
    pub chunks: ChunkIndex,
    /// Size of each chunk file, for arrays whose chunk files differ in size (strings).
    pub chunk_sizes: Option<Arc<BTreeMap<ChunkCoords, u64>>>,
}

impl ArraySpec {
    /// An array whose every chunk exists, with the data type's natural fill value
    /// (0, false, or NaN for floats), little endian, no dimension names.
    pub fn new(id: ArrayId, shape: Vec<u64>, chunk_shape: Vec<u64>, data_type: DataType) -> Self {
        let fill_value = match data_type {
            DataType::Bool => FillValueMetadataV3::from(false),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => FillValueMetadataV3::from("NaN"),
            DataType::String | DataType::Bytes => FillValueMetadataV3::from(""),
            DataType::Complex64 | DataType::Complex128 => {
                FillValueMetadataV3::from([FillValueMetadataV3::from(0.0), FillValueMetadataV3::from(0.0)])
            }
            _ => FillValueMetadataV3::from(0u64),
        };
        ArraySpec {
            id,
            shape,
            chunk_shape,
            data_type,
            endian: Endian::Little,
            fill_value,
            dimension_names: None,
            attributes: Attributes::new(),
            chunks: ChunkIndex::All,
            chunk_sizes: None,
        }
    }

    /// Bytes in one (full, possibly edge-padded) chunk file.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_shape.iter().product::<u64>() * self.data_type.size()
    }

    /// Bytes in the chunk file at `coords`.
    pub fn chunk_file_size(&self, coords: &[u64]) -> u64 {
        match &self.chunk_sizes {
            Some(sizes) => sizes.get(coords).copied().unwrap_or(0),
            None => self.chunk_bytes(),
        }
    }

    /// Number of chunks along each dimension.
    pub fn chunk_grid(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.chunk_shape)
            .map(|(s, c)| s.div_ceil(*c))
            .collect()
    }

    /// Whether the chunk at `coords` exists (is inside the grid and, for sparse arrays, listed).
    pub fn has_chunk(&self, coords: &[u64]) -> bool {
        coords.len() == self.shape.len()
            && coords.iter().zip(self.chunk_grid()).all(|(c, n)| *c < n)
            && self.chunks.contains(coords)
    }
}
