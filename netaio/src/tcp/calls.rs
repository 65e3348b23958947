//! Calls with options over TCP ([`Connection::start_call`], [`ServerHandle::start_call`]) and
//! what the request table reports (late replies, counters, round-trip estimates): the links the
//! node core's calls go over.

use tokio::sync::broadcast;

use super::{Connection, ConnectionId, ServerHandle};
use crate::Message;
use crate::error::{RequestError, SendError};
use crate::node::requests::{
    self, CallLink, CallOptions, CallTarget, LateReply, PendingCall, RequestStats, Requests,
    RttEstimate,
};
use crate::plugin::SendOptions;

impl CallLink for Connection {
    type Peer = ();

    fn requests(&self) -> &Requests<()> {
        &self.inner.requests
    }

    fn peer(&self) {}

    fn ready(&self) -> Result<(), RequestError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(SendError::Closed.into())
        }
    }

    async fn send(&self, msg: Message, opts: &SendOptions) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        let bytes = self.prepare(msg, opts).await?;
        self.queue(bytes)
    }

    async fn reconnected(&self) -> bool {
        self.wait_connected().await.is_ok()
    }
}

impl Connection {
    /// Start a call with options (soft timeout, retries, …): a [`PendingCall`] to await for the
    /// reply, whose [`soft_timeout`](PendingCall::soft_timeout) can be selected on. A request
    /// that cannot leave (not connected, send queue full) fails at once. With
    /// [`retry`](CallOptions::retry) and a [`Reconnect`](super::Reconnect) policy, a request in
    /// flight when the connection drops is sent again once it is back, before its hard
    /// timeout.
    pub fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall {
        requests::start_call(self.clone(), msg, opts)
    }

    /// Replies that came after their call's hard timeout, from now on (bounded: a receiver
    /// further behind than the configured buffer loses the oldest).
    pub fn late_replies(&self) -> broadcast::Receiver<LateReply> {
        self.inner.requests.late_replies()
    }

    /// The counters of this connection's requests (timeouts, late replies, retries, …).
    pub fn request_stats(&self) -> RequestStats {
        self.inner.requests.stats(self.inner.dedup.duplicates())
    }

    /// The round-trip estimates per route (empty unless adaptive timeouts are on).
    pub fn rtt_estimates(&self) -> Vec<RttEstimate> {
        self.inner
            .requests
            .rtt_estimates()
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }
}

impl CallTarget for Connection {
    fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall {
        Connection::start_call(self, msg, opts)
    }
}

/// A server's connection to one client, as a call link.
struct ServerLink {
    server: ServerHandle,
    conn: ConnectionId,
}

impl CallLink for ServerLink {
    type Peer = ConnectionId;

    fn requests(&self) -> &Requests<ConnectionId> {
        &self.server.shared.requests
    }

    fn peer(&self) -> ConnectionId {
        self.conn
    }

    fn ready(&self) -> Result<(), RequestError> {
        self.server.recipient(self.conn).map(|_| ())?;
        Ok(())
    }

    async fn send(&self, msg: Message, opts: &SendOptions) -> Result<(), SendError> {
        self.server.send_request(self.conn, msg, opts).await
    }
}

impl ServerHandle {
    /// Start a call to one client with options (soft timeout, retries, …): see
    /// [`Connection::start_call`]. A request that cannot leave (no such connection, its send
    /// queue full) fails at once; the end of the connection fails the call.
    pub fn start_call(&self, conn: ConnectionId, msg: Message, opts: &CallOptions) -> PendingCall {
        requests::start_call(
            ServerLink {
                server: self.clone(),
                conn,
            },
            msg,
            opts,
        )
    }

    /// Replies of clients that came after their call's hard timeout, from now on.
    pub fn late_replies(&self) -> broadcast::Receiver<LateReply> {
        self.shared.requests.late_replies()
    }

    /// The counters of this server's requests to its clients, and of the requests it answered
    /// from its at-most-once cache.
    pub fn request_stats(&self) -> RequestStats {
        self.shared.requests.stats(self.shared.dedup.duplicates())
    }

    /// The round-trip estimates per connection and route (empty unless adaptive timeouts are
    /// on).
    pub fn rtt_estimates(&self) -> Vec<(ConnectionId, RttEstimate)> {
        self.shared.requests.rtt_estimates()
    }
}

impl CallTarget for (ServerHandle, ConnectionId) {
    fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall {
        self.0.start_call(self.1, msg, opts)
    }
}
