//! libFuzzer target `gossip_bulletin`: see `netaio_tests::fuzz::gossip_bulletin`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netaio_tests::fuzz::gossip_bulletin(data));
