//! Request frames (sealed with netaio's own plugin pipeline, so that the netaio server accepts
//! them) and a reader of reply frames that needs only the 9-byte header.

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use netaio::codec::FrameCodec;
use netaio::message::Header;
use netaio::plugin::{
    AeadAlgorithm, AeadAuth, AeadCipher, Freshness, HmacAuth, PluginContext, Plugins, seal,
};
use netaio::{Message, MessageType};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{ECHO_URI, Mode, Result, SECRET};

/// The instance plugins of a mode, as the server and the client both build them.
///
/// `replay_capacity` sizes the `HmacAuth` replay cache: it must hold every nonce seen within the
/// ±60 s window, so a benchmark that sends N authenticated messages within a minute needs at
/// least N (the default of 65,536 would refuse the rest with `AUTH_ERROR`, as it should).
pub fn plugins(mode: Mode, replay_capacity: usize) -> Plugins {
    plugins_with(mode, &|| {
        Freshness::new(Freshness::DEFAULT_WINDOW).capacity(replay_capacity.max(1))
    })
}

/// The instance plugins of a mode, with the auth plugin's [`Freshness`] from `freshness`.
pub fn plugins_with(mode: Mode, freshness: &dyn Fn() -> Freshness) -> Plugins {
    let hmac = || HmacAuth::new(SECRET).freshness(freshness());
    let sealed = |alg| AeadAuth::new(SECRET).algorithm(alg).freshness(freshness());
    match mode {
        Mode::None => Plugins::new(),
        Mode::Hmac => Plugins::new().auth(hmac()),
        Mode::HmacAead => Plugins::new().auth(hmac()).cipher(AeadCipher::new(SECRET)),
        Mode::Sealed => Plugins::new().auth(sealed(AeadAlgorithm::preferred())),
        Mode::SealedChacha => Plugins::new().auth(sealed(AeadAlgorithm::XChaCha20Poly1305)),
    }
}

/// The node id the client seals with, as a netaio client's instance id: the auth plugins put it
/// at the start of their nonces, and the server's replay cache counts nonces per sender id.
pub const CLIENT_NODE: u64 = 0x6e65_7461_696f_0001;

/// Builds request frames: REQUEST_URI `echo` with a request id, sealed with the mode's plugins
/// exactly as a netaio client would seal them (inner: none; instance: the mode's).
#[derive(Debug)]
pub struct Sealer {
    plugins: Plugins,
    codec: FrameCodec,
    content: Bytes,
}

impl Sealer {
    /// A sealer for `mode` and a content of `size` bytes.
    pub fn new(mode: Mode, size: usize) -> Self {
        Self::with_codec(mode, size, FrameCodec::new())
    }

    /// The same, writing the auth block with `codec` (packify for the Python server, which reads
    /// and ignores the request id).
    pub fn with_codec(mode: Mode, size: usize, codec: FrameCodec) -> Self {
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        Self {
            plugins: plugins(mode, 1),
            codec,
            content: Bytes::from(content),
        }
    }

    /// The content of every request.
    pub fn content(&self) -> &Bytes {
        &self.content
    }

    /// Append the frame of request `rid` to `dst`.
    pub fn push(&self, rid: u64, dst: &mut BytesMut) -> Result<()> {
        self.push_with_cookie(rid, None, dst)
    }

    /// The frame of request `rid` echoing a UDP node's return-routability `cookie` (what a
    /// netaio caller sends again when the node challenges its first request).
    pub fn frame_with_cookie(&self, rid: u64, cookie: Bytes) -> Result<Bytes> {
        let mut buf = BytesMut::new();
        self.push_with_cookie(rid, Some(cookie), &mut buf)?;
        Ok(buf.freeze())
    }

    /// The codec the frames are written with.
    pub fn codec(&self) -> &FrameCodec {
        &self.codec
    }

    fn push_with_cookie(&self, rid: u64, cookie: Option<Bytes>, dst: &mut BytesMut) -> Result<()> {
        let mut msg = Message::new(MessageType::REQUEST_URI, ECHO_URI, self.content.clone());
        msg.set_request_id(rid);
        if let Some(cookie) = cookie {
            msg.auth.insert(netaio::message::fields::COOKIE, cookie);
        }
        let ctx = PluginContext {
            node: Some(CLIENT_NODE),
            ..PluginContext::default()
        };
        let sealed = seal(msg, &Plugins::new(), &self.plugins, &ctx)?;
        self.codec.encode_message(&sealed, dst)?;
        Ok(())
    }

    /// The frame of request `rid` as its own buffer.
    pub fn frame(&self, rid: u64) -> Result<Bytes> {
        let mut buf = BytesMut::new();
        self.push(rid, &mut buf)?;
        Ok(buf.freeze())
    }

    /// `n` frames with request ids `first..first + n`.
    pub fn frames(&self, first: u64, n: usize) -> Result<Vec<Bytes>> {
        (first..first + n as u64)
            .map(|rid| self.frame(rid))
            .collect()
    }
}

/// What the client checks of a reply: its type and body length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The reply's type.
    pub message_type: MessageType,
    /// Its body length.
    pub body_len: usize,
}

impl Reply {
    /// An echo of a request with a body of `body_len` bytes: RESPOND_URI (OK from the Python
    /// UDP node) with the same body length (the netaio server seals its reply with the same
    /// plugins, so the length matches there too).
    pub fn check(&self, body_len: usize) -> Result<()> {
        let echo = matches!(
            self.message_type,
            MessageType::RESPOND_URI | MessageType::OK
        );
        if !echo || self.body_len != body_len {
            return Err(format!(
                "unexpected reply: type {} with a {}-byte body (expected RESPOND_URI or OK, {body_len} bytes)",
                self.message_type, self.body_len
            )
            .into());
        }
        Ok(())
    }
}

/// The body length of a frame (from its header).
pub fn body_len(frame: &[u8]) -> Result<usize> {
    Ok(usize::from(Header::from_bytes(frame)?.body_length))
}

/// Reads reply frames, parsing only headers; no allocation per frame.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self {
            buf: BytesMut::with_capacity(128 * 1024),
        }
    }
}

impl FrameReader {
    /// The next complete frame already buffered, if any.
    pub fn try_next(&mut self) -> io::Result<Option<Reply>> {
        let Some(head) = self.buf.first_chunk::<{ Header::LEN }>() else {
            return Ok(None);
        };
        let header =
            Header::from_bytes(head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let total = header.frame_len();
        if self.buf.len() < total {
            if self.buf.capacity() < total {
                self.buf.reserve(total - self.buf.len());
            }
            return Ok(None);
        }
        self.buf.advance(total);
        Ok(Some(Reply {
            message_type: header.message_type,
            body_len: usize::from(header.body_length),
        }))
    }

    /// Read more from `rd`; an error at end of stream.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 32 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        if rd.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// The next reply, reading as needed.
    pub async fn next<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> io::Result<Reply> {
        loop {
            if let Some(r) = self.try_next()? {
                return Ok(r);
            }
            self.fill(rd).await?;
        }
    }

    /// [`next`](Self::next) with a time limit (a stuck server must not hang the harness).
    pub async fn next_within<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
        limit: Duration,
    ) -> io::Result<Reply> {
        match tokio::time::timeout(limit, self.next(rd)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no reply within the time limit",
            )),
        }
    }
}
