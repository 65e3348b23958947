//! Late replies: a reply that arrives after its request's hard timeout is not dropped silently.
//! The request table remembers the ids of requests that timed out ([`ExpiredIds`], bounded in
//! count, bytes and age); a reply naming one of them becomes a [`LateReply`] on the node's
//! late-replies stream and in its [`RequestStats`](super::RequestStats).
//!
//! EGTP calls the hook for such answers the "post-timeout outcome".

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::{Message, MessageType};

/// A reply that arrived after its request's hard timeout (the caller had already been told
/// [`RequestError::Timeout`](crate::RequestError::Timeout)). Read them from
/// `late_replies()` on a [`Connection`](crate::Connection), a
/// [`ServerHandle`](crate::ServerHandle) or a [`UdpHandle`](crate::UdpHandle).
///
/// The reply has passed the node's instance plugins, not the call's inner plugins (the call is
/// gone); treat its content accordingly.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LateReply {
    /// The request id the reply answers.
    pub request_id: u64,
    /// The request's message type.
    pub message_type: MessageType,
    /// The request's uri.
    pub uri: Bytes,
    /// Where the reply came from.
    pub peer: SocketAddr,
    /// How long after the request's hard deadline it arrived.
    pub late_by: Duration,
    /// The reply, opened with the instance plugins.
    pub reply: Message,
}

/// How much a node remembers about requests that timed out, so that their late replies can be
/// reported ([`LateReply`]). Set with `late_replies(..)` on the three builders.
///
/// ```
/// use std::time::Duration;
/// use netaio::LateReplyConfig;
///
/// let config = LateReplyConfig::default().max_ids(256).window(Duration::from_secs(10));
/// assert_eq!(config.get_max_ids(), 256);
/// assert_eq!(config.get_buffer(), 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateReplyConfig {
    max_ids: usize,
    max_bytes: usize,
    window: Duration,
    buffer: usize,
}

impl Default for LateReplyConfig {
    fn default() -> Self {
        Self {
            max_ids: 1024,
            max_bytes: 64 * 1024,
            window: Duration::from_secs(60),
            buffer: 64,
        }
    }
}

impl LateReplyConfig {
    /// The defaults: 1024 ids, 64 KiB of uris, 60 s, a stream buffer of 64 replies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Timed-out requests remembered at most (default 1024; 0 turns late replies off). The
    /// oldest is forgotten first.
    #[must_use]
    pub fn max_ids(mut self, n: usize) -> Self {
        self.max_ids = n;
        self
    }

    /// Bytes of remembered uris at most (default 64 KiB); a longer uri is remembered as empty.
    #[must_use]
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// How long after its hard deadline a request is remembered (default 60 s).
    #[must_use]
    pub fn window(mut self, d: Duration) -> Self {
        self.window = crate::node::sane(d);
        self
    }

    /// Late replies buffered for each `late_replies()` receiver (default 64, at least 1); a
    /// receiver further behind loses the oldest (`RecvError::Lagged`).
    #[must_use]
    pub fn buffer(mut self, n: usize) -> Self {
        self.buffer = n.max(1);
        self
    }

    /// See [`max_ids`](Self::max_ids).
    pub fn get_max_ids(&self) -> usize {
        self.max_ids
    }

    /// See [`max_bytes`](Self::max_bytes).
    pub fn get_max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// See [`window`](Self::window).
    pub fn get_window(&self) -> Duration {
        self.window
    }

    /// See [`buffer`](Self::buffer).
    pub fn get_buffer(&self) -> usize {
        self.buffer
    }
}

/// What is remembered of a request that timed out.
#[derive(Debug, Clone)]
pub(crate) struct Expired<P> {
    /// Its request id.
    pub(crate) id: u64,
    pub(crate) peer: P,
    pub(crate) uri: Bytes,
    pub(crate) sent: MessageType,
    /// Its hard deadline.
    pub(crate) deadline: Instant,
}

/// The ids of requests that timed out, bounded in count, uri bytes and age (oldest forgotten
/// first).
#[derive(Debug)]
pub(crate) struct ExpiredIds<P> {
    entries: HashMap<u64, Expired<P>>,
    /// Ids in the order they expired (deadlines in order), for pruning; an id already taken is
    /// skipped when reached.
    order: VecDeque<(Instant, u64)>,
    bytes: usize,
    config: LateReplyConfig,
}

