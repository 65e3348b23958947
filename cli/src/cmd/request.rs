//! `request`, `create`, `update`, `delete`, `call --type T`: send, wait, print the reply; and
//! `send`: fire and forget.

use std::time::Instant;

use netaio::peer::Peer;
use netaio::relay::RelayRefusal;
use netaio::{CallOptions, Message, MessageType};
use serde_json::json;

use super::peer::Remote;
use crate::cli::{Body, Exchange};
use crate::common::CommonArgs;
use crate::content::read_data;
use crate::exit::{Code, Failure};
use crate::output::Output;
use crate::target::{Target, Transport};

/// The message the body flags describe.
fn message(t: MessageType, body: &Body) -> Result<Message, Failure> {
    let content = match (&body.content, &body.data) {
        (Some(c), _) => c.as_bytes().to_vec(),
        (None, Some(d)) => read_data(d).map_err(Failure::other)?,
        (None, None) => Vec::new(),
    };
    Ok(Message::new(t, body.uri.clone(), content))
}

/// Send `ex.count` requests one after the other, printing each reply; stop at the first failure.
pub async fn exchange(
    common: &CommonArgs,
    out: &Output,
    t: MessageType,
    ex: Exchange,
) -> Result<(), Failure> {
    let msg = message(t, &ex.body)?;
    let plugins = common.plugins()?;
    let via = match (&ex.peer, ex.addr.transport) {
        (Some(id), Transport::Tcp) => Some(Peer::new(id.clone())),
        (Some(_), Transport::Udp) => {
            return Err(Failure::other(
                "--peer goes through a relay, reached over TCP only",
            ));
        }
        (None, _) => None,
    };
    let remote = Remote::open(&ex.addr, &plugins, ex.timeout).await?;
    let mut opts = CallOptions::default().timeout(ex.timeout);
    opts = match ex.soft_timeout {
        Some(s) => opts.soft_timeout(s),
        None => opts.no_soft_timeout(),
    };
    let mut result = Ok(());
    for i in 0..ex.count {
        let started = Instant::now();
        let mut call = remote.start_call(msg.clone(), &opts, via.as_ref());
        let soft = call.soft_timeout();
        let reply = tokio::select! {
            r = &mut call => r,
            () = soft => {
                let after = started.elapsed();
                if out.is_json() {
                    out.object(&json!({"event": "soft_timeout", "seq": i, "elapsed_ms": after.as_secs_f64() * 1e3}));
                }
                out.note(&format!("no reply after {after:.1?} (soft timeout); still waiting"));
                call.await
            }
        };
        let elapsed = json!({"seq": i, "elapsed_ms": started.elapsed().as_secs_f64() * 1e3});
        match reply {
            Ok(reply) => out.message("reply", None, &reply, elapsed),
            Err(e) => {
                // A relay's refusal (no route, rate limited, …) rather than the peer's answer.
                let refusal = via.as_ref().and_then(|_| RelayRefusal::from_error(&e));
                if let Some(reply) = e.reply() {
                    let mut extra = elapsed;
                    if let (Some(r), Some(obj)) = (refusal, extra.as_object_mut()) {
                        obj.insert("relay_refusal".into(), r.code().into());
                    }
                    out.message("error_reply", None, reply, extra);
                }
                result = Err(match (refusal, &via) {
                    (Some(r), Some(peer)) => Failure::new(
                        Code::ErrorReply,
                        format!(
                            "the relay at {} refused the call to {}: {}",
                            ex.addr,
                            String::from_utf8_lossy(&peer.id),
                            r.code()
                        ),
                    ),
                    _ => Failure::request(&e),
                });
                break;
            }
        }
    }
    remote.close().await;
    result
}

/// Send one message without a request id and without waiting for a reply.
pub async fn send(
    common: &CommonArgs,
    out: &Output,
    addr: Target,
    t: MessageType,
    body: Body,
) -> Result<(), Failure> {
    let msg = message(t, &body)?;
    let plugins = common.plugins()?;
    let remote = Remote::open(&addr, &plugins, std::time::Duration::from_secs(10)).await?;
    let sent = remote.send(&msg).await;
    // A TCP close writes what is queued first: the message has left when this returns.
    remote.close().await;
    sent?;
    out.event(
        "sent",
        json!({"to": addr.to_string(), "type": crate::output::type_name(t), "content_len": msg.content().len()}),
        || format!("sent {} {} ({} bytes) to {addr}", crate::output::type_name(t), body.uri, msg.content().len()),
    );
    Ok(())
}
