//! [`NodeOps`] for the TCP server and client connections: what a handler's [`Context`] can do
//! on them, and the `Context` accessors for the TCP types.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;

use super::{Connection, ConnectionId, ServerHandle};
use crate::Message;
use crate::error::{RequestError, SendError, SubscribeError};
use crate::peer::Peer;
use crate::plugin::SendOptions;
use crate::router::{Context, NodeFuture, NodeOps, PeerLink};

impl NodeOps for ServerHandle {
    fn kind(&self) -> &'static str {
        "server"
    }

    fn send(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<(), SendError>> {
        // Without waiting: a handler that waited for room in its own connection\'s queue would
        // wait forever (the connection\'s task runs the handler and drains the queue after it).
        let sent = self.try_send_with(ConnectionId(to.link), &msg, &opts);
        Box::pin(std::future::ready(sent))
    }

    fn call(
        &self,
        to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<Message, RequestError>> {
        let this = self.clone();
        Box::pin(async move { this.call_with(ConnectionId(to.link), msg, &opts).await })
    }

    fn subscribe(&self, to: PeerLink, key: Bytes) -> Result<(), SubscribeError> {
        ServerHandle::subscribe(self, ConnectionId(to.link), key)
    }

    fn unsubscribe(&self, to: PeerLink, key: &[u8]) -> bool {
        ServerHandle::unsubscribe(self, ConnectionId(to.link), key)
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

    fn broadcast(&self, msg: Message, opts: SendOptions) -> NodeFuture<Result<usize, SendError>> {
        let this = self.clone();
        Box::pin(async move { this.broadcast_with(&msg, &opts).await })
    }

    fn peer(&self, of: PeerLink) -> Option<Arc<Peer>> {
        ServerHandle::peer(self, ConnectionId(of.link))
    }

    fn set_peer(&self, of: PeerLink, peer: Option<Peer>) {
        ServerHandle::set_peer(self, ConnectionId(of.link), peer);
    }

    fn local_peer(&self) -> Option<&Peer> {
        ServerHandle::local_peer(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A client connection's node operations: the peer is its server, and "everyone it is linked to"
/// is that server.
impl NodeOps for Connection {
    fn kind(&self) -> &'static str {
        "client"
    }

    fn send(
        &self,
        _to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<(), SendError>> {
        // Without waiting, for the same reason as on a server.
        let sent = self.try_send_with(&msg, &opts);
        Box::pin(std::future::ready(sent))
    }

    fn call(
        &self,
        _to: PeerLink,
        msg: Message,
        opts: SendOptions,
    ) -> NodeFuture<Result<Message, RequestError>> {
        let this = self.clone();
        Box::pin(async move { this.call_with(msg, &opts).await })
    }

    fn subscribe(&self, _to: PeerLink, _key: Bytes) -> Result<(), SubscribeError> {
        Err(SubscribeError::Unsupported)
    }

    fn unsubscribe(&self, _to: PeerLink, _key: &[u8]) -> bool {
        false
    }

    fn notify(
        &self,
        _key: Bytes,
        _msg: Message,
        _opts: SendOptions,
    ) -> NodeFuture<Result<usize, SendError>> {
        Box::pin(async { Err(SendError::Unsupported("a client has no subscribers")) })
    }

    fn broadcast(&self, msg: Message, opts: SendOptions) -> NodeFuture<Result<usize, SendError>> {
        let this = self.clone();
        Box::pin(async move { this.send_with(&msg, &opts).await.map(|()| 1) })
    }

    fn peer(&self, _of: PeerLink) -> Option<Arc<Peer>> {
        Connection::peer(self)
    }

    fn set_peer(&self, _of: PeerLink, peer: Option<Peer>) {
        Connection::set_peer(self, peer);
    }

    fn local_peer(&self) -> Option<&Peer> {
        self.inner.client.plugins.local.as_ref()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Context {
    /// The server, when the handler runs on one.
    pub fn server(&self) -> Option<&ServerHandle> {
        self.node::<ServerHandle>()
    }

    /// The connection id, when the handler runs on a server.
    pub fn connection_id(&self) -> Option<ConnectionId> {
        self.server().map(|_| ConnectionId(self.link().link))
    }

    /// The credentials of the process that sent the message, when the handler runs on a server
    /// and the message came over its Unix socket (see
    /// [`ServerHandle::peer_credentials`]).
    pub fn peer_credentials(&self) -> Option<super::PeerCredentials> {
        self.server()?.peer_credentials(self.connection_id()?)
    }

    /// The client connection, when the handler runs on a client.
    pub fn client(&self) -> Option<&Connection> {
        self.node::<Connection>()
    }
}
