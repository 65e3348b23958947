//! [`RelayState`]: a relay's bookkeeping as an I/O-free state machine. Reservations, circuits,
//! the queue of each recipient connection, and the rate limits; time comes in as `now`, and what
//! to do comes back as values (the recipient to wake, the refusal to answer).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::bucket::Bucket;
use super::config::RelayConfig;
use super::envelope::ForwardCrc;
use super::wire::{RelayAddress, RelayLimits, RelayRefusal, is_relay_type};

/// The key of a source IP: the address for IPv4, the /64 for IPv6 (one host's share).
pub(crate) fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The relay's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStats {
    /// Reservations held now.
    pub reservations: usize,
    /// Circuits open now.
    pub circuits: usize,
    /// Envelopes queued now, for all recipients.
    pub queued_envelopes: usize,
    /// Bytes of inner frames queued now, for all recipients.
    pub queued_bytes: usize,
    /// Envelopes relayed (handed to a recipient's connection).
    pub relayed: u64,
    /// Envelopes and reservations refused, by any rule.
    pub refused: u64,
    /// Of them, refused for the rate of the sender or its IP.
    pub rate_limited: u64,
    /// Of them, refused because the recipient's queue was full.
    pub queue_full: u64,
    /// Of them, refused for want of a route.
    pub no_route: u64,
}

/// A sender's buckets: envelopes, bytes, and reservations or circuits created.
#[derive(Debug, Clone)]
struct Buckets {
    envelopes: Bucket,
    bytes: Bucket,
    creations: Bucket,
}

impl Buckets {
    fn full(c: &RelayConfig, per_ip: bool, now: Instant) -> Self {
        let (e, b, r) = rates(c, per_ip);
        Self {
            envelopes: Bucket::full(e, now),
            bytes: Bucket::full(b, now),
            creations: Bucket::full(r, now),
        }
    }
}

fn rates(c: &RelayConfig, per_ip: bool) -> (super::Rate, super::Rate, super::Rate) {
    if per_ip {
        (
            c.envelope_rate_per_ip,
            c.byte_rate_per_ip,
            c.reservation_rate_per_ip,
        )
    } else {
        (
            c.envelope_rate_per_sender,
            c.byte_rate_per_sender,
            c.reservation_rate_per_sender,
        )
    }
}

/// Forget the entries of a full bucket table whose buckets are full, then, if it is still at
/// `bound`, any one.
fn make_room<K: Copy + Eq + Hash>(
    table: &mut HashMap<K, Buckets>,
    (e, b, r): (super::Rate, super::Rate, super::Rate),
    bound: usize,
    now: Instant,
) {
    table.retain(|_, k| {
        !(k.envelopes.is_full(e, now) && k.bytes.is_full(b, now) && k.creations.is_full(r, now))
    });
    if table.len() >= bound
        && let Some(victim) = table.keys().next().copied()
    {
        table.remove(&victim);
    }
}

struct Reservation<C> {
    conn: C,
    ip: IpAddr,
    expires: Instant,
}

struct Circuit<C> {
    /// The sender without a reservation.
    from: C,
    /// The reserved peer it talks to.
    to: Bytes,
    expires: Instant,
    bytes_left: u64,
}

/// Envelopes waiting for one recipient connection.
#[derive(Default)]
struct Queue {
    items: VecDeque<(RelayAddress, Bytes, Option<ForwardCrc>)>,
    bytes: usize,
    /// A drainer is at work on it (the I/O side was told to start one and has not reported the
    /// queue empty since).
    draining: bool,
}

/// The most envelopes an idle queue keeps room for.
const KEPT_QUEUE: usize = 8;

/// What backs a reservation beyond its sender's key (a connection, or an address): how long it
/// may last, and whether the id is proven to be the sender's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The reservation lasts at most until then besides its configured duration: on a UDP relay
    /// without sender authentication, when the proof that its address receives expires (past
    /// it, whoever took over the address would get the recipient's envelopes).
    pub(crate) until: Option<Instant>,
    /// The relay's reservation check proved that the id is the sender's (its key signed the
    /// reservation): a reservation of the id held elsewhere (an address the peer left, a
    /// half-open connection) moves to this sender instead of being [`RelayRefusal::Taken`].
    /// Never set without such a check: anyone passing a shared-key auth could take any id.
    pub(crate) proven: bool,
}

/// What [`RelayState::forward`] decided for an envelope it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forwarded<C> {
    /// The recipient connection.
    pub(crate) to: C,
    /// Start a drainer for it (none is running).
    pub(crate) start: bool,
}

