//! The handshake on a new connection: the dialer says which node it is (the address it listens
//! on, its public keys when the swarm uses them) and the listener answers the same about itself.
//! Both check what they are told before any protocol message passes.
//!
//! Wire form of a hello (the content of a `REQUEST_URI` / `RESPOND_URI` on [`HELLO_URI`]):
//!
//! | field | bytes |
//! |---|---|
//! | version | 1 (`1`) |
//! | listening address | a [`PeerId`](crate::proto::PeerId) `SocketAddr`: `4` ‖ IPv4 ‖ port, or `6` ‖ IPv6 ‖ port |
//! | flags | 1 (bit 0: public keys follow) |
//! | X25519 key, Ed25519 key | 32 + 32, with flag bit 0 |
//!
//! [`HELLO_URI`]: super::HELLO_URI

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use netaio::peer::Peer;
use netaio::plugin::PeerError;
use netaio_asymmetric::{AsymmetricPeerPlugin, PublicKeys};

use crate::proto::wire::Reader;
use crate::proto::{DecodeError, PeerId};

const VERSION: u8 = 1;
const HAS_KEYS: u8 = 1;

/// Why a hello was refused (the connection then carries no protocol message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The hello does not decode.
    #[error("malformed hello: {0}")]
    Malformed(#[from] DecodeError),
    /// A version this node does not speak.
    #[error("hello version {0}, this node speaks 1")]
    Version(u8),
    /// The node claims an address with no IP (0.0.0.0 or ::): nobody could dial it.
    #[error("the peer claims the unspecified address {0}")]
    Unspecified(SocketAddr),
    /// The claimed address's IP is not the one the connection comes from (someone claiming
    /// another node's identity, or a host with several addresses: see
    /// `GossipNodeBuilder::check_source_ip`).
    #[error("the peer claims {claimed} but connects from {from}")]
    SourceMismatch {
        /// The address in the hello.
        claimed: SocketAddr,
        /// Where the connection comes from.
        from: SocketAddr,
    },
    /// The node answering at the address dialed calls itself by another address (bootstrap with
    /// the address it advertises).
    #[error("dialed {dialed}, but the node there calls itself {claimed}")]
    AddressMismatch {
        /// The address dialed.
        dialed: SocketAddr,
        /// The address in its answer.
        claimed: SocketAddr,
    },
    /// The hello claims this node's own address.
    #[error("the peer claims this node's own address {0}")]
    OwnAddress(SocketAddr),
    /// One side uses public keys and the other does not: the swarm's nodes must agree.
    #[error("public keys {}: this node {}", if *.peer_has { "sent" } else { "missing" }, if *.peer_has { "has no identity" } else { "requires them" })]
    KeysMismatch {
        /// Whether the peer sent keys.
        peer_has: bool,
    },
    /// The keys are unusable (a small-order or invalid point).
    #[error("unusable public keys: {0}")]
    BadKeys(PeerError),
    /// The Ed25519 key is not one of the trusted keys.
    #[error("Ed25519 key {0} is not trusted")]
    Untrusted(String),
}

/// What one hello says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) addr: SocketAddr,
    pub(crate) keys: Option<PublicKeys>,
}

impl Hello {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(1 + 19 + 1 + 64);
        out.put_u8(VERSION);
        self.addr.encode(&mut out);
        match &self.keys {
            Some(keys) => {
                out.put_u8(HAS_KEYS);
                out.put_slice(&keys.x25519);
                out.put_slice(&keys.ed25519);
            }
            None => out.put_u8(0),
        }
        out.freeze()
    }

    pub(crate) fn decode(content: Bytes) -> Result<Self, HelloError> {
        let mut r = Reader::new(content);
        let version = r.u8()?;
        if version != VERSION {
            return Err(HelloError::Version(version));
        }
        let addr = SocketAddr::decode(&mut r)?;
        let keys = match r.u8()? {
            0 => None,
            HAS_KEYS => Some(PublicKeys {
                x25519: r.array32()?,
                ed25519: r.array32()?,
            }),
            other => return Err(DecodeError::InvalidFlag(other).into()),
        };
        if r.remaining() > 0 {
            return Err(DecodeError::TrailingBytes(r.remaining()).into());
        }
        Ok(Self { addr, keys })
    }
}

/// One node's side of the handshake: its own hello, and the rules for the peers'.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    me: Hello,
    encoded: Bytes,
    trusted: BTreeSet<[u8; 32]>,
    check_source_ip: bool,
}

