//! [`PeerTable`]: known peers by id and by address, bounded, with expiry and a stream of events.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::Peer;
use super::recency::Recency;
use super::watch::PeerWatch;

/// What happened to a peer; see [`PeerTable::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A peer was heard from for the first time (or again after it expired or left).
    Discovered(Arc<Peer>),
    /// A known peer changed its data or was heard at a new address.
    Updated(Arc<Peer>),
    /// A peer was not heard from within the timeout, or its only address was taken over by
    /// another peer id (a node restarted with a new id), or it was the least recently heard when
    /// a new peer needed its place (see [`PeerTable`]), and was removed.
    Expired(Arc<Peer>),
    /// A peer said goodbye (`DISCONNECT`), or its last connection closed, and was removed.
    Disconnected(Arc<Peer>),
}

impl PeerEvent {
    /// The peer the event is about (as it was when the event happened).
    pub fn peer(&self) -> &Arc<Peer> {
        match self {
            PeerEvent::Discovered(p)
            | PeerEvent::Updated(p)
            | PeerEvent::Expired(p)
            | PeerEvent::Disconnected(p) => p,
        }
    }
}

/// What [`PeerTable::observe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The peer is new ([`PeerEvent::Discovered`] was sent).
    Discovered,
    /// The peer was known; its data or addresses changed ([`PeerEvent::Updated`] was sent).
    Updated,
    /// The peer was known and unchanged; only its last-seen time moved (no event).
    Refreshed,
}

/// Why a peer was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerTableError {
    /// The table's capacity is 0: it records nobody. (A table with room for at least one peer
    /// evicts the least recently heard one to make room.)
    #[error("peer table full ({0} peers): new peer refused")]
    Full(usize),
    /// A peer needs a non-empty id.
    #[error("peer has an empty id")]
    EmptyId,
}

/// The peers a node knows: by id, and by every address each was heard at (at most
/// [`MAX_ADDRS`](Self::MAX_ADDRS) per peer, most recent first). Peers not heard from within the
/// [`timeout`](Self::timeout) are removed by [`expire`](Self::expire) (the transports call it;
/// see [`PeerConfig`](super::PeerConfig)).
///
/// Bounded, without locking anyone out: a new peer always gets in. When the table holds
/// [`capacity`](Self::capacity) peers, the least recently heard one is evicted to make room; and
/// peers whose latest address has the same IP address (for IPv6, the same /64) are at most
/// [`max_per_ip`](Self::max_per_ip), a new one from that IP evicting that IP's least recently
/// heard. So a flood of fake ids from one host churns only that host's share of the table, and
/// a flood from forged addresses evicts peers that then come back at their next advert (use an
/// auth plugin to keep forged adverts out altogether). An evicted peer is announced as
/// [`PeerEvent::Expired`] and counted ([`evicted`](Self::evicted)).
///
/// Every change is announced on [`events`](Self::events). Cheap to clone: clones share the table.
///
/// ```
/// use std::time::Duration;
/// use netaio::peer::{Observed, Peer, PeerTable};
///
/// let table = PeerTable::with_capacity(1);
/// let a = "10.0.0.1:8888".parse().unwrap();
/// let b = "10.0.0.2:8888".parse().unwrap();
/// assert_eq!(table.observe(Peer::new("a"), a), Ok(Observed::Discovered));
/// assert_eq!(table.observe(Peer::new("a"), a), Ok(Observed::Refreshed));
/// // Full: the least recently heard peer makes room.
/// assert_eq!(table.observe(Peer::new("b"), b), Ok(Observed::Discovered));
/// assert_eq!((table.len(), table.evicted()), (1, 1));
/// assert!(table.contains("b") && !table.contains("a"));
/// assert!(table.remove("b").is_some());
/// assert!(table.is_empty());
/// ```
#[derive(Clone)]
pub struct PeerTable {
    shared: Arc<Shared>,
}

struct Shared {
    inner: RwLock<Inner>,
    events: broadcast::Sender<PeerEvent>,
    /// Held by a change from its write to its events, and by [`PeerTable::watch`] from its
    /// subscription to its snapshot: a watcher sees each change once, in the snapshot or as an
    /// event. (Changes are adverts and expiries, not messages: the lock costs nothing that
    /// matters.)
    order: Mutex<()>,
}

