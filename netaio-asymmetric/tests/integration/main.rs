//! Integration tests of `netaio-asymmetric`, one module per topic, built as one test binary
//! (`cargo test -p netaio-asymmetric --test integration`).
mod auth;
mod cipher;
mod common;
mod identity;
mod tcp_e2e;
