//! Daemon to daemon: the greeting ([`PEER_HELLO_URI`]) that tells each side the other's
//! public keys, and calls ([`PEER_CALL_URI`]) sealed with the host keys: what a CALL becomes
//! on its way to the daemon that serves the uri (see the [module](super) above for the layout).

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use netaio::peer::PeerData;
use netaio::plugin::SendOptions;
use netaio::router::{Context, ErrorReply};
use netaio::{Message, MessageType, RequestError};
use netaio_asymmetric::{AsymmetricPeerPlugin, PublicKeys};

use super::{CALL_URI, PEER_CALL_URI, PEER_HELLO_URI, PEER_ID_LEN, State};

/// The peer id of a daemon with these keys, as text: the hex of netaio-asymmetric's
/// self-certifying [`peer_id`](netaio_asymmetric::peer_id).
pub fn peer_id_text(keys: &PublicKeys) -> String {
    hex::encode(netaio_asymmetric::peer_id(keys))
}

/// `ID` or `ID@host:port` (the host an IP address; IPv6 in brackets).
pub(super) fn parse_peer(text: &str) -> Option<([u8; PEER_ID_LEN], Option<SocketAddr>)> {
    let (id, addr) = match text.split_once('@') {
        Some((id, addr)) => (id, Some(addr.parse().ok()?)),
        None => (text, None),
    };
    let mut out = [0u8; PEER_ID_LEN];
    hex::decode_to_slice(id, &mut out).ok()?;
    Some((out, addr))
}

fn encode_keys(keys: &PublicKeys) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_slice(&keys.x25519);
    out.put_slice(&keys.ed25519);
    out.freeze()
}

/// Usable public keys from `x25519 | ed25519`.
fn decode_keys(c: &[u8]) -> Option<PublicKeys> {
    if c.len() != 64 {
        return None;
    }
    let (x, e) = (c.get(..32)?, c.get(32..)?);
    let keys = PublicKeys {
        x25519: x.try_into().ok()?,
        ed25519: e.try_into().ok()?,
    };
    keys.check().ok().map(|()| keys)
}

/// A daemon's record for the per-peer plugins: its self-certifying id and its keys.
fn peer_record(keys: &PublicKeys) -> Option<netaio::peer::Peer> {
    let id = Bytes::copy_from_slice(&netaio_asymmetric::peer_id(keys));
    AsymmetricPeerPlugin
        .peer(id, keys, PeerData::default())
        .ok()
}

/// Another daemon greets this one: its keys become the connection's peer, which PEER_CALL's
/// plugins check signatures against and encrypt replies to.
pub(super) fn peer_hello(s: &State, ctx: &Context, c: Bytes) -> Result<Message, ErrorReply> {
    let Some(peer) = decode_keys(&c).and_then(|k| peer_record(&k)) else {
        tracing::info!(from = %ctx.peer_addr(), "PEER_HELLO with unusable keys refused");
        return Err(
            ErrorReply::not_permitted("PEER_HELLO: x25519 key | ed25519 key")
                .with_uri(PEER_HELLO_URI),
        );
    };
    tracing::debug!(from = %ctx.peer_addr(), peer = %hex::encode(&peer.id), "daemon greeted");
    ctx.set_peer(Some(peer));
    Ok(Message::respond(PEER_HELLO_URI, encode_keys(&s.keys)))
}

/// Greets the daemon at the other end of `conn`, which must be `id`; its record is then the
/// connection's peer.
async fn greet(
    s: &State,
    conn: &netaio::Connection,
    id: &[u8; PEER_ID_LEN],
) -> Result<(), ErrorReply> {
    let hello = Message::new(
        MessageType::REQUEST_URI,
        PEER_HELLO_URI,
        encode_keys(&s.keys),
    );
    let reply = conn.call_timeout(hello, s.timeout).await.map_err(|e| {
        ErrorReply::error(format!("peer {}: greeting failed: {e}", hex::encode(id)))
            .with_uri(CALL_URI)
    })?;
    let record = decode_keys(reply.content())
        .and_then(|k| peer_record(&k))
        .filter(|r| r.id.as_ref() == id.as_slice());
    let Some(record) = record else {
        tracing::warn!(peer = %hex::encode(id), addr = %conn.peer_addr(), "the daemon there has other keys");
        return Err(ErrorReply::error(format!(
            "the daemon at {} is not peer {}",
            conn.peer_addr(),
            hex::encode(id)
        ))
        .with_uri(CALL_URI));
    };
    conn.set_peer(Some(record));
    Ok(())
}

