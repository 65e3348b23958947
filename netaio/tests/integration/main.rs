//! Integration tests of the `netaio` crate, one module per topic, built as one test binary
//! (`cargo test -p netaio --test integration [module::]`): fewer binaries to link, less disk and time.
mod common;
mod dox_coverage;
mod inner_auth_error_reply;
mod macros_e2e;
mod one_shot_checks;
mod packify_props;
mod peer_context;
mod plugins_tcp;
mod proptest_codec;
mod python_vectors;
mod reflection;
mod smoke;
