//! A node's requests: the request table ([`table`]) behind a lock for the async callers and the
//! receive path ([`Requests`]), and what is built on it: late replies ([`late`]), adaptive
//! timeouts ([`rtt`]), calls with soft timeouts and retries ([`options`], [`call`]), hedged calls
//! ([`hedge`]), and the responder's at-most-once cache ([`dedup`]).
//!
//! Every caller goes through here: a TCP client connection, a TCP server calling one of its
//! clients, a UDP node. The fast path (`call`, `request`, … without soft timeout or retries) is
//! [`Requests::exchange`]: one table entry and a wait for its answer.
//!
//! Deadlines are the table's: one timer task per node sleeps to the table's next deadline
//! ([`RequestTable::fire`]) and passes what is due, which answers a request whose hard timeout
//! passed and announces a soft timeout on the call's events. A caller never sleeps to its own
//! deadline, so a request costs no timer of its own; the timer is woken only when a request
//! brings a deadline earlier than the one it sleeps to (rare when the timeouts are alike).

mod budget;
pub(crate) mod call;
mod deadlines;
pub(crate) mod dedup;
mod entry;
mod fine_timer;
pub(crate) mod hedge;
pub(crate) mod late;
pub(crate) mod options;
pub(crate) mod rtt;
mod slot;
pub(crate) mod table;

use std::future::Future;
use std::hash::Hash;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

pub use self::budget::HedgeBudget;
pub use self::call::PendingCall;
pub(crate) use self::call::{CallLink, start as start_call};
pub use self::dedup::DedupConfig;
pub(crate) use self::dedup::{Admit, Dedup, Running};
pub use self::hedge::{CallTarget, call_any};
use self::late::Expired;
pub use self::late::{LateReply, LateReplyConfig};
pub use self::options::CallOptions;
use self::rtt::RttTable;
pub use self::rtt::{AdaptiveTimeouts, RttEstimate};
pub(crate) use self::table::{Limits, Matching, Pending, RequestTable, Taken};
use crate::Message;
use crate::error::{RequestError, SendError};
use crate::plugin::{NodePlugins, Plugins, open_inner};

/// Counters of a node's requests, as `request_stats()` on a
/// [`Connection`](crate::Connection), a [`ServerHandle`](crate::ServerHandle) or a
/// [`UdpHandle`](crate::UdpHandle) reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestStats {
    /// Calls failed with [`RequestError::Timeout`] (their hard timeout passed).
    pub timeouts: u64,
    /// Soft timeouts passed (the calls went on waiting).
    pub soft_timeouts: u64,
    /// Replies that came after their call's hard timeout ([`LateReply`]).
    pub late_replies: u64,
    /// Requests re-sent ([`CallOptions::retry`]).
    pub retries: u64,
    /// Requests of peers answered from the at-most-once cache, or dropped while their first copy
    /// was running, instead of running their handler again.
    pub duplicates: u64,
}

/// The request settings the three builders share (`soft_timeout`, `adaptive_timeouts`,
/// `late_replies`, `dedup`).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestSettings {
    pub(crate) soft_timeout: Option<Duration>,
    pub(crate) adaptive: Option<AdaptiveTimeouts>,
    pub(crate) late: LateReplyConfig,
    pub(crate) dedup: DedupConfig,
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
    addr: SocketAddr,
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
    /// The reply to this request, which had timed out: publish it with
    /// [`Requests::publish_late`].
    Late(Expired<P>),
    /// A reply (it has a reply reference) to no request waiting or remembered: dropped.
    Stale,
    /// Not a reply: route it.
    NotAReply,
}

/// A [`RequestTable`] shared by a node's callers and its receive path, with the node's request
/// settings.
#[derive(Debug)]
pub(crate) struct Requests<P> {
    /// Shared with the node's timer task (which holds it weakly, and ends when it is gone).
    table: Arc<Mutex<RequestTable<P>>>,
    /// Wakes the timer task: a deadline earlier than the one it sleeps to, or the node dropped.
    timer: Arc<Notify>,
    /// Set once the timer task is spawned (on the first request).
    timer_spawned: OnceLock<()>,
    /// `table.len()`, readable without the lock: the receive path looks at it for every message.
    /// (The timer's hard timeouts shrink the table without updating it; each such request's
    /// caller then takes it out through `with`, which does.)
    waiting: AtomicUsize,
    /// `table.late_by_uri_possible()`, readable without the lock (Python peers' late replies
    /// carry no reference).
    late_by_uri: AtomicBool,
    /// The node's hard timeout.
    timeout: Duration,
    /// The node's soft timeout.
    soft_timeout: Option<Duration>,
    /// Round-trip estimates, with adaptive timeouts on.
    rtt: Option<(AdaptiveTimeouts, Mutex<RttTable<P>>)>,
    late_buffer: usize,
    /// The late-replies stream, made when someone first subscribes.
    late: OnceLock<broadcast::Sender<LateReply>>,
}

