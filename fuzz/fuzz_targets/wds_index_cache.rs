//! Fuzz target `wds_index_cache`: see `zarrmount::fuzzing::wds_index_cache` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::wds_index_cache(data));
