//! Adaptive timeouts: per (peer, route) estimates of the round-trip time, as EGTP keeps them —
//! an exponential average of the mean and of the variance (time constant 10 by default) — from
//! which a call's soft timeout (mean + 2 deviations) and hard timeout (a multiple of the soft
//! one) are derived, clamped to configured bounds.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use bytes::Bytes;

use crate::MessageType;

/// Adaptive timeouts, opt-in with `adaptive_timeouts(Some(..))` on the three builders: calls
/// that set no timeout of their own get soft = mean + 2 deviations of the round trips measured
/// for the same peer and route, and hard = `factor` × soft, both clamped to
/// [`min`](Self::min)..=[`max`](Self::max). Before the first reply of a (peer, route), the
/// prior is used.
///
/// A round trip is measured only for a request answered without having been re-sent (Karn's
/// rule: the reply of a retried request could answer any of its sends).
///
/// ```
/// use std::time::Duration;
/// use netaio::AdaptiveTimeouts;
///
/// let adaptive = AdaptiveTimeouts::default()
///     .prior(Duration::from_millis(200), Duration::from_millis(50))
///     .min(Duration::from_millis(20))
///     .max(Duration::from_secs(5));
/// // Before any sample: soft = 200 + 2 × 50 ms, hard = 4 × soft.
/// assert_eq!(adaptive.timeouts_for(None), (Duration::from_millis(300), Duration::from_millis(1200)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveTimeouts {
    prior_mean: Duration,
    prior_deviation: Duration,
    min: Duration,
    max: Duration,
    factor: u32,
    time_constant: u32,
    max_routes: usize,
}

impl Default for AdaptiveTimeouts {
    fn default() -> Self {
        Self {
            prior_mean: Duration::from_secs(1),
            prior_deviation: Duration::from_millis(500),
            min: Duration::from_millis(10),
            max: Duration::from_secs(60),
            factor: 4,
            time_constant: 10,
            max_routes: 1024,
        }
    }
}

impl AdaptiveTimeouts {
    /// The defaults: prior 1 s ± 0.5 s, soft at least 10 ms, hard at most 60 s, hard = 4 × soft,
    /// time constant 10, 1024 (peer, route) estimates.
    pub fn new() -> Self {
        Self::default()
    }

    /// The round trip assumed before the first sample (default 1 s ± 0.5 s).
    #[must_use]
    pub fn prior(mut self, mean: Duration, deviation: Duration) -> Self {
        self.prior_mean = crate::node::sane(mean);
        self.prior_deviation = crate::node::sane(deviation);
        self
    }

    /// The shortest soft timeout (default 10 ms); the hard timeout is at least this too.
    #[must_use]
    pub fn min(mut self, d: Duration) -> Self {
        self.min = crate::node::sane(d);
        self
    }

    /// The longest hard timeout (default 60 s); the soft timeout is at most this too.
    #[must_use]
    pub fn max(mut self, d: Duration) -> Self {
        self.max = crate::node::sane(d);
        self
    }

    /// Hard timeout = `factor` × soft timeout (default 4, at least 1).
    #[must_use]
    pub fn factor(mut self, n: u32) -> Self {
        self.factor = n.max(1);
        self
    }

    /// How many samples the averages remember, roughly: each new one weighs `1 / n` (default
    /// 10, as in EGTP; at least 1).
    #[must_use]
    pub fn time_constant(mut self, n: u32) -> Self {
        self.time_constant = n.max(1);
        self
    }

    /// (peer, route) estimates kept at most (default 1024); the least recently updated goes
    /// first. Their bytes are bounded too: 64 per estimate plus its uri, within 128 per
    /// estimate allowed (a uri longer than that budget as a whole is not tracked).
    #[must_use]
    pub fn max_routes(mut self, n: usize) -> Self {
        self.max_routes = n;
        self
    }

    /// The (soft, hard) timeouts an estimate gives, or the prior's for `None`.
    pub fn timeouts_for(&self, estimate: Option<&RttEstimate>) -> (Duration, Duration) {
        let (mean, dev) = match estimate {
            Some(e) => (e.mean, e.deviation),
            None => (self.prior_mean, self.prior_deviation),
        };
        let lo = self.min.min(self.max);
        let soft = mean
            .saturating_add(dev.saturating_mul(2))
            .clamp(lo, self.max);
        let hard = soft.saturating_mul(self.factor).clamp(lo, self.max);
        (soft, hard)
    }