/// Forwards `request` (`uri_len | uri | body`) to the daemon `id` at `peer`, sealed for it, over
/// a cached connection (opened again when it broke: a restarted peer) on which the daemons
/// greeted each other.
pub(super) async fn forward_call(
    s: &State,
    id: [u8; PEER_ID_LEN],
    peer: SocketAddr,
    request: Bytes,
) -> Result<Bytes, ErrorReply> {
    let message = Message::new(MessageType::REQUEST_URI, PEER_CALL_URI, request);
    let opts = SendOptions::new()
        .inner(s.sealed.clone())
        .timeout(s.timeout);
    for attempt in 0..2 {
        let conn = s.peers.connect(peer).await.map_err(|e| {
            ErrorReply::error(format!("peer {peer} unreachable: {e}")).with_uri(CALL_URI)
        })?;
        if conn.peer().is_none_or(|p| p.id.as_ref() != id.as_slice()) {
            greet(s, &conn, &id).await?;
        }
        match conn.call_with(message.clone(), &opts).await {
            Ok(reply) => return Ok(reply.content().clone()),
            // A connection that broke (the peer restarted): once more on a new one.
            Err(RequestError::Closed | RequestError::Send(_)) if attempt == 0 => {
                conn.close().await;
            }
            Err(RequestError::NotFound(m)) => {
                return Err(ErrorReply::not_found(
                    String::from_utf8_lossy(m.content()).into_owned(),
                )
                .with_uri(CALL_URI));
            }
            Err(e) => {
                return Err(ErrorReply::error(format!("call to {peer}: {e}")).with_uri(CALL_URI));
            }
        }
    }
    Err(ErrorReply::error(format!("peer {peer} unreachable")).with_uri(CALL_URI))
}

pub(super) async fn peer_call(s: &State, mut c: Bytes) -> Result<Message, ErrorReply> {
    let local = s
        .local
        .get()
        .ok_or_else(|| ErrorReply::error("starting").with_uri(PEER_CALL_URI))?;
    let bad = || ErrorReply::error("PEER_CALL: uri_len u16 | uri | body").with_uri(PEER_CALL_URI);
    let uri_len = usize::from(c.try_get_u16().map_err(|_| bad())?);
    if c.len() < uri_len {
        return Err(bad());
    }
    let uri = c.split_to(uri_len);
    let conn = s.routes.lock().ok().and_then(|r| r.get(&uri).copied());
    let Some(conn) = conn else {
        return Err(ErrorReply::not_found(format!(
            "nobody serves {} here",
            String::from_utf8_lossy(&uri)
        ))
        .with_uri(PEER_CALL_URI));
    };
    let request = Message::new(MessageType::REQUEST_URI, uri.clone(), c);
    match tokio::time::timeout(s.timeout, local.call(conn, request)).await {
        Ok(Ok(reply)) => Ok(Message::respond(PEER_CALL_URI, reply.content().clone())),
        Ok(Err(e)) => {
            if matches!(e, RequestError::Closed | RequestError::Send(_))
                && let Ok(mut r) = s.routes.lock()
                && r.get(&uri) == Some(&conn)
            {
                // The application is gone: its route with it.
                r.remove(&uri);
            }
            Err(ErrorReply::error(format!("application: {e}")).with_uri(PEER_CALL_URI))
        }
        Err(_) => {
            Err(ErrorReply::error("application did not answer in time").with_uri(PEER_CALL_URI))
        }
    }
}
