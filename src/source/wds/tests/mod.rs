//! Unit tests of the WebDataset indexer, one file per module; tars are built here with the
//! `tar` crate's Builder or by hand (`testutil`).

mod group;
mod index;
mod mapping;
mod npy;
mod reference;
mod shards;
mod speed;
mod walk;
