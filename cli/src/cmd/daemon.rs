//! `daemon [--api ADDR | --socket PATH] status|peers|publish|subscribe|call`: a running netaiod,
//! over its netaio-native local API (`[native] address` or `[native] socket`), with netaiod's
//! own client (`NativeClient`).

use std::future::Future;
use std::time::Duration;

use clap::{Args, Subcommand};
use netaio::Router;
use netaiod::ApiMessage;
use netaiod::native::{FEATURE_CALL, FEATURE_SERVE};
use netaiod::native_client::{NativeAddr, NativeClient, NativeClientError};
use serde_json::{Map, Value, json};

use super::after;
use crate::content::{parse_duration, preview, read_data};
use crate::exit::{Code, Failure};
use crate::output::{Output, bytes_json};
use crate::target::{Target, Transport};

/// `netaio daemon`.
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// The daemon's native local API: its `[native] address`, tcp HOST:PORT
    #[arg(long, value_name = "ADDR", env = "NETAIOD_API", default_value = "127.0.0.1:7060", value_parser = Target::parse, global = true)]
    pub api: Target,
    /// The daemon's native local API on its Unix socket (`[native] socket`), instead of --api
    #[arg(long, value_name = "PATH", env = "NETAIOD_SOCKET", global = true)]
    pub socket: Option<std::path::PathBuf>,
    /// How long each request to the daemon may take (a call: to the remote application and
    /// back)
    #[arg(long, value_name = "T", default_value = "15", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub command: DaemonCommand,
}

/// What to ask the daemon.
#[derive(Debug, Clone, Subcommand)]
pub enum DaemonCommand {
    /// The daemon's peer id (what others call it by), its features and how many neighbours
    /// it has
    #[command(after_help = "Example:\n  netaio daemon --api 127.0.0.1:7060 status --json")]
    Status,
    /// The daemon's gossip neighbours, one address a line
    #[command(after_help = "Example:\n  netaio daemon peers")]
    Peers,
    /// Spread TEXT as gossip of data type TOPIC (a GOSSIP ANNOUNCE)
    #[command(after_help = "Examples:\n  netaio daemon publish 9 'hello all'\n  \
netaio daemon publish 9 -d @reading.bin --ttl 3")]
    Publish {
        /// The data type, 0-65535
        #[arg(value_name = "TOPIC")]
        topic: u16,
        /// The data (or -d)
        #[arg(
            value_name = "TEXT",
            conflicts_with = "data",
            required_unless_present = "data"
        )]
        text: Option<String>,
        /// The data: TEXT, @FILE (a file's bytes) or @- (standard input)
        #[arg(short = 'd', long, value_name = "DATA")]
        data: Option<String>,
        /// Hops the data travels (0: as far as the gossip hop budget allows)
        #[arg(long, value_name = "N", default_value_t = 0)]
        ttl: u8,
    },
    /// Print the gossip of data types TOPIC… as it arrives (from peers and other local
    /// applications), until Ctrl-C, --count or --seconds
    #[command(after_help = "Example:\n  netaio daemon subscribe 9 10 --seconds 60 --json")]
    Subscribe {
        /// The data types, 0-65535
        #[arg(value_name = "TOPIC", required = true)]
        topics: Vec<u16>,
        /// Stop after this many notifications
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this long (default: until Ctrl-C)
        #[arg(long, value_name = "T", value_parser = parse_duration)]
        seconds: Option<Duration>,
    },
    /// Call URI served by an application behind the daemon PEER (its peer id) and print the
    /// reply
    #[command(
        after_help = "Example:\n  netaio daemon call d4e3b92acd495fafa5ce4259081433e2@10.0.0.2:7070 echo ping"
    )]
    Call {
        /// The peer id of the daemon the application is behind (`netaio daemon status` there),
        /// as `ID@host:port` (its peer address) the first time; `ID` once the daemon knows it
        #[arg(value_name = "PEER")]
        peer: String,
        /// The uri the application serves
        #[arg(value_name = "URI")]
        uri: String,
        /// The request's content (or -d)
        #[arg(value_name = "CONTENT", conflicts_with = "data")]
        content: Option<String>,
        /// The content: TEXT, @FILE (a file's bytes) or @- (standard input)
        #[arg(short = 'd', long, value_name = "DATA")]
        data: Option<String>,
    },
}

/// A failure of the native client: the exit codes of the other commands.
fn failure(e: &NativeClientError) -> Failure {
    match e {
        NativeClientError::Connect(c) => Failure::connect(c),
        NativeClientError::Request(r) => Failure::request(r),
        other => Failure::other(other.to_string()),
    }
}

/// `f`, within `timeout`.
async fn bounded<T>(
    timeout: Duration,
    what: &str,
    f: impl Future<Output = Result<T, NativeClientError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.map_err(|e| failure(&e)),
        Err(_) => Err(Failure::new(
            Code::Timeout,
            format!("{what}: no answer from the daemon within {timeout:?}"),
        )),
    }
}

