//! The wire model: [`MessageType`], [`Header`], [`AuthFields`], [`Body`] and [`Message`].
//!
//! Pure functions from bytes to values and back. No I/O, no async. A frame is
//!
//! ```text
//! type u8 | auth_len u16 BE | body_len u16 BE | crc32(body) u32 BE | auth block | uri_len u16 BE | uri | content
//! ```
//!
//! Decoding slices the input [`Bytes`]: the uri, the content and the auth values share the frame's
//! buffer; nothing is copied.

mod auth_fields;
mod body;
mod error;
mod header;
mod types;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

pub use auth_fields::{AuthFields, AuthFieldsCodec, BoundedPostcardCodec, PostcardCodec};
pub use body::Body;
pub use error::{DecodeError, EncodeError};
pub use header::Header;
pub use types::{MessageType, ReservedMessageType, names};

/// The largest uri + content, in bytes (the Python library's limit: 65,536 − 9 − 105).
pub const MAX_URI_AND_CONTENT: usize = 65_422;

/// The largest auth block, in bytes (the `u16` in the header).
pub const MAX_AUTH_BLOCK: usize = u16::MAX as usize;

/// The most auth fields the bundled codecs ([`PostcardCodec`] and, with `python-compat`,
/// `PackifyCodec`) decode: a block that declares more is refused with
/// [`DecodeError::TooManyAuthFields`] before any field is decoded, so that a frame of thousands of
/// tiny fields costs no more than a valid one. [`PostcardCodec::with_max_fields`] sets another
/// limit.
///
/// The most a message of this library carries is 15: per plugin layer (the instance plugins and
/// the inner plugins of a handler or call) an auth plugin adds at most 4 (`Ed25519Auth`: `ts`,
/// `nonce`, `sig`, `kid`; `HmacAuth`: 3; `HashcashAuth`: 2) and a cipher 1 (`iv` or `xnonce`),
/// so 10 for two layers, plus the request id `rid`, the reply reference `rref`, the at-most-once
/// mark `once`, and on UDP the cookie `ck` and the padding `pad`.
pub const DEFAULT_MAX_AUTH_FIELDS: usize = 32;

/// The largest possible frame: header, the largest auth block and the largest body.
pub const MAX_FRAME: usize = Header::LEN + MAX_AUTH_BLOCK + 2 + MAX_URI_AND_CONTENT;

/// Names of the auth fields this library itself puts on the wire.
pub mod fields {
    /// The request id a client puts on a request (big-endian unsigned integer, 1 to 8 bytes).
    pub const REQUEST_ID: &str = "rid";
    /// The reply reference: a reply carries the request id of the request it answers.
    pub const REPLY_REF: &str = "rref";
    /// On a request: the caller may re-send it with the same request id, so the responder should
    /// run it at most once and answer the copies from its cache. The value is how long the
    /// caller may still re-send it, in milliseconds (big-endian unsigned integer, 1 to 8 bytes);
    /// the responder keeps the reply that long, within its own bound.
    pub const AT_MOST_ONCE: &str = "once";
    /// A UDP node's return-routability cookie: in its challenge (a NOT_PERMITTED reply), and
    /// echoed by the caller in the request sent again (see [`UdpNode`](crate::udp::UdpNode)).
    pub const COOKIE: &str = "ck";
    /// Padding a UDP caller adds to a request too small to be answered by a challenge (any
    /// bytes; the receiver removes the field).
    pub const PADDING: &str = "pad";
}

/// A message: type, auth fields and body.
///
/// Build one with the helpers ([`Message::respond`], [`Message::ok`], [`Message::error`], …) or
/// [`Message::new`]; encode it with [`Message::encode`] and decode with [`Message::decode`].
///
/// ```
/// use netaio::{Message, MessageType};
/// use netaio::message::PostcardCodec;
///
/// let msg = Message::new(MessageType::REQUEST_URI, "echo", "hello");
/// let frame = msg.to_bytes(&PostcardCodec).unwrap();
/// assert_eq!(&frame[..], b"\x00\x00\x00\x00\x0b\x9b\x35\x9c\xb3\x00\x04echohello");
/// assert_eq!(Message::decode(frame, &PostcardCodec).unwrap(), msg);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The message type.
    pub message_type: MessageType,
    /// The auth block's fields.
    pub auth: AuthFields,
    /// The uri and content.
    pub body: Body,
}

