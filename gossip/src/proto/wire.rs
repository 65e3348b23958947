//! The wire form of [`Message`]: one message per frame, a kind byte then its fields, integers
//! big-endian, lists as a `u16` count then the items, and a payload as the rest of the frame (the
//! transport's frame already says how long it is).
//!
//! | kind | message | fields after the kind byte |
//! |---|---|---|
//! | 1 | `Join` | — |
//! | 2 | `ForwardJoin` | peer, ttl `u8` |
//! | 3 | `Neighbor` | high priority `u8` (0 or 1) |
//! | 4 | `NeighborAccept` | — |
//! | 5 | `NeighborRefuse` | — |
//! | 6 | `Disconnect` | alive `u8` (0 or 1) |
//! | 7 | `Shuffle` | origin peer, ttl `u8`, count `u16`, peers |
//! | 8 | `ShuffleReply` | count `u16`, peers |
//! | 9 | `Gossip` | id (32), topic (32), hops `u8`, flags `u8` (1: repaired), payload (rest) |
//! | 10 | `IHave` | count `u16`, (id (32), hops `u8`) each |
//! | 11 | `Graft` | flags `u8` (1: has an id, 2: join), [id (32)] |
//! | 12 | `Prune` | — |
//! | 13 | `Subscriptions` | count `u16`, topics (32 each) |
//! | 14 | `SyncRequest` | count `u16`, topics (32 each) |
//! | 15 | `SyncIds` | topic (32), count `u16`, ids (32 each) |
//! | 16 | `Fetch` | count `u16`, ids (32 each) |
//! | 17 | `Fetched` | as `Gossip` |
//!
//! Peers are in their [`PeerId`] form. Decoding checks every count against [`Limits`] before it
//! allocates, and rejects trailing bytes, unknown kinds and unknown flag bits with a typed
//! [`DecodeError`].

use bytes::{BufMut, Bytes, BytesMut};

use super::message::{Announcement, Gossip, Message};
use super::{MessageId, PeerId, TopicId};

const JOIN: u8 = 1;
const FORWARD_JOIN: u8 = 2;
const NEIGHBOR: u8 = 3;
const NEIGHBOR_ACCEPT: u8 = 4;
const NEIGHBOR_REFUSE: u8 = 5;
const DISCONNECT: u8 = 6;
const SHUFFLE: u8 = 7;
const SHUFFLE_REPLY: u8 = 8;
const GOSSIP: u8 = 9;
const IHAVE: u8 = 10;
const GRAFT: u8 = 11;
const PRUNE: u8 = 12;
const SUBSCRIPTIONS: u8 = 13;
const SYNC_REQUEST: u8 = 14;
const SYNC_IDS: u8 = 15;
const FETCH: u8 = 16;
const FETCHED: u8 = 17;

/// Bytes of a `Gossip`/`Fetched` message besides its payload.
pub const GOSSIP_OVERHEAD: usize = 1 + 32 + 32 + 1 + 1;

/// Why a frame is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is empty.
    #[error("empty frame")]
    Empty,
    /// The kind byte names no message.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// The frame ends inside a field.
    #[error("frame truncated: {needed} more bytes needed")]
    Truncated {
        /// Bytes missing for the field being read.
        needed: usize,
    },
    /// A list is longer than the limit.
    #[error("{field}: {count} entries, at most {max} accepted")]
    TooMany {
        /// The list.
        field: &'static str,
        /// Its declared length.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A payload is larger than the limit.
    #[error("payload of {len} bytes, at most {max} accepted")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A flag byte has bits that mean nothing.
    #[error("flag byte {0:#04x} has unknown bits")]
    InvalidFlag(u8),
    /// A peer id does not decode (for a socket address: the family byte).
    #[error("invalid peer id (tag {0})")]
    InvalidPeer(u8),
    /// Bytes follow a complete message.
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
}

/// The largest lists and payloads [`decode`] accepts (and the protocol sends: the same
/// [`Config`](super::Config) gives both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a `Gossip` or `Fetched`, in bytes (default 60 KiB, so that a message
    /// fits a netaio frame).
    pub max_payload: usize,
    /// Most ids in an `IHave`, `SyncIds` or `Fetch` (default 1,024).
    pub max_ids: usize,
    /// Most peers in a `Shuffle` or `ShuffleReply` (default 64).
    pub max_peers: usize,
    /// Most topics in a `Subscriptions` or `SyncRequest` (default 256).
    pub max_topics: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload: 60 * 1024,
            max_ids: 1024,
            max_peers: 64,
            max_topics: 256,
        }
    }
}

