//! The simulator's figures against the targets of issue 15 (iroh-gossip's scenarios and seeds).
//!
//! The targets compare with iroh-gossip's printout, which combines seeds by taking each figure's
//! minimum over the per-seed means; these tests assert the plain mean over every round of every
//! seed, which is stricter. The figures move with any change to the protocol (a seed's overlay and
//! tree change shape), and the 100-node single-sender time and LDH are close to their targets
//! (BENCHMARKS.md, "Gossip", has the margins and other seeds). The 1,000-node scenario runs fewer
//! seeds and rounds here than in the `gossip_sim` example (tests build unoptimized).

use std::time::Duration;

use netaio_gossip::sim::{NetworkConfig, SEEDS, Scenario, ScenarioResult, Senders};

fn run(senders: Senders, nodes: usize, rounds: usize, seeds: &[u64]) -> ScenarioResult {
    let scenario = Scenario {
        senders,
        nodes,
        rounds,
    };
    let r = ScenarioResult::run(scenario, &NetworkConfig::default(), seeds);
    let (m, i) = (r.mean(), r.iroh_style());
    println!(
        "{}: mean RMR {:.3} LDH {:.2} missed {} time {} ms | iroh-style RMR {:.3} LDH {:.2} time {} ms",
        scenario.label(),
        m.rmr,
        m.ldh,
        m.missed,
        m.duration.as_millis(),
        i.rmr,
        i.ldh,
        i.duration.as_millis()
    );
    r
}

#[test]
fn single_sender_16_nodes() {
    let r = run(Senders::Single, 16, 30, &SEEDS);
    let m = r.mean();
    assert!(m.rmr <= 0.10, "RMR {}", m.rmr);
    assert!(m.ldh <= 2.0, "LDH {}", m.ldh);
    assert_eq!(r.worst().missed, 0.0);
}

#[test]
fn single_sender_100_nodes() {
    let r = run(Senders::Single, 100, 30, &SEEDS);
    let m = r.mean();
    assert!(m.rmr <= 0.08, "RMR {}", m.rmr);
    assert!(m.ldh <= 5.0, "LDH {}", m.ldh);
    assert_eq!(r.worst().missed, 0.0);
    assert!(m.duration <= Duration::from_millis(160), "{:?}", m.duration);
}

#[test]
fn random_sender_100_nodes() {
    let r = run(Senders::Multi, 100, 30, &SEEDS);
    assert!(r.mean().rmr <= 0.30, "RMR {}", r.mean().rmr);
    assert_eq!(r.worst().missed, 0.0);
}

#[test]
fn all_send_at_once_100_nodes() {
    let r = run(Senders::All, 100, 5, &SEEDS);
    assert!(r.mean().rmr <= 0.9, "RMR {}", r.mean().rmr);
    assert_eq!(r.worst().missed, 0.0);
}

#[test]
fn single_sender_1000_nodes() {
    // Two seeds and ten rounds (the example runs all four seeds and 30 rounds).
    let r = run(Senders::Single, 1000, 10, &SEEDS[..2]);
    let m = r.mean();
    assert!(m.rmr <= 0.07, "RMR {}", m.rmr);
    assert!(m.ldh <= 13.0, "LDH {}", m.ldh);
    assert_eq!(r.worst().missed, 0.0);
}

#[test]
fn a_seed_decides_the_whole_run() {
    let a = run(Senders::Multi, 30, 5, &[7]);
    let b = run(Senders::Multi, 30, 5, &[7]);
    let c = run(Senders::Multi, 30, 5, &[8]);
    assert_eq!(a.per_seed, b.per_seed);
    assert_ne!(a.per_seed, c.per_seed);
}
