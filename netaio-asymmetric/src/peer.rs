//! [`AsymmetricPeerPlugin`]: peer data that carries the public keys.

use bytes::Bytes;
use netaio::peer::{Peer, PeerData};
use netaio::plugin::{PeerError, PeerPlugin, PluginContext, PostcardPeerPlugin};
use sha2::{Digest, Sha256};

use crate::identity::{PublicKeys, key_entry};

/// The peer-data entry holding a node's X25519 public key (32 bytes).
pub const X25519_FIELD: &str = "x25519";

/// The peer-data entry holding a node's Ed25519 public key (32 bytes).
pub const ED25519_FIELD: &str = "ed25519";

/// The default peer plugin of this crate: peer data is the core [`PostcardPeerPlugin`] encoding of
/// a name → bytes map, which must hold the node's public keys under [`X25519_FIELD`] and
/// [`ED25519_FIELD`] (other entries are allowed and kept).
///
/// The encoding is exactly [`PostcardPeerPlugin`]'s, so a node whose transports keep the core
/// default peer plugin still decodes these peers; what this plugin adds is
/// [`validate`](PeerPlugin::validate), which refuses a peer without well-formed keys (absent,
/// not 32 bytes, not a valid Ed25519 point, or of small order on either curve).
///
/// ```
/// use netaio::plugin::PeerPlugin;
/// use netaio_asymmetric::{AsymmetricPeerPlugin, Identity};
///
/// let alice = Identity::generate();
/// let peer = alice.peer("alice").unwrap();
/// assert!(AsymmetricPeerPlugin.validate(&peer).is_ok());
/// assert_eq!(AsymmetricPeerPlugin.public_keys(&peer).unwrap(), alice.public_keys());
///
/// // A peer without keys is refused.
/// let bare = netaio::peer::Peer::new("bob");
/// assert!(AsymmetricPeerPlugin.validate(&bare).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AsymmetricPeerPlugin;

impl AsymmetricPeerPlugin {
    /// The public keys in a peer's data (present and 32 bytes each; not curve-checked, see
    /// [`PublicKeys::check`]).
    pub fn public_keys(&self, peer: &Peer) -> Result<PublicKeys, PeerError> {
        PublicKeys::from_data(&self.decode_data(&peer.data)?)
    }

    /// A peer with this id whose data holds these keys and the entries of `extra`.
    ///
    /// ```
    /// use netaio_asymmetric::{AsymmetricPeerPlugin, Identity};
    ///
    /// let keys = Identity::generate().public_keys();
    /// let peer = AsymmetricPeerPlugin.peer("n1", &keys, Default::default()).unwrap();
    /// assert_eq!(AsymmetricPeerPlugin.public_keys(&peer).unwrap(), keys);
    /// ```
    pub fn peer(
        &self,
        id: impl Into<Bytes>,
        keys: &PublicKeys,
        mut extra: PeerData,
    ) -> Result<Peer, PeerError> {
        keys.insert_into(&mut extra);
        Ok(Peer::new(id).with_data(self.encode_data(&extra)?))
    }
}

impl PeerPlugin for AsymmetricPeerPlugin {
    fn encode_data(&self, data: &PeerData) -> Result<Bytes, PeerError> {
        PostcardPeerPlugin.encode_data(data)
    }

    fn decode_data(&self, data: &Bytes) -> Result<PeerData, PeerError> {
        PostcardPeerPlugin.decode_data(data)
    }

    fn pack(&self, peer: &Peer) -> Result<Bytes, PeerError> {
        PostcardPeerPlugin.pack(peer)
    }

    fn unpack(&self, bytes: &Bytes) -> Result<Peer, PeerError> {
        PostcardPeerPlugin.unpack(bytes)
    }

    fn validate(&self, peer: &Peer) -> Result<(), PeerError> {
        if peer.id.is_empty() {
            return Err(PeerError::Invalid("empty id".into()));
        }
        self.public_keys(peer)?.check()
    }
}

/// The length of a self-certifying peer id ([`peer_id`]).
pub const PEER_ID_LEN: usize = 16;

/// The domain tag of [`peer_id`].
pub const PEER_ID_DOMAIN: &str = "netaio-asymmetric/peer-id/v1";

