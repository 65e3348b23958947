//! The transport-independent node core: what a node does with messages whatever carries them.
//!
//! - [`requests`]: the request table (ids, bounds, reply matching, deadlines as data);
//! - [`subscriptions`]: who is subscribed to what, bounded per subscriber and in total;
//! - [`peers`]: peer management (the three handlers, the messages) and [`peer_timers`] (adverts
//!   and expiry as timer events), for every transport;
//! - [`outbound`]: sealing and encoding for one recipient or many (sealed once unless a plugin
//!   is peer-specific);
//!
//! Nothing here opens a socket or spawns a task; time comes in as `now`. The transports
//! (`tcp`, `udp`) are adapters that move frames between sockets and these pieces.

pub(crate) mod outbound;
pub(crate) mod peer_timers;
pub(crate) mod peers;
pub(crate) mod requests;
pub(crate) mod subscriptions;

use std::time::Duration;

/// The longest timeout honoured: a year. Longer ones (`Duration::MAX`) are clamped so that
/// `Instant + timeout` cannot overflow.
pub(crate) fn sane(t: Duration) -> Duration {
    t.min(Duration::from_secs(365 * 24 * 3600))
}
