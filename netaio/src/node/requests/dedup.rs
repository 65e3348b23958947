//! At-most-once execution on the responder: a bounded cache, per peer, of the request ids it has
//! answered, with their replies. A request re-sent with the same id (a caller's
//! [`retry`](super::CallOptions::retry)) gets the cached reply again instead of running its
//! handler a second time; one that arrives while the first is still running is dropped (the
//! caller re-sends it later and then finds the reply).
//!
//! Only requests that ask for it are cached: a caller with retries marks its request with the
//! auth field [`fields::AT_MOST_ONCE`](crate::message::fields::AT_MOST_ONCE) (covered by the
//! auth plugin's MAC like every field), whose value is how long the caller may still re-send it;
//! the entry lives that long, at most [`DedupConfig::max_age`]. Other requests cost one field
//! lookup.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::Message;
use crate::router::{BoxedHandler, Request};

/// Bounds of a node's at-most-once cache (see `dedup(..)` on the three builders): how many
/// answered request ids it keeps, per peer and in total, how many bytes of replies, and for how
/// long. The oldest entry goes first, the peer's own oldest when a peer is at its bound.
///
/// ```
/// use std::time::Duration;
/// use netaio::DedupConfig;
///
/// let config = DedupConfig::default().max_entries(10_000).max_age(Duration::from_secs(30));
/// assert_eq!(config.get_max_entries(), 10_000);
/// assert_eq!(config.get_max_per_peer(), 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupConfig {
    max_entries: usize,
    max_per_peer: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            max_entries: 4096,
            max_per_peer: 1024,
            max_bytes: 4 << 20,
            max_age: Duration::from_secs(60),
        }
    }
}

impl DedupConfig {
    /// The defaults: 4096 entries, 1024 per peer, 4 MiB of replies, 60 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries in total (default 4096; 0 turns the cache off: every request runs its handler).
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Entries per peer (default 1024).
    #[must_use]
    pub fn max_per_peer(mut self, n: usize) -> Self {
        self.max_per_peer = n;
        self
    }

    /// Bytes of cached replies (default 4 MiB); a reply larger than that is not cached.
    #[must_use]
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// The longest an entry is kept, whatever the request asks (default 60 s; make it at least
    /// the auth plugin's freshness window when retries may come that late).
    #[must_use]
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = crate::node::sane(d);
        self
    }

    /// See [`max_entries`](Self::max_entries).
    pub fn get_max_entries(&self) -> usize {
        self.max_entries
    }

    /// See [`max_per_peer`](Self::max_per_peer).
    pub fn get_max_per_peer(&self) -> usize {
        self.max_per_peer
    }

    /// See [`max_bytes`](Self::max_bytes).
    pub fn get_max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// See [`max_age`](Self::max_age).
    pub fn get_max_age(&self) -> Duration {
        self.max_age
    }
}

/// What the cache says about a request that asked for at-most-once execution.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Not seen: run the handler, then [`DedupCache::finish`] (or [`DedupCache::abandon`]).
    New,
    /// Its handler is running now: drop this copy.
    Running,
    /// Answered already: send this reply again (`None`: the handler answered nothing).
    Done(Option<Message>),
}

#[derive(Debug)]
enum State {
    Running,
    Done(Option<Message>),
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    expires: Instant,
    bytes: usize,
    state: State,
}

/// The cache, for peers of type `K` (an address, a connection's client).
#[derive(Debug)]
pub(crate) struct DedupCache<K> {
    entries: HashMap<(K, u64), Entry>,
    /// (peer, id, seq) in insertion order; an entry gone or replaced is skipped when reached.
    order: VecDeque<(K, u64, u64)>,
    /// Per peer: (id, seq) in insertion order, same rule.
    per_peer: HashMap<K, VecDeque<(u64, u64)>>,
    per_peer_len: HashMap<K, usize>,
    bytes: usize,
    seq: u64,
    config: DedupConfig,
    /// Requests answered from the cache or dropped as running.
    duplicates: u64,
}

/// What a cached reply counts against the byte bound.
fn size(reply: Option<&Message>) -> usize {
    64 + reply.map_or(0, |m| {
        m.uri().len()
            + m.content().len()
            + m.auth.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
    })
}

