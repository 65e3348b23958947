//! The hedging scenario of BENCHMARKS.md (issue 13): two netaio TCP servers (or UDP nodes), one of
//! which stalls (`--stall-ms`, 10 ms) on a share of its requests (`--stall-percent`, 5 %), and one
//! client making one call at a time. Four phases: calls to the fast server alone, to the stalling
//! server alone (no hedging), to the stalling server with the soft timeout but no hedge (how many
//! calls pass their soft timeout when nothing is cancelled: what the soft-timeout machinery costs
//! by itself), and `call_any` over both (the stalling one first, the other asked when the soft
//! timeout passes).
//!
//! The target is a ratio of two p99s measured in one run (hedged ÷ fast ≤ 2), so both must see
//! the same machine. By default each server is a process of its own (`hedge server`, CPU 0) and
//! the client another (`hedge client`, CPU 1), and the phases are **interleaved**: `--rounds` R
//! rounds of `count / R` calls per phase, the phases in turn within each round (reversed every
//! other round, so that no phase always follows the same one). Each phase's p50/p99 is over all
//! its calls; the target is also judged per round (that round's hedged p99 ÷ its fast p99), with
//! the median of those ratios and how many rounds meet it. `--in-process` keeps the old setup
//! (servers and client in one process, a 2-worker runtime); with `--rounds 1` it runs the phases
//! one after another as before. The processes run in the real-time FIFO class when the driver
//! may put them there (as root; `--no-fifo` not to), so that other processes (builds on a shared
//! machine) do not delay them: at `nice -20`, a woken server still waited up to a scheduler tick
//! (4 ms) behind a build, on more than 1 % of the calls.
//!
//! [`roles`] has the processes, [`scenario`] the servers and the phases; this file the flags, the
//! results and their bookkeeping.

pub mod roles;
pub mod scenario;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::stats::{median, percentile};

/// The ratio the issue asks for: hedged p99 ≤ this × the fast server's p99.
pub const TARGET_RATIO: f64 = 2.0;

/// The `hedge` command line: the driver, or one of the roles it spawns.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "hedge", args_conflicts_with_subcommands = true)]
pub struct HedgeCli {
    /// The role to run, if not the driver.
    #[command(subcommand)]
    pub role: Option<HedgeRole>,
    /// The driver's flags.
    #[command(flatten)]
    pub driver: HedgeArgs,
}

/// The roles the driver starts itself in.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum HedgeRole {
    /// Run one server (TCP, or a UDP node with --udp); prints `listening ADDR`
    Server(ServerArgs),
    /// Run the phases against two servers; prints one JSON line
    Client(ClientArgs),
}

/// What the calls are: shared by the driver and the client role.
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// Calls per phase, over all rounds
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Rounds: each phase makes count / rounds calls per round, the phases in turn
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// The soft timeout after which the other server is asked, µs (below 1000 the node's
    /// request timer is woken at it by netaio's fine timer thread instead of tokio's timer
    /// rounding it up to its next millisecond tick)
    #[arg(long, default_value_t = 1000)]
    pub soft_us: u64,
    /// Hedge within a `HedgeBudget` of this ratio (0.1: at most ~10 % more requests than
    /// calls); without it every soft timeout may hedge
    #[arg(long, value_name = "RATIO")]
    pub budget: Option<f64>,
}

/// How a server behaves: shared by the driver and the server role.
#[derive(Debug, Clone, clap::Args)]
pub struct StallArgs {
    /// How long the stalling server stalls, ms
    #[arg(long, default_value_t = 10)]
    pub stall_ms: u64,
    /// The share of its requests it stalls, % (a fixed pseudo-random sequence; 0: never)
    #[arg(long, default_value_t = 5.0)]
    pub stall_percent: f64,
    /// TCP: handlers of one connection the servers run at once (`concurrent_requests`; 1, the
    /// default, handles a connection's requests in order, so a stalled one holds up the next)
    #[arg(long, default_value_t = 1)]
    pub concurrent: usize,
}

