//! The gossip module API's messages and their byte layout.
//!
//! Each message is a 4-byte header `size: u16 | type: u16` (size counts the header; big-endian),
//! then the body; at most 65,535 bytes in all:
//!
//! | type | name | body |
//! |---|---|---|
//! | 500 | GOSSIP ANNOUNCE (module → daemon) | `ttl: u8 \| reserved: u8 \| data_type: u16 \| data` |
//! | 501 | GOSSIP NOTIFY (module → daemon) | `reserved: u16 \| data_type: u16` (size 8) |
//! | 502 | GOSSIP NOTIFICATION (daemon → module) | `message_id: u16 \| data_type: u16 \| data` |
//! | 503 | GOSSIP VALIDATION (module → daemon) | `message_id: u16 \| reserved: 15 bits \| valid: 1 bit` (size 8) |
//!
//! Reserved fields are written as zero and ignored when read. [`check_header`] judges a header
//! before its body is read, so a peer announcing a bad size is refused without reading more.

use bytes::{BufMut, Bytes, BytesMut};

/// GOSSIP ANNOUNCE.
pub const ANNOUNCE: u16 = 500;
/// GOSSIP NOTIFY.
pub const NOTIFY: u16 = 501;
/// GOSSIP NOTIFICATION.
pub const NOTIFICATION: u16 = 502;
/// GOSSIP VALIDATION.
pub const VALIDATION: u16 = 503;
/// Bytes of the header.
pub const HEADER_LEN: usize = 4;
/// The largest message, header included.
pub const MAX_MESSAGE: usize = u16::MAX as usize;
/// The largest `data` of an ANNOUNCE or a NOTIFICATION (the message less its fixed fields).
pub const MAX_DATA: usize = MAX_MESSAGE - HEADER_LEN - 4;

/// One message of the gossip module API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiMessage {
    /// 500: spread `data` of `data_type` to the network (`ttl` hops wanted, 0: unlimited).
    Announce {
        /// Hops wanted (0: unlimited).
        ttl: u8,
        /// The data type.
        data_type: u16,
        /// The data.
        data: Bytes,
    },
    /// 501: subscribe this connection to `data_type`.
    Notify {
        /// The data type.
        data_type: u16,
    },
    /// 502: data of a subscribed type, to validate under `message_id`.
    Notification {
        /// Ties the notification to the module's validation.
        message_id: u16,
        /// The data type.
        data_type: u16,
        /// The data.
        data: Bytes,
    },
    /// 503: the module's verdict on a notification.
    Validation {
        /// The notification's id.
        message_id: u16,
        /// Whether the data is valid.
        valid: bool,
    },
}

/// Why a message was refused: each closes the API connection it came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The size field is below the header's 4 bytes.
    #[error("size {0} is below the 4-byte header")]
    SizeTooSmall(u16),
    /// The type is none of 500-503.
    #[error("unknown message type {0}")]
    UnknownType(u16),
    /// The size does not fit the type's layout.
    #[error("size {size} does not fit message type {kind}")]
    BadSize {
        /// The type.
        kind: u16,
        /// The size given.
        size: u16,
    },
    /// A valid message that does not travel this way (a NOTIFICATION sent to the daemon).
    #[error("message type {0} is not sent by a module")]
    WrongDirection(u16),
    /// A VALIDATION for a message id this connection has no notification waiting for.
    #[error("validation for unknown message id {0}")]
    UnknownMessageId(u16),
}

/// The data is too large for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} bytes of data do not fit one message (at most {MAX_DATA})")]
pub struct TooLarge(pub usize);

/// Checks a header `size | type` before its body is read: the size must fit the type's layout.
/// Returns the body's length.
pub fn check_header(header: [u8; HEADER_LEN]) -> Result<(u16, usize), ApiError> {
    let [s0, s1, t0, t1] = header;
    let size = u16::from_be_bytes([s0, s1]);
    let kind = u16::from_be_bytes([t0, t1]);
    if usize::from(size) < HEADER_LEN {
        return Err(ApiError::SizeTooSmall(size));
    }
    let fits = match kind {
        NOTIFY | VALIDATION => size == 8,
        ANNOUNCE | NOTIFICATION => size >= 8,
        other => return Err(ApiError::UnknownType(other)),
    };
    if !fits {
        return Err(ApiError::BadSize { kind, size });
    }
    Ok((kind, usize::from(size) - HEADER_LEN))
}

impl ApiMessage {
    /// Decodes a body of `kind` whose header passed [`check_header`].
    pub fn decode(kind: u16, body: Bytes) -> Result<Self, ApiError> {
        let size = u16::try_from(body.len() + HEADER_LEN).unwrap_or(u16::MAX);
        let bad = ApiError::BadSize { kind, size };
        let (Some(&a), Some(&b), Some(&c), Some(&d)) =
            (body.first(), body.get(1), body.get(2), body.get(3))
        else {
            return Err(bad);
        };
        let first = u16::from_be_bytes([a, b]);
        let second = u16::from_be_bytes([c, d]);
        Ok(match kind {
            ANNOUNCE => Self::Announce {
                ttl: a,
                data_type: second,
                data: body.slice(4..),
            },
            NOTIFY if body.len() == 4 => Self::Notify { data_type: second },
            NOTIFICATION => Self::Notification {
                message_id: first,
                data_type: second,
                data: body.slice(4..),
            },
            VALIDATION if body.len() == 4 => Self::Validation {
                message_id: first,
                valid: d & 1 == 1,
            },
            NOTIFY | VALIDATION => return Err(bad),
            other => return Err(ApiError::UnknownType(other)),
        })
    }

    /// The message type.
    pub fn kind(&self) -> u16 {
        match self {
            Self::Announce { .. } => ANNOUNCE,
            Self::Notify { .. } => NOTIFY,
            Self::Notification { .. } => NOTIFICATION,
            Self::Validation { .. } => VALIDATION,
        }
    }

