//! [`Request`] and [`Context`]: what a handler is given.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::Extensions;
use super::ops::{NodeOps, PeerLink};
use crate::Message;
use crate::error::{RequestError, SendError, SubscribeError};
use crate::plugin::SendOptions;

/// A message being handled, with its [`Context`]. Extractors read from it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The message (after the instance plugins; see the plugin pipeline).
    pub message: Message,
    /// Where it came from and the node that received it.
    pub ctx: Context,
}

/// The handler's view of where a message came from and of the node that received it: the peer
/// address, shared state, and operations on the node (send to the peer out of band, request it,
/// subscribe it, notify subscribers, broadcast), the same on every transport.
///
/// ```
/// use netaio::router::Context;
/// use netaio::{Message, MessageType};
///
/// async fn subscribe(msg: Message, ctx: Context) -> Message {
///     match ctx.subscribe(msg.uri().clone()) {
///         Ok(()) => Message::new(MessageType::CONFIRM_SUBSCRIBE, msg.uri().clone(), ""),
///         Err(e) => Message::error(e.to_string()),
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Context {
    link: PeerLink,
    node: Option<Arc<dyn NodeOps>>,
    state: Arc<Extensions>,
    /// The message's body as received and its verified checksum, when the transport passes
    /// them (a relay's `FORWARD` on TCP): the relay derives the checksum of what it forwards
    /// from them instead of hashing the forwarded bytes again.
    received: Option<(Bytes, u32)>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("peer", &self.link.addr)
            .field("node", &self.node.as_ref().map_or("detached", |n| n.kind()))
            .finish()
    }
}

impl Context {
    /// A context for a message from `link`, on `node`, with the router's shared state. Transports
    /// make one per connection (or per datagram); handlers receive it.
    pub(crate) fn new(link: PeerLink, node: Arc<dyn NodeOps>, state: Arc<Extensions>) -> Self {
        Self {
            link,
            node: Some(node),
            state,
            received: None,
        }
    }

    /// This context with the body of its message as received and its verified checksum.
    pub(crate) fn with_received(mut self, body: Bytes, checksum: u32) -> Self {
        self.received = Some((body, checksum));
        self
    }

    /// The verified checksum of `body`'s encoding, when `body` is the body as received (the same
    /// bytes, not a copy: no plugin rewrote it).
    pub(crate) fn received_checksum(&self, body: &crate::message::Body) -> Option<u32> {
        self.received
            .as_ref()
            .filter(|(b, _)| body.is_encoding_of(b))
            .map(|(_, c)| *c)
    }

    /// A context attached to no node, for calling handlers directly (unit tests). Node operations
    /// return [`SendError::Unsupported`] / [`SubscribeError::Unsupported`].
    pub fn detached(peer: SocketAddr) -> Self {
        Self {
            link: PeerLink {
                addr: peer,
                link: 0,
            },
            node: None,
            state: Arc::new(Extensions::default()),
            received: None,
        }
    }

    /// A detached context with the router's state (unit tests of extractors).
    #[cfg(test)]
    pub(crate) fn detached_with_state(peer: SocketAddr, state: Arc<Extensions>) -> Self {
        Self {
            state,
            ..Self::detached(peer)
        }
    }

