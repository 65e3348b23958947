//! Daemon to daemon: the greeting ([`PEER_HELLO_URI`]) that tells each side the other's
//! public keys, and calls ([`PEER_CALL_URI`]) sealed with the host keys: what a CALL becomes
//! on its way to the daemon that serves the uri (see the [module](super) above for the layout),
//! carried by `netaio::reach` directly (TCP to the address known for the id) or through the
//! relay, where this daemon holds a reservation of its own id so that calls reach it too.
//! Relayed requests arrive on the client's connection to the relay, so the peer-call routes are
//! on that client as well as on the peer-call server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use netaio::peer::{Peer, PeerData};
use netaio::reach::{LookupFuture, PeerCallError, PeerLookup, Strategy};
use netaio::router::{Context, ErrorReply};
use netaio::{CallOptions, Message, MessageType, RequestError};
use netaio_asymmetric::{AsymmetricPeerPlugin, PublicKeys};

use crate::directory::{Directory, unix_now};

use super::{CALL_URI, MAX_KNOWN_PEERS, PEER_CALL_URI, PEER_HELLO_URI, PEER_ID_LEN, State};

/// The peer id of a daemon with these keys, as text: the hex of netaio-asymmetric's
/// self-certifying [`peer_id`](netaio_asymmetric::peer_id).
pub fn peer_id_text(keys: &PublicKeys) -> String {
    hex::encode(netaio_asymmetric::peer_id(keys))
}

