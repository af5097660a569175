//! RPN standard files (`fst://FILE`, fst.md): ECCC's XDF and RSF containers.
//!
//! `xdf` and `rsf` read the two directories into [`record::Record`]s (`keys` parses the
//! record description both share); `packing` decodes payloads; `ip`, `date` and `grid`
//! decode levels, date stamps and grid descriptors.

mod date;
mod file;
mod grid;
mod ip;
mod keys;
pub mod packing;
mod record;
mod rsf;
mod xdf;

#[cfg(test)]
mod tests;
