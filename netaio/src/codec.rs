//! Frame encoding and decoding over byte streams, as `tokio_util::codec` [`Decoder`]s and [`Encoder`]s.
//!
//! Two levels:
//! - [`FrameCodec`] splits a stream into raw [`Frame`]s using only the header's lengths. Its errors
//!   ([`FrameError`]) mean the stream can no longer be trusted (a frame larger than the limit, I/O).
//!   Decoding the frame into a [`Message`] is a separate step ([`Frame::decode`]) whose errors
//!   (checksum, auth block, body layout) concern that frame only, so a transport can answer them and
//!   keep the connection.
//! - [`MessageCodec`] does both and fails on any error, for users who want a simple
//!   `Framed<TcpStream, MessageCodec>`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::message::{
    AuthFieldsCodec, DecodeError, EncodeError, Header, MAX_FRAME, Message, PostcardCodec,
};

/// One frame as read from the stream: the header, and the auth block and body as slices of the
/// read buffer (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The parsed header.
    pub header: Header,
    /// The raw auth block.
    pub auth: Bytes,
    /// The raw body.
    pub body: Bytes,
}

impl Frame {
    /// Check and decode the frame into a message.
    pub fn decode(self, codec: &dyn AuthFieldsCodec) -> Result<Message, DecodeError> {
        Message::from_parts(self.header, &self.auth, self.body, codec)
    }
}

/// Errors that end a stream: after one of these the framing is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A header announced a frame above the limit; the connection should be closed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The underlying stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into [`Frame`]s and writes [`Message`]s as frames.
///
/// Sizes are checked from the header before any buffer grows: a header announcing more than
/// `max_frame_size` bytes is an error and nothing is reserved for it. Frames split across reads are
/// reassembled; several frames in one read come out one by one.
///
/// ```
/// use bytes::BytesMut;
/// use netaio::codec::FrameCodec;
/// use netaio::{Message, MessageType};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = FrameCodec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(Message::new(MessageType::REQUEST_URI, "a", "1"), &mut buf).unwrap();
/// codec.encode(Message::new(MessageType::REQUEST_URI, "b", "2"), &mut buf).unwrap();
/// let first = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(first.decode(codec.auth_codec()).unwrap().uri().as_ref(), b"a");
/// let second = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(second.decode(codec.auth_codec()).unwrap().uri().as_ref(), b"b");
/// assert!(codec.decode(&mut buf).unwrap().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct FrameCodec {
    auth_codec: Arc<dyn AuthFieldsCodec>,
    max_frame_size: usize,
    pending: Option<Header>,
    /// Whether `decode` reserves room for the whole of a pending frame in its buffer (the TCP
    /// driver reads a large one into a buffer of its own instead).
    reserve_large: bool,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameCodec {
    /// A codec with the native auth codec ([`PostcardCodec`]) and the largest possible frame size.
    pub fn new() -> Self {
        Self::with_auth_codec(Arc::new(PostcardCodec))
    }

    /// A codec with the given auth-fields codec.
    pub fn with_auth_codec(auth_codec: Arc<dyn AuthFieldsCodec>) -> Self {
        Self {
            auth_codec,
            max_frame_size: MAX_FRAME,
            pending: None,
            reserve_large: true,
        }
    }

    /// Set the largest accepted frame (header included); larger frames are refused both ways.
    #[must_use]
    pub fn max_frame_size(mut self, max: usize) -> Self {
        self.max_frame_size = max;
        self
    }

    /// The auth-fields codec in use.
    pub fn auth_codec(&self) -> &dyn AuthFieldsCodec {
        &*self.auth_codec
    }

    /// The largest accepted frame.
    pub fn max_frame(&self) -> usize {
        self.max_frame_size
    }

    /// Append `msg` as a frame to `dst`, checking the size limits (the frame size limit included);
    /// on error `dst` is left as it was.
    pub fn encode_message(&self, msg: &Message, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_message_known(msg, dst, None)
    }

    /// [`encode_message`](Self::encode_message) with the body's checksum when it is known
    /// ([`Message::encode_known`]).
    pub(crate) fn encode_message_known(
        &self,
        msg: &Message,
        dst: &mut BytesMut,
        checksum: Option<u32>,
    ) -> Result<(), EncodeError> {
        let start = dst.len();
        msg.encode_known(&*self.auth_codec, dst, checksum)?;
        let len = dst.len() - start;
        if len > self.max_frame_size {
            dst.truncate(start);
            return Err(EncodeError::FrameTooLarge {
                len,
                max: self.max_frame_size,
            });
        }
        Ok(())
    }

    /// `msg` as a new frame buffer.
    pub fn to_frame(&self, msg: &Message) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        self.encode_message(msg, &mut buf)?;
        Ok(buf.freeze())
    }

    /// Leave a large pending frame's room to the caller (see [`FrameCodec::pending_rest`]).
    pub(crate) fn without_large_reserve(mut self) -> Self {
        self.reserve_large = false;
        self
    }

    /// The bytes of the pending frame's auth block and body (the header is read), if one is
    /// pending: a transport may read them into a buffer of their own and hand them to
    /// [`FrameCodec::complete_pending`].
    pub(crate) fn pending_rest(&self) -> Option<usize> {
        self.pending
            .map(|h| usize::from(h.auth_length) + usize::from(h.body_length))
    }

    /// The pending frame from its auth block and body, `rest` (exactly
    /// [`FrameCodec::pending_rest`] bytes), read by the transport outside `decode`'s buffer.
    pub(crate) fn complete_pending(&mut self, mut rest: Bytes) -> Option<Frame> {
        let header = self.pending.take()?;
        let auth = rest.split_to(usize::from(header.auth_length).min(rest.len()));
        Some(Frame {
            header,
            auth,
            body: rest,
        })
    }

    /// True while a frame has been started (header or part of it read) but not completed: the
    /// transports use this to apply the partial-frame read timeout.
    pub fn is_mid_frame(&self, buf: &BytesMut) -> bool {
        self.pending.is_some() || !buf.is_empty()
    }
}

