//! The relay scenario of BENCHMARKS.md (issue 14): request/response between two netaio nodes,
//! directly (a caller calling a server) and through a relay (both peers reserved at the relay;
//! the service reaches the relay as a client, as from behind a NAT), for a small and a large
//! payload, over TCP (`Relay` on a `TcpServer`) or UDP (`UdpRelay` on a `UdpNode`). It reports
//! the request rate and throughput of each and the ratio relayed ÷ direct, and prints one JSON
//! line.
//!
//! The issue's targets assume a relay with a CPU of its own (another host). By default each role
//! is therefore a process of its own ([`crate::procs`]): the relay pinned to CPU 1; the caller
//! and the far end (the server for the direct path, the service behind the relay for the relayed
//! one) pinned together to CPU 0, so that the endpoints have the same CPU on both paths and only
//! the relay's work is added, on a CPU of its own, as a third host would add it. Each role runs a
//! current-thread runtime. The paths are measured interleaved, `--rounds` rounds of both at every
//! size (the order reversed every other round), because the machine's speed drifts; the ratio
//! reported is the median of the rounds' ratios. The caller reads every role's CPU time
//! (`/proc/PID/task/*/schedstat`) around each measurement, which says which process is the
//! bottleneck. `--in-process` keeps the old setup (all nodes in one process on a 2-worker
//! runtime), which is what callgrind can count.
//!
//! [`nodes`] has the nodes and the measurement, [`roles`] the processes; this file the flags,
//! the results and their bookkeeping.

pub mod nodes;
pub mod roles;

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::Transport;
use crate::stats::median;

/// The `relay` command line: the driver, or one of the roles it spawns.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "relay", args_conflicts_with_subcommands = true)]
pub struct RelayCli {
    /// The role to run, if not the driver.
    #[command(subcommand)]
    pub role: Option<RelayRole>,
    /// The driver's flags.
    #[command(flatten)]
    pub driver: RelayArgs,
}

/// The roles the driver starts itself in.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RelayRole {
    /// The direct path's echo server; prints `listening ADDR`
    Server(NodeArgs),
    /// The relay; prints `listening ADDR`
    Relay(NodeArgs),
    /// The echo service behind the relay, reserved there as `c`; prints `listening ADDR` once
    /// reserved
    Service(ServiceArgs),
    /// The caller: measures both paths in rounds; prints one JSON line of rows
    Caller(CallerArgs),
    /// A plain TCP proxy to one address (`--proxy`); prints `listening ADDR`
    Proxy(ProxyArgs),
}

/// What the calls are: shared by the driver and the caller role.
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// Calls per measurement (each round measures each path at each size once)
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Calls in flight at once (each caller task makes one call at a time)
    #[arg(long, default_value_t = 16)]
    pub concurrency: u64,
    /// Payload sizes, bytes (request and reply alike); default 64,60000 over TCP, 64,1200 over
    /// UDP (a datagram holds at most 65,507 bytes, envelope included)
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Rounds: both paths at every size in each, the order reversed every other round
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Which paths to measure: `both`, or one of `direct` and `relay` (one path per process, for
    /// callgrind with --in-process: the instructions of N more calls are the difference of two
    /// runs)
    #[arg(long, default_value = "both")]
    pub mode: String,
}

impl CallArgs {
    /// The sizes asked for, or the transport's defaults.
    pub fn sizes(&self, transport: Transport) -> Vec<usize> {
        match (self.sizes.is_empty(), transport) {
            (false, _) => self.sizes.clone(),
            (true, Transport::Tcp) => vec![64, 60_000],
            (true, Transport::Udp) => vec![64, 1_200],
        }
    }

    /// Whether the direct and the relayed path are measured.
    pub fn paths(&self) -> crate::Result<(bool, bool)> {
        match self.mode.as_str() {
            "both" => Ok((true, true)),
            "direct" => Ok((true, false)),
            "relay" => Ok((false, true)),
            m => Err(format!("unknown mode `{m}` (both, direct, relay)").into()),
        }
    }
}

