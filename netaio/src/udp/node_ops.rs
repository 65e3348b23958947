//! [`NodeOps`] for a UDP node: what a handler's [`Context`] can do on it (the peer is the
//! datagram's source address), and the `Context` accessor for [`UdpHandle`].

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;

use super::UdpHandle;
use crate::Message;
use crate::error::{RequestError, SendError, SubscribeError};
use crate::peer::Peer;
use crate::plugin::SendOptions;
use crate::router::{Context, NodeFuture, NodeOps, PeerLink};

impl NodeOps for UdpHandle {
    fn kind(&self) -> &'static str {
        "udp"
    }

    fn send(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<(), SendError>> {
        let this = self.clone();
        Box::pin(async move { this.send_with(to.addr, &msg, &opts).await })
    }

    fn call(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<Message, RequestError>> {
        let this = self.clone();
        Box::pin(async move { this.call_with(to.addr, msg, &opts).await })
    }

    /// Refused for an unverified source ([`SubscribeError::Unverified`]): a forged source would
    /// be sent every notification.
    fn subscribe(&self, to: PeerLink, key: Bytes) -> Result<(), SubscribeError> {
        if !self.source_verified {
            self.refused_unverified_subscription(to.addr);
            return Err(SubscribeError::Unverified);
        }
        UdpHandle::subscribe(self, to.addr, key)
    }

    /// Refused too (false) for an unverified source: from a forged one, it would cancel
    /// another's subscription.
    fn unsubscribe(&self, to: PeerLink, key: &[u8]) -> bool {
        if !self.source_verified {
            tracing::debug!(peer = %to.addr, "unsubscribe from an unverified address ignored");
            return false;
        }
        UdpHandle::unsubscribe(self, to.addr, key)
    }

    fn notify(
        &self,
        key: Bytes,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<usize, SendError>> {
        let this = self.clone();
        Box::pin(async move { this.notify_with(key, &msg, &opts).await })
    }

    /// By unicast to every known peer.
    fn broadcast(&self, msg: Message, opts: SendOptions) -> NodeFuture<Result<usize, SendError>> {
        let this = self.clone();
        Box::pin(async move { this.broadcast_with(&msg, &opts).await })
    }

    /// The peer last heard at the datagram's source (a UDP node has no connections).
    fn peer(&self, of: PeerLink) -> Option<Arc<Peer>> {
        self.peers().by_addr(of.addr)
    }

    /// Recorded in the node's peer table at the source address; `None` forgets that address.
    fn set_peer(&self, of: PeerLink, peer: Option<Peer>) {
        match peer {
            Some(p) => {
                if let Err(e) = self.peers().observe(p, of.addr) {
                    tracing::debug!(peer = %of.addr, error = %e, "peer not recorded");
                }
            }
            None => {
                self.peers().remove_addr(of.addr);
            }
        }
    }

    fn local_peer(&self) -> Option<&Peer> {
        UdpHandle::local_peer(self)
    }

    /// Subscriptions belong to addresses on UDP: those of a peer that left go with it, and so
    /// do the reservations its addresses hold at this node's relay. Kept when the goodbye came
    /// from an unverified source: a `DISCONNECT` from one may be forged, and both expire on
    /// their own.
    fn forget_peer(&self, peer: &Peer) {
        if !self.source_verified {
            tracing::debug!(peer = %peer.display_id(), "unverified goodbye: the peer's subscriptions are kept");
            return;
        }
        for a in &peer.addrs {
            self.unsubscribe_all(*a);
        }
        if let Some(relay) = &self.shared.relay {
            let mut state = relay.state();
            for a in &peer.addrs {
                state.connection_closed(*a);
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Context {
    /// The UDP node, when the handler runs on one.
    pub fn udp(&self) -> Option<&UdpHandle> {
        self.node::<UdpHandle>()
    }
}

/// The node as a handler sees it, by whether the datagram's source address is verified (see
/// [return routability](super::UdpNode#return-routability)): both made once when the node starts
/// serving, so that a datagram costs no allocation to pick one. The unverified view is the same
/// node, except that it keeps the subscriptions as they are: `subscribe` refuses the address,
/// and neither `unsubscribe` nor `forget_peer` removes any. Everything else is the
/// application's own doing (its sends and calls go where it says) and goes to the node as it is.
#[derive(Clone)]
pub(super) struct SourceOps {
    verified: Arc<dyn NodeOps>,
    unverified: Arc<dyn NodeOps>,
}

impl SourceOps {
    pub(super) fn new(node: &UdpHandle) -> Self {
        let unverified = UdpHandle {
            shared: Arc::clone(&node.shared),
            source_verified: false,
        };
        Self {
            verified: Arc::new(node.clone()),
            unverified: Arc::new(unverified),
        }
    }

    /// The view for a datagram whose source is (or is not) verified.
    pub(super) fn of(&self, verified: bool) -> &Arc<dyn NodeOps> {
        if verified {
            &self.verified
        } else {
            &self.unverified
        }
    }
}
