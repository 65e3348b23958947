//! [`NodeOps`]: what a handler can ask of the node it runs on, whatever the transport. Each
//! transport implements it; [`Context`](super::Context) carries it as a trait object, so the
//! router names no transport.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::Message;
use crate::error::{RequestError, SendError, SubscribeError};
use crate::peer::Peer;
use crate::plugin::SendOptions;

/// A boxed future borrowing nothing, as [`NodeOps`] methods return.
pub type NodeFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Which peer of a node a [`Context`](super::Context) is about: its address, and the node's own
/// handle on the link to it (a server's connection id; 0 where the address says it all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerLink {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The transport's id for the link (a [`ConnectionId`](crate::tcp::ConnectionId)'s number on
    /// a server, 0 on a client connection or a UDP node).
    pub link: u64,
}

/// The operations a node offers its handlers, implemented by each transport (`TcpServer`'s
/// [`ServerHandle`](crate::tcp::ServerHandle), a client [`Connection`](crate::tcp::Connection),
/// [`UdpHandle`](crate::udp::UdpHandle)) and by anything else that carries netaio messages.
///
/// Handlers use it through [`Context`](super::Context); a transport author implements it. An
/// operation a node cannot do returns [`SendError::Unsupported`] /
/// [`SubscribeError::Unsupported`] (for example subscriptions on a client).
pub trait NodeOps: Send + Sync + 'static {
    /// A short name for logs and `Debug` (`"server"`, `"client"`, `"udp"`).
    fn kind(&self) -> &'static str;

    /// Send `msg` to the peer, sealed with the node's instance plugins and `opts`.
    fn send(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<(), SendError>>;

    /// Send `msg` to the peer as a request and wait for its reply (the node's request table
    /// matches it; `opts.timeout` or the node's request timeout bounds the wait).
    fn call(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<Message, RequestError>>;

    /// Subscribe the peer to `key`.
    fn subscribe(&self, to: PeerLink, key: Bytes) -> Result<(), SubscribeError>;

    /// Remove the peer's subscription to `key`; false if it had none.
    fn unsubscribe(&self, to: PeerLink, key: &[u8]) -> bool;

    /// Send `msg` to every subscriber of `key`; how many it was sent (or queued) to.
    fn notify(
        &self,
        key: Bytes,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<usize, SendError>>;

    /// Send `msg` to every peer the node is linked to (a server's clients, a UDP node's known
    /// peers, a client's server); how many it was sent (or queued) to.
    fn broadcast(&self, msg: Message, opts: SendOptions) -> NodeFuture<Result<usize, SendError>>;

    /// The peer (id and data) known behind this link.
    fn peer(&self, of: PeerLink) -> Option<Arc<Peer>>;

    /// Record (or forget, with `None`) the peer behind this link; plugins then see it.
    fn set_peer(&self, of: PeerLink, peer: Option<Peer>);

    /// This node's own peer, when it has one.
    fn local_peer(&self) -> Option<&Peer>;

    /// A peer this node knew has left (it said goodbye, or it expired): drop what the node keeps
    /// for it beyond the peer table (a UDP node drops its addresses' subscriptions; a connection's
    /// subscriptions end with the connection). Does nothing by default.
    fn forget_peer(&self, peer: &Peer) {
        let _ = peer;
    }

    /// The node itself, for [`Context::node`](super::Context::node) to downcast.
    fn as_any(&self) -> &dyn Any;
}
