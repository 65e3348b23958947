//! [`Directory`]: which address each daemon's peer id is called at, learnt from the other
//! daemons over gossip, so that a local application can call a daemon by its bare id without
//! having been given `ID@host:port`.
//!
//! Every daemon with a native API publishes a signed [`Record`] of its own — its public keys (its
//! id derives from them), the address of its peer-call server and when it was issued — on the
//! gossip topic [`topic`], at start and every [`REPUBLISH`]. Gossip spreads it to every daemon
//! subscribed to that topic (each of them is), and anti-entropy hands it to daemons that join
//! later. A record is taken only when its Ed25519 signature is good under the key it carries (so
//! the id it is filed under, derived from that key, is the signer's) and it was issued within
//! [`RECORD_TTL`] (and not more than [`MAX_SKEW`] ahead). A held record is released for forwarding
//! only once it passed; one that fails is discarded unforwarded and counted against the neighbour
//! it came from, like data a module judged invalid.
//!
//! Record layout (the bulletin's content, all integers big-endian):
//!
//! | field | bytes |
//! |---|---|
//! | version | 1 (`1`) |
//! | X25519 key, Ed25519 key | 32 + 32 |
//! | address | `4` ‖ IPv4 ‖ port, or `6` ‖ IPv6 ‖ port |
//! | issued | 8 (Unix seconds) |
//! | signature | 64: Ed25519 over `"netaiod/directory/v1"` ‖ everything above |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use netaio_asymmetric::ed25519_dalek::{Signature, Signer, VerifyingKey};
use netaio_asymmetric::{Identity, PublicKeys};
use netaio_gossip::proto::{PeerId, Reader, Verdict};
use netaio_gossip::{GossipNode, TopicId};
use tokio::sync::watch;

use crate::native::PEER_ID_LEN;

/// Peer ids a directory holds; a new id beyond evicts the one with the oldest record.
pub const MAX_ENTRIES: usize = 1024;
/// How long a record is believed after it was issued.
pub const RECORD_TTL: Duration = Duration::from_secs(30 * 60);
/// How often a daemon publishes its record again (well inside [`RECORD_TTL`]).
pub const REPUBLISH: Duration = Duration::from_secs(10 * 60);
/// How far in the future a record's issue time may be (clock skew).
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"netaiod/directory/v1";

/// The gossip topic of directory records.
pub fn topic() -> TopicId {
    TopicId::from_descriptor(b"netaiod/directory/v1")
}

/// A daemon's claim: its keys are called at `addr`, as of `issued` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The daemon's public keys (its peer id is derived from them).
    pub keys: PublicKeys,
    /// Its peer-call address.
    pub addr: SocketAddr,
    /// When it was signed, in Unix seconds.
    pub issued: u64,
}

/// Why a record was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// It does not decode (wrong version, length, address family).
    #[error("malformed directory record")]
    Malformed,
    /// Its keys are not usable points.
    #[error("unusable keys in a directory record")]
    BadKeys,
    /// The signature is not the carried key's over the record.
    #[error("bad signature on a directory record")]
    BadSignature,
    /// Issued more than [`RECORD_TTL`] ago, or more than [`MAX_SKEW`] ahead.
    #[error("directory record issued at {issued}, now {now}: out of date")]
    Stale {
        /// Its issue time.
        issued: u64,
        /// The time it was checked at.
        now: u64,
    },
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Record {
    /// The peer id this record speaks for (derived from its keys).
    pub fn peer_id(&self) -> [u8; PEER_ID_LEN] {
        netaio_asymmetric::peer_id(&self.keys)
    }

    fn body(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(1 + 64 + 19 + 8 + 64);
        out.put_u8(VERSION);
        out.put_slice(&self.keys.x25519);
        out.put_slice(&self.keys.ed25519);
        // The address in the gossip layer's own wire form of a peer address.
        self.addr.encode(&mut out);
        out.put_u64(self.issued);
        out
    }

    /// `identity`'s record of `addr` as of `issued`, signed.
    pub fn sign(identity: &Identity, addr: SocketAddr, issued: u64) -> Bytes {
        let record = Self {
            keys: identity.public_keys(),
            addr,
            issued,
        };
        let mut out = record.body();
        let signature = identity.signing_key().sign(&signed(&out));
        out.put_slice(&signature.to_bytes());
        out.freeze()
    }

    /// Decodes and checks a record at `now` (Unix seconds): signed by the key it carries,
    /// issued within [`RECORD_TTL`] and at most [`MAX_SKEW`] ahead.
    pub fn open(wire: &[u8], now: u64) -> Result<Self, RecordError> {
        let mut r = Reader::new(Bytes::copy_from_slice(wire));
        let malformed = |_| RecordError::Malformed;
        if r.u8().map_err(malformed)? != VERSION {
            return Err(RecordError::Malformed);
        }
        let keys = PublicKeys {
            x25519: r.array32().map_err(malformed)?,
            ed25519: r.array32().map_err(malformed)?,
        };
        let addr = SocketAddr::decode(&mut r).map_err(malformed)?;
        let issued = r.u64().map_err(malformed)?;
        if r.remaining() != 64 {
            return Err(RecordError::Malformed);
        }
        let signed_len = wire.len() - 64;
        let (body, sig) = wire.split_at(signed_len);
        keys.check().map_err(|_| RecordError::BadKeys)?;
        let key = VerifyingKey::from_bytes(&keys.ed25519).map_err(|_| RecordError::BadKeys)?;
        let sig = Signature::from_slice(sig).map_err(|_| RecordError::BadSignature)?;
        key.verify_strict(&signed(body), &sig)
            .map_err(|_| RecordError::BadSignature)?;
        if expired(issued, now) || issued > now.saturating_add(MAX_SKEW.as_secs()) {
            return Err(RecordError::Stale { issued, now });
        }
        Ok(Self { keys, addr, issued })
    }
}