/// Frames whose auth block and body take at least this many bytes are read by the TCP driver into
/// a pooled buffer of their own (smaller ones cost less to read in place than to move).
pub(crate) const LARGE_FRAME: usize = 32 * 1024;

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let header = match self.pending {
            Some(h) => h,
            None => {
                if src.len() < Header::LEN {
                    src.reserve(Header::LEN - src.len());
                    return Ok(None);
                }
                let h = Header::from_bytes(src)?;
                let len = h.frame_len();
                if len > self.max_frame_size {
                    return Err(DecodeError::FrameTooLarge {
                        len,
                        max: self.max_frame_size,
                    }
                    .into());
                }
                let _ = src.split_to(Header::LEN);
                self.pending = Some(h);
                h
            }
        };
        let auth_len = usize::from(header.auth_length);
        let rest = auth_len + usize::from(header.body_length);
        if src.len() < rest {
            // Within the checked limit: reserve once for the whole frame.
            if self.reserve_large || rest < LARGE_FRAME {
                src.reserve(rest - src.len());
            }
            return Ok(None);
        }
        self.pending = None;
        let mut frame = src.split_to(rest).freeze();
        let auth = frame.split_to(auth_len);
        Ok(Some(Frame {
            header,
            auth,
            body: frame,
        }))
    }
}

impl Encoder<Message> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        <Self as Encoder<&Message>>::encode(self, &msg, dst)
    }
}

impl Encoder<&Message> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        Ok(self.encode_message(msg, dst)?)
    }
}

/// A codec that yields decoded [`Message`]s and fails on any bad frame (checksum included).
///
/// ```
/// use bytes::BytesMut;
/// use netaio::codec::MessageCodec;
/// use netaio::{Message, MessageType};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = MessageCodec::default();
/// let mut buf = BytesMut::new();
/// let msg = Message::ok("x", "done");
/// codec.encode(msg.clone(), &mut buf).unwrap();
/// buf[8] ^= 1; // corrupt the checksum
/// assert!(codec.decode(&mut buf).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MessageCodec {
    frames: FrameCodec,
}

