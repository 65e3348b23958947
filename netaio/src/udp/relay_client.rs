//! A UDP node as a relay's client: reserve an id at a relay's address, call or send to a peer
//! through it, and take the `DELIVER` datagrams it sends (their inner frames go through this
//! node's pipeline as if they had come directly: instance plugins, request table, router,
//! inner plugins; a handler's reply goes back through the relay to the sender). The parts that
//! do not depend on the transport (the reservation's answer, the inner frame's checks) are the
//! node core's, shared with the TCP client (`node/relay/client.rs`).

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::UdpHandle;
use super::calls::{UdpLink, Via};
use super::node_ops::SourceOps;
use crate::Message;
use crate::error::{RequestError, SendError};
use crate::message::{Header, fields};
use crate::node::inbound::{Inbound, Pipeline};
use crate::node::relay::{
    FORWARD, RelayAddress, RelayLimits, ReserveError, delivered_inner, encode_envelope,
    reservation, reserve_message, sender_record,
};
use crate::node::requests::{self, CallOptions, PendingCall};
use crate::peer::Peer;
use crate::plugin::{OpenError, SendOptions, open_outer};
use crate::router::{Context, PeerLink, Request};

/// The relays a node has reserved at or called through, the only sources whose `DELIVER`s it
/// takes (a forged one from elsewhere would have its handler's reply sent to an address that
/// never asked). Bounded: the least recently used is forgotten.
#[derive(Debug, Default)]
pub(super) struct KnownRelays {
    addrs: VecDeque<SocketAddr>,
}

impl KnownRelays {
    /// Relays remembered at most.
    const MAX: usize = 16;

    fn insert(&mut self, addr: SocketAddr) {
        if let Some(i) = self.addrs.iter().position(|a| *a == addr) {
            self.addrs.remove(i);
        } else if self.addrs.len() >= Self::MAX {
            self.addrs.pop_front();
        }
        self.addrs.push_back(addr);
    }

    pub(super) fn contains(&self, addr: SocketAddr) -> bool {
        self.addrs.contains(&addr)
    }
}

impl UdpHandle {
    fn trust_relay(&self, relay: SocketAddr) {
        self.shared
            .relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(relay);
    }

    /// Whether `addr` is a relay this node uses (its `DELIVER`s are taken).
    pub(super) fn is_relay(&self, addr: SocketAddr) -> bool {
        self.shared.relays.lock().is_ok_and(|r| r.contains(addr))
    }

    /// Reserve `peer_id` at the relay at `relay` (a [`UdpRelay`](super::UdpRelay)): until the
    /// reservation expires, envelopes for `peer_id` come to this node's address. There is no
    /// connection to keep it: renew it by reserving again at half of each answer's
    /// [`RelayLimits::reservation_secs`] (the lifetime granted: on a relay without sender
    /// authentication, no longer than the proof of this address, 5 minutes by default). Returns
    /// the relay's limits. The call proves this node's address to the relay first when it asks
    /// (return routability), as it does when a renewal comes from an old proof.
    pub async fn reserve(
        &self,
        relay: SocketAddr,
        peer_id: impl Into<Bytes>,
    ) -> Result<RelayLimits, ReserveError> {
        self.reserve_with(relay, peer_id, Bytes::new()).await
    }

    /// [`reserve`](Self::reserve) with `proof` as the reservation's content, for the relay's
    /// [`ReservationCheck`](crate::relay::ReservationCheck) (see
    /// [`Connection::reserve_with`](crate::Connection::reserve_with)).
    pub async fn reserve_with(
        &self,
        relay: SocketAddr,
        peer_id: impl Into<Bytes>,
        proof: impl Into<Bytes>,
    ) -> Result<RelayLimits, ReserveError> {
        // Before the call: an envelope may follow the relay's answer at once.
        self.trust_relay(relay);
        let msg = reserve_message(peer_id.into(), proof.into());
        reservation(self.call(relay, msg).await)
    }

    /// Start a call to `peer` through the relay at `relay`: the request is sealed for `peer`
    /// (its record gives peer-specific plugins their keys; `Peer::new(id)` when they need
    /// none), wrapped in a `FORWARD` sealed for the relay, and the reply comes back as a
    /// `DELIVER` from the relay, matched by this node's request table. As
    /// [`Connection::start_call_via_relay`](crate::Connection::start_call_via_relay): a request
    /// that cannot leave fails at once, the relay's refusal fails the call as an error reply
    /// ([`RelayRefusal::from_error`](crate::relay::RelayRefusal::from_error)), else only the
    /// reply or the timeout ends it. Without a reservation of this node's address at the
    /// relay, the recipient answers on a circuit.
    pub fn start_call_via_relay(
        &self,
        relay: SocketAddr,
        peer: &Peer,
        msg: Message,
        opts: &CallOptions,
    ) -> PendingCall {
        self.trust_relay(relay);
        let via = Via {
            to: RelayAddress::Peer(peer.id.clone()),
            peer: Arc::new(peer.clone()),
        };
        requests::start_call(
            UdpLink {
                node: self.clone(),
                addr: relay,
                via: Some(via),
            },
            msg,
            opts,
        )
    }

    /// [`start_call_via_relay`](Self::start_call_via_relay) with the default options, awaited.
    pub async fn call_via_relay(
        &self,
        relay: SocketAddr,
        peer: &Peer,
        msg: Message,
    ) -> Result<Message, RequestError> {
        self.start_call_via_relay(relay, peer, msg, &CallOptions::new())
            .await
    }

