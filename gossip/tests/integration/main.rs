//! netaio-gossip's integration tests: one test binary for the crate; add modules here.

// A failed unwrap is a failed test; helpers outside the test functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[cfg(feature = "net")]
mod net_common;
#[cfg(feature = "net")]
mod net_hold;
#[cfg(feature = "net")]
mod net_nodes;
#[cfg(feature = "net")]
mod net_swarm;
mod sim_scenarios;
mod sim_targets;
