//! [`RelayCore`]: what every relay service shares whatever carries it (a TCP server, where a
//! reservation is bound to a connection; a UDP node, where it is bound to a verified address):
//! the state behind its lock, the reservation check, and the answers to `RESERVE` and `FORWARD`.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::state::Claim;
use super::{RelayAddress, RelayConfig, RelayRefusal, RelayState, ReservationCheck};
use crate::{Message, MessageType};

/// A relay's state and its reservation check, for senders keyed by `C`.
pub(crate) struct RelayCore<C> {
    state: Mutex<RelayState<C>>,
    /// Who may reserve which id; `None`: the first holder that asks.
    check: Mutex<Option<Arc<dyn ReservationCheck>>>,
}

impl<C: Copy + Eq + Hash + std::fmt::Display> RelayCore<C> {
    pub(crate) fn new(config: RelayConfig) -> Self {
        Self {
            state: Mutex::new(RelayState::new(config)),
            check: Mutex::new(None),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, RelayState<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_check(&self, check: Arc<dyn ReservationCheck>) {
        *self.check.lock().unwrap_or_else(|e| e.into_inner()) = Some(check);
    }

    /// The answer to `msg`, a `RESERVE` from `holder` at `ip`: OK with the limits, or the
    /// refusal. `until`: the reservation lasts at most until then (see [`Claim::until`]).
    /// `gone` says whether the holder of a taken id has ended (its end not yet seen by the
    /// relay): then the id is free. A reservation check that proves ownership and passes moves
    /// the id from another holder (see [`Claim::proven`]).
    pub(crate) fn reserve(
        &self,
        holder: C,
        ip: IpAddr,
        msg: &Message,
        until: Option<Instant>,
        gone: impl FnOnce(C) -> bool,
    ) -> Message {
        let check = self.check.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let result = match check {
            Some(c) if !c.allows(msg.uri(), msg) => {
                Err(self.state().refuse(RelayRefusal::NotYours))
            }
            check => {
                let claim = Claim {
                    until,
                    proven: check.is_some_and(|c| c.proves_ownership()),
                };
                let now = Instant::now();
                let mut result = self
                    .state()
                    .reserve(holder, ip, msg.uri().clone(), claim, now);
                let taken_by = match result {
                    Err(RelayRefusal::Taken) => self.state().holder(msg.uri()),
                    _ => None,
                };
                if let Some(other) = taken_by
                    && gone(other)
                {
                    result = self
                        .state()
                        .reserve(holder, ip, msg.uri().clone(), claim, now);
                }
                result
            }
        };
        match result {
            Ok(limits) => Message::new(MessageType::OK, msg.uri().clone(), limits.encode()),
            Err(r) => {
                tracing::debug!(refusal = %r, %holder, "reservation refused");
                r.to_message()
            }
        }
    }
}

/// What a `FORWARD` asks: whether a refusal may answer it (the envelope carries a request id,
/// and its inner frame is not an error: no error in answer to an error), and where it goes
/// (`None`: malformed).
pub(crate) fn envelope_of(msg: &Message) -> (bool, Option<RelayAddress>) {
    let inner_is_error = msg
        .content()
        .first()
        .is_some_and(|t| MessageType::from_u8(*t).is_error());
    let answerable = msg.request_id().is_some() && !inner_is_error;
    (answerable, RelayAddress::decode(msg.uri()))
}
