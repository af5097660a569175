//! Fuzz target `fst_decode`: see `zarrmount::fuzzing::fst_decode` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::fst_decode(data));
