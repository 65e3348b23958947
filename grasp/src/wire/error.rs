//! The errors of decoding and encoding GRASP messages.

use super::message::MessageType;

/// Why bytes are not a GRASP message. Every way input can be wrong has its variant; none of them
/// is ever a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the size limit in force (at least `GRASP_DEF_MAX_SIZE`, 2,048
    /// bytes, unless a larger size was agreed).
    #[error("message of {len} bytes is over the limit of {max}")]
    TooLong {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends inside a CBOR item (on a stream: more bytes may complete it), or a length
    /// header claims more than the input holds.
    #[error("truncated CBOR item")]
    Truncated,
    /// Not well-formed CBOR.
    #[error("malformed CBOR{}: {reason}", position.map(|p| format!(" at byte {p}")).unwrap_or_default())]
    Malformed {
        /// Where in the input, when known.
        position: Option<usize>,
        /// What was wrong.
        reason: String,
    },
    /// Arrays, maps and tags nest deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("CBOR nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Bytes follow the one CBOR item a datagram or a value must hold.
    #[error("{extra} bytes after the message")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The item is not an array starting with a message type (an unsigned integer).
    #[error("not a GRASP message (not an array starting with a message type)")]
    NotAMessage,
    /// A message type GRASP does not define. `session_id` is the second item when it is one
    /// (RFC 8990 allows an M_INVALID answer to a unicast message, echoing it).
    #[error("unknown message type {mtype}")]
    UnknownType {
        /// The type number.
        mtype: u64,
        /// The session id, when the message has one.
        session_id: Option<u32>,
    },
    /// A known message type whose contents do not follow RFC 8990's CDDL.
    #[error("invalid {mtype:?} message: {what}")]
    Invalid {
        /// The message type.
        mtype: MessageType,
        /// The session id, when the message has a valid one.
        session_id: Option<u32>,
        /// What is wrong.
        what: &'static str,
    },
}

impl DecodeError {
    /// True when more bytes may complete the message (only [`DecodeError::Truncated`]).
    pub fn is_truncated(&self) -> bool {
        matches!(self, DecodeError::Truncated)
    }
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A [`Value::Integer`](super::Value::Integer) outside CBOR's range (-2^64 to 2^64 - 1).
    #[error("integer {0} is outside CBOR's range")]
    IntegerOutOfRange(i128),
    /// A [`Value::Simple`](super::Value::Simple) of 20 to 31 (those are `false`, `true`, `null`,
    /// `undefined` and reserved values).
    #[error("simple value {0} is reserved")]
    ReservedSimple(u8),
    /// A value nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH) (it could not be decoded).
    #[error("value nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The message breaks RFC 8990's CDDL (a response without a locator, an empty flood, …).
    #[error("cannot encode {mtype:?} message: {what}")]
    Invalid {
        /// The message type.
        mtype: MessageType,
        /// What is wrong.
        what: &'static str,
    },
    /// The encoded message is longer than the size limit in force.
    #[error("message of {len} bytes is over the limit of {max}")]
    TooLong {
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
}