impl Message {
    /// A message with no auth fields.
    pub fn new(
        message_type: MessageType,
        uri: impl Into<Bytes>,
        content: impl Into<Bytes>,
    ) -> Self {
        Self {
            message_type,
            auth: AuthFields::new(),
            body: Body::new(uri, content),
        }
    }

    /// RESPOND_URI with the given uri and content (Python `make_respond_uri_msg`).
    pub fn respond(uri: impl Into<Bytes>, content: impl Into<Bytes>) -> Self {
        Self::new(MessageType::RESPOND_URI, uri, content)
    }

    /// OK with the given uri and content (Python `make_ok_msg`).
    pub fn ok(uri: impl Into<Bytes>, content: impl Into<Bytes>) -> Self {
        Self::new(MessageType::OK, uri, content)
    }

    /// An ERROR reply with uri `ERROR` and the text as content, whatever the text says. For another
    /// error type use [`ErrorReply`](crate::router::ErrorReply) (or [`Message::new`]); Python's
    /// `make_error_msg`, which picks the type from the text, is
    /// [`compat::python_error`](crate::compat::python_error).
    ///
    /// ```
    /// use netaio::{Message, MessageType};
    /// assert_eq!(Message::error("boom").message_type, MessageType::ERROR);
    /// assert_eq!(Message::error("user not found").message_type, MessageType::ERROR);
    /// assert_eq!(Message::error("boom").uri().as_ref(), b"ERROR");
    /// ```
    pub fn error(text: impl Into<String>) -> Self {
        Self::new(MessageType::ERROR, "ERROR", text.into())
    }

    /// NOT_FOUND with content `not found` and an empty uri (Python `make_not_found_msg`).
    pub fn not_found() -> Self {
        Self::new(MessageType::NOT_FOUND, Bytes::new(), "not found")
    }

    /// NOT_PERMITTED with content `not permitted` and an empty uri (Python `make_not_permitted_msg`).
    pub fn not_permitted() -> Self {
        Self::new(MessageType::NOT_PERMITTED, Bytes::new(), "not permitted")
    }

    /// The same message with another uri.
    #[must_use]
    pub fn with_uri(mut self, uri: impl Into<Bytes>) -> Self {
        self.body.uri = uri.into();
        self
    }

    /// The same message with another content.
    #[must_use]
    pub fn with_content(mut self, content: impl Into<Bytes>) -> Self {
        self.body.content = content.into();
        self
    }

    /// The uri.
    pub fn uri(&self) -> &Bytes {
        &self.body.uri
    }

    /// The content.
    pub fn content(&self) -> &Bytes {
        &self.body.content
    }

    /// The request id, if the sender set one (see [`fields::REQUEST_ID`]).
    pub fn request_id(&self) -> Option<u64> {
        request_id_in(&self.auth)
    }

    /// Set the request id.
    pub fn set_request_id(&mut self, id: u64) {
        self.auth.insert_static(fields::REQUEST_ID, minimal_be(id));
    }

    /// The reply reference: the request id of the request this message answers.
    pub fn reply_ref(&self) -> Option<u64> {
        reply_ref_in(&self.auth)
    }

    /// Set the reply reference.
    pub fn set_reply_ref(&mut self, id: u64) {
        self.auth.insert_static(fields::REPLY_REF, minimal_be(id));
    }

    /// Mark a request as one its caller may re-send (see [`fields::AT_MOST_ONCE`]) within `for_`.
    pub(crate) fn set_at_most_once(&mut self, for_: std::time::Duration) {
        let ms = u64::try_from(for_.as_millis()).unwrap_or(u64::MAX).max(1);
        self.auth
            .insert_static(fields::AT_MOST_ONCE, minimal_be(ms));
    }

