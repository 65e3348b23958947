//! [`ServerHandle`]: send to one client, request it, broadcast, subscribe and notify, watch
//! connections, shut down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::broadcast;

use super::send_queue::QueueSender;
use super::server::*;
use crate::Message;
use crate::error::{RequestError, SendError, SubscribeError};
use crate::node::outbound::{self, Recipient};
use crate::peer::Peer;
use crate::plugin::SendOptions;

/// A cheap, cloneable handle to a running [`TcpServer`]: send to one client, broadcast to all,
/// subscribe/notify by key, watch connections, change routes, shut down. Handlers reach it through
/// [`Context::server`](crate::router::Context::server).
#[derive(Clone)]
pub struct ServerHandle {
    pub(super) shared: Arc<ServerShared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub(super) fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The bound address (`[100::ffff:ffff]:0` for a server on a Unix socket only).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The Unix socket the server listens on, if any
    /// ([`bind_unix`](super::TcpServerBuilder::bind_unix),
    /// [`unix_socket`](super::TcpServerBuilder::unix_socket)).
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.shared.unix_path.as_deref()
    }

    /// The credentials of the process behind a connection on the Unix socket, as the kernel
    /// recorded them when it connected (`SO_PEERCRED`); `None` for a TCP connection, an unknown
    /// one, or when the kernel did not tell. Handlers have
    /// [`Context::peer_credentials`](crate::router::Context::peer_credentials).
    pub fn peer_credentials(&self, conn: ConnectionId) -> Option<super::PeerCredentials> {
        self.registry().conns.get(&conn)?.credentials
    }

    /// The recipient behind a connection, copied out of the registry so that no lock is held
    /// while sealing.
    pub(super) fn recipient(
        &self,
        conn: ConnectionId,
    ) -> Result<Recipient<QueueSender>, SendError> {
        self.registry()
            .conns
            .get(&conn)
            .map(ConnEntry::recipient)
            .ok_or(SendError::UnknownConnection)
    }

    /// Queue a message for one connection, sealed with the instance plugins, waiting while its
    /// send queue is full, in messages or bytes, or the server's byte budget for all queues is
    /// spent (a client that does not read is disconnected by the write timeout).
    pub async fn send(&self, conn: ConnectionId, msg: &Message) -> Result<(), SendError> {
        self.send_with(conn, msg, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(
        &self,
        conn: ConnectionId,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let r = self.recipient(conn)?;
        let (plugins, codec) = (&self.shared.plugins, &self.shared.codec);
        let bytes = r.seal(plugins, codec, msg.clone(), opts).await?;
        r.to.send(bytes).await
    }

    /// Queue a message for one connection without waiting: a full queue (in messages or bytes)
    /// is [`SendError::QueueFull`], a spent server-wide budget [`SendError::NodeQueueFull`].
    /// Plugins run inline.
    pub fn try_send(&self, conn: ConnectionId, msg: &Message) -> Result<(), SendError> {
        self.try_send_with(conn, msg, &SendOptions::default())
    }

    /// [`try_send`](Self::try_send) with inner plugins and the `use_auth` / `use_cipher`
    /// switches.
    pub fn try_send_with(
        &self,
        conn: ConnectionId,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let r = self.recipient(conn)?;
        let (plugins, codec) = (&self.shared.plugins, &self.shared.codec);
        r.to.try_send(r.seal_now(plugins, codec, msg.clone(), opts)?)
    }

    /// Send a request to one client and wait for its reply (within the server's request
    /// timeout): the client's router answers it like any request. Error replies become typed
    /// errors ([`RequestError::NotFound`], …); the end of the connection fails it with
    /// [`RequestError::Closed`].
    ///
    /// ```no_run
    /// # async fn f(server: netaio::ServerHandle, conn: netaio::tcp::ConnectionId) -> Result<(), netaio::RequestError> {
    /// use netaio::{Message, MessageType};
    /// let reply = server.call(conn, Message::new(MessageType::REQUEST_URI, "status", "")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call(&self, conn: ConnectionId, msg: Message) -> Result<Message, RequestError> {
        self.call_with(conn, msg, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with inner plugins (the reply is opened with them too), switches and
    /// a timeout. A request that cannot leave (no such connection, its send queue full) fails
    /// at once with [`RequestError::Send`].
    pub async fn call_with(
        &self,
        conn: ConnectionId,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        self.recipient(conn)?;
        self.shared
            .requests
            .exchange(
                conn,
                msg,
                opts.inner.clone(),
                opts.timeout,
                |msg| async move { self.send_request(conn, msg, opts).await },
            )
            .await
    }

    /// Seal a request and queue it without waiting: a request that cannot leave fails at once.
    pub(super) async fn send_request(
        &self,
        conn: ConnectionId,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let r = self.recipient(conn)?;
        let (plugins, codec) = (&self.shared.plugins, &self.shared.codec);
        r.to.try_send(r.seal(plugins, codec, msg, opts).await?)
    }

    /// Send a message to every connected client. It is sealed once and the same bytes go to all,
    /// unless a plugin is peer-specific (then once per client). Returns how many queued it:
    /// a client whose queue is full (in messages or bytes), or any client while the server's
    /// budget for all queues is spent, is skipped without waiting (logged, counted in
    /// [`ServerStats::skipped`]); one that does not read at all is then closed by the write
    /// timeout.
    pub async fn broadcast(&self, msg: &Message) -> Result<usize, SendError> {
        self.broadcast_with(msg, &SendOptions::default()).await
    }

    /// [`broadcast`](Self::broadcast) with inner plugins and switches.
    pub async fn broadcast_with(
        &self,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let targets = self.recipients(|_| true);
        self.fan_out(msg, opts, targets).await
    }

    /// Send a message to every client whose peer is known (it advertised itself, see
    /// [`TcpServerBuilder::peer_management`](super::TcpServerBuilder::peer_management)); sealed once unless a plugin is peer-specific.
    /// Returns how many queued it.
    pub async fn broadcast_to_peers(&self, msg: &Message) -> Result<usize, SendError> {
        self.broadcast_to_peers_with(msg, &SendOptions::default())
            .await
    }

    /// [`broadcast_to_peers`](Self::broadcast_to_peers) with inner plugins and switches.
    pub async fn broadcast_to_peers_with(
        &self,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let targets = self.recipients(|c| c.peer_info.get().is_some());
        self.fan_out(msg, opts, targets).await
    }

    fn recipients(&self, keep: impl Fn(&ConnEntry) -> bool) -> Vec<Recipient<QueueSender>> {
        self.registry()
            .conns
            .values()
            .filter(|c| keep(c))
            .map(ConnEntry::recipient)
            .collect()
    }

    /// Seal once (or per recipient) and queue without waiting: one slow client must not hold up
    /// the others. A recipient whose queue is full is skipped (one log line per call).
    async fn fan_out(
        &self,
        msg: &Message,
        opts: &SendOptions,
        targets: Vec<Recipient<QueueSender>>,
    ) -> Result<usize, SendError> {
        let shared = &self.shared;
        let frames =
            outbound::seal_each(&shared.plugins, &shared.codec, msg, opts, targets).await?;
        let (mut n, mut full, mut node_full) = (0, 0u64, 0u64);
        for (tx, bytes) in frames {
            match tx.try_send(bytes) {
                Ok(()) => n += 1,
                Err(SendError::NodeQueueFull) => node_full += 1,
                Err(SendError::QueueFull) => full += 1,
                Err(_) => {}
            }
        }
        if full + node_full > 0 {
            shared
                .counters
                .skipped
                .fetch_add(full + node_full, Ordering::Relaxed);
            tracing::warn!(
                slow_connections = full,
                skipped_for_node_budget = node_full,
                queued = n,
                "send queues full: message skipped for some connections"
            );
        }
        Ok(n)
    }

    /// Subscribe a connection to a key (any bytes; usually a uri).
    pub fn subscribe(
        &self,
        conn: ConnectionId,
        key: impl AsRef<[u8]>,
    ) -> Result<(), SubscribeError> {
        let mut reg = self.registry();
        if !reg.conns.contains_key(&conn) {
            return Err(SubscribeError::UnknownConnection);
        }
        reg.subs.subscribe(key.as_ref(), conn)
    }

    /// Remove a subscription; false if there was none (unlike Python, not an error).
    pub fn unsubscribe(&self, conn: ConnectionId, key: impl AsRef<[u8]>) -> bool {
        self.registry().subs.unsubscribe(key.as_ref(), conn)
    }

    /// The connections subscribed to a key.
    pub fn subscribers(&self, key: impl AsRef<[u8]>) -> Vec<ConnectionId> {
        self.registry().subs.subscribers(key.as_ref())
    }

    /// Send a message to every subscriber of `key` (sealed once unless a plugin is peer-specific).
    /// Returns how many queued it.
    pub async fn notify(&self, key: impl AsRef<[u8]>, msg: &Message) -> Result<usize, SendError> {
        self.notify_with(key, msg, &SendOptions::default()).await
    }

    /// [`notify`](Self::notify) with inner plugins and switches.
    pub async fn notify_with(
        &self,
        key: impl AsRef<[u8]>,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let targets: Vec<_> = {
            let reg = self.registry();
            reg.subs
                .subscribers(key.as_ref())
                .iter()
                .filter_map(|id| reg.conns.get(id))
                .map(ConnEntry::recipient)
                .collect()
        };
        self.fan_out(msg, opts, targets).await
    }

    /// Record the peer behind a connection (its id and data, for example public keys); plugins
    /// then receive it for that connection's messages. False if the connection is unknown.
    pub fn set_peer(&self, conn: ConnectionId, peer: Option<Peer>) -> bool {
        match self.registry().conns.get(&conn) {
            Some(c) => {
                c.peer_info.set(peer);
                true
            }
            None => false,
        }
    }

    /// The peer recorded for a connection.
    pub fn peer(&self, conn: ConnectionId) -> Option<Arc<Peer>> {
        self.registry()
            .conns
            .get(&conn)
            .and_then(|c| c.peer_info.get())
    }

    /// The connections now open.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let reg = self.registry();
        let mut v: Vec<_> = reg
            .conns
            .iter()
            .map(|(id, c)| ConnectionInfo {
                id: *id,
                peer: c.peer,
                subscriptions: {
                    let mut keys = reg.subs.keys_of(*id);
                    keys.sort();
                    keys
                },
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The bytes queued for one connection now (its share of
    /// [`ServerStats::queued_bytes`]); `None` if the connection is unknown.
    pub fn queued_bytes(&self, conn: ConnectionId) -> Option<usize> {
        self.registry()
            .conns
            .get(&conn)
            .map(|c| c.tx.queued_bytes())
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.registry().conns.len()
    }

    /// Close one connection gracefully: its in-flight handler may finish and its replies are
    /// flushed, within the shutdown timeout; after that the connection is aborted. False if unknown.
    pub fn disconnect(&self, conn: ConnectionId) -> bool {
        let abort = match self.registry().conns.get(&conn) {
            Some(c) => {
                c.cancel.cancel();
                c.abort.clone()
            }
            None => return false,
        };
        if let Some(abort) = abort {
            self.abort_after_grace(abort);
        }
        true
    }

    /// Abort a cancelled connection's task if it is still busy after the shutdown timeout.
    pub(super) fn abort_after_grace(&self, abort: tokio::task::AbortHandle) {
        let grace = self.shared.shutdown_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if !abort.is_finished() {
                tracing::warn!("disconnect: handler still busy after the grace period; aborting");
                abort.abort();
            }
        });
    }

    /// The client addresses whose messages this server refused (an auth check or decryption
    /// failed), the most recently refused first; the last 256 are remembered. Each is also
    /// logged at `WARN` (once a minute per address, a few lines per second in all), naming the
    /// address, the plugin and the reason.
    pub fn refusals(&self) -> Vec<crate::node::refusals::SourceRefusals> {
        self.shared
            .refusals
            .lock()
            .map(|t| t.snapshot())
            .unwrap_or_default()
    }

    /// What the server's limits have done so far, and the bytes its budgets hold now.
    pub fn stats(&self) -> ServerStats {
        let c = &self.shared.counters;
        let subscription_key_bytes = self.registry().subs.key_bytes();
        ServerStats {
            evicted: c.evicted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            queued_bytes: self.shared.queued.used(),
            subscription_key_bytes,
        }
    }

    /// Connection events from now on. A receiver that falls more than 256 events behind loses the
    /// oldest ones (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.shared.events.subscribe()
    }

    /// Start a graceful shutdown; `serve` returns when it is done.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// True once shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    runtime_routes!();
}

/// A snapshot of a server's limits at work, from [`ServerHandle::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections closed to make room for a new one on a full server (or at their source's
    /// limit), since the server started.
    pub evicted: u64,
    /// New connections refused because their source held `max_connections_per_ip`
    /// authenticated connections, since the server started.
    pub refused: u64,
    /// Messages of `broadcast`, `broadcast_to_peers` and `notify` not queued for a connection
    /// because its queue was full (a slow reader) or the server's budget for all queues was
    /// spent, since the server started.
    pub skipped: u64,
    /// Bytes in all connections' send queues now (at most `max_queued_bytes`).
    pub queued_bytes: usize,
    /// Key bytes of all subscriptions now, as the limit counts them (at most
    /// `max_total_subscription_bytes`).
    pub subscription_key_bytes: usize,
}
