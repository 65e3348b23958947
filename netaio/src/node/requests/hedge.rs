//! Hedged calls: ask one peer, and when its soft timeout passes (or it fails), the next of a
//! list, at most [`CallOptions::hedge`] more; the first good reply wins and the other calls are
//! cancelled (their requests leave their tables; a reply to them later is stale). Tower's
//! `hedge` middleware does the same from latency percentiles; here the trigger is the call's
//! soft timeout (fixed, or adaptive).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::call::PendingCall;
use super::options::CallOptions;
use crate::Message;
use crate::error::RequestError;

/// Something a call can go to: a client [`Connection`](crate::Connection), a server's
/// connection to one client (`(ServerHandle, ConnectionId)`), a UDP node and an address
/// (`(UdpHandle, SocketAddr)`). [`call_any`] takes a list of them, of one type or as
/// `&dyn CallTarget`.
pub trait CallTarget {
    /// Start a call to this target (see [`PendingCall`]).
    fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall;
}

impl<T: CallTarget + ?Sized> CallTarget for &T {
    fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall {
        (**self).start_call(msg, opts)
    }
}

impl<T: CallTarget + ?Sized> CallTarget for Box<T> {
    fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall {
        (**self).start_call(msg, opts)
    }
}

impl<T: CallTarget + ?Sized> CallTarget for std::sync::Arc<T> {
    fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall {
        (**self).start_call(msg, opts)
    }
}

