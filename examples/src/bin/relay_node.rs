//! A relay, a service behind it, and a client reaching that service by its peer id (README,
//! "Peers behind a relay"; `tests/netns_relay.rs` runs them across network namespaces).
//!
//! ```text
//! relay_node relay --listen ADDR
//! relay_node serve --relay ADDR --id ID
//! relay_node call  --relay ADDR --id ID [--direct ADDR] [--unlisted] [--message TEXT] [--count N]
//! ```
//!
//! - `relay` runs a [`Relay`] with the default limits and prints `listening ADDR`.
//! - `serve` connects to the relay, reserves `ID`, prints `reserved ID`, and answers
//!   `REQUEST_URI hello` with `hello from ID: <content>` until stopped (renewing its reservation
//!   halfway through its lifetime).
//! - `call` reaches `ID` with [`Reach`]: its strategies are `--direct ADDR` when given (a TCP
//!   address, tried first), then the relay. Prints `reply <content>` for each of `--count`
//!   calls, or `no-route` (the relay has no reservation for `ID`), `unknown` (no strategy:
//!   `--unlisted` leaves `ID` out of the lookup) or `unreachable <what was tried>`; before
//!   `no-route` or another error, `tried <strategy>: <error>` for each strategy that failed
//!   before one carried the call.
//!   Exit code 0 when every call was answered, 3 for `no-route`, 2 for `unknown` or
//!   `unreachable`, 1 otherwise.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use netaio::reach::{PeerCallError, Reach, StaticLookup, Strategy};
use netaio::relay::{Relay, RelayConfig, RelayRefusal};
use netaio::{CallOptions, Message, MessageType, Router, TcpClient, TcpServer};
use netaio_examples::init_tracing;
use netaio_support::signals::stop_signals;

/// A relay, a service behind it, or a client calling that service by its peer id.
#[derive(Debug, Parser)]
#[command(name = "relay_node")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run a relay.
    Relay {
        /// Address to listen on (port 0 picks a free port)
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:9100")]
        listen: SocketAddr,
    },
    /// Serve `hello` behind a relay, reserved there as ID.
    Serve {
        /// The relay's address
        #[arg(long, value_name = "ADDR")]
        relay: SocketAddr,
        /// The peer id to reserve
        #[arg(long, value_name = "ID")]
        id: String,
    },
    /// Call ID's `hello` by its peer id.
    Call {
        /// The relay's address
        #[arg(long, value_name = "ADDR")]
        relay: SocketAddr,
        /// The peer id to call
        #[arg(long, value_name = "ID")]
        id: String,
        /// A direct TCP address of ID, tried before the relay
        #[arg(long, value_name = "ADDR")]
        direct: Option<SocketAddr>,
        /// Leave ID out of the lookup (to see an unknown peer fail at once)
        #[arg(long)]
        unlisted: bool,
        /// The content of the request
        #[arg(long, value_name = "TEXT", default_value = "hi")]
        message: String,
        /// How many calls
        #[arg(long, value_name = "N", default_value_t = 1)]
        count: u32,
        /// Each call's timeout, in seconds
        #[arg(long, value_name = "S", default_value_t = 10)]
        timeout: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = netaio_support::parse_args();
    init_tracing("warn");
    let result = match cli.mode {
        Mode::Relay { listen } => relay(listen).await,
        Mode::Serve { relay, id } => serve(relay, id).await,
        Mode::Call {
            relay,
            id,
            direct,
            unlisted,
            message,
            count,
            timeout,
        } => {
            let lookup = StaticLookup::new();
            lookup.insert("relay", vec![Strategy::Tcp(relay)]);
            if !unlisted {
                let mut strategies: Vec<Strategy> = direct.into_iter().map(Strategy::Tcp).collect();
                strategies.push(Strategy::Relay("relay".into()));
                lookup.insert(id.clone(), strategies);
            }
            let reach = Reach::builder()
                .tcp(TcpClient::new())
                .lookup(lookup)
                .build();
            let opts = CallOptions::new().timeout(Duration::from_secs(timeout));
            for _ in 0..count {
                let msg = Message::new(MessageType::REQUEST_URI, "hello", message.clone());
                let code = call(&reach, &id, msg, &opts).await;
                if code != ExitCode::SUCCESS {
                    return code;
                }
            }
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay_node: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn relay(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let relay = Relay::new(RelayConfig::default());
    let server = TcpServer::builder()
        .address(listen)
        .router(Router::new().merge(relay.router()))
        .bind()
        .await?;
    println!("listening {}", server.local_addr());
    let signals = stop_signals();
    server
        .serve_with_shutdown(async move {
            let why = signals.await;
            tracing::info!("{why}: shutting down");
        })
        .await;
    Ok(())
}

async fn serve(relay: SocketAddr, id: String) -> Result<(), Box<dyn std::error::Error>> {
    let me = id.clone();
    let router = Router::new().on((MessageType::REQUEST_URI, "hello"), move |m: Message| {
        let mut text = format!("hello from {me}: ").into_bytes();
        text.extend_from_slice(m.content());
        async move { Message::respond("hello", text) }
    });
    let client = TcpClient::builder().router(router).build();
    let conn = client.connect(relay).await?;
    let limits = conn.reserve(id.clone()).await?;
    println!("reserved {id}");
    let renew = Duration::from_secs((limits.reservation_secs / 2).max(1));
    let signals = stop_signals();
    tokio::pin!(signals);
    loop {
        tokio::select! {
            why = &mut signals => {
                tracing::info!("{why}: leaving");
                conn.close().await;
                return Ok(());
            }
            () = tokio::time::sleep(renew) => {
                conn.reserve(id.clone()).await?;
            }
        }
    }
}

async fn call(reach: &Reach, id: &str, msg: Message, opts: &CallOptions) -> ExitCode {
    match reach.call_peer(id, msg, opts).await {
        Ok(reply) => {
            println!("reply {}", String::from_utf8_lossy(reply.content()));
            ExitCode::SUCCESS
        }
        Err(PeerCallError::Unknown(_)) => {
            println!("unknown");
            ExitCode::from(2)
        }
        Err(e @ PeerCallError::Unreachable { .. }) => {
            println!("unreachable {e}");
            ExitCode::from(2)
        }
        Err(PeerCallError::Call { via, error, tried }) => {
            for t in &tried {
                println!("tried {}: {}", t.strategy, t.error);
            }
            if RelayRefusal::from_error(&error) == Some(RelayRefusal::NoRoute) {
                println!("no-route");
                return ExitCode::from(3);
            }
            println!("error through {via}: {error}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("error {e}");
            ExitCode::FAILURE
        }
    }
}
