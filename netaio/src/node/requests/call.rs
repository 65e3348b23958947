//! Calls with options: a hard and a soft timeout, retries. [`CallOptions`] says what a call
//! wants; `start_call` on a node registers the request and returns a [`PendingCall`], a future of
//! the reply that can also tell when its soft timeout passes (EGTP's "impatience") while it stays
//! open, and that re-sends its request (same id, sealed afresh) on a soft timeout or after its
//! connection came back, as many times as [`CallOptions::retry`] allows.
//!
//! A call without soft timeout or retries (`call`, `call_with`, `request`, …) does not come
//! here: it takes [`Requests::exchange`](super::Requests::exchange), which costs what a call
//! cost before any of this existed.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Requests;
use super::options::CallOptions;
use super::table::{Started, Timing};
use crate::Message;
use crate::error::{RequestError, SendError};
use crate::plugin::SendOptions;

/// A call on its way: await it for the reply (as `call` would return it), and select on
/// [`soft_timeout`](Self::soft_timeout) to act when the soft timeout passes while it stays
/// open. Dropping it forgets the request (a reply then is stale, not late).
///
/// ```no_run
/// use std::time::Duration;
/// use netaio::{CallOptions, Message, MessageType};
///
/// # async fn f(conn: netaio::Connection) -> Result<(), netaio::RequestError> {
/// let opts = CallOptions::new().soft_timeout(Duration::from_millis(50));
/// let mut call = conn.start_call(Message::new(MessageType::REQUEST_URI, "status", ""), &opts);
/// let soft = call.soft_timeout();
/// let reply = tokio::select! {
///     reply = &mut call => reply?,
///     () = soft => {
///         println!("slow peer; still waiting until the hard timeout");
///         call.await?
///     }
/// };
/// # Ok(()) }
/// ```
pub struct PendingCall {
    id: Option<u64>,
    deadline: Option<Instant>,
    pub(super) soft: Option<Instant>,
    /// How many soft timeouts passed, as the node's request timer announces them.
    pub(super) soft_events: Option<watch::Receiver<u32>>,
    pub(super) fut: Pin<Box<dyn Future<Output = Result<Message, RequestError>> + Send>>,
}

impl fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCall")
            .field("request_id", &self.id)
            .field("deadline", &self.deadline)
            .field("soft_deadline", &self.soft)
            .finish_non_exhaustive()
    }
}

impl Future for PendingCall {
    type Output = Result<Message, RequestError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.fut.as_mut().poll(cx)
    }
}

impl PendingCall {
    /// A call that failed before its request was registered (it resolves to `e` at once).
    pub(crate) fn failed(e: RequestError) -> Self {
        Self {
            id: None,
            deadline: None,
            soft: None,
            soft_events: None,
            fut: Box::pin(std::future::ready(Err(e))),
        }
    }

    /// Its request id (`None` when it failed at once).
    pub fn request_id(&self) -> Option<u64> {
        self.id
    }

    /// When its hard timeout passes.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// When its (first) soft timeout passes, if it has one.
    pub fn soft_deadline(&self) -> Option<Instant> {
        self.soft
    }

    /// True once its soft timeout has passed (the node's request timer has announced it).
    pub fn is_impatient(&self) -> bool {
        self.soft_events.as_ref().is_some_and(|e| *e.borrow() > 0)
    }

    /// A future that resolves when the soft timeout passes (never, without one, or once the
    /// call has ended). It borrows nothing, so it can be selected on next to the call itself;
    /// the call goes on.
    pub fn soft_timeout(&self) -> impl Future<Output = ()> + Send + use<> {
        let events = self.soft_events.clone();
        async move {
            if let Some(mut e) = events
                && e.wait_for(|n| *n > 0).await.is_ok()
            {
                return;
            }
            std::future::pending().await
        }
    }
}

