//! The transport-independent node core: what a node does with messages whatever carries them.
//!
//! - [`builder`]: [`NodeBuilder`], the configuration every node kind shares, its setters written
//!   once (each transport's builder is a `NodeBuilder` of its own options);
//! - [`inbound`]: the inbound pipeline (instance plugins, request correlation, routing, inner
//!   plugins), the same for every transport;
//! - [`requests`]: the request table (random ids, bounds, reply matching, soft and hard deadlines
//!   as data), and on it late replies, calls with options and retries, hedged calls, adaptive
//!   timeouts, and the responder's at-most-once cache;
//! - [`subscriptions`]: who is subscribed to what, bounded per subscriber and in total;
//! - [`leases`]: subscriptions that expire unless renewed, the oldest evicted at the limit (UDP);
//! - [`routability`]: return routability (UDP): cookies, and the addresses that proved they
//!   receive;
//! - [`peers`]: peer management (the three handlers, the messages) and [`peer_timers`] (adverts
//!   and expiry as timer events), for every transport;
//! - [`outbound`]: sealing and encoding for one recipient or many (sealed once unless a plugin
//!   is peer-specific);
//!
//! Nothing here opens a socket or spawns a task; time comes in as `now`. The transports
//! (`tcp`, `udp`) are adapters that move frames between sockets and these pieces.

pub(crate) mod builder;
pub(crate) mod inbound;
pub(crate) mod leases;
pub(crate) mod outbound;
pub(crate) mod peer_timers;
pub(crate) mod peers;
pub(crate) mod refusals;
pub(crate) mod relay;
pub(crate) mod requests;
pub(crate) mod routability;
pub(crate) mod subscriptions;

pub use builder::NodeBuilder;

use std::future::Future;
use std::time::Duration;

/// The longest timeout honoured: a year. Longer ones (`Duration::MAX`) are clamped so that
/// `Instant + timeout` cannot overflow.
pub(crate) fn sane(t: Duration) -> Duration {
    t.min(Duration::from_secs(365 * 24 * 3600))
}

/// Poll `fut`, the cancellation future of `token`, for real only while it may not have
/// registered the task's waker: once it has returned `Pending` (`armed`), the waker stays
/// registered until the token is cancelled, and a look at the token's flag (set before the
/// waiters are woken) stands in for the poll, which costs a few hundred instructions (two
/// mutexes in tokio-util). For loops that poll the same cancellation future on every round.
pub(crate) fn poll_cancelled(
    token: &tokio_util::sync::CancellationToken,
    fut: std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
    armed: &mut bool,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<()> {
    if *armed && !token.is_cancelled() {
        return std::task::Poll::Pending;
    }
    let r = fut.poll(cx);
    *armed = r.is_pending();
    r
}
