//! What the connection driver runs on: a connected byte stream, TCP or a Unix socket. The driver,
//! the accept loop and the client's connect and reconnect are generic over it, monomorphised for
//! each type: the TCP path compiles to what it was before, with no dispatch of its own.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::ConnectError;

/// A connected stream the driver can split into a read half and a write half (borrowed: no
/// reference count, as `TcpStream::split`).
pub(crate) trait Stream: Send + Sized + 'static {
    /// The read half.
    type Read<'a>: AsyncRead + Unpin + Send
    where
        Self: 'a;
    /// The write half; its `try_write` writes without waiting.
    type Write<'a>: AsyncWrite + TryWrite + Unpin + Send
    where
        Self: 'a;
    /// Where a client connects to, again after a drop.
    type Target: Send + Sync + std::fmt::Debug + 'static;

    /// The two halves.
    fn split(&mut self) -> (Self::Read<'_>, Self::Write<'_>);

    /// Disable Nagle's algorithm where there is one (a Unix socket has none).
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;

    /// Connect to `to` within `timeout`.
    fn connect(
        to: &Self::Target,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self, ConnectError>> + Send;
}

/// A write that does not wait (the socket takes what it can now).
pub(crate) trait TryWrite {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;

    /// The slices in order, as far as the socket takes them (one call).
    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize>;
}

impl Stream for TcpStream {
    type Read<'a> = tokio::net::tcp::ReadHalf<'a>;
    type Write<'a> = tokio::net::tcp::WriteHalf<'a>;
    type Target = std::net::SocketAddr;

    fn split(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        TcpStream::split(self)
    }

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, nodelay)
    }

    async fn connect(to: &Self::Target, timeout: Duration) -> Result<Self, ConnectError> {
        super::client::connect_once(*to, timeout).await
    }
}

impl TryWrite for tokio::net::tcp::WriteHalf<'_> {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        tokio::net::tcp::WriteHalf::try_write(self, buf)
    }

    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::tcp::WriteHalf::try_write_vectored(self, bufs)
    }
}

#[cfg(unix)]
impl Stream for tokio::net::UnixStream {
    type Read<'a> = tokio::net::unix::ReadHalf<'a>;
    type Write<'a> = tokio::net::unix::WriteHalf<'a>;
    type Target = std::path::PathBuf;

    fn split(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        tokio::net::UnixStream::split(self)
    }

    fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    async fn connect(to: &Self::Target, timeout: Duration) -> Result<Self, ConnectError> {
        super::unix::connect(to, timeout).await
    }
}

#[cfg(unix)]
impl TryWrite for tokio::net::unix::WriteHalf<'_> {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        tokio::net::unix::WriteHalf::try_write(self, buf)
    }

    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::unix::WriteHalf::try_write_vectored(self, bufs)
    }
}
