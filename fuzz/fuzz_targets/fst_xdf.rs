//! Fuzz target `fst_xdf`: see `zarrmount::fuzzing::fst_xdf` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::fst_xdf(data));
