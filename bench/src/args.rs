//! The command lines of the three roles (clap): [`DriverArgs`] (`bench`), [`ServerArgs`]
//! (`bench server`, `netaio-echo`, `baseline-echo`) and [`ClientArgs`] (`bench client`,
//! `loadgen`); [`BenchCli`] is the `bench` binary's, which runs the driver unless given the
//! `server` or `client` role (the driver runs itself in those roles, so it needs no other binary).
//!
//! ```
//! use clap::Parser;
//! use netaio_bench::args::{BenchCli, Role};
//!
//! let cli = BenchCli::try_parse_from(["bench", "server", "--impl", "baseline"]).unwrap();
//! assert!(matches!(cli.role, Some(Role::Server(_))));
//! let cli = BenchCli::try_parse_from(["bench", "--quick", "--workloads", "w1,w3"]).unwrap();
//! assert_eq!(cli.driver.workloads.len(), 2);
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::server::DEFAULT_REPLAY_CAPACITY;
use crate::{Impl, Mode, Transport, Workload};

/// The netaio benchmark driver.
///
/// Runs each workload against the hand-written tokio baseline (mode none) and against netaio in
/// each mode, alternating, in separate processes (server pinned to CPU 0, client to CPU 1 when
/// `taskset` works; at nice -20 when allowed, so that other processes disturb less), then prints
/// medians with the ratio netaio / baseline and writes JSON. --quick scales the counts down (and 3
/// runs instead of 5). --python adds the Python library (netaio 0.0.9, from NETAIO_PYTHON or the
/// workspace's .venv) as a third server, mode none, with W2 capped at 100,000 messages; its ratio
/// is python / baseline.
// The doc comment above is the `--help` text (its first line the `-h` one).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bench", args_conflicts_with_subcommands = true)]
pub struct BenchCli {
    /// The role to run, if not the driver.
    #[command(subcommand)]
    pub role: Option<Role>,
    /// The driver's flags.
    #[command(flatten)]
    pub driver: DriverArgs,
}

/// The roles the driver starts itself in.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Role {
    /// Run one echo server; prints `listening ADDR` (the driver starts these)
    Server(ServerRole),
    /// Run one workload against a server; prints one JSON line (the driver starts these)
    Client(ClientArgs),
}

/// `bench server`: which server, and its flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerRole {
    /// The server: baseline, netaio or python
    #[arg(long = "impl", value_name = "IMPL", default_value = "netaio")]
    pub imp: Impl,
    /// The flags every server takes.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The flags of the server role.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Plugins of the netaio server: none, hmac, hmac+aead, sealed, sealed-chacha (the others
    /// take none)
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub mode: Mode,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub address: SocketAddr,
    /// Runtime worker threads (1: a current-thread runtime)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Replay-cache capacity of the netaio server in the plugin modes
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPLAY_CAPACITY)]
    pub replay_capacity: usize,
    /// tcp or udp
    #[arg(long, value_name = "T", default_value = "tcp")]
    pub transport: Transport,
    /// Idle timeout of the netaio TCP server, seconds; 0 for none [default: the library's, 300]
    #[arg(long, value_name = "S")]
    pub idle_timeout: Option<u64>,
}

