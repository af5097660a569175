//! Fuzz target `fst_rsf`: see `zarrmount::fuzzing::fst_rsf` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::fst_rsf(data));
