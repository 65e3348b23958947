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
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxBuildHasher;
use tokio::sync::watch;
use tokio::time::Instant;

use super::late::{Expired, ExpiredIds, LateReplyConfig};
use crate::error::RequestError;
use crate::plugin::Plugins;
use crate::{Message, MessageType};

use super::deadlines::HardDeadlines;
pub(crate) use super::entry::{
    Counts, Expiries, FINE, Limits, Matching, Pending, Started, Taken, Timing, may_answer,
};
use super::entry::{answers, timeout_soft_fine};
use super::slot::{self, AnswerRx, Slot};

/// Answer slots a table keeps for reuse, at most.
const FREE_SLOTS: usize = 256;

/// Requests waiting for replies, keyed by request id, for peers of type `P` (a socket address on
/// UDP, a connection id on a server, `()` on one client connection).
#[derive(Debug)]
pub(crate) struct RequestTable<P> {
    /// Fx hashing, not SipHash (a fifth of the table's cost per request): only this node inserts
    /// keys, and they are random ids and its own peers, so no sender can make them collide.
    entries: HashMap<u64, Pending<P>, FxBuildHasher>,
    /// Hard deadlines in order, for `poll_timeout` and `handle_timeout` (O(1) per request when
    /// they come in order, as one timeout for every request makes them).
    deadlines: HardDeadlines,
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
    /// Answer slots their callers gave back, for the next requests (at most [`FREE_SLOTS`]).
    free: Vec<Arc<Slot>>,
    /// A deadline came before `armed`: the timer must be woken ([`take_wake`](Self::take_wake)).
    wake: bool,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug> RequestTable<P> {
    pub(crate) fn new(limits: Limits, matching: Matching, late: LateReplyConfig) -> Self {
        Self {
            entries: HashMap::default(),
            deadlines: HardDeadlines::default(),
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
            free: Vec::new(),
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
        // `handle_timeout`'s last `pop_due` has pruned the queue's front already.
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
        if self.first_hard().is_some_and(|hard| hard < soft) {
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
    ) -> Result<AnswerRx, RequestError> {
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
    ) -> AnswerRx {
        let Timing {
            started,
            deadline,
            timeout,
            soft,
            soft_events,
        } = timing;
        let (tx, rx) = slot::pair(self.free.pop().unwrap_or_default());
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
        let seq = self.next_seq;
        let entries = &self.entries;
        self.deadlines
            .push((deadline, id, seq), entries.len(), |id, seq| {
                live(entries, id, seq)
            });
        self.arm(deadline);
        if let Some(s) = soft {
            self.soft_deadlines.insert((s, id));
            self.arm(s);
        }
        *self.per_peer.entry(peer).or_insert(0) += 1;
        rx
    }

    /// A caller is done with its answer's slot: keep it for another request (when no sender
    /// holds it any more, and fewer than [`FREE_SLOTS`] are kept).
    pub(crate) fn recycle(&mut self, rx: AnswerRx) {
        if self.free.len() < FREE_SLOTS
            && let Some(slot) = rx.reuse()
        {
            self.free.push(slot);
        }
    }

    /// Answer slots kept for reuse.
    #[cfg(test)]
    pub(crate) fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Forget a request (answered, or its caller gave up); `None` if it was already answered.
    ///
    /// When the node's timer is waiting for this request's sub-millisecond soft deadline (see
    /// [`next_is_fine`](Self::next_is_fine)), it is woken to stop: a deadline nobody waits for
    /// any more would still cost a spin (the fine timer spins through its last microseconds)
    /// and a wake-up, and a client making such calls back to back would pay it on every call.
    /// (When the timer yielded until such deadlines, this kept a worker busy all the time.)
    pub(crate) fn remove(&mut self, id: u64) -> Option<Pending<P>> {
        let p = self.entries.remove(&id)?;
        self.deadlines.remove((p.deadline, id, p.seq));
        if let Some(s) = p.soft {
            self.soft_deadlines.remove(&(s, id));
            if p.soft_fine && self.armed == Some(s) {
                self.wake = true;
            }
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

    /// The earliest hard deadline of a request waiting.
    fn first_hard(&self) -> Option<Instant> {
        let entries = &self.entries;
        self.deadlines.first(|id, seq| live(entries, id, seq))
    }

    /// The earliest deadline, soft or hard, if any request waits.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let hard = self.first_hard();
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
        loop {
            let entries = &self.entries;
            let Some(id) = self
                .deadlines
                .pop_due(now, |id, seq| live(entries, id, seq))
            else {
                break;
            };
            // `pop_due` gives only requests still waiting.
            if let Some(p) = self.remove(id) {
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
#[path = "table_tests.rs"]
pub(super) mod tests;

/// Whether request `id` registered as `seq` still waits (a deadline left behind in
/// [`HardDeadlines`] is not its request's any more once this is false).
fn live<P>(entries: &HashMap<u64, Pending<P>, FxBuildHasher>, id: u64, seq: u64) -> bool {
    entries.get(&id).is_some_and(|p| p.seq == seq)
}
