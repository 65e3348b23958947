//! [`UdpRelay`]: the relay service on a [`UdpNode`](super::UdpNode). The same bookkeeping as
//! the TCP server's relay (the node core's `RelayCore`, keyed here by the reserving peer's
//! address instead of its connection): a reservation is bound to the address it came from,
//! which must have proved that it receives (return routability, or an auth plugin that
//! authenticates senders), and lasts [`RelayConfig::reservation_duration`] unless renewed, as
//! there is no connection whose end would free it (a peer's goodbye or expiry in peer
//! management frees it: `forget_peer` in `node_ops.rs`). Without an auth plugin that
//! authenticates senders, it lasts no longer than the proof of its address (the node's
//! `verification_ttl`): past it, whoever holds the address now would get the envelopes.
//! Envelopes are taken only from verified addresses, and a `DELIVER` goes only to a reserved
//! address (or, on a circuit, to the verified sender that opened it) whose proof still holds,
//! so a forged source gets nothing but a refusal no larger than its datagram.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::UdpHandle;
use super::receive::challenge_message;
use crate::Message;
use crate::node::relay::{
    DELIVER, FORWARD, RESERVE, RelayAddress, RelayConfig, RelayCore, RelayRefusal, RelayStats,
    ReservationCheck, deliver_head, envelope_of,
};
use crate::plugin::SendOptions;
use crate::router::{Context, Router};

/// The relay service, opt-in on a [`UdpNode`](super::UdpNode): give it to the node's builder
/// ([`UdpNodeBuilder::relay`](super::UdpNodeBuilder::relay)), or merge its
/// [`router`](Self::router) into the node's router. Peers reserve their id from their address
/// ([`UdpHandle::reserve`]) and renew it before it expires (at half of each answer's
/// [`reservation_secs`](crate::relay::RelayLimits::reservation_secs): on a node without an auth
/// plugin that authenticates senders, a reservation lasts only as long as the proof of its
/// address, 5 minutes by default, and a renewal from an old proof is challenged first, which
/// the client's call answers); envelopes for a reserved id are sent to that address as
/// `DELIVER` datagrams, the inner frame untouched. Every limit is in
/// [`RelayConfig`] (the one a TCP [`Relay`](crate::relay::Relay) takes).
///
/// ```no_run
/// use netaio::relay::RelayConfig;
/// use netaio::udp::{UdpNode, UdpRelay};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let relay = UdpRelay::new(RelayConfig::default());
/// let node = UdpNode::builder()
///     .address(([0, 0, 0, 0], 9100))
///     .relay(relay.clone())
///     .bind()
///     .await?;
/// println!("{:?}", relay.stats());
/// node.serve().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UdpRelay {
    pub(super) core: Arc<RelayCore<SocketAddr>>,
}

impl std::fmt::Debug for UdpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRelay")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl From<RelayConfig> for UdpRelay {
    fn from(config: RelayConfig) -> Self {
        Self::new(config)
    }
}

impl UdpRelay {
    /// A relay with these limits.
    pub fn new(config: RelayConfig) -> Self {
        Self {
            core: Arc::new(RelayCore::new(config)),
        }
    }

    /// Check every reservation with `check` (replacing any earlier one), as
    /// [`Relay::reservation_check`](crate::relay::Relay::reservation_check) does: a reservation
    /// it refuses is answered [`RelayRefusal::NotYours`]. A check that
    /// [`proves_ownership`](ReservationCheck::proves_ownership) moves an id held at another
    /// address to the one that proved it is its own (a peer whose address changed).
    ///
    /// ```
    /// use netaio::relay::RelayConfig;
    /// use netaio::udp::UdpRelay;
    ///
    /// let relay = UdpRelay::new(RelayConfig::default())
    ///     .reservation_check(|id: &[u8], _: &netaio::Message| id.starts_with(b"guest-"));
    /// ```
    #[must_use]
    pub fn reservation_check(self, check: impl ReservationCheck) -> Self {
        self.core.set_check(Arc::new(check));
        self
    }

    /// Its routes: [`RESERVE`] and [`FORWARD`] (by type, any uri).
    pub fn router(&self) -> Router {
        let reserve = self.core.clone();
        let forward = self.core.clone();
        Router::new()
            .on(RESERVE, move |msg: Message, ctx: Context| {
                let core = reserve.clone();
                async move { reserve_from(&core, &msg, &ctx) }
            })
            .on(FORWARD, move |msg: Message, ctx: Context| {
                let core = forward.clone();
                async move { forward_from(core, msg, ctx).await }
            })
    }

    /// Its counters and what it holds now (what expired is swept first: no event may have
    /// come since to sweep it).
    pub fn stats(&self) -> RelayStats {
        let mut state = self.core.state();
        state.expire(Instant::now());
        state.stats()
    }

    /// Its limits.
    pub fn config(&self) -> RelayConfig {
        self.core.state().config().clone()
    }
}

/// The datagram's node, when its source address is verified (else it is logged and `None`).
fn verified<'a>(ctx: &'a Context, what: &str) -> Option<&'a UdpHandle> {
    let node = ctx.udp()?;
    if !node.source_verified {
        tracing::debug!(src = %ctx.peer_addr(), what, "relay: unverified source ignored");
        return None;
    }
    Some(node)
}