/// A hedged call: send `msg` to the first target; each time the latest call's soft timeout
/// passes, or a call fails (an error reply, a timeout, a request that could not leave), send it
/// to the next target, up to [`CallOptions::hedge`] targets after the first. The first good
/// (non-error) reply is returned and the other calls are cancelled. When every call tried has
/// failed, the last failure is returned; an empty list is [`RequestError::NoTarget`].
///
/// Each call has the options' timeouts (the targets' defaults where the options set none) and
/// retries. Without a soft timeout, the next target is asked only when a call fails.
///
/// ```no_run
/// use std::time::Duration;
/// use netaio::{CallOptions, Message, MessageType, call_any};
///
/// # async fn f(a: netaio::Connection, b: netaio::Connection) -> Result<(), netaio::RequestError> {
/// let opts = CallOptions::new().soft_timeout(Duration::from_millis(20)).hedge(1);
/// let reply = call_any(&[a, b], Message::new(MessageType::REQUEST_URI, "price", "X"), &opts).await?;
/// # Ok(()) }
/// ```
pub async fn call_any<T: CallTarget>(
    targets: &[T],
    msg: Message,
    opts: &CallOptions,
) -> Result<Message, RequestError> {
    let limit = targets.len().min(opts.get_hedge().saturating_add(1));
    let mut calls: Vec<PendingCall> = Vec::with_capacity(limit);
    let mut next = 0;
    let mut last_error = RequestError::NoTarget;
    // The latest call's soft timeout, as its node's request timer announces it.
    let mut hedge_timer: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
    let start_next = |calls: &mut Vec<PendingCall>, next: &mut usize| {
        let target = targets.get(*next).filter(|_| *next < limit)?;
        *next += 1;
        let call = target.start_call(msg.clone(), opts);
        let soft = call.soft_deadline().map(|_| call.soft_timeout());
        calls.push(call);
        soft
    };
    let budget = opts.get_hedge_budget();
    if let Some(b) = budget {
        b.deposit(tokio::time::Instant::now());
    }
    if let Some(soft) = start_next(&mut calls, &mut next) {
        hedge_timer = Some(Box::pin(soft));
    }
    loop {
        if calls.is_empty() {
            // Nothing running and nothing left to start (an empty list).
            return Err(last_error);
        }
        let event = std::future::poll_fn(|cx| {
            let mut i = 0;
            while let Some(call) = calls.get_mut(i) {
                if let Poll::Ready(r) = Pin::new(call).poll(cx) {
                    calls.swap_remove(i);
                    return Poll::Ready(Some(r));
                }
                i += 1;
            }
            if let Some(timer) = hedge_timer.as_mut()
                && timer.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match event {
            Some(Ok(reply)) => return Ok(reply),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "hedged call: one target failed");
                last_error = e;
            }
            None => {
                hedge_timer = None;
                // A hedge is an extra request: only within the budget. Without one, the call
                // waits on for the targets already asked (a failure still moves on).
                if next < limit
                    && let Some(b) = budget
                    && !b.withdraw(tokio::time::Instant::now())
                {
                    tracing::debug!("hedged call: soft timeout, no hedge budget left");
                    continue;
                }
                tracing::debug!("hedged call: soft timeout, asking the next target");
            }
        }
        if next < limit
            && let Some(soft) = start_next(&mut calls, &mut next)
        {
            hedge_timer = Some(Box::pin(soft));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::MessageType;

    /// Which target was asked, when.
    type Asked = Arc<Mutex<Vec<(usize, Duration)>>>;

    /// A target that answers after a delay (or fails), recording when it was asked.
    struct Fake {
        delay: Option<Duration>,
        asked: Asked,
        index: usize,
        t0: Instant,
        soft: Option<Duration>,
    }

    impl CallTarget for Fake {
        fn start_call(&self, msg: Message, _: &CallOptions) -> PendingCall {
            self.asked
                .lock()
                .unwrap()
                .push((self.index, Instant::now() - self.t0));
            let (delay, index) = (self.delay, self.index);
            let mut call = PendingCall::failed(RequestError::Closed);
            call.soft = self.soft.map(|s| Instant::now() + s);
            // The soft-timeout event, as a node's request timer would send it.
            call.soft_events = self.soft.map(|s| {
                let (tx, rx) = tokio::sync::watch::channel(0);
                tokio::spawn(async move {
                    tokio::time::sleep(s).await;
                    tx.send_replace(1);
                    tx.closed().await;
                });
                rx
            });
            call.fut = Box::pin(async move {
                match delay {
                    Some(d) => {
                        tokio::time::sleep(d).await;
                        Ok(msg.with_content(format!("{index}")))
                    }
                    None => Err(RequestError::Closed),
                }
            });
            call
        }
    }

    fn fakes(delays: &[Option<u64>], soft: Option<u64>) -> (Vec<Fake>, Asked) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let v = delays
            .iter()
            .enumerate()
            .map(|(index, d)| Fake {
                delay: d.map(Duration::from_millis),
                asked: asked.clone(),
                index,
                t0,
                soft: soft.map(Duration::from_millis),
            })
            .collect();
        (v, asked)
    }

    fn msg() -> Message {
        Message::new(MessageType::REQUEST_URI, "a", "")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_target_is_asked_on_soft_timeout_and_the_first_reply_wins() {
        let (targets, asked) = fakes(&[Some(300), Some(10), Some(10)], Some(50));
        let t0 = Instant::now();
        let r = call_any(&targets, msg(), &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(r.content().as_ref(), b"1");
        assert_eq!(
            Instant::now() - t0,
            ms(60),
            "soft timeout + the fast answer"
        );
        assert_eq!(*asked.lock().unwrap(), vec![(0, ms(0)), (1, ms(50))]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_first_target_is_the_only_one_asked() {
        let (targets, asked) = fakes(&[Some(10), Some(10)], Some(50));
        let r = call_any(&targets, msg(), &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(r.content().as_ref(), b"0");
        assert_eq!(asked.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_move_on_at_once_and_hedge_bounds_the_extra_targets() {
        let (targets, asked) = fakes(&[None, None, Some(10)], Some(50));
        let t0 = Instant::now();
        let r = call_any(&targets, msg(), &CallOptions::new().hedge(2))
            .await
            .unwrap();
        assert_eq!(r.content().as_ref(), b"2");
        assert_eq!(Instant::now() - t0, ms(10));
        assert_eq!(asked.lock().unwrap().len(), 3);
        // hedge(1): the third target is never asked; the last failure is returned.
        let (targets, asked) = fakes(&[None, None, Some(10)], Some(50));
        let e = call_any(&targets, msg(), &CallOptions::new().hedge(1))
            .await
            .unwrap_err();
        assert!(matches!(e, RequestError::Closed), "{e:?}");
        assert_eq!(asked.lock().unwrap().len(), 2);
        // Without a soft timeout, only a failure moves on.
        let (targets, asked) = fakes(&[Some(300), Some(10)], None);
        let r = call_any(&targets, msg(), &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(r.content().as_ref(), b"0");
        assert_eq!(asked.lock().unwrap().len(), 1);
        let none: [Fake; 0] = [];
        assert!(matches!(
            call_any(&none, msg(), &CallOptions::new()).await,
            Err(RequestError::NoTarget)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_bounds_the_hedges_and_a_refused_hedge_waits_for_the_first_target() {
        let budget = super::super::HedgeBudget::new(0.1);
        let opts = CallOptions::new().hedge_budget(budget.clone());
        let mut by_second = 0;
        for _ in 0..100 {
            // The first target always passes its soft timeout (50 ms) and answers at 300 ms.
            let (targets, asked) = fakes(&[Some(300), Some(10)], Some(50));
            let t0 = Instant::now();
            let r = call_any(&targets, msg(), &opts).await.unwrap();
            if r.content().as_ref() == b"1" {
                by_second += 1;
                assert_eq!(Instant::now() - t0, ms(60));
            } else {
                // Not hedged: the first target's own answer, in its own time.
                assert_eq!(Instant::now() - t0, ms(300));
                assert_eq!(asked.lock().unwrap().len(), 1);
            }
        }
        // Each call earns a tenth of a hedge: the 10th, 20th, … call may hedge.
        assert_eq!(by_second, 10);
        assert_eq!((budget.hedged(), budget.refused()), (10, 90));
        // A failed first target is no hedge: the next is asked even with the budget spent.
        let (targets, asked) = fakes(&[None, Some(10)], Some(50));
        let r = call_any(&targets, msg(), &opts).await.unwrap();
        assert_eq!(r.content().as_ref(), b"1");
        assert_eq!(asked.lock().unwrap().len(), 2);
    }
}