/// The flags of the client role.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The server's address
    #[arg(long, value_name = "ADDR")]
    pub address: SocketAddr,
    /// w1, w5 or rt: round trips; w4 or udp: UDP round trips; w2 or pipeline: pipelined;
    /// w3 or many: --conns connections for --seconds; idle: hold --conns idle connections
    #[arg(long, value_name = "W", value_parser = [
        "w1", "w5", "rt", "w4", "udp", "w2", "pipeline", "w3", "many", "idle",
    ])]
    pub workload: String,
    /// The server's plugins, which the requests are sealed for: none, hmac, hmac+aead, sealed,
    /// sealed-chacha
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub mode: Mode,
    /// Request content bytes
    #[arg(long, value_name = "B", default_value_t = 64)]
    pub size: usize,
    /// Timed requests [default: 20000 round trips, 400000 pipelined]
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Untimed round trips first [default: 1000]
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Connections [default: 50 for w3, 5000 for idle]
    #[arg(long, value_name = "N")]
    pub conns: Option<usize>,
    /// Duration of w3, seconds
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub seconds: f64,
    /// Requests per second to pre-seal for w3 (the ones past the pool are sealed inline)
    #[arg(long, value_name = "R", default_value_t = 250_000.0)]
    pub rate_estimate: f64,
    /// Give up when the workload has not finished after S seconds
    #[arg(long, value_name = "S", default_value_t = 120)]
    pub timeout: u64,
    /// Auth block encoding: native, or python (packify) for the Python server
    #[arg(long, value_name = "C", default_value = "native", value_parser = ["native", "python"])]
    pub codec: String,
}

