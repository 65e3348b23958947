//! [`Freshness`]: the timestamp window and the bounded replay cache shared by the auth plugins.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::AuthError;
use super::replay_cache::{Limits, ReplayCache};

/// A clock: seconds since the Unix epoch. Inject one with [`Freshness::clock`] in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Rejects stale timestamps and replayed nonces, with a replay cache bounded in memory.
///
/// - A timestamp (seconds since the Unix epoch) is *fresh* when it is within `window` of this
///   node's clock, in either direction: `|ts - now| <= window` (default ±60 s; sub-second parts of
///   the window are ignored).
/// - [`accept`](Self::accept) records the nonce of a fresh message and refuses a nonce it has seen
///   before. A nonce is remembered until its timestamp leaves the window (`ts + window < now`):
///   after that, the timestamp check alone refuses the message, so forgetting it is safe.
/// - The cache holds at most [`capacity`](Self::capacity) nonces (default 65,536). Each nonce
///   belongs to a *sender*: an identity the MAC or signature covers, passed to
///   [`accept_from`](Self::accept_from) (`HmacAuth`: the sending node's id; `Ed25519Auth`: the
///   signing key; [`accept`](Self::accept): one unknown sender for all). When the cache is full,
///   the **heaviest sender** (the one holding the most nonces) forgets its oldest second of
///   nonces, and that sender's *floor* rises past it: from then on its timestamps at or below that
///   second are refused as stale. A replay of a forgotten nonce carries the same sender, so it is
///   still refused; memory stays bounded; under load the heaviest sender's window into the past
///   narrows (to about `capacity ÷ rate` seconds), so a node sustains up to `capacity`
///   authenticated messages per second, and a peer sending faster than that narrows only its own
///   window: the other peers are never refused because of it. Only when the message's own sender
///   is the heaviest and holds nothing older than the message's second is the message refused,
///   with [`AuthError::CacheFull`].
/// - [`per_sender`](Self::per_sender) optionally caps one sender below the capacity (the same
///   rule, applied when the sender reaches its cap).
///
/// Call `accept` only **after** the MAC or signature has verified, so that unauthenticated traffic
/// cannot fill the cache. Nonces longer than [`MAX_NONCE_LEN`](Self::MAX_NONCE_LEN) bytes are
/// refused, which bounds the cache's memory to about `capacity × (MAX_NONCE_LEN + 120)` bytes.
///
/// `Freshness` is shared between connections by reference (`&self`, a mutex inside). It is not
/// `Clone` on purpose: two copies would keep two caches and accept each replay once more.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use netaio::plugin::{AuthError, Freshness};
///
/// let fresh = Freshness::new(Duration::from_secs(60))
///     .capacity(1000)
///     .clock(Arc::new(|| 1_700_000_000));
/// assert_eq!(fresh.accept(1_700_000_010, b"nonce-1"), Ok(()));
/// assert_eq!(fresh.accept(1_700_000_010, b"nonce-1"), Err(AuthError::Replay));
/// assert!(matches!(fresh.accept(1_699_999_000, b"nonce-2"), Err(AuthError::Stale { .. })));
/// ```
pub struct Freshness {
    window: u64,
    capacity: usize,
    per_sender: usize,
    clock: Clock,
    cache: Mutex<ReplayCache>,
}

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Default for Freshness {
    /// A ±60 s window and a cache of 65,536 nonces, on the system clock.
    fn default() -> Self {
        Self::new(Self::DEFAULT_WINDOW)
    }
}

impl fmt::Debug for Freshness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Freshness")
            .field("window_secs", &self.window)
            .field("capacity", &self.capacity)
            .field("per_sender", &self.per_sender)
            .field("cached", &self.len())
            .finish_non_exhaustive()
    }
}

impl Freshness {
    /// The default window: ±60 s.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    /// The default replay cache capacity: 65,536 nonces.
    pub const DEFAULT_CAPACITY: usize = 65_536;
    /// The longest nonce [`accept`](Self::accept) stores: 64 bytes.
    pub const MAX_NONCE_LEN: usize = 64;
    /// The longest sender identity [`accept_from`](Self::accept_from) takes: 64 bytes.
    pub const MAX_SENDER_LEN: usize = 64;

