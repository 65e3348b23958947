//! One GRASP message at a time over TCP: read until a whole message is buffered (CBOR delimits
//! itself), write each message with its own `write_all` on a `TCP_NODELAY` socket.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::wire::{DecodeError, Message};

/// Why no message was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the connection before a whole message came.
    #[error("connection closed")]
    Closed,
    /// Nothing whole came before the deadline.
    #[error("timed out")]
    TimedOut,
    /// The bytes are not a GRASP message.
    #[error("bad message: {0}")]
    Decode(#[from] DecodeError),
    /// The connection failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

/// A TCP connection carrying GRASP messages, with its read buffer.
#[derive(Debug)]
pub struct MessageStream {
    stream: TcpStream,
    buf: Vec<u8>,
    max: usize,
}

impl MessageStream {
    /// Wrap `stream`; messages over `max` bytes are refused.
    pub fn new(stream: TcpStream, max: usize) -> MessageStream {
        // Best effort: a socket that refuses it still works, only slower to deliver.
        let _ = stream.set_nodelay(true);
        MessageStream {
            stream,
            buf: Vec::new(),
            max,
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.stream.peer_addr()
    }

    /// The next message, waiting until `deadline`. Bytes after it stay buffered for the next
    /// call. Never holds more than `max` bytes of an incomplete message.
    pub async fn read(&mut self, deadline: Instant) -> Result<Message, ReadError> {
        loop {
            if !self.buf.is_empty() {
                match Message::decode_prefix(&self.buf, self.max) {
                    Ok((m, used)) => {
                        self.buf.drain(..used);
                        return Ok(m);
                    }
                    Err(DecodeError::Truncated) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let mut chunk = [0u8; 2048];
            let room = self
                .max
                .saturating_sub(self.buf.len())
                .clamp(1, chunk.len());
            let Some(dst) = chunk.get_mut(..room) else {
                return Err(ReadError::TimedOut);
            };
            let n = match tokio::time::timeout_at(deadline, self.stream.read(dst)).await {
                Err(_) => return Err(ReadError::TimedOut),
                Ok(r) => r?,
            };
            if n == 0 {
                return Err(ReadError::Closed);
            }
            self.buf.extend_from_slice(dst.get(..n).unwrap_or_default());
        }
    }

    /// Write one message (already encoded) in its own write.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Close the sending side (the peer reads the end of the stream).
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}
