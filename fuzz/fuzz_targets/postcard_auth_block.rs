//! libFuzzer target `postcard_auth_block`: see `netaio_tests::fuzz::postcard_auth_block`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netaio_tests::fuzz::postcard_auth_block(data));