/// A reservation, bound to the verified address it came from. A request from an unverified
/// address never gets here (the node challenges it first); a `RESERVE` without request id from
/// one is ignored. On a node that does not authenticate senders, the reservation lasts at most
/// as long as the proof of its address (see [`address_proof`]).
fn reserve_from(core: &RelayCore<SocketAddr>, msg: &Message, ctx: &Context) -> Option<Message> {
    let node = verified(ctx, "reservation")?;
    let src = ctx.peer_addr();
    let until = match address_proof(node, src, Instant::now()) {
        Proof::Authenticated => None,
        Proof::Until(until) => Some(until),
        Proof::Stale => return proof_challenge(node, msg, src),
    };
    // No connection ends on UDP: a taken id is free only when its reservation expires (or
    // moves, when the reservation check proves the id is the sender's).
    Some(core.reserve(src, src.ip(), msg, until, |_| false))
}

/// What vouches for a reserving address.
enum Proof {
    /// The node's auth plugin authenticates every datagram's sender.
    Authenticated,
    /// A cookie round trip, fresh enough: the address is verified until then.
    Until(Instant),
    /// A cookie round trip half the verification TTL old or older (or none: a route's inner
    /// plugin authenticated the sender, not the address): prove it again first.
    Stale,
}

/// What vouches for `src` at `now`. A reservation bound to an address must not outlive the proof
/// that the peer receives there (past it, whoever took over the address, a reused NAT mapping,
/// would get the recipient's envelopes), so it lasts until the proof expires; and so that the
/// lifetime granted is never short (a client renewing at half of it would renew ever faster),
/// a proof with half the TTL left or less is renewed first by a challenge: a client renewing
/// every half TTL gets a full TTL each time, one renewing at half of each answer never lets
/// its reservation lapse.
fn address_proof(node: &UdpHandle, src: SocketAddr, now: Instant) -> Proof {
    if node.shared.outer_authenticates {
        return Proof::Authenticated;
    }
    let verified = node.verified();
    match verified.until(src, now) {
        Some(until) if until.saturating_duration_since(now) > verified.ttl() / 2 => {
            Proof::Until(until)
        }
        _ => Proof::Stale,
    }
}

/// The challenge to a `RESERVE` from `src` whose proof is stale: a fresh cookie, which the
/// client's call echoes on the same request (`UdpHandle::reserve` does), renewing the proof.
fn proof_challenge(node: &UdpHandle, msg: &Message, src: SocketAddr) -> Option<Message> {
    let rid = msg.request_id()?;
    node.count(&node.shared.counters.challenges);
    tracing::debug!(%src, "reservation from an address whose proof is old: challenged");
    let cookie = node.shared.cookies.cookie(src, Instant::now());
    Some(challenge_message(rid, cookie))
}

async fn forward_from(
    core: Arc<RelayCore<SocketAddr>>,
    msg: Message,
    ctx: Context,
) -> Option<Message> {
    // From an unverified address, a circuit's replies would go to whoever it names.
    let node = verified(&ctx, "envelope")?.clone();
    let src = ctx.peer_addr();
    let (answerable, to) = envelope_of(&msg);
    let Some(to) = to else {
        return answerable.then(|| RelayRefusal::Malformed.to_message());
    };
    let frame = msg.content().clone();
    let result = core
        .state()
        .forward(src, src.ip(), &to, frame, Instant::now());
    match result {
        Ok(f) => {
            if f.start {
                drain(&core, &node, f.to).await;
            }
            None
        }
        Err(r) => {
            tracing::debug!(refusal = %r, %src, "envelope refused");
            answerable.then(|| r.to_message())
        }
    }
}

/// Send `to`'s queued envelopes as `DELIVER` datagrams until its queue is empty (a UDP socket
/// has no send queue to wait for: the queue holds an envelope only while it is being sent). On a
/// node that does not authenticate senders, only while `to`'s proof lasts: a reservation never
/// outlives it, but a circuit's sender may have stopped proving its address, and a full table of
/// verified addresses forgets the proof expiring first. Past it, what is bound to `to` ends.
async fn drain(core: &RelayCore<SocketAddr>, node: &UdpHandle, to: SocketAddr) {
    // Looked up again only once past: a proof ends only at its time (or is renewed, later).
    let mut proof =
        (!node.shared.outer_authenticates).then(|| node.verified().until(to, Instant::now()));
    loop {
        let Some((from, frame)) = core.state().pop(to) else {
            return;
        };
        if let Some(until) = proof
            && until.is_none_or(|u| u <= Instant::now())
        {
            let now = Instant::now();
            let renewed = node.verified().until(to, now);
            if renewed.is_none() {
                tracing::debug!(%to, "relay: the recipient's address is no longer proved; what is bound to it ends");
                core.state().connection_closed(to);
                return;
            }
            proof = Some(renewed);
        }
        let Some(bytes) = deliver_datagram(node, &from, frame, to).await else {
            continue;
        };
        if let Err(e) = node.send_bytes(&bytes, to).await {
            tracing::debug!(error = %e, %to, "relay: delivery failed");
        }
    }
}

/// The `DELIVER` datagram of `frame` from `from`: the head then the inner frame as received
/// when no instance plugin seals the hop, else the message sealed for `to`.
async fn deliver_datagram(
    node: &UdpHandle,
    from: &RelayAddress,
    frame: Bytes,
    to: SocketAddr,
) -> Option<Bytes> {
    let shared = &node.shared;
    if shared.plugins.outer.is_empty()
        && let Ok(head) = deliver_head(&shared.codec, from, &frame)
    {
        let mut d = BytesMut::with_capacity(head.len() + frame.len());
        d.extend_from_slice(&head);
        d.extend_from_slice(&frame);
        return Some(d.freeze());
    }
    let msg = Message::new(DELIVER, from.encode(), frame);
    match node.prepare_async(msg, &SendOptions::default(), to).await {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::debug!(error = %e, %to, "relay: delivery cannot be sealed");
            None
        }
    }
}
