//! What a UDP node does with each datagram: decode, open, answer its own waiting requests,
//! route, run the handler (inline when it finishes at once, else in a bounded task), seal and
//! send the reply. Nothing that failed a check is ever answered.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;

use super::UdpHandle;
use crate::Message;
use crate::node::inbound::{Inbound, Pipeline};
use crate::node::outbound;
use crate::node::requests::{Begin, Running};
use crate::plugin::{AuthError, OpenError, Stage};
use crate::plugin::{Plugins, SendOptions};
use crate::router::{Context, NodeOps, PeerLink, Request};

impl UdpHandle {
    fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Handle one datagram: decode, instance plugins, reply matching, routing, handler. Never
    /// answers a datagram that failed a check.
    /// Handle one datagram. `via_group`: it arrived on the multicast group's own socket (sent to
    /// the group, not to this node), so it gets no default reply: a datagram no route takes is
    /// dropped instead of answered NOT_FOUND, or one datagram to the group (its source address
    /// possibly spoofed) would make every node in the group answer it.
    pub(super) fn on_datagram(
        &self,
        datagram: Bytes,
        src: SocketAddr,
        via_group: bool,
        ops: &Arc<dyn NodeOps>,
    ) {
        let shared = &self.shared;
        let c = &shared.counters;
        self.count(&c.received);
        let msg = match Message::decode(datagram, shared.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => {
                self.count(&c.invalid);
                tracing::debug!(%src, error = %e, "invalid datagram dropped");
                return;
            }
        };
        let pipeline = Pipeline {
            plugins: &shared.plugins,
            routes: &shared.routes,
            requests: &shared.requests,
            answers_refusals: false,
            accepts_unauthenticated_errors: false,
        };
        // The sender's peer, for plugins that need its keys (looked up only when a plugin runs).
        let (handler, inner, msg) =
            match pipeline.receive(msg, src, src, || shared.peers.by_addr(src)) {
                Inbound::Routed {
                    handler,
                    inner,
                    msg,
                } => (handler, inner, msg),
                Inbound::Answered | Inbound::AnsweredUnverified => return self.count(&c.replies),
                Inbound::Stale => return,
                Inbound::Refused(r) => {
                    match r.error {
                        // This node's own group datagram, looped back to it: expected, not counted.
                        OpenError::Auth {
                            source: AuthError::Reflected,
                            stage: Stage::Outer,
                        } if via_group => {}
                        OpenError::Auth { .. } => self.count(&c.auth_failed),
                        _ => self.count(&c.decrypt_failed),
                    }
                    tracing::debug!(%src, error = %r.error, "datagram refused");
                    return;
                }
            };
        let rid = msg.request_id();
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
            self.reply_now(shared.not_found.clone(), rid, inner, src, permit);
            return;
        };
        // At most once: a request its caller may re-send runs its handler only the first time;
        // a copy gets the same reply again (sealed afresh), or nothing while the first runs.
        let once = match shared.dedup.begin(src, &msg) {
            None => None,
            Some((id, Begin::New)) => Some(id),
            Some((_, Begin::Running | Begin::Done(None))) => return,
            Some((_, Begin::Done(Some(reply)))) => {
                self.reply_now(reply, rid, inner, src, permit);
                return;
            }
        };
        let req = Request {
            message: msg,
            ctx: Context::new(
                PeerLink { addr: src, link: 0 },
                ops.clone(),
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
                    self.reply_now(reply, rid, inner, src, permit);
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
                        this.reply(reply, rid, &inner, src).await;
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

    fn finish_reply(
        &self,
        mut reply: Message,
        rid: Option<u64>,
        inner: &Plugins,
        src: SocketAddr,
    ) -> Option<Bytes> {
        if let Some(id) = rid {
            reply.set_reply_ref(id);
        }
        if inner.is_empty() && self.shared.plugins.outer.is_empty() {
            // Nothing to seal: encode the reply as it is.
            return match self.shared.codec.to_frame(&reply) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(%src, error = %e, "reply cannot be sent");
                    None
                }
            };
        }
        let opts = SendOptions::new().inner(inner.clone());
        let peer = self.peer_for(src, true);
        let shared = &self.shared;
        match outbound::seal_now(
            &shared.plugins,
            &shared.codec,
            reply,
            &opts,
            peer.as_deref(),
            Some(src),
        ) {
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
    ) {
        if inner.is_blocking() || self.shared.plugins.outer.is_blocking() {
            let this = self.clone();
            tokio::spawn(async move {
                this.reply(reply, rid, &inner, src).await;
                drop(permit);
            });
            return;
        }
        let Some(bytes) = self.finish_reply(reply, rid, &inner, src) else {
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

    async fn reply(&self, mut reply: Message, rid: Option<u64>, inner: &Plugins, src: SocketAddr) {
        if let Some(id) = rid {
            reply.set_reply_ref(id);
        }
        let opts = SendOptions::new().inner(inner.clone());
        let sent = match self.prepare_async(reply, &opts, src).await {
            Ok(bytes) => self.send_bytes(&bytes, src).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::debug!(%src, error = %e, "reply not sent");
        }
    }
}
