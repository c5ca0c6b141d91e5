#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xnpu_fuzz::onnx_import(data));