/// What a call needs from the link it goes over (a client connection, a server's connection to
/// one client, a UDP node and an address).
pub(crate) trait CallLink: Send + Sync + 'static {
    /// The request table's peer type.
    type Peer: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static;

    /// The node's requests.
    fn requests(&self) -> &Requests<Self::Peer>;

    /// The peer the call goes to.
    fn peer(&self) -> Self::Peer;

    /// Whether a request can leave now (fast fail: not connected, no such connection, node
    /// stopped).
    fn ready(&self) -> Result<(), RequestError>;

    /// Seal `msg` and hand it to the socket or the send queue, without waiting for room: a full
    /// queue is [`SendError::QueueFull`] at once.
    fn send(
        &self,
        msg: Message,
        opts: &SendOptions,
    ) -> impl Future<Output = Result<(), SendError>> + Send;

    /// After the link dropped: wait until it carries requests again; false when it never will.
    fn reconnected(&self) -> impl Future<Output = bool> + Send {
        std::future::ready(false)
    }

    /// When `answer` is a challenge to prove this node's address (a UDP node's return
    /// routability), the auth field to add to the request sent again (name and cookie); the
    /// call sends it once more, with the same id, within its deadline.
    fn challenge(&self, _answer: &Result<Message, RequestError>) -> Option<(&'static str, Bytes)> {
        None
    }
}

/// Start a call over `link`.
pub(crate) fn start<L: CallLink>(link: L, mut msg: Message, opts: &CallOptions) -> PendingCall {
    if let Err(e) = link.ready() {
        return PendingCall::failed(e);
    }
    let peer = link.peer();
    let requests = link.requests();
    let (timeout, soft) = requests.timeouts(peer, &msg, opts.timeout, opts.soft_timeout);
    if opts.retry > 0 {
        msg.set_at_most_once(timeout);
    }
    let now = Instant::now();
    let inner = opts.send.inner.clone();
    let started = match requests.with(|t| t.start(peer, &mut msg, inner, timeout, soft, now)) {
        Ok(s) => s,
        Err(e) => return PendingCall::failed(e),
    };
    let (id, deadline, soft_at) = (started.id, started.deadline, started.soft);
    let soft_events = started.soft_events.as_ref().map(|e| e.subscribe());
    let plan = Plan {
        send: opts.send.clone(),
        timeout,
        soft,
        retries: opts.retry,
        started: now,
    };
    PendingCall {
        id: Some(id),
        deadline: Some(deadline),
        soft: soft_at,
        soft_events,
        fut: Box::pin(drive(Owned { link, id }, msg, started, plan)),
    }
}

struct Plan {
    send: SendOptions,
    timeout: Duration,
    soft: Option<Duration>,
    retries: u32,
    started: Instant,
}

/// The link of a call, which takes the request out of the table however the call ends: an
/// argument of [`drive`], so dropped with its future even if it was never polled.
struct Owned<L: CallLink> {
    link: L,
    id: u64,
}

impl<L: CallLink> Drop for Owned<L> {
    fn drop(&mut self) {
        self.link.requests().with(|t| t.remove(self.id));
    }
}

