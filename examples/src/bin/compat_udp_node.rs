//! The UDP interop node: a Rust `UdpNode` in Python-compatible mode, for checking it against a
//! Python netaio 0.0.9 `UDPNode` from a shell.
//!
//! ```text
//! compat_udp_node --port P [--peer-port Q --send N] [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] [--seconds S] [--timeout T]
//! ```
//!
//! Binds 127.0.0.1:P and prints `listening P` once bound (the real port when P is 0). It answers
//! REQUEST_URI with OK (same uri and content) by unicast, until S seconds have passed (default:
//! until Ctrl-C). With `--send N` it instead sends N REQUEST_URI messages of 0 to 1,000 bytes to
//! 127.0.0.1:Q, checks that each is answered with OK and the same uri and content (waiting up to T
//! seconds, default 10 as Python's `request`), prints `ok N` and exits 0, or prints the reason on
//! stderr and exits 1 (2 for a usage error). Options not given take the Python library's defaults
//! (no plugins; the cipher encrypts the uri unless `--no-encrypt-uri`). `--verbose` is accepted
//! and ignored; logs go to stderr (`RUST_LOG`).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use netaio::plugin::SendOptions;
use netaio::udp::{UdpHandle, UdpNode};
use netaio::{Message, MessageType, Router};
use netaio_examples::args::{Flags, UsageError, usage_exit};
use netaio_examples::compat::{PluginFlags, content_for};
use netaio_examples::init_tracing;
use netaio_examples::show::{message as line, request_error};

const USAGE: &str = "--port P [--peer-port Q --send N] [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] [--seconds S] [--timeout T]
  --port P          port to bind on 127.0.0.1 (0 picks a free one; `listening P` tells which)
  --peer-port Q     with --send: the port of the node to send to, on 127.0.0.1
  --send N          send N requests to the peer, check the replies, print `ok N` and exit
  --hmac SECRET     Python's HMACAuthPlugin with this secret (insecure legacy MAC)
  --cipher KEY      Python's Sha256StreamCipherPlugin with this key (insecure legacy cipher)
  --no-encrypt-uri  the cipher leaves the uri in clear (Python: encrypt_uri=False)
  --seconds S       answer requests for S seconds, then exit (default: until Ctrl-C)
  --timeout T       seconds to wait for each reply (default 10, as Python's request)
  --verbose         ignored";

struct Options {
    port: u16,
    send: Option<(u16, usize)>,
    seconds: Option<f64>,
    timeout: Duration,
    plugins: PluginFlags,
}

fn seconds(flags: &Flags, flag: &str) -> Result<Option<f64>, UsageError> {
    match flags.value::<f64>(flag)? {
        Some(s) if !(s.is_finite() && s > 0.0 && s < 86_400.0 * 365.0) => {
            Err(UsageError::Invalid {
                flag: flag.into(),
                value: s.to_string(),
                reason: "not a number of seconds above 0".into(),
            })
        }
        other => Ok(other),
    }
}

fn options() -> Result<Options, UsageError> {
    let mut values = vec!["port", "peer-port", "send", "seconds", "timeout"];
    values.extend_from_slice(PluginFlags::VALUES);
    let flags = Flags::from_env_with_switches(&values, PluginFlags::SWITCHES)?;
    let port = flags
        .value::<u16>("port")?
        .ok_or_else(|| UsageError::MissingValue("port".into()))?;
    let send = match (
        flags.value::<u16>("peer-port")?,
        flags.value::<usize>("send")?,
    ) {
        (Some(q), Some(n)) => Some((q, n)),
        (None, None) => None,
        (None, Some(_)) => return Err(UsageError::MissingValue("peer-port".into())),
        (Some(_), None) => return Err(UsageError::MissingValue("send".into())),
    };
    Ok(Options {
        port,
        send,
        seconds: seconds(&flags, "seconds")?,
        timeout: Duration::from_secs_f64(seconds(&flags, "timeout")?.unwrap_or(10.0)),
        plugins: PluginFlags::from_flags(&flags),
    })
}

/// Send `n` requests to `peer` and check every reply.
async fn send_checks(
    node: &UdpHandle,
    peer: SocketAddr,
    n: usize,
    timeout: Duration,
) -> Result<(), String> {
    let opts = SendOptions::new().timeout(timeout);
    for i in 0..n {
        let content = content_for(i);
        let uri = format!("echo/{i}");
        let msg = Message::new(MessageType::REQUEST_URI, uri.clone(), content.clone());
        let reply = node
            .call_with(peer, msg, &opts)
            .await
            .map_err(|e| format!("request {i}: {}", request_error(&e)))?;
        if reply.message_type != MessageType::OK
            || reply.uri().as_ref() != uri.as_bytes()
            || reply.content().as_ref() != &content[..]
        {
            return Err(format!(
                "request {i}: expected OK {uri:?} with {} bytes, got {}",
                content.len(),
                line(&reply)
            ));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => return usage_exit("compat_udp_node", USAGE, &e),
    };
    init_tracing("warn");
    let router = Router::new().on(MessageType::REQUEST_URI, |m: Message| async move {
        Message::ok(m.uri().clone(), m.content().clone())
    });
    let builder = UdpNode::builder()
        .address((Ipv4Addr::LOCALHOST, opts.port))
        .router(router);
    let builder = opts.plugins.udp(builder);
    let node = match builder.bind().await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("compat_udp_node: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(plugins = %opts.plugins.describe(), "python-compatible udp node");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening {}", node.local_addr().port()).and_then(|()| out.flush());
    }
    let handle = node.handle();
    let seconds = opts.seconds;
    let serving = tokio::spawn(node.serve_with_shutdown(async move {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s)).await,
            None => {
                if let Err(e) = tokio::signal::ctrl_c().await {
                    tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        }
    }));
    let code = match opts.send {
        None => ExitCode::SUCCESS,
        Some((q, n)) => {
            let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, q));
            let result = send_checks(&handle, peer, n, opts.timeout).await;
            handle.shutdown();
            match result {
                Ok(()) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ok {n}").and_then(|()| out.flush());
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    eprintln!("compat_udp_node: {reason}");
                    ExitCode::FAILURE
                }
            }
        }
    };
    let _ = serving.await;
    code
}
