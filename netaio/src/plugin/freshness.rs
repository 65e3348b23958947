//! [`Freshness`]: the timestamp window and the bounded replay cache shared by the auth plugins.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::AuthError;

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
/// - The cache holds at most [`capacity`](Self::capacity) nonces (default 65,536). When it is full
///   of live nonces, the oldest second of nonces is forgotten and the cache's *floor* rises past
///   it: from then on a timestamp at or below that second is refused as stale. A replay of a
///   forgotten nonce is therefore still refused, memory stays bounded, and under load the window
///   into the past simply narrows (to about `capacity ÷ rate` seconds) — so a node sustains up
///   to `capacity` authenticated messages per second, not per window. Only when the cache is full
///   of nonces from the message's own second (or later) is it refused with
///   [`AuthError::CacheFull`].
///
/// Call `accept` only **after** the MAC or signature has verified, so that unauthenticated traffic
/// cannot fill the cache. Nonces longer than [`MAX_NONCE_LEN`](Self::MAX_NONCE_LEN) bytes are
/// refused, which bounds the cache's memory to about `capacity × (MAX_NONCE_LEN + 80)` bytes.
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
    clock: Clock,
    cache: Mutex<Cache>,
}

/// The nonces seen, with the time each one expires.
#[derive(Default)]
struct Cache {
    /// Timestamps below this are refused: their nonces may have been forgotten to make room.
    floor: u64,
    /// nonce -> expiry (seconds since the epoch).
    seen: HashMap<Arc<[u8]>, u64>,
    /// The same entries ordered by expiry, soonest first.
    expiry: BinaryHeap<Reverse<(u64, Arc<[u8]>)>>,
}

impl Cache {
    /// Forget every nonce whose expiry is before `now`.
    fn evict_expired(&mut self, now: u64) {
        while let Some(Reverse((exp, _))) = self.expiry.peek() {
            if *exp >= now {
                break;
            }
            if let Some(Reverse((_, nonce))) = self.expiry.pop() {
                self.seen.remove(&nonce);
            }
        }
    }
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

    /// Timestamps within ±`window` of the system clock are fresh; default capacity.
    pub fn new(window: Duration) -> Self {
        Self {
            window: window.as_secs(),
            capacity: Self::DEFAULT_CAPACITY,
            clock: Arc::new(system_clock),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Room for at least `n` nonces, at least 1 (default
    /// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY), 65,536).
    #[must_use]
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
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

    /// The number of nonces currently remembered (expired ones included until the next `accept`).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// True when no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This node's clock: seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
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
    /// Call it only after the message's MAC or signature verified.
    pub fn accept(&self, ts: u64, nonce: &[u8]) -> Result<(), AuthError> {
        if nonce.len() > Self::MAX_NONCE_LEN {
            return Err(AuthError::Other(format!(
                "nonce of {} bytes is longer than {}",
                nonce.len(),
                Self::MAX_NONCE_LEN
            )));
        }
        let now = self.now();
        if ts.abs_diff(now) > self.window {
            return Err(AuthError::Stale { ts, now });
        }
        let mut cache = self.lock();
        cache.evict_expired(now);
        if cache.seen.contains_key(nonce) {
            return Err(AuthError::Replay);
        }
        if ts < cache.floor {
            return Err(AuthError::Stale { ts, now });
        }
        // Full of live nonces: forget the oldest second of them and raise the floor past it, unless
        // that second is this message's own (or later): then there is no safe room.
        while cache.seen.len() >= self.capacity {
            let Some(Reverse((oldest, _))) = cache.expiry.peek() else {
                break;
            };
            let oldest = *oldest;
            let oldest_ts = oldest.saturating_sub(self.window);
            if oldest_ts >= ts {
                return Err(AuthError::CacheFull);
            }
            while let Some(Reverse((exp, _))) = cache.expiry.peek() {
                if *exp != oldest {
                    break;
                }
                if let Some(Reverse((_, gone))) = cache.expiry.pop() {
                    cache.seen.remove(&gone);
                }
            }
            cache.floor = cache.floor.max(oldest_ts.saturating_add(1));
        }
        let expires = ts.saturating_add(self.window);
        let key: Arc<[u8]> = Arc::from(nonce);
        cache.seen.insert(key.clone(), expires);
        cache.expiry.push(Reverse((expires, key)));
        Ok(())
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
}
