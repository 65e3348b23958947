//! [`UdpHandle`]: send, request, subscribe and notify, stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::net::UdpSocket;

use super::node::*;
use crate::error::{RequestError, SendError, SubscribeError};
use crate::node::outbound::{self, Recipient};
use crate::node::subscriptions::Subscriptions;
use crate::peer::Peer;
use crate::plugin::SendOptions;
use crate::{Message, MessageType};

/// A cheap, cloneable handle to a [`UdpNode`](super::UdpNode). Handlers reach it through [`Context::udp`](crate::router::Context::udp).
#[derive(Clone)]
pub struct UdpHandle {
    pub(super) shared: Arc<UdpShared>,
}

impl std::fmt::Debug for UdpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpHandle")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl UdpHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// What the node has received and dropped so far.
    pub fn stats(&self) -> UdpStats {
        let c = &self.shared.counters;
        UdpStats {
            received: c.received.load(Ordering::Relaxed),
            invalid: c.invalid.load(Ordering::Relaxed),
            auth_failed: c.auth_failed.load(Ordering::Relaxed),
            decrypt_failed: c.decrypt_failed.load(Ordering::Relaxed),
            overloaded: c.overloaded.load(Ordering::Relaxed),
            replies: c.replies.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
        }
    }

    /// Stop the node: `serve` returns and waiting requests fail.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// The underlying socket (for socket options such as multicast membership).
    pub fn socket(&self) -> &Arc<UdpSocket> {
        &self.shared.socket
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

    fn subs(&self) -> std::sync::MutexGuard<'_, Subscriptions<SocketAddr>> {
        self.shared.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribe an address to a key.
    pub fn subscribe(&self, addr: SocketAddr, key: impl AsRef<[u8]>) -> Result<(), SubscribeError> {
        self.subs().subscribe(key.as_ref(), addr)
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

    /// The addresses subscribed to a key.
    pub fn subscribers(&self, key: impl AsRef<[u8]>) -> Vec<SocketAddr> {
        self.subs().subscribers(key.as_ref())
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
            return Err(RequestError::Closed);
        }
        self.shared
            .requests
            .exchange(
                addr,
                msg,
                opts.inner.clone(),
                opts.timeout,
                |msg| async move { self.send_request(addr, msg, opts).await },
            )
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
        let bytes = self.prepare_async(msg, opts, addr).await?;
        self.send_bytes(&bytes, addr).await
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
