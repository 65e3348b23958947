//! netaio-gossip's integration tests: one test binary for the crate; add modules here.

mod sim_scenarios;
mod sim_targets;
