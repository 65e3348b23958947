//! [`UdpNode`]: the node's shared state, its counters, and the receive loop that runs until
//! shutdown.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::multicast::Multicast;
use super::node_ops::SourceOps;
use super::{UdpHandle, UdpNodeBuilder};
use crate::codec::FrameCodec;
use crate::error::BindError;
use crate::node::leases::Leases;
use crate::node::peers::PeerManager;
use crate::node::refusals::RefusalTable;
use crate::node::requests::{Dedup, Requests};
use crate::node::routability::{CookieKey, VerifiedAddrs};
use crate::peer::PeerTable;
use crate::plugin::NodePlugins;
use crate::router::{Router, Routes};

/// Counters of what a node dropped; see [`UdpHandle::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams that did not decode (length, checksum, auth block, trailing bytes, …).
    pub invalid: u64,
    /// Datagrams refused by an auth check (the node's or a route's inner one).
    pub auth_failed: u64,
    /// Datagrams that failed decryption (the node's cipher or a route's inner one).
    pub decrypt_failed: u64,
    /// Datagrams dropped because too many handlers were running.
    pub overloaded: u64,
    /// Replies that matched a waiting request.
    pub replies: u64,
    /// Handlers that panicked (the node keeps serving).
    pub panicked: u64,
    /// Requests from unverified addresses answered with a cookie challenge instead of being
    /// handled (see [return routability](UdpNode#return-routability)).
    pub challenges: u64,
    /// Replies to unverified addresses that were larger than the datagram they answer: shortened
    /// (an error reply, to its type) or dropped.
    pub replies_limited: u64,
    /// Subscriptions refused because the datagram's source address was not verified.
    pub subscriptions_unverified: u64,
    /// Subscriptions evicted to make room at the node-wide limit (the least recently renewed).
    pub subscriptions_evicted: u64,
    /// Subscriptions expired because they were not renewed within the subscription TTL.
    pub subscriptions_expired: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) invalid: AtomicU64,
    pub(super) auth_failed: AtomicU64,
    pub(super) decrypt_failed: AtomicU64,
    pub(super) overloaded: AtomicU64,
    pub(super) replies: AtomicU64,
    pub(super) panicked: AtomicU64,
    pub(super) challenges: AtomicU64,
    pub(super) replies_limited: AtomicU64,
    pub(super) subscriptions_unverified: AtomicU64,
}

pub(super) struct UdpShared {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) local_addr: SocketAddr,
    pub(super) routes: Arc<Routes>,
    pub(super) codec: FrameCodec,
    pub(super) plugins: NodePlugins,
    pub(super) handlers: Arc<Semaphore>,
    pub(super) requests: Requests<SocketAddr>,
    /// Requests of peers that asked to run at most once, with their replies.
    pub(super) dedup: Dedup<SocketAddr>,
    pub(super) subs: Mutex<Leases<SocketAddr>>,
    /// Makes and checks this node's return-routability cookies.
    pub(super) cookies: CookieKey,
    /// Addresses that echoed a cookie, until their verification expires.
    pub(super) verified: Mutex<VerifiedAddrs>,
    /// The instance auth plugin authenticates senders: every datagram that passed it comes from
    /// a verified address.
    pub(super) outer_authenticates: bool,
    /// The reply to a message no route takes (a profile's: Python's has uri `ERROR`).
    pub(super) not_found: crate::Message,
    pub(super) counters: Counters,
    /// Refusals per source address, bounded; the refusal log's rate limit.
    pub(super) refusals: Mutex<RefusalTable>,
    pub(super) cancel: CancellationToken,
    /// Known peers (filled by peer management, or by [`Context::set_peer`]).
    pub(super) peers: PeerTable,
    /// Peer management, when enabled.
    pub(super) manager: Option<Arc<PeerManager>>,
    /// The joined multicast group, when configured.
    pub(super) multicast: Option<Multicast>,
    /// The relays this node reserved at or called through: their `DELIVER`s are taken.
    pub(super) relays: Mutex<super::relay_client::KnownRelays>,
    /// Requests relayed to this node that asked to run at most once, per sender: keyed by a
    /// hash (random keys, [`relay_senders`](Self::relay_senders)) of its relay address.
    pub(super) relay_dedup: Dedup<u64>,
    pub(super) relay_senders: std::hash::RandomState,
    /// The relay this node serves, if any (its reservations end when their peer leaves).
    pub(super) relay: Option<Arc<crate::node::relay::RelayCore<SocketAddr>>>,
}

