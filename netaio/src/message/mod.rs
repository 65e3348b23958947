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

pub use auth_fields::{AuthFields, AuthFieldsCodec, PostcardCodec};
pub use body::Body;
pub use error::{DecodeError, EncodeError};
pub use header::Header;
pub use types::{MessageType, ReservedMessageType, names};

/// The largest uri + content, in bytes (the Python library's limit: 65,536 − 9 − 105).
pub const MAX_URI_AND_CONTENT: usize = 65_422;

/// The largest auth block, in bytes (the `u16` in the header).
pub const MAX_AUTH_BLOCK: usize = u16::MAX as usize;

/// The largest possible frame: header, the largest auth block and the largest body.
pub const MAX_FRAME: usize = Header::LEN + MAX_AUTH_BLOCK + 2 + MAX_URI_AND_CONTENT;

/// Names of the auth fields this library itself puts on the wire.
pub mod fields {
    /// The request id a client puts on a request (big-endian unsigned integer, 1 to 8 bytes).
    pub const REQUEST_ID: &str = "rid";
    /// The reply reference: a reply carries the request id of the request it answers.
    pub const REPLY_REF: &str = "rref";
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

    /// An error reply with uri `ERROR`, its type picked from the text as Python's `make_error_msg`
    /// does: "not found" gives NOT_FOUND, else "auth" gives AUTH_ERROR, else "not permitted" gives
    /// NOT_PERMITTED, else ERROR.
    ///
    /// ```
    /// use netaio::{Message, MessageType};
    /// assert_eq!(Message::error("user not found").message_type, MessageType::NOT_FOUND);
    /// assert_eq!(Message::error("auth failed").message_type, MessageType::AUTH_ERROR);
    /// assert_eq!(Message::error("boom").message_type, MessageType::ERROR);
    /// ```
    pub fn error(text: impl Into<String>) -> Self {
        let text = text.into();
        let message_type = Self::error_type_for(&text);
        Self::new(message_type, "ERROR", text)
    }

    /// The error type [`Message::error`] picks for a text (case-sensitive substring match, as in
    /// Python).
    pub fn error_type_for(text: &str) -> MessageType {
        if text.contains("not found") {
            MessageType::NOT_FOUND
        } else if text.contains("auth") {
            MessageType::AUTH_ERROR
        } else if text.contains("not permitted") {
            MessageType::NOT_PERMITTED
        } else {
            MessageType::ERROR
        }
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

    /// Append the frame to `dst`. Size limits are checked before anything is written; on error `dst`
    /// is left as it was.
    pub fn encode(
        &self,
        codec: &dyn AuthFieldsCodec,
        dst: &mut BytesMut,
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
            checksum: crc32fast::hash(body),
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
