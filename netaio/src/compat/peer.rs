//! [`PackifyPeerPlugin`]: peer data and packed peers as Python netaio's `DefaultPeerPlugin`.

use bytes::Bytes;

use super::codec::{encode_str_bytes_dict, field_bytes};
use super::packify::{self, Value};
use crate::peer::{Peer, PeerData};
use crate::plugin::{PeerError, PeerPlugin};

/// Peer data and peer adverts as Python netaio's `DefaultPeerPlugin` encodes them:
///
/// - peer data is `packify.pack(dict)`: a dict from `str` to `bytes` (for example
///   `{'pubkey': <32 bytes>}`);
/// - a packed peer (the content of ADVERTISE_PEER, PEER_DISCOVERED and DISCONNECT) is
///   `packify.pack((id, data))`, the data as opaque bytes inside (so it is packed twice); the
///   addresses are not included.
///
/// Decoding is as lenient as Python where it can be: a packed peer may be a tuple or a list of
/// two items, each `bytes` or `None` (`None` becomes empty bytes). Decoded peer data maps values
/// to bytes as [`PackifyCodec`](super::PackifyCodec) does for auth fields (`str` as UTF-8, an
/// `int` up to 2³²−1 as 4 bytes big-endian, other types refused); empty data decodes to an empty
/// map (Python would raise). A peer is packed with its id and data as `bytes`, even when empty,
/// because Python ignores adverts whose id or data is `None`. [`validate`](PeerPlugin::validate)
/// asks only for an id, as Python's.
///
/// ```
/// use bytes::Bytes;
/// use netaio::compat::PackifyPeerPlugin;
/// use netaio::peer::{Peer, PeerData};
/// use netaio::plugin::PeerPlugin;
///
/// let mut data = PeerData::new();
/// data.insert("pubkey".into(), Bytes::from(vec![0xaa; 32]));
/// let encoded = PackifyPeerPlugin.encode_data(&data).unwrap();
/// let peer = Peer::new("peer-id-0001").with_data(encoded);
/// let packed = PackifyPeerPlugin.pack(&peer).unwrap();
/// // Python: packify.pack((b'peer-id-0001', packify.pack({'pubkey': b'\xaa' * 32})))
/// assert_eq!(&packed[..5], b"\x4c\x40\x02\x0e\x35");
/// let back = PackifyPeerPlugin.unpack(&packed).unwrap();
/// assert_eq!(back.id, peer.id);
/// assert_eq!(PackifyPeerPlugin.decode_data(&back.data).unwrap(), data);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PackifyPeerPlugin;

fn malformed(e: impl std::fmt::Display) -> PeerError {
    PeerError::Malformed(e.to_string())
}

/// A packed peer's id or data: `bytes`, or `None` for empty.
fn bytes_or_none(v: &Value, what: &str) -> Result<Bytes, PeerError> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        Value::None => Ok(Bytes::new()),
        other => Err(PeerError::Malformed(format!(
            "peer {what} is a {}, not bytes",
            other.type_name()
        ))),
    }
}

impl PeerPlugin for PackifyPeerPlugin {
    fn encode_data(&self, data: &PeerData) -> Result<Bytes, PeerError> {
        let mut out = Vec::new();
        encode_str_bytes_dict(data.iter().map(|(k, v)| (k.as_str(), v.as_ref())), &mut out)
            .map_err(malformed)?;
        Ok(Bytes::from(out))
    }

    fn decode_data(&self, data: &Bytes) -> Result<PeerData, PeerError> {
        if data.is_empty() {
            return Ok(PeerData::new());
        }
        let value = packify::decode_bytes(data).map_err(malformed)?;
        let Value::Dict(pairs) = value else {
            return Err(PeerError::Malformed(format!(
                "peer data is a {}, not a dict",
                value.type_name()
            )));
        };
        let mut out = PeerData::new();
        for (k, v) in pairs {
            let Value::Str(name) = k else {
                return Err(PeerError::Malformed(format!(
                    "peer data key is a {}, not a str",
                    k.type_name()
                )));
            };
            let bytes = field_bytes(&v)
                .map_err(|why| PeerError::Malformed(format!("peer data {name:?}: {why}")))?;
            out.insert(name, bytes);
        }
        Ok(out)
    }