/// The content flags: TEXT/CONTENT, or `-d`.
fn content(text: Option<String>, data: Option<String>) -> Result<Vec<u8>, Failure> {
    match (text, data) {
        (Some(t), _) => Ok(t.into_bytes()),
        (None, Some(d)) => read_data(&d).map_err(Failure::other),
        (None, None) => Ok(Vec::new()),
    }
}

/// Run the daemon command.
pub async fn run(out: &Output, args: DaemonArgs) -> Result<(), Failure> {
    let addr = match args.socket {
        Some(path) => NativeAddr::Unix(path),
        None if args.api.transport != Transport::Tcp => {
            return Err(Failure::other(
                "the daemon's native API is on TCP (--api HOST:PORT) or a Unix socket (--socket PATH)",
            ));
        }
        None => NativeAddr::Tcp(args.api.resolve().await?),
    };
    let timeout = args.timeout;
    let hello = NativeClient::connect_to(&addr, Router::new(), netaiod::native::NATIVE_VERSION);
    let client = bounded(timeout, "hello", hello)
        .await
        .map_err(|f| Failure::new(f.code, format!("the daemon at {addr}: {}", f.message)))?;
    let result = command(out, &client, timeout, args.command).await;
    client.close().await;
    result
}

async fn command(
    out: &Output,
    client: &NativeClient,
    timeout: Duration,
    command: DaemonCommand,
) -> Result<(), Failure> {
    match command {
        DaemonCommand::Status => {
            let peers = bounded(timeout, "peers", client.peers()).await?;
            let f = client.features();
            let features: Vec<&str> = [(FEATURE_SERVE, "serve"), (FEATURE_CALL, "call")]
                .into_iter()
                .filter(|(bit, _)| f & bit != 0)
                .map(|(_, name)| name)
                .collect();
            let id = client.peer_id();
            out.event(
                "status",
                json!({"peer_id": id, "features": features, "neighbours": peers.len()}),
                || {
                    format!(
                        "peer id     {id}\nfeatures    {}\nneighbours  {}",
                        features.join(", "),
                        peers.len()
                    )
                },
            );
        }
        DaemonCommand::Peers => {
            let peers = bounded(timeout, "peers", client.peers()).await?;
            if peers.is_empty() {
                out.note("no neighbours");
            }
            for p in peers {
                out.event("peer", json!({"addr": p}), || p.clone());
            }
        }
        DaemonCommand::Publish {
            topic,
            text,
            data,
            ttl,
        } => {
            let data = content(text, data)?;
            let len = data.len();
            bounded(timeout, "publish", client.announce(ttl, topic, data)).await?;
            out.event(
                "published",
                json!({"topic": topic, "ttl": ttl, "content_len": len}),
                || format!("published {len} bytes of type {topic} (ttl {ttl})"),
            );
        }
        DaemonCommand::Subscribe {
            topics,
            count,
            seconds,
        } => {
            let mut notes = client
                .notifications()
                .ok_or_else(|| Failure::other("notifications taken"))?;
            for &t in &topics {
                bounded(timeout, "subscribe", client.subscribe(t, false)).await?;
                out.event("subscribed", json!({"topic": t}), || {
                    format!("subscribed to type {t}")
                });
            }
            let stop = after(seconds);
            tokio::pin!(stop);
            let mut seen = 0u64;
            while count.is_none_or(|c| seen < c) {
                let note = tokio::select! {
                    biased;
                    n = notes.recv() => n,
                    // Notifications already received are printed first.
                    () = client.closed(), if notes.is_empty() => None,
                    () = &mut stop => break,
                    why = netaio_support::signals::stop_signals() => {
                        tracing::info!("{why}: stopping");
                        break;
                    }
                };
                let Some(ApiMessage::Notification {
                    message_id,
                    data_type,
                    data,
                }) = note
                else {
                    if note.is_none() {
                        return Err(Failure::new(
                            Code::Connection,
                            "the daemon closed the connection",
                        ));
                    }
                    continue;
                };
                seen += 1;
                let mut obj = Map::new();
                obj.insert("topic".into(), data_type.into());
                obj.insert("message_id".into(), message_id.into());
                let (k, v) = bytes_json("content", &data);
                obj.insert(k, v);
                obj.insert("content_len".into(), data.len().into());
                out.event("notification", Value::Object(obj), || {
                    format!("type {data_type:<5}  {}", preview(&data, 200))
                });
            }
        }
        DaemonCommand::Call {
            peer,
            uri,
            content: text,
            data,
        } => {
            let body = content(text, data)?;
            let reply = bounded(timeout, "call", client.call(&peer, &uri, body)).await?;
            let mut obj = Map::new();
            obj.insert("peer".into(), peer.clone().into());
            obj.insert("uri".into(), uri.clone().into());
            let (k, v) = bytes_json("content", &reply);
            obj.insert(k, v);
            obj.insert("content_len".into(), reply.len().into());
            out.event("reply", Value::Object(obj), || {
                format!("{peer}  {uri}  {}", preview(&reply, 200))
            });
        }
    }
    Ok(())
}
