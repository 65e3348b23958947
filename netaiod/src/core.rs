//! [`Core`]: the daemon's decisions, as an I/O-free state machine.
//!
//! It takes events with `now` — an API connection opened or closed, a message from a module,
//! data received from a peer, a deadline reached — and queues [`Action`]s for the caller to
//! carry out: notifications to send, held items to release (forward) or discard, data to
//! publish, topics to follow or leave, connections to close.
//!
//! The validation rule: data from a peer is notified to every local connection subscribed to its
//! type; it is released for forwarding only once **every** one of them answered valid. One
//! invalid answer discards it at once; a connection that closes without answering, or a
//! validation that does not arrive within `validation_timeout`, counts as invalid. Data a local
//! module announces is published at once and notified to the other local subscribers (their
//! answers are accepted and change nothing).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, RngExt};

use crate::codec::{ApiError, ApiMessage};

/// Whether an item that travelled `hops + 1` hops (`hops`: the protocol's count before the
/// neighbour it came from) may go further under the announcer's `ttl` (0: unlimited; the
/// protocol's hop budget still bounds it).
pub fn forwards(ttl: u8, hops: u8) -> bool {
    ttl == 0 || u16::from(hops) + 1 < u16::from(ttl)
}

/// An API connection's number, given by the caller.
pub type ConnId = u64;

/// The core's bounds.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    validation_timeout: Duration,
    max_pending: usize,
    max_pending_bytes: usize,
    max_types: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            validation_timeout: Duration::from_secs(10),
            max_pending: 1024,
            max_pending_bytes: 16 << 20,
            max_types: 256,
        }
    }
}

impl CoreConfig {
    /// Time a notified module has to answer (default 10 s); later counts as invalid.
    pub fn validation_timeout(mut self, d: Duration) -> Self {
        self.validation_timeout = d;
        self
    }
    /// Items waiting for validations at once (default 1,024); beyond it new peer data is
    /// discarded.
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n.clamp(1, 60_000);
        self
    }
    /// Bytes of data waiting for validations (default 16 MiB).
    pub fn max_pending_bytes(mut self, n: usize) -> Self {
        self.max_pending_bytes = n;
        self
    }
    /// Data types subscribed to at once, over all connections (default 256).
    pub fn max_types(mut self, n: usize) -> Self {
        self.max_types = n;
        self
    }
    /// The validation timeout.
    pub fn get_validation_timeout(&self) -> Duration {
        self.validation_timeout
    }
}

/// What the caller does for the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<I> {
    /// Send a GOSSIP NOTIFICATION on `conn`.
    Notify {
        /// The connection.
        conn: ConnId,
        /// The notification (always [`ApiMessage::Notification`]).
        message: ApiMessage,
    },
    /// The held peer item: forward it (`valid` and `forward`), keep it here (`valid`, its hop
    /// budget spent), or discard it, counting it against its peer.
    Release {
        /// The item.
        item: I,
        /// Whether every notified module answered valid.
        valid: bool,
        /// Whether its hop budget lets it go further ([`forwards`]).
        forward: bool,
    },
    /// Spread data a local module announced.
    Publish {
        /// The data type.
        data_type: u16,
        /// Hops wanted (0: unlimited).
        ttl: u8,
        /// The data.
        data: Bytes,
    },
    /// Start following `data_type` (its first subscriber).
    Follow(u16),
    /// Stop following `data_type` (its last subscriber left).
    Unfollow(u16),
    /// Close the connection (it broke the API's rules).
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, for the log.
        error: ApiError,
    },
}

/// An item waiting for validations.
#[derive(Debug)]
struct Pending<I> {
    /// The peer item (None: announced locally, nothing to release).
    item: Option<I>,
    /// Whether it may go further once valid.
    forward: bool,
    /// Connections that have not answered, with the message id each was given.
    waiting: HashSet<(ConnId, u16)>,
    bytes: usize,
    /// Released or discarded already (some answers may still come).
    decided: bool,
}

/// One API connection's state.
#[derive(Debug, Default)]
struct Conn {
    types: HashSet<u16>,
    /// Types this connection gets notified of without being asked to validate.
    unvalidated: HashSet<u16>,
    /// Message ids of notifications waiting for this connection's validation → pending key.
    open: HashMap<u16, u64>,
}