/// A cursor over a received frame; payloads are slices of it, not copies.
#[derive(Debug)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Reads `frame` from its start.
    pub fn new(frame: Bytes) -> Self {
        Self { buf: frame }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated {
                needed: n - self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads `n` bytes (a slice of the frame).
    pub fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Fills `out` from the frame.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), DecodeError> {
        let b = self.bytes(out.len())?;
        out.copy_from_slice(&b);
        Ok(())
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let mut b = [0u8; 2];
        self.fill(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut b = [0u8; 4];
        self.fill(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    /// Reads 32 bytes.
    pub fn array32(&mut self) -> Result<[u8; 32], DecodeError> {
        let mut b = [0u8; 32];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn flags(&mut self, known: u8) -> Result<u8, DecodeError> {
        let b = self.u8()?;
        if b & !known != 0 {
            return Err(DecodeError::InvalidFlag(b));
        }
        Ok(b)
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidFlag(other)),
        }
    }

    /// A list count, checked against `max` and against the bytes left (each item takes at least
    /// `min_item` bytes), before anything is allocated for it.
    fn count(
        &mut self,
        field: &'static str,
        max: usize,
        min_item: usize,
    ) -> Result<usize, DecodeError> {
        let count = usize::from(self.u16()?);
        if count > max {
            return Err(DecodeError::TooMany { field, count, max });
        }
        self.need(count.saturating_mul(min_item))?;
        Ok(count)
    }

    fn rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }
}

/// Bytes [`encode`] writes for `message`.
pub fn encoded_len<P: PeerId>(message: &Message<P>) -> usize {
    1 + match message {
        Message::Join | Message::NeighborAccept | Message::NeighborRefuse | Message::Prune => 0,
        Message::ForwardJoin { peer, .. } => peer.encoded_len() + 1,
        Message::Neighbor { .. } | Message::Disconnect { .. } => 1,
        Message::Shuffle { origin, peers, .. } => {
            origin.encoded_len() + 1 + 2 + peers.iter().map(PeerId::encoded_len).sum::<usize>()
        }
        Message::ShuffleReply { peers } => 2 + peers.iter().map(PeerId::encoded_len).sum::<usize>(),
        Message::Gossip(g) | Message::Fetched(g) => GOSSIP_OVERHEAD - 1 + g.payload.len(),
        Message::IHave(list) => 2 + list.len() * 33,
        Message::Graft { id, .. } => 1 + if id.is_some() { 32 } else { 0 },
        Message::Subscriptions(topics) | Message::SyncRequest(topics) => 2 + topics.len() * 32,
        Message::SyncIds { ids, .. } => 32 + 2 + ids.len() * 32,
        Message::Fetch(ids) => 2 + ids.len() * 32,
    }
}

/// Appends the wire form of `message` to `out`.
///
/// Lists longer than `u16::MAX` are cut there (the protocol never builds one longer than its
/// [`Limits`], which are far below).
pub fn encode<P: PeerId>(message: &Message<P>, out: &mut BytesMut) {
    out.reserve(encoded_len(message));
    match message {
        Message::Join => out.put_u8(JOIN),
        Message::ForwardJoin { peer, ttl } => {
            out.put_u8(FORWARD_JOIN);
            peer.encode(out);
            out.put_u8(*ttl);
        }
        Message::Neighbor { high_priority } => {
            out.put_u8(NEIGHBOR);
            out.put_u8(u8::from(*high_priority));
        }
        Message::NeighborAccept => out.put_u8(NEIGHBOR_ACCEPT),
        Message::NeighborRefuse => out.put_u8(NEIGHBOR_REFUSE),
        Message::Disconnect { alive } => {
            out.put_u8(DISCONNECT);
            out.put_u8(u8::from(*alive));
        }
        Message::Shuffle { origin, ttl, peers } => {
            out.put_u8(SHUFFLE);
            origin.encode(out);
            out.put_u8(*ttl);
            put_peers(peers, out);
        }
        Message::ShuffleReply { peers } => {
            out.put_u8(SHUFFLE_REPLY);
            put_peers(peers, out);
        }
        Message::Gossip(g) => {
            out.put_u8(GOSSIP);
            put_gossip(g, out);
        }
        Message::Fetched(g) => {
            out.put_u8(FETCHED);
            put_gossip(g, out);
        }
        Message::IHave(list) => {
            out.put_u8(IHAVE);
            let list = capped(list);
            put_count(list.len(), out);
            for a in list {
                out.put_slice(&a.id.0);
                out.put_u8(a.hops);
            }
        }
        Message::Graft { id, join } => {
            out.put_u8(GRAFT);
            out.put_u8(u8::from(id.is_some()) | (u8::from(*join) << 1));
            if let Some(id) = id {
                out.put_slice(&id.0);
            }
        }
        Message::Prune => out.put_u8(PRUNE),
        Message::Subscriptions(topics) => {
            out.put_u8(SUBSCRIPTIONS);
            put_topics(topics, out);
        }
        Message::SyncRequest(topics) => {
            out.put_u8(SYNC_REQUEST);
            put_topics(topics, out);
        }
        Message::SyncIds { topic, ids } => {
            out.put_u8(SYNC_IDS);
            out.put_slice(&topic.0);
            put_ids(ids, out);
        }
        Message::Fetch(ids) => {
            out.put_u8(FETCH);
            put_ids(ids, out);
        }
    }
}

/// Encodes `message` into a new buffer.
pub fn to_bytes<P: PeerId>(message: &Message<P>) -> Bytes {
    let mut out = BytesMut::with_capacity(encoded_len(message));
    encode(message, &mut out);
    out.freeze()
}

fn capped<T>(list: &[T]) -> &[T] {
    list.get(..usize::from(u16::MAX)).unwrap_or(list)
}

fn put_count(n: usize, out: &mut BytesMut) {
    out.put_u16(u16::try_from(n).unwrap_or(u16::MAX));
}

fn put_peers<P: PeerId>(peers: &[P], out: &mut BytesMut) {
    let peers = capped(peers);
    put_count(peers.len(), out);
    for p in peers {
        p.encode(out);
    }
}

fn put_topics(topics: &[TopicId], out: &mut BytesMut) {
    let topics = capped(topics);
    put_count(topics.len(), out);
    for t in topics {
        out.put_slice(&t.0);
    }
}

fn put_ids(ids: &[MessageId], out: &mut BytesMut) {
    let ids = capped(ids);
    put_count(ids.len(), out);
    for id in ids {
        out.put_slice(&id.0);
    }
}

fn put_gossip(g: &Gossip, out: &mut BytesMut) {
    out.put_slice(&g.id.0);
    out.put_slice(&g.topic.0);
    out.put_u8(g.hops);
    out.put_u8(u8::from(g.repaired));
    out.put_slice(&g.payload);
}

/// Decodes one message from a whole frame.
pub fn decode<P: PeerId>(frame: Bytes, limits: &Limits) -> Result<Message<P>, DecodeError> {
    let mut r = Reader::new(frame);
    if r.remaining() == 0 {
        return Err(DecodeError::Empty);
    }
    let message = match r.u8()? {
        JOIN => Message::Join,
        FORWARD_JOIN => Message::ForwardJoin {
            peer: P::decode(&mut r)?,
            ttl: r.u8()?,
        },
        NEIGHBOR => Message::Neighbor {
            high_priority: r.flag()?,
        },
        NEIGHBOR_ACCEPT => Message::NeighborAccept,
        NEIGHBOR_REFUSE => Message::NeighborRefuse,
        DISCONNECT => Message::Disconnect { alive: r.flag()? },
        SHUFFLE => {
            let origin = P::decode(&mut r)?;
            let ttl = r.u8()?;
            let peers = peers(&mut r, limits)?;
            Message::Shuffle { origin, ttl, peers }
        }
        SHUFFLE_REPLY => Message::ShuffleReply {
            peers: peers(&mut r, limits)?,
        },
        GOSSIP => Message::Gossip(gossip(&mut r, limits)?),
        FETCHED => Message::Fetched(gossip(&mut r, limits)?),
        IHAVE => {
            let n = r.count("IHave ids", limits.max_ids, 33)?;
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                list.push(Announcement {
                    id: MessageId(r.array32()?),
                    hops: r.u8()?,
                });
            }
            Message::IHave(list)
        }
        GRAFT => {
            let flags = r.flags(0b11)?;
            let id = if flags & 1 != 0 {
                Some(MessageId(r.array32()?))
            } else {
                None
            };
            Message::Graft {
                id,
                join: flags & 2 != 0,
            }
        }
        PRUNE => Message::Prune,
        SUBSCRIPTIONS => Message::Subscriptions(topics(&mut r, limits)?),
        SYNC_REQUEST => Message::SyncRequest(topics(&mut r, limits)?),
        SYNC_IDS => {
            let topic = TopicId(r.array32()?);
            Message::SyncIds {
                topic,
                ids: ids(&mut r, "SyncIds ids", limits)?,
            }
        }
        FETCH => Message::Fetch(ids(&mut r, "Fetch ids", limits)?),
        other => return Err(DecodeError::UnknownKind(other)),
    };
    if r.remaining() > 0 {
        return Err(DecodeError::TrailingBytes(r.remaining()));
    }
    Ok(message)
}

