//! The request table: request ids, bounds, reply matching and deadlines, as data. The only
//! request/reply correlation code in the crate; the TCP client, the TCP server and the UDP node
//! each keep one and drive it through [`Requests::exchange`].
//!
//! [`RequestTable`] is I/O-free: time comes in as `now`, a deadline is a value
//! ([`RequestTable::poll_timeout`], [`RequestTable::handle_timeout`]), so its rules are
//! unit-tested with made-up instants. [`Requests`] puts it behind a lock for the async callers.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{RequestError, SendError};
use crate::plugin::{NodePlugins, Plugins, open_inner};
use crate::{Message, MessageType};

/// What a waiting caller receives.
type Answer = Result<Message, RequestError>;

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
    peer: P,
    uri: Bytes,
    sent: MessageType,
    inner: Plugins,
    deadline: Instant,
    timeout: Duration,
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
fn may_answer(t: MessageType) -> bool {
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
    /// Deadlines in order, for `poll_timeout` and `handle_timeout`.
    deadlines: BTreeSet<(Instant, u64)>,
    per_peer: HashMap<P, usize>,
    next_id: u64,
    limits: Limits,
    matching: Matching,
    closed: bool,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug> RequestTable<P> {
    pub(crate) fn new(limits: Limits, matching: Matching) -> Self {
        Self {
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            per_peer: HashMap::new(),
            next_id: 1,
            limits,
            matching,
            closed: false,
        }
    }

    /// Requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Register a request to `peer`: give `msg` a fresh request id and remember what answers it
    /// until `now + timeout`. Refused when the table is closed or a bound is reached.
    pub(crate) fn start(
        &mut self,
        peer: P,
        msg: &mut Message,
        inner: Plugins,
        timeout: Duration,
        now: Instant,
    ) -> Result<(u64, Instant, oneshot::Receiver<Answer>), RequestError> {
        if self.closed {
            return Err(RequestError::Closed);
        }
        if self.entries.len() >= self.limits.total {
            return Err(RequestError::TooManyInFlight(self.limits.total));
        }
        let count = self.per_peer.get(&peer).copied().unwrap_or(0);
        if count >= self.limits.per_peer {
            return Err(RequestError::TooManyInFlight(self.limits.per_peer));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        msg.set_request_id(id);
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + super::sane(timeout));
        let (tx, rx) = oneshot::channel();
        self.entries.insert(
            id,
            Pending {
                peer,
                uri: msg.uri().clone(),
                sent: msg.message_type,
                inner,
                deadline,
                timeout,
                tx,
            },
        );
        self.deadlines.insert((deadline, id));
        *self.per_peer.entry(peer).or_insert(0) += 1;
        Ok((id, deadline, rx))
    }

    /// Forget a request (its caller gave up); `None` if it was already answered.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Pending<P>> {
        let p = self.entries.remove(&id)?;
        self.deadlines.remove(&(p.deadline, id));
        if let Some(n) = self.per_peer.get_mut(&p.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&p.peer);
            }
        }
        Some(p)
    }

    /// The request a reply from `from` answers, taken out of the table: the one its reply
    /// reference names (only when that request went to `from`), else, for a reply without a
    /// reference, the oldest request to `from` for the same uri that this type answers, else
    /// (Python matching, error replies only) the oldest request to `from`.
    pub(crate) fn take_reply(&mut self, from: P, reply: &Message) -> Option<Pending<P>> {
        if let Some(id) = reply.reply_ref() {
            return self.take_ref(from, id);
        }
        if self.entries.is_empty() || !may_answer(reply.message_type) {
            return None;
        }
        let by_uri = self
            .entries
            .iter()
            .filter(|(_, p)| {
                p.peer == from && p.uri == *reply.uri() && answers(p.sent, reply.message_type)
            })
            .map(|(id, _)| *id)
            .min();
        let id = by_uri.or_else(|| {
            (self.matching == Matching::Python && reply.message_type.is_error())
                .then(|| self.oldest(from))
                .flatten()
        })?;
        self.remove(id)
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
            None => {
                tracing::debug!(id, "reply for a request no longer waiting dropped");
                None
            }
        }
    }

    fn oldest(&self, from: P) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, p)| p.peer == from)
            .map(|(id, _)| *id)
            .min()
    }

    /// The earliest deadline, if any request waits. (The callers of `exchange` each sleep until
    /// their own deadline today; a node-wide timer for soft deadlines polls this.)
    #[allow(dead_code)]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Fail every request whose deadline is `now` or earlier with [`RequestError::Timeout`].
    /// Returns how many.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&(t, id)) = self.deadlines.first() {
            if t > now {
                break;
            }
            // `remove` takes the deadline out too, so the loop makes progress every round.
            match self.remove(id) {
                Some(p) => {
                    let timeout = p.timeout;
                    p.answer(Err(RequestError::Timeout(timeout)));
                    n += 1;
                }
                None => {
                    self.deadlines.remove(&(t, id));
                }
            }
        }
        n
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
        self.closed |= for_good;
        let ids: Vec<u64> = self.entries.keys().copied().collect();
        for id in &ids {
            if let Some(p) = self.remove(*id) {
                p.answer(Err(RequestError::Closed));
            }
        }
        ids.len()
    }
}

