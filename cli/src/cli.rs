//! The command line: the commands, their flags and the `--help` examples (CLI.md documents the
//! same, with the output formats).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use netaio::MessageType;
use netaio_support::{MulticastArgs, parse_ip};

use crate::cmd::daemon::DaemonArgs;
use crate::cmd::relay::RelayArgs;
use crate::common::CommonArgs;
use crate::content::{parse_duration, parse_type};
use crate::target::Target;

/// Poke, watch and measure netaio services: requests, subscriptions, a test server, UDP
/// listening, LAN discovery, GRASP, load measurement, a relay, a running netaiod.
#[derive(Debug, Parser)]
#[command(
    name = "netaio",
    version,
    after_help = "Exit codes: 0 success, 1 other failure, 2 usage error, 3 error reply \
(ERROR, NOT_FOUND, NOT_PERMITTED), 4 authentication refused, 5 timeout, 6 connection failure.\n\n\
Example (two terminals):\n  netaio serve --listen 127.0.0.1:8888\n  netaio request 127.0.0.1:8888 echo hello"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a REQUEST_URI and print the reply
    #[command(
        after_help = "Examples:\n  netaio request 127.0.0.1:8888 echo hello\n  \
netaio request 127.0.0.1:8888 upload -d @file.bin --timeout 2s\n  \
echo hi | netaio request udp://[::1]:8888 echo -d @- --json\n  \
netaio request 127.0.0.1:9100 --peer node-c echo hello    # through a relay"
    )]
    Request(Exchange),
    /// Send a CREATE_URI and print the reply
    #[command(after_help = "Example:\n  netaio create 127.0.0.1:8888 users/alice '{\"age\": 7}'")]
    Create(Exchange),
    /// Send an UPDATE_URI and print the reply
    #[command(after_help = "Example:\n  netaio update 127.0.0.1:8888 users/alice '{\"age\": 8}'")]
    Update(Exchange),
    /// Send a DELETE_URI and print the reply
    #[command(after_help = "Example:\n  netaio delete 127.0.0.1:8888 users/alice")]
    Delete(Exchange),
    /// Send a message of any type as a request and print the reply
    #[command(after_help = "Example:\n  netaio call 127.0.0.1:8888 --type 100 chat/room hello")]
    Call {
        /// The message type: a name (REQUEST_URI, publish, …) or a number 0-255
        #[arg(long = "type", short = 't', value_name = "T", value_parser = parse_type)]
        message_type: MessageType,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Send one message without waiting for a reply (fire and forget)
    #[command(
        after_help = "Example:\n  netaio send 127.0.0.1:8888 --type PUBLISH_URI news 'hello all'"
    )]
    Send {
        /// tcp HOST:PORT, or udp://HOST:PORT
        #[arg(value_name = "ADDR", value_parser = Target::parse)]
        addr: Target,
        /// The message type: a name or a number 0-255
        #[arg(long = "type", short = 't', value_name = "T", value_parser = parse_type)]
        message_type: MessageType,
        #[command(flatten)]
        body: Body,
    },
    /// Subscribe to uris and print the notifications as they arrive
    #[command(
        after_help = "Examples:\n  netaio subscribe 127.0.0.1:8888 news weather --count 10\n  \
netaio subscribe udp://127.0.0.1:8888 news --renew 60"
    )]
    Subscribe {
        /// tcp HOST:PORT, or udp://HOST:PORT
        #[arg(value_name = "ADDR", value_parser = Target::parse)]
        addr: Target,
        /// The uris (topics) to subscribe to
        #[arg(value_name = "URI", required = true)]
        uris: Vec<String>,
        /// Stop after this many notifications
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this long (default: until Ctrl-C)
        #[arg(long, value_name = "T", value_parser = parse_duration)]
        seconds: Option<Duration>,
        /// How long to wait for each confirmation
        #[arg(long, value_name = "T", default_value = "10", value_parser = parse_duration)]
        timeout: Duration,
        /// Over UDP: subscribe again this often (a UDP subscription is a lease that lapses after
        /// the remote's subscription TTL, 5 minutes by default)
        #[arg(long, value_name = "T", default_value = "60", value_parser = parse_duration)]
        renew: Duration,
    },
    /// A server for trying clients out: echo by default, or the routes given; prints every
    /// message it receives
    #[command(after_help = "Examples:\n  netaio serve --listen 127.0.0.1:8888\n  \
