//! The local API's routes: what an application that connected to the daemon (its Unix socket
//! or loopback TCP) can ask, each behind its HELLO (see the [module documentation](super)).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use netaio::router::{Content, Context, ErrorReply};
use netaio::tcp::ConnectionId;
use netaio::{Message, MessageType, Router, ServerHandle};

use super::access::check_uid;
use super::peer::call;
use super::{
    CALL_URI, FEATURE_CALL, FEATURE_SERVE, GOSSIP_URI, HELLO_URI, MAX_ROUTES, MAX_WATCHERS,
    NATIVE_VERSION, PEERS_URI, SERVE_URI, SUBSCRIBE_URI, State, WATCH_URI,
};
use crate::codec::{ApiMessage, HEADER_LEN, check_header};
use crate::core::ConnId;
use crate::daemon::{ApiEvent, Sink, next_conn_id};

/// The local server's router: every route of the table in the module documentation but the
/// daemon-to-daemon ones.
pub(super) fn router(state: &Arc<State>) -> Router {
    let (s1, s2, s3) = (state.clone(), state.clone(), state.clone());
    let (s4, s5, s6, s7) = (state.clone(), state.clone(), state.clone(), state.clone());
    Router::new()
        .on(
            (MessageType::REQUEST_URI, HELLO_URI),
            move |ctx: Context, Content(c): Content| {
                let s = s1.clone();
                async move { hello(&s, &ctx, c).await }
            },
        )
        .on(
            (MessageType::REQUEST_URI, SERVE_URI),
            move |ctx: Context, Content(c): Content| {
                let s = s2.clone();
                async move { serve(&s, &ctx, c) }
            },
        )
        .on(
            (MessageType::REQUEST_URI, CALL_URI),
            move |ctx: Context, Content(c): Content| {
                let s = s3.clone();
                async move { call(&s, &ctx, c).await }
            },
        )
        .on(
            (MessageType::REQUEST_URI, PEERS_URI),
            move |ctx: Context| {
                let s = s4.clone();
                async move { list_peers(&s, &ctx) }
            },
        )
        .on(
            (MessageType::REQUEST_URI, WATCH_URI),
            move |ctx: Context| {
                let s = s5.clone();
                async move { watch(&s, &ctx) }
            },
        )
        .on(
            (MessageType::REQUEST_URI, GOSSIP_URI),
            move |ctx: Context, Content(c): Content| {
                let s = s6.clone();
                async move { gossip_message(&s, &ctx, c).await }
            },
        )
        .on(
            (MessageType::REQUEST_URI, SUBSCRIBE_URI),
            move |ctx: Context, Content(c): Content| {
                let s = s7.clone();
                async move { subscribe(&s, &ctx, c).await }
            },
        )
}

pub(super) fn greeted(s: &State, ctx: &Context) -> Result<ConnectionId, ErrorReply> {
    let conn = ctx
        .connection_id()
        .ok_or_else(|| ErrorReply::error("no connection"))?;
    let ok = s.greeted.lock().map(|g| g.contains(&conn)).unwrap_or(false);
    if ok {
        Ok(conn)
    } else {
        Err(ErrorReply::not_permitted("HELLO first"))
    }
}

fn list_peers(s: &State, ctx: &Context) -> Result<Message, ErrorReply> {
    greeted(s, ctx)?;
    let list: Vec<String> = s.node.neighbors().iter().map(|a| a.to_string()).collect();
    Ok(Message::respond(PEERS_URI, list.join("\n")))
}

fn watch(s: &State, ctx: &Context) -> Result<Message, ErrorReply> {
    let conn = greeted(s, ctx)?;
    let mut w = s
        .watchers
        .lock()
        .map_err(|_| ErrorReply::error("poisoned"))?;
    if w.len() >= MAX_WATCHERS && !w.contains(&conn) {
        return Err(ErrorReply::not_permitted("too many watchers").with_uri(WATCH_URI));
    }
    w.insert(conn);
    let next = s.next_event.load(std::sync::atomic::Ordering::SeqCst);
    Ok(Message::respond(WATCH_URI, next.to_be_bytes().to_vec()))
}

/// The daemon-core number of a greeted connection.
fn core_id(s: &State, ctx: &Context) -> Result<ConnId, ErrorReply> {
    let conn = greeted(s, ctx)?;
    s.conn_ids
        .lock()
        .ok()
        .and_then(|m| m.get(&conn).copied())
        .ok_or_else(|| ErrorReply::error("connection unknown"))
}