    /// The peer's address: the client's on a server, the server's on a client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.link.addr
    }

    /// The peer's address and the node's id for the link to it.
    pub fn link(&self) -> PeerLink {
        self.link
    }

    /// Shared state of type `T` registered with [`Router::with_state`](super::Router::with_state).
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.state.get::<T>()
    }

    /// The node the handler runs on, as its concrete type: a
    /// [`ServerHandle`](crate::tcp::ServerHandle), a [`Connection`](crate::tcp::Connection), a
    /// [`UdpHandle`](crate::udp::UdpHandle), or a transport of your own.
    ///
    /// ```
    /// # use netaio::router::Context;
    /// fn on_udp(ctx: &Context) -> bool {
    ///     ctx.node::<netaio::udp::UdpHandle>().is_some()
    /// }
    /// ```
    pub fn node<T: NodeOps>(&self) -> Option<&T> {
        self.node.as_deref()?.as_any().downcast_ref::<T>()
    }

    /// The node's operations, when attached to one.
    pub fn ops(&self) -> Option<&Arc<dyn NodeOps>> {
        self.node.as_ref()
    }

    fn ops_or(&self) -> Result<&Arc<dyn NodeOps>, SendError> {
        self.node
            .as_ref()
            .ok_or(SendError::Unsupported("detached context"))
    }

    /// The peer behind this link (its id and data), when known.
    pub fn peer(&self) -> Option<Arc<crate::peer::Peer>> {
        self.node.as_ref()?.peer(self.link)
    }

    /// Record the peer behind this link (peer management does this on ADVERTISE_PEER); plugins
    /// receive it for the link's later messages. On a UDP node the peer is recorded in the node's
    /// peer table at the datagram's source address (`None` forgets that address).
    pub fn set_peer(&self, peer: Option<crate::peer::Peer>) {
        if let Some(n) = &self.node {
            n.set_peer(self.link, peer);
        }
    }

    /// This node's own peer, when it has one.
    pub fn local_peer(&self) -> Option<&crate::peer::Peer> {
        self.node.as_ref()?.local_peer()
    }

    /// Send a message to the peer, out of band (the handler's return value is the normal reply),
    /// sealed with the node's instance plugins. On TCP it is queued without waiting
    /// ([`SendError::QueueFull`] when the connection's queue is full: the connection's own task
    /// runs this handler and drains the queue only after it, so waiting could never end); on UDP
    /// it waits for the socket.
    pub async fn send(&self, msg: &Message) -> Result<(), SendError> {
        self.send_with(msg, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(&self, msg: &Message, opts: &SendOptions) -> Result<(), SendError> {
        self.ops_or()?
            .send(self.link, msg.clone(), opts.clone())
            .await
    }

    /// Send a request to the peer and wait for its reply: a server can ask the client whose
    /// message it is handling. Error replies become typed errors.
    ///
    /// A TCP connection handles its messages one at a time, in order: the peer's answer is read
    /// after the running handler returns. So a handler on a TCP node does not await a call to its
    /// own peer (it would wait until the timeout); it spawns the call instead. On a UDP node,
    /// handlers run in tasks and may await it.
    pub async fn call(&self, msg: Message) -> Result<Message, RequestError> {
        self.call_with(msg, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with inner plugins, switches and a timeout.
    pub async fn call_with(
        &self,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        self.ops_or()?.call(self.link, msg, opts.clone()).await
    }

    /// Subscribe the peer to `key` (server and UDP node).
    pub fn subscribe(&self, key: impl Into<Bytes>) -> Result<(), SubscribeError> {
        match &self.node {
            Some(n) => n.subscribe(self.link, key.into()),
            None => Err(SubscribeError::Unsupported),
        }
    }

    /// Remove the peer's subscription to `key`; false if it had none (server and UDP node).
    pub fn unsubscribe(&self, key: impl AsRef<[u8]>) -> bool {
        self.node
            .as_ref()
            .is_some_and(|n| n.unsubscribe(self.link, key.as_ref()))
    }

    /// Send `msg` to every subscriber of `key` (server and UDP node), sealed once unless a plugin
    /// is peer-specific. Returns how many it was sent (or queued) to.
    pub async fn notify(&self, key: impl AsRef<[u8]>, msg: &Message) -> Result<usize, SendError> {
        let key = Bytes::copy_from_slice(key.as_ref());
        self.ops_or()?
            .notify(key, msg.clone(), SendOptions::default())
            .await
    }

    /// Send `msg` to every connected client (server), every known peer (UDP node), or the server
    /// (client). Returns how many it was sent (or queued) to.
    pub async fn broadcast(&self, msg: &Message) -> Result<usize, SendError> {
        self.ops_or()?
            .broadcast(msg.clone(), SendOptions::default())
            .await
    }
}