/// A UDP node: receives datagrams and dispatches them to its router, sends and requests.
///
/// ```
/// use netaio::udp::UdpNode;
/// use netaio::{Message, MessageType, Router};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let router = Router::new().on((MessageType::REQUEST_URI, "time"), || async {
///     Message::respond("time", "12:00")
/// });
/// let server = UdpNode::builder().address(([127, 0, 0, 1], 0)).router(router).bind().await?;
/// let addr = server.local_addr();
/// let server_handle = server.handle();
/// tokio::spawn(server.serve());
///
/// let client = UdpNode::builder().address(([127, 0, 0, 1], 0)).bind().await?;
/// let handle = client.handle();
/// tokio::spawn(client.serve());
/// let reply = handle.call(addr, Message::new(MessageType::REQUEST_URI, "time", "")).await?;
/// assert_eq!(reply.content().as_ref(), b"12:00");
/// handle.shutdown();
/// server_handle.shutdown();
/// # Ok(()) }
/// ```
///
/// Handlers may be async (unlike on the Python node, where they never run); each runs in its own
/// task unless it completes at once, bounded by [`UdpNodeBuilder::max_handlers`].
///
/// # Return routability
///
/// A datagram's source address can be forged. A node that answered any address in full would let
/// anyone aim its replies at a victim, larger than what they sent: one 60 KB PUBLISH became
/// 60 MB of NOTIFY to 1,000 subscribed throwaway addresses, and a NOT_FOUND was 1.8 times the
/// smallest request. So the rule is: **a node never sends an address that has not proved it
/// receives more bytes than it received from it.** An address is verified by
///
/// - a datagram that passed an auth plugin that
///   [authenticates its sender](crate::plugin::AuthPlugin::authenticates_sender) (the node's, or
///   the route's inner one): [`HmacAuth`](crate::plugin::HmacAuth), `Ed25519Auth` with an
///   allow-list, `LegacyHmacAuth` with freshness checks. Each such datagram is verified by itself;
/// - a cookie round trip: a request (a datagram with a request id) from an unverified address
///   is not handled, nor even routed; it is answered with a **challenge**, and a caller of this
///   library sends it again with the cookie, once ([`UdpHandle::call`] does it, and gives up
///   with [`RequestError::NotPermitted`](crate::RequestError::NotPermitted) when challenged
///   twice). The address is then verified for
///   [`verification_ttl`](UdpNodeBuilder::verification_ttl) (5 minutes by default; at most
///   [`max_verified_addresses`](UdpNodeBuilder::max_verified_addresses) of them, 4,096).
///
/// The challenge is a NOT_PERMITTED reply with an empty uri and content, whose auth block holds
/// the reply reference (`rref`, the request's id) and the cookie (`ck`, 16 bytes): 39 bytes with
/// the native codec and a one-byte request id. The cookie is HMAC-SHA256, keyed with a secret
/// drawn at random when the node is bound, over the source address (IP and port) and a
/// 60-second time slot, truncated to 16 bytes; it is valid in its slot and the next, and the node
/// keeps no state for it (as DTLS and QUIC retry cookies). The caller echoes it in the auth field
/// `ck` ([`fields::COOKIE`](crate::message::fields::COOKIE)). The challenge is never larger than
/// the request it answers: a caller pads a request smaller than the challenge it could get (an
/// auth field `pad`, [`fields::PADDING`](crate::message::fields::PADDING)), and a request that is
/// still too small (not sent by this library) gets the challenge shortened to its type and reply
/// reference, which tells its caller only that it was not handled.
///
/// Until an address is verified:
///
/// - a datagram without a request id (a plain [`send`](UdpHandle::send), a Python node) is
///   handled, and its reply is sent only if it is no larger than the datagram: a larger error
///   reply is shortened to its type and reply reference, anything else is dropped (both counted in
///   [`UdpStats::replies_limited`] and logged at debug level);
/// - a handler's [`Context::subscribe`](crate::router::Context::subscribe) refuses the address
///   ([`SubscribeError::Unverified`](crate::SubscribeError::Unverified), counted in
///   [`UdpStats::subscriptions_unverified`]), and its `unsubscribe` and a `DISCONNECT`'s goodbye
///   leave subscriptions alone: from a forged address they would cancel another's;
/// - a datagram that came to the multicast group gets no answer at all (no reply, no NOT_FOUND,
///   no challenge): every member of the group would answer it. There, only authentication
///   counts: an address verified by a cookie round trip with this node is not answered either,
///   or one forged group datagram would have every member that verified it answer it.
///
/// UDP subscriptions are leases: each lasts the
/// [`subscription_ttl`](UdpNodeBuilder::subscription_ttl) (5 minutes) unless the subscriber
/// subscribes again; at most [`max_subscriptions`](UdpNodeBuilder::max_subscriptions) per address
/// (1,024) and [`max_total_subscriptions`](UdpNodeBuilder::max_total_subscriptions) in the node
/// (4,096), where a new one evicts the least recently renewed. Unverified sources cannot take any;
/// a verified one that fills the node only churns it, and the others come back when they renew.
///
/// What it does not do: a verified address stays verified for its TTL, so whoever can forge that
/// very address in the meantime gets full replies sent to it (to the node that proved it, not to
/// an arbitrary victim). Between nodes without auth, anyone on the path can still read, answer or
/// forge anything, challenges included: return routability stops amplification, not an attacker
/// who sees the traffic. Use an auth plugin for that.
#[derive(Debug)]
pub struct UdpNode {
    pub(super) handle: UdpHandle,
}

