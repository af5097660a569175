//! Fuzz target `plotfile_particle_header`: see `zarrmount::fuzzing::plotfile_particle_header` for what the input is.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zarrmount::fuzzing::plotfile_particle_header(data));
