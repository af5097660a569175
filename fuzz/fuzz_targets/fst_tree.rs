//! Fuzz target `fst_tree`: see `zarrmount::fuzzing::fst_tree` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::fst_tree(data));
