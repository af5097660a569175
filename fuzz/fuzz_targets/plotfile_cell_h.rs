//! Fuzz target `plotfile_cell_h`: see `zarrmount::fuzzing::plotfile_cell_h` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::plotfile_cell_h(data));
