//! `serve --listen ADDR`: a server for trying clients out. It prints every message it receives;
//! answers by echo (or by the `--route`s given); and keeps subscriptions: SUBSCRIBE_URI,
//! UNSUBSCRIBE_URI, and PUBLISH_URI, which notifies the uri's subscribers and answers OK
//! `published`, as the Python README's server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use netaio::bytes::Bytes;
use netaio::tcp::ConnectionEvent;
use netaio::{Context, Message, MessageType, Router, TcpServer, UdpNode};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;

use super::after;
use super::relay::Reservation;
use crate::common::CommonArgs;
use crate::content::parse_type;
use crate::exit::Failure;
use crate::output::Output;
use crate::target::{Target, Transport};

/// One `--route 'TYPE URI=CONTENT…'`: the type and its (uri, content) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The message type answered.
    pub message_type: MessageType,
    /// Each uri and the content of its reply.
    pub answers: Vec<(String, String)>,
}

impl RouteSpec {
    /// `REQUEST_URI hello=world a=b`.
    pub fn parse(s: &str) -> Result<RouteSpec, String> {
        let mut words = s.split_whitespace();
        let t = words
            .next()
            .ok_or_else(|| "an empty --route (expected 'TYPE URI=CONTENT')".to_owned())?;
        let message_type = parse_type(t)?;
        let answers: Vec<(String, String)> = words
            .map(|w| {
                w.split_once('=')
                    .map(|(u, c)| (u.to_owned(), c.to_owned()))
                    .ok_or_else(|| format!("--route {s:?}: {w:?} is not URI=CONTENT"))
            })
            .collect::<Result<_, _>>()?;
        if answers.is_empty() {
            return Err(format!("--route {s:?}: no URI=CONTENT after the type"));
        }
        Ok(RouteSpec {
            message_type,
            answers,
        })
    }
}

/// The reply type for a request of type `t`: RESPOND_URI to REQUEST_URI, OK to the other
/// standard requests, the same type for an application type.
fn reply_type(t: MessageType) -> Option<MessageType> {
    match t {
        MessageType::REQUEST_URI => Some(MessageType::RESPOND_URI),
        MessageType::CREATE_URI | MessageType::UPDATE_URI | MessageType::DELETE_URI => {
            Some(MessageType::OK)
        }
        t if t.is_custom() => Some(t),
        _ => None,
    }
}

fn print(out: Output, ctx: &Context, msg: &Message) {
    out.message("received", Some(ctx.peer_addr()), msg, json!({}));
}

/// The router of `serve`: the routes given, or echo; and the subscription handlers.
fn router(out: Output, routes: &[RouteSpec]) -> Router {
    let mut router = Router::new();
    for spec in routes {
        for (uri, content) in &spec.answers {
            let t = spec.message_type;
            let answer = reply_type(t).unwrap_or(MessageType::OK);
            let content = Bytes::from(content.clone());
            router = router.on((t, uri.clone()), move |msg: Message, ctx: Context| {
                let content = content.clone();
                async move {
                    print(out, &ctx, &msg);
                    Message::new(answer, msg.uri().clone(), content)
                }
            });
        }
    }
    let echo = routes.is_empty();
    router
        .on(
            MessageType::SUBSCRIBE_URI,
            move |msg: Message, ctx: Context| async move {
                print(out, &ctx, &msg);
                match ctx.subscribe(msg.uri().clone()) {
                    Ok(()) => Message::new(
                        MessageType::CONFIRM_SUBSCRIBE,
                        msg.uri().clone(),
                        msg.content().clone(),
                    ),
                    Err(e) => Message::error(e.to_string()),
                }
            },
        )
        .on(
            MessageType::UNSUBSCRIBE_URI,
            move |msg: Message, ctx: Context| async move {
                print(out, &ctx, &msg);
                ctx.unsubscribe(msg.uri());
                Message::new(
                    MessageType::CONFIRM_UNSUBSCRIBE,
                    msg.uri().clone(),
                    msg.content().clone(),
                )
            },
        )
        .on(
            MessageType::PUBLISH_URI,
            move |msg: Message, ctx: Context| async move {
                print(out, &ctx, &msg);
                let note = Message::new(
                    MessageType::NOTIFY_URI,
                    msg.uri().clone(),
                    msg.content().clone(),
                );
                match ctx.notify(msg.uri(), &note).await {
                    Ok(_) => Message::ok(msg.uri().clone(), "published"),
                    Err(e) => Message::error(e.to_string()),
                }
            },
        )
        .fallback(move |msg: Message, ctx: Context| async move {
            print(out, &ctx, &msg);
            // Never answer an error, or a reply: two echo servers would play ping-pong.
            let answer = reply_type(msg.message_type)?;
            Some(if echo {
                Message::new(answer, msg.uri().clone(), msg.content().clone())
            } else {
                Message::not_found()
            })
        })
}

/// The bound server, before it serves.
enum Bound {
    Tcp(TcpServer),
    Udp(UdpNode),
    /// Only behind a relay (`--reserve-at` without `--listen`).
    Nothing,
}

