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
//! unless `--no-pubsub`, it subscribes to a topic (CONFIRM_SUBSCRIBE), publishes to it (NOTIFY_URI
//! with the same content, and OK), unsubscribes (CONFIRM_UNSUBSCRIBE) and publishes again (OK, and
//! no NOTIFY_URI before it). Prints `ok N` and exits 0, or prints the reason on stderr and exits 1
//! (2 for a usage error). `--verbose` is accepted and ignored; logs go to stderr (`RUST_LOG`).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use netaio::{Connection, Message, MessageType, ReceiveError, TcpClient};
use netaio_examples::args::{Flags, UsageError, usage_exit};
use netaio_examples::compat::{PluginFlags, content_for};
use netaio_examples::init_tracing;
use netaio_examples::show::{message as line, request_error};

const USAGE: &str = "--port P [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] --n N [--timeout S] [--no-pubsub] [--host ADDR]
  --port P          the server's port
  --n N             how many echo requests to send
  --timeout S       seconds to wait for each reply (default 10, as Python's request)
  --hmac SECRET     Python's HMACAuthPlugin with this secret (insecure legacy MAC)
  --cipher KEY      Python's Sha256StreamCipherPlugin with this key (insecure legacy cipher)
  --no-encrypt-uri  the cipher leaves the uri in clear (Python: encrypt_uri=False)
  --no-pubsub       skip the subscribe / publish / notify / unsubscribe checks
  --host ADDR       the server's address (default 127.0.0.1, as Python)
  --verbose         ignored";

/// The topic of the pub/sub checks.
pub const TOPIC: &str = "compat/topic";

struct Options {
    addr: SocketAddr,
    n: usize,
    timeout: Duration,
    pubsub: bool,
    plugins: PluginFlags,
}

fn options() -> Result<Options, UsageError> {
    let mut values = vec!["port", "n", "timeout", "host"];
    values.extend_from_slice(PluginFlags::VALUES);
    let mut switches = vec!["no-pubsub"];
    switches.extend_from_slice(PluginFlags::SWITCHES);
    let flags = Flags::from_env_with_switches(&values, &switches)?;
    let port = flags
        .value::<u16>("port")?
        .ok_or_else(|| UsageError::MissingValue("port".into()))?;
    let n = flags
        .value::<usize>("n")?
        .ok_or_else(|| UsageError::MissingValue("n".into()))?;
    let timeout = flags.value_or("timeout", 10.0f64)?;
    if !(timeout.is_finite() && timeout > 0.0 && timeout < 86_400.0) {
        return Err(UsageError::Invalid {
            flag: "timeout".into(),
            value: timeout.to_string(),
            reason: "not a number of seconds above 0".into(),
        });
    }
    let ip = flags.ip_or("host", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    Ok(Options {
        addr: SocketAddr::new(ip, port),
        n,
        timeout: Duration::from_secs_f64(timeout),
        pubsub: !flags.is_set("no-pubsub"),
        plugins: PluginFlags::from_flags(&flags),
    })
}

/// Send `msg`, wait for the reply, and check its type, uri and content.
async fn exchange(
    conn: &Connection,
    msg: Message,
    timeout: Duration,
    expect: MessageType,
    content: &[u8],
) -> Result<(), String> {
    let uri = msg.uri().clone();
    let what = format!("{} {:?}", msg.message_type, String::from_utf8_lossy(&uri));
    let reply = conn
        .call_timeout(msg, timeout)
        .await
        .map_err(|e| format!("{what}: {}", request_error(&e)))?;
    if reply.message_type != expect || reply.uri() != &uri || reply.content().as_ref() != content {
        return Err(format!(
            "{what}: expected {expect} with the same uri and {} content bytes, got {}",
            content.len(),
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
        exchange(conn, msg, timeout, MessageType::RESPOND_URI, &content)
            .await
            .map_err(|e| format!("request {i}: {e}"))?;
    }
    Ok(())
}

async fn pubsub_checks(conn: &Connection, timeout: Duration) -> Result<(), String> {
    let sub = Message::new(MessageType::SUBSCRIBE_URI, TOPIC, "sub");
    exchange(conn, sub, timeout, MessageType::CONFIRM_SUBSCRIBE, b"sub").await?;

    let content = b"hello from rust";
    let publish = Message::new(MessageType::PUBLISH_URI, TOPIC, &content[..]);
    exchange(conn, publish, timeout, MessageType::OK, b"published").await?;
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
    exchange(
        conn,
        unsub,
        timeout,
        MessageType::CONFIRM_UNSUBSCRIBE,
        b"unsub",
    )
    .await?;
    let publish = Message::new(MessageType::PUBLISH_URI, TOPIC, "after unsubscribe");
    exchange(conn, publish, timeout, MessageType::OK, b"published").await?;
    // The server sends a notification before its OK, and the client handles frames in order: one
    // sent to us would already be waiting.
    match conn.receive_timeout(Duration::ZERO).await {
        Err(ReceiveError::Timeout(_)) => Ok(()),
        Ok(m) => Err(format!("notified after unsubscribing: {}", line(&m))),
        Err(e) => Err(format!("after unsubscribing: {e}")),
    }
}

async fn run(opts: &Options) -> Result<(), String> {
    let client = opts.plugins.client(TcpClient::builder()).build();
    let conn = client
        .connect(opts.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", opts.addr))?;
    let result = async {
        echo_checks(&conn, opts.n, opts.timeout).await?;
        if opts.pubsub {
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
    let opts = match options() {
        Ok(o) => o,
        Err(e) => return usage_exit("compat_client", USAGE, &e),
    };
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
