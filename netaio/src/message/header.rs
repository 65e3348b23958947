//! [`Header`]: the fixed 9-byte frame header.

use super::{DecodeError, MessageType};

/// The 9-byte header of every frame, big-endian: type `u8`, auth length `u16`, body length `u16`,
/// CRC-32 of the body `u32` (the layout of Python netaio, `!BHHI`).
///
/// ```
/// use netaio::message::Header;
/// use netaio::MessageType;
///
/// let h = Header { message_type: MessageType::OK, auth_length: 3, body_length: 2, checksum: 7 };
/// let bytes = h.to_bytes();
/// assert_eq!(bytes, [10, 0, 3, 0, 2, 0, 0, 0, 7]);
/// assert_eq!(Header::from_bytes(&bytes).unwrap(), h);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub message_type: MessageType,
    /// Length of the auth block in bytes.
    pub auth_length: u16,
    /// Length of the body (uri length + uri + content) in bytes.
    pub body_length: u16,
    /// CRC-32 (IEEE) of the body bytes only.
    pub checksum: u32,
}

impl Header {
    /// The size of a header on the wire.
    pub const LEN: usize = 9;

    /// The header as 9 bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let a = self.auth_length.to_be_bytes();
        let b = self.body_length.to_be_bytes();
        let c = self.checksum.to_be_bytes();
        [
            self.message_type.value(),
            a[0],
            a[1],
            b[0],
            b[1],
            c[0],
            c[1],
            c[2],
            c[3],
        ]
    }

    /// Parse the first 9 bytes of `src` (more bytes are allowed and ignored).
    pub fn from_bytes(src: &[u8]) -> Result<Self, DecodeError> {
        match src.first_chunk::<{ Self::LEN }>() {
            Some(&[t, a0, a1, b0, b1, c0, c1, c2, c3]) => Ok(Self {
                message_type: MessageType::from_u8(t),
                auth_length: u16::from_be_bytes([a0, a1]),
                body_length: u16::from_be_bytes([b0, b1]),
                checksum: u32::from_be_bytes([c0, c1, c2, c3]),
            }),
            None => Err(DecodeError::TruncatedHeader { got: src.len() }),
        }
    }

    /// The length of the whole frame this header announces (header included).
    pub fn frame_len(&self) -> usize {
        Self::LEN + usize::from(self.auth_length) + usize::from(self.body_length)
    }
}
