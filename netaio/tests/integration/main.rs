//! Integration tests of the `netaio` crate, one module per topic, built as one test binary
//! (`cargo test -p netaio --test integration [module::]`): fewer binaries to link, less disk and time.
//! The modules that need a feature the crate does not enable by default are compiled with it only:
//! `--features python-compat` (or `--all-features`, or `cargo test --workspace`, where the examples
//! enable it) runs the Python vectors and packify properties.
mod aead_auth_tcp;
mod architecture;
mod common;
mod dox_coverage;
mod front_page;
mod inner_auth_error_reply;
#[cfg(feature = "macros")]
mod macros_e2e;
mod many_large_calls;
mod missing_state;
#[cfg(all(target_os = "linux", feature = "multicast"))]
mod multicast_join;
mod one_shot_checks;
#[cfg(feature = "python-compat")]
mod packify_props;
mod peer_context;
mod plugins_tcp;
mod proptest_codec;
#[cfg(feature = "python-compat")]
mod python_vectors;
mod reflection;
mod refusal_diagnostics;
mod security_table;
mod server_fast_path;
mod smoke;
mod typed_calls;
#[cfg(target_os = "linux")]
mod udp_buffers;
mod vectored_writes;
