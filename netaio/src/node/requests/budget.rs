//! [`HedgeBudget`]: how many hedges [`call_any`](crate::call_any) may add, shared by the calls
//! that use it, as tower's retry budget bounds its retries.
//!
//! Why: a hedge is an extra request. When the soft timeout lies inside the normal latency tail,
//! every hedge adds load to servers that are slow because they are loaded, their tail grows, and
//! more calls pass the soft timeout: the `hedge` benchmark over TCP hedged about half of its
//! calls at a 200 µs soft timeout (the fast server's p99 was 120–500 µs) where only the stalled
//! 5 % needed it, and 6 % at 500 µs (BENCHMARKS.md, issue 13). A budget caps the extra load at a
//! share of the calls whatever the timeouts: each call earns `ratio` of a hedge, each hedge
//! spends one, and `min_per_second` keeps a quiet service able to hedge at all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// The most hedges a budget holds in reserve at once, beyond which earnings are lost: a long
/// quiet spell does not buy a burst of extra requests later.
const MAX_RESERVE: f64 = 10.0;

#[derive(Debug)]
struct Tokens {
    /// Hedges that may be made now (fractional: earned by `ratio` per call).
    available: f64,
    /// When `min_per_second` was last added.
    refilled: Instant,
    /// Hedges added each second whatever the calls.
    min_per_second: f64,
}

#[derive(Debug)]
struct Inner {
    ratio: f64,
    tokens: Mutex<Tokens>,
    hedged: AtomicU64,
    refused: AtomicU64,
}

/// A share of extra requests that hedged calls may make, shared by every call given it
/// ([`CallOptions::hedge_budget`](crate::CallOptions::hedge_budget)); cheap to clone (one
/// allocation, shared). Each [`call_any`](crate::call_any) earns `ratio` of a hedge; asking the
/// next target when a soft timeout passes spends one, and without one the call waits on for the
/// targets already asked. Moving on after a target *failed* is not a hedge and is always allowed.
/// At most 10 hedges are held in reserve.
///
/// ```
/// use std::time::Duration;
/// use netaio::{CallOptions, HedgeBudget};
///
/// // At most about 10 % more requests, and at least 5 hedges a second.
/// let budget = HedgeBudget::new(0.1).min_per_second(5);
/// let opts = CallOptions::new()
///     .soft_timeout(Duration::from_millis(20))
///     .hedge_budget(budget.clone());
/// assert_eq!((budget.hedged(), budget.refused()), (0, 0));
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct HedgeBudget(Arc<Inner>);

impl HedgeBudget {
    /// Hedges earned per call (clamped to 0..=1; 0.1: at most ~10 % more requests than calls),
    /// no minimum rate, an empty reserve.
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self(Arc::new(Inner {
            ratio,
            tokens: Mutex::new(Tokens {
                available: 0.0,
                refilled: Instant::now(),
                min_per_second: 0.0,
            }),
            hedged: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }))
    }

    /// Hedges allowed each second whatever the number of calls (default 0), so that a service
    /// with few calls can still hedge. Applies to every clone of this budget.
    #[must_use]
    pub fn min_per_second(self, n: u32) -> Self {
        let now = Instant::now();
        let mut t = self.tokens(now);
        t.min_per_second = f64::from(n);
        drop(t);
        self
    }

    /// Hedges made with this budget.
    pub fn hedged(&self) -> u64 {
        self.0.hedged.load(Ordering::Relaxed)
    }

    /// Hedges not made for want of budget (the call waited on instead).
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }

    fn tokens(&self, now: Instant) -> std::sync::MutexGuard<'_, Tokens> {
        let mut t = self.0.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(t.refilled).as_secs_f64();
        t.refilled = now;
        t.available = (t.available + elapsed * t.min_per_second).min(MAX_RESERVE);
        t
    }

    /// A call started: earn its share of a hedge.
    pub(super) fn deposit(&self, now: Instant) {
        let mut t = self.tokens(now);
        t.available = (t.available + self.0.ratio).min(MAX_RESERVE);
    }

    /// A hedge is about to be made: spend one, or say no (and count the refusal).
    pub(super) fn withdraw(&self, now: Instant) -> bool {
        let mut t = self.tokens(now);
        // A little slack for the sum of ratios (ten deposits of 0.1 make 0.999…).
        if t.available >= 1.0 - 1e-9 {
            t.available = (t.available - 1.0).max(0.0);
            drop(t);
            self.0.hedged.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            drop(t);
            self.0.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_earn_their_ratio_and_the_reserve_is_capped() {
        let b = HedgeBudget::new(0.1);
        let now = Instant::now();
        assert!(!b.withdraw(now), "nothing earned yet");
        for _ in 0..10 {
            b.deposit(now);
        }
        assert!(b.withdraw(now));
        assert!(!b.withdraw(now));
        for _ in 0..1_000 {
            b.deposit(now);
        }
        let made = (0..100).filter(|_| b.withdraw(now)).count();
        assert_eq!(made, 10, "at most the reserve at once");
        assert_eq!((b.hedged(), b.refused()), (11, 92));
    }

    #[tokio::test(start_paused = true)]
    async fn the_minimum_rate_refills_with_time() {
        let b = HedgeBudget::new(0.0).min_per_second(2);
        let t0 = Instant::now();
        assert!(!b.withdraw(t0));
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.withdraw(t1) && b.withdraw(t1) && !b.withdraw(t1));
        // A long quiet spell buys no more than the reserve.
        let t2 = t1 + Duration::from_secs(3_600);
        assert_eq!((0..20).filter(|_| b.withdraw(t2)).count(), 10);
    }

    #[test]
    fn ratios_are_clamped() {
        assert_eq!(HedgeBudget::new(7.0).0.ratio, 1.0);
        assert_eq!(HedgeBudget::new(-1.0).0.ratio, 0.0);
        assert_eq!(HedgeBudget::new(f64::NAN).0.ratio, 0.0);
    }
}
