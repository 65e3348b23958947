//! [`Bulletin`]: a 72-byte header (topic id, content id, timestamp, nonce) followed by the
//! content, in the Python `gossip` library's byte layout (`struct` format `!32s32sii`).

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::ids::{BulletinId, ContentId, TopicId};

/// The header of a bulletin: what the proof of work covers.
///
/// ```
/// use netaio_gossip::{BulletinHeader, ContentId, TopicId};
/// let header = BulletinHeader {
///     topic: TopicId::from_descriptor(b"weather"),
///     content_id: ContentId::of(b"rain at noon"),
///     timestamp: 1_700_000_000,
///     nonce: 7,
/// };
/// let bytes = header.to_bytes();
/// assert_eq!(bytes.len(), BulletinHeader::LEN);
/// assert_eq!(BulletinHeader::from_bytes(&bytes), header);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BulletinHeader {
    /// The topic it is published to.
    pub topic: TopicId,
    /// `SHA-256` of the content (checked on receipt: see `BulletinPolicy::verify`).
    pub content_id: ContentId,
    /// When it was published, in seconds since the Unix epoch (Python's `int(time())`).
    pub timestamp: i32,
    /// The proof-of-work counter.
    pub nonce: i32,
}

impl BulletinHeader {
    /// Bytes of an encoded header: 32 + 32 + 4 + 4.
    pub const LEN: usize = 72;

    /// topic id ‖ content id ‖ timestamp (big-endian) ‖ nonce (big-endian).
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let mut w = &mut out[..];
        w.put_slice(&self.topic.0);
        w.put_slice(&self.content_id.0);
        w.put_i32(self.timestamp);
        w.put_i32(self.nonce);
        out
    }

    /// The header encoded in `bytes`.
    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> Self {
        let (topic, rest) = bytes.split_at(32);
        let (content_id, rest) = rest.split_at(32);
        let (timestamp, nonce) = rest.split_at(4);
        // The splits are of a fixed-size array, so every conversion below succeeds.
        let array32 = |s: &[u8]| <[u8; 32]>::try_from(s).unwrap_or_default();
        let int = |s: &[u8]| <[u8; 4]>::try_from(s).map_or(0, i32::from_be_bytes);
        Self {
            topic: TopicId(array32(topic)),
            content_id: ContentId(array32(content_id)),
            timestamp: int(timestamp),
            nonce: int(nonce),
        }
    }

    /// The bulletin's id: `SHA-256` of the encoded header.
    pub fn id(&self) -> BulletinId {
        BulletinId(Sha256::digest(self.to_bytes()).into())
    }
}

/// A bulletin could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header.
    #[error("a bulletin needs at least 72 bytes, got {len}")]
    TooShort {
        /// The bytes received.
        len: usize,
    },
}

/// A header and its content, as published and as received. Nothing is checked when one is made
/// or decoded: [`BulletinPolicy::verify`](crate::BulletinPolicy::verify) checks expiry, the
/// proof of work and that the content id is the content's hash.
///
/// ```
/// use netaio_gossip::{Bulletin, BulletinHeader, ContentId, TopicId};
/// let content = bytes::Bytes::from_static(b"rain at noon");
/// let header = BulletinHeader {
///     topic: TopicId::from_descriptor(b"weather"),
///     content_id: ContentId::of(&content),
///     timestamp: 1_700_000_000,
///     nonce: 7,
/// };
/// let bulletin = Bulletin::new(header, content);
/// let wire = bulletin.encode();
/// assert_eq!(wire.len(), 72 + 12);
/// assert_eq!(Bulletin::decode(wire)?, bulletin);
/// assert!(Bulletin::decode(bytes::Bytes::from_static(b"short")).is_err());
/// # Ok::<(), netaio_gossip::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bulletin {
    header: BulletinHeader,
    content: Bytes,
}

impl Bulletin {
    /// A bulletin of `header` and `content` (unchecked).
    pub fn new(header: BulletinHeader, content: impl Into<Bytes>) -> Self {
        Self {
            header,
            content: content.into(),
        }
    }

    /// The header.
    pub fn header(&self) -> &BulletinHeader {
        &self.header
    }

    /// The content.
    pub fn content(&self) -> &Bytes {
        &self.content
    }

    /// The topic (from the header).
    pub fn topic(&self) -> TopicId {
        self.header.topic
    }

    /// The id: `SHA-256` of the header.
    pub fn id(&self) -> BulletinId {
        self.header.id()
    }

    /// Bytes of the encoded bulletin: 72 + the content's length.
    pub fn encoded_len(&self) -> usize {
        BulletinHeader::LEN + self.content.len()
    }

    /// Append the encoding (header, then content) to `buf`.
    pub fn encode_into(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len());
        buf.put_slice(&self.header.to_bytes());
        buf.put_slice(&self.content);
    }

    /// The encoding: header then content (Python's `Bulletin.pack`).
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        buf.freeze()
    }

    /// A bulletin from its encoding (Python's `Bulletin.unpack`); the content shares `bytes`
    /// (no copy). Any length from 72 bytes on decodes: the size limit is the policy's.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let len = bytes.len();
        let header = bytes
            .get(..BulletinHeader::LEN)
            .and_then(|h| <&[u8; BulletinHeader::LEN]>::try_from(h).ok())
            .map(BulletinHeader::from_bytes)
            .ok_or(DecodeError::TooShort { len })?;
        Ok(Self {
            header,
            content: bytes.slice(BulletinHeader::LEN..),
        })
    }

    /// The header and the content.
    pub fn into_parts(self) -> (BulletinHeader, Bytes) {
        (self.header, self.content)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn header_layout_is_struct_format_32s32sii() {
        let header = BulletinHeader {
            topic: TopicId([0xaa; 32]),
            content_id: ContentId([0xbb; 32]),
            timestamp: 0x0102_0304,
            nonce: -2,
        };
        let b = header.to_bytes();
        assert_eq!(&b[..32], &[0xaa; 32]);
        assert_eq!(&b[32..64], &[0xbb; 32]);
        assert_eq!(&b[64..68], &[1, 2, 3, 4]);
        assert_eq!(&b[68..], &[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(BulletinHeader::from_bytes(&b), header);
        assert_eq!(
            header.id(),
            BulletinId(Sha256::digest(b).into()),
            "the id is the header's SHA-256"
        );
    }

    #[test]
    fn decode_needs_a_header() {
        for len in [0, 1, 71] {
            assert_eq!(
                Bulletin::decode(Bytes::from(vec![0u8; len])),
                Err(DecodeError::TooShort { len })
            );
        }
        let empty = Bulletin::decode(Bytes::from(vec![0u8; 72])).unwrap();
        assert!(empty.content().is_empty());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            topic in any::<[u8; 32]>(),
            content in proptest::collection::vec(any::<u8>(), 0..300),
            timestamp in any::<i32>(),
            nonce in any::<i32>(),
        ) {
            let header = BulletinHeader {
                topic: TopicId(topic),
                content_id: ContentId::of(&content),
                timestamp,
                nonce,
            };
            let b = Bulletin::new(header, content.clone());
            let wire = b.encode();
            prop_assert_eq!(wire.len(), b.encoded_len());
            prop_assert_eq!(&wire[72..], &content[..]);
            prop_assert_eq!(Bulletin::decode(wire).unwrap(), b);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let len = bytes.len();
            match Bulletin::decode(Bytes::from(bytes)) {
                Ok(b) => prop_assert_eq!(b.encoded_len(), len),
                Err(DecodeError::TooShort { len: l }) => prop_assert!(l < 72 && l == len),
            }
        }
    }
}
