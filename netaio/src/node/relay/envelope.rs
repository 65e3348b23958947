//! Envelope frames built around their inner frame in one buffer: the bytes of
//! `encode(Message::new(FORWARD, uri, encode(inner)))`, without the intermediate frame and its
//! copy, and with the envelope's checksum derived from the inner frame's (CRC-32 combines), not
//! computed over the inner frame a second time. At 60 kB the copy and the second checksum were
//! most of a relayed call's cost on the sending side.
//!
//! The relay's side: a `DELIVER` as a head (header, auth block, uri) to write before the inner
//! frame as it was received ([`deliver_head`]), the inner frame neither decoded nor copied.
//!
//! Only for an envelope no plugin rewrites (the node has no instance plugins): a plugin seals a
//! [`Message`], so with one the envelope is built the plain way.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DELIVER, RelayAddress};
use crate::Message;
use crate::codec::FrameCodec;
use crate::message::{AuthFields, EncodeError, Header, MAX_AUTH_BLOCK, MAX_URI_AND_CONTENT};

/// Below this many bytes, hashing them costs fewer instructions than the CRC-32 arithmetic
/// (`combine`, about 200 instructions per bit of the length) that avoids hashing them: 64-byte
/// calls measured 8,500 instructions more with it.
pub(crate) const COMBINE_FROM: usize = 16 * 1024;

/// [`deliver_head_known`] without the `FORWARD`'s checksum: hashed over `inner`.
pub(crate) fn deliver_head(
    codec: &FrameCodec,
    from: &RelayAddress,
    inner: &[u8],
) -> Result<Bytes, EncodeError> {
    deliver_head_known(codec, from, inner, None)
}

/// `crc` moved past `len` more bytes: with `a`'s CRC, the term of `crc(a ‖ b)` that is not
/// `crc(b)` (CRC-32 is linear: `crc(a ‖ b) = shift(crc(a), len b) ⊕ crc(b)`, and `shift` is
/// linear in `crc`).
pub(crate) fn shift(crc: u32, len: usize) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial_len(crc, 0);
    h.combine(&crc32fast::Hasher::new_with_initial_len(0, len as u64));
    h.finalize()
}

/// The verified checksum of a `FORWARD`'s body (`uri length ‖ uri ‖ inner frame`) and the CRC of
/// its `uri length ‖ uri`: with them the checksum of the `DELIVER` of the same inner frame
/// follows without hashing the inner frame again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ForwardCrc {
    /// The checksum of the `FORWARD`'s body.
    pub(crate) body: u32,
    /// The CRC of the `FORWARD`'s `uri length ‖ uri`.
    pub(crate) prefix: u32,
}

impl ForwardCrc {
    /// For a `FORWARD` whose body's verified checksum is `checksum` and whose uri is `uri`.
    pub(crate) fn new(checksum: u32, uri: &[u8]) -> Self {
        let mut prefix = crc32fast::Hasher::new();
        prefix.update(&u16::try_from(uri.len()).unwrap_or(u16::MAX).to_be_bytes());
        prefix.update(uri);
        Self {
            body: checksum,
            prefix: prefix.finalize(),
        }
    }
}

/// The head of the `DELIVER` of `inner` from `from`: `head ‖ inner` are the bytes of encoding
/// `Message::new(DELIVER, from.encode(), inner)`, with the same limits checked. The checksum is
/// computed over `inner` where it lies, or, for a large inner frame, derived from `forward`
/// (the checksum of the `FORWARD` it came in): the two bodies differ only in their uri, so
/// `crc(deliver) = crc(forward) ⊕ shift(crc(forward's prefix) ⊕ crc(deliver's prefix), len)`,
/// one `combine` (a few thousand instructions) instead of hashing the inner frame (about 27,000
/// at 60 kB).
pub(crate) fn deliver_head_known(
    codec: &FrameCodec,
    from: &RelayAddress,
    inner: &[u8],
    forward: Option<ForwardCrc>,
) -> Result<Bytes, EncodeError> {
    let uri_len = from.encoded_len();
    let len = uri_len + inner.len();
    if len > MAX_URI_AND_CONTENT {
        return Err(EncodeError::BodyTooLarge {
            len,
            max: MAX_URI_AND_CONTENT,
        });
    }
    let mut head = BytesMut::with_capacity(Header::LEN + 4 + uri_len);
    head.put_bytes(0, Header::LEN);
    codec
        .auth_codec()
        .encode(&AuthFields::default(), &mut head)?;
    let auth_len = head.len() - Header::LEN;
    let body_start = head.len();
    let frame_len = body_start + 2 + len;
    if frame_len > codec.max_frame() {
        return Err(EncodeError::FrameTooLarge {
            len: frame_len,
            max: codec.max_frame(),
        });
    }
    // Below MAX_URI_AND_CONTENT, both fit a u16.
    head.put_u16(u16::try_from(uri_len).unwrap_or(u16::MAX));
    from.encode_into(&mut head);
    let prefix = head.get(body_start..).unwrap_or_default();
    let checksum = match forward.filter(|_| inner.len() >= COMBINE_FROM) {
        Some(f) => f.body ^ shift(f.prefix ^ crc32fast::hash(prefix), inner.len()),
        None => {
            let mut crc = crc32fast::Hasher::new();
            crc.update(prefix);
            crc.update(inner);
            crc.finalize()
        }
    };
    let header = Header {
        message_type: DELIVER,
        auth_length: u16::try_from(auth_len).unwrap_or(u16::MAX),
        body_length: u16::try_from(2 + len).unwrap_or(u16::MAX),
        checksum,
    };
    if let Some(h) = head.get_mut(..Header::LEN) {
        h.copy_from_slice(&header.to_bytes());
    }
    Ok(head.freeze())
}

