//! What a UDP node does with each datagram: decode, open, answer its own waiting requests,
//! route, check that the source address is verified (or challenge it), run the handler (inline
//! when it finishes at once, else in a bounded task), seal and send the reply within what the
//! source may be sent. Nothing that failed a check is ever answered.

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::UdpHandle;
use super::node_ops::SourceOps;
use crate::message::{Header, fields};
use crate::node::inbound::{Inbound, Pipeline};
use crate::node::outbound;
use crate::node::refusals::{self, Refused};
use crate::node::relay::DELIVER;
use crate::node::requests::{Admit, Running};
use crate::node::routability::COOKIE_LEN;
use crate::plugin::{AuthError, OpenError, Stage};
use crate::plugin::{Plugins, SendOptions};
use crate::router::{Context, PeerLink, Request};
use crate::{Message, MessageType};

/// The challenge to a request `rid` from an unverified address: NOT_PERMITTED with an empty uri
/// and content, and in its auth block the reply reference and the cookie to echo. 37 bytes with
/// the native codec and a one-byte request id, so a request of fewer bytes is padded by its
/// sender (see `UdpHandle::call_with`).
pub(super) fn challenge_message(rid: u64, cookie: [u8; COOKIE_LEN]) -> Message {
    let mut m = Message::new(MessageType::NOT_PERMITTED, Bytes::new(), Bytes::new());
    m.set_reply_ref(rid);
    m.auth
        .insert_static(fields::COOKIE, Bytes::copy_from_slice(&cookie));
    m
}

/// What the admission step found out about a message, for the steps after routing.
#[derive(Clone, Copy, Default)]
struct Admitted {
    /// Its source is verified (before the route's inner plugins are counted).
    verified: bool,
    /// Its request id.
    rid: Option<u64>,
    /// It has auth fields beside its request id.
    extra: bool,
}

/// What a reply may be: sent as it is, shortened, or dropped.
enum Fit {
    Send(Bytes),
    Shorten(Message),
    Drop,
}

impl UdpHandle {
    pub(super) fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Handle one datagram: decode, instance plugins, reply matching, routing, handler. Never
    /// answers a datagram that failed a check, and never answers an unverified source with more
    /// bytes than the datagram had.
    ///
    /// `via_group`: it arrived on the multicast group's own socket (sent to the group, not to this
    /// node). Every member of the group gets it, and its source address may be forged, so
    /// unless it passed an auth plugin that authenticates its sender it gets no answer at all:
    /// no NOT_FOUND, no challenge, no reply (one forged datagram would otherwise make every
    /// member answer the victim).
    /// Count a refused datagram against its source, and log it (rate-limited).
    #[inline(never)]
    pub(super) fn report_refusal(&self, src: SocketAddr, error: &OpenError, plugin: &'static str) {
        let refused = Refused {
            addr: src,
            error,
            plugin,
            what: "datagrams",
        };
        refusals::report(&self.shared.refusals, &refused, Instant::now());
    }

