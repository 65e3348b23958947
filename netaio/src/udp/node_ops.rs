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
