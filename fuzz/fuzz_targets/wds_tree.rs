//! Fuzz target `wds_tree`: see `zarrmount::fuzzing::wds_tree` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::wds_tree(data));
