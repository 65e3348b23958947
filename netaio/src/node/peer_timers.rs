//! [`PeerTimers`]: when a node with peer management wakes up (the next advert, the next peer to
//! expire) and what it does then. I/O-free: the transport sleeps until
//! [`poll_timeout`](PeerTimers::poll_timeout), then calls
//! [`handle_timeout`](PeerTimers::handle_timeout) with the time and acts on what it returns.
//!
//! Time is the peer table's clock (`std::time::Instant`, the clock of [`Peer::last_seen`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::peer::{Peer, PeerConfig, PeerTable};

/// Expiry is strict (silent for longer than the timeout): wake just after the deadline.
const AFTER_EXPIRY: Duration = Duration::from_millis(1);

/// The second advert follows the first after at most this long. Two nodes started within a few
/// milliseconds of each other each send their first advert before the other has joined the group,
/// so both miss it; without a repeat they would meet only at the next interval (5 s in the chat).
const STARTUP_REPEAT: Duration = Duration::from_secs(1);

/// What is due at a wake-up.
#[derive(Debug, Default)]
pub(crate) struct Due {
    /// Send an advert now.
    pub(crate) advertise: bool,
    /// Peers removed from the table for silence ([`PeerEvent::Expired`](crate::peer::PeerEvent)
    /// was sent for each): drop what the node keeps for them.
    pub(crate) expired: Vec<Arc<Peer>>,
}

/// The advert and expiry schedule of one node.
#[derive(Debug)]
pub(crate) struct PeerTimers {
    /// `None` when the node does not advertise on a schedule (no multicast group).
    next_advert: Option<Instant>,
    /// The first advert has been sent (the second follows within [`STARTUP_REPEAT`]).
    first_sent: bool,
}

impl PeerTimers {
    /// A schedule starting at `now`; the first advert, when `advertise`, is due at once, the
    /// second after at most [`STARTUP_REPEAT`], the others every jittered interval.
    pub(crate) fn new(advertise: bool, now: Instant) -> Self {
        Self {
            next_advert: advertise.then_some(now),
            first_sent: false,
        }
    }

    /// When to wake up next: the next advert or just after the next expiry, whichever is first.
    pub(crate) fn poll_timeout(&self, table: &PeerTable) -> Option<Instant> {
        let expiry = table.next_expiry().map(|t| t + AFTER_EXPIRY);
        match (self.next_advert, expiry) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        }
    }

    /// What is due at `now`: an advert (and when the next one is, with the config's jitter),
    /// and the peers that have expired (removed from `table`).
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        table: &PeerTable,
        config: &PeerConfig,
    ) -> Due {
        let advertise = self.next_advert.is_some_and(|t| t <= now);
        if advertise {
            let interval = config.next_interval();
            let wait = if self.first_sent {
                interval
            } else {
                interval.min(STARTUP_REPEAT)
            };
            self.first_sent = true;
            self.next_advert = Some(now + wait);
        }
        Due {
            advertise,
            expired: table.expire_at(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn adverts_are_due_at_once_then_after_a_second_then_every_jittered_interval() {
        let t0 = Instant::now();
        let config = PeerConfig::default()
            .advertise_interval(Duration::from_secs(10))
            .jitter(0.2);
        let table = PeerTable::new();
        let mut timers = PeerTimers::new(true, t0);
        assert_eq!(timers.poll_timeout(&table), Some(t0));
        let due = timers.handle_timeout(t0, &table, &config);
        assert!(due.advertise && due.expired.is_empty());
        // The start-up repeat: a node that started at the same moment hears this one.
        let t1 = t0 + STARTUP_REPEAT;
        assert_eq!(timers.poll_timeout(&table), Some(t1));
        assert!(timers.handle_timeout(t1, &table, &config).advertise);
        let next = timers.poll_timeout(&table).unwrap();
        let wait = next - t1;
        assert!(
            wait >= Duration::from_secs(8) && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        // Woken early (another timer, a spurious wake-up): nothing is due, nothing moves.
        let early = timers.handle_timeout(t1 + Duration::from_secs(1), &table, &config);
        assert!(!early.advertise);
        assert_eq!(timers.poll_timeout(&table), Some(next));
        assert!(timers.handle_timeout(next, &table, &config).advertise);
        let after = timers.poll_timeout(&table).unwrap() - next;
        assert!(after >= Duration::from_secs(8), "{after:?}");
    }

    #[test]
    fn a_short_interval_is_not_stretched_by_the_start_up_repeat() {
        let t0 = Instant::now();
        let config = PeerConfig::default()
            .advertise_interval(Duration::from_millis(200))
            .jitter(0.0);
        let table = PeerTable::new();
        let mut timers = PeerTimers::new(true, t0);
        assert!(timers.handle_timeout(t0, &table, &config).advertise);
        assert_eq!(
            timers.poll_timeout(&table),
            Some(t0 + Duration::from_millis(200))
        );
    }

    #[test]
    fn without_a_schedule_only_expiry_wakes_the_node() {
        let t0 = Instant::now();
        let config = PeerConfig::default();
        let table = PeerTable::new();
        let mut timers = PeerTimers::new(false, t0);
        assert_eq!(timers.poll_timeout(&table), None);
        assert!(!timers.handle_timeout(t0, &table, &config).advertise);
    }

    #[test]
    fn a_silent_peer_expires_just_after_its_timeout() {
        let t0 = Instant::now();
        let config = PeerConfig::default().peer_timeout(Duration::from_secs(60));
        let table = PeerTable::new();
        table.set_timeout(config.get_peer_timeout());
        table.observe_at(Peer::new("a"), addr(1), t0).unwrap();
        table
            .observe_at(Peer::new("b"), addr(2), t0 + Duration::from_secs(30))
            .unwrap();
        let mut timers = PeerTimers::new(false, t0);
        let wake = timers.poll_timeout(&table).unwrap();
        assert_eq!(wake, t0 + Duration::from_secs(60) + AFTER_EXPIRY);
        // At exactly the timeout the peer is not yet expired (strict), just after it is.
        let at = timers.handle_timeout(t0 + Duration::from_secs(60), &table, &config);
        assert!(at.expired.is_empty());
        let due = timers.handle_timeout(wake, &table, &config);
        assert_eq!(due.expired.len(), 1);
        assert_eq!(due.expired[0].id, "a");
        assert!(table.contains("b") && !table.contains("a"));
        // Next: b's expiry.
        assert_eq!(
            timers.poll_timeout(&table),
            Some(t0 + Duration::from_secs(90) + AFTER_EXPIRY)
        );
    }

    #[test]
    fn the_earlier_of_advert_and_expiry_is_the_next_wake_up() {
        let t0 = Instant::now();
        let config = PeerConfig::default()
            .advertise_interval(Duration::from_secs(20))
            .jitter(0.0)
            .peer_timeout(Duration::from_secs(5));
        let table = PeerTable::new();
        table.set_timeout(config.get_peer_timeout());
        let mut timers = PeerTimers::new(true, t0);
        timers.handle_timeout(t0, &table, &config);
        // Past the start-up repeat: adverts every 20 s from t1.
        let t1 = t0 + STARTUP_REPEAT;
        timers.handle_timeout(t1, &table, &config);
        assert_eq!(
            timers.poll_timeout(&table),
            Some(t1 + Duration::from_secs(20))
        );
        table.observe_at(Peer::new("a"), addr(1), t1).unwrap();
        assert_eq!(
            timers.poll_timeout(&table),
            Some(t1 + Duration::from_secs(5) + AFTER_EXPIRY)
        );
    }
}