netaio serve --listen [::1]:8888 --route 'REQUEST_URI hello=world' --route 'CREATE_URI users=created'\n  \
netaio serve --listen udp://0.0.0.0:8888 --hmac-file secret\n  \
netaio serve --reserve-at 127.0.0.1:9100 --id node-c")]
    Serve {
        /// tcp HOST:PORT, or udp://HOST:PORT (port 0: any free port, printed first)
        #[arg(long, value_name = "ADDR", value_parser = Target::parse, required_unless_present = "reserve_at")]
        listen: Option<Target>,
        /// Also reachable by --id through the relay at this tcp HOST:PORT (`netaio relay`):
        /// reserve the id there, renew it, and answer what the relay delivers
        #[arg(long, value_name = "RELAY", value_parser = Target::parse, requires = "id")]
        reserve_at: Option<Target>,
        /// The peer id to reserve at --reserve-at
        #[arg(long, value_name = "ID", requires = "reserve_at")]
        id: Option<String>,
        /// 'TYPE URI=CONTENT…': answer TYPE at URI with CONTENT (RESPOND_URI for REQUEST_URI,
        /// OK otherwise); repeat; other messages get NOT_FOUND instead of the echo
        #[arg(long, value_name = "SPEC")]
        route: Vec<String>,
        /// Stop after this long (default: until Ctrl-C)
        #[arg(long, value_name = "T", value_parser = parse_duration)]
        seconds: Option<Duration>,
    },
    /// Print every message a UDP node receives, and why any datagram was refused
    #[command(after_help = "Examples:\n  netaio listen --udp 0.0.0.0:8888\n  \
netaio listen --udp 0.0.0.0:8888 --group 239.255.110.97 --hmac-file secret")]
    Listen {
        /// The address to bind (port 0: any free port, printed first)
        #[arg(long, value_name = "ADDR", value_parser = parse_socket)]
        udp: std::net::SocketAddr,
        /// Also join this multicast group (on the --udp port unless --group-port)
        #[arg(long, value_name = "IP", value_parser = parse_ip)]
        group: Option<IpAddr>,
        /// The group's port
        #[arg(long, value_name = "P", requires = "group")]
        group_port: Option<u16>,
        /// Join the group on this interface only
        #[arg(long, value_name = "NAME", requires = "group")]
        interface: Option<String>,
        /// Stop after this many messages
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this long (default: until Ctrl-C)
        #[arg(long, value_name = "T", value_parser = parse_duration)]
        seconds: Option<Duration>,
    },
    /// Join the discovery group and list the peers heard (live on a terminal)
    #[command(after_help = "Examples:\n  netaio discover\n  \
netaio discover --group ff02::6e61:696f --bind :: --seconds 30 --json")]
    Discover(DiscoverArgs),
    /// GRASP (RFC 8990): discover, synchronize, flood and get floods of objectives
    #[command(subcommand)]
    Grasp(GraspCommand),
    /// Measure a netaio server: round trips, pipelined, over several connections
    #[command(after_help = "Examples:\n  netaio bench 127.0.0.1:8888\n  \
netaio bench 127.0.0.1:8888 --connections 4 --pipeline 16 --size 1024 --seconds 10")]
    Bench(BenchArgs),
    /// Run a relay: peers reserve their id at it and are called by id through it (limits as
    /// flags); prints reservations and refusals as they happen
    #[command(after_help = "Examples:\n  netaio relay --listen 0.0.0.0:9100\n  \
