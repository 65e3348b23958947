//! [`Connection`]: one client connection to one server: send, request (matched to replies by
//! the connection's request table), receive, follow its state, reconnect, close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Reconnect;
use super::client::*;
use super::client_dispatch::ClientDispatch;
use super::driver::{self, CloseReason};
use super::send_queue::{self, ByteBudget, QueueReceiver, QueueSender};
use super::stream::Stream;
use crate::error::{PostcardCallError, ReceiveError, RequestError, SendError};
use crate::node::outbound;
use crate::node::requests::{Dedup, Limits, Requests};
use crate::peer::{Peer, PeerSlot};
use crate::plugin::SendOptions;
use crate::router::{Context, PeerLink};
use crate::{Message, MessageType};

pub(super) struct ConnShared {
    pub(super) peer: SocketAddr,
    pub(super) client: Arc<ClientShared>,
    pub(super) tx: QueueSender,
    /// Requests sent on this connection and waiting for replies.
    pub(super) requests: Requests<()>,
    /// Requests of the server that asked to run at most once, with their replies (kept across
    /// reconnects: a retry comes on the new connection).
    pub(super) dedup: Dedup<()>,
    /// The same for requests relayed to this connection, per sender: keyed by a hash (random
    /// keys, [`relay_senders`](Self::relay_senders)) of the sender's relay address.
    pub(super) relay_dedup: Dedup<u64>,
    pub(super) relay_senders: std::hash::RandomState,
    pub(super) connected: AtomicBool,
    pub(super) cancel: CancellationToken,
    pub(super) inbox: tokio::sync::Mutex<mpsc::Receiver<Message>>,
    /// The uri and content bytes of the messages in the inbox.
    pub(super) inbox_bytes: ByteBudget,
    pub(super) state: tokio::sync::watch::Sender<ConnectionState>,
    pub(super) peer_info: PeerSlot,
    /// The streams of [`Connection::subscribe`], by uri.
    pub(super) subscriptions: super::subscription::Subscriptions,
    /// A frame from the server decoded once: it speaks netaio.
    pub(super) heard: AtomicBool,
    /// A timeout with nothing heard from the server was logged (once per connection).
    pub(super) silent_warned: AtomicBool,
}

/// Where a client [`Connection`] is: [`Connection::state`] now, [`Connection::state_changes`] to
/// follow it, [`Connection::wait_connected`] to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected to the server.
    Connected,
    /// The connection dropped and the client is reconnecting (it has a [`Reconnect`] policy);
    /// requests fail at once meanwhile.
    Reconnecting {
        /// Why the connection dropped.
        reason: CloseReason,
    },
    /// Ended for good: closed locally, dropped without a reconnect policy, or reconnecting gave up.
    Closed {
        /// Why it ended (for a reconnecting connection that gave up: why it last dropped).
        reason: CloseReason,
    },
}

impl ConnectionState {
    /// True when connected.
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnectionState::Connected)
    }

    /// True once the connection has ended for good.
    pub fn is_closed(&self) -> bool {
        matches!(self, ConnectionState::Closed { .. })
    }
}

/// [`Connection::wait_connected`] found the connection ended for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection closed: {reason}")]
pub struct ConnectionClosed {
    /// Why it ended.
    pub reason: CloseReason,
}