    /// How long the caller of a request marked [`fields::AT_MOST_ONCE`] may re-send it.
    pub(crate) fn at_most_once(&self) -> Option<std::time::Duration> {
        self.auth
            .get(fields::AT_MOST_ONCE)
            .and_then(|v| be_u64(v))
            .map(std::time::Duration::from_millis)
    }

    /// Append the frame to `dst`. Size limits are checked before anything is written; on error `dst`
    /// is left as it was.
    pub fn encode(
        &self,
        codec: &dyn AuthFieldsCodec,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.encode_known(codec, dst, None)
    }

    /// [`encode`](Self::encode), with the body's checksum when the caller already knows it
    /// (a reply whose body is a request's checked body, byte for byte).
    pub(crate) fn encode_known(
        &self,
        codec: &dyn AuthFieldsCodec,
        dst: &mut BytesMut,
        checksum: Option<u32>,
    ) -> Result<(), EncodeError> {
        self.body.check_size()?;
        let start = dst.len();
        dst.reserve(Header::LEN + self.body.encoded_len() + 16 * self.auth.len());
        dst.put_bytes(0, Header::LEN);
        if let Err(e) = codec.encode(&self.auth, dst) {
            dst.truncate(start);
            return Err(e);
        }
        let auth_len = dst.len() - start - Header::LEN;
        if auth_len > MAX_AUTH_BLOCK {
            dst.truncate(start);
            return Err(EncodeError::AuthTooLarge {
                len: auth_len,
                max: MAX_AUTH_BLOCK,
            });
        }
        let body_start = dst.len();
        if let Err(e) = self.body.encode(dst) {
            dst.truncate(start);
            return Err(e);
        }
        let body = dst.get(body_start..).unwrap_or_default();
        let header = Header {
            message_type: self.message_type,
            auth_length: u16::try_from(auth_len).unwrap_or(u16::MAX),
            body_length: u16::try_from(body.len()).unwrap_or(u16::MAX),
            checksum: checksum.unwrap_or_else(|| crc32fast::hash(body)),
        };
        if let Some(h) = dst.get_mut(start..start + Header::LEN) {
            h.copy_from_slice(&header.to_bytes());
        }
        Ok(())
    }

    /// The frame as a new buffer.
    pub fn to_bytes(&self, codec: &dyn AuthFieldsCodec) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        self.encode(codec, &mut buf)?;
        Ok(buf.freeze())
    }

    /// Decode exactly one frame: `frame` must hold the header, the auth block and the body and
    /// nothing more ([`DecodeError::TrailingBytes`] otherwise).
    pub fn decode(frame: Bytes, codec: &dyn AuthFieldsCodec) -> Result<Self, DecodeError> {
        let header = Header::from_bytes(&frame)?;
        let declared = header.frame_len() - Header::LEN;
        let got = frame.len() - Header::LEN;
        if got < declared {
            return Err(DecodeError::Truncated { declared, got });
        }
        if got > declared {
            return Err(DecodeError::TrailingBytes {
                extra: got - declared,
            });
        }
        let auth_end = Header::LEN + usize::from(header.auth_length);
        let auth = frame.slice(Header::LEN..auth_end);
        let body = frame.slice(auth_end..);
        Self::from_parts(header, &auth, body, codec)
    }

    /// Decode a message from a header and its (already split) auth block and body, checking the
    /// lengths, the checksum, the body layout and the auth block, in that order.
    pub fn from_parts(
        header: Header,
        auth: &Bytes,
        body: Bytes,
        codec: &dyn AuthFieldsCodec,
    ) -> Result<Self, DecodeError> {
        let declared = usize::from(header.auth_length) + usize::from(header.body_length);
        if auth.len() != usize::from(header.auth_length)
            || body.len() != usize::from(header.body_length)
        {
            return Err(DecodeError::Truncated {
                declared,
                got: auth.len() + body.len(),
            });
        }
        let actual = crc32fast::hash(&body);
        if actual != header.checksum {
            return Err(DecodeError::Checksum {
                expected: header.checksum,
                actual,
            });
        }
        Self::from_checked_parts(header, auth, body, codec)
    }

    /// [`from_parts`](Self::from_parts) for a body whose checksum the caller has verified
    /// another way (a relayed inner frame, from the envelope's checksum) and whose lengths match
    /// the header: the body layout and the auth block are checked.
    pub(crate) fn from_checked_parts(
        header: Header,
        auth: &Bytes,
        body: Bytes,
        codec: &dyn AuthFieldsCodec,
    ) -> Result<Self, DecodeError> {
        let body = Body::decode(body)?;
        let auth = codec.decode(auth)?;
        Ok(Self {
            message_type: header.message_type,
            auth,
            body,
        })
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("type", &self.message_type)
            .field("uri", &HexPreview(&self.body.uri))
            .field("content", &HexPreview(&self.body.content))
            .field("auth", &self.auth)
            .finish()
    }
}

