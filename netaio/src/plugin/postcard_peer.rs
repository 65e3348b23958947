//! [`PostcardPeerPlugin`]: the native peer plugin.

use bytes::Bytes;

use super::*;
use crate::peer::{Peer, PeerData};

/// The native peer plugin: peer data as postcard of a name → bytes map; a packed peer is postcard
/// of `(id, data)`.
///
/// ```
/// use netaio::peer::{Peer, PeerData};
/// use netaio::plugin::{PeerPlugin, PostcardPeerPlugin};
///
/// let mut data = PeerData::new();
/// data.insert("name".into(), bytes::Bytes::from_static(b"alice"));
/// let encoded = PostcardPeerPlugin.encode_data(&data).unwrap();
/// let peer = Peer::new("a1").with_data(encoded);
/// let packed = PostcardPeerPlugin.pack(&peer).unwrap();
/// let back = PostcardPeerPlugin.unpack(&packed).unwrap();
/// assert_eq!(back.id, peer.id);
/// assert_eq!(PostcardPeerPlugin.decode_data(&back.data).unwrap(), data);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PostcardPeerPlugin;

impl PeerPlugin for PostcardPeerPlugin {
    fn encode_data(&self, data: &PeerData) -> Result<Bytes, PeerError> {
        let pairs: Vec<(&str, &[u8])> =
            data.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
        postcard::to_allocvec(&pairs)
            .map(Bytes::from)
            .map_err(|e| PeerError::Malformed(e.to_string()))
    }

    fn decode_data(&self, data: &Bytes) -> Result<PeerData, PeerError> {
        if data.is_empty() {
            return Ok(PeerData::new());
        }
        let pairs: Vec<(&str, &[u8])> =
            postcard::from_bytes(data).map_err(|e| PeerError::Malformed(e.to_string()))?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), data.slice_ref(v)))
            .collect())
    }

    fn pack(&self, peer: &Peer) -> Result<Bytes, PeerError> {
        postcard::to_allocvec(&(peer.id.as_ref(), peer.data.as_ref()))
            .map(Bytes::from)
            .map_err(|e| PeerError::Malformed(e.to_string()))
    }

    fn unpack(&self, bytes: &Bytes) -> Result<Peer, PeerError> {
        let (id, data): (&[u8], &[u8]) =
            postcard::from_bytes(bytes).map_err(|e| PeerError::Malformed(e.to_string()))?;
        Ok(Peer::new(bytes.slice_ref(id)).with_data(bytes.slice_ref(data)))
    }
}