/// One client connection to one server; cheap to clone. Requests sent on it are matched to their
/// replies by request id, so any number may be in flight, even for the same uri.
///
/// ```
/// use netaio::{Message, MessageType, RequestError, Router, TcpClient, TcpServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let router = Router::new().on((MessageType::REQUEST_URI, "echo"), |m: Message| async move {
///     Message::respond(m.uri().clone(), m.content().clone())
/// });
/// let server = TcpServer::bind(([127, 0, 0, 1], 0), router).await?;
/// let (addr, handle) = (server.local_addr(), server.handle());
/// tokio::spawn(server.serve());
///
/// let conn = TcpClient::new().connect(addr).await?;
/// assert_eq!(conn.request("echo", "hi").await?.content().as_ref(), b"hi");
/// // No route: a typed error, at once.
/// assert!(matches!(conn.request("nowhere", "").await, Err(RequestError::NotFound(_))));
/// conn.close().await;
/// handle.shutdown();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    pub(super) inner: Arc<ConnShared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.inner.peer)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Connection {
    /// Start the connection's task on `stream`, connected to `target` (where it reconnects).
    pub(super) fn start<S: Stream>(
        client: Arc<ClientShared>,
        stream: S,
        peer: SocketAddr,
        target: S::Target,
    ) -> Connection {
        let (tx, rx) = send_queue::channel(client.send_queue, client.send_queue_bytes, None);
        let (inbox_tx, inbox_rx) = mpsc::channel(client.inbox);
        let (state, _) = tokio::sync::watch::channel(ConnectionState::Connected);
        let conn = Connection {
            inner: Arc::new(ConnShared {
                peer,
                client: client.clone(),
                tx,
                requests: Requests::new(
                    Limits {
                        total: client.max_in_flight,
                        per_peer: client.max_in_flight,
                    },
                    client.matching,
                    client.request_timeout,
                    &client.requests,
                ),
                dedup: Dedup::new(client.requests.dedup),
                relay_dedup: Dedup::new(client.requests.dedup),
                relay_senders: std::hash::RandomState::new(),
                connected: AtomicBool::new(true),
                cancel: CancellationToken::new(),
                inbox: tokio::sync::Mutex::new(inbox_rx),
                inbox_bytes: ByteBudget::new(client.inbox_bytes),
                state,
                peer_info: PeerSlot::default(),
                subscriptions: Default::default(),
                heard: AtomicBool::new(false),
                silent_warned: AtomicBool::new(false),
            }),
        };
        let span = tracing::info_span!("client", server = ?target);
        let task_conn = conn.clone();
        tokio::spawn(
            async move {
                // However the task ends — normally, or by a panic in a client handler — the
                // connection is marked down, its waiting requests fail and `close()` returns.
                let _ended = Ended {
                    conn: task_conn.clone(),
                };
                task_conn.run(stream, target, rx, inbox_tx).await;
            }
            .instrument(span),
        );
        conn
    }

    async fn run<S: Stream>(
        self,
        mut stream: S,
        target: S::Target,
        mut rx: QueueReceiver,
        inbox: mpsc::Sender<Message>,
    ) {
        let client = self.inner.client.clone();
        let link = PeerLink {
            addr: self.inner.peer,
            link: 0,
        };
        let mut dispatch = ClientDispatch {
            ctx: Context::new(link, Arc::new(self.clone()), client.routes.state().clone()),
            conn: self.clone(),
            routes: client.routes.clone(),
            codec: client.codec.clone(),
            inbox,
            heard: false,
            garbled: None,
        };
        loop {
            let reason = driver::drive(
                stream,
                client.codec.clone(),
                &client.driver,
                &mut dispatch,
                &mut rx,
                &self.inner.cancel,
            )
            .await;
            self.inner.connected.store(false, Ordering::Release);
            // The server forgot this connection's subscriptions: their streams end.
            self.inner.subscriptions.clear();
            match dispatch.not_netaio(&reason) {
                Some(why) => {
                    tracing::warn!(%why, "the server does not speak netaio (bad header / checksum)");
                    self.inner
                        .requests
                        .with(|t| t.fail_all_with(false, || RequestError::NotNetaio(why.clone())));
                }
                None => self.fail_pending(false),
            }
            super::peers::connection_lost(&self);
            tracing::info!(%reason, "connection closed");
            let policy = client
                .reconnect
                .as_ref()
                .filter(|_| reason != CloseReason::Local && !self.inner.cancel.is_cancelled());
            let Some(policy) = policy else {
                self.fail_pending(true);
                self.set_state(ConnectionState::Closed { reason });
                return;
            };
            self.set_state(ConnectionState::Reconnecting {
                reason: reason.clone(),
            });
            match self.reconnect::<S>(policy, &target).await {
                Some(s) => {
                    stream = s;
                    self.inner.connected.store(true, Ordering::Release);
                    self.set_state(ConnectionState::Connected);
                    tracing::info!("reconnected");
                    super::peers::reconnected(&self);
                }
                None => {
                    self.fail_pending(true);
                    self.set_state(ConnectionState::Closed { reason });
                    return;
                }
            }
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.inner.state.send_replace(state);
    }

    async fn reconnect<S: Stream>(&self, policy: &Reconnect, target: &S::Target) -> Option<S> {
        let mut attempt = 0u32;
        loop {
            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                tracing::warn!(attempts = attempt, "giving up reconnecting");
                return None;
            }
            let delay = policy.delay(attempt);
            tokio::select! {
                () = self.inner.cancel.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            match S::connect(target, self.inner.client.connect_timeout).await {
                Ok(s) => return Some(s),
                Err(e) => tracing::debug!(error = %e, attempt, "reconnect failed"),
            }
            attempt = attempt.saturating_add(1);
        }
    }

    /// Fail every waiting request with [`RequestError::Closed`]; `for_good` refuses new ones.
    fn fail_pending(&self, for_good: bool) {
        self.inner.requests.with(|t| t.fail_all(for_good));
    }

    /// Record the server's peer (its id and data, for example public keys); plugins then receive it
    /// for this connection's messages.
    pub fn set_peer(&self, peer: Option<Peer>) {
        self.inner.peer_info.set(peer);
    }

    /// The server's peer, when recorded.
    pub fn peer(&self) -> Option<Arc<Peer>> {
        self.inner.peer_info.get()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// True while the connection is up (false while reconnecting and once closed).
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// True once the connection has ended for good.
    pub fn is_closed(&self) -> bool {
        self.inner.state.borrow().is_closed()
    }

    /// Where the connection is now.
    pub fn state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// Follow the connection's state: a `watch` receiver that sees every change (connected,
    /// reconnecting and why, closed and why).
    ///
    /// ```no_run
    /// # async fn f(conn: netaio::Connection) {
    /// let mut changes = conn.state_changes();
    /// while changes.changed().await.is_ok() {
    ///     println!("{:?}", *changes.borrow_and_update());
    /// }
    /// # }
    /// ```
    pub fn state_changes(&self) -> tokio::sync::watch::Receiver<ConnectionState> {
        self.inner.state.subscribe()
    }

    /// Wait until the connection is connected (at once if it is): after a drop, a reconnecting
    /// connection gets there when the server is back. Fails when the connection has ended for
    /// good (closed, dropped without a reconnect policy, or reconnecting gave up).
    ///
    /// ```no_run
    /// # async fn f(conn: netaio::Connection) -> Result<(), netaio::tcp::ConnectionClosed> {
    /// conn.wait_connected().await?;
    /// let reply = conn.request("echo", "hi").await;
    /// # Ok(()) }
    /// ```
    pub async fn wait_connected(&self) -> Result<(), ConnectionClosed> {
        let mut changes = self.inner.state.subscribe();
        let state = changes
            .wait_for(|s| s.is_connected() || s.is_closed())
            .await
            .map(|s| s.clone());
        match state {
            Ok(ConnectionState::Closed { reason }) => Err(ConnectionClosed { reason }),
            Ok(_) => Ok(()),
            // The sender lives in the connection, which `self` keeps alive.
            Err(_) => Err(ConnectionClosed {
                reason: CloseReason::Local,
            }),
        }
    }

    /// Seal (instance plugins as `opts` says, plus its inner plugins) and encode.
    pub(super) async fn prepare(
        &self,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Bytes, SendError> {
        let client = &self.inner.client;
        let peer = self.inner.peer_info.get();
        outbound::seal(
            &client.plugins,
            &client.codec,
            msg,
            opts,
            peer.as_deref(),
            Some(self.inner.peer),
        )
        .await
    }

    /// Queue a message (sealed with the instance plugins), waiting while the send queue is full.
    pub async fn send(&self, msg: &Message) -> Result<(), SendError> {
        self.send_with(msg, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(&self, msg: &Message, opts: &SendOptions) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        let bytes = self.prepare(msg.clone(), opts).await?;
        self.inner.tx.send(bytes).await
    }

    /// Queue a message without waiting ([`SendError::QueueFull`] when the queue is full). Plugins
    /// run inline, even a CPU-heavy one.
    pub fn try_send(&self, msg: &Message) -> Result<(), SendError> {
        self.try_send_with(msg, &SendOptions::default())
    }

    /// [`try_send`](Self::try_send) with inner plugins and the `use_auth` / `use_cipher`
    /// switches.
    pub fn try_send_with(&self, msg: &Message, opts: &SendOptions) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Closed);
        }
        self.queue_now(msg.clone(), opts)
    }

    /// Send a message with a fresh request id and wait for the reply (within the client's request
    /// timeout). Error replies become typed errors ([`RequestError::NotFound`], …).
    pub async fn call(&self, msg: Message) -> Result<Message, RequestError> {
        self.call_with(msg, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with its own timeout.
    pub async fn call_timeout(
        &self,
        msg: Message,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        self.call_with(msg, &SendOptions::default().timeout(timeout))
            .await
    }

    /// [`call`](Self::call) with options: inner plugins (the reply is opened with them too), the
    /// instance plugin switches and a timeout. A request that cannot leave (not connected, send
    /// queue full) fails at once with [`RequestError::Send`].
    pub async fn call_with(
        &self,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        if !self.is_connected() {
            return Err(SendError::Closed.into());
        }
        let requests = &self.inner.requests;
        let inner = opts.inner.clone();
        if self.inner.client.plugins.outer.is_blocking() || opts.inner.is_blocking() {
            // A CPU-heavy plugin seals on the blocking pool. Boxed: its state (the sealing task's
            // handle, the clones it takes) would otherwise size every call's future.
            let send = |msg| async move {
                let bytes = self.prepare(msg, opts).await?;
                self.queue(bytes)
            };
            let result = Box::pin(requests.exchange((), msg, inner, opts.timeout, send)).await;
            return self.checked(result);
        }
        // The usual case: seal, encode and queue inline, a future that is ready at once: a smaller
        // call future to build, move and poll (a pipelining caller pays for each, per request).
        let send = |msg| std::future::ready(self.queue_now(msg, opts));
        let result = requests.exchange((), msg, inner, opts.timeout, send).await;
        self.checked(result)
    }

    /// A call's result, looked at once for what a new user should be told (see
    /// [`timed_out`](Self::timed_out)).
    fn checked(&self, result: Result<Message, RequestError>) -> Result<Message, RequestError> {
        if let Err(RequestError::Timeout(_)) = &result {
            self.timed_out();
        }
        result
    }

    /// Seal inline (plugins that are not CPU-heavy) and encode in place at the end of the send
    /// queue's batch, without waiting: no buffer of its own per frame.
    fn queue_now(&self, msg: Message, opts: &SendOptions) -> Result<(), SendError> {
        let client = &self.inner.client;
        let peer = self.inner.peer_info.get();
        let sealed = client
            .plugins
            .seal_now(msg, opts, peer.as_deref(), Some(self.inner.peer))?;
        self.inner.tx.try_send_encoded(|buf| {
            client
                .codec
                .encode_message(&sealed, buf)
                .map_err(SendError::from)
        })
    }

    /// A request timed out: when the server never sent anything, say so once (a socket that
    /// accepts and never answers is not a slow netaio server).
    #[cold]
    fn timed_out(&self) {
        if !self.inner.heard.load(Ordering::Acquire)
            && !self.inner.silent_warned.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(
                server = %self.inner.peer,
                "no reply, and nothing at all received from the server since connecting: is it \
                 a netaio server, and is this its port?"
            );
        }
    }

    /// Queue a request's frame without waiting: a request that cannot leave fails at once.
    pub(super) fn queue(&self, bytes: Bytes) -> Result<(), SendError> {
        self.inner.tx.try_send(bytes)
    }

    /// REQUEST_URI; expects RESPOND_URI.
    pub async fn request(
        &self,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::REQUEST_URI, uri, content))
            .await
    }

    /// CREATE_URI; expects OK.
    pub async fn create(
        &self,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::CREATE_URI, uri, content))
            .await
    }

    /// A typed request: `req` serialized with postcard as the content of a REQUEST_URI to
    /// `uri`, and the reply's content deserialized as `Resp`, the client half of a handler
    /// taking [`Postcard<Req>`](crate::router::Postcard) and returning `Postcard<Resp>`.
    ///
    /// ```no_run
    /// # async fn f(conn: netaio::Connection) -> Result<(), netaio::PostcardCallError> {
    /// #[derive(serde::Serialize)]
    /// struct Add { a: u32, b: u32 }
    /// let sum: u32 = conn.call_postcard("add", &Add { a: 2, b: 3 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call_postcard<Req, Resp>(
        &self,
        uri: impl Into<Bytes>,
        req: &Req,
    ) -> Result<Resp, PostcardCallError>
    where
        Req: serde::Serialize + ?Sized,
        Resp: serde::de::DeserializeOwned,
    {
        let msg = PostcardCallError::request(uri, req)?;
        PostcardCallError::reply(self.call(msg).await?)
    }

    /// UPDATE_URI; expects OK.
    pub async fn update(
        &self,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::UPDATE_URI, uri, content))
            .await
    }

    /// DELETE_URI; expects OK.
    pub async fn delete(&self, uri: impl Into<Bytes>) -> Result<Message, RequestError> {
        self.call(Message::new(MessageType::DELETE_URI, uri, Bytes::new()))
            .await
    }

    /// The next message from the server that is neither a reply to a request nor taken by a
    /// handler, waiting as long as it takes.
    pub async fn receive_once(&self) -> Result<Message, ReceiveError> {
        let msg = self
            .inner
            .inbox
            .lock()
            .await
            .recv()
            .await
            .ok_or(ReceiveError::Closed)?;
        self.inner.inbox_bytes.give(inbox_size(&msg));
        Ok(msg)
    }

    /// [`receive_once`](Self::receive_once) with a timeout.
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Message, ReceiveError> {
        tokio::time::timeout(timeout, self.receive_once())
            .await
            .map_err(|_| ReceiveError::Timeout(timeout))?
    }

    /// Close gracefully: queued messages are written first. Waits until the connection has ended
    /// (at most the write timeout, so a client handler that never finishes cannot hang it).
    /// With peer management, a `DISCONNECT` is queued first.
    pub async fn close(&self) {
        super::peers::goodbye(self).await;
        self.inner.cancel.cancel();
        let mut done = self.inner.state.subscribe();
        // A client handler that never finishes must not hang `close` forever.
        let limit = self.inner.client.driver.write_timeout;
        if tokio::time::timeout(limit, done.wait_for(ConnectionState::is_closed))
            .await
            .is_err()
        {
            tracing::warn!("close: the connection did not end in time; giving up waiting");
        }
    }
}

/// What a message in the inbox counts against its byte budget.
pub(super) fn inbox_size(msg: &Message) -> usize {
    msg.uri().len() + msg.content().len()
}

/// Marks a connection as ended when its task ends, panics included.
pub(super) struct Ended {
    pub(super) conn: Connection,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.conn.inner.connected.store(false, Ordering::Release);
        self.conn.fail_pending(true);
        // Normally already closed with its reason; a panic in a client handler ends it here.
        self.conn.inner.state.send_if_modified(|s| {
            if s.is_closed() {
                return false;
            }
            *s = ConnectionState::Closed {
                reason: CloseReason::Io(
                    "the connection task ended (a client handler panicked)".into(),
                ),
            };
            true
        });
    }
}
