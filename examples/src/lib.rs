//! Code shared by the example programs in `src/bin/`:
//!
//! - [`service`]: the echo service of `echo_server`, `udp_node` and `demo`, a port of the Python
//!   README's `TCPServer` example (echo, subscribe, unsubscribe, publish/notify);
//! - [`args`]: a small hand-written `--flag value` parser with usage errors;
//! - [`compat`]: the plugin flags and request contents of the Python interop programs
//!   (`compat_server`, `compat_client`, `compat_udp_node`);
//! - [`show`]: one-line rendering of messages for the programs' output;
//! - [`signals`]: stopping on Ctrl-C / SIGTERM or after `--seconds N`;
//! - [`init_tracing`]: logs to stderr, filtered by `RUST_LOG`.
//!
//! Run them with `cargo run -p netaio-examples --bin demo` (or `echo_server`, `echo_client`,
//! `service`: a key-value store written with `#[netaio::service]`, and the plugin examples
//! `hmac_cipher`: two layers of `HmacAuth` + `AeadCipher`, `hashcash`: proof of work on one
//! route, and `asymmetric`: `X25519Cipher` + `Ed25519Auth` after a peer exchange; on UDP,
//! `udp_node`: the Python README's echo `UDPNode`, and `discovery`: LAN discovery by multicast,
//! printing peer events).
#![forbid(unsafe_code)]

pub mod args;
pub mod compat;
pub mod service;
pub mod show;
pub mod signals;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install a log subscriber writing to stderr. `RUST_LOG` (for example `RUST_LOG=netaio=debug`)
/// overrides `default_filter`.
pub fn init_tracing(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // A second call (several programs in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

// The root README's Rust code blocks, compiled and run as doctests of this crate, so the quick
// start cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RootReadmeDoctests;
