//! The interop client: a Rust `TcpClient` in Python-compatible mode, for checking it against a
//! Python netaio 0.0.9 server (or `compat_server`) from a shell.
//!
//! ```text
//! compat_client --port P [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] --n N [--timeout S] [--no-pubsub] [--host ADDR]
//! ```
//!
//! Connects to 127.0.0.1:P (Python's default host), sends N REQUEST_URI messages of varied sizes
//! (0 to 1,000 bytes) and checks that each is echoed in a RESPOND_URI with the same uri and
//! content, waiting up to S seconds for each reply (default 10, as Python's `request`). Then,
//! unless `--no-pubsub`, it subscribes to a topic (CONFIRM_SUBSCRIBE with the topic as uri, any
//! content: the Python README's handler sends none), publishes to it (NOTIFY_URI with the same
//! content, and OK), unsubscribes (CONFIRM_UNSUBSCRIBE, likewise) and publishes again (OK, and no
//! NOTIFY_URI before it). Prints `ok N` and exits 0, or prints the reason on stderr and exits 1
//! (2 for a usage error). `--verbose` is accepted and ignored; logs go to stderr (`RUST_LOG`).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netaio::{Connection, Message, MessageType, ReceiveError, TcpClient};
use netaio_examples::compat::{PluginFlags, content_for};
use netaio_examples::init_tracing;
use netaio_examples::show::{message as line, request_error};
use netaio_support::parse_ip;

/// The topic of the pub/sub checks.
pub const TOPIC: &str = "compat/topic";

/// The interop client: N echo requests (0 to 1,000 bytes) and the pub/sub checks against a Python
/// netaio 0.0.9 server (or compat_server), in Python-compatible mode. Prints `ok N`.
#[derive(Debug, Parser)]
#[command(name = "compat_client")]
struct Cli {
    /// The server's port
    #[arg(long, value_name = "P")]
    port: u16,
    #[command(flatten)]
    plugins: PluginFlags,
    /// How many echo requests to send
    #[arg(long, value_name = "N")]
    n: usize,
    /// Seconds to wait for each reply (as Python's request)
    #[arg(long, value_name = "S", default_value = "10", value_parser = seconds)]
    timeout: Duration,
    /// Skip the subscribe / publish / notify / unsubscribe checks
    #[arg(long)]
    no_pubsub: bool,
    /// The server's address (as Python)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = parse_ip)]
    host: IpAddr,
}