    /// See [`max_routes`](Self::max_routes).
    pub fn get_max_routes(&self) -> usize {
        self.max_routes
    }
}

/// The round-trip estimate of one (peer, route), as `rtt_estimates()` on a node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RttEstimate {
    /// The requests' message type.
    pub message_type: MessageType,
    /// The requests' uri.
    pub uri: Bytes,
    /// The exponential average of the round trips.
    pub mean: Duration,
    /// The square root of their exponential average squared deviation.
    pub deviation: Duration,
    /// How many round trips were measured.
    pub samples: u64,
}

#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// Seconds.
    mean: f64,
    /// Seconds squared.
    var: f64,
    samples: u64,
    /// When it was last updated (a counter), for evicting the least recently updated.
    used: u64,
}

/// The estimates of one node, per (peer, type, uri), bounded in count and in uri bytes.
#[derive(Debug)]
pub(crate) struct RttTable<P> {
    map: HashMap<(P, MessageType, Bytes), Estimate>,
    config: AdaptiveTimeouts,
    bytes: usize,
    tick: u64,
}

/// What one estimate costs against the byte bound besides its uri.
const ENTRY_COST: usize = 64;

impl<P: Copy + Eq + Hash> RttTable<P> {
    pub(crate) fn new(config: AdaptiveTimeouts) -> Self {
        Self {
            map: HashMap::new(),
            config,
            bytes: 0,
            tick: 0,
        }
    }

    fn max_bytes(&self) -> usize {
        self.config.max_routes.saturating_mul(2 * ENTRY_COST)
    }

    /// Record a round trip of a request of type `sent` for `uri` to `peer`.
    pub(crate) fn record(&mut self, peer: P, sent: MessageType, uri: &Bytes, rtt: Duration) {
        if self.config.max_routes == 0 {
            return;
        }
        self.tick += 1;
        let x = rtt.as_secs_f64();
        let key = (peer, sent, uri.clone());
        if let Some(e) = self.map.get_mut(&key) {
            // West's incremental exponentially weighted mean and variance.
            let alpha = 1.0 / f64::from(self.config.time_constant);
            let diff = x - e.mean;
            let incr = alpha * diff;
            e.mean += incr;
            e.var = (1.0 - alpha) * (e.var + diff * incr);
            e.samples += 1;
            e.used = self.tick;
            return;
        }
        let cost = ENTRY_COST + uri.len();
        if cost > self.max_bytes() {
            return;
        }
        while self.map.len() >= self.config.max_routes || self.bytes + cost > self.max_bytes() {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.map.remove(&oldest);
            self.bytes -= ENTRY_COST + oldest.2.len();
        }
        // The first sample stands for the mean, half of it for the deviation (as RFC 6298
        // starts its estimator); the uri is copied so that no larger buffer stays alive.
        self.bytes += cost;
        self.map.insert(
            (peer, sent, Bytes::copy_from_slice(uri)),
            Estimate {
                mean: x,
                var: (x / 2.0) * (x / 2.0),
                samples: 1,
                used: self.tick,
            },
        );
    }

    /// The estimate of one (peer, route).
    pub(crate) fn get(&self, peer: P, sent: MessageType, uri: &Bytes) -> Option<RttEstimate> {
        self.map
            .get(&(peer, sent, uri.clone()))
            .map(|e| public(sent, uri.clone(), e))
    }

    /// The (soft, hard) timeouts for a request of type `sent` for `uri` to `peer`.
    pub(crate) fn timeouts(&self, peer: P, sent: MessageType, uri: &Bytes) -> (Duration, Duration) {
        self.config.timeouts_for(self.get(peer, sent, uri).as_ref())
    }

    /// Every estimate.
    pub(crate) fn all(&self) -> Vec<(P, RttEstimate)> {
        self.map
            .iter()
            .map(|((p, t, uri), e)| (*p, public(*t, uri.clone(), e)))
            .collect()
    }
}