impl MessageCodec {
    /// A message codec over the given frame codec.
    pub fn new(frames: FrameCodec) -> Self {
        Self { frames }
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, FrameError> {
        match self.frames.decode(src)? {
            Some(frame) => Ok(Some(frame.decode(self.frames.auth_codec())?)),
            None => Ok(None),
        }
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = FrameError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.frames.encode(&msg, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageType;
    use crate::message::AuthFields;

    fn messages() -> Vec<Message> {
        let mut with_auth = Message::new(MessageType::custom(99), "with/auth", vec![5u8; 300]);
        with_auth.auth = [("nonce", vec![1u8; 16]), ("ts", vec![0, 0, 0, 1])]
            .into_iter()
            .collect::<AuthFields>();
        with_auth.set_request_id(300);
        vec![
            Message::new(MessageType::REQUEST_URI, "echo", "hello"),
            Message::new(MessageType::from_u8(15), "", ""),
            with_auth,
            Message::error("boom"),
        ]
    }

    fn encode_all(codec: &mut FrameCodec, msgs: &[Message]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for m in msgs {
            codec.encode(m, &mut buf).unwrap();
        }
        buf.to_vec()
    }

    #[test]
    fn frames_fed_one_byte_at_a_time_are_reassembled() {
        let mut codec = FrameCodec::new();
        let msgs = messages();
        let wire = encode_all(&mut codec, &msgs);
        let frame_ends: Vec<usize> = msgs
            .iter()
            .scan(0, |end, m| {
                *end += codec.to_frame(m).unwrap().len();
                Some(*end)
            })
            .collect();

        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for (i, byte) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            match codec.decode(&mut buf).unwrap() {
                Some(frame) => {
                    assert!(frame_ends.contains(&(i + 1)), "frame completed at byte {i}");
                    out.push(frame.decode(codec.auth_codec()).unwrap());
                    assert!(!codec.is_mid_frame(&buf), "nothing pending after a frame");
                }
                None => {
                    assert!(!frame_ends.contains(&(i + 1)), "frame missed at byte {i}");
                    assert!(codec.is_mid_frame(&buf), "mid frame after byte {i}");
                }
            }
        }
        assert_eq!(out, msgs);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn frames_split_at_every_boundary_are_reassembled() {
        let mut codec = FrameCodec::new();
        let msgs = messages();
        let wire = encode_all(&mut codec, &msgs);
        for split in 0..=wire.len() {
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(part);
                while let Some(frame) = codec.decode(&mut buf).unwrap() {
                    out.push(frame.decode(codec.auth_codec()).unwrap());
                }
            }
            assert_eq!(out, msgs, "split at {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn several_frames_in_one_buffer_come_out_in_order() {
        let mut codec = MessageCodec::default();
        let msgs = messages();
        let mut buf = BytesMut::new();
        for m in &msgs {
            codec.encode(m.clone(), &mut buf).unwrap();
        }
        let mut out = Vec::new();
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            out.push(m);
            assert!(out.len() <= msgs.len());
        }
        assert_eq!(out, msgs);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_header_is_rejected_before_the_buffer_grows() {
        let mut codec = FrameCodec::new().max_frame_size(1024);
        let header = Header {
            message_type: MessageType::OK,
            auth_length: 0,
            body_length: 60_000,
            checksum: 0,
        };
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&header.to_bytes());
        let capacity = buf.capacity();
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::Decode(DecodeError::FrameTooLarge {
                    len: 60_009,
                    max: 1024
                })
            ),
            "{err:?}"
        );
        assert_eq!(buf.capacity(), capacity, "no reservation for the frame");
        assert!(buf.capacity() < 60_009);

        // A frame exactly at the limit is accepted (and only then is room reserved).
        let mut codec = FrameCodec::new().max_frame_size(1024);
        let header = Header {
            body_length: 1024 - 9,
            ..header
        };
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&header.to_bytes());
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(codec.is_mid_frame(&buf));
        assert!(buf.capacity() >= 1024 - 9);
    }