impl UdpNode {
    /// A builder with the defaults.
    pub fn builder() -> UdpNodeBuilder {
        UdpNodeBuilder::default()
    }

    /// Bind with the defaults.
    pub async fn bind(addr: impl Into<SocketAddr>, router: Router) -> Result<Self, BindError> {
        Self::builder().address(addr).router(router).bind().await
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.shared.local_addr
    }

    /// The socket's receive buffer as the kernel reports it; see
    /// [`UdpHandle::recv_buffer_size`].
    pub fn recv_buffer_size(&self) -> std::io::Result<usize> {
        self.handle.recv_buffer_size()
    }

    /// The socket's send buffer as the kernel reports it; see [`UdpHandle::send_buffer_size`].
    pub fn send_buffer_size(&self) -> std::io::Result<usize> {
        self.handle.send_buffer_size()
    }

    /// A handle to send, request and stop; cheap to clone.
    pub fn handle(&self) -> UdpHandle {
        self.handle.clone()
    }

    /// Receive and dispatch until [`UdpHandle::shutdown`] is called.
    pub async fn serve(self) {
        self.serve_with_shutdown(std::future::pending()).await;
    }

    /// Receive and dispatch until `signal` completes or [`UdpHandle::shutdown`] is called. Handlers
    /// still running then are left to finish on their own; waiting requests fail with
    /// [`RequestError::Closed`](crate::RequestError::Closed).
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) {
        let shared = self.handle.shared.clone();
        // The handlers' view of this node: made once, shared by every datagram's `Context`.
        let ops = SourceOps::new(&self.handle);
        let background = super::peers::start(&self.handle, &ops);
        let mut buf = vec![0u8; 65_536];
        tokio::pin!(signal);
        // Created once, polled for real only until it has registered the task's waker.
        let cancelled = shared.cancel.cancelled();
        tokio::pin!(cancelled);
        let mut cancel_armed = false;
        loop {
            let (len, src) = tokio::select! {
                () = std::future::poll_fn(|cx| {
                    crate::node::poll_cancelled(
                        &shared.cancel,
                        cancelled.as_mut(),
                        &mut cancel_armed,
                        cx,
                    )
                }) => break,
                () = &mut signal => break,
                r = shared.socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // ICMP errors from earlier sends surface here on some systems; keep going.
                        tracing::debug!(error = %e, "udp receive error");
                        continue;
                    }
                },
            };
            let datagram = Bytes::copy_from_slice(buf.get(..len).unwrap_or_default());
            self.handle.on_datagram(datagram, src, false, &ops);
        }
        shared.cancel.cancel();
        super::peers::stop(&self.handle, background).await;
        shared.requests.with(|t| t.fail_all(true));
        tracing::info!(addr = %shared.local_addr, "udp node stopped");
    }
}
