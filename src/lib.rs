//! zarrmount: scientific files presented as Zarr v3 over FUSE.
pub mod io;
pub mod source;
pub mod tree;
pub mod cache;
pub mod catalog;
pub mod fs;
pub mod cli;
pub mod config;
pub mod logging;
pub mod mount;
pub mod inspect;