struct Inner {
    by_id: HashMap<Bytes, Arc<Peer>>,
    by_addr: HashMap<SocketAddr, Bytes>,
    /// Peers in the order they were last heard: the order of expiry and eviction.
    recency: Recency,
    capacity: usize,
    max_per_ip: usize,
    timeout: Duration,
    refused: u64,
    evicted: u64,
}

impl Inner {
    /// Record `p` by id (replacing what was there) and in the order of recency.
    fn put(&mut self, p: Arc<Peer>) {
        if let Some(old) = self.by_id.insert(p.id.clone(), p.clone()) {
            self.recency.remove(&old);
        }
        self.recency.insert(&p);
    }

    /// Take a peer out by id and out of the order of recency (not out of `by_addr`).
    fn take(&mut self, id: &[u8]) -> Option<Arc<Peer>> {
        let p = self.by_id.remove(id)?;
        self.recency.remove(&p);
        Some(p)
    }

    /// The peer to evict for a new one from `addr`: the least recently heard of its IP when that
    /// IP has its share, else the least recently heard of all when the table is full.
    fn victim(&self, addr: SocketAddr) -> Option<Bytes> {
        if let Some(id) = self.recency.oldest_of_full_ip(addr, self.max_per_ip.max(1)) {
            return Some(id.clone());
        }
        if self.by_id.len() >= self.capacity {
            return self.recency.oldest().cloned();
        }
        None
    }

    /// Remove `addr` from the peer `id`; when it was the peer's last address, remove the peer and
    /// return it.
    fn unlink(&mut self, id: &Bytes, addr: SocketAddr) -> Option<Arc<Peer>> {
        if self.by_addr.get(&addr) == Some(id) {
            self.by_addr.remove(&addr);
        }
        let peer = self.by_id.get(id)?;
        if !peer.addrs.contains(&addr) {
            return None;
        }
        if peer.addrs.len() == 1 {
            return self.take(id);
        }
        let mut p = (**peer).clone();
        p.addrs.retain(|a| *a != addr);
        self.put(Arc::new(p));
        None
    }

    fn remove(&mut self, id: &[u8]) -> Option<Arc<Peer>> {
        let peer = self.take(id)?;
        for a in &peer.addrs {
            if self.by_addr.get(a).is_some_and(|i| i.as_ref() == id) {
                self.by_addr.remove(a);
            }
        }
        Some(peer)
    }
}

impl std::fmt::Debug for PeerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.read();
        f.debug_struct("PeerTable")
            .field("len", &t.by_id.len())
            .field("capacity", &t.capacity)
            .field("max_per_ip", &t.max_per_ip)
            .field("timeout", &t.timeout)
            .finish()
    }
}

impl Default for PeerTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PeerTable {
    /// The default capacity: 1,024 peers.
    pub const DEFAULT_CAPACITY: usize = 1024;
    /// The default [`max_per_ip`](Self::max_per_ip): 64 peers.
    pub const DEFAULT_MAX_PER_IP: usize = 64;
    /// The default timeout: 60 s without news, as in Python.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    /// Addresses kept per peer (the oldest is forgotten first).
    pub const MAX_ADDRS: usize = 8;
    /// Events kept for a receiver that falls behind; older ones are lost
    /// ([`broadcast::error::RecvError::Lagged`]).
    pub const EVENT_BUFFER: usize = 256;

