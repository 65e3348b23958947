//! Errors of the wire model: [`DecodeError`] and [`EncodeError`].

/// Every way a frame can be wrong. Returned by decoding; never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a 9-byte header.
    #[error("truncated header: {got} of 9 bytes")]
    TruncatedHeader {
        /// Bytes available.
        got: usize,
    },
    /// The header declares more auth and body bytes than the frame holds.
    #[error("truncated frame: header declares {declared} bytes after the header, {got} present")]
    Truncated {
        /// auth_length + body_length from the header.
        declared: usize,
        /// Bytes present after the header.
        got: usize,
    },
    /// Bytes follow the frame the header describes (a datagram or buffer must hold exactly one frame).
    #[error("{extra} trailing bytes after the frame")]
    TrailingBytes {
        /// How many bytes follow the frame.
        extra: usize,
    },
    /// The frame is larger than the configured maximum frame size.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The declared frame length (header included).
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The CRC-32 in the header does not match the body.
    #[error("checksum mismatch: header says {expected:#010x}, body has {actual:#010x}")]
    Checksum {
        /// The checksum in the header.
        expected: u32,
        /// The CRC-32 of the body as received.
        actual: u32,
    },
    /// The body is shorter than its 2-byte uri length.
    #[error("body of {len} bytes is shorter than the 2-byte uri length")]
    BodyTooShort {
        /// The body length.
        len: usize,
    },
    /// The uri length runs past the end of the body.
    #[error("uri length {uri_len} exceeds the {available} bytes left in the body")]
    UriLength {
        /// The declared uri length.
        uri_len: usize,
        /// Bytes left in the body after the uri length.
        available: usize,
    },
    /// uri + content is larger than [`MAX_URI_AND_CONTENT`](crate::message::MAX_URI_AND_CONTENT).
    #[error("uri + content of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// uri + content length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The auth block could not be decoded by the auth-fields codec.
    #[error("invalid auth block: {0}")]
    AuthBlock(String),
    /// The auth block declares more fields than the codec's limit (by default
    /// [`DEFAULT_MAX_AUTH_FIELDS`](crate::message::DEFAULT_MAX_AUTH_FIELDS)). Refused as soon as
    /// the count is read, before any field is decoded.
    #[error("auth block declares {count} fields, more than the limit of {max}")]
    TooManyAuthFields {
        /// The number of fields the block declares.
        count: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Why a message cannot be encoded. Checked before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// uri + content is larger than [`MAX_URI_AND_CONTENT`](crate::message::MAX_URI_AND_CONTENT).
    #[error("uri + content of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// uri + content length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded auth block is larger than 65,535 bytes.
    #[error("auth block of {len} bytes exceeds the limit of {max}")]
    AuthTooLarge {
        /// The encoded auth block length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded frame is larger than the limit set on the transport.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The auth-fields codec refused the fields.
    #[error("auth fields cannot be encoded: {0}")]
    AuthFields(String),
}
