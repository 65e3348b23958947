//! libFuzzer target `grasp_message`: see `netaio_tests::fuzz::grasp_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netaio_tests::fuzz::grasp_message(data));
