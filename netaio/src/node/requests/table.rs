//! The request table: request ids, bounds, reply matching and deadlines (soft and hard), as
//! data. The only request/reply correlation code in the crate; the TCP client, the TCP server
//! and the UDP node each keep one, behind [`Requests`](super::Requests).
//!
//! [`RequestTable`] is I/O-free: time comes in as `now`, a deadline is a value
//! ([`RequestTable::poll_timeout`], [`RequestTable::handle_timeout`]), so its rules are
//! unit-tested with made-up instants. One timer per node drives it (see
//! [`Requests`](super::Requests)): the table says when that timer must wake
//! ([`RequestTable::fire`]) and when a new deadline comes before the one it sleeps to
//! ([`RequestTable::take_wake`]); its expiries reach the callers as events (a hard timeout
//! answers the request, a soft one bumps the call's soft-timeout counter).
//!
//! A request id is random (64 bits, never 0, never one in use or remembered as timed out), so
//! that nobody without the node's keys can predict it: with an auth plugin that covers the reply
//! reference (the native HMAC and signature plugins cover every field), a captured old reply
//! cannot answer a new request.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Duration;

use bytes::Bytes;
use rustc_hash::FxBuildHasher;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::late::{Expired, ExpiredIds, LateReplyConfig};
use crate::error::RequestError;
use crate::plugin::Plugins;
use crate::{Message, MessageType};

/// Soft timeouts shorter than this are kept to the microsecond (see
/// [`RequestTable::next_is_fine`]): tokio's timers fire on millisecond ticks.
pub(crate) const FINE: Duration = Duration::from_millis(1);

/// What a waiting caller receives.
pub(crate) type Answer = Result<Message, RequestError>;

/// How a reply without a reply reference is matched to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Matching {
    /// By reply reference, else by (expected type, uri) from the request's peer.
    #[default]
    Native,
    /// As `Native`, and an error reply that matches nothing answers the peer's oldest request:
    /// Python netaio 0.0.9 sends error replies without any reference (uri `ERROR`, or empty).
    Python,
}

/// Limits of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Requests waiting in the whole table.
    pub(crate) total: usize,
    /// Requests waiting for one peer.
    pub(crate) per_peer: usize,
}

/// A request waiting for its reply.
#[derive(Debug)]
pub(crate) struct Pending<P> {
    pub(crate) peer: P,
    pub(crate) uri: Bytes,
    pub(crate) sent: MessageType,
    inner: Plugins,
    /// When it was registered (its round trip is measured from here).
    pub(crate) started: Instant,
    /// The hard deadline.
    deadline: Instant,
    timeout: Duration,
    /// The soft deadline, while one is armed.
    soft: Option<Instant>,
    /// Soft deadlines passed so far.
    soft_passed: u32,
    /// Where a passed soft deadline is announced (`soft_passed`), for calls that set one.
    soft_events: Option<watch::Sender<u32>>,
    /// Its soft timeout is shorter than [`FINE`]: its soft deadlines are kept to the
    /// microsecond.
    soft_fine: bool,
    /// Sent more than once: which send a reply answers is unknown (no round-trip sample).
    pub(crate) resent: bool,
    /// Registration order (ids are random): "the oldest request" is the lowest.
    seq: u64,
    tx: oneshot::Sender<Answer>,
}

impl<P> Pending<P> {
    /// The call's inner plugins (the reply is opened with them).
    pub(crate) fn inner(&self) -> &Plugins {
        &self.inner
    }

    /// Hand the caller its answer (a caller that has gone away is no error).
    pub(crate) fn answer(self, answer: Answer) {
        let _ = self.tx.send(answer);
    }
}

/// When a request started and when it times out: its hard deadline (`started + timeout`,
/// clamped), and its soft one when it has one.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) soft: Option<Instant>,
    /// Told each time the soft deadline passes (calls with a soft timeout only); kept across a
    /// restart so the caller's view of the call stays one.
    pub(crate) soft_events: Option<watch::Sender<u32>>,
}

/// A request just registered.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) id: u64,
    pub(crate) deadline: Instant,
    pub(crate) soft: Option<Instant>,
    pub(crate) rx: oneshot::Receiver<Answer>,
    /// The soft-timeout events (how many soft deadlines passed), when it has a soft deadline:
    /// keep it to [`restart`](RequestTable::restart) the request with the same events.
    pub(crate) soft_events: Option<watch::Sender<u32>>,
}

/// What a received reply is to the table.
#[derive(Debug)]
pub(crate) enum Taken<P> {
    /// The answer to this waiting request (taken out of the table).
    Answers(Pending<P>),
    /// The reply to this request, which timed out before (a late reply).
    Late(Expired<P>),
    /// Nothing waiting or remembered.
    Nothing,
}

impl<P> Taken<P> {
    /// The waiting request it answers, if any.
    #[cfg(test)]
    pub(crate) fn pending(self) -> Option<Pending<P>> {
        match self {
            Taken::Answers(p) => Some(p),
            _ => None,
        }
    }
}

/// What [`RequestTable::handle_timeout`] expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Expiries {
    /// Soft deadlines passed (the requests still wait).
    pub(crate) soft: usize,
    /// Requests failed with [`RequestError::Timeout`].
    pub(crate) hard: usize,
}

/// Counters of one table (see [`RequestStats`](super::RequestStats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) timeouts: u64,
    pub(crate) soft_timeouts: u64,
    pub(crate) late_replies: u64,
    pub(crate) retries: u64,
}

/// Whether a soft deadline at `soft` set at `now` is a soft timeout shorter than [`FINE`].
fn timeout_soft_fine(soft: Option<Instant>, now: Instant) -> bool {
    soft.is_some_and(|s| s.saturating_duration_since(now) < FINE)
}

