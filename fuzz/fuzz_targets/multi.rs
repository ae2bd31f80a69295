#![no_main]

// The body lives in crates/rgtp-fuzzing, where tests/replay.rs replays the corpus on stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| rgtp_fuzzing::multi(data));
