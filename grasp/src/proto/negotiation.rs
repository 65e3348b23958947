//! [`Negotiation`]: one negotiation session's rules (RFC 8990 sections 2.5.5 and 2.8.6 to
//! 2.8.9), without I/O: which message to send for a step, a wait or an end, and what a
//! received message means.
//!
//! Loop counts follow the prototype, which interop needs: the listener's first `M_NEGOTIATE`
//! echoes the request's loop count and each receiver decrements the count it receives; a step
//! is not sent when the count it would carry is below 2 (the peer would receive 0).

use std::time::Duration;

use super::GraspError;
use crate::wire::{Message, Objective, Outcome, Value};

/// Which side of the negotiation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent the request.
    Initiator,
    /// Received it.
    Listener,
}

/// What a received message means.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// The peer proposes this (its loop count decremented).
    Offer(Objective),
    /// The peer accepted: the negotiation is over, the value is the last one this side sent.
    Accepted(Objective),
    /// The peer asks to wait this long more (the timer restarts).
    Wait(Duration),
    /// Not for this session: ignore it and keep waiting.
    Ignored,
}

/// One negotiation session.
#[derive(Debug, Clone)]
pub struct Negotiation {
    session_id: u32,
    role: Role,
    name: String,
    loop_count: u8,
    last_sent: Option<Objective>,
    open: bool,
}

impl Negotiation {
    /// The initiator's side: the session and its `M_REQ_NEG`.
    pub fn request(session_id: u32, objective: &Objective) -> (Negotiation, Message) {
        let n = Negotiation {
            session_id,
            role: Role::Initiator,
            name: objective.name.clone(),
            loop_count: objective.loop_count,
            last_sent: Some(objective.clone()),
            open: true,
        };
        let msg = Message::ReqNeg {
            session_id,
            objective: objective.clone(),
        };
        (n, msg)
    }

    /// The listener's side of a request received.
    pub fn accept(session_id: u32, requested: &Objective) -> Negotiation {
        Negotiation {
            session_id,
            role: Role::Listener,
            name: requested.name.clone(),
            loop_count: requested.loop_count,
            last_sent: None,
            open: true,
        }
    }

    /// Its session id.
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// Its side.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The loop count the next step would carry.
    pub fn loop_count(&self) -> u8 {
        self.loop_count
    }

    /// True until it ended (either side), failed or was declined.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Close it (a transport failure, a timeout).
    pub fn close(&mut self) {
        self.open = false;
    }

    fn check_open(&self) -> Result<(), GraspError> {
        if self.open {
            Ok(())
        } else {
            Err(GraspError::NoSession)
        }
    }

    /// The `M_NEGOTIATE` of a step proposing `objective`'s value, with the session's loop
    /// count. `LoopExhausted` (nothing to send, the session stays open so that it can be
    /// ended) when that count is below 2.
    pub fn step(&mut self, objective: &Objective) -> Result<Message, GraspError> {
        self.check_open()?;
        if objective.name != self.name {
            return Err(GraspError::InvalidNeg);
        }
        if self.loop_count < 2 {
            return Err(GraspError::LoopExhausted);
        }
        let mut o = objective.clone();
        o.loop_count = self.loop_count;
        self.last_sent = Some(o.clone());
        Ok(Message::Negotiate {
            session_id: self.session_id,
            objective: o,
        })
    }

    /// The `M_WAIT` asking the peer to wait `ms` milliseconds more.
    pub fn wait(&self, ms: u32) -> Result<Message, GraspError> {
        self.check_open()?;
        Ok(Message::Wait {
            session_id: self.session_id,
            waiting_ms: ms,
        })
    }

    /// The `M_END` that ends it (accepting, or declining with an optional reason).
    pub fn end(&mut self, outcome: Outcome) -> Result<Message, GraspError> {
        self.check_open()?;
        self.open = false;
        Ok(Message::End {
            session_id: self.session_id,
            outcome,
        })
    }

    /// The `M_INVALID` that ends it abruptly.
    pub fn invalid(&mut self, info: Option<Value>) -> Result<Message, GraspError> {
        self.check_open()?;
        self.open = false;
        Ok(Message::Invalid {
            session_id: self.session_id,
            content: info,
        })
    }