/// A number of seconds above 0 and under a day (`Duration::from_secs_f64` panics on huge ones).
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t < 86_400.0 => Ok(Duration::from_secs_f64(t)),
        Ok(_) => Err("not a number of seconds above 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Send `msg`, wait for the reply, and check its type and uri, and its content when `content` is
/// given.
async fn exchange(
    conn: &Connection,
    msg: Message,
    timeout: Duration,
    expect: MessageType,
    content: Option<&[u8]>,
) -> Result<(), String> {
    let uri = msg.uri().clone();
    let what = format!("{} {:?}", msg.message_type, String::from_utf8_lossy(&uri));
    let reply = conn
        .call_timeout(msg, timeout)
        .await
        .map_err(|e| format!("{what}: {}", request_error(&e)))?;
    let content_ok = content.is_none_or(|c| reply.content().as_ref() == c);
    if reply.message_type != expect || reply.uri() != &uri || !content_ok {
        let content =
            content.map_or_else(String::new, |c| format!(" and {} content bytes", c.len()));
        return Err(format!(
            "{what}: expected {expect} with the same uri{content}, got {}",
            line(&reply)
        ));
    }
    Ok(())
}

async fn echo_checks(conn: &Connection, n: usize, timeout: Duration) -> Result<(), String> {
    for i in 0..n {
        let content = content_for(i);
        let msg = Message::new(
            MessageType::REQUEST_URI,
            format!("echo/{i}"),
            content.clone(),
        );
        exchange(conn, msg, timeout, MessageType::RESPOND_URI, Some(&content))
            .await
            .map_err(|e| format!("request {i}: {e}"))?;
    }
    Ok(())
}

async fn pubsub_checks(conn: &Connection, timeout: Duration) -> Result<(), String> {
    // The confirmations are checked as the Python library would: by type and uri. Their content is
    // the server's choice (the Python README's handlers send none).
    let sub = Message::new(MessageType::SUBSCRIBE_URI, TOPIC, "sub");
    exchange(conn, sub, timeout, MessageType::CONFIRM_SUBSCRIBE, None).await?;

    let content = b"hello from rust";
    let publish = Message::new(MessageType::PUBLISH_URI, TOPIC, &content[..]);
    exchange(conn, publish, timeout, MessageType::OK, Some(b"published")).await?;
    let note = conn
        .receive_timeout(timeout)
        .await
        .map_err(|e| format!("waiting for NOTIFY_URI: {e}"))?;
    if note.message_type != MessageType::NOTIFY_URI
        || note.uri().as_ref() != TOPIC.as_bytes()
        || note.content().as_ref() != content
    {
        return Err(format!(
            "expected NOTIFY_URI on {TOPIC}, got {}",
            line(&note)
        ));
    }

    let unsub = Message::new(MessageType::UNSUBSCRIBE_URI, TOPIC, "unsub");
    exchange(conn, unsub, timeout, MessageType::CONFIRM_UNSUBSCRIBE, None).await?;
    let publish = Message::new(MessageType::PUBLISH_URI, TOPIC, "after unsubscribe");
    exchange(conn, publish, timeout, MessageType::OK, Some(b"published")).await?;
    // The server sends a notification before its OK, and the client handles frames in order: one
    // sent to us would already be waiting.
    match conn.receive_timeout(Duration::ZERO).await {
        Err(ReceiveError::Timeout(_)) => Ok(()),
        Ok(m) => Err(format!("notified after unsubscribing: {}", line(&m))),
        Err(e) => Err(format!("after unsubscribing: {e}")),
    }
}

async fn run(opts: &Cli) -> Result<(), String> {
    let addr = SocketAddr::new(opts.host, opts.port);
    let client = opts.plugins.client(TcpClient::builder()).build();
    let conn = client
        .connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let result = async {
        echo_checks(&conn, opts.n, opts.timeout).await?;
        if !opts.no_pubsub {
            pubsub_checks(&conn, opts.timeout).await?;
        }
        Ok(())
    }
    .await;
    conn.close().await;
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts: Cli = netaio_support::parse_args();
    init_tracing("warn");
    tracing::info!(plugins = %opts.plugins.describe(), "python-compatible client");
    match run(&opts).await {
        Ok(()) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "ok {}", opts.n).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("compat_client: {reason}");
            ExitCode::FAILURE
        }
    }
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
        let cli = Cli::try_parse_from(["compat_client", "--port", "9", "--n", "3"]).unwrap();
        assert_eq!(
            SocketAddr::new(cli.host, cli.port),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!((cli.n, cli.timeout), (3, Duration::from_secs(10)));
        assert!(!cli.no_pubsub);
        let cli = Cli::try_parse_from([
            "compat_client",
            "--port=9",
            "--n=0",
            "--timeout",
            "0.5",
            "--no-pubsub",
            "--host",
            "::1",
            "--cipher",
            "k",
        ])
        .unwrap();
        assert_eq!(cli.timeout, Duration::from_millis(500));
        assert!(cli.no_pubsub);
        assert_eq!(cli.host, IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        assert_eq!(cli.plugins.describe(), "cipher");
        for bad in [
            &["compat_client", "--port", "9"][..],
            &["compat_client", "--port", "9", "--n", "1", "--timeout", "0"],
            &[
                "compat_client",
                "--port",
                "9",
                "--n",
                "1",
                "--timeout",
                "1e9",
            ],
            &[
                "compat_client",
                "--port",
                "9",
                "--n",
                "1",
                "--timeout",
                "NaN",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
