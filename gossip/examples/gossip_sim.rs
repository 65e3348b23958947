//! The gossip simulator: runs the scenarios of iroh-gossip's `simulations/all.toml` (and a 16-node
//! one) over its four seeds, then the mass-failure, away-and-back and spam scenarios, and prints
//! the tables. Build it optimized: `cargo run --release -p netaio-gossip --example gossip_sim`.

use std::time::{Duration, Instant};

use clap::Parser;
use netaio_gossip::sim::{
    NetworkConfig, SEEDS, Scenario, ScenarioResult, Senders, away, churn, spam, table,
};

/// Runs the gossip simulations and prints their figures.
#[derive(Debug, Parser)]
struct Args {
    /// Seeds (default: iroh-gossip's 0, 1, 212312388123, 123).
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Rounds per scenario (default 30; the 100-node GossipAll runs 5, as in iroh-gossip).
    #[arg(long)]
    rounds: Option<usize>,
    /// Only the scenarios whose label contains this text (`churn`, `away` and `spam` name the
    /// others).
    #[arg(long)]
    filter: Option<String>,
}

fn main() {
    let args = Args::parse();
    let seeds = if args.seeds.is_empty() {
        SEEDS.to_vec()
    } else {
        args.seeds.clone()
    };
    let rounds = args.rounds.unwrap_or(30);
    let wanted = |label: &str| args.filter.as_deref().is_none_or(|f| label.contains(f));
    let config = NetworkConfig::default();
    let scenarios = [
        (Senders::Single, 16, rounds),
        (Senders::Single, 20, rounds),
        (Senders::Single, 100, rounds),
        (Senders::Single, 1000, rounds),
        (Senders::Multi, 20, rounds),
        (Senders::Multi, 100, rounds),
        (Senders::Multi, 1000, rounds),
        (Senders::All, 20, rounds),
        (Senders::All, 100, args.rounds.unwrap_or(5)),
    ];
    let mut results = Vec::new();
    for (senders, nodes, rounds) in scenarios {
        let scenario = Scenario {
            senders,
            nodes,
            rounds,
        };
        if !wanted(&scenario.label()) {
            continue;
        }
        let t = Instant::now();
        results.push(ScenarioResult::run(scenario, &config, &seeds));
        eprintln!(
            "{} done in {:.1} s",
            scenario.label(),
            t.elapsed().as_secs_f64()
        );
    }
    if !results.is_empty() {
        println!("{}", table(&results));
    }

    let shuffle = config.get_proto().get_shuffle_interval();
    let sync = config.get_proto().get_sync_interval();
    if wanted("churn") {
        println!(
            "| 100 nodes, 50% killed at once (seed) | messages after the kill | reached every survivor within 2 shuffle periods | deliveries within the window | slowest complete | isolated survivors |"
        );
        println!("|---|---|---|---|---|---|");
        for &seed in &seeds {
            let r = churn(
                &config,
                seed,
                100,
                0.5,
                Duration::from_secs(1),
                shuffle,
                shuffle * 2,
            );
            println!(
                "| {seed} | {} | {} ({:.1} %) | {:.2} % | {} ms | {} |",
                r.published,
                r.complete,
                r.complete_ratio() * 100.0,
                r.delivery_ratio * 100.0,
                r.slowest_complete.as_millis(),
                r.isolated_at_end
            );
        }
        println!();
    }
    if wanted("away") {
        println!(
            "| 100 nodes, one away for 10 rounds (seed) | missed while away | caught up after | fetched | missed after return | others missed meanwhile |"
        );
        println!("|---|---|---|---|---|---|");
        for &seed in &seeds {
            let r = away(&config, seed, 100, 10, sync);
            let caught = r
                .caught_up_after
                .map_or("not within one sync interval".to_string(), |d| {
                    format!("{} ms", d.as_millis())
                });
            println!(
                "| {seed} | {} | {caught} | {} | {} | {} |",
                r.missed_while_away,
                r.fetched,
                r.missed_after_return,
                r.missed_while_away_by_others
            );
        }
        println!();
    }
    if wanted("spam") {
        println!(
            "| 100 nodes, 5% spammers, 30 rounds (seed) | spam published | spam delivered | spam forwarded by honest nodes | honest missed | honest RMR | bans | spammers still connected |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for &seed in &seeds {
            let r = spam(&config, seed, 100, 0.05, rounds);
            println!(
                "| {seed} | {} | {} | {} | {} | {:.3} | {} | {} |",
                r.spam_published,
                r.spam_delivered,
                r.spam_forwarded_by_honest,
                r.honest_missed,
                r.honest.rmr,
                r.bans,
                r.spammers_connected_at_end
            );
        }
    }
}