impl Handshake {
    pub(crate) fn new(
        me: SocketAddr,
        keys: Option<PublicKeys>,
        trusted: BTreeSet<[u8; 32]>,
        check_source_ip: bool,
    ) -> Self {
        let me = Hello { addr: me, keys };
        Self {
            encoded: me.encode(),
            me,
            trusted,
            check_source_ip,
        }
    }

    /// This node's hello, encoded.
    pub(crate) fn hello(&self) -> Bytes {
        self.encoded.clone()
    }

    /// Checks a hello received on a connection from `source`; the peer's identity (the address it
    /// listens on) and its netaio [`Peer`] (id: that address in its wire form; data: its keys),
    /// recorded on the connection for the plugins.
    pub(crate) fn accept(
        &self,
        content: Bytes,
        source: SocketAddr,
    ) -> Result<(SocketAddr, Peer), HelloError> {
        let hello = Hello::decode(content)?;
        let source_ip = source.ip().to_canonical();
        if self.check_source_ip && hello.addr.ip().to_canonical() != source_ip {
            return Err(HelloError::SourceMismatch {
                claimed: hello.addr,
                from: source,
            });
        }
        let peer = self.check(&hello)?;
        Ok((hello.addr, peer))
    }

    /// Checks the answer of the node dialed at `dialed`; its netaio [`Peer`].
    pub(crate) fn check_reply(
        &self,
        content: Bytes,
        dialed: SocketAddr,
    ) -> Result<Peer, HelloError> {
        let hello = Hello::decode(content)?;
        if hello.addr != dialed {
            return Err(HelloError::AddressMismatch {
                dialed,
                claimed: hello.addr,
            });
        }
        self.check(&hello)
    }

    fn check(&self, hello: &Hello) -> Result<Peer, HelloError> {
        if hello.addr.ip().is_unspecified() {
            return Err(HelloError::Unspecified(hello.addr));
        }
        if hello.addr == self.me.addr {
            return Err(HelloError::OwnAddress(hello.addr));
        }
        let id = peer_id(hello.addr);
        match (&self.me.keys, &hello.keys) {
            (None, None) => Ok(Peer::new(id)),
            (Some(_), Some(keys)) => {
                keys.check().map_err(HelloError::BadKeys)?;
                if !self.trusted.is_empty() && !self.trusted.contains(&keys.ed25519) {
                    return Err(HelloError::Untrusted(hex::encode(keys.ed25519)));
                }
                AsymmetricPeerPlugin
                    .peer(id, keys, Default::default())
                    .map_err(HelloError::BadKeys)
            }
            (mine, theirs) => {
                debug_assert_ne!(mine.is_some(), theirs.is_some());
                Err(HelloError::KeysMismatch {
                    peer_has: theirs.is_some(),
                })
            }
        }
    }
}

/// The netaio peer id of the node listening at `addr`: the address in its wire form.
pub(crate) fn peer_id(addr: SocketAddr) -> Bytes {
    let mut out = BytesMut::with_capacity(addr.encoded_len());
    addr.encode(&mut out);
    out.freeze()
}

