//! [`Request`] and [`Context`]: what a handler is given.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::Extensions;
use crate::Message;
use crate::error::{SendError, SubscribeError};
use crate::tcp::{Connection, ConnectionId, ServerHandle};

/// A message being handled, with its [`Context`]. Extractors read from it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The message (after the instance plugins; see the plugin pipeline).
    pub message: Message,
    /// Where it came from and the node that received it.
    pub ctx: Context,
}

/// Which node a handler runs on, and the peer the message came from.
#[derive(Clone)]
pub(crate) enum Link {
    /// Not attached to a node (handlers called directly in tests).
    Detached,
    /// A server connection.
    Server {
        handle: ServerHandle,
        conn: ConnectionId,
    },
    /// A client connection to one server.
    Client(Connection),
    /// A UDP node; the peer is the datagram's source.
    Udp(crate::udp::UdpHandle),
}

/// The handler's view of where a message came from and of the node that received it: the peer
/// address, shared state, and operations on the node (reply out of band, subscribe, notify,
/// broadcast).
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
    peer: SocketAddr,
    link: Link,
    state: Arc<Extensions>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let node = match &self.link {
            Link::Detached => "detached",
            Link::Server { .. } => "server",
            Link::Client(_) => "client",
            Link::Udp(_) => "udp",
        };
        f.debug_struct("Context")
            .field("peer", &self.peer)
            .field("node", &node)
            .finish()
    }
}

impl Context {
    pub(crate) fn new(peer: SocketAddr, link: Link, state: Arc<Extensions>) -> Self {
        Self { peer, link, state }
    }

    /// A context attached to no node, for calling handlers directly (unit tests). Node operations
    /// return [`SendError::Unsupported`] / [`SubscribeError::Unsupported`].
    pub fn detached(peer: SocketAddr) -> Self {
        Self::new(peer, Link::Detached, Arc::new(Extensions::default()))
    }

    /// The peer's address: the client's on a server, the server's on a client.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Shared state of type `T` registered with [`Router::with_state`](super::Router::with_state).
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.state.get::<T>()
    }

    /// The server, when the handler runs on one.
    pub fn server(&self) -> Option<&ServerHandle> {
        match &self.link {
            Link::Server { handle, .. } => Some(handle),
            _ => None,
        }
    }

    /// The connection id, when the handler runs on a server.
    pub fn connection_id(&self) -> Option<ConnectionId> {
        match &self.link {
            Link::Server { conn, .. } => Some(*conn),
            _ => None,
        }
    }

    /// The client connection, when the handler runs on a client.
    pub fn client(&self) -> Option<&Connection> {
        match &self.link {
            Link::Client(c) => Some(c),
            _ => None,
        }
    }

    /// The peer behind this connection (its id and data), when known.
    pub fn peer(&self) -> Option<Arc<crate::peer::Peer>> {
        match &self.link {
            Link::Server { handle, conn } => handle.peer(*conn),
            Link::Client(c) => c.peer(),
            // A UDP node has no connections: the peer last heard at the datagram's source.
            Link::Udp(h) => h.peers().by_addr(self.peer),
            Link::Detached => None,
        }
    }

    /// Record the peer behind this connection (peer management does this on ADVERTISE_PEER);
    /// plugins receive it for the connection's later messages. On a UDP node the peer is recorded
    /// in the node's peer table at the datagram's source address (`None` forgets that address).
    pub fn set_peer(&self, peer: Option<crate::peer::Peer>) {
        match &self.link {
            Link::Server { handle, conn } => {
                handle.set_peer(*conn, peer);
            }
            Link::Client(c) => c.set_peer(peer),
            Link::Udp(h) => match peer {
                Some(p) => {
                    if let Err(e) = h.peers().observe(p, self.peer) {
                        tracing::debug!(peer = %self.peer, error = %e, "peer not recorded");
                    }
                }
                None => {
                    h.peers().remove_addr(self.peer);
                }
            },
            Link::Detached => {}
        }
    }

    /// The UDP node, when the handler runs on one.
    pub fn udp(&self) -> Option<&crate::udp::UdpHandle> {
        match &self.link {
            Link::Udp(h) => Some(h),
            _ => None,
        }
    }

    /// Queue a message to the peer, out of band (the handler's return value is the normal reply).
    /// Does not wait on TCP ([`SendError::QueueFull`]); on UDP the datagram is sent in a task.
    pub fn send(&self, msg: &Message) -> Result<(), SendError> {
        match &self.link {
            Link::Server { handle, conn } => handle.send(*conn, msg),
            Link::Client(c) => c.try_send(msg),
            Link::Udp(h) => {
                let (h, msg, peer) = (h.clone(), msg.clone(), self.peer);
                tokio::spawn(async move {
                    if let Err(e) = h.send(&msg, peer).await {
                        tracing::debug!(%peer, error = %e, "udp send failed");
                    }
                });
                Ok(())
            }
            Link::Detached => Err(SendError::Unsupported("detached context")),
        }
    }

    /// Subscribe the peer to `key` (server and UDP node).
    pub fn subscribe(&self, key: impl Into<Bytes>) -> Result<(), SubscribeError> {
        match &self.link {
            Link::Server { handle, conn } => handle.subscribe(key, *conn),
            Link::Udp(h) => h.subscribe(key, self.peer),
            _ => Err(SubscribeError::Unsupported),
        }
    }

    /// Remove the peer's subscription to `key`; false if it had none (server and UDP node).
    pub fn unsubscribe(&self, key: impl AsRef<[u8]>) -> bool {
        match &self.link {
            Link::Server { handle, conn } => handle.unsubscribe(key, *conn),
            Link::Udp(h) => h.unsubscribe(key, self.peer),
            _ => false,
        }
    }

    /// Send `msg` to every subscriber of `key` (server and UDP node). Returns how many queued it
    /// (on UDP: how many subscribers there are; the datagrams are sent in a task).
    pub fn notify(&self, key: impl AsRef<[u8]>, msg: &Message) -> Result<usize, SendError> {
        match &self.link {
            Link::Udp(h) => {
                let addrs = h.subscribers(key);
                let n = addrs.len();
                let (h, msg) = (h.clone(), msg.clone());
                tokio::spawn(async move {
                    let opts = crate::plugin::SendOptions::default();
                    if let Err(e) = h.send_many(&msg, &addrs, &opts).await {
                        tracing::debug!(error = %e, "udp notify failed");
                    }
                });
                Ok(n)
            }
            Link::Server { handle, .. } => handle.notify(key, msg),
            _ => Err(SendError::Unsupported("notify needs a server")),
        }
    }

    /// Send `msg` to every connected client (server), or by unicast to every known peer (UDP
    /// node: returns how many peers there are; the datagrams are sent in a task). Returns how
    /// many queued it.
    pub fn broadcast(&self, msg: &Message) -> Result<usize, SendError> {
        match &self.link {
            Link::Server { handle, .. } => handle.broadcast(msg),
            Link::Udp(h) => {
                let n = h.peers().len();
                let (h, msg) = (h.clone(), msg.clone());
                tokio::spawn(async move {
                    if let Err(e) = h.broadcast(&msg).await {
                        tracing::debug!(error = %e, "udp broadcast failed");
                    }
                });
                Ok(n)
            }
            _ => Err(SendError::Unsupported(
                "broadcast needs a server or a UDP node",
            )),
        }
    }
}
