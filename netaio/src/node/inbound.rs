//! The inbound pipeline, written once for every transport: a decoded message from a peer goes
//! through the instance plugins, is matched against the node's own waiting requests, is routed,
//! and is opened with its route's inner plugins. What the transport does next (run the handler
//! in order on a TCP connection or in a task on UDP, answer a refusal or not, fall back to an
//! inbox) is its reply policy; the steps up to there are the same everywhere.
//!
//! Synchronous and socket-free: the transports call [`Pipeline::receive`] from their receive
//! loops and act on the [`Inbound`] it returns.

use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Arc;

use super::requests::{self, Correlated, Requests};
use crate::peer::Peer;
use crate::plugin::{
    AuthPlugin, NodePlugins, OpenError, Plugins, SIGNER_FIELD, open_inner, open_outer,
};
use crate::router::{BoxedHandler, Routed, Routes};
use crate::{Message, RequestError};

/// What became of a received message.
pub(crate) enum Inbound {
    /// It passed every check: run `handler` (the route's, else the router's fallback; `None`
    /// when neither exists) with `msg`, and seal its reply with `inner`.
    Routed {
        /// The route's handler or the fallback.
        handler: Option<BoxedHandler>,
        /// The route's inner plugins.
        inner: Plugins,
        /// The message, opened.
        msg: Message,
    },
    /// It answered a request of this node (handed to the waiting caller). Nothing more to do.
    Answered,
    /// It failed the instance plugins but, as an error reply without plugins (how a TCP peer
    /// answers a request it refused), answered a request of this node. It proves nothing about
    /// the sender (a TCP server does not count it as authenticating the connection).
    AnsweredUnverified,
    /// A reply to no waiting request: dropped, never routed (one that came after its request's
    /// hard timeout went to the node's late replies first).
    Stale,
    /// It failed a check ([`Refusal`]); it must not be processed further.
    Refused(Box<Refusal>),
}

/// A message that failed the instance plugins or its route's inner plugins.
pub(crate) struct Refusal {
    /// The message as it was when the failing plugins got it (kept only when the transport
    /// answers refusals; otherwise `None`).
    pub(crate) received: Option<Message>,
    /// Why.
    pub(crate) error: OpenError,
    /// The auth plugin of the layer that refused (for the auth-error reply hook).
    pub(crate) auth: Option<Arc<dyn AuthPlugin>>,
    /// The name of the plugin that refused, for the log line and the per-source counts.
    pub(crate) plugin: &'static str,
}

