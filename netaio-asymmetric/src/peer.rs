//! [`AsymmetricPeerPlugin`]: peer data that carries the public keys.

use bytes::Bytes;
use netaio::peer::{Peer, PeerData};
use netaio::plugin::{PeerError, PeerPlugin, PluginContext, PostcardPeerPlugin};

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
