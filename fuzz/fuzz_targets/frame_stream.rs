//! libFuzzer target `frame_stream`: see `netaio_tests::fuzz::frame_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netaio_tests::fuzz::frame_stream(data));