/// Serve until Ctrl-C or `--seconds` (or, behind a relay, until the reservation is lost).
pub async fn run(
    common: &CommonArgs,
    out: &Output,
    listen: Option<Target>,
    reserve: Option<(Target, String)>,
    routes: &[String],
    seconds: Option<Duration>,
) -> Result<(), Failure> {
    let routes: Vec<RouteSpec> = routes
        .iter()
        .map(|r| RouteSpec::parse(r))
        .collect::<Result<_, _>>()
        .map_err(Failure::other)?;
    let plugins = common.plugins()?;
    let bound = match &listen {
        None => Bound::Nothing,
        Some(listen) => {
            let addr = listen.resolve().await?;
            let cannot =
                |e: netaio::BindError| Failure::other(format!("cannot listen on {addr}: {e}"));
            match listen.transport {
                Transport::Tcp => {
                    let server = plugins
                        .server(TcpServer::builder())
                        .address(addr)
                        .router(router(*out, &routes))
                        .bind()
                        .await
                        .map_err(cannot)?;
                    listening(out, "tcp", server.local_addr());
                    Bound::Tcp(server)
                }
                Transport::Udp => {
                    let node = plugins
                        .udp(UdpNode::builder())
                        .address(addr)
                        .router(router(*out, &routes))
                        .bind()
                        .await
                        .map_err(cannot)?;
                    listening(out, "udp", node.local_addr());
                    Bound::Udp(node)
                }
            }
        }
    };
    // A lost reservation (a failed renewal, the relay gone) ends the command with its failure.
    let (lost_tx, lost_rx) = oneshot::channel::<Failure>();
    let lost_tx = Arc::new(Mutex::new(Some(lost_tx)));
    let reservation = match &reserve {
        Some((relay, id)) => Some(
            Reservation::start(
                &plugins,
                *out,
                relay,
                id,
                router(*out, &routes),
                lost_tx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let failure: Arc<Mutex<Option<Failure>>> = Arc::default();
    let stop = {
        let failure = failure.clone();
        async move {
            tokio::select! {
                why = netaio_support::signals::stop_signals() => tracing::info!("{why}: stopping"),
                () = after(seconds) => {}
                Ok(f) = lost_rx => {
                    if let Ok(mut slot) = failure.lock() {
                        *slot = Some(f);
                    }
                }
            }
        }
    };
    match bound {
        Bound::Tcp(server) => {
            let events = tokio::spawn(connection_events(*out, server.handle().events()));
            server.serve_with_shutdown(stop).await;
            events.abort();
        }
        Bound::Udp(node) => {
            let refusals = tokio::spawn(super::listen::report_refusals(*out, node.handle()));
            node.serve_with_shutdown(stop).await;
            refusals.abort();
        }
        Bound::Nothing => stop.await,
    }
    if let Some(r) = reservation {
        r.close().await;
    }
    drop(lost_tx);
    match failure.lock().ok().and_then(|mut f| f.take()) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Print each connection as it comes and goes, with why it ended (a refused secret shows as
/// `too many authentication failures`, a silent client as a handshake timeout, …).
pub(crate) async fn connection_events(
    out: Output,
    mut events: tokio::sync::broadcast::Receiver<ConnectionEvent>,
) {
    loop {
        match events.recv().await {
            Ok(ConnectionEvent::Connected { id, peer }) => out.event(
                "connected",
                json!({"peer": peer.to_string(), "connection": id.0}),
                || format!("{peer:<22} connected {id}"),
            ),
            Ok(ConnectionEvent::Disconnected { id, peer, reason }) => out.event(
                "disconnected",
                json!({"peer": peer.to_string(), "connection": id.0, "reason": reason.to_string()}),
                || format!("{peer:<22} disconnected {id}: {reason}"),
            ),
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => break,
        }
    }
}

/// The first line: where it listens (port 0 becomes the real port).
pub fn listening(out: &Output, transport: &str, addr: std::net::SocketAddr) {
    out.event(
        "listening",
        json!({"transport": transport, "addr": addr.to_string(), "port": addr.port()}),
        || format!("listening {transport}://{addr}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_specs() {
        let r = RouteSpec::parse("REQUEST_URI hello=world a=b=c").unwrap();
        assert_eq!(r.message_type, MessageType::REQUEST_URI);
        assert_eq!(
            r.answers,
            vec![("hello".into(), "world".into()), ("a".into(), "b=c".into())]
        );
        assert!(RouteSpec::parse("").is_err());
        assert!(RouteSpec::parse("REQUEST_URI").is_err());
        assert!(RouteSpec::parse("REQUEST_URI hello").is_err());
        assert!(RouteSpec::parse("SHOUT a=b").is_err());
    }

    #[test]
    fn replies_by_type() {
        assert_eq!(
            reply_type(MessageType::REQUEST_URI),
            Some(MessageType::RESPOND_URI)
        );
        assert_eq!(reply_type(MessageType::DELETE_URI), Some(MessageType::OK));
        assert_eq!(
            reply_type(MessageType::from_u8(100)),
            Some(MessageType::from_u8(100))
        );
        assert_eq!(reply_type(MessageType::ERROR), None);
        assert_eq!(reply_type(MessageType::RESPOND_URI), None);
    }
}
