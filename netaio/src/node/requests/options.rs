//! [`CallOptions`]: how one call is made (timeouts, retries, hedging, plugins), every setting
//! not set taking the node's.

use std::fmt;
use std::time::Duration;

use super::budget::HedgeBudget;
use crate::plugin::{Plugins, SendOptions};

/// How one call is made: the instance plugin switches and inner plugins of [`SendOptions`], a
/// hard timeout, a soft timeout, retries, and (for [`call_any`](crate::call_any)) how many
/// other peers it may try. Every setting not set takes the node's (`request_timeout`,
/// `soft_timeout`, `adaptive_timeouts` on the builders).
///
/// ```
/// use std::time::Duration;
/// use netaio::CallOptions;
///
/// let opts = CallOptions::new()
///     .timeout(Duration::from_secs(2))
///     .soft_timeout(Duration::from_millis(100))
///     .retry(2)
///     .hedge(1);
/// assert_eq!(opts.get_timeout(), Some(Duration::from_secs(2)));
/// assert_eq!(opts.get_soft_timeout(), Some(Some(Duration::from_millis(100))));
/// assert_eq!((opts.get_retry(), opts.get_hedge()), (2, 1));
/// ```
#[derive(Clone)]
pub struct CallOptions {
    pub(super) send: SendOptions,
    pub(super) timeout: Option<Duration>,
    pub(super) soft_timeout: Option<Option<Duration>>,
    pub(super) retry: u32,
    pub(super) hedge: usize,
    pub(super) budget: Option<HedgeBudget>,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            send: SendOptions::default(),
            timeout: None,
            soft_timeout: None,
            retry: 0,
            hedge: 1,
            budget: None,
        }
    }
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("soft_timeout", &self.soft_timeout)
            .field("retry", &self.retry)
            .field("hedge", &self.hedge)
            .field("hedge_budget", &self.budget)
            .field("use_auth", &self.send.use_auth)
            .field("use_cipher", &self.send.use_cipher)
            .finish_non_exhaustive()
    }
}

impl From<SendOptions> for CallOptions {
    /// The send options' plugins, switches and timeout (as the hard timeout).
    fn from(send: SendOptions) -> Self {
        Self {
            timeout: send.timeout,
            send,
            ..Self::default()
        }
    }
}

impl CallOptions {
    /// The defaults: the node's timeouts, no retry, one extra peer for `call_any`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hard timeout (default: the node's, or the adaptive one): the call fails with
    /// [`RequestError::Timeout`](crate::RequestError::Timeout) when it passes, and a reply after it is a late reply.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(crate::node::sane(d));
        self
    }

    /// The soft timeout (default: the node's, or the adaptive one; none unless set): when it
    /// passes without a reply, [`PendingCall::soft_timeout`](super::PendingCall::soft_timeout) resolves, a call with retries left
    /// re-sends its request, and [`call_any`](crate::call_any) asks the next peer. A reply after
    /// it but within the hard timeout answers the call as one in time. Capped at the hard
    /// timeout. One under a millisecond passes to within a few microseconds: a thread of the
    /// process (one for all nodes) sleeps until shortly before it, spins the last 50 µs and
    /// wakes the node's request timer, instead of tokio's timer rounding it up to its next
    /// millisecond tick. No worker of the runtime is kept busy meanwhile.
    #[must_use]
    pub fn soft_timeout(mut self, d: Duration) -> Self {
        self.soft_timeout = Some(Some(crate::node::sane(d)));
        self
    }

    /// No soft timeout for this call, whatever the node's.
    #[must_use]
    pub fn no_soft_timeout(mut self) -> Self {
        self.soft_timeout = Some(None);
        self
    }

    /// Re-send the request up to `n` times (default 0): when a soft timeout passes, and when
    /// the connection drops and comes back (a client with a reconnect policy) before the hard
    /// timeout. The copy has the same request id, sealed afresh (a new nonce, so that a replay
    /// cache accepts it), and asks the responder to run it at most once
    /// ([`fields::AT_MOST_ONCE`](crate::message::fields::AT_MOST_ONCE)): a netaio responder
    /// answers a copy from its cache instead of running the handler again.
    #[must_use]
    pub fn retry(mut self, n: u32) -> Self {
        self.retry = n;
        self
    }

    /// How many peers after the first [`call_any`](crate::call_any) may ask (default 1).
    #[must_use]
    pub fn hedge(mut self, n: usize) -> Self {
        self.hedge = n;
        self
    }

    /// Hedge only within this budget (default: none, every soft timeout may hedge): a hedge when
    /// the budget is spent is not made and the call waits on for the targets already asked, so
    /// that a soft timeout inside the normal latency tail cannot double the load. Share one
    /// budget between the calls it bounds (clone it).
    #[must_use]
    pub fn hedge_budget(mut self, budget: HedgeBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Inner plugins for this call (the reply is opened with them too).
    #[must_use]
    pub fn inner(mut self, inner: Plugins) -> Self {
        self.send.inner = inner;
        self
    }

    /// Switch the instance auth plugin on or off (default on).
    #[must_use]
    pub fn use_auth(mut self, on: bool) -> Self {
        self.send.use_auth = on;
        self
    }

    /// Switch the instance cipher plugin on or off (default on).
    #[must_use]
    pub fn use_cipher(mut self, on: bool) -> Self {
        self.send.use_cipher = on;
        self
    }

    /// The hard timeout, when set.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The soft timeout, when set: `Some(None)` after [`no_soft_timeout`](Self::no_soft_timeout).
    pub fn get_soft_timeout(&self) -> Option<Option<Duration>> {
        self.soft_timeout
    }

    /// See [`retry`](Self::retry).
    pub fn get_retry(&self) -> u32 {
        self.retry
    }

    /// See [`hedge`](Self::hedge).
    pub fn get_hedge(&self) -> usize {
        self.hedge
    }

    /// See [`hedge_budget`](Self::hedge_budget).
    pub fn get_hedge_budget(&self) -> Option<&HedgeBudget> {
        self.budget.as_ref()
    }

    /// The plugins and switches the request is sealed with.
    pub fn send_options(&self) -> &SendOptions {
        &self.send
    }
}