    /// Bytes of the encoded message, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + 4
            + match self {
                Self::Announce { data, .. } | Self::Notification { data, .. } => data.len(),
                Self::Notify { .. } | Self::Validation { .. } => 0,
            }
    }

    /// Appends the encoded message (header and body).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), TooLarge> {
        let len = self.encoded_len();
        let size = u16::try_from(len).map_err(|_| TooLarge(len - HEADER_LEN - 4))?;
        out.reserve(len);
        out.put_u16(size);
        out.put_u16(self.kind());
        match self {
            Self::Announce {
                ttl,
                data_type,
                data,
            } => {
                out.put_u8(*ttl);
                out.put_u8(0);
                out.put_u16(*data_type);
                out.put_slice(data);
            }
            Self::Notify { data_type } => {
                out.put_u16(0);
                out.put_u16(*data_type);
            }
            Self::Notification {
                message_id,
                data_type,
                data,
            } => {
                out.put_u16(*message_id);
                out.put_u16(*data_type);
                out.put_slice(data);
            }
            Self::Validation { message_id, valid } => {
                out.put_u16(*message_id);
                out.put_u16(u16::from(*valid));
            }
        }
        Ok(())
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Result<Bytes, TooLarge> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }
}

/// Reads one message from `reader`: `Ok(None)` at a clean end of stream (between messages).
pub async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<ApiMessage>, ReadError> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; HEADER_LEN];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    }
    let (kind, body_len) = check_header(header)?;
    let mut body = BytesMut::zeroed(body_len);
    reader.read_exact(&mut body).await.map_err(ReadError::Io)?;
    Ok(Some(ApiMessage::decode(kind, body.freeze())?))
}

/// Why [`read_message`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The connection failed (or ended inside a message).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The message is malformed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn round_trip(m: ApiMessage) -> Bytes {
        let bytes = m.to_bytes().unwrap();
        assert_eq!(bytes.len(), m.encoded_len());
        let (kind, len) = check_header(bytes[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(ApiMessage::decode(kind, bytes.slice(4..)).unwrap(), m);
        bytes
    }

    #[test]
    fn byte_layouts_round_trip() {
        let announce = ApiMessage::Announce {
            ttl: 3,
            data_type: 0x0102,
            data: Bytes::from_static(b"hi"),
        };
        assert_eq!(
            &round_trip(announce)[..],
            [0, 10, 0x01, 0xf4, 3, 0, 1, 2, b'h', b'i']
        );
        let notify = ApiMessage::Notify { data_type: 7 };
        assert_eq!(&round_trip(notify)[..], [0, 8, 0x01, 0xf5, 0, 0, 0, 7]);
        let notification = ApiMessage::Notification {
            message_id: 0xabcd,
            data_type: 1,
            data: Bytes::from_static(b"x"),
        };
        assert_eq!(
            &round_trip(notification)[..],
            [0, 9, 0x01, 0xf6, 0xab, 0xcd, 0, 1, b'x']
        );
        for (valid, last) in [(true, 1), (false, 0)] {
            let v = ApiMessage::Validation {
                message_id: 0x1234,
                valid,
            };
            assert_eq!(&round_trip(v)[..], [0, 8, 0x01, 0xf7, 0x12, 0x34, 0, last]);
        }
    }

    #[test]
    fn reserved_bits_are_ignored_and_valid_is_the_lowest_bit() {
        let body = Bytes::from_static(&[0, 9, 0xff, 0xfe]);
        assert_eq!(
            ApiMessage::decode(VALIDATION, body).unwrap(),
            ApiMessage::Validation {
                message_id: 9,
                valid: false
            }
        );
        let body = Bytes::from_static(&[0, 9, 0x80, 0x01]);
        assert!(matches!(
            ApiMessage::decode(VALIDATION, body).unwrap(),
            ApiMessage::Validation { valid: true, .. }
        ));
        let announce = Bytes::from_static(&[0, 0xff, 0, 5]);
        assert!(matches!(
            ApiMessage::decode(ANNOUNCE, announce).unwrap(),
            ApiMessage::Announce { ttl: 0, data_type: 5, ref data } if data.is_empty()
        ));
    }

    #[test]
    fn bad_headers_give_typed_errors() {
        assert_eq!(
            check_header([0, 3, 1, 0xf4]),
            Err(ApiError::SizeTooSmall(3))
        );
        assert_eq!(
            check_header([0, 8, 1, 0xf8]),
            Err(ApiError::UnknownType(504))
        );
        assert_eq!(
            check_header([0, 9, 1, 0xf5]),
            Err(ApiError::BadSize { kind: 501, size: 9 })
        );
        assert_eq!(
            check_header([0, 7, 1, 0xf7]),
            Err(ApiError::BadSize { kind: 503, size: 7 })
        );
        assert_eq!(
            check_header([0, 7, 1, 0xf4]),
            Err(ApiError::BadSize { kind: 500, size: 7 })
        );
        assert_eq!(check_header([0xff, 0xff, 1, 0xf4]), Ok((500, 65_531)));
    }

    #[test]
    fn data_beyond_one_message_is_refused() {
        let m = ApiMessage::Announce {
            ttl: 0,
            data_type: 1,
            data: Bytes::from(vec![0; MAX_DATA + 1]),
        };
        assert_eq!(m.to_bytes(), Err(TooLarge(MAX_DATA + 1)));
        let m = ApiMessage::Announce {
            ttl: 0,
            data_type: 1,
            data: Bytes::from(vec![0; MAX_DATA]),
        };
        assert_eq!(m.to_bytes().unwrap().len(), MAX_MESSAGE);
    }
}