/// `ID` or `ID@host:port` (the host an IP address; IPv6 in brackets).
fn parse_peer(text: &str) -> Option<([u8; PEER_ID_LEN], Option<SocketAddr>)> {
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

/// Another daemon's greeting that came through the relay (on this daemon's connection to it):
/// its record goes to the peer table the relayed messages' plugins take the sender's keys from
/// (by the id it reserved at the relay, which must be the one its keys make).
pub(super) fn relayed_hello(s: &State, ctx: &Context, c: Bytes) -> Result<Message, ErrorReply> {
    let Some(peer) = decode_keys(&c).and_then(|k| peer_record(&k)) else {
        tracing::info!("relayed PEER_HELLO with unusable keys refused");
        return Err(
            ErrorReply::not_permitted("PEER_HELLO: x25519 key | ed25519 key")
                .with_uri(PEER_HELLO_URI),
        );
    };
    tracing::debug!(peer = %hex::encode(&peer.id), "daemon greeted through the relay");
    if let Err(e) = s.peers.peers().observe(peer, ctx.peer_addr()) {
        tracing::warn!(error = %e, "relayed greeting not recorded");
        return Err(ErrorReply::error("too many peers").with_uri(PEER_HELLO_URI));
    }
    Ok(Message::respond(PEER_HELLO_URI, encode_keys(&s.keys)))
}

/// Greets the daemon `id` by whatever way reaches it; its record (checked: its keys make `id`).
async fn greet(s: &State, id: &[u8; PEER_ID_LEN]) -> Result<Arc<Peer>, ErrorReply> {
    let hello = Message::new(
        MessageType::REQUEST_URI,
        PEER_HELLO_URI,
        encode_keys(&s.keys),
    );
    let opts = CallOptions::new().inner(s.stamp.clone()).timeout(s.timeout);
    let target = Bytes::copy_from_slice(id);
    let reply = s.reach.call_peer(target, hello, &opts).await.map_err(|e| {
        ErrorReply::error(format!("peer {}: greeting failed: {e}", hex::encode(id)))
            .with_uri(CALL_URI)
    })?;
    let record = decode_keys(reply.content())
        .and_then(|k| peer_record(&k))
        .filter(|r| r.id.as_ref() == id.as_slice());
    let Some(record) = record else {
        tracing::warn!(peer = %hex::encode(id), "the daemon reached has other keys");
        return Err(ErrorReply::error(format!(
            "the daemon reached is not peer {}",
            hex::encode(id)
        ))
        .with_uri(CALL_URI));
    };
    // Relayed replies are opened with the sender's record from the client's peer table.
    if let Some(addr) = s.known.relay.or_else(|| s.known.addr(id))
        && let Err(e) = s.peers.peers().observe(record.clone(), addr)
    {
        tracing::debug!(error = %e, "greeted peer not recorded in the peer table");
    }
    let record = Arc::new(record);
    if let Ok(mut r) = s.records.lock()
        && (r.len() < MAX_KNOWN_PEERS || r.contains_key(id))
    {
        r.insert(*id, record.clone());
    }
    Ok(record)
}

/// Forwards `request` (`uri_len | uri | body`) to the daemon `id`, sealed for it, by
/// `netaio::reach`: its known address (direct TCP), else the relay. The daemons greet first
/// (once; again when a call fails: a restarted peer, a new connection, a greeting the other side
/// forgot).
async fn forward_call(
    s: &State,
    id: [u8; PEER_ID_LEN],
    request: Bytes,
) -> Result<Bytes, ErrorReply> {
    let message = Message::new(MessageType::REQUEST_URI, PEER_CALL_URI, request);
    let opts = CallOptions::new()
        .inner(s.sealed.clone())
        .timeout(s.timeout);
    let name = hex::encode(id);
    for attempt in 0..2 {
        let known = s.records.lock().ok().and_then(|r| r.get(&id).cloned());
        let record = match known {
            Some(r) if attempt == 0 => r,
            _ => greet(s, &id).await?,
        };
        match s.reach.call_peer(record, message.clone(), &opts).await {
            Ok(reply) => return Ok(reply.content().clone()),
            Err(PeerCallError::Call {
                error: RequestError::NotFound(m),
                ..
            }) => {
                return Err(ErrorReply::not_found(
                    String::from_utf8_lossy(m.content()).into_owned(),
                )
                .with_uri(CALL_URI));
            }
            Err(
                e @ PeerCallError::Call {
                    error: RequestError::Timeout(_),
                    ..
                },
            ) => {
                // Not retried (the application may be slow), but the next call greets again: a
                // daemon that restarted drops a relayed call from a caller it no longer knows
                // without a word (it cannot seal an answer).
                if let Ok(mut r) = s.records.lock() {
                    r.remove(&id);
                }
                return Err(ErrorReply::error(format!("call to {name}: {e}")).with_uri(CALL_URI));
            }
            Err(e) if attempt == 0 => {
                tracing::debug!(peer = %name, error = %e, "peer call failed: greeting again");
                if let Ok(mut r) = s.records.lock() {
                    r.remove(&id);
                }
            }
            Err(e) => {
                return Err(ErrorReply::error(format!("call to {name}: {e}")).with_uri(CALL_URI));
            }
        }
    }
    Err(ErrorReply::error(format!("peer {name} unreachable")).with_uri(CALL_URI))
}

/// The local name of the configured relay among the strategies (a relay is reached by its TCP
/// strategies).
const RELAY: &[u8] = b"netaiod/relay";

/// The [`PeerLookup`] of a daemon: a peer id's address learnt from CALLs (direct TCP), else the
/// one the other daemons' gossip filed in the [`Directory`], then the relay when one is
/// configured (the peer may hold a reservation there).
#[derive(Debug)]
pub(super) struct Known {
    addrs: Mutex<HashMap<[u8; PEER_ID_LEN], SocketAddr>>,
    directory: Arc<Directory>,
    relay: Option<SocketAddr>,
}

impl Known {
    pub(super) fn new(relay: Option<SocketAddr>, directory: Arc<Directory>) -> Self {
        Self {
            addrs: Mutex::new(HashMap::new()),
            directory,
            relay,
        }
    }

    /// Remembers `id`'s address (up to [`MAX_KNOWN_PEERS`] ids; more are not remembered).
    pub(super) fn remember(&self, id: [u8; PEER_ID_LEN], addr: SocketAddr) {
        if let Ok(mut known) = self.addrs.lock()
            && (known.len() < MAX_KNOWN_PEERS || known.contains_key(&id))
        {
            known.insert(id, addr);
        }
    }

    /// The address remembered for `id` (given by a caller), else the directory's.
    fn addr(&self, id: &[u8; PEER_ID_LEN]) -> Option<SocketAddr> {
        let given = self.addrs.lock().ok().and_then(|k| k.get(id).copied());
        given.or_else(|| self.directory.address(id, unix_now()))
    }

    /// Whether any way to `id` is known.
    pub(super) fn reaches(&self, id: &[u8; PEER_ID_LEN]) -> bool {
        self.relay.is_some() || self.addr(id).is_some()
    }
}

impl PeerLookup for Known {
    fn lookup<'a>(&'a self, peer: &'a [u8]) -> LookupFuture<'a> {
        let mut out = Vec::new();
        if peer == RELAY {
            out.extend(self.relay.map(Strategy::Tcp));
        } else {
            let addr = <[u8; PEER_ID_LEN]>::try_from(peer)
                .ok()
                .and_then(|id| self.addr(&id));
            out.extend(addr.map(Strategy::Tcp));
            if self.relay.is_some() {
                out.push(Strategy::Relay(Bytes::from_static(RELAY)));
            }
        }
        Box::pin(std::future::ready(out))
    }
}

/// Holds this daemon's reservation of `id` at the relay: reserves on the connection to it,
/// renews at half the reservation's lifetime, and reserves again on a new connection when it
/// closes (the relay restarted).
pub(super) async fn hold_reservation(s: Arc<State>, relay: SocketAddr, id: Bytes) {
    loop {
        match s.peers.connect(relay).await {
            Ok(conn) => match conn.reserve(id.clone()).await {
                Ok(limits) => {
                    tracing::debug!(%relay, "reservation at the relay held");
                    let renew = Duration::from_secs(limits.reservation_secs.max(2) / 2);
                    let mut state = conn.state_changes();
                    tokio::select! {
                        () = tokio::time::sleep(renew) => {}
                        _ = state.wait_for(|st| !st.is_connected()) => {
                            tracing::info!(%relay, "connection to the relay lost");
                        }
                    }
                    continue;
                }
                Err(e) => tracing::warn!(%relay, error = %e, "reservation at the relay refused"),
            },
            Err(e) => tracing::warn!(%relay, error = %e, "relay unreachable"),
        }
        tokio::time::sleep(RELAY_RETRY).await;
    }
}

/// Time between attempts to reserve at a relay that failed.
const RELAY_RETRY: Duration = Duration::from_secs(1);

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

/// A CALL from a local application: to the peer it names, by [`forward_call`].
pub(super) async fn call(s: &State, ctx: &Context, mut c: Bytes) -> Result<Message, ErrorReply> {
    super::local::greeted(s, ctx)?;
    let bad = || {
        ErrorReply::error("CALL: peer_len u8 | peer | uri_len u16 | uri | body").with_uri(CALL_URI)
    };
    let peer_len = usize::from(c.try_get_u8().map_err(|_| bad())?);
    if c.len() < peer_len {
        return Err(bad());
    }
    let peer = c.split_to(peer_len);
    let (id, addr) = std::str::from_utf8(&peer)
        .ok()
        .and_then(parse_peer)
        .ok_or_else(bad)?;
    if let Some(addr) = addr {
        s.known.remember(id, addr);
    } else if !s.known.reaches(&id) {
        return Err(ErrorReply::error(format!(
            "peer {}: no address known (given, or learnt from other daemons) and no relay (call it as ID@host:port once)",
            hex::encode(id)
        ))
        .with_uri(CALL_URI));
    }
    let reply = forward_call(s, id, c).await?;
    Ok(Message::respond(CALL_URI, reply))
}

/// A shared [`Known`] as a lookup (`Reach` owns its lookups; the CALLs add to this one).
pub(super) struct SharedLookup(pub(super) Arc<Known>);

impl netaio::reach::PeerLookup for SharedLookup {
    fn lookup<'a>(&'a self, peer: &'a [u8]) -> netaio::reach::LookupFuture<'a> {
        self.0.lookup(peer)
    }
}