/// The daemon's decision logic (see the module doc).
#[derive(Debug)]
pub struct Core<I, R> {
    cfg: CoreConfig,
    rng: R,
    conns: HashMap<ConnId, Conn>,
    /// Subscribers per type.
    types: BTreeMap<u16, HashSet<ConnId>>,
    pending: HashMap<u64, Pending<I>>,
    /// Pending keys by deadline (deadlines only grow, so this is in order).
    deadlines: VecDeque<(Instant, u64)>,
    pending_bytes: usize,
    next_key: u64,
    actions: VecDeque<Action<I>>,
    stats: CoreStats,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Peer items released valid.
    pub released: u64,
    /// Peer items discarded (an invalid answer, a timeout, a subscriber gone unanswered).
    pub discarded: u64,
    /// Peer items discarded because the pending table was full.
    pub overflow: u64,
    /// Items whose validations did not all arrive within the timeout.
    pub timeouts: u64,
}

impl<I: Copy + Eq + Hash, R: Rng> Core<I, R> {
    /// A core with these bounds, drawing message ids from `rng`.
    pub fn new(cfg: CoreConfig, rng: R) -> Self {
        Self {
            cfg,
            rng,
            conns: HashMap::new(),
            types: BTreeMap::new(),
            pending: HashMap::new(),
            deadlines: VecDeque::new(),
            pending_bytes: 0,
            next_key: 0,
            actions: VecDeque::new(),
            stats: CoreStats::default(),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action<I>> {
        self.actions.pop_front()
    }

    /// When [`tick`](Self::tick) is next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|(at, _)| *at)
    }

    /// Counters.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// Items waiting for validations, and their bytes.
    pub fn pending(&self) -> (usize, usize) {
        (self.pending.len(), self.pending_bytes)
    }

    /// The connections subscribed to `data_type`.
    pub fn subscribers(&self, data_type: u16) -> usize {
        self.types.get(&data_type).map_or(0, HashSet::len)
    }

    /// A new API connection.
    pub fn connected(&mut self, conn: ConnId) {
        self.conns.insert(conn, Conn::default());
    }

    /// An API connection closed (by the module, or by [`Action::Close`]): its subscriptions end;
    /// what it was asked to validate counts as invalid.
    pub fn closed(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        for t in state.types {
            if let Some(subs) = self.types.get_mut(&t) {
                subs.remove(&conn);
                if subs.is_empty() {
                    self.types.remove(&t);
                    self.actions.push_back(Action::Unfollow(t));
                }
            }
        }
        for (id, key) in state.open {
            self.answer(key, (conn, id), false);
        }
    }

    /// A message from a module on `conn`.
    pub fn message(&mut self, now: Instant, conn: ConnId, message: ApiMessage) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match message {
            ApiMessage::Announce {
                ttl,
                data_type,
                data,
            } => {
                self.actions.push_back(Action::Publish {
                    data_type,
                    ttl,
                    data: data.clone(),
                });
                self.notify(now, None, data_type, data, Some(conn), false);
            }
            ApiMessage::Notify { data_type } => self.subscribe(conn, data_type, true),
            ApiMessage::Validation { message_id, valid } => {
                let key = self
                    .conns
                    .get_mut(&conn)
                    .and_then(|c| c.open.remove(&message_id));
                match key {
                    Some(key) => self.answer(key, (conn, message_id), valid),
                    None => self.close(conn, ApiError::UnknownMessageId(message_id)),
                }
            }
            ApiMessage::Notification { .. } => {
                self.close(conn, ApiError::WrongDirection(message.kind()));
            }
        }
    }

    /// Subscribes `conn` to `data_type` without asking it to validate (the native API's option):
    /// it is notified (message id 0) and its answer is neither awaited nor needed.
    pub fn subscribe_unvalidated(&mut self, conn: ConnId, data_type: u16) {
        self.subscribe(conn, data_type, false);
    }