/// Open a reply with the call's inner plugins and turn error types into typed errors, then hand
/// it to the caller. An error reply that fails the inner plugins still answers the request as the
/// error it is (the peer answers a failed inner check with an error sent without the inner
/// plugins; it never counts as a success); any other reply that fails them fails the call with
/// [`RequestError::Refused`].
pub(crate) fn complete<P>(
    pending: Pending<P>,
    reply: Message,
    plugins: &NodePlugins,
    peer: Option<&crate::peer::Peer>,
    addr: std::net::SocketAddr,
) {
    let answer = if pending.inner().is_empty() {
        RequestError::from_reply(reply)
    } else {
        let unauthenticated = reply.message_type.is_error().then(|| reply.clone());
        match open_inner(reply, pending.inner(), &plugins.ctx(peer, Some(addr))) {
            Ok(reply) => RequestError::from_reply(reply),
            Err(e) => match unauthenticated {
                Some(reply) => {
                    tracing::debug!(error = %e, "error reply without the call's inner plugins answered its request");
                    RequestError::from_reply(reply)
                }
                None => Err(RequestError::from(e)),
            },
        }
    };
    pending.answer(answer);
}

/// What [`Requests::correlate`] found a received message to be.
#[derive(Debug)]
pub(crate) enum Correlated<P> {
    /// The reply to this waiting request (taken out of the table).
    Answers(Pending<P>),
    /// A reply (it has a reply reference) to no request waiting now: dropped.
    Stale,
    /// Not a reply: route it.
    NotAReply,
}

/// A [`RequestTable`] shared by a node's callers and its receive path.
#[derive(Debug)]
pub(crate) struct Requests<P> {
    table: Mutex<RequestTable<P>>,
    /// `table.len()`, readable without the lock: the receive path looks at it for every message.
    waiting: AtomicUsize,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug> Requests<P> {
    pub(crate) fn new(limits: Limits, matching: Matching) -> Self {
        Self {
            table: Mutex::new(RequestTable::new(limits, matching)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Run `f` on the table and publish its new length.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut RequestTable<P>) -> R) -> R {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut table);
        self.waiting.store(table.len(), Ordering::Release);
        r
    }

    /// True when no request waits (so a received message cannot be a reply).
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting.load(Ordering::Acquire) == 0
    }

    /// What a message from `from` that passed the instance plugins is: the answer to a waiting
    /// request, a reply that came too late (it carries a reply reference, so it is never routed),
    /// or no reply at all.
    #[inline]
    pub(crate) fn correlate(&self, from: P, msg: &Message) -> Correlated<P> {
        // Nothing waits and this type is not a reply type (a request, a notification: the common
        // case on a server): decided without looking up an auth field. A late reply of an unusual
        // type then goes to the router; one of a reply type is still dropped below.
        if self.is_idle() && !may_answer(msg.message_type) {
            return Correlated::NotAReply;
        }
        let referenced = msg.reply_ref().is_some();
        if !referenced && self.is_idle() {
            return Correlated::NotAReply;
        }
        match self.with(|t| t.take_reply(from, msg)) {
            Some(p) => Correlated::Answers(p),
            None if referenced => Correlated::Stale,
            None => Correlated::NotAReply,
        }
    }

    /// The request an error reply that failed the instance plugins answers, if any (see
    /// [`RequestTable::take_unauthenticated`]).
    pub(crate) fn correlate_unauthenticated(&self, from: P, msg: &Message) -> Option<Pending<P>> {
        if self.is_idle() || !msg.message_type.is_error() {
            return None;
        }
        self.with(|t| t.take_unauthenticated(from, msg.reply_ref(), msg.message_type))
    }

