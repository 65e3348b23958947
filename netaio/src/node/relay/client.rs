//! The I/O-free parts of a relay's client, whatever carries it (a TCP connection to the relay,
//! a UDP node sending to its address): the answer to a reservation ([`ReserveError`]), and the
//! inner frame of a delivered envelope, decoded and checked.

use bytes::Bytes;

use super::envelope::shift;
use super::{COMBINE_FROM, RelayAddress, RelayLimits, RelayRefusal, is_relay_type};
use crate::codec::{Frame, FrameCodec};
use crate::error::RequestError;
use crate::message::Header;
use crate::{Message, MessageType};

/// Why a reservation ([`Connection::reserve`](crate::Connection::reserve),
/// [`UdpHandle::reserve`](crate::UdpHandle::reserve)) was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReserveError {
    /// The relay refused it (reservation limit, rate, the id held by another peer).
    #[error(transparent)]
    Refused(RelayRefusal),
    /// The request failed (not connected, timeout, an error reply that is not the relay's).
    #[error(transparent)]
    Request(RequestError),
    /// The answer is not a reservation's (the node is not a relay, or not this version).
    #[error("the answer is not a relay reservation")]
    NotARelay,
}

/// The `RESERVE` of `peer_id` with `proof` as its content.
pub(crate) fn reserve_message(peer_id: Bytes, proof: Bytes) -> Message {
    Message::new(super::RESERVE, peer_id, proof)
}

/// The outcome of a reservation's call.
pub(crate) fn reservation(
    answer: Result<Message, RequestError>,
) -> Result<RelayLimits, ReserveError> {
    match answer {
        Ok(reply) if reply.message_type == MessageType::OK => {
            RelayLimits::decode(reply.content()).ok_or(ReserveError::NotARelay)
        }
        Ok(_) => Err(ReserveError::NotARelay),
        Err(e) => match RelayRefusal::from_error(&e) {
            Some(r) => Err(ReserveError::Refused(r)),
            None => Err(ReserveError::Request(e)),
        },
    }
}

/// The sender and the inner frame of a `DELIVER` (`env`, opened with the instance plugins).
/// `checksum`: the envelope's verified checksum when no plugin rewrote it (the inner frame's
/// checksum is then checked from it, not computed again for a large frame). `None` (logged) for
/// an envelope without a sender address, or whose inner frame is invalid or itself a relay
/// message.
pub(crate) fn delivered_inner(
    codec: &FrameCodec,
    env: &Message,
    checksum: Option<u32>,
) -> Option<(RelayAddress, Message)> {
    let Some(from) = RelayAddress::decode_bytes(env.uri()) else {
        tracing::warn!("relay envelope without a sender address dropped");
        return None;
    };
    let known = checksum
        .filter(|_| env.content().len() >= COMBINE_FROM)
        .map(|c| Known::of_envelope(c, env.uri()));
    match decode_frame(codec, env.content(), known) {
        Some(m) if !is_relay_type(m.message_type.value()) => Some((from, m)),
        _ => {
            tracing::warn!("relay envelope with an invalid or nested inner frame dropped");
            None
        }
    }
}

/// A verified CRC over `prefix ‖ frame`, where `frame` is an inner frame to check: the CRC of
/// the frame's body follows from it and the CRC of `prefix ‖ frame head` by one shift (a
/// `combine`, a few thousand instructions), without hashing the body again.
struct Known {
    /// The CRC of `prefix ‖ frame`.
    whole: u32,
    /// The prefix hashed.
    prefix: crc32fast::Hasher,
}

impl Known {
    /// For the inner frame of a `DELIVER` with this `uri`, from the envelope's verified
    /// `checksum` (of its body, `uri length ‖ uri ‖ inner frame`).
    fn of_envelope(checksum: u32, uri: &[u8]) -> Self {
        let mut prefix = crc32fast::Hasher::new();
        prefix.update(&u16::try_from(uri.len()).unwrap_or(u16::MAX).to_be_bytes());
        prefix.update(uri);
        Self {
            whole: checksum,
            prefix,
        }
    }

    /// The CRC of the last `body_len` bytes, `head` being the frame's bytes before them.
    fn body_crc(self, head: &[u8], body_len: usize) -> u32 {
        let mut h = self.prefix;
        h.update(head);
        self.whole ^ shift(h.finalize(), body_len)
    }
}