    fn pack(&self, peer: &Peer) -> Result<Bytes, PeerError> {
        let mut id = Vec::with_capacity(peer.id.len() + 5);
        packify::put_bytes(&mut id, &peer.id).map_err(malformed)?;
        let mut data = Vec::with_capacity(peer.data.len() + 5);
        packify::put_bytes(&mut data, &peer.data).map_err(malformed)?;
        let mut out = Vec::with_capacity(id.len() + data.len() + 12);
        packify::put_container(&mut out, packify::TUPLE, &[id, data]).map_err(malformed)?;
        Ok(Bytes::from(out))
    }

    /// Python's `DefaultPeerPlugin.validate`: a peer needs an id; its data is opaque here (a
    /// Python node may publish values [`decode_data`](PeerPlugin::decode_data) cannot map to
    /// bytes, and it is still a peer).
    fn validate(&self, peer: &Peer) -> Result<(), PeerError> {
        if peer.id.is_empty() {
            return Err(PeerError::Invalid("empty id".into()));
        }
        Ok(())
    }

    fn unpack(&self, bytes: &Bytes) -> Result<Peer, PeerError> {
        let value = packify::decode_bytes(bytes).map_err(malformed)?;
        let [id, data] = value.as_seq().unwrap_or_default() else {
            return Err(PeerError::Malformed(format!(
                "a packed peer is an (id, data) pair, not {value:?}"
            )));
        };
        Ok(Peer::new(bytes_or_none(id, "id")?).with_data(bytes_or_none(data, "data")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: Value) -> Bytes {
        Bytes::from(packify::encode(&v).unwrap())
    }

    #[test]
    fn unpack_accepts_what_python_accepts_for_a_pair() {
        let p = PackifyPeerPlugin;
        let list = enc(Value::List(vec![Value::bytes(&b"id"[..]), Value::None]));
        let peer = p.unpack(&list).unwrap();
        assert_eq!(
            (peer.id.as_ref(), peer.data.as_ref()),
            (&b"id"[..], &b""[..])
        );
        assert!(peer.addrs.is_empty());
        // Not a pair, or not bytes.
        for bad in [
            Value::Tuple(vec![Value::bytes(&b"id"[..])]),
            Value::Tuple(vec![Value::from("id"), Value::None]),
            Value::from(5),
        ] {
            assert!(matches!(p.unpack(&enc(bad)), Err(PeerError::Malformed(_))));
        }
        assert!(p.unpack(&Bytes::from_static(b"\x4c")).is_err());
    }

    #[test]
    fn validation_needs_an_id_only_as_in_python() {
        let p = PackifyPeerPlugin;
        // Data this plugin cannot map (a float inside) still makes a valid peer.
        let odd = Bytes::from_static(
            b"\x4d\x40\x01\x0e\x4c\x40\x02\x03\x09\x43\x01x\x07\x00\x00\x00\x00\x00\x00\x00\x00",
        );
        assert!(p.decode_data(&odd).is_err());
        assert!(p.validate(&Peer::new("py").with_data(odd)).is_ok());
    }

    #[test]
    fn a_peer_without_id_fails_validation() {
        let p = PackifyPeerPlugin;
        let packed = enc(Value::Tuple(vec![
            Value::None,
            Value::bytes(&b"\x4d\x40\x00"[..]),
        ]));
        let peer = p.unpack(&packed).unwrap();
        assert!(matches!(p.validate(&peer), Err(PeerError::Invalid(_))));
        // Empty data packs as b'' (not None) and decodes to an empty map.
        let packed = p.pack(&Peer::new("x")).unwrap();
        assert_eq!(&packed[..], b"\x4c\x40\x02\x03\x02\x41\x01x\x41\x00");
        assert!(p.decode_data(&Bytes::new()).unwrap().is_empty());
        assert!(p.decode_data(&enc(Value::List(vec![]))).is_err());
        assert!(
            p.decode_data(&enc(Value::Dict(vec![(Value::from(1), Value::None)])))
                .is_err()
        );
    }
}
