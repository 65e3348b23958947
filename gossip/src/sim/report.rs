//! Running a scenario over several seeds, and the table the simulator prints.

use std::fmt::Write as _;

use super::network::NetworkConfig;
use super::rounds::{RoundStats, Scenario};

/// The seeds of iroh-gossip's `simulations/all.toml`.
pub const SEEDS: [u64; 4] = [0, 1, 212_312_388_123, 123];

/// A scenario's rounds over several seeds.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// Each seed's rounds.
    pub per_seed: Vec<(u64, Vec<RoundStats>)>,
}

impl ScenarioResult {
    /// Runs `scenario` once per seed.
    pub fn run(scenario: Scenario, config: &NetworkConfig, seeds: &[u64]) -> Self {
        let per_seed = seeds
            .iter()
            .map(|&seed| (seed, scenario.run(config, seed)))
            .collect();
        Self { scenario, per_seed }
    }

    /// The mean over every round of every seed.
    pub fn mean(&self) -> RoundStats {
        let all: Vec<RoundStats> = self
            .per_seed
            .iter()
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        RoundStats::mean(&all)
    }

    /// Combined as iroh-gossip's simulator prints it: each figure's minimum over the per-seed
    /// means (its `RoundStatsAvg::avg` applies `min` to the means).
    pub fn iroh_style(&self) -> RoundStats {
        let means: Vec<RoundStats> = self
            .per_seed
            .iter()
            .map(|(_, r)| RoundStats::mean(r))
            .collect();
        RoundStats::min_each(&means)
    }

    /// The worst round: largest RMR, LDH, missed and duration over all rounds and seeds.
    pub fn worst(&self) -> RoundStats {
        self.per_seed
            .iter()
            .flat_map(|(_, r)| r.iter())
            .fold(RoundStats::default(), |a, r| RoundStats {
                duration: a.duration.max(r.duration),
                rmr: a.rmr.max(r.rmr),
                ldh: a.ldh.max(r.ldh),
                missed: a.missed.max(r.missed),
                payloads: a.payloads.max(r.payloads),
                deliveries: a.deliveries.max(r.deliveries),
            })
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The table: one row per scenario, means over all rounds and seeds, then the same figures
/// combined as iroh-gossip's simulator combines them, then the worst round.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | seeds | RMR | LDH | missed | time | iroh-style RMR | LDH | time | worst RMR | LDH | time |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let (m, i, w) = (r.mean(), r.iroh_style(), r.worst());
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.2} | {:.2} | {:.1} ms | {:.3} | {:.2} | {:.1} ms | {:.3} | {:.0} | {:.1} ms |",
            r.scenario.label(),
            r.per_seed.len(),
            m.rmr,
            m.ldh,
            m.missed,
            ms(m.duration),
            i.rmr,
            i.ldh,
            ms(i.duration),
            w.rmr,
            w.ldh,
            ms(w.duration),
        );
    }
    out
}
