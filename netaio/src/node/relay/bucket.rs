//! A token bucket on injected time: the relay's rate limits.

use std::time::Duration;

use tokio::time::Instant;

use super::config::Rate;

/// Holds at most `rate.count` tokens, refilled at `rate.count` per `rate.period`.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.count as f64,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        let period = rate.period.max(Duration::from_nanos(1)).as_secs_f64();
        let cap = rate.count as f64;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * cap / period).min(cap);
        self.at = now;
    }

    /// Whether `n` tokens are there now (nothing taken).
    pub(crate) fn has(&mut self, rate: Rate, n: u64, now: Instant) -> bool {
        self.refill(rate, now);
        // A single event larger than the whole bucket passes when the bucket is full, so that
        // a byte rate below the largest envelope does not forbid that envelope for ever.
        self.tokens >= (n as f64).min(rate.count as f64)
    }

    /// Take `n` tokens (after [`has`](Self::has) said yes; the level may go below zero).
    pub(crate) fn take(&mut self, n: u64) {
        self.tokens -= n as f64;
    }

    /// Return `n` tokens taken for an event that did not happen.
    pub(crate) fn give_back(&mut self, n: u64) {
        self.tokens += n as f64;
    }

    /// Whether the bucket is full at `now` (it then says nothing a fresh one would not).
    pub(crate) fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let rate = Rate::new(3, Duration::from_secs(3));
        let mut b = Bucket::full(rate, t0);
        for _ in 0..3 {
            assert!(b.has(rate, 1, t0));
            b.take(1);
        }
        assert!(!b.has(rate, 1, t0));
        assert!(!b.has(rate, 1, t0 + Duration::from_millis(999)));
        assert!(b.has(rate, 1, t0 + Duration::from_secs(1)));
        assert!(!b.is_full(rate, t0 + Duration::from_secs(2)));
        assert!(b.is_full(rate, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn an_event_larger_than_the_bucket_passes_only_when_full() {
        let t0 = Instant::now();
        let rate = Rate::per_second(100);
        let mut b = Bucket::full(rate, t0);
        assert!(b.has(rate, 1000, t0));
        b.take(1000);
        assert!(!b.has(rate, 1, t0 + Duration::from_secs(9)));
        assert!(b.has(rate, 1000, t0 + Duration::from_secs(11)));
    }
}