    /// Send `msg` (no reply expected) to `peer` through the relay at `relay`. The relay takes
    /// it only from an address it has verified (a reservation or an earlier call proved it):
    /// a send carries no request id to be challenged with.
    pub async fn send_via_relay(
        &self,
        relay: SocketAddr,
        peer: &Peer,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        if self.shared.cancel.is_cancelled() {
            return Err(SendError::Stopped);
        }
        self.trust_relay(relay);
        let to = RelayAddress::Peer(peer.id.clone());
        self.send_envelope(relay, &to, msg.clone(), opts, Some(peer))
            .await
    }

    /// Send `msg`, sealed with `opts` for `peer`, in a `FORWARD` for `to` to the relay. The
    /// envelope carries `msg`'s request id (a refusal of the relay answers its call) and the
    /// return-routability cookie and padding the relay sees (the inner frame is not the
    /// relay's to read).
    pub(super) async fn send_envelope(
        &self,
        relay: SocketAddr,
        to: &RelayAddress,
        mut msg: Message,
        opts: &SendOptions,
        peer: Option<&Peer>,
    ) -> Result<(), SendError> {
        let shared = &self.shared;
        let cookie = msg.auth.remove(fields::COOKIE);
        let rid = msg.request_id();
        let sealed = shared.plugins.seal(msg, opts, peer, None).await?;
        let mut env = Message::new(FORWARD, to.encode(), Bytes::new());
        if let Some(id) = rid {
            env.set_request_id(id);
        }
        if let Some(c) = cookie {
            env.auth.insert_static(fields::COOKIE, c);
        }
        // At least the inner frame's header, uri length, uri and content.
        let body = env.uri().len() + Header::LEN + 2 + sealed.uri().len() + sealed.content().len();
        self.pad_body_for_challenge(&mut env, body);
        let bytes = if shared.plugins.outer.is_empty() {
            // No plugin seals the envelope: built around the inner frame in one buffer.
            encode_envelope(&shared.codec, &env, &sealed)?
        } else {
            env.body.content = shared.codec.to_frame(&sealed)?;
            self.prepare_async(env, &SendOptions::default(), relay)
                .await?
        };
        self.send_bytes(&bytes, relay).await
    }

    /// A `DELIVER` from the relay at `src` (a relay this node uses): open it with the instance
    /// plugins, take its inner frame through the pipeline, and run the handler of a request in
    /// a task (bounded by `max_handlers`), whose reply goes back through the relay.
    /// `checksum`: the datagram's verified checksum.
    pub(super) fn delivered(&self, msg: Message, src: SocketAddr, checksum: u32, ops: &SourceOps) {
        let shared = &self.shared;
        let c = &shared.counters;
        let plugins = &shared.plugins;
        let env = match open_outer(msg, &plugins.outer, &plugins.ctx(None, Some(src))) {
            Ok(m) => m,
            Err(e) => return self.refused_delivery(src, &e, e.plugin_name(&plugins.outer)),
        };
        let checksum = plugins.outer.is_empty().then_some(checksum);
        let Some((from, inner)) = delivered_inner(&shared.codec, &env, checksum) else {
            return self.count(&c.invalid);
        };
        let sender = sender_record(&from, &shared.peers);
        let pipeline = Pipeline {
            plugins,
            routes: &shared.routes,
            requests: &shared.requests,
            answers_refusals: false,
            accepts_unauthenticated_errors: false,
        };
        let (handler, inner_plugins, msg) =
            match pipeline.receive(inner, src, src, || sender.clone()) {
                Inbound::Routed {
                    handler,
                    inner,
                    msg,
                } => (handler, inner, msg),
                Inbound::Answered | Inbound::AnsweredUnverified => return self.count(&c.replies),
                Inbound::Stale => return,
                Inbound::Refused(r) => return self.refused_delivery(src, &r.error, r.plugin),
            };
        if msg.message_type.is_error() && handler.is_none() {
            return;
        }
        let Ok(permit) = shared.handlers.clone().try_acquire_owned() else {
            self.count(&c.overloaded);
            tracing::debug!(%src, "too many handlers running: relayed datagram dropped");
            return;
        };
        let this = self.clone();
        // The relay's address is not the sender's: the handler cannot subscribe it.
        let ops = ops.of(false).clone();
        let rid = msg.request_id();
        tokio::spawn(async move {
            let reply = match handler {
                Some(handler) => {
                    let key = this.shared.relay_senders.hash_one(&from);
                    let req = Request {
                        message: msg,
                        ctx: Context::new(
                            PeerLink { addr: src, link: 0 },
                            ops,
                            this.shared.routes.state().clone(),
                        ),
                    };
                    // At most once, per sender.
                    match this.shared.relay_dedup.call_once(key, &handler, req).await {
                        Some(Some(reply)) => reply,
                        _ => return drop(permit),
                    }
                }
                None => this.shared.not_found.clone(),
            };
            let mut reply = reply;
            if let Some(id) = rid {
                reply.set_reply_ref(id);
            }
            let opts = SendOptions::new().inner(inner_plugins);
            let sent = this
                .send_envelope(src, &from, reply, &opts, sender.as_deref())
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "relayed reply cannot be sent; dropped");
            }
            drop(permit);
        });
    }

    fn refused_delivery(&self, src: SocketAddr, e: &OpenError, plugin: &'static str) {
        let c = &self.shared.counters;
        match e {
            OpenError::Auth { .. } => self.count(&c.auth_failed),
            _ => self.count(&c.decrypt_failed),
        }
        self.report_refusal(src, e, plugin);
    }
}
