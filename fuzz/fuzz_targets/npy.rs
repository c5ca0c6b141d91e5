#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xnpu_fuzz::npy(data));
