//! [`ApiClient`]: a small client of the gossip module API (what a local module does), for
//! tests, examples and tools.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::codec::{ApiMessage, ReadError, TooLarge, read_message};

/// One API connection to a daemon.
#[derive(Debug)]
pub struct ApiClient {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The data does not fit a message.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ApiClient {
    /// Connects to the daemon's `api_address`.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        Ok(Self { reader, writer })
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &ApiMessage) -> Result<(), SendError> {
        let bytes = message.to_bytes()?;
        self.writer.write_all(&bytes).await?;
        Ok(())
    }

    /// Sends raw bytes (to test what the daemon does with malformed input).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// GOSSIP ANNOUNCE.
    pub async fn announce(
        &mut self,
        ttl: u8,
        data_type: u16,
        data: impl Into<Bytes>,
    ) -> Result<(), SendError> {
        let data = data.into();
        self.send(&ApiMessage::Announce {
            ttl,
            data_type,
            data,
        })
        .await
    }

    /// GOSSIP NOTIFY.
    pub async fn notify(&mut self, data_type: u16) -> Result<(), SendError> {
        self.send(&ApiMessage::Notify { data_type }).await
    }

    /// GOSSIP VALIDATION.
    pub async fn validate(&mut self, message_id: u16, valid: bool) -> Result<(), SendError> {
        self.send(&ApiMessage::Validation { message_id, valid })
            .await
    }

    /// The next message from the daemon (a NOTIFICATION); `None` once the daemon closed the
    /// connection.
    pub async fn recv(&mut self) -> Result<Option<ApiMessage>, ReadError> {
        read_message(&mut self.reader).await
    }
}
