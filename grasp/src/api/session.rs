//! [`NegotiationSession`]: one negotiation, as a value (RFC 8991's session handle, with the
//! connection inside it), and what its calls return ([`Negotiated`], [`Step`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::node::Inner;
use crate::net::stream::{MessageStream, ReadError};
use crate::proto::{DEFAULT_TIMEOUT, GraspError, Negotiation, Origin, Received};
use crate::wire::{DecodeError, Message, Objective, Outcome, Value};

/// How `request_negotiate` ended.
#[derive(Debug)]
pub enum Negotiated {
    /// The peer accepted the requested value at once (`M_END` with `O_ACCEPT`).
    Accepted(Objective),
    /// The peer proposes another value: go on with the session.
    Offer(NegotiationSession, Objective),
}

/// How a negotiation step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The peer proposes this value (its loop count decremented).
    Offer(Objective),
    /// The peer accepted the value this side proposed: the session is over.
    Accepted(Objective),
}

/// One negotiation session, the initiator's (from `request_negotiate`) or the listener's (from
/// `listen_negotiate`). Steps alternate between the two sides; either may end it. Dropping it
/// closes the connection.
#[derive(Debug)]
pub struct NegotiationSession {
    state: Negotiation,
    // Boxed: the session travels by value in `Negotiated`, the socket is large.
    stream: Option<Box<MessageStream>>,
    node: Arc<Inner>,
    origin: Origin,
    peer: SocketAddr,
    released: bool,
}

impl NegotiationSession {
    pub(crate) fn new(
        state: Negotiation,
        stream: MessageStream,
        node: Arc<Inner>,
        origin: Origin,
        peer: SocketAddr,
    ) -> NegotiationSession {
        NegotiationSession {
            state,
            stream: Some(Box::new(stream)),
            node,
            origin,
            peer,
            released: false,
        }
    }

    /// Its session id.
    pub fn session_id(&self) -> u32 {
        self.state.session_id()
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The loop count the next step carries.
    pub fn loop_count(&self) -> u8 {
        self.state.loop_count()
    }

    /// True until it ended, failed or was declined.
    pub fn is_open(&self) -> bool {
        self.state.is_open() && self.stream.is_some()
    }

    fn finish(&mut self) {
        self.state.close();
        self.stream = None;
        if !self.released {
            self.released = true;
            self.node
                .core()
                .end_session(self.state.session_id(), self.origin);
        }
    }

    async fn send(&mut self, msg: &Message) -> Result<(), std::io::Error> {
        let bytes = msg
            .encode_limited(self.node.max_message)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))?;
        stream.write(&bytes).await
    }

    /// Wait for the peer's answer (RFC 8991's `timeout`; `M_WAIT` restarts it).
    pub(crate) async fn await_reply(&mut self, timeout: Duration) -> Result<Step, GraspError> {
        let mut deadline = Instant::now() + timeout;
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Err(GraspError::NoSocket);
            };
            let got = stream.read(deadline).await;
            let result = match got {
                Ok(msg) => match self.state.on_message(msg) {
                    Ok(Received::Offer(o)) => return Ok(Step::Offer(o)),
                    Ok(Received::Accepted(o)) => Ok(Step::Accepted(o)),
                    Ok(Received::Wait(d)) => {
                        deadline = Instant::now() + d;
                        continue;
                    }
                    Ok(Received::Ignored) => continue,
                    Err(e) => Err(e),
                },
                Err(ReadError::TimedOut) => Err(GraspError::NoNegReply),
                Err(ReadError::Closed | ReadError::Io(_)) => Err(GraspError::NoPeer),
                Err(ReadError::Decode(e)) => Err(decode_failure(&e)),
            };
            self.finish();
            return result;
        }
    }

    /// RFC 8991 `negotiate_step`: propose `objective`'s value and wait up to `timeout`
    /// (`None`: 60 s) for the answer. The loop count sent is the session's (see
    /// [`loop_count`](Self::loop_count)), whatever `objective` holds; `LoopExhausted` when it
    /// is below 2 (nothing is sent; the session stays open to be ended). A decline is
    /// [`GraspError::Declined`] with the peer's reason.
    pub async fn negotiate_step(
        &mut self,
        objective: &Objective,
        timeout: Option<Duration>,
    ) -> Result<Step, GraspError> {
        if self.stream.is_none() {
            return Err(GraspError::NoSession);
        }
        let msg = self.state.step(objective)?;
        if let Err(e) = self.send(&msg).await {
            self.finish();
            return Err(GraspError::SockErrNegStep(Arc::new(e)));
        }
        self.await_reply(timeout.unwrap_or(DEFAULT_TIMEOUT)).await
    }

    /// RFC 8991 `negotiate_wait`: ask the peer to wait `ms` milliseconds more for this side's
    /// next step.
    pub async fn negotiate_wait(&mut self, ms: u32) -> Result<(), GraspError> {
        if self.stream.is_none() {
            return Err(GraspError::NoSession);
        }
        let msg = self.state.wait(ms)?;
        if let Err(e) = self.send(&msg).await {
            self.finish();
            return Err(GraspError::SockErrWait(Arc::new(e)));
        }
        Ok(())
    }

    /// RFC 8991 `end_negotiate`: accept the peer's last value, or decline (with an optional
    /// reason), and close.
    pub async fn end_negotiate(mut self, outcome: Outcome) -> Result<(), GraspError> {
        if self.stream.is_none() {
            return Err(GraspError::NoSession);
        }
        let msg = self.state.end(outcome)?;
        let sent = self.send(&msg).await;
        self.close().await;
        sent.map_err(|e| GraspError::SockErrEnd(Arc::new(e)))
    }

    /// RFC 8991 `send_invalid`: end the session abruptly with an `M_INVALID` carrying `info`.
    pub async fn send_invalid(mut self, info: Option<Value>) -> Result<(), GraspError> {
        if self.stream.is_none() {
            return Err(GraspError::NoSession);
        }
        let msg = self.state.invalid(info)?;
        let sent = self.send(&msg).await;
        self.close().await;
        sent.map_err(|e| GraspError::SockErrEnd(Arc::new(e)))
    }

    async fn close(&mut self) {
        if let Some(s) = self.stream.take() {
            s.close().await;
        }
        self.finish();
    }
}

impl Drop for NegotiationSession {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The error of an answer that is not a GRASP message: not CBOR at all, or not a negotiation.
pub(crate) fn decode_failure(e: &DecodeError) -> GraspError {
    match e {
        DecodeError::Malformed { .. }
        | DecodeError::Truncated
        | DecodeError::TooDeep { .. }
        | DecodeError::TooLong { .. } => GraspError::CborFail,
        _ => GraspError::NoValidStep,
    }
}