/// A relay's bookkeeping, for connections keyed by `C`.
pub(crate) struct RelayState<C> {
    config: RelayConfig,
    reservations: HashMap<Bytes, Reservation<C>>,
    /// The id each connection reserved last: the address its envelopes come from (without one,
    /// a circuit). Kept beside `reservations` so that no envelope scans them.
    own_id: HashMap<C, Bytes>,
    per_ip: HashMap<IpAddr, usize>,
    circuits: HashMap<u64, Circuit<C>>,
    circuit_of: HashMap<(C, Bytes), u64>,
    next_circuit: u64,
    queues: HashMap<C, Queue>,
    senders: HashMap<C, Buckets>,
    ips: HashMap<IpAddr, Buckets>,
    stats: RelayStats,
}

impl<C: Copy + Eq + Hash> RelayState<C> {
    pub(crate) fn new(config: RelayConfig) -> Self {
        Self {
            config,
            reservations: HashMap::new(),
            own_id: HashMap::new(),
            per_ip: HashMap::new(),
            circuits: HashMap::new(),
            circuit_of: HashMap::new(),
            next_circuit: 1,
            queues: HashMap::new(),
            senders: HashMap::new(),
            ips: HashMap::new(),
            stats: RelayStats::default(),
        }
    }

    pub(crate) fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// The limits announced in a reservation's answer, for a reservation granted for `lifetime`
    /// (the configured duration, or less when the proof of its address expires first).
    pub(crate) fn limits(&self, lifetime: Duration) -> RelayLimits {
        let c = &self.config;
        let per_sec = |r: super::Rate| {
            let secs = r.period.as_secs_f64().max(1e-9);
            (r.count as f64 / secs) as u64
        };
        RelayLimits {
            reservation_secs: lifetime.as_secs(),
            max_envelope_size: c.max_envelope_size as u64,
            queue_envelopes: c.queue_envelopes as u64,
            queue_bytes: c.queue_bytes as u64,
            envelopes_per_second: per_sec(c.envelope_rate_per_sender),
            bytes_per_second: per_sec(c.byte_rate_per_sender),
            circuit_secs: c.circuit_duration.as_secs(),
            circuit_bytes: c.circuit_bytes,
        }
    }

    pub(crate) fn stats(&self) -> RelayStats {
        let mut s = self.stats.clone();
        s.reservations = self.reservations.len();
        s.circuits = self.circuits.len();
        s.queued_envelopes = self.queues.values().map(|q| q.items.len()).sum();
        s.queued_bytes = self.queues.values().map(|q| q.bytes).sum();
        s
    }

    /// Count a refusal (by its kind) and return it.
    pub(crate) fn refuse(&mut self, r: RelayRefusal) -> RelayRefusal {
        self.stats.refused += 1;
        match r {
            RelayRefusal::RateLimited => self.stats.rate_limited += 1,
            RelayRefusal::QueueFull => self.stats.queue_full += 1,
            RelayRefusal::NoRoute => self.stats.no_route += 1,
            _ => {}
        }
        r
    }

    /// The sender's and its IP's buckets, made when missing. Both tables are bounded by
    /// [`RelayConfig::max_tracked_ips`] (senders leave theirs when their connection ends; one
    /// whose end was missed goes with the others when the table is full): a full table forgets
    /// the entries whose buckets are full (they say nothing a new one would not), then any.
    fn buckets(&mut self, conn: C, ip: IpAddr, now: Instant) -> (&mut Buckets, &mut Buckets) {
        let ip = ip_key(ip);
        let bound = self.config.max_tracked_ips.max(1);
        // The length first: a table below its bound needs no lookup (a hash) here.
        if self.ips.len() >= bound && !self.ips.contains_key(&ip) {
            make_room(&mut self.ips, rates(&self.config, true), bound, now);
        }
        if self.senders.len() >= bound && !self.senders.contains_key(&conn) {
            make_room(&mut self.senders, rates(&self.config, false), bound, now);
        }
        let config = &self.config;
        let s = self
            .senders
            .entry(conn)
            .or_insert_with(|| Buckets::full(config, false, now));
        let i = self
            .ips
            .entry(ip)
            .or_insert_with(|| Buckets::full(config, true, now));
        (s, i)
    }