    #[test]
    fn frame_too_large_counts_the_auth_block() {
        let mut codec = FrameCodec::new().max_frame_size(100);
        let header = Header {
            message_type: MessageType::OK,
            auth_length: 50,
            body_length: 42,
            checksum: 0,
        };
        let mut buf = BytesMut::from(&header.to_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::Decode(DecodeError::FrameTooLarge {
                len: 101,
                max: 100
            }))
        ));
    }

    #[test]
    fn partial_header_does_not_start_a_frame() {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        assert!(!codec.is_mid_frame(&buf));
        buf.extend_from_slice(&[0, 0, 0]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 3, "a partial header stays in the buffer");
        assert!(codec.is_mid_frame(&buf));
    }

    #[test]
    fn message_codec_rejects_a_bad_checksum_with_the_typed_error() {
        let mut codec = MessageCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(Message::ok("x", "done"), &mut buf).unwrap();
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        let expected = u32::from_be_bytes(buf[5..9].try_into().unwrap());
        let actual = crc32fast::hash(&buf[Header::LEN..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::Decode(DecodeError::Checksum { expected: e, actual: a })
                    if e == expected && a == actual
            ),
            "{err:?}"
        );
    }

    #[test]
    fn frame_codec_keeps_framing_after_a_bad_frame() {
        // The frame layer does not check the checksum: the next frame still decodes.
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        codec.encode(Message::ok("a", "1"), &mut buf).unwrap();
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        codec.encode(Message::ok("b", "2"), &mut buf).unwrap();
        let bad = codec.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(
            bad.decode(codec.auth_codec()),
            Err(DecodeError::Checksum { .. })
        ));
        let good = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            good.decode(codec.auth_codec()).unwrap(),
            Message::ok("b", "2")
        );
    }

    #[test]
    fn frame_decode_checks_the_split_lengths() {
        let codec = FrameCodec::new();
        let frame = codec.to_frame(&Message::ok("a", "1")).unwrap();
        let header = Header::from_bytes(&frame).unwrap();
        let short = Frame {
            header,
            auth: Bytes::new(),
            body: frame.slice(Header::LEN..frame.len() - 1),
        };
        assert_eq!(
            short.decode(codec.auth_codec()),
            Err(DecodeError::Truncated {
                declared: 4,
                got: 3
            })
        );
    }

    #[test]
    fn encoder_refuses_frames_above_the_limit_and_leaves_dst_untouched() {
        let mut codec = FrameCodec::new().max_frame_size(64);
        let fits = Message::ok("u", vec![0u8; 64 - 9 - 2 - 1]);
        let too_big = Message::ok("u", vec![0u8; 64 - 9 - 2]);

        let mut dst = BytesMut::from(&b"prefix"[..]);
        let err = codec.encode(&too_big, &mut dst).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::Encode(EncodeError::FrameTooLarge { len: 65, max: 64 })
            ),
            "{err:?}"
        );
        assert_eq!(&dst[..], b"prefix");
        assert_eq!(
            codec.to_frame(&too_big),
            Err(EncodeError::FrameTooLarge { len: 65, max: 64 })
        );

        codec.encode(&fits, &mut dst).unwrap();
        assert_eq!(dst.len(), 6 + 64);

        // The message-level limits come through the codec too, also leaving dst as it was.
        let mut codec = FrameCodec::new();
        let mut dst = BytesMut::from(&b"prefix"[..]);
        let huge = Message::ok("", vec![0u8; crate::message::MAX_URI_AND_CONTENT + 1]);
        assert!(matches!(
            codec.encode(huge, &mut dst),
            Err(FrameError::Encode(EncodeError::BodyTooLarge { .. }))
        ));
        assert_eq!(&dst[..], b"prefix");
    }
}