/// One whole frame, decoded; `None` for anything else (a partial frame, trailing bytes, a frame
/// above the codec's limit, a checksum that does not match). The auth block and body are slices
/// of `bytes` (no copy). `known`: a verified CRC covering all of `bytes` (the envelope's); the
/// frame's own checksum is then checked against it without hashing the body again.
fn decode_frame(
    codec: &crate::codec::FrameCodec,
    bytes: &Bytes,
    known: Option<Known>,
) -> Option<Message> {
    let header = Header::from_bytes(bytes).ok()?;
    let len = header.frame_len();
    if len != bytes.len() || len > codec.max_frame() {
        return None;
    }
    let auth_end = Header::LEN + usize::from(header.auth_length);
    let frame = Frame {
        header,
        auth: bytes.slice(Header::LEN..auth_end),
        body: bytes.slice(auth_end..),
    };
    let Some(known) = known else {
        return frame.decode(codec.auth_codec()).ok();
    };
    if known.body_crc(bytes.get(..auth_end)?, frame.body.len()) != header.checksum {
        return None;
    }
    Message::from_checked_parts(header, &frame.auth, frame.body, codec.auth_codec()).ok()
}

/// The record of a delivered frame's sender, for peer-specific plugins: by its id in `peers`
/// (a circuit's sender has none).
pub(crate) fn sender_record(
    from: &RelayAddress,
    peers: &crate::peer::PeerTable,
) -> Option<std::sync::Arc<crate::peer::Peer>> {
    match from {
        RelayAddress::Peer(id) => peers.get(id),
        RelayAddress::Circuit(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inner_frame_decodes_only_whole_and_alone() {
        let codec = FrameCodec::new();
        let msg = Message::new(MessageType::REQUEST_URI, "a", "b");
        let frame = codec.to_frame(&msg).unwrap();
        assert_eq!(
            decode_frame(&codec, &frame, None)
                .unwrap()
                .content()
                .as_ref(),
            b"b"
        );
        assert!(decode_frame(&codec, &frame.slice(..frame.len() - 1), None).is_none());
        let mut two = frame.to_vec();
        two.extend_from_slice(&frame);
        assert!(decode_frame(&codec, &Bytes::from(two), None).is_none());
        assert!(decode_frame(&codec, &Bytes::from_static(b"\x00"), None).is_none());
        let mut bad = frame.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(
            decode_frame(&codec, &Bytes::from(bad), None).is_none(),
            "checksum"
        );
    }

    #[test]
    fn an_inner_frame_is_checked_from_the_envelopes_checksum() {
        use crate::node::relay::{DELIVER, RelayAddress};
        let codec = FrameCodec::new();
        let mut msg = Message::new(MessageType::REQUEST_URI, "echo", vec![0x5a; 60_000]);
        msg.auth.insert("sig", vec![1u8; 64]);
        let inner = codec.to_frame(&msg).unwrap();
        let uri = RelayAddress::Peer(Bytes::from_static(b"node-a")).encode();
        // The envelope's checksum as the recipient's driver verified it.
        let envelope = |inner: &Bytes| {
            let f = codec
                .to_frame(&Message::new(DELIVER, uri.clone(), inner.clone()))
                .unwrap();
            Header::from_bytes(&f).unwrap().checksum
        };
        let known = |checksum| Known::of_envelope(checksum, &uri);
        assert_eq!(
            decode_frame(&codec, &inner, Some(known(envelope(&inner)))),
            Some(msg)
        );
        // A checksum that is not the envelope's is refused.
        assert_eq!(
            decode_frame(&codec, &inner, Some(known(envelope(&inner) ^ 1))),
            None
        );
        // An inner frame altered on the way with the envelope's checksum made anew (a relay
        // that rewrites it): a byte of the body no longer matches the inner checksum; the auth
        // block is not under the checksum (the frame format's, Python's), in both ways alike.
        for (at, refused) in [(inner.len() - 1, true), (Header::LEN + 3, false)] {
            let mut bad = inner.to_vec();
            bad[at] ^= 1;
            let bad = Bytes::from(bad);
            let fast = decode_frame(&codec, &bad, Some(known(envelope(&bad))));
            assert_eq!(fast.is_none(), refused, "byte {at}");
            assert_eq!(fast, decode_frame(&codec, &bad, None), "byte {at}");
        }
    }
}
