//! End-to-end tests of the `netaio` binary: each command run against servers and nodes the
//! test starts on 127.0.0.1 / ::1, its `--json` output parsed back, its exit codes, stdin
//! content and wrong secrets. One module per command (`cargo test -p netaio-cli --test
//! integration`).

// Test code: a panic is how the helpers report a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

mod bench;
mod daemon;
mod discover;
mod grasp;
mod help;
mod identity;
mod listen;
mod python;
mod relay;
mod request;
mod serve;
mod subscribe;
mod subscribe_udp;
mod terminal;
