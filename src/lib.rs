//! zarrmount: scientific files presented as Zarr v3 over FUSE.
pub mod io;
pub mod source;
pub mod tree;