/// `hedge` flags (the driver).
#[derive(Debug, Clone, clap::Args)]
pub struct HedgeArgs {
    /// The calls.
    #[command(flatten)]
    pub calls: CallArgs,
    /// The stalling server.
    #[command(flatten)]
    pub stall: StallArgs,
    /// Over UDP instead of TCP (no head-of-line blocking: a stalled request does not hold up
    /// the next ones)
    #[arg(long)]
    pub udp: bool,
    /// Servers and client in this one process (the old setup) instead of three processes
    #[arg(long)]
    pub in_process: bool,
    /// Do not pin the servers to CPU 0 and the client to CPU 1
    #[arg(long)]
    pub no_pin: bool,
    /// Do not run the servers and the client in the real-time FIFO class (`chrt -f 1`; they
    /// are when the driver may, as root: a woken role runs at once, ahead of other processes
    /// such as builds on a shared machine); nice -20 instead, if allowed
    #[arg(long)]
    pub no_fifo: bool,
    /// With --no-fifo: do not run them at nice -20 either
    #[arg(long)]
    pub no_nice: bool,
    /// The client process's runtime worker threads (1: a current-thread runtime, as the
    /// servers'; more for comparison with --in-process, which runs everything on 2)
    #[arg(long, default_value_t = 1)]
    pub client_workers: usize,
}

/// `hedge server`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// How it stalls (`--stall-percent 0` for the fast one).
    #[command(flatten)]
    pub stall: StallArgs,
    /// A UDP node instead of a TCP server
    #[arg(long)]
    pub udp: bool,
    /// What it answers every request with (the client counts the replies of `fast`)
    #[arg(long, default_value = "server")]
    pub name: String,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub address: SocketAddr,
}

/// `hedge client`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The calls.
    #[command(flatten)]
    pub calls: CallArgs,
    /// Over UDP
    #[arg(long)]
    pub udp: bool,
    /// The stalling server's address
    #[arg(long, value_name = "ADDR")]
    pub stalling: SocketAddr,
    /// The fast server's address
    #[arg(long, value_name = "ADDR")]
    pub fast: SocketAddr,
    /// Runtime worker threads (1: a current-thread runtime)
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
}

/// p50 and p99 of one measurement, µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// The largest.
    pub max_us: f64,
}

/// One round's figures for the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoundRatio {
    /// The fast server's p99 in this round, µs.
    pub fast_p99_us: f64,
    /// The hedged calls' p99 in this round, µs.
    pub hedged_p99_us: f64,
    /// `hedged_p99_us / fast_p99_us`.
    pub ratio: f64,
}

/// The four measurements, and the target judged round by round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HedgeResult {
    /// Calls to the server that never stalls.
    pub fast_only: Latency,
    /// Calls to the stalling server, no hedging.
    pub stalling_only: Latency,
    /// Calls to the stalling server with the soft timeout and no hedge: what the soft-timeout
    /// machinery costs by itself.
    pub soft_only: Latency,
    /// Of those, the calls whose soft timeout passed (the ones a hedge would have sent on).
    pub soft_only_passed: u64,
    /// `call_any` over both, the stalling one first.
    pub hedged: Latency,
    /// Hedged calls answered by the second server.
    pub hedged_by_second: u64,
    /// The soft timeout, µs.
    pub soft_us: u64,
    /// The hedge budget's ratio, if any.
    #[serde(default)]
    pub budget: Option<f64>,
    /// The servers' `concurrent_requests` (TCP).
    pub concurrent: usize,
    /// "tcp" or "udp".
    #[serde(default)]
    pub transport: String,
    /// Calls made per phase (over all rounds).
    #[serde(default)]
    pub count: u64,
    /// Rounds the phases were interleaved in.
    #[serde(default)]
    pub rounds: usize,
    /// Per round: the fast and hedged p99 and their ratio.
    #[serde(default)]
    pub per_round: Vec<RoundRatio>,
    /// The median of the per-round ratios.
    #[serde(default)]
    pub ratio_median: Option<f64>,
    /// Rounds whose ratio is at most [`TARGET_RATIO`].
    #[serde(default)]
    pub rounds_meeting_target: usize,
    /// "processes" (servers and client each a process) or "in-process".
    #[serde(default)]
    pub setup: String,
    /// Servers on CPU 0 and client on CPU 1.
    #[serde(default)]
    pub pinned: bool,
    /// How the servers and the client were scheduled: "fifo" (`chrt -f 1`), "nice -20" or
    /// "normal".
    #[serde(default)]
    pub priority: String,
    /// /proc/loadavg (1, 5, 15 minutes) at the start and at the end.
    #[serde(default)]
    pub load_average: [String; 2],
}

