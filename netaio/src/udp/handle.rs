//! [`UdpHandle`]: send, request, subscribe and notify, stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::node::*;
use crate::error::{PostcardCallError, RequestError, SendError, SubscribeError};
use crate::message::fields;
use crate::node::leases::Leases;
use crate::node::outbound::{self, Recipient};
use crate::node::refusals::SourceRefusals;
use crate::node::routability::COOKIE_LEN;
use crate::node::routability::VerifiedAddrs;
use crate::peer::Peer;
use crate::plugin::SendOptions;
use crate::{Message, MessageType};

use super::receive::challenge_message;

/// A cheap, cloneable handle to a [`UdpNode`](super::UdpNode). Handlers reach it through [`Context::udp`](crate::router::Context::udp).
///
/// ```
/// use netaio::udp::UdpNode;
/// use netaio::{Message, MessageType, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let router = Router::new().on(MessageType::PUBLISH_URI, |m: Message| async move {
///     println!("got {:?}", m.content());
/// });
/// let node = UdpNode::builder().address(([127, 0, 0, 1], 0)).router(router).bind().await?;
/// let handle = node.handle(); // cloneable; usable from any task
/// let serving = tokio::spawn(node.serve());
/// handle.send(handle.local_addr(), &Message::new(MessageType::PUBLISH_URI, "news", "hi")).await?;
/// println!("{:?}", handle.stats());
/// handle.shutdown(); // `serve` returns
/// serving.await?;
/// # Ok(()) }
/// ```
pub struct UdpHandle {
    pub(super) shared: Arc<UdpShared>,
    /// False only in the node a handler sees through its [`Context`](crate::router::Context)
    /// when its datagram came from an unverified address: then the subscriptions stay as they
    /// are through [`NodeOps`](crate::router::NodeOps) (see `node_ops.rs`). A clone is never
    /// restricted.
    pub(super) source_verified: bool,
}

impl Clone for UdpHandle {
    /// The same node, unrestricted (see `source_verified`).
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.shared))
    }
}

