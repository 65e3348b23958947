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

    fn subscribe(&self, to: PeerLink, key: Bytes) -> Result<(), SubscribeError> {
        UdpHandle::subscribe(self, to.addr, key)
    }

    fn unsubscribe(&self, to: PeerLink, key: &[u8]) -> bool {
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

    /// Subscriptions belong to addresses on UDP: those of a peer that left go with it.
    fn forget_peer(&self, peer: &Peer) {
        for a in &peer.addrs {
            self.unsubscribe_all(*a);
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
/// serving, so that a datagram costs no allocation to pick one.
#[derive(Clone)]
pub(super) struct SourceOps {
    verified: Arc<dyn NodeOps>,
    unverified: Arc<dyn NodeOps>,
}

impl SourceOps {
    pub(super) fn new(node: &UdpHandle) -> Self {
        Self {
            verified: Arc::new(node.clone()),
            unverified: Arc::new(Unverified(node.clone())),
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

/// The node for a handler whose datagram came from an unverified address: the same node, except
/// that it keeps the subscriptions as they are: `subscribe` refuses the address
/// ([`SubscribeError::Unverified`]), or a forged source would be sent every notification, and
/// neither `unsubscribe` nor `forget_peer` removes any, or a forged source could cancel
/// another's. Everything else is the application's own doing (its sends and calls go where it
/// says) and goes to the node as it is.
struct Unverified(UdpHandle);

impl NodeOps for Unverified {
    fn kind(&self) -> &'static str {
        "udp"
    }

    fn send(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<(), SendError>> {
        NodeOps::send(&self.0, to, msg, opts)
    }

    fn call(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<Message, RequestError>> {
        NodeOps::call(&self.0, to, msg, opts)
    }

    fn subscribe(&self, to: PeerLink, _key: Bytes) -> Result<(), SubscribeError> {
        self.0.refused_unverified_subscription(to.addr);
        Err(SubscribeError::Unverified)
    }

    /// Refused too (false): from a forged source, it would cancel another's subscription.
    fn unsubscribe(&self, to: PeerLink, _key: &[u8]) -> bool {
        tracing::debug!(peer = %to.addr, "unsubscribe from an unverified address ignored");
        false
    }

    fn notify(
        &self,
        key: Bytes,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<usize, SendError>> {
        NodeOps::notify(&self.0, key, msg, opts)
    }

    fn broadcast(&self, msg: Message, opts: SendOptions) -> NodeFuture<Result<usize, SendError>> {
        NodeOps::broadcast(&self.0, msg, opts)
    }

    fn peer(&self, of: PeerLink) -> Option<Arc<Peer>> {
        NodeOps::peer(&self.0, of)
    }

    fn set_peer(&self, of: PeerLink, peer: Option<Peer>) {
        NodeOps::set_peer(&self.0, of, peer);
    }

    fn local_peer(&self) -> Option<&Peer> {
        NodeOps::local_peer(&self.0)
    }

    /// Keeps the peer's subscriptions: a `DISCONNECT` from an unverified address may be forged,
    /// and the subscriptions expire on their own.
    fn forget_peer(&self, peer: &Peer) {
        tracing::debug!(peer = ?peer.id, "unverified goodbye: the peer's subscriptions are kept");
    }

    /// The node itself, so that [`Context::udp`] finds it whatever the view.
    fn as_any(&self) -> &dyn Any {
        &self.0
    }
}
