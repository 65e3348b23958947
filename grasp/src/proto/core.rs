//! [`Core`]: a GRASP node's protocol state, I/O-free. It takes events (a multicast received, a
//! discovery response received, a request received, an API call) with the time `now`, and
//! returns what to send ([`Output`]) and when to call it again ([`Core::next_timeout`]).
//!
//! Multicast handling (discovery, relaying, floods) is in `core_multicast.rs`; this file holds
//! the state, the API-side operations and the timers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::GraspError;
use super::config::{CoreConfig, DISCOVERY_TIMEOUT_UNIT, Family, is_link_local};
use super::discovery_cache::{AsaLocator, DiscoveryCache};
use super::flood_cache::{FloodCache, TaggedObjective};
use super::registry::{AsaId, RegisterOptions, Registry};
use super::relay::{FLOOD_MEMORY, RateLimit, RelayCache};
use super::session_ids::{Origin, SessionIds};
use crate::wire::{DecodeError, FloodItem, Locator, Message, MessageType, Objective, Value};

/// Something for the transport to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Multicast `bytes` to the group of `family` on interface `ifindex`, from that interface's
    /// discovery socket (whose port number is also its TCP port for responses).
    Multicast {
        /// The family.
        family: Family,
        /// The interface.
        ifindex: u32,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Connect over TCP to `to`, write `bytes` (one discovery response), close.
    Respond {
        /// The discovery's source address and port (with the interface as zone).
        to: SocketAddr,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A local discovery ended: its results.
    DiscoveryDone {
        /// The discovery, as [`Discover::Started`] named it.
        id: u64,
        /// The unexpired locators known for the objective.
        locators: Vec<AsaLocator>,
    },
}

/// How a discovery call goes on.
#[derive(Debug, Clone, PartialEq)]
pub enum Discover {
    /// Answered from the cache at once.
    Cached(Vec<AsaLocator>),
    /// Sent: wait for [`Output::DiscoveryDone`] with this `id` (at `deadline`).
    Started {
        /// Its id.
        id: u64,
        /// When it ends.
        deadline: Instant,
        /// The multicasts to send.
        out: Vec<Output>,
    },
}

/// What to do with a request received on an objective's TCP port.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestDecision {
    /// A negotiation request for a listening objective: hand the connection to its listener
    /// queue. The session is active from now on ([`Core::end_session`] when it ends).
    Negotiate {
        /// The session id.
        session_id: u32,
        /// The requested objective.
        objective: Objective,
    },
    /// Write this answer (an `M_SYNCH`), then close.
    Reply(Vec<u8>),
    /// Nobody listens for that objective (or it is not a request): close at once, so that the
    /// peer knows (RFC 8990 2.8.6).
    Close,
    /// The session id is active already: discard the request silently (the peer times out).
    Discard,
}

/// Why a discovery is pending.
#[derive(Debug, Clone)]
pub(crate) enum PendingOrigin {
    /// This node's ASA asked; the session id is ours.
    Local { id: u64 },
    /// Relayed for a neighbour: answers go back to `upstream`.
    Relay { upstream: SocketAddr },
}

#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) name: String,
    pub(crate) deadline: Instant,
    pub(crate) origin: PendingOrigin,
}

