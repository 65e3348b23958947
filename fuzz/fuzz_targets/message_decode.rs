//! libFuzzer target `message_decode`: see `netaio_tests::fuzz::message_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netaio_tests::fuzz::message_decode(data));