netaio relay --listen 127.0.0.1:9100 --max-reservations 16 --envelope-rate-per-sender 100/1 --json\n\n\
A service behind it, and a call to that service by its id:\n  \
netaio serve --reserve-at 127.0.0.1:9100 --id node-c\n  \
netaio request 127.0.0.1:9100 --peer node-c echo hello")]
    Relay(RelayArgs),
    /// Talk to a running netaiod over its native local API: status, peers, publish, subscribe,
    /// call
    #[command(after_help = "Examples:\n  netaio daemon status\n  \
netaio daemon --api 127.0.0.1:7060 peers\n  \
netaio daemon publish 9 'hello all'\n  \
netaio daemon subscribe 9 --count 1 --json\n  \
netaio daemon call d4e3b92acd495fafa5ce4259081433e2@10.0.0.2:7070 echo ping")]
    Daemon(DaemonArgs),
    /// Make or show an identity file (an Ed25519 / X25519 key seed) for --identity
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Print a shell completion script
    #[command(after_help = "Example:\n  netaio completions bash > /etc/bash_completion.d/netaio")]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

fn parse_socket(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse()
        .map_err(|e| format!("{s:?}: {e} (an IP address and port: 0.0.0.0:8888, [::]:8888)"))
}

/// The content of a message: a positional CONTENT or `-d`.
#[derive(Debug, Clone, Args)]
pub struct Body {
    /// The uri
    #[arg(value_name = "URI")]
    pub uri: String,
    /// The content (or -d)
    #[arg(value_name = "CONTENT", conflicts_with = "data")]
    pub content: Option<String>,
    /// The content: TEXT, @FILE (a file's bytes) or @- (standard input)
    #[arg(short = 'd', long, value_name = "DATA")]
    pub data: Option<String>,
}

/// A request and how to wait for its reply.
#[derive(Debug, Clone, Args)]
pub struct Exchange {
    /// tcp HOST:PORT, or udp://HOST:PORT (with --peer: the relay's tcp HOST:PORT)
    #[arg(value_name = "ADDR", value_parser = Target::parse)]
    pub addr: Target,
    #[command(flatten)]
    pub body: Body,
    /// Send it this many times, one after the other (stops at the first failure)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// How long to wait for each reply (default 10 s)
    #[arg(long, value_name = "T", default_value = "10", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Say so on stderr (and in --json) when a reply takes longer than this; keep waiting
    /// until --timeout
    #[arg(long, value_name = "T", value_parser = parse_duration)]
    pub soft_timeout: Option<Duration>,
    /// Call the peer that reserved this id at the relay ADDR (`netaio relay`), through it
    #[arg(long, value_name = "ID")]
    pub peer: Option<String>,
}

/// `netaio discover`.
#[derive(Debug, Clone, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub lan: MulticastArgs,
    /// App id: only nodes with the same app id see each other
    #[arg(long, value_name = "ID", default_value = "netaio")]
    pub app: String,
    /// This node's peer id (default: random)
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Time between this node's adverts
    #[arg(long, value_name = "T", default_value = "5", value_parser = parse_duration)]
    pub interval: Duration,
    /// Forget a peer silent this long
    #[arg(long, value_name = "T", default_value = "60", value_parser = parse_duration)]
    pub peer_timeout: Duration,
    /// Stop after this long (default: until Ctrl-C)
    #[arg(long, value_name = "T", value_parser = parse_duration)]
    pub seconds: Option<Duration>,
}

/// `netaio grasp …`.
#[derive(Debug, Subcommand)]
pub enum GraspCommand {
    /// Find the nodes offering an objective; print their locators
    #[command(after_help = "Example:\n  netaio grasp discover EX2 --interface eth0 --seconds 3")]
    Discover {
        #[command(flatten)]
        objective: GraspObjective,
        #[command(flatten)]
        node: GraspNode,
    },
    /// Ask for an objective's current value and print it
    #[command(after_help = "Example:\n  netaio grasp synchronize EX2 --interface eth0")]
    Synchronize {
        #[command(flatten)]
        objective: GraspObjective,
        #[command(flatten)]
        node: GraspNode,
    },
    /// Serve an objective's value (discovery, synchronization) and flood it every 2 s
    #[command(
        after_help = "Example:\n  netaio grasp flood EX1 '[1, \"two\", 3]' --interface eth0 --seconds 60"
    )]
    Flood {
        #[command(flatten)]
        objective: GraspObjective,
        /// The value, as JSON (numbers, text, arrays, objects, true/false/null)
        #[arg(value_name = "VALUE")]
        value: String,
        /// How long receivers keep the flooded value, ms (0: indefinitely)
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        ttl_ms: u32,
        #[command(flatten)]
        node: GraspNode,
    },
    /// Wait for a flooded value of an objective and print it
    #[command(after_help = "Example:\n  netaio grasp get-flood EX1 --interface eth0 --seconds 10")]
    GetFlood {
        #[command(flatten)]
        objective: GraspObjective,
        #[command(flatten)]
        node: GraspNode,
    },
}

