//! [`Identity`] (one seed, two key pairs) and [`PublicKeys`] (what a peer publishes).

use std::fmt;

use bytes::Bytes;
use ed25519_dalek::{SigningKey, VerifyingKey};
use netaio::peer::{Peer, PeerData};
use netaio::plugin::{PeerError, PeerPlugin};
use sha2::{Digest, Sha512};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::peer::{AsymmetricPeerPlugin, ED25519_FIELD, X25519_FIELD};

/// A node's long-term keys, all derived from one 32-byte seed:
///
/// - the Ed25519 signing key is the seed itself (RFC 8032 secret key), used by
///   [`Ed25519Auth`](crate::Ed25519Auth);
/// - the X25519 static secret is `SHA-512(seed)[0..32]`, clamped: the same scalar Ed25519 signs
///   with, and what Python netaio (PyNaCl `to_curve25519_private_key`) derives, so the same seed
///   gives the same X25519 public key in both libraries. Used by
///   [`X25519Cipher`](crate::X25519Cipher).
///
/// Keep the seed secret; it is wiped from memory when the identity is dropped. `Debug` never
/// prints it.
///
/// ```
/// use netaio_asymmetric::Identity;
///
/// // The Python reference vector: seed 32 × 0x01.
/// let id = Identity::from_seed([1; 32]);
/// let keys = id.public_keys();
/// assert_eq!(
///     keys.x25519[..4],
///     [0x1b, 0x1b, 0x58, 0xdd],
/// );
/// // A fresh random identity and its advertised peer.
/// let random = Identity::generate();
/// let peer = random.peer("node-1").unwrap();
/// assert_eq!(netaio_asymmetric::PublicKeys::from_peer(&peer).unwrap(), random.public_keys());
/// ```
#[derive(Clone)]
pub struct Identity {
    seed: Zeroizing<[u8; 32]>,
    signing: SigningKey,
    x25519: StaticSecret,
    x25519_public: X25519Public,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public_keys", &self.public_keys())
            .finish_non_exhaustive()
    }
}

/// `SHA-512(seed)[0..32]` with the X25519 clamping applied (bits 0-2 and 255 cleared, bit 254 set).
fn x25519_scalar(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let digest = Zeroizing::new(<[u8; 64]>::from(Sha512::digest(seed)));
    let mut scalar = Zeroizing::new([0u8; 32]);
    for (dst, src) in scalar.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    let bytes: &mut [u8; 32] = &mut scalar;
    bytes[0] &= 248;
    bytes[31] &= 127;
    bytes[31] |= 64;
    scalar
}

impl Identity {
    /// An identity from a random seed (the thread-local CSPRNG of `rand`, seeded by the OS).
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::fill(&mut seed[..]);
        Self::from_seed(*seed)
    }

    /// The identity of this seed (deterministic: the same seed always gives the same keys).
    ///
    /// ```
    /// use netaio_asymmetric::Identity;
    /// let a = Identity::from_seed([9; 32]);
    /// assert_eq!(Identity::from_seed(*a.seed()).public_keys(), a.public_keys());
    /// ```
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        let signing = SigningKey::from_bytes(&seed);
        let x25519 = StaticSecret::from(*x25519_scalar(&seed));
        let x25519_public = X25519Public::from(&x25519);
        Self {
            seed,
            signing,
            x25519,
            x25519_public,
        }
    }

    /// The seed, to store the identity (keep it secret).
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The public halves: what peers need to encrypt to this node and check its signatures.
    pub fn public_keys(&self) -> PublicKeys {
        PublicKeys {
            x25519: self.x25519_public.to_bytes(),
            ed25519: self.signing.verifying_key().to_bytes(),
        }
    }

    /// The Ed25519 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The X25519 static secret.
    pub fn x25519_secret(&self) -> &StaticSecret {
        &self.x25519
    }

    /// The X25519 public key.
    pub fn x25519_public(&self) -> X25519Public {
        self.x25519_public
    }

    /// This node as a [`Peer`] with this id, its peer data carrying the public keys (encoded by
    /// [`AsymmetricPeerPlugin`]). Set it as the node's local peer, or hand it to the other side.
    ///
    /// ```
    /// use netaio::plugin::PeerPlugin;
    /// use netaio_asymmetric::{AsymmetricPeerPlugin, Identity};
    ///
    /// let peer = Identity::generate().peer("node-7").unwrap();
    /// assert_eq!(peer.id.as_ref(), b"node-7");
    /// assert!(AsymmetricPeerPlugin.validate(&peer).is_ok());
    /// ```
    pub fn peer(&self, id: impl Into<Bytes>) -> Result<Peer, PeerError> {
        self.peer_with(id, PeerData::new())
    }

    /// This identity as a peer whose id is self-certifying ([`peer_id`](crate::peer_id) of
    /// its keys), for nodes that use [`SelfCertifyingPeerPlugin`](crate::SelfCertifyingPeerPlugin).
    ///
    /// ```
    /// use netaio_asymmetric::{peer_id, Identity};
    ///
    /// let me = Identity::generate();
    /// let peer = me.self_certified_peer().unwrap();
    /// assert_eq!(peer.id.as_ref(), peer_id(&me.public_keys()).as_slice());
    /// ```
    pub fn self_certified_peer(&self) -> Result<Peer, PeerError> {
        let id = crate::peer_id(&self.public_keys());
        self.peer(Bytes::copy_from_slice(&id))
    }

    /// [`peer`](Self::peer) with more peer data; the key entries are overwritten with this
    /// identity's keys.
    pub fn peer_with(&self, id: impl Into<Bytes>, mut data: PeerData) -> Result<Peer, PeerError> {
        self.public_keys().insert_into(&mut data);
        Ok(Peer::new(id).with_data(AsymmetricPeerPlugin.encode_data(&data)?))
    }
}

