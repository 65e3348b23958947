//! Where a waiting request's answer is put for its caller: a slot, with the caller's waker,
//! that the request table hands out and takes back for the next request (issue 20: a `oneshot`
//! channel per call cost an allocation, and more instructions to send and receive than the
//! answer's own handling).
//!
//! [`AnswerTx`] is in the table's entry; [`AnswerRx`] is the caller's future. The caller gives
//! its receiver back to the table when it is done ([`RequestTable::recycle`]), which keeps the
//! slot only when no sender holds it any more, so a slot is never shared by two requests.
//!
//! [`RequestTable::recycle`]: super::table::RequestTable::recycle

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::entry::Answer;

/// The caller's side of a slot is done with no answer: its sender was dropped unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unanswered;

#[derive(Debug, Default)]
struct State {
    answer: Option<Answer>,
    waker: Option<Waker>,
    /// The sender answered or was dropped.
    done: bool,
}

/// One answer's slot.
#[derive(Debug, Default)]
pub(crate) struct Slot(Mutex<State>);

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new slot's two ends, in `slot` (fresh, or given back by [`AnswerRx::reuse`]).
pub(crate) fn pair(slot: Arc<Slot>) -> (AnswerTx, AnswerRx) {
    (AnswerTx(Some(slot.clone())), AnswerRx(slot))
}

/// Where the table puts a request's answer.
#[derive(Debug)]
pub(crate) struct AnswerTx(Option<Arc<Slot>>);

impl AnswerTx {
    /// Hand the caller its answer (a caller that has gone away is no error).
    pub(crate) fn send(mut self, answer: Answer) {
        if let Some(slot) = self.0.take() {
            finish(&slot, Some(answer));
        }
    }
}

impl Drop for AnswerTx {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            finish(&slot, None);
        }
    }
}

fn finish(slot: &Slot, answer: Option<Answer>) {
    let waker = {
        let mut s = slot.lock();
        s.answer = answer;
        s.done = true;
        s.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// A caller's wait for its request's answer.
#[derive(Debug)]
pub(crate) struct AnswerRx(Arc<Slot>);

impl AnswerRx {
    /// The answer if it is there.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Result<Answer, Option<Unanswered>> {
        let mut s = self.0.lock();
        match s.answer.take() {
            Some(a) => Ok(a),
            None if s.done => Err(Some(Unanswered)),
            None => Err(None),
        }
    }

    /// The slot, emptied, when no sender holds it any more (so it can serve another request).
    pub(crate) fn reuse(self) -> Option<Arc<Slot>> {
        let mut slot = self.0;
        let s = Arc::get_mut(&mut slot)?;
        let state = s.0.get_mut().unwrap_or_else(|e| e.into_inner());
        *state = State::default();
        Some(slot)
    }
}

impl Future for AnswerRx {
    type Output = Result<Answer, Unanswered>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.0.lock();
        if let Some(a) = s.answer.take() {
            return Poll::Ready(Ok(a));
        }
        if s.done {
            return Poll::Ready(Err(Unanswered));
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RequestError;

    #[tokio::test]
    async fn an_answer_or_a_dropped_sender_ends_the_wait() {
        let (tx, rx) = pair(Arc::default());
        let waiting = tokio::spawn(rx);
        tokio::task::yield_now().await;
        tx.send(Err(RequestError::Closed));
        assert!(matches!(
            waiting.await.unwrap(),
            Ok(Err(RequestError::Closed))
        ));
        let (tx, mut rx) = pair(Arc::default());
        assert_eq!(rx.try_recv().err(), Some(None));
        drop(tx);
        assert_eq!(rx.try_recv().err(), Some(Some(Unanswered)));
    }

    #[test]
    fn a_slot_is_reused_only_once_its_sender_is_gone_and_comes_back_empty() {
        let (tx, rx) = pair(Arc::default());
        assert!(rx.reuse().is_none(), "its sender still holds it");
        let (tx2, mut rx) = pair(Arc::default());
        tx2.send(Err(RequestError::Closed));
        assert!(rx.try_recv().is_ok());
        let slot = rx.reuse().expect("no sender left");
        let (_tx, mut rx) = pair(slot);
        assert_eq!(rx.try_recv().err(), Some(None), "nothing left from before");
        drop(tx);
    }
}