/// The self-certifying peer id of a pair of public keys: the first [`PEER_ID_LEN`] bytes of
/// `SHA-256(PEER_ID_DOMAIN ‖ Ed25519 key ‖ X25519 key)`. Nobody can advertise an id of this kind
/// with other keys than the ones it was made from (that would take a second preimage of SHA-256
/// truncated to 128 bits), which is what [`SelfCertifyingPeerPlugin`] checks.
///
/// ```
/// use netaio_asymmetric::{peer_id, Identity};
///
/// let id = Identity::from_seed([1; 32]);
/// assert_eq!(peer_id(&id.public_keys()), peer_id(&id.public_keys()));
/// assert_ne!(peer_id(&id.public_keys()), peer_id(&Identity::from_seed([2; 32]).public_keys()));
/// ```
pub fn peer_id(keys: &PublicKeys) -> [u8; PEER_ID_LEN] {
    let digest = Sha256::new()
        .chain_update(PEER_ID_DOMAIN.as_bytes())
        .chain_update(keys.ed25519)
        .chain_update(keys.x25519)
        .finalize();
    let mut id = [0u8; PEER_ID_LEN];
    for (dst, src) in id.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    id
}

/// [`AsymmetricPeerPlugin`] with self-certifying ids: a peer is valid only when its id is
/// [`peer_id`] of the keys in its data ([`Identity::self_certified_peer`](crate::Identity::self_certified_peer)
/// makes such a peer).
///
/// With [`AsymmetricPeerPlugin`] ids are names, so a node that passes the instance auth can
/// advertise a known peer's id with its own keys and replace that peer's keys in everyone's
/// table. With this plugin such an advert fails validation and is refused: a peer's keys can only
/// change together with its id. Same encoding as [`AsymmetricPeerPlugin`].
///
/// ```
/// use netaio::plugin::PeerPlugin;
/// use netaio_asymmetric::{Identity, SelfCertifyingPeerPlugin};
///
/// let alice = Identity::generate();
/// let peer = alice.self_certified_peer().unwrap();
/// assert!(SelfCertifyingPeerPlugin.validate(&peer).is_ok());
///
/// // Mallory advertising Alice's id with her own keys is refused.
/// let mallory = Identity::generate();
/// let impostor = mallory.peer(peer.id.clone()).unwrap();
/// assert!(SelfCertifyingPeerPlugin.validate(&impostor).is_err());
/// // So is a name as id.
/// assert!(SelfCertifyingPeerPlugin.validate(&alice.peer("alice").unwrap()).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SelfCertifyingPeerPlugin;

impl PeerPlugin for SelfCertifyingPeerPlugin {
    fn encode_data(&self, data: &PeerData) -> Result<Bytes, PeerError> {
        AsymmetricPeerPlugin.encode_data(data)
    }

    fn decode_data(&self, data: &Bytes) -> Result<PeerData, PeerError> {
        AsymmetricPeerPlugin.decode_data(data)
    }

    fn pack(&self, peer: &Peer) -> Result<Bytes, PeerError> {
        AsymmetricPeerPlugin.pack(peer)
    }

    fn unpack(&self, bytes: &Bytes) -> Result<Peer, PeerError> {
        AsymmetricPeerPlugin.unpack(bytes)
    }

    fn validate(&self, peer: &Peer) -> Result<(), PeerError> {
        AsymmetricPeerPlugin.validate(peer)?;
        let keys = AsymmetricPeerPlugin.public_keys(peer)?;
        if peer.id.as_ref() != peer_id(&keys).as_slice() {
            return Err(PeerError::Invalid(
                "peer id is not the self-certifying id of its keys".into(),
            ));
        }
        Ok(())
    }
}

/// The remote peer's data, decoded with the context's peer plugin (or, when the context has
/// none, with [`AsymmetricPeerPlugin`]). `None` when the peer is unknown or its data does not
/// decode.
pub(crate) fn remote_data(ctx: &PluginContext<'_>) -> Option<PeerData> {
    let peer = ctx.peer?;
    match ctx.peer_plugin {
        Some(plugin) => plugin.decode_data(&peer.data).ok(),
        None => AsymmetricPeerPlugin.decode_data(&peer.data).ok(),
    }
}

/// One 32-byte public key of the remote peer, when known and well-formed.
pub(crate) fn remote_key(ctx: &PluginContext<'_>, name: &str) -> Option<[u8; 32]> {
    key_entry(&remote_data(ctx)?, name).ok()
}