    /// Send `msg` as a request to `peer` and wait for its reply until `timeout` has passed, the
    /// send included. `send` seals, encodes and sends the message (with its request id set).
    /// However this future ends (answer, timeout, error, or dropped by its caller), the request
    /// leaves the table.
    pub(crate) async fn exchange<F, Fut>(
        &self,
        peer: P,
        mut msg: Message,
        inner: Plugins,
        timeout: Duration,
        send: F,
    ) -> Result<Message, RequestError>
    where
        F: FnOnce(Message) -> Fut,
        Fut: std::future::Future<Output = Result<(), SendError>>,
    {
        let (id, deadline, mut rx) =
            self.with(|t| t.start(peer, &mut msg, inner, timeout, Instant::now()))?;
        let _guard = Guard { requests: self, id };
        let sending = send(msg);
        tokio::pin!(sending);
        let mut sent = false;
        // Bounded: the deadline passes once, after which the table has answered the request.
        loop {
            tokio::select! {
                biased;
                answer = &mut rx => return answer.unwrap_or(Err(RequestError::Closed)),
                r = &mut sending, if !sent => {
                    sent = true;
                    r?;
                }
                () = tokio::time::sleep_until(deadline) => {
                    self.with(|t| t.handle_timeout(Instant::now()));
                    // The table has answered the request by now: with its timeout, or with a
                    // reply that came first.
                    return rx.try_recv().unwrap_or(Err(RequestError::Timeout(timeout)));
                }
            }
        }
    }
}