/// A node's inbound steps, borrowed from its shared state for one message.
pub(crate) struct Pipeline<'a, P> {
    pub(crate) plugins: &'a NodePlugins,
    pub(crate) routes: &'a Routes,
    pub(crate) requests: &'a Requests<P>,
    /// The transport answers refused messages (a TCP server): keep each message as it arrived
    /// until its checks pass. A UDP node never answers what it refused (no reflection).
    pub(crate) answers_refusals: bool,
    /// An error reply that fails the instance plugins still answers the request it refers to
    /// (a TCP peer answers a refused request with an error sent without plugins). Not on UDP,
    /// where the source of an unauthenticated datagram proves nothing.
    pub(crate) accepts_unauthenticated_errors: bool,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug + Send + 'static> Pipeline<'_, P> {
    /// Take `msg` from `from` (at `addr`) through the instance plugins, the request table, the
    /// router and the route's inner plugins. `peer` looks up the sender's peer record; it is
    /// called at most once, and only when a plugin will see the peer.
    #[inline]
    pub(crate) fn receive(
        &self,
        msg: Message,
        from: P,
        addr: SocketAddr,
        peer: impl FnOnce() -> Option<Arc<Peer>>,
    ) -> Inbound {
        // Everything is admitted: the `Err` (held) case cannot happen, and compiles away.
        self.receive_admitting(msg, from, addr, peer, |_| true)
            .unwrap_or(Inbound::Stale)
    }

    /// [`receive`](Self::receive), with `admit` called on a message that passed the instance
    /// plugins and is not a reply, before it is routed: when it returns false the message goes
    /// no further and comes back as `Err`. A UDP node holds there a request from an address that
    /// has not proved it receives, to challenge it before any route sees it (a one-shot route
    /// taken by a request that is then not handled would be lost).
    #[inline]
    pub(crate) fn receive_admitting(
        &self,
        msg: Message,
        from: P,
        addr: SocketAddr,
        peer: impl FnOnce() -> Option<Arc<Peer>>,
        admit: impl FnOnce(&Message) -> bool,
    ) -> Result<Inbound, Message> {
        let mut msg = msg;
        // Only a plugin's check sets it (a verified signer); from the wire it is a forgery.
        if !msg.auth.is_empty() {
            msg.auth.remove(SIGNER_FIELD);
        }
        let mut peer = Lazy::new(peer);
        let outer = &self.plugins.outer;
        let msg = if outer.is_empty() {
            msg
        } else {
            let keep = self.answers_refusals
                || (self.accepts_unauthenticated_errors && msg.message_type.is_error());
            // The refusal reply needs only the type and the request id, but the auth-error hook
            // (`AuthFailure::message`) and an unauthenticated error reply's correlation take the
            // whole message as received, and the plugins consume it. The clone copies no bytes:
            // one vector of (name, value) handles and the body's two, each a reference-count
            // increment, and the codec has already refused a block of more fields than its limit
            // (`DEFAULT_MAX_AUTH_FIELDS` unless configured).
            let received = keep.then(|| msg.clone());
            let ctx = self.plugins.ctx(peer.get(), Some(addr));
            match open_outer(msg, outer, &ctx) {
                Ok(m) => m,
                Err(error) => {
                    if self.accepts_unauthenticated_errors
                        && let Some(received) = &received
                        && let Some(p) = self.requests.correlate_unauthenticated(from, received)
                    {
                        tracing::debug!(%error, "unauthenticated error reply answered its request");
                        p.answer(RequestError::from_reply(received.clone()));
                        return Ok(Inbound::AnsweredUnverified);
                    }
                    let received = received.filter(|_| self.answers_refusals);
                    let plugin = error.plugin_name(outer);
                    return Ok(Inbound::Refused(Box::new(Refusal {
                        received,
                        error,
                        auth: outer.auth.clone(),
                        plugin,
                    })));
                }
            }
        };
        match self.requests.correlate(from, &msg) {
            Correlated::NotAReply => {}
            Correlated::Answers(p) => {
                requests::complete(p, msg, self.plugins, peer.get(), addr);
                return Ok(Inbound::Answered);
            }
            Correlated::Late(e) => {
                self.requests.publish_late(e, addr, msg);
                return Ok(Inbound::Stale);
            }
            Correlated::Stale => return Ok(Inbound::Stale),
        }
        if !admit(&msg) {
            return Err(msg);
        }
        let Routed {
            handler,
            inner,
            opened,
        } = self.routes.route(msg, addr, |msg, inner| {
            if inner.is_empty() {
                return Ok(msg);
            }
            open_routed(
                msg,
                inner,
                self.plugins,
                peer.get(),
                addr,
                self.answers_refusals,
            )
        });
        Ok(match opened {
            Ok(msg) => Inbound::Routed {
                handler,
                inner,
                msg,
            },
            Err(refused) => {
                let (received, error) = *refused;
                let plugin = error.plugin_name(&inner);
                Inbound::Refused(Box::new(Refusal {
                    received,
                    error,
                    auth: inner.auth.clone(),
                    plugin,
                }))
            }
        })
    }
}

/// Open a routed message with its route's inner plugins; on refusal, the message as routed (when
/// `keep`) and why. Out of line and boxed: the common route has no inner plugins, and the
/// refusal is the rare path.
#[inline(never)]
fn open_routed(
    msg: Message,
    inner: &Plugins,
    plugins: &NodePlugins,
    peer: Option<&Peer>,
    addr: SocketAddr,
    keep: bool,
) -> Result<Message, Box<(Option<Message>, OpenError)>> {
    let routed = keep.then(|| msg.clone());
    open_inner(msg, inner, &plugins.ctx(peer, Some(addr))).map_err(|e| Box::new((routed, e)))
}

/// The sender's peer record, looked up on first use.
struct Lazy<F> {
    lookup: Option<F>,
    value: Option<Arc<Peer>>,
}

impl<F: FnOnce() -> Option<Arc<Peer>>> Lazy<F> {
    fn new(lookup: F) -> Self {
        Self {
            lookup: Some(lookup),
            value: None,
        }
    }

    fn get(&mut self) -> Option<&Peer> {
        if let Some(f) = self.lookup.take() {
            self.value = f();
        }
        self.value.as_deref()
    }
}