/// The phases of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Calls to the fast server.
    Fast,
    /// Calls to the stalling server, no soft timeout.
    Stalling,
    /// Calls to the stalling server with the soft timeout, no hedge.
    SoftOnly,
    /// `call_any` over both.
    Hedged,
}

impl Phase {
    /// Every phase, in the order of an even round.
    pub const ALL: [Phase; 4] = [Phase::Fast, Phase::Stalling, Phase::SoftOnly, Phase::Hedged];
}

/// The phases of round `round` (from 0): [`Phase::ALL`]'s order in even rounds, reversed in odd
/// ones, so that no phase always runs just after another (a backlog a phase leaves, or a
/// burst of load, would otherwise land on the same phase every round).
pub fn round_order(round: usize) -> [Phase; 4] {
    let mut order = Phase::ALL;
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// Calls per phase in round `round` of `rounds`: `count / rounds`, the remainder one each to the
/// first rounds, so that the rounds add up to `count`.
pub fn calls_in_round(count: u64, rounds: usize, round: usize) -> u64 {
    let rounds = rounds.max(1) as u64;
    let extra = u64::from((round as u64) < count % rounds);
    count / rounds + extra
}

/// p50, p99 and max of round-trip times in ns, sorted in place.
pub fn latency(v: &mut [u64]) -> Latency {
    v.sort_unstable();
    let us = |p: f64| percentile(v, p).unwrap_or(0) as f64 / 1000.0;
    Latency {
        p50_us: us(50.0),
        p99_us: us(99.0),
        max_us: us(100.0),
    }
}

/// Every phase's round-trip times (ns) over the rounds so far, and each finished round's ratio.
#[derive(Debug, Default)]
pub struct Rounds {
    fast: Vec<u64>,
    stalling: Vec<u64>,
    soft_only: Vec<u64>,
    hedged: Vec<u64>,
    /// This round's p99 (µs) of the fast phase and of the hedged one, once recorded.
    current: (Option<f64>, Option<f64>),
    per_round: Vec<RoundRatio>,
    /// Calls of the soft-only phase whose soft timeout passed.
    pub soft_passed: u64,
    /// Hedged calls answered by the second (fast) server.
    pub by_second: u64,
}

impl Rounds {
    /// Room for `count` calls per phase.
    pub fn with_capacity(count: u64) -> Rounds {
        let n = usize::try_from(count).unwrap_or(0);
        Rounds {
            fast: Vec::with_capacity(n),
            stalling: Vec::with_capacity(n),
            soft_only: Vec::with_capacity(n),
            hedged: Vec::with_capacity(n),
            ..Rounds::default()
        }
    }

    /// One phase's calls of the current round.
    pub fn record(&mut self, phase: Phase, mut times: Vec<u64>) {
        // Sorts this round's times; the order within a phase's list does not matter.
        let round_p99 = latency(&mut times).p99_us;
        match phase {
            Phase::Fast => self.current.0 = Some(round_p99),
            Phase::Hedged => self.current.1 = Some(round_p99),
            Phase::Stalling | Phase::SoftOnly => {}
        }
        let all = match phase {
            Phase::Fast => &mut self.fast,
            Phase::Stalling => &mut self.stalling,
            Phase::SoftOnly => &mut self.soft_only,
            Phase::Hedged => &mut self.hedged,
        };
        all.append(&mut times);
    }

    /// The ratio of the last round closed, if it had one.
    pub fn last_round(&self) -> Option<&RoundRatio> {
        self.per_round.last()
    }

    /// Close the current round: its ratio, if both the fast and the hedged phase ran in it.
    pub fn end_round(&mut self) {
        if let (Some(fast), Some(hedged)) = std::mem::take(&mut self.current) {
            let ratio = if fast > 0.0 {
                hedged / fast
            } else {
                f64::INFINITY
            };
            self.per_round.push(RoundRatio {
                fast_p99_us: fast,
                hedged_p99_us: hedged,
                ratio,
            });
        }
    }

    /// The figures of every phase over all rounds; the fields of the setup (`soft_us`,
    /// `concurrent`, `transport`, `setup`, `pinned`, `load_average`) are left for the caller.
    pub fn finish(mut self) -> HedgeResult {
        let ratios: Vec<f64> = self.per_round.iter().map(|r| r.ratio).collect();
        HedgeResult {
            fast_only: latency(&mut self.fast),
            stalling_only: latency(&mut self.stalling),
            soft_only: latency(&mut self.soft_only),
            soft_only_passed: self.soft_passed,
            hedged: latency(&mut self.hedged),
            hedged_by_second: self.by_second,
            soft_us: 0,
            budget: None,
            concurrent: 1,
            transport: String::new(),
            count: self.fast.len() as u64,
            rounds: self.per_round.len(),
            ratio_median: median(&ratios),
            rounds_meeting_target: ratios.iter().filter(|&&r| r <= TARGET_RATIO).count(),
            per_round: self.per_round,
            setup: String::new(),
            pinned: false,
            priority: String::new(),
            load_average: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::{CommandFactory, Parser};

    #[test]
    fn command_line_of_the_driver_and_the_roles() {
        HedgeCli::command().debug_assert();
        let cli = HedgeCli::parse_from(["hedge", "--count", "100", "--udp", "--soft-us", "30"]);
        assert!(cli.role.is_none());
        let d = cli.driver;
        assert_eq!(
            (d.calls.count, d.calls.rounds, d.calls.soft_us),
            (100, 10, 30)
        );
        assert!(d.udp && !d.in_process && !d.no_pin && !d.no_fifo && !d.no_nice);
        assert_eq!((d.stall.stall_ms, d.stall.stall_percent), (10, 5.0));
        let cli =
            HedgeCli::parse_from(["hedge", "server", "--stall-percent", "0", "--name", "fast"]);
        let Some(HedgeRole::Server(s)) = cli.role else {
            panic!("not the server role");
        };
        assert_eq!(
            (s.name.as_str(), s.stall.stall_percent, s.udp),
            ("fast", 0.0, false)
        );
        let argv = [
            "hedge",
            "client",
            "--stalling",
            "127.0.0.1:1",
            "--fast",
            "127.0.0.1:2",
        ];
        let Some(HedgeRole::Client(c)) = HedgeCli::parse_from(argv).role else {
            panic!("not the client role");
        };
        assert_eq!((c.fast.port(), c.calls.rounds), (2, 10));
        // A role needs its addresses; the driver's flags are not a role's.
        assert!(
            HedgeCli::try_parse_from(["hedge", "client", "--stalling", "127.0.0.1:1"]).is_err()
        );
        assert!(HedgeCli::try_parse_from(["hedge", "server", "--in-process"]).is_err());
    }

    #[test]
    fn percentiles_in_microseconds() {
        let l = latency(&mut (1..=100).rev().map(|i| i * 1000).collect::<Vec<_>>());
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (50.0, 99.0, 100.0));
    }

    #[test]
    fn rounds_add_up_to_the_count() {
        for (count, rounds) in [(20_000, 10), (20_003, 10), (7, 10), (5, 1), (9, 0)] {
            let per: Vec<u64> = (0..rounds.max(1))
                .map(|r| calls_in_round(count, rounds, r))
                .collect();
            assert_eq!(per.iter().sum::<u64>(), count, "{count} in {rounds}");
            let (min, max) = (per.iter().min(), per.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{per:?}");
        }
        assert_eq!(calls_in_round(20_003, 10, 2), 2_001);
        assert_eq!(calls_in_round(20_003, 10, 3), 2_000);
    }

    #[test]
    fn odd_rounds_run_the_phases_backwards() {
        assert_eq!(round_order(0), Phase::ALL);
        assert_eq!(
            round_order(1),
            [Phase::Hedged, Phase::SoftOnly, Phase::Stalling, Phase::Fast]
        );
        assert_eq!(round_order(2), Phase::ALL);
    }

    /// 100 calls of `base` µs, the last `slow` of which take `tail` µs instead.
    fn calls(base: u64, slow: usize, tail: u64) -> Vec<u64> {
        (0..100)
            .map(|i| if i >= 100 - slow { tail } else { base } * 1000)
            .collect()
    }

    #[test]
    fn each_round_is_judged_on_its_own_p99s_and_the_phases_over_all_calls() {
        let mut r = Rounds::with_capacity(300);
        // Round 0: fast p99 100, hedged p99 150 (1.5, meets); round 1: fast p99 50, hedged p99
        // 400 (8, misses); round 2: fast p99 200, hedged p99 300 (1.5, meets).
        for (fast, hedged) in [(100, 150), (50, 400), (200, 300)] {
            for phase in round_order(r.per_round.len()) {
                let times = match phase {
                    Phase::Fast => calls(10, 2, fast),
                    Phase::Hedged => calls(20, 2, hedged),
                    Phase::Stalling => calls(30, 5, 10_000),
                    Phase::SoftOnly => calls(40, 0, 0),
                };
                r.record(phase, times);
            }
            r.end_round();
        }
        r.soft_passed = 17;
        r.by_second = 9;
        let res = r.finish();
        let ratios: Vec<f64> = res.per_round.iter().map(|x| x.ratio).collect();
        assert_eq!(ratios, [1.5, 8.0, 1.5]);
        assert_eq!(res.per_round[1].fast_p99_us, 50.0);
        assert_eq!(res.per_round[1].hedged_p99_us, 400.0);
        assert_eq!(res.ratio_median, Some(1.5));
        assert_eq!(res.rounds_meeting_target, 2);
        assert_eq!((res.rounds, res.count), (3, 300));
        // Over all 300 fast calls, the 6 slow ones are the top 2 %: the p99 is the 297th.
        assert_eq!(res.fast_only.p50_us, 10.0);
        assert_eq!(res.fast_only.p99_us, 100.0);
        assert_eq!(res.fast_only.max_us, 200.0);
        assert_eq!(res.stalling_only.p99_us, 10_000.0);
        assert_eq!(res.soft_only.p50_us, 40.0);
        assert_eq!((res.soft_only_passed, res.hedged_by_second), (17, 9));
    }

    #[test]
    fn a_round_without_both_phases_has_no_ratio() {
        let mut r = Rounds::default();
        r.record(Phase::Fast, calls(10, 0, 0));
        r.end_round();
        r.record(Phase::Hedged, calls(10, 0, 0));
        r.end_round();
        let res = r.finish();
        assert!(res.per_round.is_empty());
        assert_eq!((res.ratio_median, res.rounds_meeting_target), (None, 0));
    }
}