impl<P: Copy + Eq> ExpiredIds<P> {
    pub(crate) fn new(config: LateReplyConfig) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            config,
        }
    }

    /// Ids remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.entries.contains_key(&id)
    }

    /// Remember that request `id` timed out.
    pub(crate) fn remember(&mut self, id: u64, mut e: Expired<P>, now: Instant) {
        if self.config.max_ids == 0 {
            return;
        }
        self.prune(now);
        if e.uri.len() > self.config.max_bytes {
            e.uri = Bytes::new();
        }
        while self.entries.len() >= self.config.max_ids
            || self.bytes + e.uri.len() > self.config.max_bytes
        {
            if !self.forget_oldest() {
                break;
            }
        }
        self.bytes += e.uri.len();
        self.order.push_back((e.deadline, id));
        if let Some(old) = self.entries.insert(id, e) {
            self.bytes -= old.uri.len();
        }
        // Taken ids leave stale entries in `order`; keep it within twice the live count.
        if self.order.len() > 2 * self.config.max_ids.max(16) {
            let entries = &self.entries;
            self.order
                .retain(|(t, id)| entries.get(id).is_some_and(|e| e.deadline == *t));
        }
    }

    /// The timed-out request `id`, when it went to `from` (taken: a second late reply for it is
    /// only stale).
    pub(crate) fn take(&mut self, from: P, id: u64, now: Instant) -> Option<Expired<P>> {
        self.prune(now);
        if self.entries.get(&id)?.peer != from {
            return None;
        }
        let e = self.entries.remove(&id)?;
        self.bytes -= e.uri.len();
        Some(e)
    }

    /// The oldest timed-out request to `from` that `fits` (a reply without a reference, from a
    /// peer that matches by uri: Python netaio 0.0.9), taken. Scans the remembered ids, which
    /// are bounded ([`LateReplyConfig::max_ids`]).
    pub(crate) fn take_oldest(
        &mut self,
        from: P,
        now: Instant,
        fits: impl Fn(&Expired<P>) -> bool,
    ) -> Option<(u64, Expired<P>)> {
        self.prune(now);
        let id = self.order.iter().find_map(|(t, id)| {
            self.entries
                .get(id)
                .filter(|e| e.deadline == *t && e.peer == from && fits(e))
                .map(|_| *id)
        })?;
        let e = self.entries.remove(&id)?;
        self.bytes -= e.uri.len();
        Some((id, e))
    }

    /// Whether no id is remembered.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forget every id whose window has passed.
    fn prune(&mut self, now: Instant) {
        while let Some(&(deadline, _)) = self.order.front() {
            if deadline + self.config.window > now {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Forget the oldest entry of `order`; false when there is none.
    fn forget_oldest(&mut self) -> bool {
        let Some((t, id)) = self.order.pop_front() else {
            return false;
        };
        if self.entries.get(&id).is_some_and(|e| e.deadline == t)
            && let Some(e) = self.entries.remove(&id)
        {
            self.bytes -= e.uri.len();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expired(peer: u8, uri: &'static str, deadline: Instant) -> Expired<u8> {
        Expired {
            id: 0,
            peer,
            uri: Bytes::from_static(uri.as_bytes()),
            sent: MessageType::REQUEST_URI,
            deadline,
        }
    }

    #[test]
    fn bounded_in_count_bytes_and_age() {
        let t0 = Instant::now();
        let config = LateReplyConfig::default()
            .max_ids(3)
            .max_bytes(9)
            .window(Duration::from_secs(5));
        let mut ids = ExpiredIds::new(config);
        for id in 1..=4 {
            ids.remember(id, expired(1, "ab", t0), t0);
        }
        assert_eq!(ids.len(), 3, "count bound: the oldest went");
        assert!(!ids.contains(1) && ids.contains(4));
        // The count bound takes the oldest, then 2 × 2 bytes + 6 > 9 takes the next.
        ids.remember(5, expired(1, "abcdef", t0), t0);
        assert!(!ids.contains(2) && !ids.contains(3) && ids.contains(4) && ids.contains(5));
        assert_eq!(ids.bytes, 8);
        // A uri over the byte bound is remembered as empty.
        ids.remember(6, expired(1, "0123456789", t0), t0);
        assert_eq!(ids.entries[&6].uri.len(), 0);
        // Age: gone once the window has passed after the deadline.
        assert!(ids.take(1, 5, t0 + Duration::from_secs(4)).is_some());
        assert!(ids.take(1, 6, t0 + Duration::from_secs(5)).is_none());
        assert_eq!(ids.len(), 0);
    }

    #[test]
    fn taken_once_and_only_by_the_request_s_peer() {
        let t0 = Instant::now();
        let mut ids = ExpiredIds::new(LateReplyConfig::default());
        ids.remember(7, expired(1, "u", t0), t0);
        assert!(ids.take(2, 7, t0).is_none(), "another peer");
        assert!(ids.take(1, 7, t0).is_some());
        assert!(ids.take(1, 7, t0).is_none(), "only once");
    }

    #[test]
    fn stale_order_entries_stay_bounded() {
        let t0 = Instant::now();
        let mut ids = ExpiredIds::new(LateReplyConfig::default().max_ids(4));
        for id in 1..1000 {
            ids.remember(id, expired(1, "u", t0), t0);
            ids.take(1, id, t0);
        }
        assert!(ids.order.len() <= 2 * 16 + 1, "{}", ids.order.len());
        let off = LateReplyConfig::default().max_ids(0);
        let mut none = ExpiredIds::new(off);
        none.remember(1, expired(1, "u", t0), t0);
        assert_eq!(none.len(), 0);
    }
}