/// The request id in a set of auth fields.
pub(crate) fn request_id_in(auth: &AuthFields) -> Option<u64> {
    auth.get(fields::REQUEST_ID).and_then(|v| be_u64(v))
}

/// The reply reference in a set of auth fields.
pub(crate) fn reply_ref_in(auth: &AuthFields) -> Option<u64> {
    auth.get(fields::REPLY_REF).and_then(|v| be_u64(v))
}

fn be_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn minimal_be(id: u64) -> Bytes {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8).min(7) as usize;
    Bytes::copy_from_slice(bytes.get(skip..).unwrap_or(&bytes))
}

/// Debug output for byte strings: text when printable, hex otherwise, cut at 64 bytes.
pub(crate) struct HexPreview<'a>(pub &'a [u8]);

impl fmt::Debug for HexPreview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..64).unwrap_or(self.0);
        if shown.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            write!(f, "{:?}", String::from_utf8_lossy(shown))?;
        } else {
            f.write_str("0x")?;
            for b in shown {
                write!(f, "{b:02x}")?;
            }
        }
        if shown.len() < self.0.len() {
            write!(f, "…({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a frame by hand: the header fields as given, then `auth` and `body` verbatim.
    fn raw_frame(t: u8, auth: &[u8], body: &[u8], checksum: u32) -> Bytes {
        let header = Header {
            message_type: MessageType::from_u8(t),
            auth_length: u16::try_from(auth.len()).unwrap(),
            body_length: u16::try_from(body.len()).unwrap(),
            checksum,
        };
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&header.to_bytes());
        buf.extend_from_slice(auth);
        buf.extend_from_slice(body);
        buf.freeze()
    }

    /// A frame with an empty auth block and a correct checksum.
    fn frame_with_body(body: &[u8]) -> Bytes {
        raw_frame(0, b"", body, crc32fast::hash(body))
    }

    fn decode(frame: Bytes) -> Result<Message, DecodeError> {
        Message::decode(frame, &PostcardCodec)
    }

    fn sample_auth() -> AuthFields {
        [
            ("nonce", &b"\x00\x01\x02"[..]),
            ("ts", &b"\x65\x53\xf1\x00"[..]),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn every_named_type_round_trips() {
        assert_eq!(MessageType::ALL_NAMED.len(), 19);
        for &t in MessageType::ALL_NAMED {
            for auth in [AuthFields::new(), sample_auth()] {
                let msg = Message {
                    message_type: t,
                    auth,
                    body: Body::new("some/uri", "some content"),
                };
                let frame = msg.to_bytes(&PostcardCodec).unwrap();
                assert_eq!(frame[0], t.value(), "{t:?}: type byte first");
                assert_eq!(decode(frame).unwrap(), msg, "{t:?}");
            }
        }
    }

    #[test]
    fn custom_and_unassigned_types_decode() {
        const CHAT: MessageType = MessageType::custom(200);
        for t in [
            CHAT,
            MessageType::from_u8(15),
            MessageType::from_u8(99),
            MessageType::from_u8(31),
            MessageType::from_u8(255),
        ] {
            let msg = Message::new(t, "u", "c");
            let back = decode(msg.to_bytes(&PostcardCodec).unwrap()).unwrap();
            assert_eq!(back.message_type, t);
            assert_eq!(back, msg);
        }
        // Every byte value decodes as a type, assigned or not.
        for v in 0..=255u8 {
            let frame = raw_frame(v, b"", b"\x00\x00", crc32fast::hash(b"\x00\x00"));
            assert_eq!(decode(frame).unwrap().message_type.value(), v);
        }
    }

    #[test]
    fn worked_example_from_the_python_spec() {
        // Section 1.8: REQUEST_URI, uri "echo", content "hello".
        let msg = Message::new(MessageType::REQUEST_URI, "echo", "hello");
        let mut body = BytesMut::new();
        msg.body.encode(&mut body).unwrap();
        assert_eq!(&body[..], b"\x00\x04\x65\x63\x68\x6f\x68\x65\x6c\x6c\x6f");
        assert_eq!(crc32fast::hash(&body), 0x9b35_9cb3);

        // Native mode: empty auth block.
        let frame = msg.to_bytes(&PostcardCodec).unwrap();
        let mut expected = vec![0x00, 0x00, 0x00, 0x00, 0x0b, 0x9b, 0x35, 0x9c, 0xb3];
        expected.extend_from_slice(&body);
        assert_eq!(&frame[..], &expected[..]);
        assert_eq!(decode(frame).unwrap(), msg);

        // The Python frame itself (packify's empty dict `4d4000` as the auth block) splits into the
        // same body with a codec that understands that block.
        #[derive(Debug)]
        struct PackifyEmpty;
        impl AuthFieldsCodec for PackifyEmpty {
            fn encode(&self, f: &AuthFields, dst: &mut BytesMut) -> Result<(), EncodeError> {
                assert!(f.is_empty());
                dst.extend_from_slice(b"\x4d\x40\x00");
                Ok(())
            }
            fn decode(&self, block: &Bytes) -> Result<AuthFields, DecodeError> {
                if block.as_ref() == b"\x4d\x40\x00" {
                    Ok(AuthFields::new())
                } else {
                    Err(DecodeError::AuthBlock("not an empty packify dict".into()))
                }
            }
        }
        let python: &[u8] = b"\x00\x00\x03\x00\x0b\x9b\x35\x9c\xb3\x4d\x40\x00\x00\x04echohello";
        assert_eq!(&msg.to_bytes(&PackifyEmpty).unwrap()[..], python);
        assert_eq!(
            Message::decode(Bytes::from_static(python), &PackifyEmpty).unwrap(),
            msg
        );
    }

    #[test]
    fn truncated_header() {
        let frame = Message::ok("u", "c").to_bytes(&PostcardCodec).unwrap();
        for n in 0..Header::LEN {
            assert_eq!(
                decode(frame.slice(..n)),
                Err(DecodeError::TruncatedHeader { got: n })
            );
        }
    }

    #[test]
    fn truncated_frame() {
        let msg = Message {
            auth: sample_auth(),
            ..Message::ok("uri", "content")
        };
        let frame = msg.to_bytes(&PostcardCodec).unwrap();
        let declared = frame.len() - Header::LEN;
        for n in Header::LEN..frame.len() {
            assert_eq!(
                decode(frame.slice(..n)),
                Err(DecodeError::Truncated {
                    declared,
                    got: n - Header::LEN
                })
            );
        }
    }

    #[test]
    fn trailing_bytes() {
        let frame = Message::ok("u", "c").to_bytes(&PostcardCodec).unwrap();
        for extra in [1usize, 2, 100] {
            let mut long = BytesMut::from(&frame[..]);
            long.extend_from_slice(&vec![0u8; extra]);
            assert_eq!(
                decode(long.freeze()),
                Err(DecodeError::TrailingBytes { extra })
            );
        }
    }

    #[test]
    fn checksum_mismatch() {
        let frame = Message::ok("uri", "content")
            .to_bytes(&PostcardCodec)
            .unwrap();
        // Flip one bit in every body byte in turn, and in the checksum itself.
        for i in Header::LEN..frame.len() {
            let mut bad = BytesMut::from(&frame[..]);
            bad[i] ^= 0x01;
            let expected = u32::from_be_bytes(bad[5..9].try_into().unwrap());
            let actual = crc32fast::hash(&bad[Header::LEN..]);
            assert_eq!(
                decode(bad.freeze()),
                Err(DecodeError::Checksum { expected, actual })
            );
        }
        let mut bad = BytesMut::from(&frame[..]);
        bad[8] ^= 0x80;
        assert!(matches!(
            decode(bad.freeze()),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn checksum_is_checked_before_body_and_auth() {
        // A bad auth block, a bad body layout and a wrong checksum: the checksum is reported.
        let frame = raw_frame(0, b"\x01", b"\x00\x09x", 0);
        assert!(matches!(decode(frame), Err(DecodeError::Checksum { .. })));
        // Then the body layout, before the auth block.
        let body = b"\x00\x09x";
        let frame = raw_frame(0, b"\x01", body, crc32fast::hash(body));
        assert!(matches!(decode(frame), Err(DecodeError::UriLength { .. })));
    }

    #[test]
    fn body_too_short() {
        assert_eq!(
            decode(frame_with_body(b"")),
            Err(DecodeError::BodyTooShort { len: 0 })
        );
        assert_eq!(
            decode(frame_with_body(b"\x00")),
            Err(DecodeError::BodyTooShort { len: 1 })
        );
        // Two bytes is the smallest body: empty uri, empty content.
        let msg = decode(frame_with_body(b"\x00\x00")).unwrap();
        assert!(msg.uri().is_empty() && msg.content().is_empty());
    }

    #[test]
    fn uri_length_past_the_body() {
        assert_eq!(
            decode(frame_with_body(b"\x00\x05abcd")),
            Err(DecodeError::UriLength {
                uri_len: 5,
                available: 4
            })
        );
        assert_eq!(
            decode(frame_with_body(b"\xff\xff")),
            Err(DecodeError::UriLength {
                uri_len: 65_535,
                available: 0
            })
        );
        // uri_len == available: all uri, no content.
        let msg = decode(frame_with_body(b"\x00\x04abcd")).unwrap();
        assert_eq!(msg.uri().as_ref(), b"abcd");
        assert!(msg.content().is_empty());
    }

    #[test]
    fn auth_block_errors_are_typed() {
        let body = b"\x00\x00";
        for auth in [&b"\x01"[..], b"\x01\x01\xff\x00", b"\x00\x00", b"\xff"] {
            let frame = raw_frame(0, auth, body, crc32fast::hash(body));
            assert!(
                matches!(decode(frame), Err(DecodeError::AuthBlock(_))),
                "{auth:?}"
            );
        }
    }

    #[test]
    fn body_size_limit_on_encode() {
        let ok = Message::new(MessageType::OK, vec![b'u'; 22], vec![b'c'; 65_400]);
        let frame = ok.to_bytes(&PostcardCodec).unwrap();
        assert_eq!(frame.len(), Header::LEN + 2 + MAX_URI_AND_CONTENT);
        assert_eq!(decode(frame).unwrap(), ok);

        // One byte more, in the uri or in the content.
        for msg in [
            Message::new(MessageType::OK, vec![b'u'; 23], vec![b'c'; 65_400]),
            Message::new(MessageType::OK, vec![b'u'; 22], vec![b'c'; 65_401]),
            Message::new(MessageType::OK, Bytes::new(), vec![b'c'; 65_423]),
        ] {
            let mut dst = BytesMut::from(&b"prefix"[..]);
            assert_eq!(
                msg.encode(&PostcardCodec, &mut dst),
                Err(EncodeError::BodyTooLarge {
                    len: 65_423,
                    max: MAX_URI_AND_CONTENT
                })
            );
            assert_eq!(&dst[..], b"prefix", "dst untouched on error");
        }
    }

    #[test]
    fn auth_size_limit_on_encode() {
        // postcard: count (1) + name length (1) + "k" + value length (3) + value.
        let fits = MAX_AUTH_BLOCK - 6;
        let mut msg = Message::ok("u", "c");
        msg.auth.insert("k", vec![7u8; fits]);
        let frame = msg.to_bytes(&PostcardCodec).unwrap();
        let header = Header::from_bytes(&frame).unwrap();
        assert_eq!(usize::from(header.auth_length), MAX_AUTH_BLOCK);
        assert_eq!(decode(frame).unwrap(), msg);

        msg.auth.insert("k", vec![7u8; fits + 1]);
        let mut dst = BytesMut::from(&b"prefix"[..]);
        assert_eq!(
            msg.encode(&PostcardCodec, &mut dst),
            Err(EncodeError::AuthTooLarge {
                len: MAX_AUTH_BLOCK + 1,
                max: MAX_AUTH_BLOCK
            })
        );
        assert_eq!(&dst[..], b"prefix", "dst untouched on error");
    }

    #[test]
    fn body_size_limit_on_decode() {
        // The header can declare a 65,535-byte body, but uri + content must stay within the limit.
        let mut body = vec![0u8, 3];
        body.extend_from_slice(b"uri");
        body.resize(2 + MAX_URI_AND_CONTENT, b'c');
        assert_eq!(
            decode(frame_with_body(&body)).unwrap().content().len(),
            65_419
        );

        body.push(b'c');
        assert_eq!(
            decode(frame_with_body(&body)),
            Err(DecodeError::BodyTooLarge {
                len: 65_423,
                max: MAX_URI_AND_CONTENT
            })
        );
        body.resize(usize::from(u16::MAX), b'c');
        assert_eq!(
            decode(frame_with_body(&body)),
            Err(DecodeError::BodyTooLarge {
                len: 65_533,
                max: MAX_URI_AND_CONTENT
            })
        );
    }

    #[test]
    fn largest_frame_round_trips() {
        let mut msg = Message::new(MessageType::custom(77), vec![1u8; 100], vec![2u8; 65_322]);
        msg.auth.insert("k", vec![3u8; MAX_AUTH_BLOCK - 6]);
        let frame = msg.to_bytes(&PostcardCodec).unwrap();
        assert_eq!(frame.len(), MAX_FRAME);
        assert_eq!(decode(frame).unwrap(), msg);
    }

    #[test]
    fn helpers() {
        let m = Message::respond("u", "c");
        assert_eq!(
            (m.message_type, m.uri().as_ref(), m.content().as_ref()),
            (MessageType::RESPOND_URI, &b"u"[..], &b"c"[..])
        );
        let m = Message::ok("u", "c");
        assert_eq!(
            (m.message_type, m.uri().as_ref(), m.content().as_ref()),
            (MessageType::OK, &b"u"[..], &b"c"[..])
        );
        let m = Message::error("boom");
        assert_eq!(
            (m.message_type, m.uri().as_ref(), m.content().as_ref()),
            (MessageType::ERROR, &b"ERROR"[..], &b"boom"[..])
        );
        let m = Message::not_found();
        assert_eq!(
            (m.message_type, m.uri().as_ref(), m.content().as_ref()),
            (MessageType::NOT_FOUND, &b""[..], &b"not found"[..])
        );
        let m = Message::not_permitted();
        assert_eq!(
            (m.message_type, m.uri().as_ref(), m.content().as_ref()),
            (MessageType::NOT_PERMITTED, &b""[..], &b"not permitted"[..])
        );
        for m in [
            Message::respond("u", "c"),
            Message::ok("u", "c"),
            Message::error("boom"),
            Message::not_found(),
            Message::not_permitted(),
        ] {
            assert!(m.auth.is_empty());
        }
        let m = Message::ok("a", "b").with_uri("x").with_content("y");
        assert_eq!(
            (m.uri().as_ref(), m.content().as_ref()),
            (&b"x"[..], &b"y"[..])
        );
    }

    #[test]
    fn error_is_error_whatever_the_text() {
        // Python's text rule (compat::python_error) would give NOT_FOUND, AUTH_ERROR,
        // NOT_PERMITTED for the first three.
        for text in [
            "user not found",
            "author missing",
            "not permitted",
            "boom",
            "",
        ] {
            let m = Message::error(text);
            assert_eq!(m.message_type, MessageType::ERROR, "{text:?}");
            assert_eq!(m.uri().as_ref(), b"ERROR");
            assert_eq!(m.content().as_ref(), text.as_bytes());
        }
    }

    #[test]
    fn request_id_and_reply_ref_round_trip() {
        let cases: [(u64, &[u8]); 6] = [
            (0, b"\x00"),
            (1, b"\x01"),
            (255, b"\xff"),
            (256, b"\x01\x00"),
            (0x0123_4567_89ab, b"\x01\x23\x45\x67\x89\xab"),
            (u64::MAX, b"\xff\xff\xff\xff\xff\xff\xff\xff"),
        ];
        for (id, wire) in cases {
            let mut m = Message::ok("u", "c");
            assert_eq!((m.request_id(), m.reply_ref()), (None, None));
            m.set_request_id(id);
            m.set_reply_ref(id ^ 1);
            assert_eq!(m.auth.get(fields::REQUEST_ID).unwrap().as_ref(), wire);
            let back = decode(m.to_bytes(&PostcardCodec).unwrap()).unwrap();
            assert_eq!(back.request_id(), Some(id));
            assert_eq!(back.reply_ref(), Some(id ^ 1));
        }
    }

    #[test]
    fn request_id_rejects_empty_and_long_values() {
        let mut m = Message::ok("u", "c");
        for bad in [&b""[..], &[1u8; 9][..], &[0u8; 9][..]] {
            m.auth.insert(fields::REQUEST_ID, bad);
            m.auth.insert(fields::REPLY_REF, bad);
            assert_eq!(m.request_id(), None, "{bad:?}");
            assert_eq!(m.reply_ref(), None, "{bad:?}");
        }
        // Leading zeros are tolerated (a peer need not use the minimal form).
        m.auth.insert(fields::REQUEST_ID, &b"\x00\x00\x01\x00"[..]);
        assert_eq!(m.request_id(), Some(256));
    }

    #[test]
    fn decode_is_zero_copy() {
        let mut msg = Message::new(MessageType::REQUEST_URI, "the/uri", "the content");
        msg.auth.insert("nonce", vec![9u8; 16]);
        let frame = msg.to_bytes(&PostcardCodec).unwrap();
        let range = frame.as_ptr_range();
        let inside = |b: &Bytes| {
            !b.is_empty() && range.contains(&b.as_ptr()) && b.as_ptr_range().end <= range.end
        };
        let back = decode(frame.clone()).unwrap();
        assert!(inside(back.uri()), "uri is a slice of the frame");
        assert!(inside(back.content()), "content is a slice of the frame");
        assert!(
            inside(back.auth.get("nonce").unwrap()),
            "auth value is a slice of the frame"
        );
    }

    #[test]
    fn debug_output_is_readable_and_bounded() {
        let m = Message::new(MessageType::from_u8(15), "echo", vec![0u8; 100]);
        let s = format!("{m:?}");
        assert!(s.contains("MessageType(15)"), "{s}");
        assert!(s.contains("\"echo\""), "{s}");
        assert!(s.contains("…(100 bytes)"), "{s}");
    }
}