    fn subscribe(&mut self, conn: ConnId, data_type: u16, validates: bool) {
        let known = self.types.contains_key(&data_type);
        if !known && self.types.len() >= self.cfg.max_types {
            tracing::warn!(conn, data_type, "too many data types: subscription ignored");
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.types.insert(data_type);
        if validates {
            c.unvalidated.remove(&data_type);
        } else {
            c.unvalidated.insert(data_type);
        }
        self.types.entry(data_type).or_default().insert(conn);
        if !known {
            self.actions.push_back(Action::Follow(data_type));
        }
    }

    /// Data of `data_type` from a peer, held until validated as `item`; `forward`: whether its
    /// hop budget lets it go further once valid ([`forwards`]).
    pub fn from_peer(&mut self, now: Instant, item: I, data_type: u16, data: Bytes, forward: bool) {
        let subscribers = self.subscribers(data_type);
        if subscribers == 0 {
            // No local module registered the type (the last one just left): not accepted.
            self.stats.discarded += 1;
            self.actions.push_back(Action::Release {
                item,
                valid: false,
                forward: false,
            });
            return;
        }
        if self.pending.len() >= self.cfg.max_pending
            || self.pending_bytes + data.len() > self.cfg.max_pending_bytes
        {
            tracing::warn!(
                data_type,
                "too many items waiting for validation: discarded"
            );
            self.stats.overflow += 1;
            self.actions.push_back(Action::Release {
                item,
                valid: false,
                forward: false,
            });
            return;
        }
        self.notify(now, Some(item), data_type, data, None, forward);
    }

    /// Deadlines up to `now`: validations not in yet count as invalid.
    pub fn tick(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.deadlines.front() {
            if at > now {
                break;
            }
            self.deadlines.pop_front();
            let Some(p) = self.pending.get(&key) else {
                continue;
            };
            if !p.waiting.is_empty() {
                // Answers after this are for an unknown message id.
                tracing::debug!(late = p.waiting.len(), "validation timed out: invalid");
                self.stats.timeouts += 1;
            }
            self.decide(key, false);
            self.remove(key);
        }
    }

    fn close(&mut self, conn: ConnId, error: ApiError) {
        tracing::warn!(conn, %error, "API connection closed");
        self.actions.push_back(Action::Close { conn, error });
        self.closed(conn);
    }

    /// Notifies the subscribers of `data_type` (but `except`) and waits for their answers.
    fn notify(
        &mut self,
        now: Instant,
        item: Option<I>,
        data_type: u16,
        data: Bytes,
        except: Option<ConnId>,
        forward: bool,
    ) {
        let targets: Vec<ConnId> = self
            .types
            .get(&data_type)
            .map(|s| s.iter().copied().filter(|c| Some(*c) != except).collect())
            .unwrap_or_default();
        let key = self.next_key;
        self.next_key += 1;
        let mut waiting = HashSet::new();
        for conn in targets {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.unvalidated.contains(&data_type) {
                self.actions.push_back(Action::Notify {
                    conn,
                    message: ApiMessage::Notification {
                        message_id: 0,
                        data_type,
                        data: data.clone(),
                    },
                });
                continue;
            }
            // Random, and unique among this connection's open notifications (fewer than
            // `max_pending` < 65,536 of them, so a free id exists).
            let mut id = self.rng.random::<u16>();
            while c.open.contains_key(&id) {
                id = id.wrapping_add(1);
            }
            c.open.insert(id, key);
            waiting.insert((conn, id));
            self.actions.push_back(Action::Notify {
                conn,
                message: ApiMessage::Notification {
                    message_id: id,
                    data_type,
                    data: data.clone(),
                },
            });
        }
        if waiting.is_empty() {
            if let Some(item) = item {
                self.stats.released += 1;
                self.actions.push_back(Action::Release {
                    item,
                    valid: true,
                    forward,
                });
            }
            return;
        }
        let deadline = now + self.cfg.validation_timeout;
        let bytes = data.len();
        self.pending_bytes += bytes;
        self.pending.insert(
            key,
            Pending {
                item,
                forward,
                waiting,
                bytes,
                decided: false,
            },
        );
        self.deadlines.push_back((deadline, key));
    }

    /// `who` answered for the pending `key`.
    fn answer(&mut self, key: u64, who: (ConnId, u16), valid: bool) {
        let Some(p) = self.pending.get_mut(&key) else {
            return;
        };
        p.waiting.remove(&who);
        let done = p.waiting.is_empty();
        if !p.decided && (!valid || done) {
            self.decide(key, valid);
        }
        if done {
            self.remove(key);
        }
    }

    /// The verdict on a pending peer item, once. The item stays in the table until every
    /// notified connection answered (or the deadline), so late answers are not "unknown".
    fn decide(&mut self, key: u64, valid: bool) {
        let Some(p) = self.pending.get_mut(&key) else {
            return;
        };
        if std::mem::replace(&mut p.decided, true) {
            return;
        }
        if let Some(item) = p.item {
            if valid {
                self.stats.released += 1;
            } else {
                self.stats.discarded += 1;
            }
            self.actions.push_back(Action::Release {
                item,
                valid,
                forward: p.forward,
            });
        }
    }

    fn remove(&mut self, key: u64) {
        if let Some(p) = self.pending.remove(&key) {
            self.pending_bytes -= p.bytes;
            for (conn, id) in &p.waiting {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.open.remove(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
