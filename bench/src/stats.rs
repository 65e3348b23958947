//! Percentiles, medians and the result records.

use serde::{Deserialize, Serialize};

/// One client run of one workload against one server, as the client prints it (one JSON line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Messages (round trips or echoed messages) completed in the timed part.
    pub count: u64,
    /// Length of the timed part, in seconds.
    pub secs: f64,
    /// Messages per second.
    pub rate: f64,
    /// Content bytes per second, one direction, in MB/s (10^6 bytes).
    pub mb_per_s: f64,
    /// Median round-trip latency, µs (round-trip workloads).
    pub p50_us: Option<f64>,
    /// 99th percentile round-trip latency, µs (round-trip workloads).
    pub p99_us: Option<f64>,
    /// Requests the client had to seal during the timed part because its pre-sealed pool ran out
    /// (0 normally; see `--rate-estimate`).
    pub inline_sealed: u64,
    /// Requests without a reply within a second (UDP; the request is not retried).
    #[serde(default)]
    pub lost: u64,
}

/// The `p`-th percentile (0–100) of sorted values, nearest rank; `None` when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The median of some values (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }
}
