//! What the request table holds and answers with: a waiting request, its timing, what a reply
//! is to it, the counts, and which reply types can answer which request (see `table.rs`).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::late::Expired;
use super::slot::{AnswerRx, AnswerTx};
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
    pub(super) inner: Plugins,
    /// When it was registered (its round trip is measured from here).
    pub(crate) started: Instant,
    /// The hard deadline.
    pub(super) deadline: Instant,
    pub(super) timeout: Duration,
    /// The soft deadline, while one is armed.
    pub(super) soft: Option<Instant>,
    /// Soft deadlines passed so far.
    pub(super) soft_passed: u32,
    /// Where a passed soft deadline is announced (`soft_passed`), for calls that set one.
    pub(super) soft_events: Option<watch::Sender<u32>>,
    /// Its soft timeout is shorter than [`FINE`]: its soft deadlines are kept to the
    /// microsecond.
    pub(super) soft_fine: bool,
    /// Sent more than once: which send a reply answers is unknown (no round-trip sample).
    pub(crate) resent: bool,
    /// Registration order (ids are random): "the oldest request" is the lowest.
    pub(super) seq: u64,
    pub(super) tx: AnswerTx,
}

impl<P> Pending<P> {
    /// The call's inner plugins (the reply is opened with them).
    pub(crate) fn inner(&self) -> &Plugins {
        &self.inner
    }

    /// Hand the caller its answer (a caller that has gone away is no error).
    pub(crate) fn answer(self, answer: Answer) {
        self.tx.send(answer);
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
    pub(crate) rx: AnswerRx,
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
pub(super) fn timeout_soft_fine(soft: Option<Instant>, now: Instant) -> bool {
    soft.is_some_and(|s| s.saturating_duration_since(now) < FINE)
}

/// Whether `reply` (without a reference) can answer a request of type `sent`: the type the
/// request expects, or any error type. A REQUEST_URI accepts OK too: Python nodes answer requests
/// with `make_ok_msg` as often as with `make_respond_uri_msg`.
pub(super) fn answers(sent: MessageType, reply: MessageType) -> bool {
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