    /// An empty table with the default capacity and timeout.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An empty table holding at most `capacity` peers.
    pub fn with_capacity(capacity: usize) -> Self {
        let (events, _) = broadcast::channel(Self::EVENT_BUFFER);
        Self {
            shared: Arc::new(Shared {
                inner: RwLock::new(Inner {
                    by_id: HashMap::new(),
                    by_addr: HashMap::new(),
                    recency: Recency::default(),
                    capacity,
                    max_per_ip: Self::DEFAULT_MAX_PER_IP,
                    timeout: Self::DEFAULT_TIMEOUT,
                    refused: 0,
                    evicted: 0,
                }),
                events,
                order: Mutex::new(()),
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.shared.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.shared.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn order(&self) -> MutexGuard<'_, ()> {
        self.shared.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, events: Vec<PeerEvent>) {
        for e in events {
            tracing::debug!(event = ?e, "peer event");
            // No receiver is not an error: nobody is watching.
            let _ = self.shared.events.send(e);
        }
    }

    /// How many peers the table holds at most.
    pub fn capacity(&self) -> usize {
        self.read().capacity
    }

    /// Change the capacity. Lowering it below the current count removes nobody at once; each new
    /// peer then evicts the least recently heard ones down to the capacity.
    pub fn set_capacity(&self, capacity: usize) {
        self.write().capacity = capacity;
    }

    /// How many peers whose latest address has the same IP address (for IPv6, the same /64) the
    /// table holds at most (default [`DEFAULT_MAX_PER_IP`](Self::DEFAULT_MAX_PER_IP)); a new one
    /// from that IP evicts that IP's least recently heard.
    pub fn max_per_ip(&self) -> usize {
        self.read().max_per_ip
    }

    /// Change [`max_per_ip`](Self::max_per_ip) (at least 1). Lowering it removes nobody at once.
    pub fn set_max_per_ip(&self, n: usize) {
        self.write().max_per_ip = n.max(1);
    }

    /// How long a peer may stay silent before [`expire`](Self::expire) removes it.
    pub fn timeout(&self) -> Duration {
        self.read().timeout
    }

    /// Change the timeout.
    pub fn set_timeout(&self, timeout: Duration) {
        self.write().timeout = timeout;
    }

    /// Record that `peer` (its id and data) was heard from at `addr` now: add it, or update its
    /// data, addresses and last-seen time. The peer's own `addrs` and `last_seen` are ignored.
    ///
    /// If `addr` belonged to another peer id, that peer loses the address (and, if it had no
    /// other, is removed with [`PeerEvent::Expired`]).
    pub fn observe(&self, peer: Peer, addr: SocketAddr) -> Result<Observed, PeerTableError> {
        self.observe_at(peer, addr, Instant::now())
    }

    pub(crate) fn observe_at(
        &self,
        peer: Peer,
        addr: SocketAddr,
        now: Instant,
    ) -> Result<Observed, PeerTableError> {
        if peer.id.is_empty() {
            return Err(PeerTableError::EmptyId);
        }
        let _order = self.order();
        let mut events = Vec::new();
        let result = {
            let mut t = self.write();
            if let Some(other) = t.by_addr.get(&addr).filter(|i| **i != peer.id).cloned()
                && let Some(gone) = t.unlink(&other, addr)
            {
                events.push(PeerEvent::Expired(gone));
            }
            match t.by_id.get(&peer.id) {
                Some(known) => {
                    let mut p = (**known).clone();
                    let added = !p.addrs.contains(&addr);
                    let changed = p.data != peer.data;
                    if changed {
                        p.data = Bytes::copy_from_slice(&peer.data);
                    }
                    p = p.with_addr(addr);
                    for old in p.addrs.split_off(Self::MAX_ADDRS.min(p.addrs.len())) {
                        if t.by_addr.get(&old) == Some(&p.id) {
                            t.by_addr.remove(&old);
                        }
                    }
                    p.last_seen = Some(now);
                    let p = Arc::new(p);
                    t.by_addr.insert(addr, p.id.clone());
                    t.put(p.clone());
                    if added || changed {
                        events.push(PeerEvent::Updated(p));
                        Ok(Observed::Updated)
                    } else {
                        Ok(Observed::Refreshed)
                    }
                }
                None if t.capacity == 0 => {
                    t.refused += 1;
                    Err(PeerTableError::Full(0))
                }
                None => {
                    // Room for the newcomer: whoever fills the table cannot lock it out.
                    while let Some(id) = t.victim(addr) {
                        let Some(gone) = t.remove(&id) else {
                            break;
                        };
                        t.evicted += 1;
                        // Powers of two only: a flood of new ids must not flood the log.
                        if t.evicted.is_power_of_two() {
                            tracing::warn!(
                                capacity = t.capacity,
                                max_per_ip = t.max_per_ip,
                                evicted = t.evicted,
                                %addr,
                                "peer table full: the least recently heard peer evicted"
                            );
                        }
                        events.push(PeerEvent::Expired(gone));
                    }
                    // Stored id and data get their own allocations: slices of a received frame
                    // would keep the whole read chunk alive for as long as the peer is known.
                    let mut p = Peer::new(Bytes::copy_from_slice(&peer.id))
                        .with_data(Bytes::copy_from_slice(&peer.data))
                        .with_addr(addr);
                    p.last_seen = Some(now);
                    let p = Arc::new(p);
                    t.by_addr.insert(addr, p.id.clone());
                    t.put(p.clone());
                    events.push(PeerEvent::Discovered(p));
                    Ok(Observed::Discovered)
                }
            }
        };
        self.emit(events);
        result
    }

    /// Remove a peer (it said goodbye): [`PeerEvent::Disconnected`]. `None` if unknown.
    pub fn remove(&self, id: impl AsRef<[u8]>) -> Option<Arc<Peer>> {
        let _order = self.order();
        let removed = self.write().remove(id.as_ref());
        if let Some(p) = &removed {
            self.emit(vec![PeerEvent::Disconnected(p.clone())]);
        }
        removed
    }

    /// Forget one address (for example a closed connection). When it was the peer's last
    /// address, the peer is removed ([`PeerEvent::Disconnected`]) and returned.
    pub fn remove_addr(&self, addr: SocketAddr) -> Option<Arc<Peer>> {
        let _order = self.order();
        let removed = {
            let mut t = self.write();
            let id = t.by_addr.get(&addr).cloned();
            id.and_then(|id| t.unlink(&id, addr))
        };
        if let Some(p) = &removed {
            self.emit(vec![PeerEvent::Disconnected(p.clone())]);
        }
        removed
    }

    /// Remove every peer not heard from within the timeout ([`PeerEvent::Expired`] each) and
    /// return them.
    pub fn expire(&self) -> Vec<Arc<Peer>> {
        self.expire_at(Instant::now())
    }

    pub(crate) fn expire_at(&self, now: Instant) -> Vec<Arc<Peer>> {
        let _order = self.order();
        let expired: Vec<_> = {
            let mut t = self.write();
            // In the order of recency: no scan of the whole table.
            let ids = t.recency.silent_since(now, t.timeout);
            ids.iter().filter_map(|id| t.remove(id)).collect()
        };
        self.emit(
            expired
                .iter()
                .map(|p| PeerEvent::Expired(p.clone()))
                .collect(),
        );
        expired
    }

    /// When the next peer will be due to expire (its last-seen time plus the timeout), if any.
    pub fn next_expiry(&self) -> Option<Instant> {
        let t = self.read();
        t.recency.first_seen().map(|seen| seen + t.timeout)
    }

    /// The peer with this id.
    pub fn get(&self, id: impl AsRef<[u8]>) -> Option<Arc<Peer>> {
        self.read().by_id.get(id.as_ref()).cloned()
    }

    /// The peer last heard at this address.
    pub fn by_addr(&self, addr: SocketAddr) -> Option<Arc<Peer>> {
        let t = self.read();
        t.by_addr.get(&addr).and_then(|id| t.by_id.get(id)).cloned()
    }

    /// True when a peer with this id is known.
    pub fn contains(&self, id: impl AsRef<[u8]>) -> bool {
        self.read().by_id.contains_key(id.as_ref())
    }

    /// Every known peer, ordered by id.
    pub fn peers(&self) -> Vec<Arc<Peer>> {
        let mut v: Vec<_> = self.read().by_id.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The first (most recent) address of every known peer, one per peer, ordered by peer id.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.peers()
            .iter()
            .filter_map(|p| p.addrs.first().copied())
            .collect()
    }

    /// How many peers are known.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// True when no peer is known.
    pub fn is_empty(&self) -> bool {
        self.read().by_id.is_empty()
    }

    /// How many new peers were refused (only a table of capacity 0 refuses).
    pub fn refused(&self) -> u64 {
        self.read().refused
    }

    /// How many peers were evicted to make room for new ones (the table or their IP's share
    /// was full).
    pub fn evicted(&self) -> u64 {
        self.read().evicted
    }

    /// Peer events from now on. A receiver more than [`EVENT_BUFFER`](Self::EVENT_BUFFER)
    /// events behind loses the oldest ones.
    pub fn events(&self) -> broadcast::Receiver<PeerEvent> {
        self.shared.events.subscribe()
    }

    /// The peers known now, then every later event, with nothing missed or seen twice in
    /// between: [`PeerWatch::recv`] gives a [`PeerEvent::Discovered`] for each current peer
    /// first. Unlike [`events`](Self::events) taken after a node started serving, it cannot miss
    /// a peer discovered before.
    pub fn watch(&self) -> PeerWatch {
        let _order = self.order();
        let events = self.shared.events.subscribe();
        PeerWatch::new(self.peers(), events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 8888))
    }

    fn drain(rx: &mut broadcast::Receiver<PeerEvent>) -> Vec<PeerEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    /// Within `frame`, as a received frame's slices are.
    fn inside(b: &Bytes, frame: &Bytes) -> bool {
        let range = frame.as_ptr_range();
        range.contains(&b.as_ptr())
    }

    #[test]
    fn stored_id_and_data_do_not_keep_the_received_frame_alive() {
        let t = PeerTable::new();
        // A large received chunk, and the advert's id and data sliced out of it.
        let frame = Bytes::from(vec![7u8; 16 * 1024]);
        let advert = |frame: &Bytes, data: std::ops::Range<usize>| {
            Peer::new(frame.slice(0..4)).with_data(frame.slice(data))
        };
        t.observe(advert(&frame, 4..8), addr(1)).unwrap();
        let stored = t.get(frame.slice(0..4)).unwrap();
        assert!(!inside(&stored.id, &frame) && !inside(&stored.data, &frame));
        assert_eq!(
            (&stored.id[..], &stored.data[..]),
            (&frame[0..4], &frame[4..8])
        );

        // The same advert again, from a new chunk: the stored bytes stay as they were.
        let again = Bytes::from(vec![7u8; 16 * 1024]);
        t.observe(advert(&again, 4..8), addr(1)).unwrap();
        let refreshed = t.get(again.slice(0..4)).unwrap();
        assert_eq!(refreshed.data.as_ptr(), stored.data.as_ptr());
        assert!(!inside(&refreshed.id, &again) && !inside(&refreshed.data, &again));

        // Changed data is stored, copied too.
        let changed = Bytes::from(vec![9u8; 16 * 1024]);
        let mut update = advert(&changed, 4..9);
        update.id = Bytes::from_static(&[7, 7, 7, 7]);
        t.observe(update, addr(1)).unwrap();
        let updated = t.get(&[7u8, 7, 7, 7][..]).unwrap();
        assert_eq!(&updated.data[..], &[9u8; 5][..]);
        assert!(!inside(&updated.data, &changed));
    }

    #[test]
    fn discover_refresh_update_and_events() {
        let t = PeerTable::new();
        let mut rx = t.events();
        let t0 = Instant::now();
        assert_eq!(
            t.observe_at(Peer::new("a"), addr(1), t0),
            Ok(Observed::Discovered)
        );
        assert_eq!(
            t.observe_at(Peer::new("a"), addr(1), t0 + Duration::from_secs(1)),
            Ok(Observed::Refreshed)
        );
        let with_data = Peer::new("a").with_data(Bytes::from_static(b"k"));
        assert_eq!(t.observe_at(with_data, addr(1), t0), Ok(Observed::Updated));
        assert_eq!(
            t.observe_at(
                Peer::new("a").with_data(Bytes::from_static(b"k")),
                addr(2),
                t0
            ),
            Ok(Observed::Updated)
        );
        let events = drain(&mut rx);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(&events[0], PeerEvent::Discovered(p) if p.addrs == [addr(1)]));
        assert!(matches!(&events[1], PeerEvent::Updated(p) if p.data.as_ref() == b"k"));
        assert!(matches!(&events[2], PeerEvent::Updated(p) if p.addrs == [addr(2), addr(1)]));
        assert_eq!(t.by_addr(addr(1)).unwrap().id, "a");
        assert_eq!(t.by_addr(addr(2)).unwrap().id, "a");
        assert_eq!(t.addrs(), vec![addr(2)]);
        assert_eq!(
            t.observe(Peer::new(""), addr(3)),
            Err(PeerTableError::EmptyId)
        );
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_heard() {
        let t = PeerTable::with_capacity(2);
        let mut rx = t.events();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        t.observe_at(Peer::new("a"), addr(1), t0).unwrap();
        t.observe_at(Peer::new("b"), addr(2), t0 + s).unwrap();
        // A is heard again: B is now the least recently heard.
        t.observe_at(Peer::new("a"), addr(1), t0 + s * 2).unwrap();
        assert_eq!(
            t.observe_at(Peer::new("c"), addr(3), t0 + s * 3),
            Ok(Observed::Discovered)
        );
        assert!(t.contains("a") && !t.contains("b") && t.contains("c"));
        assert!(
            t.by_addr(addr(2)).is_none(),
            "the evicted peer's address is unindexed"
        );
        assert_eq!((t.len(), t.evicted(), t.refused()), (2, 1, 0));
        let events = drain(&mut rx);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, PeerEvent::Expired(p) if p.id == "b")),
            "{events:?}"
        );
        // Only a table of capacity 0 refuses.
        let none = PeerTable::with_capacity(0);
        assert_eq!(
            none.observe(Peer::new("a"), addr(1)),
            Err(PeerTableError::Full(0))
        );
        assert_eq!(none.refused(), 1);
        // Lowered below its count, the table shrinks as new peers come.
        t.set_capacity(1);
        t.observe_at(Peer::new("d"), addr(4), t0 + s * 4).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t.contains("d"));
    }

    /// The attack of issue 12: 1,024 and more fake ids, from as many addresses, fill the table;
    /// a real peer advertising afterwards is still recorded (it used to be refused for as long
    /// as the fakes were refreshed).
    #[test]
    fn a_flood_of_fake_ids_does_not_lock_a_real_peer_out() {
        let t = PeerTable::new();
        let t0 = Instant::now();
        for i in 0..1100u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            t.observe_at(
                Peer::new(format!("fake-{i}")),
                SocketAddr::from((ip, 9)),
                t0 + Duration::from_millis(u64::from(i)),
            )
            .unwrap();
        }
        assert_eq!(t.len(), PeerTable::DEFAULT_CAPACITY);
        let real = SocketAddr::from(([192, 0, 2, 1], 8888));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(
            t.observe_at(Peer::new("real"), real, now),
            Ok(Observed::Discovered)
        );
        assert_eq!(t.by_addr(real).unwrap().id, "real");
        assert_eq!(t.len(), PeerTable::DEFAULT_CAPACITY);
        // Another round of fakes evicts the older fakes first; the real peer, heard since, stays.
        for i in 0..512u32 {
            let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i);
            t.observe_at(
                Peer::new(format!("more-{i}")),
                SocketAddr::from((ip, 9)),
                now,
            )
            .unwrap();
        }
        assert!(t.contains("real"));
    }

    #[test]
    fn one_ip_holds_at_most_its_share_and_churns_only_that() {
        let t = PeerTable::with_capacity(100);
        t.set_max_per_ip(3);
        let t0 = Instant::now();
        let at = |host: u8, port: u16| SocketAddr::from(([10, 0, 0, host], port));
        t.observe_at(Peer::new("other"), at(2, 1), t0).unwrap();
        for i in 0..50u16 {
            t.observe_at(
                Peer::new(format!("flood-{i}")),
                at(1, 1000 + i),
                t0 + Duration::from_millis(u64::from(i) + 1),
            )
            .unwrap();
        }
        assert_eq!(t.len(), 4, "three from 10.0.0.1, and the other host's peer");
        assert!(t.contains("other"));
        for i in 47..50 {
            assert!(t.contains(format!("flood-{i}")), "{i}");
        }
        assert_eq!(t.evicted(), 47);
        // IPv6: one /64 is one source.
        let v6 = PeerTable::new();
        v6.set_max_per_ip(2);
        for (i, a) in ["[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8::ffff:3]:1"]
            .iter()
            .enumerate()
        {
            v6.observe_at(
                Peer::new(format!("v6-{i}")),
                a.parse().unwrap(),
                t0 + Duration::from_secs(i as u64),
            )
            .unwrap();
        }
        v6.observe_at(
            Peer::new("elsewhere"),
            "[2001:db8:0:1::1]:1".parse().unwrap(),
            t0,
        )
        .unwrap();
        assert_eq!(v6.len(), 3);
        assert!(!v6.contains("v6-0") && v6.contains("elsewhere"));
    }

    #[test]
    fn expiry_after_the_timeout_only() {
        let t = PeerTable::new();
        t.set_timeout(Duration::from_secs(60));
        let mut rx = t.events();
        let t0 = Instant::now();
        t.observe_at(Peer::new("old"), addr(1), t0).unwrap();
        t.observe_at(Peer::new("new"), addr(2), t0 + Duration::from_secs(30))
            .unwrap();
        assert_eq!(t.next_expiry(), Some(t0 + Duration::from_secs(60)));
        assert!(t.expire_at(t0 + Duration::from_secs(60)).is_empty());
        let gone = t.expire_at(t0 + Duration::from_secs(61));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, "old");
        assert!(t.by_addr(addr(1)).is_none());
        assert!(t.contains("new"));
        let events = drain(&mut rx);
        assert!(matches!(events.last(), Some(PeerEvent::Expired(p)) if p.id == "old"));
    }

    #[test]
    fn remove_and_remove_addr() {
        let t = PeerTable::new();
        let mut rx = t.events();
        t.observe(Peer::new("a"), addr(1)).unwrap();
        t.observe(Peer::new("a"), addr(2)).unwrap();
        // One of two addresses: the peer stays.
        assert!(t.remove_addr(addr(1)).is_none());
        assert_eq!(t.get("a").unwrap().addrs, vec![addr(2)]);
        assert!(t.by_addr(addr(1)).is_none());
        // Its last address: the peer goes.
        assert_eq!(t.remove_addr(addr(2)).unwrap().id, "a");
        assert!(t.is_empty());
        t.observe(Peer::new("b"), addr(3)).unwrap();
        assert!(t.remove("b").is_some());
        assert!(t.remove("b").is_none());
        assert!(t.by_addr(addr(3)).is_none());
        let kinds: Vec<_> = drain(&mut rx)
            .iter()
            .map(|e| match e {
                PeerEvent::Discovered(_) => "discovered",
                PeerEvent::Updated(_) => "updated",
                PeerEvent::Expired(_) => "expired",
                PeerEvent::Disconnected(_) => "disconnected",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "discovered",
                "updated",
                "disconnected",
                "discovered",
                "disconnected"
            ]
        );
    }

    #[test]
    fn an_address_taken_over_by_a_new_id_unlinks_the_old_peer() {
        let t = PeerTable::new();
        let mut rx = t.events();
        t.observe(Peer::new("before-restart"), addr(1)).unwrap();
        t.observe(Peer::new("after-restart"), addr(1)).unwrap();
        assert!(!t.contains("before-restart"));
        assert_eq!(t.by_addr(addr(1)).unwrap().id, "after-restart");
        let events = drain(&mut rx);
        assert!(
            matches!(&events[1], PeerEvent::Expired(p) if p.id == "before-restart"),
            "{events:?}"
        );
    }

    #[test]
    fn addresses_per_peer_are_bounded() {
        let t = PeerTable::new();
        for n in 0..20 {
            t.observe(Peer::new("a"), addr(n)).unwrap();
        }
        let p = t.get("a").unwrap();
        assert_eq!(p.addrs.len(), PeerTable::MAX_ADDRS);
        assert_eq!(p.addrs[0], addr(19));
        assert!(t.by_addr(addr(0)).is_none(), "forgotten address unindexed");
        assert!(t.by_addr(addr(12)).is_some());
    }
}