    /// Take one creation (a reservation or a circuit) from the sender's and its IP's rates.
    fn creation(&mut self, conn: C, ip: IpAddr, now: Instant) -> Result<(), RelayRefusal> {
        let (_, _, rs) = rates(&self.config, false);
        let (_, _, ri) = rates(&self.config, true);
        let (s, i) = self.buckets(conn, ip, now);
        if s.creations.has(rs, 1, now) && i.creations.has(ri, 1, now) {
            s.creations.take(1);
            i.creations.take(1);
            Ok(())
        } else {
            Err(self.refuse(RelayRefusal::RateLimited))
        }
    }

    /// Reserve `peer` for `conn` (from `ip`), or renew its reservation, as `claim` allows. A
    /// reservation of the same id by another live holder is [`RelayRefusal::Taken`] (the first
    /// holder keeps it until its connection ends or it expires), unless the claim is proven: then
    /// it moves to `conn` (see [`Claim::proven`]). Returns the limits, with the lifetime granted.
    pub(crate) fn reserve(
        &mut self,
        conn: C,
        ip: IpAddr,
        peer: Bytes,
        claim: Claim,
        now: Instant,
    ) -> Result<RelayLimits, RelayRefusal> {
        if peer.is_empty() {
            return Err(self.refuse(RelayRefusal::Malformed));
        }
        self.expire(now);
        let key = ip_key(ip);
        let expires = match claim.until {
            Some(until) => until.min(now + self.config.reservation_duration),
            None => now + self.config.reservation_duration,
        };
        // Zero when the claim ended already (the caller checks it first): it expires at once.
        let lifetime = expires.saturating_duration_since(now);
        // The reservation this one replaces, when it moves from another holder: its place in
        // the bounds is freed by the move.
        let mut moving = None;
        match self.reservations.get(&peer) {
            Some(r) if r.conn == conn => {
                self.creation(conn, ip, now)?;
                if let Some(r) = self.reservations.get_mut(&peer) {
                    r.expires = expires;
                }
                self.own_id.insert(conn, peer);
                return Ok(self.limits(lifetime));
            }
            Some(_) if !claim.proven => return Err(self.refuse(RelayRefusal::Taken)),
            Some(r) => moving = Some(r.ip),
            None => {}
        }
        let total = self.reservations.len() - usize::from(moving.is_some());
        let at_ip = (self.per_ip.get(&key).copied().unwrap_or(0))
            .saturating_sub(usize::from(moving == Some(key)));
        if total >= self.config.max_reservations || at_ip >= self.config.max_reservations_per_ip {
            return Err(self.refuse(RelayRefusal::ReservationLimit));
        }
        self.creation(conn, ip, now)?;
        if moving.is_some() {
            // The circuits to the id stay: they follow its reservation to the new holder.
            self.unbind(&peer);
        }
        *self.per_ip.entry(key).or_insert(0) += 1;
        self.own_id.insert(conn, peer.clone());
        self.reservations.insert(
            peer,
            Reservation {
                conn,
                ip: key,
                expires,
            },
        );
        Ok(self.limits(lifetime))
    }

