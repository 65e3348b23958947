//! The interop server: a Rust `TcpServer` in Python-compatible mode, for checking a Python netaio
//! 0.0.9 client against it from a shell.
//!
//! ```text
//! compat_server --port P [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] [--seconds N] [--bind ADDR]
//! ```
//!
//! Prints `listening P` once bound (the real port when P is 0), then answers:
//!
//! | request | reply |
//! |---|---|
//! | REQUEST_URI | RESPOND_URI with the same uri and content |
//! | SUBSCRIBE_URI | subscribes the connection to the uri; CONFIRM_SUBSCRIBE (same uri and content) |
//! | UNSUBSCRIBE_URI | removes that subscription (also when there was none); CONFIRM_UNSUBSCRIBE |
//! | PUBLISH_URI | first NOTIFY_URI (same uri and content) to every subscriber of the uri, then OK with content `published` to the publisher |
//! | ADVERTISE_PEER `netaio` | peer management (the library's, with Python's defaults): records the client's peer, prints `peer ID`, answers PEER_DISCOVERED with this server's peer (`netaio-rs-compat-server`) |
//! | DISCONNECT `netaio` | forgets the client's peer, prints `peer-gone ID` (so does the end of its connection) |
//! | anything else | the default NOT_FOUND `not found` with an empty uri |
//!
//! Options not given take the Python library's defaults: no plugins, the cipher encrypts the uri
//! (unless `--no-encrypt-uri`), listen on `0.0.0.0` (`--bind 127.0.0.1` for loopback only), run
//! until Ctrl-C (or `--seconds N`). `--verbose` is accepted and ignored; logs go to stderr
//! (`RUST_LOG`).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use netaio::compat::PackifyPeerPlugin;
use netaio::peer::{Peer, PeerConfig, PeerData, PeerEvent};
use netaio::plugin::PeerPlugin;
use netaio::router::Context;
use netaio::{Message, MessageType, Router, SendError, SubscribeError, TcpServer};
use netaio_examples::compat::PluginFlags;
use netaio_examples::init_tracing;
use netaio_support::parse_ip;

/// This server's own peer id in adverts.
const PEER_ID: &str = "netaio-rs-compat-server";

/// The interop server: a TcpServer in Python-compatible mode (echo, subscribe, unsubscribe,
/// publish, peer management). Prints `listening P` once bound.
#[derive(Debug, Parser)]
#[command(name = "compat_server")]
struct Cli {
    /// Port to listen on (0 picks a free one; `listening P` tells which)
    #[arg(long, value_name = "P")]
    port: u16,
    #[command(flatten)]
    plugins: PluginFlags,
    /// Exit after N seconds (default: run until Ctrl-C)
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
    /// Address to listen on (as Python)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0", value_parser = parse_ip)]
    bind: IpAddr,
}

/// Print a line on stdout at once (scripts and tests read it).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

async fn echo(msg: Message) -> Message {
    Message::respond(msg.uri().clone(), msg.content().clone())
}

async fn subscribe(msg: Message, ctx: Context) -> Result<Message, SubscribeError> {
    ctx.subscribe(msg.uri().clone())?;
    Ok(Message::new(
        MessageType::CONFIRM_SUBSCRIBE,
        msg.uri().clone(),
        msg.content().clone(),
    ))
}

async fn unsubscribe(msg: Message, ctx: Context) -> Message {
    ctx.unsubscribe(msg.uri());
    Message::new(
        MessageType::CONFIRM_UNSUBSCRIBE,
        msg.uri().clone(),
        msg.content().clone(),
    )
}

async fn publish(msg: Message, ctx: Context) -> Result<Message, SendError> {
    let note = Message::new(
        MessageType::NOTIFY_URI,
        msg.uri().clone(),
        msg.content().clone(),
    );
    // Queued before the reply is returned, so a subscribed publisher gets NOTIFY_URI, then OK.
    ctx.notify(msg.uri(), &note).await?;
    Ok(Message::ok(msg.uri().clone(), "published"))
}

fn local_peer() -> Result<Peer, netaio::plugin::PeerError> {
    let mut data = PeerData::new();
    data.insert("lang".into(), Bytes::from_static(b"rust"));
    Ok(Peer::new(PEER_ID).with_data(PackifyPeerPlugin.encode_data(&data)?))
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts: Cli = netaio_support::parse_args();
    init_tracing("warn");
    let local = match local_peer() {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("compat_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let router = Router::new()
        .on(MessageType::REQUEST_URI, echo)
        .on(MessageType::SUBSCRIBE_URI, subscribe)
        .on(MessageType::UNSUBSCRIBE_URI, unsubscribe)
        .on(MessageType::PUBLISH_URI, publish);
    // The library's peer management: its defaults are Python's (app id `netaio`).
    let builder = opts.plugins.server(
        TcpServer::builder()
            .address(SocketAddr::new(opts.bind, opts.port))
            .router(router)
            .local_peer(local)
            .peer_management(PeerConfig::default()),
    );
    let server = match builder.bind().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("compat_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(plugins = %opts.plugins.describe(), "python-compatible server");
    let mut peer_events = server.handle().peer_events();
    tokio::spawn(async move {
        while let Ok(event) = peer_events.recv().await {
            let id = String::from_utf8_lossy(&event.peer().id).into_owned();
            match event {
                PeerEvent::Discovered(_) => say(&format!("peer {id}")),
                PeerEvent::Disconnected(_) => say(&format!("peer-gone {id}")),
                _ => {}
            }
        }
    });
    say(&format!("listening {}", server.local_addr().port()));
    server
        .serve_with_shutdown(async move {
            match opts.seconds {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => {
                    if let Err(e) = tokio::signal::ctrl_c().await {
                        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                        std::future::pending::<()>().await;
                    }
                }
            }
        })
        .await;
    ExitCode::SUCCESS
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
    fn defaults_and_flags() {
        let cli = Cli::try_parse_from(["compat_server", "--port", "0"]).unwrap();
        assert_eq!(
            SocketAddr::new(cli.bind, cli.port),
            "0.0.0.0:0".parse().unwrap()
        );
        assert_eq!((cli.seconds, &cli.plugins), (None, &PluginFlags::default()));
        let cli = Cli::try_parse_from([
            "compat_server",
            "--port=9000",
            "--hmac",
            "s",
            "--seconds",
            "5",
            "--bind",
            "127.0.0.1",
            "--verbose",
        ])
        .unwrap();
        assert_eq!(
            SocketAddr::new(cli.bind, cli.port),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            (cli.seconds, cli.plugins.describe()),
            (Some(5), "hmac".into())
        );
        // --port is required.
        assert!(Cli::try_parse_from(["compat_server", "--hmac", "x"]).is_err());
        assert!(Cli::try_parse_from(["compat_server", "--port", "0", "--no-such-flag"]).is_err());
    }
}
