//! The client side of a relay: reserve an id on a connection to a relay, call or send to a peer
//! through it, and take the envelopes it delivers (their inner frames go through this node's
//! pipeline as if they had come directly: instance plugins, request table, router, inner
//! plugins; a handler's reply goes back through the relay to the sender).

use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::Connection;
use super::client_dispatch::ClientDispatch;
use super::driver::Verdict;
use crate::Message;
use crate::error::{RequestError, SendError};
use crate::node::inbound::{Inbound, Pipeline};
use crate::node::relay::{
    FORWARD, RelayAddress, RelayLimits, ReserveError, delivered_inner, encode_envelope,
    encode_envelope_into, reservation, reserve_message, sender_record,
};
use crate::node::requests::{self, CallLink, CallOptions, PendingCall, Requests};
use crate::peer::Peer;
use crate::plugin::{SendOptions, open_outer};
use crate::router::Request;

impl Connection {
    /// Reserve `peer_id` at the relay this connection goes to: from now until the reservation
    /// expires (renew it by reserving again before [`RelayLimits::reservation_secs`]) or this
    /// connection ends, envelopes for `peer_id` come here. Returns the relay's limits.
    pub async fn reserve(&self, peer_id: impl Into<Bytes>) -> Result<RelayLimits, ReserveError> {
        self.reserve_with(peer_id, Bytes::new()).await
    }

    /// [`reserve`](Self::reserve) with `proof` as the reservation's content: what the relay's
    /// [`ReservationCheck`](crate::relay::ReservationCheck) needs besides the verified signer
    /// (for netaio-asymmetric's self-certifying ids, the X25519 public key:
    /// `SelfCertifiedReservations::proof`).
    pub async fn reserve_with(
        &self,
        peer_id: impl Into<Bytes>,
        proof: impl Into<Bytes>,
    ) -> Result<RelayLimits, ReserveError> {
        reservation(
            self.call(reserve_message(peer_id.into(), proof.into()))
                .await,
        )
    }

    /// Start a call to `peer` through the relay this connection goes to: the request is sealed
    /// for `peer` (its record gives peer-specific plugins their keys; `Peer::new(id)` when they
    /// need none), wrapped in an envelope sealed for the relay, and the reply comes back the
    /// same way, matched by this connection's request table. A request that cannot leave this
    /// host fails at once; the relay's refusal ([`RelayRefusal`](crate::relay::RelayRefusal), e.g. no route) fails the call
    /// as an error reply (see [`RelayRefusal::from_error`](crate::relay::RelayRefusal::from_error)); otherwise only the reply or the
    /// timeout ends it. Without a reservation of this connection, the recipient answers on a
    /// circuit (see [`RelayConfig`](crate::relay::RelayConfig)).
    pub fn start_call_via_relay(
        &self,
        peer: &Peer,
        msg: Message,
        opts: &CallOptions,
    ) -> PendingCall {
        requests::start_call(
            RelayLink {
                conn: self.clone(),
                to: RelayAddress::Peer(peer.id.clone()),
                peer: Arc::new(peer.clone()),
            },
            msg,
            opts,
        )
    }

    /// [`start_call_via_relay`](Self::start_call_via_relay) with the default options, awaited.
    pub async fn call_via_relay(&self, peer: &Peer, msg: Message) -> Result<Message, RequestError> {
        self.start_call_via_relay(peer, msg, &CallOptions::new())
            .await
    }

    /// Send `msg` (no reply expected) to `to` through the relay this connection goes to, waiting
    /// while the send queue is full. `to` is a reserved peer id, or, for a reserved peer
    /// answering, a circuit.
    pub async fn send_via_relay(
        &self,
        peer: &Peer,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        let to = RelayAddress::Peer(peer.id.clone());
        let env = self.envelope(&to, msg.clone(), opts, Some(peer)).await?;
        self.inner.tx.send(env).await
    }

    /// The frame of an envelope for `to` carrying `msg` sealed with `opts` for `peer`; the
    /// envelope carries `msg`'s request id, so that a refusal of the relay answers its call.
    async fn envelope(
        &self,
        to: &RelayAddress,
        msg: Message,
        opts: &SendOptions,
        peer: Option<&Peer>,
    ) -> Result<Bytes, SendError> {
        let client = &self.inner.client;
        let rid = msg.request_id();
        let sealed = client.plugins.seal(msg, opts, peer, None).await?;
        let mut env = Message::new(FORWARD, to.encode(), Bytes::new());
        if let Some(id) = rid {
            env.set_request_id(id);
        }
        if client.plugins.outer.is_empty() {
            // No plugin seals the envelope: built around the inner frame in one buffer.
            return Ok(encode_envelope(&client.codec, &env, &sealed)?);
        }
        env.body.content = client.codec.to_frame(&sealed)?;
        self.prepare(env, &SendOptions::default()).await
    }
}

/// A call through a relay: the connection's request table, envelopes on its send queue.
struct RelayLink {
    conn: Connection,
    to: RelayAddress,
    peer: Arc<Peer>,
}