    pub(super) fn on_datagram(
        &self,
        datagram: Bytes,
        src: SocketAddr,
        via_group: bool,
        ops: &SourceOps,
    ) {
        let shared = &self.shared;
        let c = &shared.counters;
        self.count(&c.received);
        let received = datagram.len();
        // A relay's `DELIVER`: its verified checksum vouches for the inner frame (read before
        // the datagram goes to the decoder; one comparison for any other datagram).
        let deliver = (datagram.first() == Some(&DELIVER.value()))
            .then(|| Header::from_bytes(&datagram).map(|h| h.checksum).ok())
            .flatten();
        let msg = match Message::decode(datagram, shared.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => {
                self.count(&c.invalid);
                tracing::debug!(%src, error = %e, "invalid datagram dropped");
                return;
            }
        };
        if let Some(checksum) = deliver
            && msg.message_type == DELIVER
        {
            // Only from a relay this node uses: the reply to a forged one would go to its
            // source unasked.
            if !via_group && self.is_relay(src) {
                return self.delivered(msg, src, checksum, ops);
            }
            tracing::debug!(%src, "DELIVER from an address that is not a relay of this node dropped");
            return;
        }
        let pipeline = Pipeline {
            plugins: &shared.plugins,
            routes: &shared.routes,
            requests: &shared.requests,
            answers_refusals: false,
            accepts_unauthenticated_errors: false,
        };
        // Whether the source is verified, as far as known before routing (a route's inner auth
        // plugin may verify it too, after). A request (it has a request id, so its sender can
        // send it again) from an unverified address is held before routing, and answered with a
        // challenge: it is handled when it comes back with the cookie. Handling it first and
        // challenging only a reply too large would run a handler twice for one call; and held
        // after routing, it would have taken a one-shot route for nothing.
        let seen = Cell::new(Admitted::default());
        let admit = |msg: &Message| {
            let rid = msg.request_id();
            // The plugins took their own fields out: only a field beside the request id can be
            // the cookie or the padding, so most messages need no look for them.
            let extra = msg.auth.len() > usize::from(rid.is_some());
            // To the group, only authentication counts: an address verified by a round trip with
            // this node would otherwise have every member answer it, N times what was sent, for
            // one forged group datagram.
            let verified = if via_group {
                shared.outer_authenticates
            } else {
                self.source_verified(msg, extra, src)
            };
            seen.set(Admitted {
                verified,
                rid,
                extra,
            });
            verified || via_group || rid.is_none() || msg.message_type.is_error()
        };
        // The sender's peer, for plugins that need its keys (looked up only when a plugin runs).
        let received_msg =
            pipeline.receive_admitting(msg, src, src, || shared.peers.by_addr(src), admit);
        let (handler, inner, msg) = match received_msg {
            Ok(Inbound::Routed {
                handler,
                inner,
                msg,
            }) => (handler, inner, msg),
            Ok(Inbound::Answered | Inbound::AnsweredUnverified) => return self.count(&c.replies),
            Ok(Inbound::Stale) => return,
            Ok(Inbound::Refused(r)) => {
                match r.error {
                    // This node's own group datagram, looped back to it: expected, not counted.
                    OpenError::Auth {
                        source: AuthError::Reflected,
                        stage: Stage::Outer,
                    } if via_group => {}
                    OpenError::Auth { .. } => {
                        self.count(&c.auth_failed);
                        self.report_refusal(src, &r.error, r.plugin);
                    }
                    _ => {
                        self.count(&c.decrypt_failed);
                        self.report_refusal(src, &r.error, r.plugin);
                    }
                }
                return;
            }
            Err(held) => return self.challenge(&held, src, received),
        };
        // Routed, so admitted: what `admit` saw still holds (the inner plugins take out only
        // their own fields).
        let Admitted {
            verified,
            rid,
            extra,
        } = seen.get();
        let verified = verified
            || inner
                .auth
                .as_ref()
                .is_some_and(|a| a.authenticates_sender());
        // The cookie and the padding are this layer's, not the handler's. Taken out only now:
        // the sender's plugins, inner ones included, covered them.
        let mut msg = msg;
        if extra {
            msg.auth.remove(fields::PADDING);
            msg.auth.remove(fields::COOKIE);
        }
        // What the source may be sent in answer: all it asks for once verified; until then, no
        // more than it sent (nothing to a group datagram).
        let budget = match (verified, via_group) {
            (true, _) => None,
            (false, false) => Some(received),
            (false, true) => Some(0),
        };
        // One permit per running handler and per reply still being sealed or sent, so that neither
        // can pile up without bound under a flood.
        let Ok(permit) = shared.handlers.clone().try_acquire_owned() else {
            self.count(&c.overloaded);
            tracing::debug!(%src, "too many handlers running: datagram dropped");
            return;
        };
        let Some(handler) = handler else {
            if msg.message_type.is_error() {
                return;
            }
            if via_group {
                tracing::debug!(%src, r#type = %msg.message_type, "no route for a group datagram: dropped, not answered");
                return;
            }
            self.reply_now(shared.not_found.clone(), rid, inner, src, permit, budget);
            return;
        };
        // At most once: a request its caller may re-send runs its handler only the first time;
        // a copy gets the same reply again (sealed afresh), or nothing while the first runs.
        let once = match shared.dedup.admit(src, &msg) {
            Admit::Run(once) => once,
            Admit::Drop => return,
            Admit::Cached(reply) => {
                self.reply_now(reply, rid, inner, src, permit, budget);
                return;
            }
        };
        let req = Request {
            message: msg,
            ctx: Context::new(
                PeerLink { addr: src, link: 0 },
                ops.of(verified).clone(),
                shared.routes.state().clone(),
            ),
        };
        let mut fut = handler.call(req);
        // Run the handler inline when it finishes at once (the common case), else in a task. A
        // panicking handler is contained: it must not stop the receive loop (and with it the node).
        let mut cx = std::task::Context::from_waker(Waker::noop());
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pin::as_mut(&mut fut).poll(&mut cx)
        }));
        match polled {
            Ok(Poll::Ready(reply)) => {
                if let Some(id) = once {
                    shared.dedup.finish(src, id, reply.as_ref());
                }
                if let Some(reply) = reply {
                    self.reply_now(reply, rid, inner, src, permit, budget);
                }
            }
            Ok(Poll::Pending) => {
                let this = self.clone();
                // A panic later only ends this task (tokio contains it); the permit is released,
                // and a request that asked to run at most once is forgotten (a retry runs it).
                tokio::spawn(async move {
                    let running = once.map(|id| Running::new(&this.shared.dedup, src, id));
                    let reply = fut.await;
                    if let Some(running) = running {
                        running.finish(reply.as_ref());
                    }
                    if let Some(reply) = reply {
                        this.reply(reply, rid, &inner, src, budget).await;
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                if let Some(id) = once {
                    shared.dedup.abandon(src, id);
                }
                self.count(&c.panicked);
                tracing::error!(%src, "handler panicked; the node goes on serving");
            }
        }
    }

    /// Answer a held request (from an unverified address, with a request id) with a challenge:
    /// NOT_PERMITTED carrying the cookie for `src`, no larger than the `received` bytes (else
    /// shortened to its type and reply reference; the caller learns at least that its request
    /// was not handled).
    fn challenge(&self, held: &Message, src: SocketAddr, received: usize) {
        let c = &self.shared.counters;
        let Some(rid) = held.request_id() else {
            return;
        };
        let Ok(permit) = self.shared.handlers.clone().try_acquire_owned() else {
            self.count(&c.overloaded);
            tracing::debug!(%src, "too many handlers running: datagram dropped");
            return;
        };
        self.count(&c.challenges);
        tracing::debug!(%src, "request from an unverified address: challenged");
        let cookie = self.shared.cookies.cookie(src, Instant::now());
        let challenge = challenge_message(rid, cookie);
        self.reply_now(
            challenge,
            Some(rid),
            Plugins::new(),
            src,
            permit,
            Some(received),
        );
    }

    /// Whether the datagram's source address is verified before routing: the datagram passed
    /// the node's auth plugin that authenticates senders, or it echoes a valid cookie (the
    /// address is then remembered), or the address echoed one before. `extra`: the message has
    /// auth fields beside its request id (else it has no cookie to look for).
    fn source_verified(&self, msg: &Message, extra: bool, src: SocketAddr) -> bool {
        let shared = &self.shared;
        if shared.outer_authenticates {
            return true;
        }
        let now = Instant::now();
        if let Some(cookie) = extra.then(|| msg.auth.get(fields::COOKIE)).flatten() {
            if shared.cookies.check(src, cookie, now) {
                self.verified().verify(src, now);
                tracing::debug!(%src, "address verified by its cookie");
                return true;
            }
            tracing::debug!(%src, "invalid or expired cookie");
        }
        self.verified().is_verified(src, now)
    }

    /// Whether `bytes`, a reply of type `t`, may go to an address allowed `budget` bytes (`None`:
    /// any): an error reply too large is shortened to its type and reply reference (the caller
    /// still learns that its request failed), anything else too large is dropped. Counted and
    /// logged.
    #[inline]
    fn fit(
        &self,
        bytes: Bytes,
        t: MessageType,
        rid: Option<u64>,
        budget: Option<usize>,
        src: SocketAddr,
    ) -> Fit {
        match budget {
            Some(b) if bytes.len() > b => self.over_budget(bytes.len(), t, rid, b, src),
            _ => Fit::Send(bytes),
        }
    }

    /// [`fit`](Self::fit) for a reply over its budget (out of line: the rare path).
    #[inline(never)]
    fn over_budget(
        &self,
        len: usize,
        t: MessageType,
        rid: Option<u64>,
        budget: usize,
        src: SocketAddr,
    ) -> Fit {
        self.count(&self.shared.counters.replies_limited);
        if t.is_error() && budget > 0 {
            tracing::debug!(%src, len, budget, r#type = %t, "reply larger than the unverified request: shortened");
            let mut short = Message::new(t, Bytes::new(), Bytes::new());
            if let Some(id) = rid {
                short.set_reply_ref(id);
            }
            return Fit::Shorten(short);
        }
        tracing::debug!(%src, len, budget, r#type = %t, "reply larger than the unverified request: dropped");
        Fit::Drop
    }

    /// The shortened reply's bytes, if they fit at last.
    fn fits_now(bytes: Bytes, budget: Option<usize>, src: SocketAddr) -> Option<Bytes> {
        if budget.is_some_and(|b| bytes.len() > b) {
            tracing::debug!(%src, len = bytes.len(), "even shortened, the reply is too large: dropped");
            return None;
        }
        Some(bytes)
    }

    /// The reply's bytes: its reply reference set, sealed with `inner` and the instance plugins
    /// inline, fitted to `budget` (see [`fit`](Self::fit)); `None` when nothing may be sent.
    fn finish_reply(
        &self,
        mut reply: Message,
        rid: Option<u64>,
        inner: &Plugins,
        src: SocketAddr,
        budget: Option<usize>,
    ) -> Option<Bytes> {
        if let Some(id) = rid {
            reply.set_reply_ref(id);
        }
        let t = reply.message_type;
        let bytes = if inner.is_empty() && self.shared.plugins.outer.is_empty() {
            // Nothing to seal: encode the reply as it is.
            match self.shared.codec.to_frame(&reply) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(%src, error = %e, "reply cannot be sent");
                    return None;
                }
            }
        } else {
            self.seal_now(reply, inner, src)?
        };
        match self.fit(bytes, t, rid, budget, src) {
            Fit::Send(bytes) => Some(bytes),
            Fit::Drop => None,
            Fit::Shorten(short) => {
                Self::fits_now(self.seal_now(short, &Plugins::new(), src)?, budget, src)
            }
        }
    }

    /// Seal (with `inner` and the instance plugins) and encode, inline.
    fn seal_now(&self, reply: Message, inner: &Plugins, src: SocketAddr) -> Option<Bytes> {
        let shared = &self.shared;
        let opts = SendOptions::new().inner(inner.clone());
        let peer = self.peer_for(src, true);
        let sealed = outbound::seal_now(
            &shared.plugins,
            &shared.codec,
            reply,
            &opts,
            peer.as_deref(),
            Some(src),
        );
        match sealed {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(%src, error = %e, "reply cannot be sent");
                None
            }
        }
    }

    /// Send a handler's reply, holding `permit` until it is out. Sealing with a CPU-heavy plugin
    /// (proof of work) goes to the blocking pool, never the receive loop; a full socket buffer
    /// defers the send to a task that still holds the permit.
    fn reply_now(
        &self,
        reply: Message,
        rid: Option<u64>,
        inner: Plugins,
        src: SocketAddr,
        permit: OwnedSemaphorePermit,
        budget: Option<usize>,
    ) {
        if budget == Some(0) {
            // Nothing can fit: do not even seal it.
            self.count(&self.shared.counters.replies_limited);
            tracing::debug!(%src, r#type = %reply.message_type, "reply to an unverified group datagram: dropped");
            return;
        }
        if inner.is_blocking() || self.shared.plugins.outer.is_blocking() {
            let this = self.clone();
            tokio::spawn(async move {
                this.reply(reply, rid, &inner, src, budget).await;
                drop(permit);
            });
            return;
        }
        let Some(bytes) = self.finish_reply(reply, rid, &inner, src, budget) else {
            return;
        };
        match self.shared.socket.try_send_to(&bytes, src) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let this = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.send_bytes(&bytes, src).await {
                        tracing::debug!(%src, error = %e, "reply send failed");
                    }
                    drop(permit);
                });
            }
            Err(e) => tracing::debug!(%src, error = %e, "reply send failed"),
        }
    }

    /// A reply sealed and fitted to its budget by [`finish_reply`](Self::finish_reply) (on the
    /// blocking pool when a plugin is CPU-heavy, never the task's thread), then sent, waiting
    /// for room in the socket buffer.
    async fn reply(
        &self,
        reply: Message,
        rid: Option<u64>,
        inner: &Plugins,
        src: SocketAddr,
        budget: Option<usize>,
    ) {
        let bytes = if inner.is_blocking() || self.shared.plugins.outer.is_blocking() {
            let (this, inner) = (self.clone(), inner.clone());
            let sealing = move || this.finish_reply(reply, rid, &inner, src, budget);
            tokio::task::spawn_blocking(sealing)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(%src, error = %e, "sealing the reply failed");
                    None
                })
        } else {
            self.finish_reply(reply, rid, inner, src, budget)
        };
        if let Some(bytes) = bytes
            && let Err(e) = self.send_bytes(&bytes, src).await
        {
            tracing::debug!(%src, error = %e, "reply not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::PostcardCodec;

    /// The size the docs give, and what a caller pads its requests to.
    #[test]
    fn a_challenge_is_39_bytes_with_a_one_byte_request_id() {
        let c = challenge_message(1, [7; COOKIE_LEN]);
        assert_eq!(c.to_bytes(&PostcardCodec).unwrap().len(), 39);
        assert_eq!(c.reply_ref(), Some(1));
        assert_eq!(
            c.auth.get(fields::COOKIE).unwrap().as_ref(),
            &[7; COOKIE_LEN]
        );
        // Each byte more of request id is a byte more of challenge.
        let c = challenge_message(u64::MAX, [7; COOKIE_LEN]);
        assert_eq!(c.to_bytes(&PostcardCodec).unwrap().len(), 46);
    }
}