impl std::fmt::Debug for UdpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpHandle")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl UdpHandle {
    pub(super) fn new(shared: Arc<UdpShared>) -> Self {
        Self {
            shared,
            source_verified: true,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// What the node has received and dropped so far.
    pub fn stats(&self) -> UdpStats {
        let c = &self.shared.counters;
        let (evicted, expired) = {
            let subs = self.subs();
            (subs.evicted(), subs.expired())
        };
        UdpStats {
            received: c.received.load(Ordering::Relaxed),
            invalid: c.invalid.load(Ordering::Relaxed),
            auth_failed: c.auth_failed.load(Ordering::Relaxed),
            decrypt_failed: c.decrypt_failed.load(Ordering::Relaxed),
            overloaded: c.overloaded.load(Ordering::Relaxed),
            replies: c.replies.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
            challenges: c.challenges.load(Ordering::Relaxed),
            replies_limited: c.replies_limited.load(Ordering::Relaxed),
            subscriptions_unverified: c.subscriptions_unverified.load(Ordering::Relaxed),
            subscriptions_evicted: evicted,
            subscriptions_expired: expired,
        }
    }

    /// The sources whose datagrams this node refused (an auth check or decryption failed), the
    /// most recently refused first: how many, why the last one was, and which plugin refused it.
    /// The node remembers the last 256 sources. Each is also logged at `WARN` (once a minute per
    /// source, a few lines per second in all), naming the source, the plugin and the reason.
    pub fn refusals(&self) -> Vec<SourceRefusals> {
        self.shared
            .refusals
            .lock()
            .map(|t| t.snapshot())
            .unwrap_or_default()
    }

    /// Stop the node: `serve` returns and waiting requests fail. With peer management, `serve`
    /// multicasts `DISCONNECT` (within a second) before it returns: await the task running it
    /// before the program ends, or the others learn of the departure only when the peer expires.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// The underlying socket (for socket options such as multicast membership).
    pub fn socket(&self) -> &Arc<UdpSocket> {
        &self.shared.socket
    }

    /// The socket's receive buffer, bytes, as the kernel reports it (`getsockopt(SO_RCVBUF)`):
    /// the size [`UdpNodeBuilder::recv_buffer_size`](super::UdpNodeBuilder::recv_buffer_size)
    /// asked for as granted (capped at `net.core.rmem_max` on Linux), or the kernel's default.
    /// Linux reports **twice** the size set (it counts its bookkeeping in the buffer): 1 MiB
    /// asked reads 2 MiB; its default (`net.core.rmem_default`) is reported as it is.
    pub fn recv_buffer_size(&self) -> std::io::Result<usize> {
        socket2::SockRef::from(&*self.shared.socket).recv_buffer_size()
    }

    /// The socket's send buffer, bytes, as the kernel reports it (`getsockopt(SO_SNDBUF)`); see
    /// [`recv_buffer_size`](Self::recv_buffer_size) (the cap is `net.core.wmem_max`).
    pub fn send_buffer_size(&self) -> std::io::Result<usize> {
        socket2::SockRef::from(&*self.shared.socket).send_buffer_size()
    }

    /// The known peer at `addr`, when plugins will run (they are the only readers).
    pub(super) fn peer_for(&self, addr: SocketAddr, plugins_run: bool) -> Option<Arc<Peer>> {
        if plugins_run {
            self.shared.peers.by_addr(addr)
        } else {
            None
        }
    }

    fn seals(&self, opts: &SendOptions) -> bool {
        !opts.inner.is_empty() || !self.shared.plugins.outer.is_empty()
    }

    pub(super) async fn prepare_async(
        &self,
        msg: Message,
        opts: &SendOptions,
        addr: SocketAddr,
    ) -> Result<Bytes, SendError> {
        let peer = self.peer_for(addr, self.seals(opts));
        let shared = &self.shared;
        outbound::seal(
            &shared.plugins,
            &shared.codec,
            msg,
            opts,
            peer.as_deref(),
            Some(addr),
        )
        .await
    }

    pub(super) async fn send_bytes(&self, bytes: &[u8], addr: SocketAddr) -> Result<(), SendError> {
        self.shared.socket.send_to(bytes, addr).await?;
        Ok(())
    }

    /// Send a message (sealed with the instance plugins) to `addr`. A frame larger than a datagram
    /// can carry is refused with [`SendError::Encode`].
    pub async fn send(&self, addr: SocketAddr, msg: &Message) -> Result<(), SendError> {
        self.send_with(addr, msg, &SendOptions::default()).await
    }

    /// [`send`](Self::send) with inner plugins and the `use_auth` / `use_cipher` switches.
    pub async fn send_with(
        &self,
        addr: SocketAddr,
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let bytes = self.prepare_async(msg.clone(), opts, addr).await?;
        self.send_bytes(&bytes, addr).await
    }

    /// Send to many addresses: sealed once unless a plugin is peer-specific. Returns how many sends
    /// succeeded; failures are logged.
    pub async fn send_many(
        &self,
        addrs: &[SocketAddr],
        msg: &Message,
        opts: &SendOptions,
    ) -> Result<usize, SendError> {
        let plugins_run = self.seals(opts);
        let recipients = addrs
            .iter()
            .map(|a| Recipient {
                to: *a,
                addr: *a,
                peer: self.peer_for(*a, plugins_run),
            })
            .collect();
        let shared = &self.shared;
        let frames =
            outbound::seal_each(&shared.plugins, &shared.codec, msg, opts, recipients).await?;
        let mut n = 0;
        for (addr, bytes) in frames {
            match self.send_bytes(&bytes, addr).await {
                Ok(()) => n += 1,
                Err(e) => tracing::debug!(%addr, error = %e, "udp send failed"),
            }
        }
        Ok(n)
    }

    fn subs(&self) -> std::sync::MutexGuard<'_, Leases<SocketAddr>> {
        self.shared.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn verified(&self) -> std::sync::MutexGuard<'_, VerifiedAddrs> {
        self.shared
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Count and log a handler's subscription refused for an unverified source.
    pub(super) fn refused_unverified_subscription(&self, addr: SocketAddr) {
        self.shared
            .counters
            .subscriptions_unverified
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = %addr, "subscription from an unverified address refused");
    }

    /// Subscribe an address to a key, or renew its subscription (it lasts the
    /// [`subscription_ttl`](super::UdpNodeBuilder::subscription_ttl) from now). At the node-wide
    /// limit the least recently renewed subscription is evicted to make room; beyond the
    /// per-address limit, [`SubscribeError::Limit`].
    ///
    /// The application vouches for `addr` here: it counts whether or not the address is verified.
    /// A handler that subscribes a datagram's sender calls
    /// [`Context::subscribe`](crate::router::Context::subscribe) instead, which refuses an
    /// unverified one.
    pub fn subscribe(&self, addr: SocketAddr, key: impl AsRef<[u8]>) -> Result<(), SubscribeError> {
        self.subs().subscribe(key.as_ref(), addr, Instant::now())
    }

    /// Remove a subscription; false if there was none.
    pub fn unsubscribe(&self, addr: SocketAddr, key: impl AsRef<[u8]>) -> bool {
        self.subs().unsubscribe(key.as_ref(), addr)
    }

    /// Remove every subscription of an address (for example when a peer leaves).
    pub fn unsubscribe_all(&self, addr: SocketAddr) -> usize {
        self.subs().remove_subscriber(addr)
    }

    /// How many keys have subscribers.
    pub fn subscription_keys(&self) -> usize {
        self.subs().key_count()
    }

    /// The addresses subscribed to a key (whose subscriptions have not expired).
    pub fn subscribers(&self, key: impl AsRef<[u8]>) -> Vec<SocketAddr> {
        self.subs().subscribers(key.as_ref(), Instant::now())
    }

    /// Send a message to every subscriber of `key` (sealed once unless a plugin is peer-specific).
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
        let addrs = self.subscribers(key);
        self.send_many(&addrs, msg, opts).await
    }

    /// Send a message with a fresh request id to `addr` and wait for the reply (within the node's
    /// request timeout). Error replies become typed errors. Only a reply from `addr` is accepted.
    pub async fn call(&self, addr: SocketAddr, msg: Message) -> Result<Message, RequestError> {
        self.call_with(addr, msg, &SendOptions::default()).await
    }

    /// [`call`](Self::call) with inner plugins (the reply is opened with them too), switches and a
    /// timeout. A request that cannot leave (a plugin cannot seal it, it does not fit a
    /// datagram, the socket refuses it) fails at once with [`RequestError::Send`].
    pub async fn call_with(
        &self,
        addr: SocketAddr,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Message, RequestError> {
        if self.shared.cancel.is_cancelled() {
            return Err(SendError::Stopped.into());
        }
        let started = Instant::now();
        // The call's timeout, the node's, or the adaptive estimate: one budget for the whole
        // call, a challenge's round trip included.
        let (timeout, _) = self
            .shared
            .requests
            .timeouts(addr, &msg, opts.timeout, Some(None));
        // A fresh message clones without allocating (no auth fields yet; the body is shared).
        let first = self.exchange(addr, msg.clone(), opts, Some(timeout)).await;
        let cookie = match &first {
            Err(RequestError::NotPermitted(reply)) => reply.auth.get(fields::COOKIE).cloned(),
            _ => None,
        };
        let Some(cookie) = cookie else {
            return first;
        };
        // A return-routability challenge: the peer did not handle the request, as this address
        // has not proved that it receives. Send it again with the cookie, once, within what is
        // left of the timeout.
        tracing::debug!(peer = %addr, "challenged: the request goes again with the cookie");
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(RequestError::Timeout(timeout));
        }
        let mut msg = msg;
        msg.auth.insert_static(fields::COOKIE, cookie);
        match self.exchange(addr, msg, opts, Some(left)).await {
            Err(RequestError::Timeout(_)) => Err(RequestError::Timeout(timeout)),
            other => other,
        }
    }

    /// One request and its reply (or timeout; `None`: the node's, or its adaptive estimate).
    async fn exchange(
        &self,
        addr: SocketAddr,
        msg: Message,
        opts: &SendOptions,
        timeout: Option<std::time::Duration>,
    ) -> Result<Message, RequestError> {
        self.shared
            .requests
            .exchange(addr, msg, opts.inner.clone(), timeout, |msg| async move {
                self.send_request(addr, msg, opts).await
            })
            .await
    }

    /// Seal a request and hand it to the socket. A UDP node has no send queue of its own: the
    /// socket takes the datagram or refuses it at once (no route, unreachable network; waiting
    /// for room in its buffer is the kernel's affair and brief, so it is not a failure).
    pub(super) async fn send_request(
        &self,
        addr: SocketAddr,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<(), SendError> {
        let mut msg = msg;
        self.pad_for_challenge(&mut msg);
        let bytes = self.prepare_async(msg, opts, addr).await?;
        self.send_bytes(&bytes, addr).await
    }

    /// Pad a request (its request id set) that is smaller than the challenge a peer would answer
    /// it with, so that the peer can: a node never sends an unverified address more bytes than
    /// it received from it, and without a challenge, this node could never prove its address.
    /// Not needed with an instance auth plugin that authenticates senders (nor done: such a
    /// request is verified by itself, and large anyway); small requests only (a larger body
    /// always leaves room), so that the common case costs one comparison.
    fn pad_for_challenge(&self, msg: &mut Message) {
        let body = msg.uri().len() + msg.content().len();
        self.pad_body_for_challenge(msg, body);
    }

    /// [`pad_for_challenge`](Self::pad_for_challenge) for a message whose body will be at
    /// least `body` bytes (an envelope, whose inner frame is added when it is encoded).
    pub(super) fn pad_body_for_challenge(&self, msg: &mut Message, body: usize) {
        /// A body at least this large leaves room for any challenge.
        const ROOMY: usize = 256;
        if self.shared.outer_authenticates || body >= ROOMY {
            return;
        }
        let Some(rid) = msg.request_id() else {
            return;
        };
        let codec = self.shared.codec.auth_codec();
        let block = |fields: &crate::message::AuthFields| {
            let mut buf = bytes::BytesMut::new();
            codec.encode(fields, &mut buf).map(|()| buf.len()).ok()
        };
        let challenge = challenge_message(rid, [0; COOKIE_LEN]);
        let (Some(need), Some(have)) = (block(&challenge.auth), block(&msg.auth)) else {
            return;
        };
        // Both frames have the same header and plugins; the challenge's body is empty.
        let have = have + body;
        if have < need {
            msg.auth
                .insert_static(fields::PADDING, Bytes::from(vec![0u8; need - have]));
        }
    }

    /// A typed request to `addr`: `req` serialized with postcard as the content of a
    /// REQUEST_URI to `uri`, and the reply's content deserialized as `Resp` (see
    /// [`Connection::call_postcard`](crate::Connection::call_postcard)).
    pub async fn call_postcard<Req, Resp>(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        req: &Req,
    ) -> Result<Resp, PostcardCallError>
    where
        Req: serde::Serialize + ?Sized,
        Resp: serde::de::DeserializeOwned,
    {
        let msg = PostcardCallError::request(uri, req)?;
        PostcardCallError::reply(self.call(addr, msg).await?)
    }

    /// REQUEST_URI to `addr`; expects RESPOND_URI (or OK).
    pub async fn request(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(addr, Message::new(MessageType::REQUEST_URI, uri, content))
            .await
    }

    /// CREATE_URI to `addr`.
    pub async fn create(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(addr, Message::new(MessageType::CREATE_URI, uri, content))
            .await
    }

    /// UPDATE_URI to `addr`.
    pub async fn update(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(addr, Message::new(MessageType::UPDATE_URI, uri, content))
            .await
    }

    /// DELETE_URI to `addr`.
    pub async fn delete(
        &self,
        addr: SocketAddr,
        uri: impl Into<Bytes>,
    ) -> Result<Message, RequestError> {
        self.call(
            addr,
            Message::new(MessageType::DELETE_URI, uri, Bytes::new()),
        )
        .await
    }

    runtime_routes!();
}