    /// Timestamps within ±`window` of the system clock are fresh; default capacity.
    pub fn new(window: Duration) -> Self {
        Self {
            window: window.as_secs(),
            capacity: Self::DEFAULT_CAPACITY,
            per_sender: usize::MAX,
            clock: Arc::new(system_clock),
            cache: Mutex::new(ReplayCache::default()),
        }
    }

    /// Room for at least `n` nonces, at least 1 (default
    /// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY), 65,536).
    #[must_use]
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Room for at most `n` nonces of one sender, at least 1 (default: no cap below the
    /// capacity). A sender at its cap forgets its own oldest second of nonces and refuses that
    /// second as stale from then on, as the heaviest sender does when the cache is full.
    #[must_use]
    pub fn per_sender(mut self, n: usize) -> Self {
        self.per_sender = n.max(1);
        self
    }

    /// This clock instead of the system clock (the default), in seconds since the Unix epoch; for
    /// tests.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// use netaio::plugin::Freshness;
    ///
    /// let now = Arc::new(AtomicU64::new(1_000));
    /// let clock = now.clone();
    /// let fresh = Freshness::default().clock(Arc::new(move || clock.load(Ordering::Relaxed)));
    /// assert!(fresh.check_time(1_000).is_ok());
    /// now.store(1_061, Ordering::Relaxed);
    /// assert!(fresh.check_time(1_000).is_err());
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The window, in whole seconds.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window)
    }

    /// The replay cache's capacity.
    pub fn max_entries(&self) -> usize {
        self.capacity
    }

    /// The quota of one sender in effect: the smaller of [`per_sender`](Self::per_sender) and the
    /// capacity.
    pub fn max_per_sender(&self) -> usize {
        self.per_sender.min(self.capacity)
    }

    /// The number of nonces currently remembered (expired ones included until the next `accept`).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This node's clock: seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, ReplayCache> {
        // The cache stays consistent even if a holder panicked (each step is a single insert or
        // remove), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Check that `ts` is within the window around [`now`](Self::now); [`AuthError::Stale`]
    /// otherwise. Records nothing.
    pub fn check_time(&self, ts: u64) -> Result<(), AuthError> {
        let now = self.now();
        if ts.abs_diff(now) > self.window {
            return Err(AuthError::Stale { ts, now });
        }
        Ok(())
    }

    /// Check the timestamp, then record the nonce: [`AuthError::Stale`] for a timestamp outside the
    /// window, [`AuthError::Replay`] for a nonce already seen within the window,
    /// [`AuthError::CacheFull`] when the cache is full of nonces from this second or later (a full
    /// cache otherwise forgets its oldest second and refuses it from then on), [`AuthError::Other`] for a
    /// nonce longer than [`MAX_NONCE_LEN`](Self::MAX_NONCE_LEN).
    ///
    /// The sender is unknown here: every caller of `accept` is the same sender, so when the cache
    /// is full it is full for all of them. Prefer [`accept_from`](Self::accept_from) when the
    /// message names its sender. Call it only after the message's MAC or signature verified.
    pub fn accept(&self, ts: u64, nonce: &[u8]) -> Result<(), AuthError> {
        self.accept_from(&[], ts, nonce)
    }

    /// [`accept`](Self::accept) for a nonce from `sender`: an identity the MAC or signature just
    /// verified (a sender id inside the authenticated message, a public key), at most
    /// [`MAX_SENDER_LEN`](Self::MAX_SENDER_LEN) bytes. When the cache is full, the sender holding
    /// the most nonces makes room (see the type's documentation), so a sender that sends faster
    /// than the others cannot have their messages refused. A replay is refused whichever sender
    /// it claims. An empty `sender` is the unknown sender of `accept`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use netaio::plugin::{AuthError, Freshness};
    ///
    /// let fresh = Freshness::new(Duration::from_secs(60))
    ///     .capacity(3)
    ///     .clock(Arc::new(|| 1_000));
    /// // A busy sender fills the cache within one second: its next nonce of that second is
    /// // refused,
    /// for nonce in [b"1", b"2", b"3"] {
    ///     fresh.accept_from(b"busy", 1_000, nonce).unwrap();
    /// }
    /// assert_eq!(fresh.accept_from(b"busy", 1_000, b"4"), Err(AuthError::CacheFull));
    /// // but another sender is served: the busy one forgets its second and refuses it from now on.
    /// assert_eq!(fresh.accept_from(b"calm", 1_000, b"5"), Ok(()));
    /// assert!(matches!(fresh.accept_from(b"busy", 1_000, b"1"), Err(AuthError::Stale { .. })));
    /// // A replay is a replay whoever claims it.
    /// assert_eq!(fresh.accept_from(b"busy", 1_000, b"5"), Err(AuthError::Replay));
    /// ```
    pub fn accept_from(&self, sender: &[u8], ts: u64, nonce: &[u8]) -> Result<(), AuthError> {
        if nonce.len() > Self::MAX_NONCE_LEN {
            return Err(AuthError::Other(format!(
                "nonce of {} bytes is longer than {}",
                nonce.len(),
                Self::MAX_NONCE_LEN
            )));
        }
        if sender.len() > Self::MAX_SENDER_LEN {
            return Err(AuthError::Other(format!(
                "sender id of {} bytes is longer than {}",
                sender.len(),
                Self::MAX_SENDER_LEN
            )));
        }
        let now = self.now();
        if ts.abs_diff(now) > self.window {
            return Err(AuthError::Stale { ts, now });
        }
        let limits = Limits {
            window: self.window,
            capacity: self.capacity,
            per_sender: self.max_per_sender(),
            now,
        };
        self.lock().insert(limits, sender, ts, nonce)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    const T0: u64 = 1_700_000_000;

    fn at(now: &Arc<AtomicU64>) -> Clock {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    }

    fn fresh(window: u64, cap: usize) -> (Freshness, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(T0));
        let f = Freshness::new(Duration::from_secs(window))
            .capacity(cap)
            .clock(at(&now));
        (f, now)
    }

    #[test]
    fn defaults() {
        let f = Freshness::default();
        assert_eq!(f.window(), Duration::from_secs(60));
        assert_eq!(f.max_entries(), 65_536);
        assert!(f.is_empty());
        // The system clock is after 2020.
        assert!(f.now() > 1_577_836_800);
    }

    #[test]
    fn window_is_inclusive_both_ways() {
        let (f, _) = fresh(60, 10);
        assert_eq!(f.check_time(T0), Ok(()));
        assert_eq!(f.check_time(T0 - 60), Ok(()));
        assert_eq!(f.check_time(T0 + 60), Ok(()));
        assert_eq!(
            f.check_time(T0 - 61),
            Err(AuthError::Stale {
                ts: T0 - 61,
                now: T0
            })
        );
        assert_eq!(
            f.check_time(T0 + 61),
            Err(AuthError::Stale {
                ts: T0 + 61,
                now: T0
            })
        );
        assert!(f.check_time(0).is_err());
        assert!(f.check_time(u64::MAX).is_err());
    }

    #[test]
    fn configurable_window() {
        let (f, _) = fresh(5, 10);
        assert!(f.check_time(T0 - 5).is_ok());
        assert!(f.check_time(T0 - 6).is_err());
        assert!(f.accept(T0 + 6, b"n").is_err());
    }

    #[test]
    fn check_time_records_nothing() {
        let (f, _) = fresh(60, 10);
        f.check_time(T0).unwrap();
        assert!(f.is_empty());
        f.accept(T0, b"n").unwrap();
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn replay_within_window_rejected() {
        let (f, now) = fresh(60, 10);
        assert_eq!(f.accept(T0, b"abc"), Ok(()));
        assert_eq!(f.accept(T0, b"abc"), Err(AuthError::Replay));
        // Same nonce with another (fresh) timestamp is still a replay.
        assert_eq!(f.accept(T0 + 30, b"abc"), Err(AuthError::Replay));
        now.store(T0 + 60, Ordering::SeqCst);
        assert_eq!(f.accept(T0, b"abc"), Err(AuthError::Replay));
        // Other nonces pass.
        assert_eq!(f.accept(T0, b"abd"), Ok(()));
    }

    #[test]
    fn stale_rejected_and_not_recorded() {
        let (f, _) = fresh(60, 10);
        assert!(matches!(
            f.accept(T0 - 100, b"x"),
            Err(AuthError::Stale { .. })
        ));
        assert!(f.is_empty());
    }

    #[test]
    fn entry_lives_until_its_timestamp_leaves_the_window() {
        let (f, now) = fresh(60, 10);
        f.accept(T0, b"a").unwrap();
        f.accept(T0 + 50, b"b").unwrap();
        now.store(T0 + 60, Ordering::SeqCst);
        f.accept(T0 + 60, b"c").unwrap();
        assert_eq!(f.len(), 3, "a's timestamp is still in the window");
        now.store(T0 + 61, Ordering::SeqCst);
        // Replaying "a" now fails on the timestamp, not the cache.
        assert!(matches!(f.accept(T0, b"a"), Err(AuthError::Stale { .. })));
        f.accept(T0 + 61, b"d").unwrap();
        assert_eq!(f.len(), 3, "a was evicted: b, c, d remain");
        // "b" is still remembered.
        assert_eq!(f.accept(T0 + 50, b"b"), Err(AuthError::Replay));
    }

    #[test]
    fn future_timestamps_live_longer() {
        let (f, now) = fresh(60, 10);
        f.accept(T0 + 60, b"f").unwrap();
        now.store(T0 + 120, Ordering::SeqCst);
        assert_eq!(f.accept(T0 + 60, b"f"), Err(AuthError::Replay));
        now.store(T0 + 121, Ordering::SeqCst);
        f.accept(T0 + 121, b"g").unwrap();
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn a_full_cache_forgets_its_oldest_second_and_refuses_it_from_then_on() {
        let (f, now) = fresh(60, 3);
        f.accept(T0, b"1").unwrap();
        f.accept(T0, b"2").unwrap();
        f.accept(T0 + 10, b"3").unwrap();
        // Full. A nonce from T0 itself cannot be taken: making room would refuse its own second.
        assert_eq!(f.accept(T0, b"4"), Err(AuthError::CacheFull));
        // A replay is still reported as a replay.
        assert_eq!(f.accept(T0, b"1"), Err(AuthError::Replay));
        // A newer message makes room by forgetting second T0 and raising the floor past it…
        now.store(T0 + 11, Ordering::SeqCst);
        f.accept(T0 + 11, b"4").unwrap();
        assert_eq!(f.len(), 2);
        // …so the forgotten nonces are still refused (as stale), as is anything else from T0,
        assert!(matches!(f.accept(T0, b"1"), Err(AuthError::Stale { .. })));
        assert!(matches!(f.accept(T0, b"new"), Err(AuthError::Stale { .. })));
        // while the window above the floor works as before.
        assert_eq!(f.accept(T0 + 10, b"3"), Err(AuthError::Replay));
        f.accept(T0 + 5, b"5").unwrap();
        assert_eq!(f.len(), 3);
        // Sustained load: capacity per second, not per window.
        let (f, now) = fresh(60, 100);
        for second in 0..50u64 {
            now.store(T0 + second, Ordering::SeqCst);
            for i in 0..100u64 {
                let nonce = (second * 1000 + i).to_be_bytes();
                f.accept(T0 + second, &nonce).unwrap();
            }
        }
        assert_eq!(f.len(), 100);
        // Every nonce ever accepted is still refused.
        for second in 0..50u64 {
            let nonce = (second * 1000 + 7).to_be_bytes();
            assert!(f.accept(T0 + second, &nonce).is_err());
        }
    }

    #[test]
    fn capacity_at_least_one() {
        let (f, _) = fresh(60, 0);
        assert_eq!(f.max_entries(), 1);
        f.accept(T0, b"a").unwrap();
        assert_eq!(f.accept(T0, b"b"), Err(AuthError::CacheFull));
    }

    #[test]
    fn long_nonce_refused() {
        let (f, _) = fresh(60, 10);
        assert!(f.accept(T0, &[7; 64]).is_ok());
        assert!(matches!(f.accept(T0, &[7; 65]), Err(AuthError::Other(_))));
        // Empty nonces are allowed (the plugin decides what it needs).
        assert!(f.accept(T0, b"").is_ok());
        assert_eq!(f.accept(T0, b""), Err(AuthError::Replay));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let now = Arc::new(AtomicU64::new(u64::MAX));
        let f = Freshness::new(Duration::from_secs(60)).clock(at(&now));
        f.accept(u64::MAX, b"n").unwrap();
        assert_eq!(f.accept(u64::MAX - 1, b"n"), Err(AuthError::Replay));
        let zero = Arc::new(AtomicU64::new(0));
        let f = Freshness::new(Duration::from_secs(60)).clock(at(&zero));
        f.accept(0, b"n").unwrap();
        assert!(f.accept(61, b"m").is_err());
    }

    #[test]
    fn shared_between_threads() {
        let (f, _) = fresh(60, 10_000);
        let f = Arc::new(f);
        let accepted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let f = f.clone();
                    s.spawn(move || {
                        (0u32..500)
                            .filter(|i| f.accept(T0, &i.to_be_bytes()).is_ok())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        // Every nonce accepted exactly once across the four threads.
        assert_eq!(accepted, 500);
        assert_eq!(f.len(), 500);
    }

    /// Issue 12, defect 7: one sender with the key, faster than the cache can hold, made the node
    /// refuse every other peer with `CacheFull`. Now the heaviest sender makes the room.
    #[test]
    fn a_busy_sender_cannot_make_the_others_refused() {
        let (f, now) = fresh(60, 1_000);
        let mut busy_refused = 0;
        for second in 0..10u64 {
            now.store(T0 + second, Ordering::SeqCst);
            // 2,000 messages a second from one sender: twice the whole cache.
            for i in 0..2_000u64 {
                let nonce = [b"busy".as_slice(), &(second * 10_000 + i).to_be_bytes()].concat();
                if f.accept_from(b"busy", T0 + second, &nonce) == Err(AuthError::CacheFull) {
                    busy_refused += 1;
                }
            }
            // Every other peer is still served, at its normal rate.
            for peer in 0..20u64 {
                let nonce = [peer.to_be_bytes(), second.to_be_bytes()].concat();
                assert_eq!(
                    f.accept_from(&peer.to_be_bytes(), T0 + second, &nonce),
                    Ok(()),
                    "peer {peer} in second {second}"
                );
            }
        }
        assert!(busy_refused > 0, "the busy sender was held back");
        assert!(f.len() <= 1_000);
        // Alone, a sender may use the whole cache: 1,000 in one second.
        let (f, _) = fresh(60, 1_000);
        for i in 0..1_000u64 {
            f.accept_from(b"alone", T0, &i.to_be_bytes()).unwrap();
        }
        assert_eq!(
            f.accept_from(b"alone", T0, b"more"),
            Err(AuthError::CacheFull)
        );
        // Without quotas (one unknown sender for everyone), the same load refuses the others: the
        // behaviour the quota fixes.
        let (f, _) = fresh(60, 1_000);
        for i in 0..2_000u64 {
            let _ = f.accept(T0, &i.to_be_bytes());
        }
        assert_eq!(f.accept(T0, b"another peer"), Err(AuthError::CacheFull));
    }

    #[test]
    fn a_sender_over_its_quota_forgets_its_oldest_second_and_refuses_it_from_then_on() {
        let (f, now) = fresh(60, 100);
        let f = f.per_sender(3);
        f.accept_from(b"t", T0, b"other").unwrap();
        f.accept_from(b"s", T0, b"1").unwrap();
        f.accept_from(b"s", T0, b"2").unwrap();
        f.accept_from(b"s", T0 + 5, b"3").unwrap();
        // At its quota: a newer nonce makes room by forgetting the sender's second T0…
        now.store(T0 + 5, Ordering::SeqCst);
        f.accept_from(b"s", T0 + 5, b"4").unwrap();
        // …so its forgotten nonces, and anything else of it from T0, are refused as stale,
        assert!(matches!(
            f.accept_from(b"s", T0, b"1"),
            Err(AuthError::Stale { .. })
        ));
        assert!(matches!(
            f.accept_from(b"s", T0, b"new"),
            Err(AuthError::Stale { .. })
        ));
        // while the other sender keeps its whole window, and its nonce is still remembered.
        f.accept_from(b"t", T0, b"t2").unwrap();
        assert_eq!(f.accept_from(b"t", T0, b"other"), Err(AuthError::Replay));
        // Full of its own current second: refused, and only this sender.
        f.accept_from(b"s", T0 + 5, b"5").unwrap();
        assert_eq!(f.accept_from(b"s", T0 + 5, b"6"), Err(AuthError::CacheFull));
        f.accept_from(b"t", T0 + 5, b"t3").unwrap();
        assert_eq!(f.len(), 6, "s: 3, 4, 5; t: other, t2, t3");
    }

    #[test]
    fn a_replay_is_refused_whatever_sender_it_claims() {
        let (f, _) = fresh(60, 100);
        f.accept_from(b"a", T0, b"n").unwrap();
        assert_eq!(f.accept_from(b"b", T0, b"n"), Err(AuthError::Replay));
        assert_eq!(f.accept(T0, b"n"), Err(AuthError::Replay));
    }

    #[test]
    fn the_heaviest_pays_even_when_the_newcomer_is_light() {
        let (f, now) = fresh(60, 10);
        for i in 0..7u8 {
            f.accept_from(b"heavy", T0, &[b'h', i]).unwrap();
        }
        for i in 0..3u8 {
            f.accept_from(b"light", T0, &[b'l', i]).unwrap();
        }
        // Full. A third sender is served by the heavy one's second going.
        now.store(T0 + 1, Ordering::SeqCst);
        f.accept_from(b"new", T0 + 1, b"n").unwrap();
        assert_eq!(f.len(), 4, "light's 3 and new's 1");
        assert_eq!(
            f.accept_from(b"light", T0, b"l\x00"),
            Err(AuthError::Replay)
        );
        assert!(matches!(
            f.accept_from(b"heavy", T0, b"h\x00"),
            Err(AuthError::Stale { .. })
        ));
        // The heavy sender starts again from the next second.
        f.accept_from(b"heavy", T0 + 1, b"h2").unwrap();
    }

    #[test]
    fn empty_sender_states_are_bounded_and_their_floors_kept() {
        let (f, now) = fresh(60, 4);
        now.store(T0 + 100, Ordering::SeqCst);
        // A thousand senders, ten a second, one nonce each: each newcomer makes the previous
        // heaviest forget its nonce, and that sender's empty state keeps its floor; but not
        // without bound: past the cap they go and the common floor keeps what they refused.
        let mut accepted = Vec::new();
        for i in 0..1_000u32 {
            let ts = T0 + 40 + u64::from(i / 10);
            if f.accept_from(&i.to_be_bytes(), ts, &i.to_be_bytes())
                .is_ok()
            {
                accepted.push((i, ts));
            }
            assert!(
                f.lock().senders() <= 2 * 4 + 1,
                "{} sender states",
                f.lock().senders()
            );
        }
        assert!(accepted.len() >= 100, "only {} accepted", accepted.len());
        assert_eq!(f.len(), 4);
        // Every nonce accepted, forgotten or not, is still refused.
        for (i, ts) in accepted {
            assert!(
                f.accept_from(&i.to_be_bytes(), ts, &i.to_be_bytes())
                    .is_err()
            );
        }
    }

    #[test]
    fn senders_are_forgotten_with_their_nonces() {
        let (f, now) = fresh(60, 100);
        for s in 0..50u8 {
            f.accept_from(&[s], T0, &[s, 1]).unwrap();
        }
        now.store(T0 + 61, Ordering::SeqCst);
        f.accept_from(b"late", T0 + 61, b"x").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(
            f.lock().senders(),
            1,
            "the 50 expired senders' states are gone"
        );
    }

    #[test]
    fn per_sender_limits() {
        let f = Freshness::default();
        assert_eq!(f.max_per_sender(), Freshness::DEFAULT_CAPACITY);
        let f = Freshness::default().capacity(10).per_sender(0);
        assert_eq!(f.max_per_sender(), 1);
        let f = Freshness::default().capacity(10).per_sender(100);
        assert_eq!(f.max_per_sender(), 10);
        assert!(matches!(
            f.accept_from(&[0; 65], f.now(), b"n"),
            Err(AuthError::Other(_))
        ));
    }
}
