//! zarrmount: scientific files presented as Zarr v3 over FUSE.
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod helper;
pub mod inspect;
pub mod io;
pub mod logging;
pub mod mount;
pub mod prefetch;
pub mod source;
pub mod stats;
pub mod tree;
pub mod workers;