impl<P> Drop for Requests<P> {
    fn drop(&mut self) {
        // The timer task sees the table gone and ends.
        self.timer.notify_one();
    }
}

impl<P: Copy + Eq + Hash + std::fmt::Debug + Send + 'static> Requests<P> {
    pub(crate) fn new(
        limits: Limits,
        matching: Matching,
        timeout: Duration,
        settings: &RequestSettings,
    ) -> Self {
        Self {
            table: Arc::new(Mutex::new(RequestTable::new(
                limits,
                matching,
                settings.late,
            ))),
            timer: Arc::new(Notify::new()),
            timer_spawned: OnceLock::new(),
            waiting: AtomicUsize::new(0),
            late_by_uri: AtomicBool::new(false),
            timeout,
            soft_timeout: settings.soft_timeout,
            rtt: settings.adaptive.map(|a| (a, Mutex::new(RttTable::new(a)))),
            late_buffer: settings.late.get_buffer(),
            late: OnceLock::new(),
        }
    }

    /// Run `f` on the table and publish its new length; wake the timer when `f` added a
    /// deadline earlier than the one it sleeps to.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut RequestTable<P>) -> R) -> R {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut table);
        self.waiting.store(table.len(), Ordering::Release);
        self.late_by_uri
            .store(table.late_by_uri_possible(), Ordering::Relaxed);
        let wake = table.take_wake();
        drop(table);
        if wake {
            self.wake_timer();
        }
        r
    }

    /// Wake the node's timer task, spawning it the first time (on the runtime of the first
    /// request: a node's requests are made from within its runtime).
    fn wake_timer(&self) {
        self.timer_spawned.get_or_init(|| {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(run_timer(Arc::downgrade(&self.table), self.timer.clone()));
                }
                // A request registered outside any runtime cannot be sent either; its caller's
                // own future (polled in some runtime later) is what would wait.
                Err(e) => tracing::error!(error = %e, "request timer not started: no runtime"),
            }
        });
        self.timer.notify_one();
    }

    /// True when no request waits (so a received message cannot be a reply).
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting.load(Ordering::Acquire) == 0
    }

    fn rtt(&self) -> Option<std::sync::MutexGuard<'_, RttTable<P>>> {
        self.rtt
            .as_ref()
            .map(|(_, m)| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The (hard, soft) timeouts of a request of type `sent` for `uri` to `peer`: the call's own
    /// when it sets them, else the adaptive ones when on, else the node's.
    pub(crate) fn timeouts(
        &self,
        peer: P,
        msg: &Message,
        hard: Option<Duration>,
        soft: Option<Option<Duration>>,
    ) -> (Duration, Option<Duration>) {
        if let (Some(h), Some(s)) = (hard, soft) {
            return (h, s);
        }
        let adaptive = self
            .rtt()
            .map(|t| t.timeouts(peer, msg.message_type, msg.uri()));
        let hard = hard.or(adaptive.map(|(_, h)| h)).unwrap_or(self.timeout);
        let soft = soft.unwrap_or(adaptive.map(|(s, _)| s).or(self.soft_timeout));
        (hard, soft)
    }

    /// What a message from `from` that passed the instance plugins is: the answer to a waiting
    /// request, a reply that came after its request's hard timeout, a reply to nothing known (it
    /// carries a reply reference, so it is never routed), or no reply at all.
    #[inline]
    pub(crate) fn correlate(&self, from: P, msg: &Message) -> Correlated<P> {
        // Nothing waits and this type is not a reply type (a request, a notification: the common
        // case on a server): decided without looking up an auth field. A late reply of an unusual
        // type then goes to the router; one of a reply type is still looked up below.
        if self.is_idle() && !table::may_answer(msg.message_type) {
            return Correlated::NotAReply;
        }
        let referenced = msg.reply_ref().is_some();
        if !referenced && self.is_idle() && !self.late_by_uri.load(Ordering::Relaxed) {
            return Correlated::NotAReply;
        }
        match self.with(|t| t.take_reply(from, msg, Instant::now)) {
            Taken::Answers(p) => {
                if !p.resent
                    && let Some(mut rtt) = self.rtt()
                {
                    rtt.record(p.peer, p.sent, &p.uri, p.started.elapsed());
                }
                Correlated::Answers(p)
            }
            Taken::Late(e) => Correlated::Late(e),
            Taken::Nothing if referenced => Correlated::Stale,
            Taken::Nothing => Correlated::NotAReply,
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

    /// Hand a late reply to the late-replies stream (if anyone listens; it is counted anyway).
    pub(crate) fn publish_late(&self, e: Expired<P>, addr: SocketAddr, reply: Message) {
        let late_by = Instant::now().saturating_duration_since(e.deadline);
        // A Python peer's reply has no reference: the id is the request's, not the reply's.
        let request_id = reply.reply_ref().unwrap_or(e.id);
        tracing::debug!(id = request_id, ?late_by, %addr, "late reply");
        if let Some(tx) = self.late.get() {
            let _ = tx.send(LateReply {
                request_id,
                message_type: e.sent,
                uri: e.uri,
                peer: addr,
                late_by,
                reply,
            });
        }
    }

    /// The late replies from now on.
    pub(crate) fn late_replies(&self) -> broadcast::Receiver<LateReply> {
        self.late
            .get_or_init(|| broadcast::channel(self.late_buffer).0)
            .subscribe()
    }

    /// The counters (`duplicates` comes from the node's at-most-once cache).
    pub(crate) fn stats(&self, duplicates: u64) -> RequestStats {
        let c = self.with(|t| t.counts());
        RequestStats {
            timeouts: c.timeouts,
            soft_timeouts: c.soft_timeouts,
            late_replies: c.late_replies,
            retries: c.retries,
            duplicates,
        }
    }

    /// The round-trip estimates (empty unless adaptive timeouts are on).
    pub(crate) fn rtt_estimates(&self) -> Vec<(P, RttEstimate)> {
        self.rtt().map(|t| t.all()).unwrap_or_default()
    }

    /// Send `msg` as a request to `peer` and wait for its reply until its timeout (`timeout`,
    /// else the node's) has passed, the send included. `send` seals, encodes and hands the
    /// message to the socket or the send queue (with its request id set); its failure fails the
    /// call at once. However this future ends (answer, timeout, error, or dropped by its
    /// caller), the request leaves the table.
    pub(crate) async fn exchange<F, Fut>(
        &self,
        peer: P,
        mut msg: Message,
        inner: Plugins,
        timeout: Option<Duration>,
        send: F,
    ) -> Result<Message, RequestError>
    where
        F: FnOnce(Message) -> Fut,
        Fut: std::future::Future<Output = Result<(), SendError>>,
    {
        let timeout = match (timeout, &self.rtt) {
            (Some(t), _) => t,
            (None, None) => self.timeout,
            (None, Some(_)) => self.timeouts(peer, &msg, None, Some(None)).0,
        };
        let started =
            self.with(|t| t.start(peer, &mut msg, inner, timeout, None, Instant::now()))?;
        let mut guard = Guard {
            requests: self,
            id: started.id,
            rx: Some(started.rx),
        };
        let sending = send(msg);
        tokio::pin!(sending);
        let mut sent = false;
        // The table answers the request: with its reply, or with its timeout when the node's
        // timer passes its deadline.
        std::future::poll_fn(|cx| {
            if let Some(rx) = guard.rx.as_mut()
                && let Poll::Ready(answer) = Pin::new(rx).poll(cx)
            {
                return Poll::Ready(answer.unwrap_or(Err(RequestError::Closed)));
            }
            if !sent && let Poll::Ready(r) = sending.as_mut().poll(cx) {
                sent = true;
                if let Err(e) = r {
                    return Poll::Ready(Err(e.into()));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// A node's request timer: sleep to the table's next deadline, pass what is due, again; sleep
/// until woken while nothing waits. Ends when the table is gone.
async fn run_timer<P: Copy + Eq + Hash + std::fmt::Debug>(
    table: Weak<Mutex<RequestTable<P>>>,
    wake: Arc<Notify>,
) {
    loop {
        let (next, fine) = {
            let Some(table) = table.upgrade() else {
                return;
            };
            let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
            let next = t.fire(Instant::now()).1;
            (next, t.next_is_fine())
        };
        // A deadline added after `fire` wakes us through `wake` (whose permit is kept if we
        // are not waiting yet), so none is missed.
        match next {
            Some(at) if fine && at.saturating_duration_since(Instant::now()) < table::FINE => {
                fine_wait(at, &wake).await;
            }
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// Wait for a sub-millisecond soft deadline finer than tokio's timers (which fire on
/// millisecond ticks), or until woken: the process's fine timer thread ([`fine_timer`]) wakes
/// this timer at it, to within a few microseconds, without keeping a worker busy meanwhile.
/// Under a paused clock (tests), whose time does not move while tasks run, sleep to it
/// afterwards.
async fn fine_wait(at: Instant, wake: &Arc<Notify>) {
    let woken = wake.notified();
    tokio::pin!(woken);
    let real = std::time::Instant::now() + at.saturating_duration_since(Instant::now());
    match fine_timer::register(real, wake) {
        // Dropped when woken (by it, or earlier by the table): taken out if not passed.
        Some(_registered) => woken.as_mut().await,
        None => {
            tokio::select! {
                () = tokio::time::sleep_until(at) => return,
                () = woken.as_mut() => return,
            }
        }
    }
    // Woken early (the table has news): back to the loop. Woken at the deadline by the real
    // clock while tokio's has not moved (paused): sleep to it, tokio then moves its clock.
    if std::time::Instant::now() >= real && Instant::now() < at {
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = wake.notified() => {}
        }
    }
}

/// Takes a request out of the table however its caller's future ends, and gives its answer's
/// slot back for another request.
struct Guard<'a, P: Copy + Eq + Hash + std::fmt::Debug + Send + 'static> {
    requests: &'a Requests<P>,
    id: u64,
    rx: Option<slot::AnswerRx>,
}

impl<P: Copy + Eq + Hash + std::fmt::Debug + Send + 'static> Drop for Guard<'_, P> {
    fn drop(&mut self) {
        let rx = self.rx.take();
        self.requests.with(|t| {
            // Its sender (if still there) goes first, so the slot can be reused.
            drop(t.remove(self.id));
            if let Some(rx) = rx {
                t.recycle(rx);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::table::tests::{LIMITS, SECOND};
    use super::*;
    use crate::MessageType;
    use tokio::sync::oneshot;

    fn requests() -> Requests<u8> {
        Requests::new(
            LIMITS,
            Matching::Native,
            SECOND,
            &RequestSettings::default(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn exchange_times_out_at_its_deadline_and_leaves_the_table() {
        let requests = requests();
        let started = Instant::now();
        let e = requests
            .exchange(
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                Plugins::new(),
                Some(SECOND),
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
        let requests = std::sync::Arc::new(requests());
        let (sent_tx, sent_rx) = oneshot::channel::<u64>();
        let receiver = {
            let requests = requests.clone();
            tokio::spawn(async move {
                let id = sent_rx.await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut r = Message::new(MessageType::RESPOND_URI, "a", "hi");
                r.set_reply_ref(id);
                let p = requests
                    .with(|t| t.take_reply(1, &r, Instant::now).pending())
                    .unwrap();
                p.answer(RequestError::from_reply(r));
            })
        };
        let reply = requests
            .exchange(
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                Plugins::new(),
                Some(SECOND),
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
        // The answer's slot came back to the table, for the next request.
        assert_eq!(requests.with(|t| t.free_slots()), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_send_fails_at_once_and_a_dropped_caller_leaves_nothing() {
        let requests = requests();
        let e = requests
            .exchange(
                1,
                Message::new(MessageType::REQUEST_URI, "a", ""),
                Plugins::new(),
                Some(SECOND),
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
            Some(SECOND),
            |_| async { Ok(()) },
        );
        let r = tokio::time::timeout(Duration::from_millis(10), pending).await;
        assert!(r.is_err(), "still waiting when dropped");
        assert!(requests.is_idle());
    }
}
