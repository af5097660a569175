//! Fuzz target `plotfile_header`: see `zarrmount::fuzzing::plotfile_header` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::plotfile_header(data));
