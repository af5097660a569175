//! Fuzz target `wds_npy`: see `zarrmount::fuzzing::wds_npy` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::wds_npy(data));