fn peers<P: PeerId>(r: &mut Reader, limits: &Limits) -> Result<Vec<P>, DecodeError> {
    let n = r.count("peers", limits.max_peers, 1)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(P::decode(r)?);
    }
    Ok(out)
}

fn topics(r: &mut Reader, limits: &Limits) -> Result<Vec<TopicId>, DecodeError> {
    let n = r.count("topics", limits.max_topics, 32)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(TopicId(r.array32()?));
    }
    Ok(out)
}

fn ids(
    r: &mut Reader,
    field: &'static str,
    limits: &Limits,
) -> Result<Vec<MessageId>, DecodeError> {
    let n = r.count(field, limits.max_ids, 32)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(MessageId(r.array32()?));
    }
    Ok(out)
}

fn gossip(r: &mut Reader, limits: &Limits) -> Result<Gossip, DecodeError> {
    let id = MessageId(r.array32()?);
    let topic = TopicId(r.array32()?);
    let hops = r.u8()?;
    let repaired = r.flags(1)? != 0;
    let payload = r.rest();
    if payload.len() > limits.max_payload {
        return Err(DecodeError::PayloadTooLarge {
            len: payload.len(),
            max: limits.max_payload,
        });
    }
    Ok(Gossip {
        id,
        topic,
        hops,
        repaired,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use proptest::prelude::*;

    use super::*;

    fn id(b: u8) -> MessageId {
        MessageId([b; 32])
    }

    fn samples() -> Vec<Message<u64>> {
        let g = Gossip {
            id: id(1),
            topic: TopicId([2; 32]),
            hops: 3,
            repaired: true,
            payload: Bytes::from_static(b"hello"),
        };
        vec![
            Message::Join,
            Message::ForwardJoin { peer: 7, ttl: 6 },
            Message::Neighbor {
                high_priority: true,
            },
            Message::NeighborAccept,
            Message::NeighborRefuse,
            Message::Disconnect { alive: false },
            Message::Shuffle {
                origin: 9,
                ttl: 5,
                peers: vec![1, 2, 3],
            },
            Message::ShuffleReply { peers: vec![] },
            Message::Gossip(g.clone()),
            Message::IHave(vec![Announcement { id: id(4), hops: 2 }]),
            Message::Graft {
                id: Some(id(5)),
                join: false,
            },
            Message::Graft {
                id: None,
                join: true,
            },
            Message::Prune,
            Message::Subscriptions(vec![TopicId([6; 32])]),
            Message::SyncRequest(vec![TopicId([6; 32]), TopicId([7; 32])]),
            Message::SyncIds {
                topic: TopicId([8; 32]),
                ids: vec![id(9), id(10)],
            },
            Message::Fetch(vec![id(11)]),
            Message::Fetched(g),
        ]
    }

    #[test]
    fn every_message_kind_round_trips_with_its_encoded_len() {
        for m in samples() {
            let bytes = to_bytes(&m);
            assert_eq!(bytes.len(), encoded_len(&m), "{}", m.kind());
            assert_eq!(decode::<u64>(bytes, &Limits::default()).unwrap(), m);
        }
    }

    #[test]
    fn socket_addr_peers_round_trip_and_a_bad_family_is_typed() {
        let m: Message<SocketAddr> = Message::Shuffle {
            origin: "127.0.0.1:9000".parse().unwrap(),
            ttl: 1,
            peers: vec!["[::1]:80".parse().unwrap()],
        };
        let bytes = to_bytes(&m);
        assert_eq!(bytes.len(), encoded_len(&m));
        assert_eq!(decode::<SocketAddr>(bytes, &Limits::default()).unwrap(), m);
        let bad = Bytes::from_static(&[FORWARD_JOIN, 5, 0, 0]);
        assert_eq!(
            decode::<SocketAddr>(bad, &Limits::default()),
            Err(DecodeError::InvalidPeer(5))
        );
    }

    #[test]
    fn bad_frames_give_typed_errors() {
        let l = Limits::default();
        assert_eq!(decode::<u64>(Bytes::new(), &l), Err(DecodeError::Empty));
        assert_eq!(
            decode::<u64>(Bytes::from_static(&[99]), &l),
            Err(DecodeError::UnknownKind(99))
        );
        assert_eq!(
            decode::<u64>(Bytes::from_static(&[NEIGHBOR, 2]), &l),
            Err(DecodeError::InvalidFlag(2))
        );
        assert_eq!(
            decode::<u64>(Bytes::from_static(&[GRAFT, 4]), &l),
            Err(DecodeError::InvalidFlag(4))
        );
        assert_eq!(
            decode::<u64>(Bytes::from_static(&[PRUNE, 0]), &l),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            decode::<u64>(Bytes::from_static(&[FORWARD_JOIN, 0, 0]), &l),
            Err(DecodeError::Truncated { needed: 6 })
        );
        // A count above the limit is refused before anything is read or allocated for it.
        let small = Limits {
            max_ids: 2,
            ..Limits::default()
        };
        assert_eq!(
            decode::<u64>(Bytes::from_static(&[FETCH, 0, 3]), &small),
            Err(DecodeError::TooMany {
                field: "Fetch ids",
                count: 3,
                max: 2
            })
        );
        // A count the frame cannot hold is refused before allocating.
        assert_eq!(
            decode::<u64>(Bytes::from_static(&[FETCH, 0, 2, 1]), &l),
            Err(DecodeError::Truncated { needed: 63 })
        );
        let mut big = BytesMut::new();
        encode::<u64>(
            &Message::Gossip(Gossip {
                id: id(1),
                topic: TopicId::default(),
                hops: 0,
                repaired: false,
                payload: Bytes::from(vec![0; 11]),
            }),
            &mut big,
        );
        let tiny = Limits {
            max_payload: 10,
            ..Limits::default()
        };
        assert_eq!(
            decode::<u64>(big.freeze(), &tiny),
            Err(DecodeError::PayloadTooLarge { len: 11, max: 10 })
        );
    }

    #[test]
    fn a_decoded_payload_is_a_slice_of_the_frame() {
        let m: Message<u64> = samples().swap_remove(8);
        let frame = to_bytes(&m);
        let Message::Gossip(g) = decode::<u64>(frame.clone(), &Limits::default()).unwrap() else {
            panic!("not gossip");
        };
        let start = frame.as_ptr() as usize + GOSSIP_OVERHEAD;
        assert_eq!(g.payload.as_ptr() as usize, start);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<u64>(Bytes::from(data.clone()), &Limits::default());
            let _ = decode::<SocketAddr>(Bytes::from(data), &Limits::default());
        }

        #[test]
        fn gossip_round_trips(id in any::<[u8; 32]>(), topic in any::<[u8; 32]>(), hops in any::<u8>(),
                              repaired in any::<bool>(),
                              payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let m: Message<[u8; 32]> = Message::Gossip(Gossip {
                id: MessageId(id), topic: TopicId(topic), hops, repaired, payload: Bytes::from(payload),
            });
            prop_assert_eq!(decode::<[u8; 32]>(to_bytes(&m), &Limits::default()).unwrap(), m);
        }

        #[test]
        fn id_lists_round_trip(ids in proptest::collection::vec(any::<[u8; 32]>(), 0..40),
                               peers in proptest::collection::vec(any::<u64>(), 0..40)) {
            let ids: Vec<MessageId> = ids.into_iter().map(MessageId).collect();
            for m in [
                Message::Fetch(ids.clone()),
                Message::SyncIds { topic: TopicId([1; 32]), ids: ids.clone() },
                Message::IHave(ids.iter().map(|&id| Announcement { id, hops: 1 }).collect()),
                Message::ShuffleReply { peers: peers.clone() },
            ] {
                let bytes = to_bytes(&m);
                prop_assert_eq!(bytes.len(), encoded_len(&m));
                prop_assert_eq!(decode::<u64>(bytes, &Limits::default()).unwrap(), m);
            }
        }
    }
}