/// Whether `reply` (without a reference) can answer a request of type `sent`: the type the
/// request expects, or any error type. A REQUEST_URI accepts OK too: Python nodes answer requests
/// with `make_ok_msg` as often as with `make_respond_uri_msg`.
fn answers(sent: MessageType, reply: MessageType) -> bool {
    if reply.is_error() {
        return true;
    }
    match sent {
        MessageType::REQUEST_URI => matches!(reply, MessageType::RESPOND_URI | MessageType::OK),
        MessageType::CREATE_URI
        | MessageType::UPDATE_URI
        | MessageType::DELETE_URI
        | MessageType::PUBLISH_URI => reply == MessageType::OK,
        MessageType::SUBSCRIBE_URI => reply == MessageType::CONFIRM_SUBSCRIBE,
        MessageType::UNSUBSCRIBE_URI => reply == MessageType::CONFIRM_UNSUBSCRIBE,
        MessageType::ADVERTISE_PEER => reply == MessageType::PEER_DISCOVERED,
        _ => false,
    }
}

/// Whether a message can be a reply at all (cheap test before any lookup).
pub(crate) fn may_answer(t: MessageType) -> bool {
    t.is_error()
        || matches!(
            t,
            MessageType::RESPOND_URI
                | MessageType::OK
                | MessageType::CONFIRM_SUBSCRIBE
                | MessageType::CONFIRM_UNSUBSCRIBE
                | MessageType::PEER_DISCOVERED
        )
}