/// Takes a request out of the table however its caller's future ends.
struct Guard<'a, P: Copy + Eq + Hash + std::fmt::Debug> {
    requests: &'a Requests<P>,
    id: u64,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug> Drop for Guard<'_, P> {
    fn drop(&mut self) {
        self.requests.with(|t| t.remove(self.id));
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
        RequestTable::new(LIMITS, matching)
    }

    fn start(
        t: &mut RequestTable<u8>,
        peer: u8,
        msg: Message,
        now: Instant,
    ) -> (u64, oneshot::Receiver<Answer>) {
        let mut msg = msg;
        let (id, _, rx) = t
            .start(peer, &mut msg, Plugins::new(), SECOND, now)
            .unwrap();
        assert_eq!(msg.request_id(), Some(id));
        (id, rx)
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
        assert!(t.take_reply(2, &r).is_none(), "another peer cannot answer");
        assert_eq!(t.len(), 2);
        assert!(t.take_reply(1, &r).is_some());
        assert!(t.take_reply(1, &r).is_none(), "answered once");
        assert_eq!(t.len(), 1);
        // A reference to no waiting request is not matched by uri instead.
        let stale = reply(MessageType::RESPOND_URI, "x", Some(999));
        assert!(t.take_reply(1, &stale).is_none());
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
        let p = t.take_reply(1, &reply(MessageType::RESPOND_URI, "u", None));
        assert_eq!(p.map(|p| p.sent), Some(MessageType::REQUEST_URI));
        assert!(t.entries.contains_key(&req2) && !t.entries.contains_key(&req1));
        // OK answers the oldest of CREATE_URI and REQUEST_URI (Python answers requests with OK).
        assert!(
            t.take_reply(1, &reply(MessageType::OK, "u", None))
                .is_some()
        );
        assert!(!t.entries.contains_key(&create));
        // Other uri, other peer, or a type that answers nothing: no match.
        assert!(
            t.take_reply(1, &reply(MessageType::OK, "v", None))
                .is_none()
        );
        assert!(
            t.take_reply(2, &reply(MessageType::OK, "u", None))
                .is_none()
        );
        assert!(
            t.take_reply(1, &reply(MessageType::NOTIFY_URI, "u", None))
                .is_none()
        );
        // An error for the uri answers it.
        assert!(
            t.take_reply(1, &reply(MessageType::NOT_FOUND, "u", None))
                .is_some()
        );
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
            let got = t.take_reply(1, &err);
            if matching == Matching::Python {
                assert_eq!(got.map(|p| p.uri), Some(Bytes::from_static(b"a")));
                assert!(!t.entries.contains_key(&first));
            } else {
                assert!(got.is_none());
            }
            // A non-error without a match never takes the oldest.
            assert!(
                t.take_reply(1, &reply(MessageType::OK, "ERROR", None))
                    .is_none()
            );
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
        let e = t.start(1, &mut m, Plugins::new(), SECOND, now).unwrap_err();
        assert!(matches!(e, RequestError::TooManyInFlight(n) if n == LIMITS.per_peer));
        for _ in 0..LIMITS.per_peer {
            keep.push(start(
                &mut t,
                2,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                now,
            ));
        }
        let e = t.start(3, &mut m, Plugins::new(), SECOND, now).unwrap_err();
        assert!(matches!(e, RequestError::TooManyInFlight(n) if n == LIMITS.total));
        // A request that leaves makes room for its peer again.
        assert!(t.remove(keep[0].0).is_some());
        assert!(t.start(1, &mut m, Plugins::new(), SECOND, now).is_ok());
        assert_eq!(t.per_peer.get(&1), Some(&LIMITS.per_peer));
    }

    #[test]
    fn deadlines_are_data_and_expire_in_order() {
        let t0 = Instant::now();
        let mut t = table(Matching::Native);
        assert_eq!(t.poll_timeout(), None);
        let mut a = Message::new(MessageType::REQUEST_URI, "a", "");
        let (_, da, mut ra) = t
            .start(1, &mut a, Plugins::new(), Duration::from_secs(3), t0)
            .unwrap();
        let mut b = Message::new(MessageType::REQUEST_URI, "b", "");
        let (_, db, mut rb) = t
            .start(1, &mut b, Plugins::new(), Duration::from_secs(1), t0)
            .unwrap();
        assert_eq!(da, t0 + Duration::from_secs(3));
        assert_eq!(t.poll_timeout(), Some(db));
        assert_eq!(t.handle_timeout(t0 + Duration::from_millis(999)), 0);
        assert_eq!(
            t.handle_timeout(db),
            1,
            "a deadline is reached at its instant"
        );
        assert!(matches!(rb.try_recv(), Ok(Err(RequestError::Timeout(d))) if d == SECOND));
        assert!(ra.try_recv().is_err(), "the later request still waits");
        assert_eq!(t.poll_timeout(), Some(da));
        assert_eq!(t.handle_timeout(t0 + Duration::from_secs(60)), 1);
        assert!(matches!(ra.try_recv(), Ok(Err(RequestError::Timeout(_)))));
        assert_eq!((t.len(), t.poll_timeout()), (0, None));
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        let now = Instant::now();
        let mut t = table(Matching::Native);
        let mut m = Message::new(MessageType::REQUEST_URI, "a", "");
        let (_, deadline, _rx) = t
            .start(1, &mut m, Plugins::new(), Duration::MAX, now)
            .unwrap();
        assert!(deadline > now + Duration::from_secs(86_400));
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
        assert!(t.start(1, &mut m, Plugins::new(), SECOND, now).is_ok());
        t.fail_all(true);
        assert!(matches!(
            t.start(1, &mut m, Plugins::new(), SECOND, now),
            Err(RequestError::Closed)
        ));
        assert_eq!(t.poll_timeout(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn exchange_times_out_at_its_deadline_and_leaves_the_table() {
        let requests: Requests<u8> = Requests::new(LIMITS, Matching::Native);
        let started = Instant::now();
        let e = requests
            .exchange(
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                Plugins::new(),
                SECOND,
                |_| async { Ok(()) },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, RequestError::Timeout(d) if d == SECOND),
            "{e:?}"
        );
        assert_eq!(Instant::now() - started, SECOND);
        assert!(requests.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn exchange_gets_the_reply_matched_by_the_receive_path() {
        let requests = std::sync::Arc::new(Requests::<u8>::new(LIMITS, Matching::Native));
        let (sent_tx, sent_rx) = oneshot::channel::<u64>();
        let receiver = {
            let requests = requests.clone();
            tokio::spawn(async move {
                let id = sent_rx.await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut r = Message::new(MessageType::RESPOND_URI, "a", "hi");
                r.set_reply_ref(id);
                let p = requests.with(|t| t.take_reply(1, &r)).unwrap();
                p.answer(RequestError::from_reply(r));
            })
        };
        let reply = requests
            .exchange(
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                Plugins::new(),
                SECOND,
                |m| async move {
                    sent_tx.send(m.request_id().unwrap()).unwrap();
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert_eq!(reply.content().as_ref(), b"hi");
        receiver.await.unwrap();
        assert!(requests.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_send_fails_at_once_and_a_dropped_caller_leaves_nothing() {
        let requests: Requests<u8> = Requests::new(LIMITS, Matching::Native);
        let e = requests
            .exchange(
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                Plugins::new(),
                SECOND,
                |_| async { Err(SendError::Closed) },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, RequestError::Send(SendError::Closed)), "{e:?}");
        assert!(requests.is_idle());
        let pending = requests.exchange(
            1,
            Message::new(MessageType::REQUEST_URI, "a", ""),
            Plugins::new(),
            SECOND,
            |_| async { Ok(()) },
        );
        let r = tokio::time::timeout(Duration::from_millis(10), pending).await;
        assert!(r.is_err(), "still waiting when dropped");
        assert!(requests.is_idle());
    }
}