/// `relay` flags (the driver).
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// The calls.
    #[command(flatten)]
    pub calls: CallArgs,
    /// `tcp` (a `Relay` on a `TcpServer`) or `udp` (a `UdpRelay` on a `UdpNode`)
    #[arg(long, default_value = "tcp")]
    pub transport: Transport,
    /// UDP: both socket buffers (`SO_RCVBUF`, `SO_SNDBUF`) of every node, bytes (default: the
    /// kernel's, which 16 calls in flight overflow from 8 kB; the kernel caps the request at
    /// net.core.rmem_max / wmem_max)
    #[arg(long, value_name = "BYTES")]
    pub udp_buffer: Option<usize>,
    /// All nodes in this one process on a 2-worker runtime (the old setup; for callgrind)
    /// instead of a process per role
    #[arg(long)]
    pub in_process: bool,
    /// Do not pin the relay to CPU 1 and the other roles to CPU 0
    #[arg(long)]
    pub no_pin: bool,
    /// Do not run the roles in the real-time FIFO class (`chrt -f 1`; they are when the driver
    /// may, as root); nice -20 instead, if allowed
    #[arg(long)]
    pub no_fifo: bool,
    /// With --no-fifo: do not run them at nice -20 either
    #[arg(long)]
    pub no_nice: bool,
    /// The CPU of the direct path's server when pinned: 0 (with the caller, as the service is),
    /// or 1 (with the relay: the direct path then crosses CPUs as the relayed one does)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub server_cpu: u8,
    /// The relayed path through a plain TCP proxy (tokio's `copy_bidirectional`, 64 KiB
    /// buffers) to the direct path's server instead of through a netaio relay: the least a relay
    /// in user space can cost on this layout, a ceiling for the ratio (TCP only)
    #[arg(long)]
    pub proxy: bool,
}

/// `relay proxy`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Where every accepted connection is forwarded
    #[arg(long, value_name = "ADDR")]
    pub to: SocketAddr,
}

/// `relay server` and `relay relay`.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// `tcp` or `udp`
    #[arg(long, default_value = "tcp")]
    pub transport: Transport,
    /// UDP: both socket buffers (`SO_RCVBUF`, `SO_SNDBUF`) of every node, bytes (default: the
    /// kernel's, which 16 calls in flight overflow from 8 kB; the kernel caps the request at
    /// net.core.rmem_max / wmem_max)
    #[arg(long, value_name = "BYTES")]
    pub udp_buffer: Option<usize>,
}

/// `relay service`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// `tcp` or `udp`
    #[arg(long, default_value = "tcp")]
    pub transport: Transport,
    /// UDP: both socket buffers (`SO_RCVBUF`, `SO_SNDBUF`) of every node, bytes (default: the
    /// kernel's, which 16 calls in flight overflow from 8 kB; the kernel caps the request at
    /// net.core.rmem_max / wmem_max)
    #[arg(long, value_name = "BYTES")]
    pub udp_buffer: Option<usize>,
    /// The relay's address
    #[arg(long, value_name = "ADDR")]
    pub relay: SocketAddr,
}

/// `relay caller`.
#[derive(Debug, Clone, clap::Args)]
pub struct CallerArgs {
    /// The calls.
    #[command(flatten)]
    pub calls: CallArgs,
    /// `tcp` or `udp`
    #[arg(long, default_value = "tcp")]
    pub transport: Transport,
    /// UDP: both socket buffers (`SO_RCVBUF`, `SO_SNDBUF`) of every node, bytes (default: the
    /// kernel's, which 16 calls in flight overflow from 8 kB; the kernel caps the request at
    /// net.core.rmem_max / wmem_max)
    #[arg(long, value_name = "BYTES")]
    pub udp_buffer: Option<usize>,
    /// The direct path's server
    #[arg(long, value_name = "ADDR")]
    pub direct: SocketAddr,
    /// The relay (the service is reserved there as `c`)
    #[arg(long, value_name = "ADDR")]
    pub relay: SocketAddr,
    /// The process ids of the server, the relay and the service, whose CPU time is read around
    /// each measurement
    #[arg(long, value_delimiter = ',', value_name = "PID,PID,PID")]
    pub pids: Vec<u32>,
    /// `--relay` is a plain proxy to the server (`relay proxy`): call through it as to a
    /// server, without reserving or addressing a peer
    #[arg(long)]
    pub proxied: bool,
}

/// serde_json writes a NaN (a path not measured) as `null`: read it back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Calls answered per second.
    #[serde(deserialize_with = "nan_if_null")]
    pub calls_per_s: f64,
    /// Payload bytes per second, both directions, MB.
    #[serde(deserialize_with = "nan_if_null")]
    pub mb_per_s: f64,
}

