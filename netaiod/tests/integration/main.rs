//! netaiod's tests on real sockets: the API in process (`api`), and daemons as processes
//! (`three`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod admission;
mod api;
mod directory;
mod limits;
mod native;
#[cfg(unix)]
mod native_socket;
mod peer_calls;
mod relayed_calls;
mod three;
