//! The integration tests of `netaio-grasp`, one binary (modules below).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod api_loopback;
mod codec_errors;
mod codec_props;
mod graspy_vectors;
mod strategies;
mod tcp_bad_input;