/// A GRASP node's state.
pub struct Core {
    pub(crate) config: CoreConfig,
    pub(crate) registry: Registry,
    pub(crate) sessions: SessionIds,
    pub(crate) discovery: DiscoveryCache,
    pub(crate) floods: FloodCache,
    pub(crate) relayed: RelayCache,
    pub(crate) rate: RateLimit,
    pub(crate) pending: HashMap<(u32, IpAddr), Pending>,
    next_discovery: u64,
    rng: Box<dyn FnMut() -> u32 + Send>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .field("sessions", &self.sessions.active_count())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core for `config`, drawing session ids and handles from `rng` (random numbers; a test
    /// passes a sequence).
    pub fn new(config: CoreConfig, rng: Box<dyn FnMut() -> u32 + Send>) -> Core {
        Core {
            registry: Registry::new(config.registry.0, config.registry.1),
            sessions: SessionIds::new(config.max_sessions, config.max_sessions * 4),
            discovery: DiscoveryCache::new(
                config.discovery_cache.0,
                config.discovery_cache.1,
                config.discovery_cache.2,
            ),
            floods: FloodCache::new(config.flood_cache.0, config.flood_cache.1),
            relayed: RelayCache::new(config.relay_memory),
            rate: RateLimit::new(config.relay_rate.0, config.relay_rate.1),
            pending: HashMap::new(),
            next_discovery: 1,
            rng,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// The families in use.
    pub fn families(&self) -> Vec<Family> {
        let mut f = Vec::new();
        if self.config.ipv6 {
            f.push(Family::V6);
        }
        if self.config.ipv4 {
            f.push(Family::V4);
        }
        f
    }

    /// The interfaces that can send on `family`.
    pub(crate) fn interfaces_of(&self, family: Family) -> impl Iterator<Item = u32> + '_ {
        self.config
            .interfaces
            .iter()
            .filter(move |i| match family {
                Family::V6 => i.link_local.is_some(),
                Family::V4 => i.ipv4.is_some(),
            })
            .map(|i| i.index)
    }

    /// This node's initiator field for `family`: its address, else the first interface's
    /// link-local (IPv6) or IPv4 address.
    pub fn initiator(&self, family: Family) -> IpAddr {
        match family {
            Family::V6 => self
                .config
                .address
                .or_else(|| self.config.interfaces.iter().find_map(|i| i.link_local))
                .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V6),
            Family::V4 => self
                .config
                .interfaces
                .iter()
                .find_map(|i| i.ipv4)
                .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), IpAddr::V4),
        }
    }

    /// True when `ip` is one of this node's addresses.
    pub(crate) fn is_mine(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V6(v6) => {
                self.config.address == Some(v6)
                    || self
                        .config
                        .interfaces
                        .iter()
                        .any(|i| i.link_local == Some(v6))
            }
            IpAddr::V4(v4) => self.config.interfaces.iter().any(|i| i.ipv4 == Some(v4)),
        }
    }

    fn random_ids(&mut self) -> Vec<u32> {
        (0..16).map(|_| (self.rng)()).collect()
    }

    /// `[M_NOOP]` on every interface, once at start-up (as the prototype does: it also makes
    /// the discovery sockets' ports known to the system).
    pub fn startup(&self) -> Vec<Output> {
        let Ok(bytes) = Message::Noop.encode() else {
            return Vec::new();
        };
        self.families()
            .into_iter()
            .flat_map(|family| {
                self.interfaces_of(family)
                    .map(|ifindex| Output::Multicast {
                        family,
                        ifindex,
                        bytes: bytes.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    // ---- registry ---------------------------------------------------------------------------

    /// RFC 8991 `register_asa`.
    pub fn register_asa(&mut self, name: &str) -> Result<AsaId, GraspError> {
        let id = AsaId((self.rng)().max(1));
        self.registry.register_asa(id, name)
    }

    /// RFC 8991 `deregister_asa`: the objectives that went away with it.
    pub fn deregister_asa(&mut self, asa: AsaId, name: &str) -> Result<Vec<String>, GraspError> {
        self.registry.deregister_asa(asa, name)
    }

    /// The checks of `register_obj`: `Ok(true)` when it joins an overlapping registration.
    pub fn check_register(
        &self,
        asa: AsaId,
        obj: &Objective,
        options: &RegisterOptions,
    ) -> Result<bool, GraspError> {
        self.registry.check_register(asa, obj, options)
    }

    /// RFC 8991 `register_obj`, its requests coming to TCP `port` (0: none).
    pub fn register_obj(
        &mut self,
        asa: AsaId,
        obj: &Objective,
        options: RegisterOptions,
        port: u16,
    ) -> Result<(), GraspError> {
        self.registry.register_obj(asa, obj, options, port)
    }

    /// RFC 8991 `deregister_obj`: true when nobody holds it any more.
    pub fn deregister_obj(&mut self, asa: AsaId, name: &str) -> Result<bool, GraspError> {
        self.registry.deregister_obj(asa, name)
    }

    /// RFC 8991 `listen_negotiate` (the registry side): its TCP port.
    pub fn listen_negotiate(&mut self, asa: AsaId, obj: &Objective) -> Result<u16, GraspError> {
        self.registry.listen_negotiate(asa, obj)
    }

    /// RFC 8991 `stop_negotiate`.
    pub fn stop_negotiate(&mut self, asa: AsaId, name: &str) -> Result<(), GraspError> {
        self.registry.stop_negotiate(asa, name)
    }

    /// RFC 8991 `listen_synchronize`.
    pub fn listen_synchronize(&mut self, asa: AsaId, obj: &Objective) -> Result<(), GraspError> {
        self.registry.listen_synchronize(asa, obj)
    }

    /// RFC 8991 `stop_synchronize`.
    pub fn stop_synchronize(&mut self, asa: AsaId, name: &str) -> Result<(), GraspError> {
        self.registry.stop_synchronize(asa, name)
    }

    /// `NoAsa` unless `asa` is registered.
    pub fn check_asa(&self, asa: AsaId) -> Result<(), GraspError> {
        self.registry.check_asa(asa)
    }

    // ---- sessions -----------------------------------------------------------------------------

    /// A fresh session id for a request this node sends.
    pub fn new_session(&mut self) -> Result<u32, GraspError> {
        let ids = self.random_ids();
        self.sessions.allocate(ids)
    }

    /// A session ended.
    pub fn end_session(&mut self, id: u32, origin: Origin) {
        self.sessions.release(id, origin);
    }

    /// Decide what to do with a message received on an objective's TCP port from `peer`.
    pub fn on_request(&mut self, peer: IpAddr, msg: Message) -> RequestDecision {
        match msg {
            Message::ReqNeg {
                session_id,
                objective,
            } => {
                let listening = self
                    .registry
                    .get(&objective.name)
                    .is_some_and(|r| r.negotiating && (objective.is_neg() || objective.is_dry()));
                if !listening {
                    return RequestDecision::Close;
                }
                match self.sessions.accept_remote(session_id, peer) {
                    Ok(()) => RequestDecision::Negotiate {
                        session_id,
                        objective,
                    },
                    Err(e) => {
                        tracing::debug!(session_id, %peer, error = %e, "request discarded");
                        RequestDecision::Discard
                    }
                }
            }
            Message::ReqSyn {
                session_id,
                objective,
            } => {
                if !objective.is_synch() {
                    return RequestDecision::Close;
                }
                let Some((mut reg_obj, value)) = self.registry.synch_value(&objective.name) else {
                    return RequestDecision::Close;
                };
                if self.sessions.is_active(session_id) {
                    tracing::debug!(session_id, %peer, "synch request discarded: session id in use");
                    return RequestDecision::Discard;
                }
                reg_obj.value = value;
                let reply = Message::Synch {
                    session_id,
                    objective: reg_obj,
                };
                match reply.encode_limited(self.config.max_unicast) {
                    Ok(bytes) => RequestDecision::Reply(bytes),
                    Err(e) => {
                        tracing::warn!(error = %e, "synchronization value cannot be sent");
                        RequestDecision::Close
                    }
                }
            }
            // M_INVALID is never answered; anything else is not a request.
            other => {
                tracing::debug!(kind = ?other.kind(), %peer, "not a request: connection closed");
                RequestDecision::Close
            }
        }
    }

    /// The `M_INVALID` to answer a unicast message that did not decode, if any: only for an
    /// unknown message type or a known one with invalid contents, never for an `M_INVALID`
    /// (RFC 8990 2.8.12), and only when the session id could be read. The diagnostic is a short
    /// text, never more than the peer sent.
    pub fn invalid_answer(&self, err: &DecodeError) -> Option<Vec<u8>> {
        let (session_id, text) = match err {
            DecodeError::UnknownType {
                mtype,
                session_id: Some(s),
            } => (*s, format!("unknown message type {mtype}")),
            DecodeError::Invalid {
                mtype,
                session_id: Some(s),
                what,
            } if *mtype != MessageType::Invalid => (*s, format!("invalid {mtype:?}: {what}")),
            _ => return None,
        };
        Message::Invalid {
            session_id,
            content: Some(Value::Text(text)),
        }
        .encode()
        .ok()
    }

    // ---- discovery --------------------------------------------------------------------------

    /// RFC 8991 `discover`: answered from the cache when it holds unexpired locators (after
    /// `flush` or `minimum_ttl` removed what they remove) or `timeout` is zero; else a discovery
    /// is multicast on every interface, ending at `now + max(timeout, 100 ms × loop count)`.
    pub fn discover(
        &mut self,
        now: Instant,
        asa: AsaId,
        obj: &Objective,
        timeout: Duration,
        flush: bool,
        minimum_ttl: Option<Duration>,
    ) -> Result<Discover, GraspError> {
        self.check_asa(asa)?;
        if flush {
            self.discovery.flush(&obj.name);
        }
        self.discovery.prune(now, &obj.name, minimum_ttl);
        let cached = self.discovery.get(now, &obj.name);
        if !cached.is_empty() || timeout.is_zero() {
            return Ok(Discover::Cached(cached));
        }
        if self.pending.len() >= self.config.max_pending {
            return Err(GraspError::Unspec("too many discoveries pending".into()));
        }
        let mut obj = obj.clone();
        if self.config.dull {
            obj.loop_count = 1;
        }
        let session_id = self.new_session()?;
        let id = self.next_discovery;
        self.next_discovery += 1;
        let deadline = now + timeout.max(DISCOVERY_TIMEOUT_UNIT * u32::from(obj.loop_count));
        let mut out = Vec::new();
        for family in self.families() {
            let initiator = self.initiator(family);
            let msg = Message::Discovery {
                session_id,
                initiator,
                objective: obj.clone(),
            };
            let bytes = match msg.encode_limited(self.config.max_multicast) {
                Ok(b) => b,
                Err(e) => {
                    self.end_session(session_id, Origin::Local);
                    return Err(GraspError::Unspec(e.to_string()));
                }
            };
            self.pending.insert(
                (session_id, initiator),
                Pending {
                    name: obj.name.clone(),
                    deadline,
                    origin: PendingOrigin::Local { id },
                },
            );
            for ifindex in self.interfaces_of(family).collect::<Vec<_>>() {
                out.push(Output::Multicast {
                    family,
                    ifindex,
                    bytes: bytes.clone(),
                });
            }
        }
        Ok(Discover::Started { id, deadline, out })
    }

    /// The objective with value of a rapid-mode discovery response, if one is cached.
    pub fn rapid_value(&self, now: Instant, name: &str) -> Option<Objective> {
        self.discovery.received(now, name)
    }

    // ---- floods -----------------------------------------------------------------------------

    /// RFC 8991 `flood`: each objective must be registered by `asa` and synchronizable. With a
    /// link-local initiator (no unique-local or global address) or in DULL mode the loop counts
    /// are 1: such a flood stays on its link (RFC 8990 2.5.6.2).
    pub fn flood(
        &mut self,
        now: Instant,
        asa: AsaId,
        ttl_ms: u32,
        items: Vec<(Objective, Option<Locator>)>,
    ) -> Result<Vec<Output>, GraspError> {
        self.check_asa(asa)?;
        if items.is_empty() {
            return Err(GraspError::Unspec("nothing to flood".into()));
        }
        for (o, _) in &items {
            if !o.is_synch() {
                return Err(GraspError::NotSynch);
            }
            self.registry.owned_mut(asa, &o.name)?;
        }
        let session_id = self.new_session()?;
        let mut out = Vec::new();
        for family in self.families() {
            let initiator = self.initiator(family);
            let local_only = self.config.dull || is_link_local(initiator);
            let items = items
                .iter()
                .map(|(o, l)| {
                    let mut objective = o.clone();
                    if local_only {
                        objective.loop_count = 1;
                    }
                    FloodItem {
                        objective,
                        locator: l.clone(),
                    }
                })
                .collect();
            let msg = Message::Flood {
                session_id,
                initiator,
                ttl: ttl_ms,
                items,
            };
            let bytes = msg
                .encode_limited(self.config.max_multicast)
                .map_err(|e| GraspError::Unspec(e.to_string()))?;
            // Our own flood coming back through a relay is not relayed again.
            self.relayed
                .first_time(now, (session_id, initiator), now + FLOOD_MEMORY);
            for ifindex in self.interfaces_of(family).collect::<Vec<_>>() {
                out.push(Output::Multicast {
                    family,
                    ifindex,
                    bytes: bytes.clone(),
                });
            }
        }
        self.end_session(session_id, Origin::Local);
        Ok(out)
    }

    /// RFC 8991 `get_flood`: the unexpired flooded values of `obj`.
    pub fn get_flood(
        &self,
        now: Instant,
        asa: AsaId,
        obj: &Objective,
    ) -> Result<Vec<TaggedObjective>, GraspError> {
        self.check_asa(asa)?;
        if !obj.is_synch() {
            return Err(GraspError::NotSynch);
        }
        Ok(self.floods.get(now, &obj.name))
    }

    /// RFC 8991 `expire_flood`.
    pub fn expire_flood(&mut self, asa: AsaId, tagged: &TaggedObjective) -> Result<(), GraspError> {
        self.check_asa(asa)?;
        self.floods.expire_entry(tagged);
        Ok(())
    }

    // ---- timers -----------------------------------------------------------------------------

    /// When [`Core::on_timeout`] should run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        let pending = self.pending.values().map(|p| p.deadline).min();
        match (pending, self.floods.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// End the discoveries due by `now` and drop expired cache entries.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Output> {
        self.floods.expire(now);
        let due: Vec<(u32, IpAddr)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        let mut done = HashMap::new();
        for key in due {
            let Some(p) = self.pending.remove(&key) else {
                continue;
            };
            if let PendingOrigin::Local { id } = p.origin {
                // One discovery may have been sent on both families under one session id.
                done.insert(id, (key.0, p.name));
            }
        }
        for (id, (session_id, name)) in done {
            if self
                .pending
                .values()
                .any(|p| matches!(p.origin, PendingOrigin::Local { id: other } if other == id))
            {
                continue;
            }
            self.end_session(session_id, Origin::Local);
            out.push(Output::DiscoveryDone {
                id,
                locators: self.discovery.get(now, &name),
            });
        }
        out
    }
}
