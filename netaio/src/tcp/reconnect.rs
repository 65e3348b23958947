//! [`Reconnect`]: when a client connection that dropped tries again.

use std::time::Duration;

/// Reconnect policy: exponential backoff from `initial_delay`, doubling up to `max_delay`.
///
/// ```
/// use std::time::Duration;
/// use netaio::tcp::Reconnect;
///
/// let policy = Reconnect::default().initial_delay(Duration::from_millis(50)).max_attempts(Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    initial_delay: Duration,
    max_delay: Duration,
    pub(super) max_attempts: Option<u32>,
}

impl Default for Reconnect {
    /// 100 ms, doubling up to 10 s, without limit on attempts.
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// The first delay (default 100 ms).
    #[must_use]
    pub fn initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }

    /// The largest delay (default 10 s).
    #[must_use]
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Give up after this many failed attempts in a row (`None`: never, the default).
    #[must_use]
    pub fn max_attempts(mut self, n: Option<u32>) -> Self {
        self.max_attempts = n;
        self
    }

    /// The delay before attempt `n` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}