/// The frame of `env` (its content empty) with the frame of `inner` as its content, in one buffer.
/// The limits checked are those of encoding the two in turn (the inner frame's, then the
/// envelope's body, auth block and frame size).
pub(crate) fn encode_envelope(
    codec: &FrameCodec,
    env: &Message,
    inner: &Message,
) -> Result<Bytes, EncodeError> {
    let mut dst = BytesMut::new();
    encode_envelope_into(codec, env, inner, &mut dst)?;
    Ok(dst.freeze())
}

/// [`encode_envelope`] appended to `dst` (a connection's write buffer); on error `dst` is left as
/// it was.
pub(crate) fn encode_envelope_into(
    codec: &FrameCodec,
    env: &Message,
    inner: &Message,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = dst.len();
    let result = append(codec, env, inner, dst, start);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

fn append(
    codec: &FrameCodec,
    env: &Message,
    inner: &Message,
    dst: &mut BytesMut,
    start: usize,
) -> Result<(), EncodeError> {
    let uri = env.uri();
    let inner_guess = Header::LEN + 2 + inner.uri().len() + inner.content().len();
    dst.reserve(
        2 * Header::LEN + 2 + uri.len() + inner_guess + 16 * (env.auth.len() + inner.auth.len()),
    );
    dst.put_bytes(0, Header::LEN);
    codec.auth_codec().encode(&env.auth, dst)?;
    let auth_len = dst.len() - start - Header::LEN;
    if auth_len > MAX_AUTH_BLOCK {
        return Err(EncodeError::AuthTooLarge {
            len: auth_len,
            max: MAX_AUTH_BLOCK,
        });
    }
    let too_large = |len| EncodeError::BodyTooLarge {
        len,
        max: MAX_URI_AND_CONTENT,
    };
    if uri.len() > MAX_URI_AND_CONTENT {
        return Err(too_large(uri.len()));
    }
    let body_start = dst.len();
    dst.put_u16(u16::try_from(uri.len()).map_err(|_| too_large(uri.len()))?);
    dst.put_slice(uri);
    let inner_start = dst.len();
    codec.encode_message(inner, dst)?;
    let inner_len = dst.len() - inner_start;
    if uri.len() + inner_len > MAX_URI_AND_CONTENT {
        return Err(too_large(uri.len() + inner_len));
    }
    let len = dst.len() - start;
    if len > codec.max_frame() {
        return Err(EncodeError::FrameTooLarge {
            len,
            max: codec.max_frame(),
        });
    }
    // The envelope's body is `uri length ‖ uri ‖ inner header ‖ inner auth ‖ inner body`; the
    // inner encode has just computed the CRC of the inner body (it is in the inner header).
    let checksum = match dst.get(inner_start..).map(Header::from_bytes) {
        Some(Ok(inner)) if usize::from(inner.body_length) >= COMBINE_FROM => {
            let inner_body = inner_start + Header::LEN + usize::from(inner.auth_length);
            let mut crc = crc32fast::Hasher::new();
            crc.update(dst.get(body_start..inner_body).unwrap_or_default());
            crc.combine(&crc32fast::Hasher::new_with_initial_len(
                inner.checksum,
                u64::from(inner.body_length),
            ));
            crc.finalize()
        }
        // A small inner body is hashed again (cheaper).
        _ => crc32fast::hash(dst.get(body_start..).unwrap_or_default()),
    };
    let header = Header {
        message_type: env.message_type,
        auth_length: u16::try_from(auth_len).unwrap_or(u16::MAX),
        body_length: u16::try_from(dst.len() - body_start).unwrap_or(u16::MAX),
        checksum,
    };
    if let Some(h) = dst.get_mut(start..start + Header::LEN) {
        h.copy_from_slice(&header.to_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageType;
    use crate::node::relay::FORWARD;

    /// The envelope the plain way: the inner frame, then the envelope around it.
    fn plain(codec: &FrameCodec, env: &Message, inner: &Message) -> Result<Bytes, EncodeError> {
        let frame = codec.to_frame(inner)?;
        let mut env = env.clone();
        env.body.content = frame;
        codec.to_frame(&env)
    }

    fn envelope(to: &[u8], rid: Option<u64>) -> Message {
        let uri = RelayAddress::Peer(Bytes::copy_from_slice(to)).encode();
        let mut env = Message::new(FORWARD, uri, Bytes::new());
        if let Some(id) = rid {
            env.set_request_id(id);
        }
        env
    }

    #[test]
    fn the_envelope_is_byte_identical_to_the_plain_encoding() {
        let codec = FrameCodec::new();
        for (size, rid) in [
            (0, None),
            (1, Some(7)),
            (64, Some(1 << 40)),
            (60_000, Some(3)),
        ] {
            let mut inner = Message::new(MessageType::REQUEST_URI, "echo", vec![0x5a; size]);
            inner.set_request_id(9);
            inner.auth.insert("sig", vec![1u8; 64]);
            let env = envelope(b"node-c", rid);
            let fast = encode_envelope(&codec, &env, &inner).unwrap();
            assert_eq!(fast, plain(&codec, &env, &inner).unwrap(), "size {size}");
            // And it decodes, checksum included, to the envelope with the inner frame inside.
            let back = Message::decode(fast, codec.auth_codec()).unwrap();
            assert_eq!(back.request_id(), rid);
            let frame = Message::decode(back.content().clone(), codec.auth_codec()).unwrap();
            assert_eq!(frame, inner);
        }
    }

    #[test]
    fn the_limits_are_those_of_the_plain_encoding() {
        // An inner frame that fits alone but not inside the envelope's body.
        let codec = FrameCodec::new();
        let env = envelope(b"c", None);
        let inner = Message::new(
            MessageType::REQUEST_URI,
            "",
            vec![0; MAX_URI_AND_CONTENT - 2],
        );
        let fast = encode_envelope(&codec, &env, &inner);
        assert!(
            matches!(fast, Err(EncodeError::BodyTooLarge { .. })),
            "{fast:?}"
        );
        assert_eq!(fast, plain(&codec, &env, &inner));
        // The codec's frame limit, for the inner frame and for the envelope.
        let small = FrameCodec::new().max_frame_size(100);
        for n in [80, 100] {
            let inner = Message::new(MessageType::REQUEST_URI, "", vec![0; n]);
            let fast = encode_envelope(&small, &env, &inner);
            assert!(
                matches!(fast, Err(EncodeError::FrameTooLarge { .. })),
                "{fast:?}"
            );
            assert_eq!(fast, plain(&small, &env, &inner), "{n}");
            let mut dst = BytesMut::from(&b"prefix"[..]);
            assert!(encode_envelope_into(&small, &env, &inner, &mut dst).is_err());
            assert_eq!(&dst[..], b"prefix", "left as it was");
        }
    }

    #[test]
    fn a_deliver_head_and_the_inner_frame_are_the_plain_deliver() {
        let codec = FrameCodec::new();
        let mut inner = Message::new(MessageType::REQUEST_URI, "echo", vec![7u8; 60_000]);
        inner.auth.insert("sig", vec![9u8; 64]);
        let inner = codec.to_frame(&inner).unwrap();
        for from in [
            RelayAddress::Peer(Bytes::from_static(b"node-a")),
            RelayAddress::Circuit(42),
        ] {
            let head = deliver_head(&codec, &from, &inner).unwrap();
            let mut both = BytesMut::from(&head[..]);
            both.extend_from_slice(&inner);
            let plain = codec
                .to_frame(&Message::new(DELIVER, from.encode(), inner.clone()))
                .unwrap();
            assert_eq!(both.freeze(), plain, "{from:?}");
            // The checksum derived from the FORWARD's (as received: long and short uris) is
            // the same head.
            for to in [&b"c"[..], &[7u8; 300][..]] {
                let to = RelayAddress::Peer(Bytes::copy_from_slice(to)).encode();
                let f = codec
                    .to_frame(&Message::new(FORWARD, to.clone(), inner.clone()))
                    .unwrap();
                let known = ForwardCrc::new(Header::from_bytes(&f).unwrap().checksum, &to);
                assert_eq!(
                    deliver_head_known(&codec, &from, &inner, Some(known)).unwrap(),
                    head,
                    "{from:?}"
                );
            }
        }
        // The limits: a body above the limit, a frame above the codec's.
        let from = RelayAddress::Peer(Bytes::from_static(b"a"));
        let big = vec![0u8; MAX_URI_AND_CONTENT];
        assert!(matches!(
            deliver_head(&codec, &from, &big),
            Err(EncodeError::BodyTooLarge { .. })
        ));
        let small = FrameCodec::new().max_frame_size(100);
        assert!(matches!(
            deliver_head(&small, &from, &[0u8; 90]),
            Err(EncodeError::FrameTooLarge { .. })
        ));
        assert!(deliver_head(&small, &from, &[0u8; 80]).is_ok());
    }

    #[test]
    fn appended_after_other_frames_it_is_the_same_frame() {
        let codec = FrameCodec::new();
        let env = envelope(b"c", Some(5));
        let inner = Message::new(MessageType::RESPOND_URI, "echo", vec![3u8; 1000]);
        let mut dst = BytesMut::from(&b"earlier frames"[..]);
        encode_envelope_into(&codec, &env, &inner, &mut dst).unwrap();
        assert_eq!(&dst[..14], b"earlier frames");
        assert_eq!(&dst[14..], &plain(&codec, &env, &inner).unwrap()[..]);
    }
}
