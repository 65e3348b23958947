//! Load generator for netaio: the same echo workloads against a netaio server and against a raw
//! tokio echo server of the same 9-byte framing written by hand, in separate processes, with
//! medians over several alternating runs and the ratio netaio ÷ baseline.
//!
//! Binaries:
//! - `bench`: the driver (`cargo run --release -p netaio-bench --bin bench -- --quick`); it also
//!   runs the server and the client roles when given `server` / `client` as first argument, so it
//!   needs no other binary.
//! - `netaio-echo`: the netaio echo server (`--mode none|hmac|hmac+aead|sealed|sealed-chacha`).
//! - `baseline-echo`: the hand-written tokio echo server.
//! - `loadgen`: the client (`--workload w1|w2|w3|w4|w5|idle`).
//! - `plugin-cost`: seals N messages with a mode's plugins, then opens them; for callgrind.
//! - `soak`: many clients for minutes with server restarts: lost replies and memory ([`soak`]).
//! - `rpc-compare`: netaio's library server and client beside tarpc's and a raw tokio echo
//!   ([`rpc`]).
//! - `hedge`: the hedging scenario (two servers and a client, each a process of its own, one server
//!   stalling; the phases interleaved in rounds; p50/p99 with and without `call_any`) ([`hedge`]).
//! - `relay`: request/response directly and through a relay, 64 B and 60 kB (issue 14).
//!
//! Their flags are in [`args`] (clap); each takes `--help`.
//!
//! See `BENCHMARKS.md` at the repository root for what each workload measures and why the client
//! is built the way it is.

#![forbid(unsafe_code)]

pub mod args;
pub mod client;
pub mod driver;
pub mod frames;
pub mod hedge;
pub mod procs;
pub mod relay;
pub mod report;
pub mod rpc;
pub mod server;
pub mod soak;
pub mod stats;

use std::fmt;
use std::str::FromStr;

/// The error type of the harness: anything, with a message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// The result type of the harness.
pub type Result<T> = std::result::Result<T, Error>;

/// The shared secret of the plugin modes (both sides derive their keys from it).
pub const SECRET: &[u8] = b"netaio-bench shared secret";

/// The uri every request uses.
pub const ECHO_URI: &str = "echo";

/// Which plugins the netaio server runs (the client seals its requests to match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// No plugins.
    None,
    /// `HmacAuth` as the instance auth plugin.
    Hmac,
    /// `HmacAuth` + `AeadCipher` as instance plugins.
    HmacAead,
    /// `AeadAuth` (one pass of authenticated encryption, the CPU's preferred algorithm:
    /// AES-256-GCM with AES-NI) as the instance auth plugin: what `hmac+aead` guarantees.
    Sealed,
    /// `AeadAuth` with XChaCha20-Poly1305.
    SealedChacha,
}

impl Mode {
    /// Every mode, in table order.
    pub const ALL: [Mode; 5] = [
        Mode::None,
        Mode::Hmac,
        Mode::HmacAead,
        Mode::Sealed,
        Mode::SealedChacha,
    ];

    /// The modes the driver runs unless told otherwise.
    pub const DEFAULT: [Mode; 4] = [Mode::None, Mode::Hmac, Mode::HmacAead, Mode::Sealed];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Hmac => "hmac",
            Mode::HmacAead => "hmac+aead",
            Mode::Sealed => "sealed",
            Mode::SealedChacha => "sealed-chacha",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(Mode::None),
            "hmac" => Ok(Mode::Hmac),
            "hmac+aead" | "aead" => Ok(Mode::HmacAead),
            "sealed" => Ok(Mode::Sealed),
            "sealed-chacha" => Ok(Mode::SealedChacha),
            _ => Err(format!(
                "unknown mode `{s}` (none, hmac, hmac+aead, sealed, sealed-chacha)"
            )),
        }
    }
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impl {
    /// The hand-written tokio echo of the same framing.
    Baseline,
    /// A netaio `TcpServer` with one echo handler (and a few dozen other routes).
    Netaio,
    /// The Python library, netaio 0.0.9 (`--python`): its `TCPServer` / `UDPNode` echo from
    /// `examples/python/compat_server.py` / `compat_udp_node.py`, mode none only.
    Python,
}

impl Impl {
    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Baseline => "baseline",
            Impl::Netaio => "netaio",
            Impl::Python => "python",
        }
    }
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Impl {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "baseline" => Ok(Impl::Baseline),
            "netaio" => Ok(Impl::Netaio),
            "python" => Ok(Impl::Python),
            _ => Err(format!("unknown server `{s}` (baseline, netaio, python)")),
        }
    }
}

/// A workload of the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// One connection, round trips of 64 B.
    W1,
    /// One connection, pipelined 64 B messages.
    W2,
    /// 50 connections doing round trips for a fixed time.
    W3,
    /// UDP round trips of 64 B.
    W4,
    /// One connection, round trips of 60,000 B.
    W5,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 5] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
        }
    }

    /// What the workload does, for the table.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::W1 => "1 conn, 64 B round trips",
            Workload::W2 => "1 conn, 64 B pipelined",
            Workload::W3 => "50 conns, 64 B round trips",
            Workload::W4 => "UDP, 64 B round trips",
            Workload::W5 => "1 conn, 60,000 B round trips",
        }
    }
}

impl Workload {
    /// The transport the workload uses.
    pub fn transport(self) -> Transport {
        match self {
            Workload::W4 => Transport::Udp,
            _ => Transport::Tcp,
        }
    }
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A `TcpServer` / a TCP echo loop.
    Tcp,
    /// A `UdpNode` / a UDP echo loop.
    Udp,
}

impl Transport {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(format!("unknown transport `{s}` (tcp, udp)")),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "w1" => Ok(Workload::W1),
            "w2" => Ok(Workload::W2),
            "w3" => Ok(Workload::W3),
            "w4" => Ok(Workload::W4),
            "w5" => Ok(Workload::W5),
            _ => Err(format!("unknown workload `{s}` (w1, w2, w3, w4, w5)")),
        }
    }
}
