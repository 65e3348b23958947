//! Code shared by the example programs in `src/bin/`:
//!
//! - [`service`]: the echo service of `echo_server`, `udp_node` and `demo`, a port of the Python
//!   README's `TCPServer` example (echo, subscribe, unsubscribe, publish/notify);
//! - [`compat`]: the plugin flags and request contents of the Python interop programs
//!   (`compat_server`, `compat_client`, `compat_udp_node`);
//! - [`show`]: one-line rendering of messages for the programs' output;
//! - [`init_tracing`]: logs to stderr, filtered by `RUST_LOG` (from `netaio-support`, which also
//!   has the command-line and stop-signal helpers the programs share with the chat).
//!
//! Run them with `cargo run -p netaio-examples --bin demo` (or `echo_server`, `echo_client`,
//! `service`: a key-value store written with `#[netaio::service]`, and the plugin examples
//! `hmac_cipher`: two layers of `HmacAuth` + `AeadCipher`, `hashcash`: proof of work on one
//! route, and `asymmetric`: `X25519Cipher` + `Ed25519Auth` after a peer exchange; on UDP,
//! `udp_node`: the Python README's echo `UDPNode`, and `discovery`: LAN discovery by multicast,
//! printing peer events).
#![forbid(unsafe_code)]

pub mod compat;
pub mod service;
pub mod show;

// Re-exported so that the programs which only set up logging keep their one import.
pub use netaio_support::init_tracing;

// The root README's Rust code blocks, compiled and run as doctests of this crate, so the quick
// start cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RootReadmeDoctests;
