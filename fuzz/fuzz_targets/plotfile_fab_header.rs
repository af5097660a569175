//! Fuzz target `plotfile_fab_header`: see `zarrmount::fuzzing::plotfile_fab_header` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::plotfile_fab_header(data));