impl Rates {
    /// A path not measured.
    pub const NONE: Rates = Rates {
        calls_per_s: f64::NAN,
        mb_per_s: f64::NAN,
    };
}

/// Both paths at one size in one round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoundRates {
    /// The direct path.
    pub direct: Rates,
    /// The relayed path.
    pub relayed: Rates,
    /// relayed ÷ direct, calls per second.
    #[serde(deserialize_with = "nan_if_null")]
    pub ratio: f64,
}

/// One role's CPU time per call on one path, over all rounds' measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleCpu {
    /// `caller`, `server`, `relay`, `service`, or `process` (--in-process: all of them).
    pub role: String,
    /// CPU time per call, µs (user and system, all the process's threads).
    pub us_per_call: f64,
}

/// Direct and relayed at one size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayRow {
    /// Payload bytes.
    pub size: usize,
    /// A caller calling a server: the median over the rounds.
    pub direct: Rates,
    /// The same through a relay: the median over the rounds.
    pub relayed: Rates,
    /// relayed ÷ direct, calls per second: the median of the rounds' ratios.
    #[serde(deserialize_with = "nan_if_null")]
    pub ratio: f64,
    /// Each round's measurements.
    #[serde(default)]
    pub per_round: Vec<RoundRates>,
    /// CPU per call of each role on the direct path.
    #[serde(default)]
    pub direct_cpu: Vec<RoleCpu>,
    /// CPU per call of each role on the relayed path.
    #[serde(default)]
    pub relayed_cpu: Vec<RoleCpu>,
    /// "tcp" or "udp".
    #[serde(default)]
    pub transport: String,
    /// "processes" (a process per role) or "in-process".
    #[serde(default)]
    pub setup: String,
    /// Relay on CPU 1, the other roles on CPU 0 (the server on `server_cpu`).
    #[serde(default)]
    pub pinned: bool,
    /// The CPU the direct path's server was pinned to.
    #[serde(default)]
    pub server_cpu: u8,
    /// What relayed: "netaio" (a `Relay` or `UdpRelay`) or "proxy" (`--proxy`).
    #[serde(default)]
    pub relayed_by: String,
    /// How the roles were scheduled: "fifo", "nice -20" or "normal".
    #[serde(default)]
    pub priority: String,
    /// Calls per measurement.
    #[serde(default)]
    pub count: u64,
    /// Calls in flight.
    #[serde(default)]
    pub concurrency: u64,
    /// /proc/loadavg (1, 5, 15 minutes) at the start and at the end.
    #[serde(default)]
    pub load_average: [String; 2],
}

/// Which path a measurement is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Caller → server.
    Direct,
    /// Caller → relay → service.
    Relayed,
}

/// The paths of round `round` (from 0): direct first in even rounds, relayed first in odd ones,
/// so that neither always runs just after the other (or after a size change).
pub fn round_order(round: usize) -> [Path; 2] {
    if round.is_multiple_of(2) {
        [Path::Direct, Path::Relayed]
    } else {
        [Path::Relayed, Path::Direct]
    }
}

/// CPU nanoseconds of each role over a path's measurements, and the calls they made.
#[derive(Debug, Clone, Default)]
pub struct CpuTally {
    /// (role, ns), in the order first recorded.
    pub ns: Vec<(String, u64)>,
    /// Calls measured.
    pub calls: u64,
}

impl CpuTally {
    /// Add one measurement: `calls` calls, and what each role spent on them.
    pub fn add(&mut self, calls: u64, spent: &[(&str, u64)]) {
        self.calls += calls;
        for &(role, ns) in spent {
            match self.ns.iter_mut().find(|(r, _)| r == role) {
                Some((_, total)) => *total += ns,
                None => self.ns.push((role.to_owned(), ns)),
            }
        }
    }

    /// µs per call of each role.
    pub fn per_call(&self) -> Vec<RoleCpu> {
        let calls = self.calls.max(1) as f64;
        self.ns
            .iter()
            .map(|(role, ns)| RoleCpu {
                role: role.clone(),
                us_per_call: *ns as f64 / 1000.0 / calls,
            })
            .collect()
    }
}