/// The listening address a netaio peer id names.
pub(crate) fn peer_addr(id: &Bytes) -> Option<SocketAddr> {
    let mut r = Reader::new(id.clone());
    SocketAddr::decode(&mut r)
        .ok()
        .filter(|_| r.remaining() == 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use netaio_asymmetric::Identity;

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_and_bad_input() {
        let keys = Identity::from_seed([1; 32]).public_keys();
        for hello in [
            Hello {
                addr: addr("127.0.0.1:7000"),
                keys: None,
            },
            Hello {
                addr: addr("[fd00::1]:7000"),
                keys: Some(keys),
            },
        ] {
            let wire = hello.encode();
            assert_eq!(Hello::decode(wire.clone()).unwrap(), hello);
            // Every truncation is a typed error.
            for n in 0..wire.len() {
                assert!(Hello::decode(wire.slice(..n)).is_err(), "{n} bytes");
            }
            let mut longer = wire.to_vec();
            longer.push(0);
            assert_eq!(
                Hello::decode(longer.into()),
                Err(HelloError::Malformed(DecodeError::TrailingBytes(1)))
            );
        }
        assert_eq!(
            Hello::decode(Bytes::from_static(&[2, 4, 127, 0, 0, 1, 0, 1, 0])),
            Err(HelloError::Version(2))
        );
        assert_eq!(
            Hello::decode(Bytes::from_static(&[1, 4, 127, 0, 0, 1, 0, 1, 2])),
            Err(HelloError::Malformed(DecodeError::InvalidFlag(2)))
        );
        assert_eq!(
            Hello::decode(Bytes::from_static(&[1, 5, 127, 0, 0, 1, 0, 1, 0])),
            Err(HelloError::Malformed(DecodeError::InvalidPeer(5)))
        );
    }

    #[test]
    fn listener_checks_source_self_and_keys() {
        let me = addr("10.0.0.1:7000");
        let plain = Handshake::new(me, None, BTreeSet::new(), true);
        let hello = |a: &str, keys| {
            Hello {
                addr: addr(a),
                keys,
            }
            .encode()
        };
        let (who, peer) = plain
            .accept(hello("10.0.0.2:7000", None), addr("10.0.0.2:40000"))
            .unwrap();
        assert_eq!(who, addr("10.0.0.2:7000"));
        assert_eq!(peer_addr(&peer.id), Some(who));
        // An IPv4 peer seen through a dual-stack socket.
        plain
            .accept(
                hello("10.0.0.2:7000", None),
                addr("[::ffff:10.0.0.2]:40000"),
            )
            .unwrap();
        assert!(matches!(
            plain.accept(hello("10.0.0.3:7000", None), addr("10.0.0.2:40000")),
            Err(HelloError::SourceMismatch { .. })
        ));
        let lenient = Handshake::new(me, None, BTreeSet::new(), false);
        lenient
            .accept(hello("10.0.0.3:7000", None), addr("10.0.0.2:40000"))
            .unwrap();
        assert_eq!(
            lenient.accept(hello("0.0.0.0:7000", None), addr("10.0.0.2:1")),
            Err(HelloError::Unspecified(addr("0.0.0.0:7000")))
        );
        assert_eq!(
            plain.accept(hello("10.0.0.1:7000", None), addr("10.0.0.1:1")),
            Err(HelloError::OwnAddress(me))
        );

        let (alice, bob, eve) = (
            Identity::generate().public_keys(),
            Identity::generate().public_keys(),
            Identity::generate().public_keys(),
        );
        let keyed = Handshake::new(me, Some(alice), BTreeSet::new(), true);
        let source = addr("10.0.0.2:1");
        let (_, peer) = keyed
            .accept(hello("10.0.0.2:7000", Some(bob)), source)
            .unwrap();
        assert_eq!(AsymmetricPeerPlugin.public_keys(&peer).unwrap(), bob);
        assert_eq!(
            keyed.accept(hello("10.0.0.2:7000", None), source),
            Err(HelloError::KeysMismatch { peer_has: false })
        );
        assert_eq!(
            plain.accept(hello("10.0.0.2:7000", Some(bob)), source),
            Err(HelloError::KeysMismatch { peer_has: true })
        );
        let small_order = PublicKeys {
            x25519: [0; 32],
            ..bob
        };
        assert!(matches!(
            keyed.accept(hello("10.0.0.2:7000", Some(small_order)), source),
            Err(HelloError::BadKeys(_))
        ));
        let closed = Handshake::new(me, Some(alice), BTreeSet::from([bob.ed25519]), true);
        closed
            .accept(hello("10.0.0.2:7000", Some(bob)), source)
            .unwrap();
        assert!(matches!(
            closed.accept(hello("10.0.0.2:7000", Some(eve)), source),
            Err(HelloError::Untrusted(_))
        ));
    }

    #[test]
    fn dialer_checks_the_answer_names_the_address_dialed() {
        let me = addr("127.0.0.1:7000");
        let h = Handshake::new(me, None, BTreeSet::new(), true);
        let theirs = Hello {
            addr: addr("127.0.0.1:7001"),
            keys: None,
        }
        .encode();
        let peer = h
            .check_reply(theirs.clone(), addr("127.0.0.1:7001"))
            .unwrap();
        assert_eq!(peer_addr(&peer.id), Some(addr("127.0.0.1:7001")));
        assert_eq!(
            h.check_reply(theirs, addr("10.0.0.9:7001")),
            Err(HelloError::AddressMismatch {
                dialed: addr("10.0.0.9:7001"),
                claimed: addr("127.0.0.1:7001"),
            })
        );
        assert_eq!(peer_addr(&Bytes::from_static(b"xyz")), None);
    }
}