/// The objective a GRASP command is about.
#[derive(Debug, Clone, Args)]
pub struct GraspObjective {
    /// The objective's name
    #[arg(value_name = "OBJECTIVE")]
    pub name: String,
    /// The objective's loop count (hops)
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub loop_count: u8,
}

/// Where a GRASP command's node runs.
#[derive(Debug, Clone, Args)]
pub struct GraspNode {
    /// Run on this interface (repeat for several; default: every usable one)
    #[arg(long, value_name = "NAME")]
    pub interface: Vec<String>,
    /// IPv4 (224.0.0.119) instead of IPv6 (ff02::13)
    #[arg(long)]
    pub ipv4: bool,
    /// The GRASP port (default 7017)
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// For tests on one host: run on the loopback interface with this IPv4 address
    /// (127.x.y.z), multicast looped back to the other nodes of the host
    #[arg(long, value_name = "IP", conflicts_with_all = ["interface", "ipv4"])]
    pub loopback: Option<std::net::Ipv4Addr>,
    /// How long to wait (discover, synchronize, get-flood) or to run (flood)
    #[arg(long, value_name = "T", value_parser = parse_duration)]
    pub seconds: Option<Duration>,
}

/// `netaio bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// tcp HOST:PORT of a netaio server that answers REQUEST_URI (netaio serve does)
    #[arg(value_name = "ADDR", value_parser = Target::parse)]
    pub addr: Target,
    /// Connections
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Requests in flight per connection
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub pipeline: u32,
    /// Content bytes per request
    #[arg(long, value_name = "B", default_value_t = 64)]
    pub size: usize,
    /// The uri of the requests
    #[arg(long, value_name = "URI", default_value = "echo")]
    pub uri: String,
    /// Run this long (default 5 s unless --requests)
    #[arg(long, value_name = "T", value_parser = parse_duration, conflicts_with = "requests")]
    pub seconds: Option<Duration>,
    /// Stop after this many requests in all
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// How long to wait for each reply
    #[arg(long, value_name = "T", default_value = "10", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `netaio identity …`.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Write a new identity (a random 32-byte seed, hex) to FILE and print its public keys
    New {
        /// The file to create (refused if it exists)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the public keys of an identity file
    Show {
        /// The identity file
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let a = Cli::try_parse_from(["netaio", "--json", "request", "h:1", "u"]).unwrap();
        let b = Cli::try_parse_from(["netaio", "request", "h:1", "u", "--json"]).unwrap();
        assert!(a.common.json && b.common.json);
    }

    #[test]
    fn content_is_positional_or_data_not_both() {
        assert!(Cli::try_parse_from(["netaio", "request", "h:1", "u", "c", "-d", "x"]).is_err());
        let cli =
            Cli::try_parse_from(["netaio", "call", "h:1", "--type", "7", "u", "-d", "@-"]).unwrap();
        match cli.command {
            Command::Call {
                message_type,
                exchange,
            } => {
                assert_eq!(message_type, MessageType::PUBLISH_URI);
                assert_eq!(exchange.body.data.as_deref(), Some("@-"));
                assert_eq!(exchange.count, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["netaio", "request", "h:1", "u", "--count", "0"]).is_err());
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let cli =
            Cli::try_parse_from(["netaio", "--hmac", "hunter2", "request", "h:1", "u"]).unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
    }
}