/// One size's rounds, and the row they make: the medians of the rates and of the ratios (the
/// setup's fields are left for the driver).
pub fn row(size: usize, per_round: Vec<RoundRates>, cpu: [&CpuTally; 2]) -> RelayRow {
    let med = |f: &dyn Fn(&RoundRates) -> f64| {
        median(&per_round.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    RelayRow {
        size,
        direct: Rates {
            calls_per_s: med(&|r| r.direct.calls_per_s),
            mb_per_s: med(&|r| r.direct.mb_per_s),
        },
        relayed: Rates {
            calls_per_s: med(&|r| r.relayed.calls_per_s),
            mb_per_s: med(&|r| r.relayed.mb_per_s),
        },
        ratio: med(&|r| r.ratio),
        direct_cpu: cpu[0].per_call(),
        relayed_cpu: cpu[1].per_call(),
        per_round,
        transport: String::new(),
        setup: String::new(),
        pinned: false,
        server_cpu: 0,
        relayed_by: String::new(),
        priority: String::new(),
        count: 0,
        concurrency: 0,
        load_average: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::{CommandFactory, Parser};

    #[test]
    fn command_line_of_the_driver_and_the_roles() {
        RelayCli::command().debug_assert();
        // The old flags still work.
        let cli = RelayCli::parse_from(["relay", "--count", "100", "--sizes", "64,60000"]);
        let d = cli.driver;
        assert!(cli.role.is_none());
        assert_eq!(
            (d.calls.count, d.calls.rounds, d.calls.concurrency),
            (100, 3, 16)
        );
        assert_eq!(d.calls.sizes(d.transport), [64, 60_000]);
        assert!(!d.in_process && !d.no_pin && !d.no_fifo && !d.no_nice && !d.proxy);
        assert!(RelayCli::parse_from(["relay", "--proxy"]).driver.proxy);
        let argv = ["relay", "proxy", "--to", "127.0.0.1:7"];
        let Some(RelayRole::Proxy(p)) = RelayCli::parse_from(argv).role else {
            panic!("not the proxy role");
        };
        assert_eq!(p.to.port(), 7);
        assert!(RelayCli::try_parse_from(["relay", "proxy"]).is_err());
        assert_eq!(d.server_cpu, 0);
        assert_eq!(
            RelayCli::parse_from(["relay", "--server-cpu", "1"])
                .driver
                .server_cpu,
            1
        );
        assert!(RelayCli::try_parse_from(["relay", "--server-cpu", "2"]).is_err());
        let d = RelayCli::parse_from(["relay", "--transport", "udp"]).driver;
        assert_eq!(d.transport, Transport::Udp);
        assert_eq!(d.calls.sizes(d.transport), [64, 1_200]);
        let d = RelayCli::parse_from(["relay", "--in-process", "--mode", "relay"]).driver;
        assert!(d.in_process);
        assert_eq!(d.calls.paths().ok(), Some((false, true)));
        assert!(d.calls.sizes.is_empty());
        let argv = [
            "relay",
            "caller",
            "--direct",
            "127.0.0.1:1",
            "--relay",
            "127.0.0.1:2",
            "--pids",
            "10,11,12",
            "--rounds",
            "5",
        ];
        let Some(RelayRole::Caller(c)) = RelayCli::parse_from(argv).role else {
            panic!("not the caller role");
        };
        assert_eq!((c.relay.port(), c.calls.rounds), (2, 5));
        assert_eq!(c.pids, [10, 11, 12]);
        let argv = [
            "relay",
            "service",
            "--relay",
            "127.0.0.1:2",
            "--transport",
            "udp",
        ];
        let Some(RelayRole::Service(s)) = RelayCli::parse_from(argv).role else {
            panic!("not the service role");
        };
        assert_eq!(s.transport, Transport::Udp);
        assert_eq!(s.udp_buffer, None);
        // --udp-buffer reaches every role and the driver.
        let d = RelayCli::parse_from(["relay", "--transport", "udp", "--udp-buffer", "8388608"]);
        assert_eq!(d.driver.udp_buffer, Some(8 << 20));
        for role in ["server", "relay"] {
            let argv = ["relay", role, "--udp-buffer", "65536"];
            let (Some(RelayRole::Server(n)) | Some(RelayRole::Relay(n))) =
                RelayCli::parse_from(argv).role
            else {
                panic!("not the {role} role");
            };
            assert_eq!(n.udp_buffer, Some(65_536));
        }
        let argv = [
            "relay",
            "service",
            "--relay",
            "127.0.0.1:2",
            "--udp-buffer",
            "1",
        ];
        let Some(RelayRole::Service(s)) = RelayCli::parse_from(argv).role else {
            panic!("not the service role");
        };
        assert_eq!(s.udp_buffer, Some(1));
        let argv = [
            "relay",
            "caller",
            "--direct",
            "127.0.0.1:1",
            "--relay",
            "127.0.0.1:2",
            "--udp-buffer",
            "2",
        ];
        let Some(RelayRole::Caller(c)) = RelayCli::parse_from(argv).role else {
            panic!("not the caller role");
        };
        assert_eq!(c.udp_buffer, Some(2));
        // A role needs its addresses; the driver's flags are not a role's.
        assert!(RelayCli::try_parse_from(["relay", "service"]).is_err());
        assert!(RelayCli::try_parse_from(["relay", "relay", "--in-process"]).is_err());
        assert!(RelayCli::try_parse_from(["relay", "--transport", "sctp"]).is_err());
        let bad = RelayCli::parse_from(["relay", "--mode", "both-ways"]).driver;
        assert!(bad.calls.paths().is_err());
    }

    #[test]
    fn paths_alternate_from_round_to_round() {
        assert_eq!(round_order(0), [Path::Direct, Path::Relayed]);
        assert_eq!(round_order(1), [Path::Relayed, Path::Direct]);
        assert_eq!(round_order(2), round_order(0));
    }

    fn rates(calls_per_s: f64) -> Rates {
        Rates {
            calls_per_s,
            mb_per_s: calls_per_s / 1000.0,
        }
    }

    #[test]
    fn a_row_is_the_median_of_its_rounds() {
        // The rounds' ratios 0.5, 0.25, 0.6: the median ratio is 0.5, not the ratio of the
        // median rates (300 ÷ 1000 = 0.3).
        let per_round: Vec<RoundRates> = [(1000.0, 500.0), (1200.0, 300.0), (500.0, 300.0)]
            .iter()
            .map(|&(d, r)| RoundRates {
                direct: rates(d),
                relayed: rates(r),
                ratio: r / d,
            })
            .collect();
        let mut direct = CpuTally::default();
        direct.add(100, &[("caller", 1_000_000), ("server", 500_000)]);
        direct.add(100, &[("caller", 1_000_000), ("server", 300_000)]);
        let mut relayed = CpuTally::default();
        relayed.add(50, &[("caller", 400_000), ("relay", 600_000)]);
        let r = row(64, per_round, [&direct, &relayed]);
        assert_eq!((r.size, r.ratio), (64, 0.5));
        assert_eq!(r.direct, rates(1000.0));
        assert_eq!(r.relayed.calls_per_s, 300.0);
        assert_eq!(r.per_round.len(), 3);
        let us = |v: &[RoleCpu]| {
            v.iter()
                .map(|c| (c.role.clone(), c.us_per_call))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            us(&r.direct_cpu),
            [("caller".into(), 10.0), ("server".into(), 4.0)]
        );
        assert_eq!(
            us(&r.relayed_cpu),
            [("caller".into(), 8.0), ("relay".into(), 12.0)]
        );
    }

    #[test]
    fn a_path_not_measured_reads_back_as_nan() {
        let mut r = row(
            64,
            vec![RoundRates {
                direct: rates(100.0),
                relayed: Rates::NONE,
                ratio: f64::NAN,
            }],
            [&CpuTally::default(), &CpuTally::default()],
        );
        r.transport = "tcp".into();
        let json = serde_json::to_string(&[&r]).unwrap_or_default();
        assert!(json.contains("\"ratio\":null"), "{json}");
        let back: Vec<RelayRow> = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back.len(), 1);
        assert!(back[0].ratio.is_nan() && back[0].relayed.calls_per_s.is_nan());
        assert_eq!(
            (back[0].direct, back[0].transport.as_str()),
            (rates(100.0), "tcp")
        );
        // The old line (size, direct, relayed, ratio) still reads.
        let old = r#"[{"size":64,"direct":{"calls_per_s":1.0,"mb_per_s":0.0},
            "relayed":{"calls_per_s":0.5,"mb_per_s":0.0},"ratio":0.5}]"#;
        let old: Vec<RelayRow> = serde_json::from_str(old).unwrap_or_default();
        assert_eq!(old.first().map(|r| r.ratio), Some(0.5));
    }
}