impl CallLink for RelayLink {
    type Peer = ();

    fn requests(&self) -> &Requests<()> {
        &self.conn.inner.requests
    }

    fn peer(&self) {}

    fn ready(&self) -> Result<(), RequestError> {
        if self.conn.is_connected() {
            Ok(())
        } else {
            Err(SendError::Closed.into())
        }
    }

    async fn send(&self, msg: Message, opts: &SendOptions) -> Result<(), SendError> {
        if !self.conn.is_connected() {
            return Err(SendError::Closed);
        }
        let env = self
            .conn
            .envelope(&self.to, msg, opts, Some(&self.peer))
            .await?;
        self.conn.queue(env)
    }
}

/// An envelope the relay delivered (type `DELIVER`, its frame's verified `checksum`): open it
/// with the instance plugins (it comes from the relay), then take its inner frame through this
/// node's pipeline; a handler's reply goes back to the sender through the relay, written to
/// `out`.
pub(super) async fn delivered(
    d: &mut ClientDispatch,
    msg: Message,
    checksum: u32,
    out: &mut BytesMut,
) -> Verdict {
    let conn = d.conn.clone();
    let client = &conn.inner.client;
    let plugins = &client.plugins;
    let addr = d.ctx.peer_addr();
    let relay_peer = conn.inner.peer_info.get();
    let env = match open_outer(
        msg,
        &plugins.outer,
        &plugins.ctx(relay_peer.as_deref(), Some(addr)),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "relay envelope refused");
            return Verdict::Refused;
        }
    };
    // Without instance plugins the envelope is the frame as received: its checksum vouches for
    // the inner frame's bytes.
    let checksum = plugins.outer.is_empty().then_some(checksum);
    let Some((from, inner)) = delivered_inner(&d.codec, &env, checksum) else {
        return Verdict::Valid;
    };
    let sender = sender_record(&from, &client.peers);
    let pipeline = Pipeline {
        plugins,
        routes: &d.routes,
        requests: &conn.inner.requests,
        answers_refusals: false,
        accepts_unauthenticated_errors: false,
    };
    let (handler, inner_plugins, msg) = match pipeline.receive(inner, (), addr, || sender.clone()) {
        Inbound::Routed {
            handler,
            inner,
            msg,
        } => (handler, inner, msg),
        Inbound::Answered | Inbound::Stale | Inbound::AnsweredUnverified => {
            return Verdict::Valid;
        }
        Inbound::Refused(r) => {
            tracing::warn!(error = %r.error, "relayed message refused");
            return Verdict::Valid;
        }
    };
    let Some(handler) = handler else {
        // No route: the inbox, like a message from the server.
        d.to_inbox(msg);
        return Verdict::Valid;
    };
    // The request id as sent: the reply carries the same bytes as its reference (as a server's
    // replies do: no decoding, re-encoding or allocation).
    let rid = msg
        .auth
        .get(crate::message::fields::REQUEST_ID)
        .filter(|v| (1..=8).contains(&v.len()))
        .cloned();
    // At most once, per sender: a request its sender re-sends through the relay runs its
    // handler only the first time, and a copy gets the cached reply.
    let sender_key = conn.inner.relay_senders.hash_one(&from);
    let req = Request {
        message: msg,
        ctx: d.ctx.clone(),
    };
    let Some(reply) = conn
        .inner
        .relay_dedup
        .call_once(sender_key, &handler, req)
        .await
    else {
        return Verdict::Valid;
    };
    let Some(mut reply) = reply else {
        return Verdict::Valid;
    };
    if let Some(id) = rid {
        reply
            .auth
            .insert_static(crate::message::fields::REPLY_REF, id);
    }
    let opts = SendOptions::new().inner(inner_plugins);
    let sealed = plugins.seal(reply, &opts, sender.as_deref(), None).await;
    if plugins.outer.is_empty() {
        // No plugin seals the envelope: built around the inner frame in the write buffer.
        let written = sealed.map_err(SendError::from).and_then(|m| {
            // The DELIVER's uri is the sender's address in its one encoding: the reply's.
            let env = Message::new(FORWARD, env.uri().clone(), Bytes::new());
            encode_envelope_into(&d.codec, &env, &m, out).map_err(SendError::from)
        });
        if let Err(e) = written {
            tracing::warn!(error = %e, "relayed reply cannot be sent; dropped");
        }
        return Verdict::Valid;
    }
    let frame = sealed
        .map_err(SendError::from)
        .and_then(|m| client.codec.to_frame(&m).map_err(SendError::from));
    let env = frame.map(|f| Message::new(FORWARD, from.encode(), f));
    let written = match env {
        Ok(env) => plugins
            .seal(
                env,
                &SendOptions::default(),
                relay_peer.as_deref(),
                Some(addr),
            )
            .await
            .map_err(SendError::from)
            .and_then(|m| d.codec.encode_message(&m, out).map_err(SendError::from)),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "relayed reply cannot be sent; dropped");
    }
    Verdict::Valid
}