impl<K: Copy + Eq + Hash> DedupCache<K> {
    pub(crate) fn new(config: DedupConfig) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            per_peer: HashMap::new(),
            per_peer_len: HashMap::new(),
            bytes: 0,
            seq: 0,
            config,
            duplicates: 0,
        }
    }

    /// Entries now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Requests answered from the cache, or dropped while their first copy ran.
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// A request `id` from `peer` that asks to be kept `ttl` arrived.
    pub(crate) fn begin(&mut self, peer: K, id: u64, ttl: Duration, now: Instant) -> Begin {
        if self.config.max_entries == 0 || self.config.max_per_peer == 0 {
            return Begin::New;
        }
        self.prune(now);
        match self.entries.get(&(peer, id)) {
            Some(e) if e.expires > now => {
                self.duplicates += 1;
                return match &e.state {
                    State::Running => Begin::Running,
                    State::Done(reply) => Begin::Done(reply.clone()),
                };
            }
            Some(_) => self.remove(peer, id),
            None => {}
        }
        let cost = size(None);
        while self.entries.len() >= self.config.max_entries
            || self.bytes + cost > self.config.max_bytes
        {
            if !self.evict_oldest() {
                break;
            }
        }
        while self.per_peer_len.get(&peer).copied().unwrap_or(0) >= self.config.max_per_peer {
            if !self.evict_oldest_of(peer) {
                break;
            }
        }
        self.seq += 1;
        let seq = self.seq;
        let ttl = ttl.min(self.config.max_age);
        self.entries.insert(
            (peer, id),
            Entry {
                seq,
                expires: now + ttl,
                bytes: cost,
                state: State::Running,
            },
        );
        self.bytes += cost;
        self.order.push_back((peer, id, seq));
        self.per_peer.entry(peer).or_default().push_back((id, seq));
        *self.per_peer_len.entry(peer).or_insert(0) += 1;
        self.compact();
        Begin::New
    }

    /// The handler of request `id` from `peer` answered `reply`: keep it for the retries.
    pub(crate) fn finish(&mut self, peer: K, id: u64, reply: Option<&Message>) {
        let cost = size(reply);
        let Some(e) = self.entries.get(&(peer, id)) else {
            return;
        };
        if !matches!(e.state, State::Running) {
            return;
        }
        let old = e.bytes;
        if cost > self.config.max_bytes {
            tracing::debug!(id, "reply too large for the at-most-once cache; not kept");
            return self.remove(peer, id);
        }
        // Make room, oldest first, without evicting this entry itself.
        while self.bytes - old + cost > self.config.max_bytes {
            let Some(&(p, i, s)) = self.order.front() else {
                break;
            };
            if !self.is_live(p, i, s) {
                self.order.pop_front();
                continue;
            }
            if p == peer && i == id {
                break;
            }
            self.order.pop_front();
            self.remove(p, i);
        }
        if let Some(e) = self.entries.get_mut(&(peer, id)) {
            self.bytes = self.bytes - e.bytes + cost;
            e.bytes = cost;
            e.state = State::Done(reply.cloned());
        }
    }

    /// The handler of request `id` did not finish (it panicked, its connection ended): forget
    /// it, so that a retry runs it.
    pub(crate) fn abandon(&mut self, peer: K, id: u64) {
        if self
            .entries
            .get(&(peer, id))
            .is_some_and(|e| matches!(e.state, State::Running))
        {
            self.remove(peer, id);
        }
    }

    fn remove(&mut self, peer: K, id: u64) {
        if let Some(e) = self.entries.remove(&(peer, id)) {
            self.bytes -= e.bytes;
            if let Some(n) = self.per_peer_len.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer_len.remove(&peer);
                    self.per_peer.remove(&peer);
                }
            }
        }
    }

    fn is_live(&self, peer: K, id: u64, seq: u64) -> bool {
        self.entries.get(&(peer, id)).is_some_and(|e| e.seq == seq)
    }

    /// Drop entries from the front of the insertion order while they have expired. An entry
    /// kept shorter than one before it waits for that one (or for eviction): bounded anyway.
    fn prune(&mut self, now: Instant) {
        while let Some(&(peer, id, seq)) = self.order.front() {
            match self.entries.get(&(peer, id)) {
                Some(e) if e.seq == seq && e.expires > now => break,
                Some(e) if e.seq == seq => {
                    self.order.pop_front();
                    self.remove(peer, id);
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((peer, id, seq)) = self.order.pop_front() {
            if self.is_live(peer, id, seq) {
                self.remove(peer, id);
                return true;
            }
        }
        false
    }

    fn evict_oldest_of(&mut self, peer: K) -> bool {
        loop {
            let Some((id, seq)) = self.per_peer.get_mut(&peer).and_then(VecDeque::pop_front) else {
                return false;
            };
            if self.is_live(peer, id, seq) {
                self.remove(peer, id);
                return true;
            }
        }
    }

    /// Entries removed out of order leave stale positions behind; keep the queues within twice
    /// the live count.
    fn compact(&mut self) {
        let limit = 2 * self.entries.len().max(16);
        if self.order.len() > limit {
            let entries = &self.entries;
            self.order
                .retain(|(p, i, s)| entries.get(&(*p, *i)).is_some_and(|e| e.seq == *s));
        }
        if let Some(q) = self.order.back().map(|(p, _, _)| *p)
            && let Some(ids) = self.per_peer.get_mut(&q)
            && ids.len() > 2 * self.per_peer_len.get(&q).copied().unwrap_or(0).max(16)
        {
            let entries = &self.entries;
            ids.retain(|(i, s)| entries.get(&(q, *i)).is_some_and(|e| e.seq == *s));
        }
    }
}

/// A node's cache behind a lock, for its receive paths. A request that does not ask for
/// at-most-once execution costs one auth-field lookup and takes no lock.
#[derive(Debug)]
pub(crate) struct Dedup<K> {
    cache: Mutex<DedupCache<K>>,
}

impl<K: Copy + Eq + Hash> Dedup<K> {
    pub(crate) fn new(config: DedupConfig) -> Self {
        Self {
            cache: Mutex::new(DedupCache::new(config)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DedupCache<K>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to do with `msg` from `peer`: `None` when it does not ask for at-most-once
    /// execution (run it as usual), else its request id and what the cache says.
    #[inline]
    pub(crate) fn begin(&self, peer: K, msg: &Message) -> Option<(u64, Begin)> {
        // A marked request carries at least `rid` and `once`: a plain request (one field, its
        // request id, or none) is decided without a lookup.
        if msg.auth.len() < 2 {
            return None;
        }
        let ttl = msg.at_most_once()?;
        let id = msg.request_id()?;
        let begin = self.lock().begin(peer, id, ttl, Instant::now());
        if !matches!(begin, Begin::New) {
            tracing::debug!(id, "request already seen: its handler does not run again");
        }
        Some((id, begin))
    }

    /// [`begin`](Self::begin), told as what the receiving side does with `msg`.
    #[inline]
    pub(crate) fn admit(&self, peer: K, msg: &Message) -> Admit {
        match self.begin(peer, msg) {
            None => Admit::Run(None),
            Some((id, Begin::New)) => Admit::Run(Some(id)),
            Some((_, Begin::Running | Begin::Done(None))) => Admit::Drop,
            Some((_, Begin::Done(Some(reply)))) => Admit::Cached(reply),
        }
    }

    /// Run `handler` for `req` from `peer` at most once: `None` for a copy to drop, else the
    /// reply to send (the handler's, or the cached one of the first copy).
    pub(crate) async fn call_once(
        &self,
        peer: K,
        handler: &BoxedHandler,
        req: Request,
    ) -> Option<Option<Message>> {
        let running = match self.admit(peer, &req.message) {
            Admit::Run(id) => id.map(|id| Running::new(self, peer, id)),
            Admit::Cached(reply) => return Some(Some(reply)),
            Admit::Drop => return None,
        };
        let reply = handler.call(req).await;
        if let Some(running) = running {
            running.finish(reply.as_ref());
        }
        Some(reply)
    }

    /// The handler of request `id` from `peer` answered `reply` (before its reply reference
    /// is set and it is sealed).
    pub(crate) fn finish(&self, peer: K, id: u64, reply: Option<&Message>) {
        self.lock().finish(peer, id, reply);
    }

    /// The handler of request `id` from `peer` did not finish: a retry runs it.
    pub(crate) fn abandon(&self, peer: K, id: u64) {
        self.lock().abandon(peer, id);
    }

    /// Requests answered from the cache, or dropped while their first copy ran.
    pub(crate) fn duplicates(&self) -> u64 {
        self.lock().duplicates()
    }
}

/// What the receiving side does with a request, by the at-most-once cache ([`Dedup::admit`]).
#[derive(Debug)]
pub(crate) enum Admit {
    /// Run its handler; with the request id to finish when it asked for at-most-once execution.
    Run(Option<u64>),
    /// A copy of an answered request: send this reply again (sealed afresh).
    Cached(Message),
    /// A copy of a request whose handler runs now, or answered nothing: drop it (a valid frame).
    Drop,
}

/// A handler running for a request that asked for at-most-once execution: [`finish`](Self::finish)
/// keeps its reply; dropped unfinished (the handler panicked, its task ended), the request is
/// forgotten so that a retry runs it.
#[derive(Debug)]
pub(crate) struct Running<'a, K: Copy + Eq + Hash> {
    dedup: &'a Dedup<K>,
    peer: K,
    id: u64,
    done: bool,
}

impl<'a, K: Copy + Eq + Hash> Running<'a, K> {
    pub(crate) fn new(dedup: &'a Dedup<K>, peer: K, id: u64) -> Self {
        Self {
            dedup,
            peer,
            id,
            done: false,
        }
    }

    /// Hand the entry over without finishing or abandoning it: its id, for a `Running` made
    /// again where the handler goes on (the server finishes a pending handler in another
    /// future).
    pub(crate) fn detach(mut self) -> u64 {
        self.done = true;
        self.id
    }

    /// The handler answered `reply` (before its reply reference is set and it is sealed).
    pub(crate) fn finish(mut self, reply: Option<&Message>) {
        self.done = true;
        self.dedup.finish(self.peer, self.id, reply);
    }
}

impl<K: Copy + Eq + Hash> Drop for Running<'_, K> {
    fn drop(&mut self) {
        if !self.done {
            self.dedup.abandon(self.peer, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageType;

    const TTL: Duration = Duration::from_secs(10);

    fn reply(n: usize) -> Message {
        Message::new(MessageType::RESPOND_URI, "u", vec![b'x'; n])
    }

    #[test]
    fn a_repeated_id_gets_the_reply_and_the_handler_runs_once() {
        let now = Instant::now();
        let mut c = DedupCache::new(DedupConfig::default());
        assert!(matches!(c.begin(1u8, 7, TTL, now), Begin::New));
        assert!(matches!(c.begin(1, 7, TTL, now), Begin::Running));
        c.finish(1, 7, Some(&reply(3)));
        match c.begin(1, 7, TTL, now) {
            Begin::Done(Some(m)) => assert_eq!(m.content().len(), 3),
            other => panic!("{other:?}"),
        }
        // The same id from another peer is another request.
        assert!(matches!(c.begin(2, 7, TTL, now), Begin::New));
        assert_eq!(c.duplicates(), 2);
        // An abandoned request runs again; a finished one is not abandoned.
        c.abandon(2, 7);
        assert!(matches!(c.begin(2, 7, TTL, now), Begin::New));
        c.abandon(1, 7);
        assert!(matches!(c.begin(1, 7, TTL, now), Begin::Done(_)));
    }

    #[test]
    fn entries_expire_after_their_ttl_at_most_max_age() {
        let t0 = Instant::now();
        let config = DedupConfig::default().max_age(Duration::from_secs(5));
        let mut c = DedupCache::new(config);
        assert!(matches!(
            c.begin(1u8, 1, Duration::from_secs(2), t0),
            Begin::New
        ));
        c.finish(1, 1, None);
        // Asked for 60 s, kept 5 s.
        assert!(matches!(
            c.begin(1, 2, Duration::from_secs(60), t0),
            Begin::New
        ));
        c.finish(1, 2, Some(&reply(1)));
        let t = t0 + Duration::from_secs(2);
        assert!(matches!(c.begin(1, 1, TTL, t), Begin::New), "1 expired");
        assert!(matches!(c.begin(1, 2, TTL, t), Begin::Done(Some(_))));
        let t = t0 + Duration::from_secs(5);
        assert!(matches!(c.begin(1, 2, TTL, t), Begin::New), "2 expired");
        // Pruning drops expired entries without a lookup.
        c.prune(t0 + Duration::from_secs(3600));
        assert_eq!(c.len(), 0);
        assert_eq!(c.bytes, 0);
    }

    #[test]
    fn bounded_in_total_per_peer_and_bytes() {
        let now = Instant::now();
        let config = DedupConfig::default()
            .max_entries(4)
            .max_per_peer(2)
            .max_bytes(64 * 4 + 100);
        let mut c = DedupCache::new(config);
        for id in 1..=3 {
            assert!(matches!(c.begin(1u8, id, TTL, now), Begin::New));
            c.finish(1, id, None);
        }
        // Peer 1 holds at most 2: its oldest went.
        assert_eq!(c.per_peer_len[&1], 2);
        assert!(!c.entries.contains_key(&(1, 1)));
        for id in 1..=3 {
            assert!(matches!(c.begin(2u8, id, TTL, now), Begin::New));
        }
        assert!(c.len() <= 4);
        // A reply that needs room evicts the oldest entries, not itself.
        assert!(matches!(c.begin(3u8, 1, TTL, now), Begin::New));
        c.finish(3, 1, Some(&reply(60)));
        assert!(matches!(c.begin(3, 1, TTL, now), Begin::Done(Some(_))));
        assert!(c.bytes <= 64 * 4 + 100, "{}", c.bytes);
        // A reply over the whole byte bound is not kept.
        assert!(matches!(c.begin(3u8, 2, TTL, now), Begin::New));
        c.finish(3, 2, Some(&reply(1000)));
        assert!(matches!(c.begin(3, 2, TTL, now), Begin::New));
        // Stale positions stay bounded under churn.
        for id in 100..10_000 {
            c.begin(4, id, TTL, now);
            c.finish(4, id, None);
        }
        assert!(c.order.len() <= 2 * 16 + 1);
        assert!(c.per_peer.values().all(|q| q.len() <= 2 * 16 + 1));
        let off = DedupConfig::default().max_entries(0);
        let mut none = DedupCache::new(off);
        assert!(matches!(none.begin(1u8, 1, TTL, now), Begin::New));
        assert!(matches!(none.begin(1u8, 1, TTL, now), Begin::New));
    }
}