/// The flags of the driver.
#[derive(Debug, Clone, clap::Args)]
pub struct DriverArgs {
    /// Smaller counts and 3 runs (W3 keeps its 5 s)
    #[arg(long)]
    pub quick: bool,
    /// Runs per workload, server and mode [default: 5, 3 with --quick]
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
    /// Workloads to run, comma-separated
    #[arg(
        long,
        value_name = "W,..",
        value_delimiter = ',',
        default_value = "w1,w2,w3,w4,w5"
    )]
    pub workloads: Vec<Workload>,
    /// Netaio modes to run, comma-separated (also: sealed-chacha)
    #[arg(
        long,
        value_name = "MODE,..",
        value_delimiter = ',',
        default_value = "none,hmac,hmac+aead,sealed"
    )]
    pub modes: Vec<Mode>,
    /// Where to write the JSON results
    #[arg(long, value_name = "PATH", default_value = "bench-results.json")]
    pub json: PathBuf,
    /// Do not pin the server and the client to CPUs 0 and 1
    #[arg(long)]
    pub no_pin: bool,
    /// Do not run at nice -20
    #[arg(long)]
    pub no_nice: bool,
    /// Skip the idle-connection memory measurement
    #[arg(long)]
    pub no_memory: bool,
    /// The Python library (netaio 0.0.9) as a third server
    #[arg(long)]
    pub python: bool,
    /// W1 timed round trips [default: 50000, 20000 with --quick]
    #[arg(long, value_name = "N")]
    pub w1_count: Option<usize>,
    /// W2 pipelined messages [default: 2000000, 400000 with --quick]
    #[arg(long, value_name = "N")]
    pub w2_count: Option<usize>,
    /// W3 duration, seconds
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub w3_seconds: f64,
    /// W3 connections
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub w3_conns: usize,
    /// W4 timed round trips [default: 50000, 20000 with --quick]
    #[arg(long, value_name = "N")]
    pub w4_count: Option<usize>,
    /// W5 timed round trips [default: 3000, 1000 with --quick]
    #[arg(long, value_name = "N")]
    pub w5_count: Option<usize>,
    /// Idle connections of the memory measurement
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    pub idle_conns: usize,
    /// W3 requests per second to pre-seal
    #[arg(long, value_name = "R", default_value_t = 250_000.0)]
    pub rate_estimate: f64,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<BenchCli, clap::Error> {
        BenchCli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    #[test]
    fn command_is_well_formed() {
        BenchCli::command().debug_assert();
    }

    #[test]
    fn driver_defaults_and_flags() {
        let cli = parse(&[]).unwrap();
        assert!(cli.role.is_none());
        let d = cli.driver;
        assert!(!(d.quick || d.no_pin || d.no_nice || d.no_memory || d.python));
        assert_eq!((d.runs, d.w1_count, d.w2_count), (None, None, None));
        assert_eq!(d.workloads, Workload::ALL);
        assert_eq!(d.modes, Mode::DEFAULT);
        assert_eq!(d.json, PathBuf::from("bench-results.json"));
        assert_eq!((d.w3_seconds, d.w3_conns, d.idle_conns), (5.0, 50, 5_000));
        assert_eq!(d.rate_estimate, 250_000.0);
        let d = parse(&[
            "--quick",
            "--workloads",
            "w1,W3",
            "--modes=none",
            "--python",
            "--no-memory",
            "--runs",
            "2",
            "--json",
            "/tmp/b.json",
        ])
        .unwrap()
        .driver;
        assert!(d.quick && d.python && d.no_memory);
        assert_eq!(d.workloads, [Workload::W1, Workload::W3]);
        assert_eq!(d.modes, [Mode::None]);
        assert_eq!(d.runs, Some(2));
        assert!(parse(&["--workloads", "w9"]).is_err());
        assert!(parse(&["--modes", "rot13"]).is_err());
    }

    #[test]
    fn server_role() {
        let Some(Role::Server(s)) = parse(&["server"]).unwrap().role else {
            panic!("not the server role");
        };
        assert_eq!(s.imp, Impl::Netaio);
        assert_eq!(s.server.mode, Mode::None);
        assert_eq!(s.server.address, "127.0.0.1:0".parse().unwrap());
        assert_eq!(s.server.threads, 1);
        assert_eq!(s.server.replay_capacity, DEFAULT_REPLAY_CAPACITY);
        assert_eq!(s.server.transport, Transport::Tcp);
        assert_eq!(s.server.idle_timeout, None);
        // What the driver passes.
        let Some(Role::Server(s)) = parse(&[
            "server",
            "--impl",
            "baseline",
            "--mode",
            "none",
            "--transport",
            "udp",
            "--replay-capacity",
            "65536",
            "--idle-timeout",
            "0",
        ])
        .unwrap()
        .role
        else {
            panic!("not the server role");
        };
        assert_eq!(
            (s.imp, s.server.transport),
            (Impl::Baseline, Transport::Udp)
        );
        assert_eq!(s.server.replay_capacity, 65_536);
        assert_eq!(s.server.idle_timeout, Some(0));
        // The driver's flags are not the server's.
        assert!(parse(&["server", "--quick"]).is_err());
        assert!(parse(&["--quick", "server"]).is_err());
    }

    #[test]
    fn client_role() {
        let Some(Role::Client(c)) =
            parse(&["client", "--address", "127.0.0.1:9", "--workload", "w1"])
                .unwrap()
                .role
        else {
            panic!("not the client role");
        };
        assert_eq!(c.address, "127.0.0.1:9".parse().unwrap());
        assert_eq!(
            (c.workload.as_str(), c.mode, c.size),
            ("w1", Mode::None, 64)
        );
        assert_eq!((c.count, c.warmup, c.conns), (None, None, None));
        assert_eq!(
            (c.seconds, c.rate_estimate, c.timeout),
            (5.0, 250_000.0, 120)
        );
        assert_eq!(c.codec, "native");
        let Some(Role::Client(c)) = parse(&[
            "client",
            "--address",
            "127.0.0.1:9",
            "--mode",
            "hmac+aead",
            "--workload",
            "w3",
            "--size",
            "64",
            "--conns",
            "50",
            "--seconds",
            "5",
            "--rate-estimate",
            "125000",
            "--codec",
            "python",
        ])
        .unwrap()
        .role
        else {
            panic!("not the client role");
        };
        assert_eq!(
            (c.mode, c.conns, c.rate_estimate),
            (Mode::HmacAead, Some(50), 125_000.0)
        );
        assert_eq!(c.codec, "python");
        for bad in [
            &["client", "--workload", "w1"][..],
            &["client", "--address", "127.0.0.1:9"],
            &["client", "--address", "127.0.0.1:9", "--workload", "w9"],
            &[
                "client",
                "--address",
                "127.0.0.1:9",
                "--workload",
                "w1",
                "--codec",
                "x",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