/// Send the request and wait for its answer, re-sending it as the plan allows. The node's
/// request timer passes its deadlines: a hard one answers it (`rx`), a soft one comes as an
/// event (`soft`). Only while its link is down (the request is out of the table then) does the
/// call watch its hard deadline itself.
async fn drive<L: CallLink>(
    owned: Owned<L>,
    mut msg: Message,
    started: Started,
    plan: Plan,
) -> Result<Message, RequestError> {
    let Started {
        id,
        deadline,
        rx,
        soft_events,
        ..
    } = started;
    let mut rx = rx;
    let mut soft = soft_events.as_ref().map(|e| e.subscribe());
    let link = &owned.link;
    let peer = link.peer();
    let mut retries = plan.retries;
    // A re-send on a soft timeout that fails locally does not end the call (the first copy
    // may still be answered); the first send, and a re-send after a reconnect, do.
    let sending = link.send(msg.clone(), &plan.send);
    tokio::pin!(sending);
    let mut must_send = true;
    let mut sent = false;
    let mut soft_seen = 0u32;
    let mut challenged = false;
    loop {
        tokio::select! {
            biased;
            answer = &mut rx => {
                let answer = answer.unwrap_or(Err(RequestError::Closed));
                let why = match link.challenge(&answer) {
                    Some((field, cookie)) if !challenged => {
                        // Not handled yet: the peer first wants this address proved. Once,
                        // with the same id and deadline.
                        challenged = true;
                        msg.auth.insert_static(field, cookie);
                        "challenged: request sent again with the cookie"
                    }
                    _ => {
                        if !matches!(answer, Err(RequestError::Closed)) || retries == 0 {
                            return answer;
                        }
                        // The link dropped with the request in flight: send it again once
                        // the link is back, within the hard deadline.
                        let back = tokio::select! {
                            back = link.reconnected() => back,
                            () = tokio::time::sleep_until(deadline) => {
                                return Err(RequestError::Timeout(plan.timeout));
                            }
                        };
                        if !back {
                            return answer;
                        }
                        retries -= 1;
                        "request re-sent after a reconnect"
                    }
                };
                let soft_at = plan.soft.map(|s| Instant::now() + s);
                rx = link.requests().with(|t| {
                    let timing = Timing {
                        started: plan.started,
                        deadline,
                        timeout: plan.timeout,
                        soft: soft_at,
                        soft_events: soft_events.clone(),
                    };
                    t.restart(id, peer, &msg, plan.send.inner.clone(), timing)
                })?;
                tracing::debug!(id, "{why}");
                sending.set(link.send(msg.clone(), &plan.send));
                (sent, must_send) = (false, true);
            }
            r = &mut sending, if !sent => {
                sent = true;
                match r {
                    Ok(()) => {}
                    Err(e) if must_send => return Err(e.into()),
                    Err(e) => tracing::debug!(id, error = %e, "re-send failed; still waiting"),
                }
            }
            changed = async { soft.as_mut()?.changed().await.ok() }, if soft.is_some() => {
                let Some(()) = changed else {
                    // Cannot happen (this call holds a sender); stop watching anyway.
                    soft = None;
                    continue;
                };
                let n = soft.as_mut().map_or(0, |e| *e.borrow_and_update());
                if n > soft_seen {
                    soft_seen = n;
                    if retries > 0 && sent {
                        retries -= 1;
                        let soft_at = plan.soft.map(|s| Instant::now() + s);
                        link.requests().with(|t| t.resend(id, soft_at));
                        tracing::debug!(id, "soft timeout: request re-sent");
                        sending.set(link.send(msg.clone(), &plan.send));
                        (sent, must_send) = (false, false);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tokio::sync::{Notify, mpsc};

    use super::super::table::Limits;
    use super::super::{Matching, RequestSettings};
    use super::*;
    use crate::MessageType;

    const SECOND: Duration = Duration::from_secs(1);

    /// A link whose sends go to a channel, so the test plays the peer.
    #[derive(Clone)]
    struct TestLink {
        requests: Arc<Requests<u8>>,
        sent: mpsc::UnboundedSender<Message>,
        up: Arc<AtomicBool>,
        back: Arc<Notify>,
        sends: Arc<AtomicUsize>,
    }

    impl CallLink for TestLink {
        type Peer = u8;
        fn requests(&self) -> &Requests<u8> {
            &self.requests
        }
        fn peer(&self) -> u8 {
            1
        }
        fn ready(&self) -> Result<(), RequestError> {
            if self.up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(SendError::Closed.into())
            }
        }
        fn send(
            &self,
            msg: Message,
            _: &SendOptions,
        ) -> impl Future<Output = Result<(), SendError>> + Send {
            self.sends.fetch_add(1, Ordering::SeqCst);
            let r = if self.up.load(Ordering::SeqCst) {
                self.sent.send(msg).map_err(|_| SendError::Closed)
            } else {
                Err(SendError::Closed)
            };
            std::future::ready(r)
        }
        async fn reconnected(&self) -> bool {
            self.back.notified().await;
            true
        }
    }

    fn link(settings: RequestSettings) -> (TestLink, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let requests = Requests::new(
            Limits {
                total: 8,
                per_peer: 8,
            },
            Matching::Native,
            SECOND,
            &settings,
        );
        (
            TestLink {
                requests: Arc::new(requests),
                sent: tx,
                up: Arc::new(AtomicBool::new(true)),
                back: Arc::new(Notify::new()),
                sends: Arc::new(AtomicUsize::new(0)),
            },
            rx,
        )
    }

    /// Answer `req` as its peer would (through the receive path's correlation).
    fn answer(link: &TestLink, req: &Message, content: &'static str) -> bool {
        let mut r = Message::respond(req.uri().clone(), content);
        r.set_reply_ref(req.request_id().unwrap());
        match link.requests.correlate(1, &r) {
            super::super::Correlated::Answers(p) => {
                p.answer(RequestError::from_reply(r));
                true
            }
            _ => false,
        }
    }

    fn req() -> Message {
        Message::new(MessageType::REQUEST_URI, "a", "")
    }

    #[tokio::test(start_paused = true)]
    async fn soft_timeout_resolves_while_the_call_stays_open_and_a_later_reply_answers_it() {
        let (link, mut peer) = link(RequestSettings::default());
        let opts = CallOptions::new().soft_timeout(SECOND / 10);
        let t0 = Instant::now();
        let mut call = start(link.clone(), req(), &opts);
        assert_eq!(call.soft_deadline(), Some(t0 + SECOND / 10));
        assert_eq!(call.deadline(), Some(t0 + SECOND));
        let soft = call.soft_timeout();
        let sent = tokio::select! {
            _ = &mut call => panic!("answered without a reply"),
            () = soft => {
                assert!(call.is_impatient());
                assert_eq!(Instant::now() - t0, SECOND / 10);
                peer.try_recv().unwrap()
            }
        };
        assert_eq!(sent.request_id(), call.request_id());
        assert!(sent.at_most_once().is_none(), "no retries: not marked");
        tokio::time::sleep(SECOND / 2).await;
        assert!(answer(&link, &sent, "late but in time"));
        let reply = call.await.unwrap();
        assert_eq!(reply.content().as_ref(), b"late but in time");
        assert!(link.requests.is_idle());
        let stats = link.requests.stats(0);
        assert_eq!((stats.soft_timeouts, stats.timeouts), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sub_millisecond_soft_timeout_passes_under_a_paused_clock_too() {
        // The fine timer thread wakes the node's timer at such a deadline by the real clock; a
        // paused clock does not move meanwhile, so it then sleeps to it (tokio rounds that to
        // its next tick).
        let (link, _peer) = link(RequestSettings::default());
        for soft in [Duration::from_micros(50), Duration::from_micros(999)] {
            let opts = CallOptions::new().soft_timeout(soft);
            let t0 = Instant::now();
            let call = start(link.clone(), req(), &opts);
            call.soft_timeout().await;
            assert!(call.is_impatient());
            let took = Instant::now() - t0;
            assert!(soft <= took && took <= Duration::from_millis(1), "{took:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_resend_the_same_id_on_each_soft_timeout_then_the_hard_one_fails_it() {
        let (link, mut peer) = link(RequestSettings::default());
        let opts = CallOptions::new().soft_timeout(SECOND / 10).retry(2);
        let t0 = Instant::now();
        let e = start(link.clone(), req(), &opts).await.unwrap_err();
        assert!(
            matches!(e, RequestError::Timeout(d) if d == SECOND),
            "{e:?}"
        );
        assert_eq!(Instant::now() - t0, SECOND);
        let copies: Vec<Message> = std::iter::from_fn(|| peer.try_recv().ok()).collect();
        assert_eq!(copies.len(), 3, "the request and two retries");
        assert!(
            copies
                .iter()
                .all(|m| m.request_id() == copies[0].request_id())
        );
        assert_eq!(copies[0].at_most_once(), Some(SECOND));
        let stats = link.requests.stats(0);
        assert_eq!(
            (stats.retries, stats.soft_timeouts, stats.timeouts),
            (2, 3, 1)
        );
        // The reply to the timed-out request is late.
        let mut r = Message::respond("a", "");
        r.set_reply_ref(copies[0].request_id().unwrap());
        assert!(matches!(
            link.requests.correlate(1, &r),
            super::super::Correlated::Late(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_whose_link_drops_is_sent_again_when_it_is_back() {
        let (link, mut peer) = link(RequestSettings::default());
        let opts = CallOptions::new().retry(1);
        let call = tokio::spawn(start(link.clone(), req(), &opts));
        tokio::task::yield_now().await;
        let first = peer.recv().await.unwrap();
        // The link drops: its table fails what waits.
        link.up.store(false, Ordering::SeqCst);
        link.requests.with(|t| t.fail_all(false));
        tokio::time::sleep(SECOND / 10).await;
        link.up.store(true, Ordering::SeqCst);
        link.back.notify_waiters();
        let again = peer.recv().await.unwrap();
        assert_eq!(again.request_id(), first.request_id());
        assert!(answer(&link, &again, "once"));
        assert_eq!(call.await.unwrap().unwrap().content().as_ref(), b"once");
        assert_eq!(link.requests.stats(0).retries, 1);
        // Without retries, the drop fails the call.
        let call = tokio::spawn(start(link.clone(), req(), &CallOptions::new()));
        peer.recv().await.unwrap();
        link.requests.with(|t| t.fail_all(false));
        assert!(matches!(call.await.unwrap(), Err(RequestError::Closed)));
    }

    #[tokio::test(start_paused = true)]
    async fn fast_fail_and_a_dropped_call_leaves_nothing() {
        let (link, _peer) = link(RequestSettings::default());
        link.up.store(false, Ordering::SeqCst);
        let t0 = Instant::now();
        let call = start(link.clone(), req(), &CallOptions::new().retry(3));
        assert_eq!(call.request_id(), None);
        assert!(matches!(
            call.await,
            Err(RequestError::Send(SendError::Closed))
        ));
        assert_eq!(Instant::now(), t0, "at once");
        assert_eq!(link.sends.load(Ordering::SeqCst), 0);
        link.up.store(true, Ordering::SeqCst);
        let call = start(link.clone(), req(), &CallOptions::new());
        assert!(!link.requests.is_idle());
        drop(call);
        assert!(link.requests.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn adaptive_timeouts_follow_the_measured_round_trips() {
        let settings = RequestSettings {
            adaptive: Some(
                super::super::AdaptiveTimeouts::default()
                    .prior(SECOND, SECOND / 2)
                    .min(Duration::from_millis(1)),
            ),
            ..RequestSettings::default()
        };
        let (link, mut peer) = link(settings);
        // Prior: soft 2 s, hard 8 s clamped to max (60 s).
        let call = start(link.clone(), req(), &CallOptions::new());
        let t0 = Instant::now();
        assert_eq!(call.soft_deadline(), Some(t0 + SECOND * 2));
        assert_eq!(call.deadline(), Some(t0 + SECOND * 8));
        drop(call);
        for _ in 0..30 {
            let call = tokio::spawn(start(link.clone(), req(), &CallOptions::new()));
            let sent = peer.recv().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(answer(&link, &sent, ""));
            call.await.unwrap().unwrap();
        }
        let est = link.requests.rtt_estimates();
        assert_eq!(est.len(), 1);
        let e = &est[0].1;
        assert_eq!(e.samples, 30);
        assert!(e.mean.abs_diff(Duration::from_millis(20)) < Duration::from_millis(1));
        let call = start(link.clone(), req(), &CallOptions::new());
        let soft = call.soft_deadline().unwrap() - Instant::now();
        assert!(soft < Duration::from_millis(30), "{soft:?}");
        // An explicit timeout wins.
        let call = start(link.clone(), req(), &CallOptions::new().timeout(SECOND * 3));
        assert_eq!(call.deadline(), Some(Instant::now() + SECOND * 3));
    }
}