fn public(message_type: MessageType, uri: Bytes, e: &Estimate) -> RttEstimate {
    let secs = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX);
    RttEstimate {
        message_type,
        uri,
        mean: secs(e.mean),
        deviation: secs(e.var.max(0.0).sqrt()),
        samples: e.samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: MessageType = MessageType::REQUEST_URI;

    /// A deterministic generator (xorshift), so the test does not depend on a seed.
    struct XorShift(u64);
    impl XorShift {
        fn next_unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn estimates_converge_on_a_known_distribution() {
        // Round trips uniform on 80..120 ms: mean 100 ms, standard deviation 40/√12 ≈ 11.5 ms.
        let mut t = RttTable::new(AdaptiveTimeouts::default());
        let uri = Bytes::from_static(b"u");
        // A first sample far off: the estimator must forget it.
        t.record(1u8, R, &uri, Duration::from_secs(2));
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut means = Vec::new();
        let mut devs = Vec::new();
        for i in 0..2000 {
            let ms = 80.0 + 40.0 * rng.next_unit();
            t.record(1, R, &uri, Duration::from_secs_f64(ms / 1000.0));
            if i >= 200 {
                let e = t.get(1, R, &uri).unwrap();
                means.push(e.mean.as_secs_f64() * 1000.0);
                devs.push(e.deviation.as_secs_f64() * 1000.0);
            }
        }
        let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (mean, dev) = (avg(&means), avg(&devs));
        assert!((mean - 100.0).abs() < 2.0, "mean {mean} ms");
        assert!((dev - 11.5).abs() < 2.5, "deviation {dev} ms");
        // Every reading after the warm-up stays near the truth (a time constant of 10 averages
        // about 20 samples).
        assert!(means.iter().all(|m| (m - 100.0).abs() < 12.0));
        let e = t.get(1, R, &uri).unwrap();
        assert_eq!(e.samples, 2001);
        let (soft, hard) = t.timeouts(1, R, &uri);
        let want = e.mean + e.deviation * 2;
        assert!(
            soft.abs_diff(want) < Duration::from_micros(1),
            "{soft:?} {want:?}"
        );
        assert!(hard.abs_diff(want * 4) < Duration::from_micros(4));
    }

    #[test]
    fn the_first_sample_replaces_the_prior_and_bounds_clamp() {
        let config = AdaptiveTimeouts::default()
            .min(Duration::from_millis(50))
            .max(Duration::from_millis(400));
        let mut t = RttTable::new(config);
        let uri = Bytes::from_static(b"u");
        // Prior 1 s ± 0.5 s: soft 2 s, clamped to the maximum.
        assert_eq!(
            t.timeouts(1u8, R, &uri),
            (Duration::from_millis(400), Duration::from_millis(400))
        );
        t.record(1, R, &uri, Duration::from_millis(4));
        // 4 ms ± 2 ms: soft 8 ms, raised to the minimum; hard 4 × 50 ms.
        assert_eq!(
            t.timeouts(1, R, &uri),
            (Duration::from_millis(50), Duration::from_millis(200))
        );
        // Other peer, other type, other uri: separate estimates.
        assert!(t.get(2, R, &uri).is_none());
        assert!(t.get(1, MessageType::CREATE_URI, &uri).is_none());
        assert!(t.get(1, R, &Bytes::from_static(b"v")).is_none());
    }

    #[test]
    fn bounded_in_routes_and_bytes() {
        let mut t = RttTable::new(AdaptiveTimeouts::default().max_routes(3));
        for (i, uri) in ["a", "b", "c", "d"].into_iter().enumerate() {
            t.record(
                0u8,
                R,
                &Bytes::from(uri),
                Duration::from_millis(i as u64 + 1),
            );
        }
        assert_eq!(t.map.len(), 3);
        assert!(
            t.get(0, R, &Bytes::from("a")).is_none(),
            "least recently updated went"
        );
        // A uri beyond the whole byte budget is not tracked.
        t.record(
            0,
            R,
            &Bytes::from(vec![b'x'; 1000]),
            Duration::from_millis(1),
        );
        assert_eq!(t.map.len(), 3);
        assert_eq!(t.bytes, 3 * (ENTRY_COST + 1));
        // Long uris within the budget evict as many as needed.
        for fill in [b'y', b'z'] {
            t.record(
                0,
                R,
                &Bytes::from(vec![fill; 100]),
                Duration::from_millis(1),
            );
            assert!(t.bytes <= 3 * 2 * ENTRY_COST, "{}", t.bytes);
        }
        // The second one needed the room of both short uris left, not only of one.
        assert_eq!(t.map.len(), 2);
        assert_eq!(t.all().len(), t.map.len());
    }
}