/// A node's two public keys, as carried in its peer data under [`X25519_FIELD`] and
/// [`ED25519_FIELD`].
///
/// ```
/// use netaio::peer::PeerData;
/// use netaio_asymmetric::{Identity, PublicKeys};
///
/// let keys = Identity::generate().public_keys();
/// let mut data = PeerData::new();
/// keys.insert_into(&mut data);
/// assert_eq!(PublicKeys::from_data(&data).unwrap(), keys);
/// assert!(keys.check().is_ok());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeys {
    /// The X25519 public key (Montgomery u-coordinate).
    pub x25519: [u8; 32],
    /// The Ed25519 public key (compressed Edwards point).
    pub ed25519: [u8; 32],
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex without quotes, as the keys are usually written.
        f.debug_struct("PublicKeys")
            .field("x25519", &format_args!("{}", hex::encode(self.x25519)))
            .field("ed25519", &format_args!("{}", hex::encode(self.ed25519)))
            .finish()
    }
}

/// A 32-byte entry of peer data.
pub(crate) fn key_entry(data: &PeerData, name: &str) -> Result<[u8; 32], PeerError> {
    let value = data
        .get(name)
        .ok_or_else(|| PeerError::Invalid(format!("no {name} key in peer data")))?;
    <[u8; 32]>::try_from(value.as_ref()).map_err(|_| {
        PeerError::Invalid(format!("{name} key is {} bytes, expected 32", value.len()))
    })
}

impl PublicKeys {
    /// Read both keys from decoded peer data (each must be present and 32 bytes long; see
    /// [`check`](Self::check) for the curve checks).
    pub fn from_data(data: &PeerData) -> Result<Self, PeerError> {
        Ok(Self {
            x25519: key_entry(data, X25519_FIELD)?,
            ed25519: key_entry(data, ED25519_FIELD)?,
        })
    }

    /// Decode a peer's data with [`AsymmetricPeerPlugin`] and read both keys.
    pub fn from_peer(peer: &Peer) -> Result<Self, PeerError> {
        Self::from_data(&AsymmetricPeerPlugin.decode_data(&peer.data)?)
    }

    /// Write both keys into peer data.
    pub fn insert_into(&self, data: &mut PeerData) {
        data.insert(
            X25519_FIELD.to_owned(),
            Bytes::copy_from_slice(&self.x25519),
        );
        data.insert(
            ED25519_FIELD.to_owned(),
            Bytes::copy_from_slice(&self.ed25519),
        );
    }

    /// Peer data holding just these keys.
    pub fn to_data(&self) -> PeerData {
        let mut data = PeerData::new();
        self.insert_into(&mut data);
        data
    }

    /// The Ed25519 key as a [`VerifyingKey`], if it is a valid point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, PeerError> {
        VerifyingKey::from_bytes(&self.ed25519)
            .map_err(|_| PeerError::Invalid("ed25519 key is not a valid point".into()))
    }

    /// Check that the keys are usable: the Ed25519 key decompresses to a point that is not of
    /// small order (`verify_strict` would refuse every signature under it), and the X25519 key is
    /// not of small order (an ECDH with it would give a shared secret an attacker knows).
    pub fn check(&self) -> Result<(), PeerError> {
        if self.verifying_key()?.is_weak() {
            return Err(PeerError::Invalid("ed25519 key has small order".into()));
        }
        if !x25519_contributory(&self.x25519) {
            return Err(PeerError::Invalid("x25519 key has small order".into()));
        }
        Ok(())
    }
}

/// True when an X25519 public key is not of small order. Clamped scalars are multiples of the
/// cofactor 8, so multiplying a small-order point by any of them gives the identity.
pub(crate) fn x25519_contributory(public: &[u8; 32]) -> bool {
    let probe = StaticSecret::from([0x55; 32]);
    probe
        .diffie_hellman(&X25519Public::from(*public))
        .was_contributory()
}
