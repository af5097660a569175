//! Fuzz target `wds_tar`: see `zarrmount::fuzzing::wds_tar` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::wds_tar(data));