fn signed(body: &[u8]) -> Vec<u8> {
    [DOMAIN, body].concat()
}

/// Peer id → the address of its latest record, bounded ([`MAX_ENTRIES`]) and expiring
/// ([`RECORD_TTL`]).
#[derive(Debug)]
pub struct Directory {
    entries: Mutex<HashMap<[u8; PEER_ID_LEN], (SocketAddr, u64)>>,
    changes: watch::Sender<u64>,
}

impl Default for Directory {
    fn default() -> Self {
        Self::new()
    }
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            changes: watch::channel(0).0,
        }
    }

    /// Files a checked record (see [`Record::open`]): kept if it is the newest for its id. When
    /// the table is full, expired entries go first, then the one issued longest ago. Whether it
    /// was taken.
    pub fn insert(&self, record: &Record, now: u64) -> bool {
        let id = record.peer_id();
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        match entries.get(&id) {
            Some(&(_, issued)) if issued >= record.issued => return false,
            Some(_) => {}
            None if entries.len() >= MAX_ENTRIES => {
                entries.retain(|_, (_, issued)| !expired(*issued, now));
                if entries.len() >= MAX_ENTRIES {
                    let oldest = entries.iter().min_by_key(|(_, (_, i))| *i).map(|(k, _)| *k);
                    match oldest {
                        Some(k) if entries.get(&k).is_some_and(|e| e.1 < record.issued) => {
                            entries.remove(&k);
                        }
                        _ => return false,
                    }
                }
            }
            None => {}
        }
        entries.insert(id, (record.addr, record.issued));
        drop(entries);
        self.changes.send_modify(|n| *n += 1);
        true
    }

    /// The address filed for `id`, unless its record expired by `now`.
    pub fn address(&self, id: &[u8; PEER_ID_LEN], now: u64) -> Option<SocketAddr> {
        let entries = self.entries.lock().ok()?;
        let &(addr, issued) = entries.get(id)?;
        (!expired(issued, now)).then_some(addr)
    }

    /// Ids filed (expired ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether nothing is filed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A counter bumped at each record taken: to wait for the directory to learn something.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

fn expired(issued: u64, now: u64) -> bool {
    issued.saturating_add(RECORD_TTL.as_secs()) <= now
}

