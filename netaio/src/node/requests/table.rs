//! The request table: request ids, bounds, reply matching and deadlines (soft and hard), as
//! data. The only request/reply correlation code in the crate; the TCP client, the TCP server
//! and the UDP node each keep one, behind [`Requests`](super::Requests).
//!
//! [`RequestTable`] is I/O-free: time comes in as `now`, a deadline is a value
//! ([`RequestTable::poll_timeout`], [`RequestTable::handle_timeout`]), so its rules are
//! unit-tested with made-up instants.
//!
//! A request id is random (64 bits, never 0, never one in use or remembered as timed out), so
//! that nobody without the node's keys can predict it: with an auth plugin that covers the reply
//! reference (the native HMAC and signature plugins cover every field), a captured old reply
//! cannot answer a new request.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::late::{Expired, ExpiredIds, LateReplyConfig};
use crate::error::RequestError;
use crate::plugin::Plugins;
use crate::{Message, MessageType};

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

/// A request just registered.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) id: u64,
    pub(crate) deadline: Instant,
    pub(crate) soft: Option<Instant>,
    pub(crate) rx: oneshot::Receiver<Answer>,
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
    entries: HashMap<u64, Pending<P>>,
    /// Hard deadlines in order, for `poll_timeout` and `handle_timeout`.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Soft deadlines in order (empty unless a call set one).
    soft_deadlines: BTreeSet<(Instant, u64)>,
    per_peer: HashMap<P, usize>,
    /// Requests that timed out, for their late replies.
    expired: ExpiredIds<P>,
    limits: Limits,
    matching: Matching,
    closed: bool,
    counts: Counts,
    next_seq: u64,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug> RequestTable<P> {
    pub(crate) fn new(limits: Limits, matching: Matching, late: LateReplyConfig) -> Self {
        Self {
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            soft_deadlines: BTreeSet::new(),
            per_peer: HashMap::new(),
            expired: ExpiredIds::new(late),
            limits,
            matching,
            closed: false,
            counts: Counts::default(),
            next_seq: 0,
        }
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
        let rx = self.insert(id, peer, msg, inner, now, deadline, timeout, soft);
        Ok(Started {
            id,
            deadline,
            soft,
            rx,
        })
    }

    /// Register request `id` again, as it was (same id, same hard deadline): it is about to be
    /// re-sent after its link came back. Counted as a retry; its round trip is not sampled.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restart(
        &mut self,
        id: u64,
        peer: P,
        msg: &Message,
        inner: Plugins,
        started: Instant,
        deadline: Instant,
        timeout: Duration,
        soft: Option<Instant>,
    ) -> Result<oneshot::Receiver<Answer>, RequestError> {
        self.admit(peer)?;
        if self.entries.contains_key(&id) {
            return Err(RequestError::TooManyInFlight(self.limits.per_peer));
        }
        let rx = self.insert(id, peer, msg, inner, started, deadline, timeout, soft);
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

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        id: u64,
        peer: P,
        msg: &Message,
        inner: Plugins,
        started: Instant,
        deadline: Instant,
        timeout: Duration,
        soft: Option<Instant>,
    ) -> oneshot::Receiver<Answer> {
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
                soft_passed: 0,
                resent: false,
                seq: self.next_seq,
                tx,
            },
        );
        self.deadlines.insert((deadline, id));
        if let Some(s) = soft {
            self.soft_deadlines.insert((s, id));
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
    pub(crate) fn soft_passed(&self, id: u64) -> Option<u32> {
        self.entries.get(&id).map(|p| p.soft_passed)
    }

    /// The next deadline of request `id` (its soft one while armed, else its hard one).
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
        if self.entries.is_empty() || !may_answer(reply.message_type) {
            return Taken::Nothing;
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
            None => Taken::Nothing,
        }
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

    /// The earliest deadline, soft or hard, if any request waits. (Each caller sleeps until its
    /// own next deadline and then calls [`handle_timeout`](Self::handle_timeout); a node-wide
    /// timer would poll this.)
    #[allow(dead_code)]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let hard = self.deadlines.first().map(|(t, _)| *t);
        let soft = self.soft_deadlines.first().map(|(t, _)| *t);
        match (hard, soft) {
            (Some(h), Some(s)) => Some(h.min(s)),
            (h, s) => h.or(s),
        }
    }

    /// Pass every deadline that is `now` or earlier: a soft one marks its request (which still
    /// waits; [`soft_passed`](Self::soft_passed) counts them), a hard one fails its request with
    /// [`RequestError::Timeout`] and remembers its id for a late reply.
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
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        total: 8,
        per_peer: 4,
    };
    const SECOND: Duration = Duration::from_secs(1);

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
        let (a, _ra) = start(
            &mut t,
            1,
            Message::new(MessageType::REQUEST_URI, "x", ""),
            now,
        );
        let (b, _rb) = start(
            &mut t,
            1,
            Message::new(MessageType::REQUEST_URI, "x", ""),
            now,
        );
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
        let (create, _r1) = start(
            &mut t,
            1,
            Message::new(MessageType::CREATE_URI, "u", ""),
            now,
        );
        let (req1, _r2) = start(
            &mut t,
            1,
            Message::new(MessageType::REQUEST_URI, "u", ""),
            now,
        );
        let (req2, _r3) = start(
            &mut t,
            1,
            Message::new(MessageType::REQUEST_URI, "u", ""),
            now,
        );
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
            let (first, _r1) = start(
                &mut t,
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                now,
            );
            let (_second, _r2) = start(
                &mut t,
                1,
                Message::new(MessageType::REQUEST_URI, "b", ""),
                now,
            );
            let (_other, _r3) = start(
                &mut t,
                2,
                Message::new(MessageType::REQUEST_URI, "c", ""),
                now,
            );
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
        let (id, _r) = start(
            &mut t,
            1,
            Message::new(MessageType::REQUEST_URI, "a", ""),
            now,
        );
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
        let (_id, _r) = start(
            &mut py,
            1,
            Message::new(MessageType::REQUEST_URI, "a", ""),
            now,
        );
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
            keep.push(start(
                &mut t,
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                now,
            ));
        }
        let mut m = Message::new(MessageType::REQUEST_URI, "a", "");
        let e = t
            .start(1, &mut m, Plugins::new(), SECOND, None, now)
            .unwrap_err();
        assert!(matches!(e, RequestError::TooManyInFlight(n) if n == LIMITS.per_peer));
        for _ in 0..LIMITS.per_peer {
            keep.push(start(
                &mut t,
                2,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                now,
            ));
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
        let mut a = Message::new(MessageType::REQUEST_URI, "a", "");
        let Started {
            deadline: da,
            rx: mut ra,
            ..
        } = t
            .start(1, &mut a, Plugins::new(), Duration::from_secs(3), None, t0)
            .unwrap();
        let mut b = Message::new(MessageType::REQUEST_URI, "b", "");
        let Started {
            deadline: db,
            rx: mut rb,
            ..
        } = t
            .start(1, &mut b, Plugins::new(), Duration::from_secs(1), None, t0)
            .unwrap();
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
        let mut m = Message::new(MessageType::REQUEST_URI, "a", "");
        let s = t
            .start(1, &mut m, Plugins::new(), Duration::MAX, None, now)
            .unwrap();
        assert!(s.deadline > now + Duration::from_secs(86_400));
    }

    #[test]
    fn failing_a_peer_or_everything_answers_closed() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let (_, mut r1) = start(
            &mut t,
            1,
            Message::new(MessageType::REQUEST_URI, "a", ""),
            now,
        );
        let (_, mut r2) = start(
            &mut t,
            2,
            Message::new(MessageType::REQUEST_URI, "a", ""),
            now,
        );
        assert_eq!(t.fail_peer(1), 1);
        assert!(matches!(r1.try_recv(), Ok(Err(RequestError::Closed))));
        assert!(r2.try_recv().is_err());
        assert_eq!(t.fail_all(false), 1);
        assert!(matches!(r2.try_recv(), Ok(Err(RequestError::Closed))));
        // Not for good: new requests are taken; for good: refused.
        let mut m = Message::new(MessageType::REQUEST_URI, "a", "");
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

    #[test]
    fn soft_then_hard_expiry_and_a_reply_between_is_on_time() {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        let mut m = request("a");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
            .unwrap();
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
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        let mut m = request("a");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, None, t0)
            .unwrap();
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
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        let mut m = request("a");
        let s = t
            .start(1, &mut m, Plugins::new(), SECOND, Some(SECOND / 4), t0)
            .unwrap();
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
                t0,
                s.deadline,
                SECOND,
                Some(t0 + SECOND * 3 / 4),
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
        assert!(
            t.restart(id, 1, &m, Plugins::new(), t0, s.deadline, SECOND, None)
                .is_err()
        );
        t.fail_all(true);
        assert!(matches!(
            t.restart(7, 1, &m, Plugins::new(), t0, s.deadline, SECOND, None),
            Err(RequestError::Send(crate::SendError::Closed))
        ));
    }
}
