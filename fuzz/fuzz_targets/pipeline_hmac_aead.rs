//! libFuzzer target `pipeline_hmac_aead`: see `netaio_tests::fuzz::pipeline_hmac_aead`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netaio_tests::fuzz::pipeline_hmac_aead(data));
