//! The multicast side of [`Core`]: discovery (answering, answering from the cache with
//! `O_DIVERT`, relaying), discovery responses (caching, forwarding to the relay's upstream) and
//! floods (caching, relaying with the loop count decremented).

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use super::config::{DISCOVERY_TIMEOUT_UNIT, Family, is_link_local};
use super::core::{Core, Output, Pending, PendingOrigin};
use super::discovery_cache::AsaLocator;
use super::flood_cache::TaggedObjective;
use super::relay::FLOOD_MEMORY;
use crate::wire::{
    FloodItem, IPPROTO_TCP, Locator, Message, Objective, ResponseOption, objective_value,
};

/// A response's ttl of zero means "significantly greater than the default timeout"; RFC 8990
/// suggests ten times it.
const ZERO_TTL: Duration = Duration::from_millis(600_000);

impl Core {
    /// A datagram received on the GRASP port (group `ff02::13` or `224.0.0.119`) of interface
    /// `ifindex`, from `src`. Whatever is wrong with it, it is dropped (and logged); nothing is
    /// ever answered to a multicast that is not a discovery this node can answer.
    pub fn on_multicast(
        &mut self,
        now: Instant,
        family: Family,
        ifindex: u32,
        src: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Output> {
        let msg = match Message::decode(bytes, self.config.max_multicast) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(%src, error = %e, "multicast dropped");
                return Vec::new();
            }
        };
        if self.is_mine(src.ip()) {
            return Vec::new();
        }
        if self.config.dull && !is_link_local(src.ip()) {
            tracing::debug!(%src, "DULL: multicast from a non-link-local source dropped");
            return Vec::new();
        }
        match msg {
            Message::Discovery {
                session_id,
                initiator,
                objective,
            } => self.on_discovery(now, family, ifindex, src, session_id, initiator, objective),
            Message::Flood {
                session_id,
                initiator,
                ttl,
                items,
            } => self.on_flood(now, family, ifindex, session_id, initiator, ttl, items),
            Message::Noop => Vec::new(),
            other => {
                tracing::debug!(kind = ?other.kind(), %src, "multicast of a unicast type dropped");
                Vec::new()
            }
        }
    }

    /// The address to answer a discovery from `src` at: its own, with the interface as the
    /// zone of a link-local IPv6 source.
    fn answer_to(src: SocketAddr, ifindex: u32) -> SocketAddr {
        match src {
            SocketAddr::V6(a) if crate::wire::is_link_local_v6(a.ip()) => {
                SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, ifindex))
            }
            other => other,
        }
    }

    /// This node's locators for an objective answered on `ifindex`.
    fn own_locators(&self, family: Family, ifindex: u32, name: &str) -> Vec<Locator> {
        let Some(r) = self.registry.get(name) else {
            return Vec::new();
        };
        if !r.options.locators.is_empty() {
            return r.options.locators.clone();
        }
        let iface = self.config.interfaces.iter().find(|i| i.index == ifindex);
        let port = r.port;
        let addr: Option<IpAddr> = match family {
            Family::V6 => {
                let ll = iface.and_then(|i| i.link_local);
                if r.options.local || self.config.dull || self.config.address.is_none() {
                    ll.map(IpAddr::V6)
                } else {
                    self.config.address.map(IpAddr::V6)
                }
            }
            Family::V4 => iface.and_then(|i| i.ipv4).map(IpAddr::V4),
        };
        addr.map(|a| Locator::tcp(SocketAddr::new(a, port)))
            .into_iter()
            .filter(|l| l.protocol() == Some(IPPROTO_TCP))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn on_discovery(
        &mut self,
        now: Instant,
        family: Family,
        ifindex: u32,
        src: SocketAddr,
        session_id: u32,
        initiator: IpAddr,
        objective: Objective,
    ) -> Vec<Output> {
        if self.config.dull && objective.loop_count != 1 {
            tracing::debug!(%src, "DULL: discovery with a loop count other than 1 dropped");
            return Vec::new();
        }
        // Our own discovery, relayed back to us.
        if self.pending.contains_key(&(session_id, initiator)) {
            return Vec::new();
        }
        let to = Self::answer_to(src, ifindex);
        // We have it: answer with our locators (and the value, in rapid mode).
        if let Some(r) = self
            .registry
            .get(&objective.name)
            .filter(|r| r.discoverable)
        {
            let ttl = r.ttl_ms();
            let rapid = (r.options.rapid && r.synchronizing).then(|| r.objective.clone());
            let locators = self.own_locators(family, ifindex, &objective.name);
            if locators.is_empty() {
                tracing::debug!(name = %objective.name, "no locator to answer discovery with");
                return Vec::new();
            }
            let msg = Message::Response {
                session_id,
                initiator,
                ttl,
                options: locators.into_iter().map(ResponseOption::Locator).collect(),
                objective: rapid,
            };
            return match msg.encode_limited(self.config.max_unicast) {
                Ok(bytes) => vec![Output::Respond { to, bytes }],
                Err(e) => {
                    tracing::warn!(error = %e, "discovery response cannot be sent");
                    Vec::new()
                }
            };
        }
        if self.config.dull {
            return Vec::new();
        }
        // We know where it is (learnt on another interface): divert there. Link-local locators
        // never go in a divert option (RFC 8990 2.9.5.1).
        let known: Vec<AsaLocator> = self
            .discovery
            .get(now, &objective.name)
            .into_iter()
            .filter(|l| l.ifindex != ifindex && !l.locator.is_link_local())
            .collect();
        if !known.is_empty() {
            let ttl = known
                .iter()
                .map(|l| l.expires_at.saturating_duration_since(now))
                .min()
                .map_or(1, |d| {
                    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
                });
            let msg = Message::Response {
                session_id,
                initiator,
                ttl,
                options: vec![ResponseOption::Divert(
                    known.into_iter().map(|l| l.locator).collect(),
                )],
                objective: None,
            };
            return match msg.encode_limited(self.config.max_unicast) {
                Ok(bytes) => vec![Output::Respond { to, bytes }],
                Err(e) => {
                    tracing::debug!(error = %e, "divert response too long");
                    Vec::new()
                }
            };
        }
        if !self.config.relaying() {
            return Vec::new();
        }
        self.relay_discovery(now, family, ifindex, to, session_id, initiator, objective)
    }

    /// Relay a discovery to the other interfaces: same session id and initiator, loop count
    /// decremented (not relayed when it reaches 0), each (session id, initiator) once, at a
    /// bounded rate; answers go back to `upstream`.
    #[allow(clippy::too_many_arguments)]
    fn relay_discovery(
        &mut self,
        now: Instant,
        family: Family,
        ifindex: u32,
        upstream: SocketAddr,
        session_id: u32,
        initiator: IpAddr,
        mut objective: Objective,
    ) -> Vec<Output> {
        let remaining = objective.loop_count.saturating_sub(1);
        if remaining == 0 {
            tracing::debug!(name = %objective.name, "discovery not relayed: loop count exhausted");
            return Vec::new();
        }
        if !self
            .relayed
            .first_time(now, (session_id, initiator), now + FLOOD_MEMORY)
        {
            return Vec::new();
        }
        if self.pending.len() >= self.config.max_pending || !self.rate.allow(now) {
            tracing::debug!(name = %objective.name, "discovery not relayed: rate limit");
            return Vec::new();
        }
        objective.loop_count = remaining;
        let name = objective.name.clone();
        let msg = Message::Discovery {
            session_id,
            initiator,
            objective,
        };
        let Ok(bytes) = msg.encode_limited(self.config.max_multicast) else {
            return Vec::new();
        };
        self.pending.insert(
            (session_id, initiator),
            Pending {
                name,
                deadline: now + DISCOVERY_TIMEOUT_UNIT * u32::from(remaining),
                origin: PendingOrigin::Relay { upstream },
            },
        );
        self.interfaces_of(family)
            .filter(|i| *i != ifindex)
            .map(|i| Output::Multicast {
                family,
                ifindex: i,
                bytes: bytes.clone(),
            })
            .collect()
    }

    /// A message received on a discovery socket's TCP port (of interface `ifindex`) from `src`:
    /// a response to a pending discovery is cached, and forwarded as a divert option when the
    /// discovery was relayed. Anything else is dropped.
    pub fn on_response(
        &mut self,
        now: Instant,
        ifindex: u32,
        src: IpAddr,
        bytes: &[u8],
    ) -> Vec<Output> {
        match Message::decode_prefix(bytes, self.config.max_unicast) {
            Ok((m, _)) => self.on_response_message(now, ifindex, src, m),
            Err(e) => {
                tracing::debug!(%src, error = %e, "discovery response dropped");
                Vec::new()
            }
        }
    }

    /// [`Core::on_response`] for a message decoded already.
    pub fn on_response_message(
        &mut self,
        now: Instant,
        ifindex: u32,
        src: IpAddr,
        msg: Message,
    ) -> Vec<Output> {
        let Message::Response {
            session_id,
            initiator,
            ttl,
            options,
            objective,
        } = msg
        else {
            tracing::debug!(%src, "not a discovery response: dropped");
            return Vec::new();
        };
        let Some(pending) = self.pending.get(&(session_id, initiator)).cloned() else {
            tracing::debug!(%src, session_id, "response to no pending discovery: dropped");
            return Vec::new();
        };
        let life = if ttl == 0 {
            ZERO_TTL
        } else {
            Duration::from_millis(ttl.into())
        };
        let mut found = Vec::new();
        for o in options {
            match o {
                ResponseOption::Locator(l) => found.push((l, false)),
                ResponseOption::Divert(ls) => found.extend(ls.into_iter().map(|l| (l, true))),
            }
        }
        let mut rapid = objective.filter(|o| o.name == pending.name);
        for (locator, diverted) in &found {
            let loc = AsaLocator {
                locator: locator.clone(),
                ifindex,
                diverted: *diverted,
                expires_at: now + life,
            };
            self.discovery.insert(&pending.name, loc, rapid.take());
        }
        match pending.origin {
            PendingOrigin::Local { .. } => Vec::new(),
            PendingOrigin::Relay { upstream } => {
                let onward: Vec<Locator> = found
                    .into_iter()
                    .map(|(l, _)| l)
                    .filter(|l| !l.is_link_local())
                    .collect();
                if onward.is_empty() {
                    return Vec::new();
                }
                let msg = Message::Response {
                    session_id,
                    initiator,
                    ttl,
                    options: vec![ResponseOption::Divert(onward)],
                    objective: None,
                };
                match msg.encode_limited(self.config.max_unicast) {
                    Ok(bytes) => vec![Output::Respond {
                        to: upstream,
                        bytes,
                    }],
                    Err(_) => Vec::new(),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_flood(
        &mut self,
        now: Instant,
        family: Family,
        ifindex: u32,
        session_id: u32,
        initiator: IpAddr,
        ttl: u32,
        mut items: Vec<FloodItem>,
    ) -> Vec<Output> {
        if self.is_mine(initiator) {
            return Vec::new();
        }
        let first_lc = items.first().map_or(0, |i| i.objective.loop_count);
        if self.config.dull && first_lc != 1 {
            tracing::debug!("DULL: flood with a loop count other than 1 dropped");
            return Vec::new();
        }
        // "Floods with link-local source addresses and a loop count other than 1 are invalid,
        // and such messages MUST be discarded" (RFC 8990 2.5.6.2): the initiator field.
        if is_link_local(initiator) && first_lc != 1 {
            tracing::debug!(%initiator, "flood from a link-local initiator with loop count {first_lc} dropped");
            return Vec::new();
        }
        let relaying = self.config.relaying();
        if relaying
            && !self
                .relayed
                .first_time(now, (session_id, initiator), now + FLOOD_MEMORY)
        {
            // Seen already (through another relay): neither cached nor relayed again.
            return Vec::new();
        }
        let expires_at = (ttl > 0).then(|| now + Duration::from_millis(ttl.into()));
        for item in &items {
            let len = objective_value(&item.objective)
                .to_cbor()
                .map_or(usize::MAX / 4, |b| b.len());
            self.floods.insert(
                now,
                TaggedObjective {
                    objective: item.objective.clone(),
                    locator: item.locator.clone(),
                    ifindex,
                    expires_at,
                },
                len,
            );
        }
        if !relaying {
            return Vec::new();
        }
        let remaining = first_lc.saturating_sub(1);
        if remaining == 0 {
            tracing::debug!("flood not relayed: loop count exhausted");
            return Vec::new();
        }
        if !self.rate.allow(now) {
            tracing::debug!("flood not relayed: rate limit");
            return Vec::new();
        }
        if let Some(first) = items.first_mut() {
            first.objective.loop_count = remaining;
        }
        let msg = Message::Flood {
            session_id,
            initiator,
            ttl,
            items,
        };
        let Ok(bytes) = msg.encode_limited(self.config.max_multicast) else {
            return Vec::new();
        };
        self.interfaces_of(family)
            .filter(|i| *i != ifindex)
            .map(|i| Output::Multicast {
                family,
                ifindex: i,
                bytes: bytes.clone(),
            })
            .collect()
    }
}
