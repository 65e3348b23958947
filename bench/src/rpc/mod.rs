//! `rpc-compare`: issue 20's side-by-side table in one command. The same three workloads with a
//! library on **both** sides, against a raw tokio echo of netaio's framing:
//!
//! - `raw`: the hand-written baseline server ([`crate::server::baseline_server`]) and the
//!   minimal frame client of the main harness (W2 keeps the same window as the others);
//! - `tarpc`: a tarpc server and client (bincode over TCP, `Vec<u8>` in and out): the
//!   `tarpc-echo` binary of the `netaio-bench-tarpc` package (`bench/tarpc`), found next to this
//!   one. A package of its own, built by its own cargo command: tarpc turns on `tracing`'s `log`
//!   feature, which would otherwise be compiled into the netaio being measured;
//! - `netaio`: netaio's `TcpServer` echo and its own `TcpClient` / `Connection::request`
//!   ([`netaio_side`]), in any of the plugin modes.
//!
//! W1: one connection, round trips of 64 B. W2: one connection, 256 requests in flight (the
//! client keeps the window full). W3: 50 connections doing round trips for 5 s. Each run starts a
//! fresh server, pinned to CPU 0, and a client pinned to CPU 1 ([`compare`]).
//!
//! Unlike `bench`, whose one minimal client isolates the *server's* cost, this measures what a
//! user of each library gets: both ends of the library.

pub mod compare;
pub mod netaio_side;
pub mod raw_side;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::Mode;

/// Which pair of server and client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The hand-written tokio echo and the minimal frame client.
    Raw,
    /// tarpc's server and client.
    Tarpc,
    /// netaio's `TcpServer` and `TcpClient`.
    Netaio,
}

impl Side {
    /// The name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Side::Raw => "raw",
            Side::Tarpc => "tarpc",
            Side::Netaio => "netaio",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Side {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Side::Raw),
            "tarpc" => Ok(Side::Tarpc),
            "netaio" => Ok(Side::Netaio),
            _ => Err(format!("unknown side `{s}` (raw, tarpc, netaio)")),
        }
    }
}

/// A workload of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RpcWorkload {
    /// One connection, round trips of 64 B.
    W1,
    /// One connection, `--window` requests in flight.
    W2,
    /// `--conns` connections doing round trips for `--seconds`.
    W3,
}

impl RpcWorkload {
    /// The name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            RpcWorkload::W1 => "W1",
            RpcWorkload::W2 => "W2",
            RpcWorkload::W3 => "W3",
        }
    }
}

impl fmt::Display for RpcWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RpcWorkload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "w1" => Ok(RpcWorkload::W1),
            "w2" => Ok(RpcWorkload::W2),
            "w3" => Ok(RpcWorkload::W3),
            _ => Err(format!("unknown workload `{s}` (w1, w2, w3)")),
        }
    }
}

/// The `rpc-compare` command line: the driver, or one of the roles it spawns.
///
/// Runs W1 (1 connection, 64 B round trips), W2 (1 connection, 256 requests in flight) and W3
/// (50 connections, round trips for 5 s) with raw tokio, tarpc and netaio (library server and
/// library client on each side), alternating, in separate processes pinned to CPU 0 (server) and
/// CPU 1 (client); prints medians and the ratio to raw.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "rpc-compare", args_conflicts_with_subcommands = true)]
pub struct RpcCli {
    /// The role to run, if not the driver.
    #[command(subcommand)]
    pub role: Option<RpcRole>,
    /// The driver's flags.
    #[command(flatten)]
    pub driver: CompareArgs,
}

/// The roles the driver starts itself in.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RpcRole {
    /// Run one echo server; prints `listening ADDR`
    Server(RpcServerArgs),
    /// Run one workload against a server; prints one JSON line
    Client(RpcClientArgs),
}

/// `rpc-compare server`.
#[derive(Debug, Clone, clap::Args)]
pub struct RpcServerArgs {
    /// raw, tarpc or netaio
    #[arg(long, value_name = "SIDE")]
    pub side: Side,
    /// The netaio side's plugins: none, hmac, hmac+aead, sealed, sealed-chacha
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub mode: Mode,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub address: SocketAddr,
}

/// `rpc-compare client`.
#[derive(Debug, Clone, clap::Args)]
pub struct RpcClientArgs {
    /// raw, tarpc or netaio
    #[arg(long, value_name = "SIDE")]
    pub side: Side,
    /// The server's address
    #[arg(long, value_name = "ADDR")]
    pub address: SocketAddr,
    /// w1, w2 or w3
    #[arg(long, value_name = "W")]
    pub workload: RpcWorkload,
    /// The netaio side's plugins (as the server's)
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub mode: Mode,
    /// Request content bytes
    #[arg(long, value_name = "B", default_value_t = 64)]
    pub size: usize,
    /// Timed requests of W1 and W2
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub count: usize,
    /// Untimed round trips first (W1, W2)
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub warmup: usize,
    /// Requests in flight in W2
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub window: usize,
    /// Connections of W3
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub conns: usize,
    /// Duration of W3, seconds
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub seconds: f64,
}

/// The driver's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Runs per workload and side (medians)
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub runs: usize,
    /// Workloads, comma-separated
    #[arg(
        long,
        value_name = "W,..",
        value_delimiter = ',',
        default_value = "w1,w2,w3"
    )]
    pub workloads: Vec<RpcWorkload>,
    /// Sides, comma-separated (raw is the reference of the ratios)
    #[arg(
        long,
        value_name = "S,..",
        value_delimiter = ',',
        default_value = "raw,tarpc,netaio"
    )]
    pub sides: Vec<Side>,
    /// netaio's modes, comma-separated (each a row of its own)
    #[arg(
        long,
        value_name = "M,..",
        value_delimiter = ',',
        default_value = "none,sealed"
    )]
    pub modes: Vec<Mode>,
    /// W1 timed round trips
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub w1_count: usize,
    /// W2 messages
    #[arg(long, value_name = "N", default_value_t = 400_000)]
    pub w2_count: usize,
    /// W3 duration, seconds
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub w3_seconds: f64,
    /// Do not pin the server and the client to CPUs 0 and 1
    #[arg(long)]
    pub no_pin: bool,
}
