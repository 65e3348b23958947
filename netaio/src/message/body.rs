//! [`Body`]: the uri and the content of a message.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, EncodeError, MAX_URI_AND_CONTENT};

/// The body of a message: `uri_len u16 BE | uri | content` on the wire. Both parts are opaque bytes;
/// routing compares uris as exact bytes.
///
/// ```
/// use netaio::message::Body;
///
/// let body = Body::new("echo", "hello");
/// let mut buf = bytes::BytesMut::new();
/// body.encode(&mut buf).unwrap();
/// assert_eq!(&buf[..], b"\x00\x04echohello");
/// assert_eq!(Body::decode(buf.freeze()).unwrap(), body);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Body {
    /// The uri (routing key), opaque bytes.
    pub uri: Bytes,
    /// The content, opaque bytes.
    pub content: Bytes,
}

impl Body {
    /// A body from a uri and a content.
    pub fn new(uri: impl Into<Bytes>, content: impl Into<Bytes>) -> Self {
        Self {
            uri: uri.into(),
            content: content.into(),
        }
    }

    /// The encoded length: 2 + uri + content.
    pub fn encoded_len(&self) -> usize {
        2 + self.uri.len() + self.content.len()
    }

    /// Check the size limit (uri + content ≤ [`MAX_URI_AND_CONTENT`]).
    pub fn check_size(&self) -> Result<(), EncodeError> {
        let len = self.uri.len() + self.content.len();
        if len > MAX_URI_AND_CONTENT {
            return Err(EncodeError::BodyTooLarge {
                len,
                max: MAX_URI_AND_CONTENT,
            });
        }
        Ok(())
    }

    /// Append the encoded body to `dst`, after checking the size limit.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.check_size()?;
        dst.reserve(self.encoded_len());
        // check_size bounds uri.len() far below u16::MAX.
        dst.put_u16(u16::try_from(self.uri.len()).unwrap_or(u16::MAX));
        dst.extend_from_slice(&self.uri);
        dst.extend_from_slice(&self.content);
        Ok(())
    }

    /// Whether this body, encoded, is `encoded` byte for byte because its uri and content are
    /// the very slices of `encoded` that [`decode`](Self::decode) makes (an echoed request's
    /// body): a comparison of addresses and lengths, not of bytes. `encoded` being borrowed, the
    /// memory cannot have been reused in between.
    pub(crate) fn is_encoding_of(&self, encoded: &[u8]) -> bool {
        let (uri, content) = (self.uri.len(), self.content.len());
        let Ok(uri_len) = u16::try_from(uri) else {
            return false;
        };
        encoded.len() == 2 + uri + content
            && encoded.get(..2) == Some(&uri_len.to_be_bytes()[..])
            && encoded.get(2..).map(<[u8]>::as_ptr) == Some(self.uri.as_ptr())
            && encoded.get(2 + uri..).map(<[u8]>::as_ptr) == Some(self.content.as_ptr())
    }

    /// Decode an encoded body; the uri and content are slices of `src`.
    pub fn decode(src: Bytes) -> Result<Self, DecodeError> {
        let Some(&[hi, lo]) = src.first_chunk::<2>() else {
            return Err(DecodeError::BodyTooShort { len: src.len() });
        };
        let uri_len = usize::from(u16::from_be_bytes([hi, lo]));
        let available = src.len() - 2;
        if uri_len > available {
            return Err(DecodeError::UriLength { uri_len, available });
        }
        if available > MAX_URI_AND_CONTENT {
            return Err(DecodeError::BodyTooLarge {
                len: available,
                max: MAX_URI_AND_CONTENT,
            });
        }
        Ok(Self {
            uri: src.slice(2..2 + uri_len),
            content: src.slice(2 + uri_len..),
        })
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("uri", &super::HexPreview(&self.uri))
            .field("content", &super::HexPreview(&self.content))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_encoding_of_only_the_decoded_slices_themselves() {
        let wire = Bytes::from_static(b"\x00\x04echohello");
        let body = Body::decode(wire.clone()).unwrap();
        assert!(body.is_encoding_of(&wire));
        // The same bytes elsewhere are not recognised (addresses are compared, not bytes).
        assert!(!Body::new("echo", "hello").is_encoding_of(&wire));
        // The same slices split differently, or a part of them, are not the encoding.
        let resplit = Body {
            uri: wire.slice(2..5),
            content: wire.slice(5..),
        };
        assert!(!resplit.is_encoding_of(&wire));
        let shorter = Body {
            uri: body.uri.clone(),
            content: body.content.slice(..4),
        };
        assert!(!shorter.is_encoding_of(&wire));
    }
}