async fn gossip_message(s: &State, ctx: &Context, c: Bytes) -> Result<Message, ErrorReply> {
    let conn = core_id(s, ctx)?;
    let malformed = |e: String| ErrorReply::error(format!("malformed: {e}")).with_uri(GOSSIP_URI);
    let header: [u8; HEADER_LEN] = c
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| malformed("shorter than a header".into()))?;
    let (kind, len) = check_header(header).map_err(|e| malformed(e.to_string()))?;
    if c.len() != HEADER_LEN + len {
        return Err(malformed("size does not match the content".into()));
    }
    let message =
        ApiMessage::decode(kind, c.slice(HEADER_LEN..)).map_err(|e| malformed(e.to_string()))?;
    s.gossip
        .send(ApiEvent::Message(conn, message))
        .await
        .map_err(|_| ErrorReply::error("daemon stopping"))?;
    Ok(Message::ok(GOSSIP_URI, ""))
}

async fn subscribe(s: &State, ctx: &Context, mut c: Bytes) -> Result<Message, ErrorReply> {
    let conn = core_id(s, ctx)?;
    let (Ok(data_type), Ok(validate)) = (c.try_get_u16(), c.try_get_u8()) else {
        return Err(
            ErrorReply::error("SUBSCRIBE: data_type u16 | validate u8").with_uri(SUBSCRIBE_URI)
        );
    };
    let event = if validate == 0 {
        ApiEvent::Unvalidated(conn, data_type)
    } else {
        ApiEvent::Message(conn, ApiMessage::Notify { data_type })
    };
    s.gossip
        .send(event)
        .await
        .map_err(|_| ErrorReply::error("daemon stopping"))?;
    Ok(Message::ok(SUBSCRIBE_URI, ""))
}

async fn hello(s: &State, ctx: &Context, mut c: Bytes) -> Result<Message, ErrorReply> {
    if c.len() < 6 {
        return Err(ErrorReply::error("HELLO: version u16 | features u32").with_uri(HELLO_URI));
    }
    let version = c.get_u16();
    let features = c.get_u32();
    if version != NATIVE_VERSION {
        return Err(ErrorReply::not_permitted(format!(
            "native API version {version} not supported: this daemon speaks version {NATIVE_VERSION}"
        ))
        .with_uri(HELLO_URI));
    }
    let Some(conn) = ctx.connection_id() else {
        return Err(ErrorReply::error("no connection"));
    };
    if !s.allowed_uids.is_empty() {
        let server = s.local.get().map(ServerHandle::local_addr);
        check_uid(&s.allowed_uids, ctx, server).map_err(|e| e.with_uri(HELLO_URI))?;
    }
    let fresh = s
        .greeted
        .lock()
        .map(|mut g| g.insert(conn))
        .unwrap_or(false);
    if fresh && let Some(local) = s.local.get() {
        let id = next_conn_id();
        if let Ok(mut m) = s.conn_ids.lock() {
            m.insert(conn, id);
        }
        let sink = Sink::Native(local.clone(), conn);
        s.gossip
            .send(ApiEvent::Opened(id, sink))
            .await
            .map_err(|_| ErrorReply::error("daemon stopping"))?;
    }
    let ours = FEATURE_SERVE | FEATURE_CALL;
    let mut out = BytesMut::new();
    out.put_u16(NATIVE_VERSION);
    out.put_u32(features & ours);
    out.put_slice(s.peer_id.get().map_or("", String::as_str).as_bytes());
    Ok(Message::respond(HELLO_URI, out.freeze()))
}

fn serve(s: &State, ctx: &Context, uri: Bytes) -> Result<Message, ErrorReply> {
    let conn = greeted(s, ctx)?;
    if uri.is_empty() {
        return Err(ErrorReply::error("SERVE: an empty uri").with_uri(SERVE_URI));
    }
    let mut routes = s.routes.lock().map_err(|_| ErrorReply::error("poisoned"))?;
    if routes.len() >= MAX_ROUTES && !routes.contains_key(&uri) {
        return Err(ErrorReply::not_permitted("too many routes").with_uri(SERVE_URI));
    }
    tracing::info!(uri = %String::from_utf8_lossy(&uri), "route served");
    // The latest registration wins (an application that reconnected).
    routes.insert(uri, conn);
    Ok(Message::ok(SERVE_URI, ""))
}

/// Encodes a CALL's content.
pub fn call_content(peer: &str, uri: &str, body: &[u8]) -> Option<Bytes> {
    let peer_len = u8::try_from(peer.len()).ok()?;
    let uri_len = u16::try_from(uri.len()).ok()?;
    let mut out = BytesMut::with_capacity(3 + peer.len() + uri.len() + body.len());
    out.put_u8(peer_len);
    out.put_slice(peer.as_bytes());
    out.put_u16(uri_len);
    out.put_slice(uri.as_bytes());
    out.put_slice(body);
    Some(out.freeze())
}
