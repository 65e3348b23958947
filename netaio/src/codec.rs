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
        let start = dst.len();
        msg.encode(&*self.auth_codec, dst)?;
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

    /// True while a frame has been started (header or part of it read) but not completed: the
    /// transports use this to apply the partial-frame read timeout.
    pub fn is_mid_frame(&self, buf: &BytesMut) -> bool {
        self.pending.is_some() || !buf.is_empty()
    }
}

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
            src.reserve(rest - src.len());
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