    /// Remove `peer`'s reservation and what counts it (its holder's own id, its IP's count),
    /// leaving the circuits to it.
    fn unbind(&mut self, peer: &Bytes) -> bool {
        let Some(r) = self.reservations.remove(peer) else {
            return false;
        };
        if self.own_id.get(&r.conn) == Some(peer) {
            self.own_id.remove(&r.conn);
        }
        if let Some(n) = self.per_ip.get_mut(&r.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&r.ip);
            }
        }
        true
    }

    fn drop_reservation(&mut self, peer: &Bytes) {
        if self.unbind(peer) {
            let gone: Vec<u64> = self
                .circuits
                .iter()
                .filter(|(_, c)| c.to == *peer)
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                self.drop_circuit(id);
            }
        }
    }

    fn drop_circuit(&mut self, id: u64) {
        if let Some(c) = self.circuits.remove(&id) {
            self.circuit_of.remove(&(c.from, c.to));
        }
    }

    /// Remove what expired by `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        let old: Vec<Bytes> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in old {
            self.drop_reservation(&p);
        }
        let old: Vec<u64> = self
            .circuits
            .iter()
            .filter(|(_, c)| c.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.drop_circuit(id);
        }
    }

    /// When the next reservation or circuit expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        let r = self.reservations.values().map(|r| r.expires);
        let c = self.circuits.values().map(|c| c.expires);
        r.chain(c).min()
    }

    /// `conn` ended: its reservations, its circuits, its queue and its buckets go.
    pub(crate) fn connection_closed(&mut self, conn: C) {
        let held: Vec<Bytes> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.conn == conn)
            .map(|(p, _)| p.clone())
            .collect();
        for p in held {
            self.drop_reservation(&p);
        }
        let gone: Vec<u64> = self
            .circuits
            .iter()
            .filter(|(_, c)| c.from == conn)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.drop_circuit(id);
        }
        self.queues.remove(&conn);
        self.senders.remove(&conn);
    }

    /// The connection holding `peer`'s reservation.
    pub(crate) fn holder(&self, peer: &[u8]) -> Option<C> {
        self.reservations.get(peer).map(|r| r.conn)
    }

    /// Drop everything of the connections `alive` says have ended (their ends were missed).
    pub(crate) fn retain_connections(&mut self, alive: impl Fn(&C) -> bool) {
        let mut known: Vec<C> = self.reservations.values().map(|r| r.conn).collect();
        known.extend(self.circuits.values().map(|c| c.from));
        known.extend(self.queues.keys().copied());
        known.extend(self.senders.keys().copied());
        for c in known {
            if !alive(&c) {
                self.connection_closed(c);
            }
        }
    }

    /// The peer id `conn` reserved last and still holds, if any.
    fn reserved_id(&self, conn: C) -> Option<Bytes> {
        self.own_id.get(&conn).cloned()
    }

    /// Take an envelope from `from` (at `ip`) for `to`: queue it for the recipient's
    /// connection, or say why not. `frame` is the inner frame, never looked into beyond its
    /// first byte (its message type: an envelope inside an envelope is refused).
    pub(crate) fn forward(
        &mut self,
        from: C,
        ip: IpAddr,
        to: &RelayAddress,
        frame: Bytes,
        now: Instant,
    ) -> Result<Forwarded<C>, RelayRefusal> {
        self.forward_known(from, ip, to, frame, None, now)
    }

    /// [`forward`](Self::forward) with the `FORWARD`'s checksum, queued with the frame for its
    /// `DELIVER`'s (see [`pop_known`](Self::pop_known)).
    pub(crate) fn forward_known(
        &mut self,
        from: C,
        ip: IpAddr,
        to: &RelayAddress,
        frame: Bytes,
        known: Option<ForwardCrc>,
        now: Instant,
    ) -> Result<Forwarded<C>, RelayRefusal> {
        let len = frame.len();
        if len > self.config.max_envelope_size {
            return Err(self.refuse(RelayRefusal::TooLarge));
        }
        match frame.first() {
            None => return Err(self.refuse(RelayRefusal::Malformed)),
            Some(t) if is_relay_type(*t) => return Err(self.refuse(RelayRefusal::Nested)),
            Some(_) => {}
        }
        {
            let (es, bs, _) = rates(&self.config, false);
            let (ei, bi, _) = rates(&self.config, true);
            let (s, i) = self.buckets(from, ip, now);
            let ok = s.envelopes.has(es, 1, now)
                && s.bytes.has(bs, len as u64, now)
                && i.envelopes.has(ei, 1, now)
                && i.bytes.has(bi, len as u64, now);
            if !ok {
                return Err(self.refuse(RelayRefusal::RateLimited));
            }
            // Taken now, while the buckets are at hand (each lookup hashes the key), and given
            // back below when the envelope is refused for another reason.
            s.envelopes.take(1);
            s.bytes.take(len as u64);
            i.envelopes.take(1);
            i.bytes.take(len as u64);
        }
        let result = self.route(from, ip, to, frame, known, now);
        if result.is_err() {
            let (s, i) = self.buckets(from, ip, now);
            s.envelopes.give_back(1);
            s.bytes.give_back(len as u64);
            i.envelopes.give_back(1);
            i.bytes.give_back(len as u64);
        }
        result
    }

    /// [`forward`](Self::forward) past the size, type and rate checks: the route, the circuit's
    /// byte budget, the recipient's queue.
    fn route(
        &mut self,
        from: C,
        ip: IpAddr,
        to: &RelayAddress,
        frame: Bytes,
        known: Option<ForwardCrc>,
        now: Instant,
    ) -> Result<Forwarded<C>, RelayRefusal> {
        let len = frame.len();
        // The recipient's connection, and the address it answers to.
        let (recipient, source, circuit) = match to {
            RelayAddress::Peer(id) => {
                let Some(r) = self.reservations.get(id).filter(|r| r.expires > now) else {
                    return Err(self.refuse(RelayRefusal::NoRoute));
                };
                let recipient = r.conn;
                match self.reserved_id(from) {
                    Some(own) => (recipient, RelayAddress::Peer(own), None),
                    None => {
                        let c = self.circuit(from, ip, id, now)?;
                        (recipient, RelayAddress::Circuit(c), Some(c))
                    }
                }
            }
            RelayAddress::Circuit(n) => {
                // Only the reserved end of a circuit answers through it.
                let Some(c) = self.circuits.get(n).filter(|c| c.expires > now) else {
                    return Err(self.refuse(RelayRefusal::NoRoute));
                };
                let owner = self.reservations.get(&c.to).map(|r| r.conn);
                if owner != Some(from) {
                    return Err(self.refuse(RelayRefusal::NoRoute));
                }
                (c.from, RelayAddress::Peer(c.to.clone()), Some(*n))
            }
        };
        if let Some(id) = circuit {
            let left = self.circuits.get(&id).map_or(0, |c| c.bytes_left);
            if left < len as u64 {
                self.drop_circuit(id);
                return Err(self.refuse(RelayRefusal::CircuitLimit));
            }
        }
        let (qn, qb) = (self.config.queue_envelopes, self.config.queue_bytes);
        let q = self.queues.entry(recipient).or_default();
        // One envelope larger than the byte bound passes into an empty queue, so that the
        // bound does not forbid an envelope below the size limit for ever.
        if q.items.len() >= qn || (q.bytes + len > qb && !q.items.is_empty()) {
            if q.items.is_empty() && !q.draining {
                self.queues.remove(&recipient);
            }
            return Err(self.refuse(RelayRefusal::QueueFull));
        }
        q.items.push_back((source, frame, known));
        q.bytes += len;
        let start = !q.draining;
        q.draining = true;
        if let Some(id) = circuit
            && let Some(c) = self.circuits.get_mut(&id)
        {
            c.bytes_left -= len as u64;
        }
        Ok(Forwarded {
            to: recipient,
            start,
        })
    }

    /// The circuit from `from` to the reserved `to`, made when there is none (subject to the
    /// circuit bounds and the creation rates).
    fn circuit(
        &mut self,
        from: C,
        ip: IpAddr,
        to: &Bytes,
        now: Instant,
    ) -> Result<u64, RelayRefusal> {
        if let Some(id) = self.circuit_of.get(&(from, to.clone())).copied() {
            if self.circuits.get(&id).is_some_and(|c| c.expires > now) {
                return Ok(id);
            }
            self.drop_circuit(id);
        }
        let to_peer = self.circuits.values().filter(|c| c.to == *to).count();
        if self.circuits.len() >= self.config.max_circuits
            || to_peer >= self.config.max_circuits_per_peer
        {
            return Err(self.refuse(RelayRefusal::CircuitLimit));
        }
        self.creation(from, ip, now)?;
        let id = self.next_circuit;
        self.next_circuit += 1;
        self.circuits.insert(
            id,
            Circuit {
                from,
                to: to.clone(),
                expires: now + self.config.circuit_duration,
                bytes_left: self.config.circuit_bytes,
            },
        );
        self.circuit_of.insert((from, to.clone()), id);
        Ok(id)
    }

    /// The next envelope for `conn`, to hand to its connection; `None` when its queue is empty,
    /// and then its drainer stops (the next envelope starts another).
    pub(crate) fn pop(&mut self, conn: C) -> Option<(RelayAddress, Bytes)> {
        self.pop_known(conn).map(|(a, f, _)| (a, f))
    }

    /// [`pop`](Self::pop) with the checksum of the `FORWARD` the envelope came in, when known.
    pub(crate) fn pop_known(
        &mut self,
        conn: C,
    ) -> Option<(RelayAddress, Bytes, Option<ForwardCrc>)> {
        let keep = self.queues.len() <= self.reservations.len() + self.circuits.len();
        let q = self.queues.get_mut(&conn)?;
        match q.items.pop_front() {
            Some((a, f, k)) => {
                q.bytes -= f.len();
                self.stats.relayed += 1;
                Some((a, f, k))
            }
            None => {
                // The queue stays while there are no more queues than reservations and
                // circuits (a bound whatever ends are missed; its connection's end removes
                // it): the next envelope finds it without an insertion, its buffer without an
                // allocation.
                if keep {
                    q.draining = false;
                    q.items.shrink_to(KEPT_QUEUE);
                } else {
                    self.queues.remove(&conn);
                }
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
