//! `netaiod-client`: a small module of the gossip module API, for trying a daemon out and for
//! tests.
//!
//! ```text
//! netaiod-client --api 127.0.0.1:7051 subscribe 1          # prints each notification, answers valid
//! netaiod-client --api 127.0.0.1:7051 subscribe 1 --invalid
//! netaiod-client --api 127.0.0.1:7050 announce 1 "hello"   # spreads one item and exits
//! ```
//!
//! Notifications are printed one a line: `notification type=1 id=4711 data=hello` (data as
//! UTF-8, lossily).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use netaiod::ApiClient;
use netaiod::codec::ApiMessage;

/// A gossip module API client.
#[derive(Debug, Parser)]
#[command(name = "netaiod-client", version)]
struct Args {
    /// The daemon's `api_address`.
    #[arg(long)]
    api: SocketAddr,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Subscribe to data types; print and validate each notification until the daemon closes.
    Subscribe {
        /// The data types.
        #[arg(required = true)]
        types: Vec<u16>,
        /// Answer every notification invalid.
        #[arg(long)]
        invalid: bool,
    },
    /// Announce one item.
    Announce {
        /// The data type.
        data_type: u16,
        /// The data.
        data: String,
        /// Hops wanted (0: unlimited).
        #[arg(long, default_value_t = 0)]
        ttl: u8,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netaiod-client: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = ApiClient::connect(args.api).await?;
    match args.command {
        Cmd::Announce {
            data_type,
            data,
            ttl,
        } => {
            client.announce(ttl, data_type, data.into_bytes()).await?;
            println!("announced type={data_type}");
        }
        Cmd::Subscribe { types, invalid } => {
            for &t in &types {
                client.notify(t).await?;
            }
            println!("subscribed {types:?}");
            while let Some(message) = client.recv().await? {
                if let ApiMessage::Notification {
                    message_id,
                    data_type,
                    data,
                } = message
                {
                    println!(
                        "notification type={data_type} id={message_id} data={}",
                        String::from_utf8_lossy(&data)
                    );
                    client.validate(message_id, !invalid).await?;
                }
            }
        }
    }
    Ok(())
}
