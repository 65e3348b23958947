//! The identifiers of the data model: [`TopicId`], [`ContentId`], [`BulletinId`], all SHA-256
//! digests as in the Python `gossip` library.

use std::fmt;

use sha2::{Digest, Sha256};

/// The descriptor of the topic every node follows by default (Python's `b'node beacon channel'`).
pub const BEACON_DESCRIPTOR: &[u8] = b"node beacon channel";

macro_rules! digest_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        /// Lower-case hex of the 32 bytes.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        /// The first 4 bytes in hex (as Python's `format_address`), enough to tell ids apart
        /// in logs.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let short = self.0.get(..4).map(hex::encode).unwrap_or_default();
                write!(f, "{}({short}…)", stringify!($name))
            }
        }
    };
}

digest_id!(
    /// A topic: `SHA-256(descriptor)` (Python's `Topic.from_descriptor`). Bulletins are published
    /// to a topic, and nodes subscribe to topics.
    ///
    /// ```
    /// use netaio_gossip::TopicId;
    /// let weather = TopicId::from_descriptor(b"weather");
    /// assert_eq!(weather, TopicId::from_descriptor(b"weather"));
    /// assert_ne!(weather, TopicId::beacon());
    /// ```
    TopicId
);

digest_id!(
    /// A content: `SHA-256(content)` (Python's `Content.from_content`).
    ContentId
);

digest_id!(
    /// One bulletin: `SHA-256` of its 72-byte header. Two bulletins with the same content differ
    /// by timestamp or nonce, so publishing the same content twice gives two ids. (Python uses the
    /// header as a bulletin's identity too: `hash(get_header())`.)
    BulletinId
);

impl TopicId {
    /// The topic of `descriptor`.
    pub fn from_descriptor(descriptor: &[u8]) -> Self {
        Self(Sha256::digest(descriptor).into())
    }

    /// The "node beacon channel" topic, which every node follows by default.
    pub fn beacon() -> Self {
        Self::from_descriptor(BEACON_DESCRIPTOR)
    }

    /// A node's private delivery topic: `SHA-256(delivery_code ‖ address)` (Python's
    /// `Topic.from_descriptor(delivery_code + address)`). Whoever knows both can publish to it.
    ///
    /// ```
    /// use netaio_gossip::TopicId;
    /// let topic = TopicId::delivery(b"\x01\x02\x03\x04\x05\x06\x07\x08", &[7u8; 32]);
    /// let mut descriptor = b"\x01\x02\x03\x04\x05\x06\x07\x08".to_vec();
    /// descriptor.extend_from_slice(&[7u8; 32]);
    /// assert_eq!(topic, TopicId::from_descriptor(&descriptor));
    /// ```
    pub fn delivery(delivery_code: &[u8], address: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(delivery_code);
        h.update(address);
        Self(h.finalize().into())
    }
}

impl ContentId {
    /// The id of `content`.
    pub fn of(content: &[u8]) -> Self {
        Self(Sha256::digest(content).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From the Python `gossip` library (commit 09077e3): `Topic.from_descriptor(b'node beacon
    /// channel')` and a `Node`'s topics with address `bytes(range(32))` and delivery code
    /// `01..08`.
    #[test]
    fn topics_match_python() {
        assert_eq!(
            TopicId::beacon().to_string(),
            "e1f2dec91e2405540f00893946b634d85e0227c40dd70dc38fcf8ec6ff9e9b94"
        );
        let address: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            TopicId::delivery(&[1, 2, 3, 4, 5, 6, 7, 8], &address).to_string(),
            "6b3b5d67c9d9ef71b94b1e81b88a4761ef4ca4cff5bb0030a485825229d1f135"
        );
    }

    #[test]
    fn content_id_is_sha256_and_formats() {
        // SHA-256 of the empty string.
        let empty = ContentId::of(b"");
        assert_eq!(
            empty.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(format!("{empty:?}"), "ContentId(e3b0c442…)");
        assert_eq!(ContentId::from(*empty.as_bytes()), empty);
        assert_eq!(empty.as_ref(), empty.as_bytes());
    }
}