    /// What `msg`, received on the session's connection, means. An error ends the session.
    pub fn on_message(&mut self, msg: Message) -> Result<Received, GraspError> {
        self.check_open()?;
        if msg.session_id() != Some(self.session_id) {
            tracing::debug!(got = ?msg.session_id(), "message for another session ignored");
            return Ok(Received::Ignored);
        }
        match msg {
            Message::Negotiate { objective, .. } => {
                if objective.name != self.name || !(objective.is_neg() || objective.is_dry()) {
                    self.open = false;
                    return Err(GraspError::InvalidNeg);
                }
                let mut o = objective;
                o.loop_count = o.loop_count.saturating_sub(1);
                self.loop_count = o.loop_count;
                Ok(Received::Offer(o))
            }
            Message::Wait { waiting_ms, .. } => {
                Ok(Received::Wait(Duration::from_millis(waiting_ms.into())))
            }
            Message::End { outcome, .. } => {
                self.open = false;
                match outcome {
                    Outcome::Accept => self
                        .last_sent
                        .clone()
                        .map(Received::Accepted)
                        .ok_or(GraspError::InvalidEnd),
                    Outcome::Decline(reason) => Err(GraspError::Declined { reason }),
                }
            }
            Message::Invalid { content, .. } => {
                tracing::debug!(?content, "M_INVALID received: negotiation ends");
                self.open = false;
                Err(GraspError::NoValidStep)
            }
            other => {
                tracing::debug!(kind = ?other.kind(), "not a negotiation message");
                self.open = false;
                Err(GraspError::NoValidStep)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex3(lc: u8, amount: i64) -> Objective {
        Objective::new("EX3")
            .neg(true)
            .loop_count(lc)
            .value(vec![Value::from("NZD"), Value::from(amount)])
    }

    fn loop_count_of(m: &Message) -> u8 {
        match m {
            Message::Negotiate { objective, .. } | Message::ReqNeg { objective, .. } => {
                objective.loop_count
            }
            _ => panic!("{m:?}"),
        }
    }

    #[test]
    fn the_listener_echoes_the_request_loop_count_and_each_receiver_decrements() {
        let (mut init, req) = Negotiation::request(9, &ex3(8, 150));
        assert_eq!(loop_count_of(&req), 8);
        let Message::ReqNeg { objective, .. } = req else {
            panic!()
        };
        let mut listener = Negotiation::accept(9, &objective);
        let offer = listener.step(&ex3(0, 100)).unwrap();
        // Echoed, whatever the objective passed holds.
        assert_eq!(loop_count_of(&offer), 8);
        let Received::Offer(got) = init.on_message(offer).unwrap() else {
            panic!()
        };
        assert_eq!(got.loop_count, 7);
        let ask = init.step(&ex3(99, 120)).unwrap();
        assert_eq!(loop_count_of(&ask), 7);
        let Received::Offer(got) = listener.on_message(ask).unwrap() else {
            panic!()
        };
        assert_eq!(got.loop_count, 6);
        assert_eq!(listener.loop_count(), 6);
    }

    #[test]
    fn a_step_whose_loop_count_would_reach_zero_is_not_sent() {
        let mut l = Negotiation::accept(1, &ex3(2, 150));
        let m = l.step(&ex3(2, 100)).unwrap();
        let (mut i, _) = Negotiation::request(1, &ex3(2, 150));
        // The initiator receives 2 and holds 1: it may not send another step.
        let Received::Offer(o) = i.on_message(m).unwrap() else {
            panic!()
        };
        assert_eq!(o.loop_count, 1);
        assert!(matches!(i.step(&o), Err(GraspError::LoopExhausted)));
        // Still open: it can end the negotiation.
        assert!(i.is_open());
        assert!(matches!(
            i.end(Outcome::Decline(Some("loop".into()))),
            Ok(Message::End { .. })
        ));
        // A request with loop count 0 or 1 cannot be answered by a step either.
        let mut zero = Negotiation::accept(2, &ex3(0, 1));
        assert!(matches!(
            zero.step(&ex3(0, 1)),
            Err(GraspError::LoopExhausted)
        ));
        // A received loop count of 0 does not wrap.
        let mut w = Negotiation::request(3, &ex3(5, 1)).0;
        let Received::Offer(o) = w
            .on_message(Message::Negotiate {
                session_id: 3,
                objective: ex3(0, 1),
            })
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(o.loop_count, 0);
    }

    #[test]
    fn end_wait_decline_and_invalid() {
        let (mut i, _) = Negotiation::request(4, &ex3(6, 150));
        assert_eq!(
            i.on_message(Message::Wait {
                session_id: 4,
                waiting_ms: 3000
            })
            .unwrap(),
            Received::Wait(Duration::from_secs(3))
        );
        // Another session's message is ignored.
        assert_eq!(
            i.on_message(Message::Wait {
                session_id: 5,
                waiting_ms: 1
            })
            .unwrap(),
            Received::Ignored
        );
        let r = i.on_message(Message::End {
            session_id: 4,
            outcome: Outcome::Decline(Some("Invalid currency".into())),
        });
        assert!(
            matches!(r, Err(GraspError::Declined { reason: Some(ref s) }) if s == "Invalid currency")
        );
        assert!(!i.is_open());
        assert!(matches!(i.step(&ex3(6, 1)), Err(GraspError::NoSession)));

        let (mut a, _) = Negotiation::request(6, &ex3(6, 150));
        assert_eq!(
            a.on_message(Message::End {
                session_id: 6,
                outcome: Outcome::Accept
            })
            .unwrap(),
            Received::Accepted(ex3(6, 150))
        );

        let (mut v, _) = Negotiation::request(7, &ex3(6, 150));
        let r = v.on_message(Message::Invalid {
            session_id: 7,
            content: None,
        });
        assert!(matches!(r, Err(GraspError::NoValidStep)));

        let (mut n, _) = Negotiation::request(8, &ex3(6, 150));
        let other = Objective::new("EX9").neg(true);
        let r = n.on_message(Message::Negotiate {
            session_id: 8,
            objective: other,
        });
        assert!(matches!(r, Err(GraspError::InvalidNeg)));

        let mut l = Negotiation::accept(9, &ex3(6, 150));
        assert!(matches!(
            l.invalid(Some(Value::from("bye"))),
            Ok(Message::Invalid { .. })
        ));
        assert!(matches!(l.wait(10), Err(GraspError::NoSession)));
    }
}