/// Requests waiting for replies, keyed by request id, for peers of type `P` (a socket address on
/// UDP, a connection id on a server, `()` on one client connection).
#[derive(Debug)]
pub(crate) struct RequestTable<P> {
    /// Fx hashing, not SipHash (a fifth of the table's cost per request): only this node inserts
    /// keys, and they are random ids and its own peers, so no sender can make them collide.
    entries: HashMap<u64, Pending<P>, FxBuildHasher>,
    /// Hard deadlines in order, for `poll_timeout` and `handle_timeout`.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Soft deadlines in order (empty unless a call set one).
    soft_deadlines: BTreeSet<(Instant, u64)>,
    per_peer: HashMap<P, usize, FxBuildHasher>,
    /// Requests that timed out, for their late replies.
    expired: ExpiredIds<P>,
    limits: Limits,
    matching: Matching,
    closed: bool,
    counts: Counts,
    next_seq: u64,
    /// The instant the node's timer sleeps to (`None`: until woken).
    armed: Option<Instant>,
    /// A deadline came before `armed`: the timer must be woken ([`take_wake`](Self::take_wake)).
    wake: bool,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug> RequestTable<P> {
    pub(crate) fn new(limits: Limits, matching: Matching, late: LateReplyConfig) -> Self {
        Self {
            entries: HashMap::default(),
            deadlines: BTreeSet::new(),
            soft_deadlines: BTreeSet::new(),
            per_peer: HashMap::default(),
            expired: ExpiredIds::new(late),
            limits,
            matching,
            closed: false,
            counts: Counts::default(),
            next_seq: 0,
            armed: None,
            wake: false,
        }
    }

    /// Whether a deadline was added that comes before the one the node's timer sleeps to
    /// (then the timer must be woken to sleep less); cleared by the call. Most requests'
    /// deadlines come after the earliest one, so the timer is rarely woken.
    pub(crate) fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.wake)
    }

    fn arm(&mut self, at: Instant) {
        if self.armed.is_none_or(|a| at < a) {
            self.armed = Some(at);
            self.wake = true;
        }
    }

    /// The node's timer woke at `now`: pass the deadlines due, and say when to wake next
    /// (`None`: when [`take_wake`](Self::take_wake) says so).
    pub(crate) fn fire(&mut self, now: Instant) -> (Expiries, Option<Instant>) {
        let out = self.handle_timeout(now);
        self.armed = self.poll_timeout();
        self.wake = false;
        (out, self.armed)
    }

    /// Whether the next deadline is the soft deadline of a request whose soft timeout is
    /// shorter than [`FINE`]: the node's timer then waits for it more finely than tokio's
    /// millisecond ticks (without it, a 50 µs soft timeout would pass after 1 to 2 ms).
    pub(crate) fn next_is_fine(&self) -> bool {
        let Some(&(soft, id)) = self.soft_deadlines.first() else {
            return false;
        };
        if self.deadlines.first().is_some_and(|(hard, _)| *hard < soft) {
            return false;
        }
        self.entries.get(&id).is_some_and(|p| p.soft_fine)
    }

    /// Requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The table's counters.
    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    /// A random request id: not 0, not waiting, not remembered as timed out.
    fn fresh_id(&self) -> u64 {
        loop {
            let id: u64 = rand::random();
            if id != 0 && !self.entries.contains_key(&id) && !self.expired.contains(id) {
                return id;
            }
        }
    }

    /// Register a request to `peer`: give `msg` a fresh request id and remember what answers it
    /// until `now + timeout`, with a soft deadline at `now + soft` when set. Refused when the
    /// table is closed or a bound is reached.
    pub(crate) fn start(
        &mut self,
        peer: P,
        msg: &mut Message,
        inner: Plugins,
        timeout: Duration,
        soft: Option<Duration>,
        now: Instant,
    ) -> Result<Started, RequestError> {
        self.admit(peer)?;
        let id = self.fresh_id();
        msg.set_request_id(id);
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + crate::node::sane(timeout));
        let soft = soft.map(|s| now + crate::node::sane(s).min(timeout));
        let soft_events = soft.map(|_| watch::Sender::new(0));
        let timing = Timing {
            started: now,
            deadline,
            timeout,
            soft,
            soft_events: soft_events.clone(),
        };
        let rx = self.insert(id, peer, msg, inner, timing);
        if let Some(p) = self.entries.get_mut(&id) {
            p.soft_fine = timeout_soft_fine(soft, now);
        }
        Ok(Started {
            id,
            deadline,
            soft,
            rx,
            soft_events,
        })
    }

    /// Register request `id` again, as it was (same id, same hard deadline, same soft-timeout
    /// events): it is about to be re-sent after its link came back. Counted as a retry; its
    /// round trip is not sampled.
    pub(crate) fn restart(
        &mut self,
        id: u64,
        peer: P,
        msg: &Message,
        inner: Plugins,
        timing: Timing,
    ) -> Result<oneshot::Receiver<Answer>, RequestError> {
        self.admit(peer)?;
        if self.entries.contains_key(&id) {
            return Err(RequestError::TooManyInFlight(self.limits.per_peer));
        }
        let rx = self.insert(id, peer, msg, inner, timing);
        if let Some(p) = self.entries.get_mut(&id) {
            p.resent = true;
        }
        self.counts.retries += 1;
        Ok(rx)
    }

    fn admit(&self, peer: P) -> Result<(), RequestError> {
        if self.closed {
            // Closed for good before this request: it never left (`Closed` says that a reply
            // was waited for).
            return Err(RequestError::Send(crate::SendError::Closed));
        }
        if self.entries.len() >= self.limits.total {
            return Err(RequestError::TooManyInFlight(self.limits.total));
        }
        let count = self.per_peer.get(&peer).copied().unwrap_or(0);
        if count >= self.limits.per_peer {
            return Err(RequestError::TooManyInFlight(self.limits.per_peer));
        }
        Ok(())
    }

    fn insert(
        &mut self,
        id: u64,
        peer: P,
        msg: &Message,
        inner: Plugins,
        timing: Timing,
    ) -> oneshot::Receiver<Answer> {
        let Timing {
            started,
            deadline,
            timeout,
            soft,
            soft_events,
        } = timing;
        let (tx, rx) = oneshot::channel();
        self.next_seq += 1;
        self.entries.insert(
            id,
            Pending {
                peer,
                uri: msg.uri().clone(),
                sent: msg.message_type,
                inner,
                started,
                deadline,
                timeout,
                soft,
                soft_passed: soft_events.as_ref().map_or(0, |e| *e.borrow()),
                soft_events,
                soft_fine: false,
                resent: false,
                seq: self.next_seq,
                tx,
            },
        );
        self.deadlines.insert((deadline, id));
        self.arm(deadline);
        if let Some(s) = soft {
            self.soft_deadlines.insert((s, id));
            self.arm(s);
        }
        *self.per_peer.entry(peer).or_insert(0) += 1;
        rx
    }

    /// Forget a request (its caller gave up); `None` if it was already answered.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Pending<P>> {
        let p = self.entries.remove(&id)?;
        self.deadlines.remove(&(p.deadline, id));
        if let Some(s) = p.soft {
            self.soft_deadlines.remove(&(s, id));
        }
        if let Some(n) = self.per_peer.get_mut(&p.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&p.peer);
            }
        }
        Some(p)
    }

    /// How many soft deadlines request `id` has passed; `None` once it is no longer waiting.
    #[cfg(test)]
    pub(crate) fn soft_passed(&self, id: u64) -> Option<u32> {
        self.entries.get(&id).map(|p| p.soft_passed)
    }

    /// The next deadline of request `id` (its soft one while armed, else its hard one).
    #[cfg(test)]
    pub(crate) fn next_deadline(&self, id: u64) -> Option<Instant> {
        self.entries.get(&id).map(|p| p.soft.unwrap_or(p.deadline))
    }

    /// Request `id` is being sent again (a retry): arm its next soft deadline at `soft` (if
    /// any, and before its hard deadline); its round trip is no longer sampled.
    pub(crate) fn resend(&mut self, id: u64, soft: Option<Instant>) {
        let Some(p) = self.entries.get_mut(&id) else {
            return;
        };
        if let Some(old) = p.soft.take() {
            self.soft_deadlines.remove(&(old, id));
        }
        p.soft = soft.filter(|s| *s < p.deadline);
        p.resent = true;
        if let Some(s) = p.soft {
            self.soft_deadlines.insert((s, id));
            self.arm(s);
        }
        self.counts.retries += 1;
    }

    /// What a reply from `from` answers: the request its reply reference names (only when that
    /// request went to `from`), else, for a reply without a reference, the oldest request to
    /// `from` for the same uri that this type answers, else (Python matching, error replies
    /// only) the oldest request to `from`. A reference to a request that timed out (and is
    /// still remembered) makes it a late reply. `now` is read only for that case and for a
    /// request with a soft deadline armed.
    pub(crate) fn take_reply(
        &mut self,
        from: P,
        reply: &Message,
        now: impl Fn() -> Instant,
    ) -> Taken<P> {
        if let Some(id) = reply.reply_ref() {
            return match self.take_ref(from, id) {
                Some(p) => Taken::Answers(self.answered(p, &now)),
                None => match self.expired.take(from, id, now()) {
                    Some(e) => {
                        self.counts.late_replies += 1;
                        Taken::Late(e)
                    }
                    None => {
                        tracing::debug!(id, "reply for a request no longer waiting dropped");
                        Taken::Nothing
                    }
                },
            };
        }
        if !may_answer(reply.message_type) {
            return Taken::Nothing;
        }
        if self.entries.is_empty() {
            return self.take_late_by_uri(from, reply, now());
        }
        let by_uri = self
            .entries
            .iter()
            .filter(|(_, p)| {
                p.peer == from && p.uri == *reply.uri() && answers(p.sent, reply.message_type)
            })
            .min_by_key(|(_, p)| p.seq)
            .map(|(id, _)| *id);
        let id = by_uri.or_else(|| {
            (self.matching == Matching::Python && reply.message_type.is_error())
                .then(|| self.oldest(from))
                .flatten()
        });
        match id.and_then(|id| self.remove(id)) {
            Some(p) => Taken::Answers(self.answered(p, &now)),
            None => self.take_late_by_uri(from, reply, now()),
        }
    }

    /// Python matching only: a reply without a reference that answers no waiting request is
    /// the late reply of the oldest timed-out request to `from` for its uri that its type
    /// answers (Python netaio 0.0.9 replies carry no reference, so that is all there is to go
    /// by). Native peers' replies always carry one.
    fn take_late_by_uri(&mut self, from: P, reply: &Message, now: Instant) -> Taken<P> {
        if self.matching != Matching::Python || self.expired.is_empty() {
            return Taken::Nothing;
        }
        let t = reply.message_type;
        match self.expired.take_oldest(from, now, |e| {
            e.uri == *reply.uri() && answers(e.sent, t) && !t.is_error()
        }) {
            Some((_, e)) => {
                self.counts.late_replies += 1;
                Taken::Late(e)
            }
            None => Taken::Nothing,
        }
    }

    /// Whether a reply without a reference may still be a late reply (Python matching, with
    /// timed-out requests remembered): the receive path then looks it up even when no request
    /// waits.
    pub(crate) fn late_by_uri_possible(&self) -> bool {
        self.matching == Matching::Python && !self.expired.is_empty()
    }

    /// A request is answered: a soft deadline it passed that no timer has handled yet still
    /// counts (its caller's timer and the reply can come in either order).
    fn answered(&mut self, p: Pending<P>, now: &impl Fn() -> Instant) -> Pending<P> {
        if p.soft.is_some_and(|s| s <= now()) {
            self.counts.soft_timeouts += 1;
        }
        p
    }

    /// The request an error reply that failed the instance plugins answers (a server sends auth
    /// and decryption errors without plugins): by reference, or with Python matching the oldest
    /// request to `from`. Only error types qualify: such a message never counts as a success.
    pub(crate) fn take_unauthenticated(
        &mut self,
        from: P,
        reply_ref: Option<u64>,
        reply_type: MessageType,
    ) -> Option<Pending<P>> {
        if !reply_type.is_error() {
            return None;
        }
        let id = match reply_ref {
            Some(id) => id,
            None if self.matching == Matching::Python => self.oldest(from)?,
            None => return None,
        };
        self.take_ref(from, id)
    }

    fn take_ref(&mut self, from: P, id: u64) -> Option<Pending<P>> {
        match self.entries.get(&id) {
            Some(p) if p.peer == from => self.remove(id),
            Some(p) => {
                tracing::debug!(id, expected = ?p.peer, got = ?from, "reply from another peer than the request's dropped");
                None
            }
            None => None,
        }
    }

    fn oldest(&self, from: P) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, p)| p.peer == from)
            .min_by_key(|(_, p)| p.seq)
            .map(|(id, _)| *id)
    }

    /// The earliest deadline, soft or hard, if any request waits.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let hard = self.deadlines.first().map(|(t, _)| *t);
        let soft = self.soft_deadlines.first().map(|(t, _)| *t);
        match (hard, soft) {
            (Some(h), Some(s)) => Some(h.min(s)),
            (h, s) => h.or(s),
        }
    }

    /// Pass every deadline that is `now` or earlier: a soft one marks its request (which still
    /// waits; [`soft_passed`](Self::soft_passed) counts them, and its soft-timeout events
    /// announce the new count), a hard one fails its request with [`RequestError::Timeout`] and
    /// remembers its id for a late reply.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Expiries {
        let mut out = Expiries::default();
        while let Some(&(t, id)) = self.soft_deadlines.first() {
            if t > now {
                break;
            }
            self.soft_deadlines.remove(&(t, id));
            if let Some(p) = self.entries.get_mut(&id)
                && p.soft == Some(t)
            {
                p.soft = None;
                p.soft_passed += 1;
                if let Some(events) = &p.soft_events {
                    events.send_replace(p.soft_passed);
                }
                out.soft += 1;
            }
        }
        while let Some(&(t, id)) = self.deadlines.first() {
            if t > now {
                break;
            }
            // `remove` takes the deadline out too, so the loop makes progress every round.
            match self.remove(id) {
                Some(p) => {
                    self.expired.remember(
                        id,
                        Expired {
                            id,
                            peer: p.peer,
                            uri: p.uri.clone(),
                            sent: p.sent,
                            deadline: p.deadline,
                        },
                        now,
                    );
                    let timeout = p.timeout;
                    p.answer(Err(RequestError::Timeout(timeout)));
                    out.hard += 1;
                }
                None => {
                    self.deadlines.remove(&(t, id));
                }
            }
        }
        self.counts.soft_timeouts += out.soft as u64;
        self.counts.timeouts += out.hard as u64;
        out
    }

    /// Fail every request to `peer` with [`RequestError::Closed`] (its connection ended).
    pub(crate) fn fail_peer(&mut self, peer: P) -> usize {
        let ids: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, p)| p.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(p) = self.remove(*id) {
                p.answer(Err(RequestError::Closed));
            }
        }
        ids.len()
    }

    /// Fail every request with [`RequestError::Closed`]; `for_good` refuses new ones too.
    pub(crate) fn fail_all(&mut self, for_good: bool) -> usize {
        self.fail_all_with(for_good, || RequestError::Closed)
    }

    /// [`fail_all`](Self::fail_all) with the error `why` makes.
    pub(crate) fn fail_all_with(
        &mut self,
        for_good: bool,
        why: impl Fn() -> RequestError,
    ) -> usize {
        self.closed |= for_good;
        let ids: Vec<u64> = self.entries.keys().copied().collect();
        for id in &ids {
            if let Some(p) = self.remove(*id) {
                p.answer(Err(why()));
            }
        }
        ids.len()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Small bounds, for the tests here and in `requests/mod.rs`.
    pub(in crate::node::requests) const LIMITS: Limits = Limits {
        total: 8,
        per_peer: 4,
    };
    pub(in crate::node::requests) const SECOND: Duration = Duration::from_secs(1);

    fn table(matching: Matching) -> RequestTable<u8> {
        RequestTable::new(LIMITS, matching, LateReplyConfig::default())
    }

    fn start(
        t: &mut RequestTable<u8>,
        peer: u8,
        msg: Message,
        now: Instant,
    ) -> (u64, oneshot::Receiver<Answer>) {
        let mut msg = msg;
        let s = t
            .start(peer, &mut msg, Plugins::new(), SECOND, None, now)
            .unwrap();
        assert_eq!(msg.request_id(), Some(s.id));
        (s.id, s.rx)
    }

    fn take(t: &mut RequestTable<u8>, from: u8, r: &Message) -> Option<Pending<u8>> {
        t.take_reply(from, r, Instant::now).pending()
    }

    /// A message of type `t` at `uri`, with no content.
    fn typed(t: MessageType, uri: &str) -> Message {
        Message::new(t, uri.to_owned(), "")
    }

    fn reply(t: MessageType, uri: &str, rref: Option<u64>) -> Message {
        let mut m = Message::new(t, uri.to_owned(), "");
        if let Some(r) = rref {
            m.set_reply_ref(r);
        }
        m
    }

    #[test]
    fn a_reply_reference_names_its_request_and_only_from_that_peer() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let (a, _ra) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "x"), now);
        let (b, _rb) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "x"), now);
        assert_ne!(a, b);
        let r = reply(MessageType::RESPOND_URI, "x", Some(b));
        assert!(take(&mut t, 2, &r).is_none(), "another peer cannot answer");
        assert_eq!(t.len(), 2);
        assert!(take(&mut t, 1, &r).is_some());
        assert!(take(&mut t, 1, &r).is_none(), "answered once");
        assert_eq!(t.len(), 1);
        // A reference to no waiting request is not matched by uri instead.
        let stale = reply(MessageType::RESPOND_URI, "x", Some(999));
        assert!(take(&mut t, 1, &stale).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn without_a_reference_the_oldest_request_for_the_uri_that_the_type_answers() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let (create, _r1) = start(&mut t, 1, typed(MessageType::CREATE_URI, "u"), now);
        let (req1, _r2) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "u"), now);
        let (req2, _r3) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "u"), now);
        // RESPOND_URI answers requests, not the CREATE_URI.
        let p = take(&mut t, 1, &reply(MessageType::RESPOND_URI, "u", None));
        assert_eq!(p.map(|p| p.sent), Some(MessageType::REQUEST_URI));
        assert!(t.entries.contains_key(&req2) && !t.entries.contains_key(&req1));
        // OK answers the oldest of CREATE_URI and REQUEST_URI (Python answers requests with OK).
        assert!(take(&mut t, 1, &reply(MessageType::OK, "u", None)).is_some());
        assert!(!t.entries.contains_key(&create));
        // Other uri, other peer, or a type that answers nothing: no match.
        assert!(take(&mut t, 1, &reply(MessageType::OK, "v", None)).is_none());
        assert!(take(&mut t, 2, &reply(MessageType::OK, "u", None)).is_none());
        assert!(take(&mut t, 1, &reply(MessageType::NOTIFY_URI, "u", None)).is_none());
        // An error for the uri answers it.
        assert!(take(&mut t, 1, &reply(MessageType::NOT_FOUND, "u", None)).is_some());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn python_matching_gives_unreferenced_errors_to_the_oldest_request_of_that_peer() {
        let now = Instant::now();
        for matching in [Matching::Native, Matching::Python] {
            let mut t = table(matching);
            let (first, _r1) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now);
            let (_second, _r2) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "b"), now);
            let (_other, _r3) = start(&mut t, 2, typed(MessageType::REQUEST_URI, "c"), now);
            let err = reply(MessageType::AUTH_ERROR, "ERROR", None);
            let got = take(&mut t, 1, &err);
            if matching == Matching::Python {
                assert_eq!(got.map(|p| p.uri), Some(Bytes::from_static(b"a")));
                assert!(!t.entries.contains_key(&first));
            } else {
                assert!(got.is_none());
            }
            // A non-error without a match never takes the oldest.
            assert!(take(&mut t, 1, &reply(MessageType::OK, "ERROR", None)).is_none());
        }
    }

    #[test]
    fn unauthenticated_replies_answer_only_as_errors() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let (id, _r) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now);
        assert!(
            t.take_unauthenticated(1, Some(id), MessageType::OK)
                .is_none()
        );
        assert!(
            t.take_unauthenticated(1, None, MessageType::AUTH_ERROR)
                .is_none()
        );
        assert!(
            t.take_unauthenticated(2, Some(id), MessageType::AUTH_ERROR)
                .is_none()
        );
        assert!(
            t.take_unauthenticated(1, Some(id), MessageType::AUTH_ERROR)
                .is_some()
        );
        let mut py = table(Matching::Python);
        let (_id, _r) = start(&mut py, 1, typed(MessageType::REQUEST_URI, "a"), now);
        assert!(
            py.take_unauthenticated(1, None, MessageType::AUTH_ERROR)
                .is_some()
        );
    }

    #[test]
    fn bounds_in_total_and_per_peer() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let mut keep = Vec::new();
        for _ in 0..LIMITS.per_peer {
            keep.push(start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now));
        }
        let mut m = typed(MessageType::REQUEST_URI, "a");
        let e = t
            .start(1, &mut m, Plugins::new(), SECOND, None, now)
            .unwrap_err();
        assert!(matches!(e, RequestError::TooManyInFlight(n) if n == LIMITS.per_peer));
        for _ in 0..LIMITS.per_peer {
            keep.push(start(&mut t, 2, typed(MessageType::REQUEST_URI, "a"), now));
        }
        let e = t
            .start(3, &mut m, Plugins::new(), SECOND, None, now)
            .unwrap_err();
        assert!(matches!(e, RequestError::TooManyInFlight(n) if n == LIMITS.total));
        // A request that leaves makes room for its peer again.
        assert!(t.remove(keep[0].0).is_some());
        assert!(
            t.start(1, &mut m, Plugins::new(), SECOND, None, now)
                .is_ok()
        );
        assert_eq!(t.per_peer.get(&1), Some(&LIMITS.per_peer));
    }

    #[test]
    fn deadlines_are_data_and_expire_in_order() {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        assert_eq!(t.poll_timeout(), None);
        let mut start_for = |uri, secs| {
            let mut m = typed(MessageType::REQUEST_URI, uri);
            let timeout = Duration::from_secs(secs);
            let s = t
                .start(1, &mut m, Plugins::new(), timeout, None, t0)
                .unwrap();
            (s.deadline, s.rx)
        };
        let (da, mut ra) = start_for("a", 3);
        let (db, mut rb) = start_for("b", 1);
        assert_eq!(da, t0 + Duration::from_secs(3));
        assert_eq!(t.poll_timeout(), Some(db));
        assert_eq!(t.handle_timeout(t0 + Duration::from_millis(999)).hard, 0);
        assert_eq!(
            t.handle_timeout(db).hard,
            1,
            "a deadline is reached at its instant"
        );
        assert!(matches!(rb.try_recv(), Ok(Err(RequestError::Timeout(d))) if d == SECOND));
        assert!(ra.try_recv().is_err(), "the later request still waits");
        assert_eq!(t.poll_timeout(), Some(da));
        assert_eq!(t.handle_timeout(t0 + Duration::from_secs(60)).hard, 1);
        assert!(matches!(ra.try_recv(), Ok(Err(RequestError::Timeout(_)))));
        assert_eq!((t.len(), t.poll_timeout()), (0, None));
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let mut m = typed(MessageType::REQUEST_URI, "a");
        let s = t
            .start(1, &mut m, Plugins::new(), Duration::MAX, None, now)
            .unwrap();
        assert!(s.deadline > now + Duration::from_secs(86_400));
    }

    #[test]
    fn failing_a_peer_or_everything_answers_closed() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let (_, mut r1) = start(&mut t, 1, typed(MessageType::REQUEST_URI, "a"), now);
        let (_, mut r2) = start(&mut t, 2, typed(MessageType::REQUEST_URI, "a"), now);
        assert_eq!(t.fail_peer(1), 1);
        assert!(matches!(r1.try_recv(), Ok(Err(RequestError::Closed))));
        assert!(r2.try_recv().is_err());
        assert_eq!(t.fail_all(false), 1);
        assert!(matches!(r2.try_recv(), Ok(Err(RequestError::Closed))));
        // Not for good: new requests are taken; for good: refused.
        let mut m = typed(MessageType::REQUEST_URI, "a");
        assert!(
            t.start(1, &mut m, Plugins::new(), SECOND, None, now)
                .is_ok()
        );
        t.fail_all(true);
        assert!(matches!(
            t.start(1, &mut m, Plugins::new(), SECOND, None, now),
            Err(RequestError::Send(crate::SendError::Closed))
        ));
        assert_eq!(t.poll_timeout(), None);
    }

    fn request(uri: &str) -> Message {
        Message::new(MessageType::REQUEST_URI, uri.to_owned(), "")
    }

    /// A native table at `t0` with one request to peer 1 at uri `a` (hard timeout one second,
    /// and `soft`): the table, the request as sent, and what `start` returned.
    fn one_request(soft: Option<Duration>) -> (Instant, RequestTable<u8>, Message, Started) {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        let mut m = request("a");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, soft, t0)
            .unwrap();
        (t0, t, m, s)
    }

    #[test]
    fn soft_then_hard_expiry_and_a_reply_between_is_on_time() {
        let (t0, mut t, _, s) = one_request(Some(SECOND / 4));
        let mut rx = s.rx;
        assert_eq!(s.soft, Some(t0 + SECOND / 4));
        assert_eq!(t.poll_timeout(), s.soft, "the soft deadline comes first");
        assert_eq!(t.next_deadline(s.id), s.soft);
        assert_eq!(t.handle_timeout(t0 + SECOND / 5), Expiries::default());
        assert_eq!(
            t.handle_timeout(t0 + SECOND / 4),
            Expiries { soft: 1, hard: 0 }
        );
        assert_eq!(t.soft_passed(s.id), Some(1));
        assert!(
            rx.try_recv().is_err(),
            "still waiting after its soft deadline"
        );
        assert_eq!(t.poll_timeout(), Some(s.deadline));
        assert_eq!(t.next_deadline(s.id), Some(s.deadline));
        // A reply between the two deadlines answers it like one in time.
        let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
        let p = take(&mut t, 1, &r).unwrap();
        p.answer(RequestError::from_reply(r));
        assert!(matches!(rx.try_recv(), Ok(Ok(_))));
        assert_eq!(t.handle_timeout(t0 + SECOND * 2), Expiries::default());
        // Another one runs to its hard deadline.
        let mut m = request("b");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
            .unwrap();
        let mut rx = s.rx;
        assert_eq!(t.handle_timeout(t0 + SECOND), Expiries { soft: 1, hard: 1 });
        assert!(matches!(rx.try_recv(), Ok(Err(RequestError::Timeout(d))) if d == SECOND));
        assert_eq!(t.soft_passed(s.id), None);
        let c = t.counts();
        assert_eq!((c.soft_timeouts, c.timeouts), (2, 1));
        // A soft timeout longer than the hard one is the hard one.
        let mut m = request("c");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND * 9), t0)
            .unwrap();
        assert_eq!(s.soft, Some(s.deadline));
    }

    #[test]
    fn a_reply_after_a_soft_deadline_no_timer_handled_yet_counts_it() {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        for (at, counted) in [(SECOND / 8, 0), (SECOND / 2, 1)] {
            let mut m = request("a");
            let s = t
                .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
                .unwrap();
            let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
            let before = t.counts().soft_timeouts;
            assert!(t.take_reply(1, &r, || t0 + at).pending().is_some());
            assert_eq!(t.counts().soft_timeouts - before, counted, "at {at:?}");
        }
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn a_reply_after_the_hard_timeout_is_late_once_and_only_from_its_peer() {
        let (t0, mut t, _, s) = one_request(None);
        assert_eq!(t.handle_timeout(t0 + SECOND).hard, 1);
        let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
        assert!(matches!(
            t.take_reply(2, &r, || t0 + SECOND * 2),
            Taken::Nothing
        ));
        match t.take_reply(1, &r, || t0 + SECOND * 2) {
            Taken::Late(e) => {
                assert_eq!((e.peer, e.sent), (1, MessageType::REQUEST_URI));
                assert_eq!(e.uri.as_ref(), b"a");
                assert_eq!(e.deadline, s.deadline);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            t.take_reply(1, &r, || t0 + SECOND * 2),
            Taken::Nothing
        ));
        assert_eq!(t.counts().late_replies, 1);
        // Only past its window: forgotten.
        let mut m = request("b");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, None, t0)
            .unwrap();
        t.handle_timeout(t0 + SECOND);
        let r = reply(MessageType::RESPOND_URI, "b", Some(s.id));
        let window = LateReplyConfig::default().get_window();
        assert!(matches!(
            t.take_reply(1, &r, || t0 + SECOND + window),
            Taken::Nothing
        ));
        // A request that was answered, or given up, is not late: its reply is only stale.
        let (id, _rx) = start(&mut t, 1, request("c"), t0);
        t.remove(id);
        let r = reply(MessageType::RESPOND_URI, "c", Some(id));
        assert!(matches!(t.take_reply(1, &r, || t0), Taken::Nothing));
    }

    #[test]
    fn ids_are_random_nonzero_and_never_reused_while_remembered() {
        let now = Instant::now();
        let mut t = RequestTable::new(
            Limits {
                total: 10_000,
                per_peer: 10_000,
            },
            Matching::Native,
            LateReplyConfig::default(),
        );
        let mut ids = std::collections::HashSet::new();
        let mut high = 0;
        for _ in 0..1000 {
            let (id, _rx) = start(&mut t, 1, request("a"), now);
            assert_ne!(id, 0);
            assert!(ids.insert(id), "unique");
            if id > u64::MAX / 2 {
                high += 1;
            }
        }
        // Not a counter: about half of them have their top bit set.
        assert!((300..700).contains(&high), "{high}");
    }

    #[test]
    fn a_resend_rearms_the_soft_deadline_and_a_restart_keeps_the_id() {
        let (t0, mut t, m, s) = one_request(Some(SECOND / 4));
        // The restarts below: the request as it was, with this soft deadline.
        let timing = |soft| Timing {
            started: t0,
            deadline: s.deadline,
            timeout: SECOND,
            soft,
            soft_events: None,
        };
        t.handle_timeout(t0 + SECOND / 4);
        t.resend(s.id, Some(t0 + SECOND / 2));
        assert_eq!(t.next_deadline(s.id), Some(t0 + SECOND / 2));
        assert_eq!(
            t.handle_timeout(t0 + SECOND / 2),
            Expiries { soft: 1, hard: 0 }
        );
        assert_eq!(t.soft_passed(s.id), Some(2));
        // A soft deadline at or past the hard one is not armed.
        t.resend(s.id, Some(t0 + SECOND));
        assert_eq!(t.next_deadline(s.id), Some(s.deadline));
        assert_eq!(t.counts().retries, 2);
        // The link dropped: the request failed, and is registered again as it was.
        assert_eq!(t.fail_all(false), 1);
        let mut rx = t
            .restart(
                s.id,
                1,
                &m,
                Plugins::new(),
                Timing {
                    soft_events: s.soft_events.clone(),
                    ..timing(Some(t0 + SECOND * 3 / 4))
                },
            )
            .unwrap();
        assert_eq!(t.counts().retries, 3);
        assert_eq!(t.next_deadline(s.id), Some(t0 + SECOND * 3 / 4));
        let r = reply(MessageType::RESPOND_URI, "a", Some(s.id));
        let p = take(&mut t, 1, &r).unwrap();
        assert!(p.resent, "no round-trip sample from a re-sent request");
        p.answer(RequestError::from_reply(r));
        assert!(matches!(rx.try_recv(), Ok(Ok(_))));
        // Restarting refuses an id that waits, and a closed table.
        let (id, _rx) = start(&mut t, 1, request("b"), t0);
        assert!(t.restart(id, 1, &m, Plugins::new(), timing(None)).is_err());
        t.fail_all(true);
        assert!(matches!(
            t.restart(7, 1, &m, Plugins::new(), timing(None)),
            Err(RequestError::Send(crate::SendError::Closed))
        ));
    }

    #[test]
    fn the_timer_is_woken_only_for_a_deadline_earlier_than_the_one_it_sleeps_to() {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        // The first request of an idle table wakes the (sleeping) timer.
        let (a, _ra) = start(&mut t, 1, request("a"), t0);
        assert!(t.take_wake());
        assert!(!t.take_wake(), "taken");
        assert_eq!(t.fire(t0).1, Some(t0 + SECOND));
        // Later deadlines (the common case: the same timeout, started later) do not.
        let (_b, _rb) = start(&mut t, 1, request("b"), t0 + SECOND / 10);
        assert!(!t.take_wake());
        // An answered request leaves; the timer then wakes at its stale instant, for nothing
        // due, and sleeps on to the next deadline.
        t.remove(a);
        assert_eq!(
            t.fire(t0 + SECOND),
            (Expiries::default(), Some(t0 + SECOND * 11 / 10))
        );
        // An earlier deadline, hard or soft, does.
        let mut m = request("c");
        t.start(1, &mut m, Plugins::new(), SECOND / 2, None, t0 + SECOND)
            .unwrap();
        assert!(!t.take_wake(), "t0 + 1.5 s comes after t0 + 1.1 s");
        let mut m = request("d");
        let s = t
            .start(
                1,
                &mut m,
                Plugins::new(),
                SECOND,
                Some(SECOND / 100),
                t0 + SECOND,
            )
            .unwrap();
        assert!(t.take_wake());
        assert_eq!(t.fire(t0 + SECOND).1, s.soft);
        // A re-armed soft deadline, earlier than the timer's next instant, too.
        let (_, next) = t.fire(t0 + SECOND * 101 / 100);
        assert_eq!(next, Some(t0 + SECOND * 11 / 10));
        t.resend(s.id, Some(t0 + SECOND * 102 / 100));
        assert!(t.take_wake());
    }

    #[test]
    fn the_timer_fires_soft_and_hard_timeouts_as_events_in_injected_time() {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        let mut m = request("a");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
            .unwrap();
        let events = s.soft_events.clone().unwrap();
        let mut soft = events.subscribe();
        let mut rx = s.rx;
        // Woken early (another request's stale instant): nothing due, told when to wake.
        assert_eq!(
            t.fire(t0 + SECOND / 8),
            (Expiries::default(), Some(t0 + SECOND / 4))
        );
        assert!(!soft.has_changed().unwrap());
        // At the soft deadline: an event, the request still waits, next wake is the hard one.
        assert_eq!(
            t.fire(t0 + SECOND / 4),
            (Expiries { soft: 1, hard: 0 }, Some(s.deadline))
        );
        assert!(soft.has_changed().unwrap());
        assert_eq!(*soft.borrow_and_update(), 1);
        assert!(rx.try_recv().is_err());
        // Re-sent, then registered again after a drop: the count goes on over the same events.
        t.resend(s.id, Some(t0 + SECOND / 2));
        t.fail_all(false);
        let mut rx = t
            .restart(
                s.id,
                1,
                &m,
                Plugins::new(),
                Timing {
                    started: t0,
                    deadline: s.deadline,
                    timeout: SECOND,
                    soft: Some(t0 + SECOND * 3 / 4),
                    soft_events: Some(events),
                },
            )
            .unwrap();
        assert_eq!(t.fire(t0 + SECOND * 3 / 4).0.soft, 1);
        assert_eq!(*soft.borrow_and_update(), 2);
        // At the hard deadline: the answer is the timeout, and nothing is left to wake for.
        assert_eq!(t.fire(s.deadline), (Expiries { soft: 0, hard: 1 }, None));
        assert!(matches!(rx.try_recv(), Ok(Err(RequestError::Timeout(d))) if d == SECOND));
        assert!(
            !soft.has_changed().unwrap(),
            "a hard timeout is no soft event"
        );
    }

    #[test]
    fn only_a_sub_millisecond_soft_deadline_next_in_line_is_kept_finely() {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        assert!(!t.next_is_fine(), "nothing waits");
        let us = Duration::from_micros;
        // A 1 ms soft timeout is tokio's business.
        let mut m = request("a");
        t.start(1, &mut m, Plugins::new(), SECOND, Some(FINE), t0)
            .unwrap();
        assert!(!t.next_is_fine());
        // A 50 µs one, next in line, is kept finely.
        let mut m = request("b");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, Some(us(50)), t0)
            .unwrap();
        assert!(t.next_is_fine());
        // Past it, the next deadline is the 1 ms one: not fine any more.
        assert_eq!(t.fire(t0 + us(50)).0.soft, 1);
        assert!(!t.next_is_fine());
        // Its retry re-arms it finely.
        t.resend(s.id, Some(t0 + us(100)));
        assert!(t.next_is_fine());
        // A hard deadline before it comes first: not fine.
        let mut m = request("c");
        t.start(1, &mut m, Plugins::new(), us(60), None, t0)
            .unwrap();
        assert!(!t.next_is_fine());
    }

    #[test]
    fn a_python_peer_s_late_reply_is_matched_by_uri() {
        let t0 = Instant::now();
        for matching in [Matching::Native, Matching::Python] {
            let mut t = table(matching);
            let (id, _rx) = start(&mut t, 1, request("slow/1"), t0);
            assert_eq!(t.fire(t0 + SECOND).0.hard, 1);
            assert_eq!(t.late_by_uri_possible(), matching == Matching::Python);
            let late = t0 + SECOND * 2;
            // Not from another peer, not for another uri, not an error.
            for (from, r) in [
                (2, reply(MessageType::RESPOND_URI, "slow/1", None)),
                (1, reply(MessageType::RESPOND_URI, "slow/2", None)),
                (1, reply(MessageType::NOT_FOUND, "slow/1", None)),
            ] {
                assert!(matches!(t.take_reply(from, &r, || late), Taken::Nothing));
            }
            let r = reply(MessageType::RESPOND_URI, "slow/1", None);
            match (matching, t.take_reply(1, &r, || late)) {
                (Matching::Python, Taken::Late(e)) => {
                    assert_eq!((e.id, e.uri.as_ref()), (id, &b"slow/1"[..]));
                }
                (Matching::Native, Taken::Nothing) => {}
                (m, other) => panic!("{m:?}: {other:?}"),
            }
            // Taken once.
            assert!(matches!(t.take_reply(1, &r, || late), Taken::Nothing));
            assert!(!t.late_by_uri_possible());
        }
    }
}