/// Publishes this daemon's record (its peer-call address `addr`) at start and every
/// [`REPUBLISH`], and files the records other daemons publish, releasing each for forwarding only
/// once it checked out. Ends when the node stops.
pub(crate) async fn run(
    node: GossipNode,
    identity: Identity,
    addr: SocketAddr,
    directory: std::sync::Arc<Directory>,
) {
    let mut records = match node.subscribe(topic()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "peer directory not followed");
            return;
        }
    };
    let mut republish = tokio::time::interval(REPUBLISH);
    loop {
        tokio::select! {
            _ = republish.tick() => {
                let record = Record::sign(&identity, addr, unix_now());
                match node.publish(topic(), record).await {
                    Ok(outcome) => tracing::debug!(%addr, sent = ?outcome.sent, "directory record published"),
                    Err(e) => tracing::warn!(error = %e, "directory record not published"),
                }
            }
            delivery = records.recv() => {
                let Some(d) = delivery else { return };
                let verdict = match Record::open(d.bulletin.bulletin().content(), unix_now()) {
                    Ok(record) => {
                        if directory.insert(&record, unix_now()) {
                            tracing::debug!(peer = %hex::encode(record.peer_id()), addr = %record.addr, "peer directory: learnt");
                        }
                        Verdict::Accept
                    }
                    Err(e) => {
                        tracing::info!(from = %d.from, error = %e, "directory record refused");
                        Verdict::Reject
                    }
                };
                if d.held && node.release(d.bulletin.id(), verdict).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_signed_record_opens_and_any_change_is_refused() {
        let me = Identity::from_seed([1; 32]);
        for a in ["127.0.0.1:7070", "[fd00::1]:7070"] {
            let wire = Record::sign(&me, addr(a), NOW);
            let r = Record::open(&wire, NOW).unwrap();
            assert_eq!((r.addr, r.issued), (addr(a), NOW));
            assert_eq!(r.peer_id(), netaio_asymmetric::peer_id(&me.public_keys()));
            for i in 0..wire.len() {
                let mut bad = wire.to_vec();
                bad[i] ^= 1;
                assert!(Record::open(&bad, NOW).is_err(), "byte {i} flipped");
            }
            for n in 0..wire.len() {
                assert!(Record::open(&wire[..n], NOW).is_err(), "{n} bytes");
            }
            assert_eq!(
                Record::open(&[&wire[..], &[0]].concat(), NOW),
                Err(RecordError::Malformed)
            );
        }
    }

    #[test]
    fn a_record_for_someone_elses_keys_is_refused() {
        // Mallory signs a record carrying Alice's keys (to be filed under Alice's id) with her
        // own key: the signature does not verify under the key it carries.
        let (alice, mallory) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let record = Record {
            keys: alice.public_keys(),
            addr: addr("10.0.0.66:7070"),
            issued: NOW,
        };
        let mut wire = record.body();
        let sig = mallory.signing_key().sign(&signed(&wire));
        wire.put_slice(&sig.to_bytes());
        assert_eq!(Record::open(&wire, NOW), Err(RecordError::BadSignature));
    }

    #[test]
    fn old_and_future_records_are_refused() {
        let me = Identity::from_seed([1; 32]);
        let a = addr("127.0.0.1:1");
        let ttl = RECORD_TTL.as_secs();
        assert!(Record::open(&Record::sign(&me, a, NOW - ttl + 1), NOW).is_ok());
        assert!(matches!(
            Record::open(&Record::sign(&me, a, NOW - ttl), NOW),
            Err(RecordError::Stale { .. })
        ));
        let skew = MAX_SKEW.as_secs();
        assert!(Record::open(&Record::sign(&me, a, NOW + skew), NOW).is_ok());
        assert!(matches!(
            Record::open(&Record::sign(&me, a, NOW + skew + 1), NOW),
            Err(RecordError::Stale { .. })
        ));
    }

    #[test]
    fn the_newest_record_wins_entries_expire_and_the_table_is_bounded() {
        let d = Directory::new();
        let me = Identity::from_seed([1; 32]);
        let id = netaio_asymmetric::peer_id(&me.public_keys());
        let rec = |a: &str, issued| Record::open(&Record::sign(&me, addr(a), issued), NOW).unwrap();
        assert!(d.insert(&rec("127.0.0.1:1", NOW - 10), NOW));
        assert!(d.insert(&rec("127.0.0.1:2", NOW - 5), NOW));
        assert!(
            !d.insert(&rec("127.0.0.1:3", NOW - 7), NOW),
            "an older record"
        );
        assert_eq!(d.address(&id, NOW), Some(addr("127.0.0.1:2")));
        assert_eq!(d.address(&id, NOW - 5 + RECORD_TTL.as_secs()), None);

        // Full: a newer record pushes out the oldest; an older one is not taken.
        let d = Directory::new();
        for i in 0..MAX_ENTRIES {
            // Filed by the id of its keys (checked before, by `Record::open`): any bytes do.
            let mut keys = me.public_keys();
            keys.x25519[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let r = Record {
                keys,
                addr: addr("127.0.0.1:9"),
                issued: NOW - 100 + (i as u64 % 50),
            };
            assert!(d.insert(&r, NOW));
        }
        assert_eq!(d.len(), MAX_ENTRIES);
        let stale = Record {
            keys: me.public_keys(),
            addr: addr("127.0.0.1:9"),
            issued: NOW - 1000,
        };
        assert!(!d.insert(&stale, NOW));
        assert!(d.insert(&rec("127.0.0.1:4", NOW), NOW));
        assert_eq!(d.len(), MAX_ENTRIES);
        assert_eq!(d.address(&id, NOW), Some(addr("127.0.0.1:4")));
    }
}
