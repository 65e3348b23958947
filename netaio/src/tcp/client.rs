//! [`TcpClient`]: connections to one or several servers sharing one router.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpStream, ToSocketAddrs};

use super::driver::DriverConfig;
use super::{Connection, Reconnect, TcpClientBuilder};
use crate::codec::FrameCodec;
use crate::error::ConnectError;
use crate::node::peers::PeerManager;
use crate::node::requests::{Matching, RequestSettings};
use crate::peer::PeerTable;
use crate::plugin::NodePlugins;
use crate::router::{MissingStateError, Routes};

pub(super) struct ClientShared {
    pub(super) routes: Arc<Routes>,
    /// A handler's `State<T>` missing from the router (`connect` returns it).
    pub(super) missing_state: Option<MissingStateError>,
    pub(super) codec: FrameCodec,
    pub(super) driver: DriverConfig,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) send_queue: usize,
    pub(super) send_queue_bytes: usize,
    pub(super) max_in_flight: usize,
    pub(super) inbox: usize,
    pub(super) inbox_bytes: usize,
    pub(super) reconnect: Option<Reconnect>,
    pub(super) plugins: NodePlugins,
    /// How each connection's request table matches replies.
    pub(super) matching: Matching,
    /// The request settings of each connection's table.
    pub(super) requests: RequestSettings,
    /// The connections, by where they were made to.
    pub(super) conns: Mutex<HashMap<ConnKey, Connection>>,
    /// Servers that answered our advert (peer management).
    pub(super) peers: PeerTable,
    pub(super) manager: Option<Arc<PeerManager>>,
    /// Refusals per server address, bounded; the refusal log's rate limit.
    pub(super) refusals: Mutex<crate::node::refusals::RefusalTable>,
}

/// Where a client's connection was made to: its key in the client's table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ConnKey {
    /// A TCP server's address.
    Tcp(SocketAddr),
    /// A Unix socket's path.
    #[cfg(unix)]
    Unix(std::path::PathBuf),
}

/// A TCP client: connections to one or several servers, each a [`Connection`] handle, sharing one
/// router for messages the servers send on their own.
///
/// ```no_run
/// use netaio::TcpClient;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = TcpClient::new();
/// let conn = client.connect("127.0.0.1:8888").await?;
/// let reply = conn.request("echo", "hello").await?;
/// assert_eq!(reply.content().as_ref(), b"hello");
/// conn.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TcpClient {
    pub(super) shared: Arc<ClientShared>,
}

impl std::fmt::Debug for TcpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpClient")
            .field("connections", &self.connections().len())
            .finish_non_exhaustive()
    }
}

impl Default for TcpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpClient {
    /// A client with the defaults and no handlers.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> TcpClientBuilder {
        TcpClientBuilder::default()
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<ConnKey, Connection>> {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connect to a server (within the connect timeout) and start its receive loop. When a
    /// connection to that address is already open, it is returned instead.
    ///
    /// With peer management, it then advertises this client and waits (within the request
    /// timeout) for the server's `PEER_DISCOVERED`, so that [`Connection::peer`] is set when it
    /// returns; a server that does not answer is logged, not an error.
    ///
    /// A handler of the client's router that takes [`State<T>`](crate::router::State) for a `T`
    /// never added with [`Router::with_state`](crate::Router::with_state) fails every connect
    /// with [`ConnectError::MissingState`], before anything is sent.
    pub async fn connect(
        &self,
        addr: impl ToSocketAddrs + std::fmt::Debug,
    ) -> Result<Connection, ConnectError> {
        self.check_state()?;
        let addr = resolve(addr).await?;
        let key = ConnKey::Tcp(addr);
        if let Some(c) = self.open_connection(&key) {
            return Ok(c);
        }
        let stream = connect_once(addr, self.shared.connect_timeout).await?;
        let conn = Connection::start(self.shared.clone(), stream, addr, addr);
        Ok(self.opened(key, conn).await)
    }

    /// Connect to a server on the Unix socket at `path` (within the connect timeout), as
    /// [`connect`](Self::connect) does to a TCP address: a connection to that path already open
    /// is returned instead, the [`Reconnect`] policy reconnects to the path, peer management
    /// advertises. The connection's [`peer_addr`](Connection::peer_addr) is an address in
    /// `100::/64` carrying the server process's uid
    /// ([`unix_peer_uid`](crate::tcp::unix_peer_uid)), port 0.
    #[cfg(unix)]
    pub async fn connect_unix(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Connection, ConnectError> {
        self.check_state()?;
        let path = path.as_ref().to_path_buf();
        let key = ConnKey::Unix(path.clone());
        if let Some(c) = self.open_connection(&key) {
            return Ok(c);
        }
        let stream = super::unix::connect(&path, self.shared.connect_timeout).await?;
        let uid = super::unix::credentials(&stream).map(|c| c.uid);
        let addr = super::unix_peer::peer_addr(uid, 0);
        let conn = Connection::start(self.shared.clone(), stream, addr, path);
        Ok(self.opened(key, conn).await)
    }

    /// A handler's missing state fails every connect, before anything is sent.
    fn check_state(&self) -> Result<(), ConnectError> {
        match &self.shared.missing_state {
            Some(e) => Err(ConnectError::MissingState(e.clone())),
            None => Ok(()),
        }
    }

    fn open_connection(&self, key: &ConnKey) -> Option<Connection> {
        self.conns().get(key).filter(|c| !c.is_closed()).cloned()
    }

    /// A new connection joins the table; with peer management, it advertises this client.
    async fn opened(&self, key: ConnKey, conn: Connection) -> Connection {
        self.conns().insert(key.clone(), conn.clone());
        if self.shared.manager.is_some()
            && let Err(e) = conn.advertise().await
        {
            tracing::info!(server = ?key, error = %e, "server did not answer our advert");
        }
        conn
    }

    /// The open connection to `addr`, if any.
    pub fn connection(&self, addr: SocketAddr) -> Option<Connection> {
        self.open_connection(&ConnKey::Tcp(addr))
    }

    /// Every connection not yet closed.
    pub fn connections(&self) -> Vec<Connection> {
        let mut conns = self.conns();
        conns.retain(|_, c| !c.is_closed());
        conns.values().cloned().collect()
    }

    /// Close every connection gracefully.
    pub async fn close_all(&self) {
        let all: Vec<_> = self.conns().drain().map(|(_, c)| c).collect();
        for c in all {
            c.close().await;
        }
    }

    runtime_routes!();
}

pub(super) async fn resolve(
    addr: impl ToSocketAddrs + std::fmt::Debug,
) -> Result<SocketAddr, ConnectError> {
    // The error names what was asked for: the OS's message alone does not.
    let asked = format!("{addr:?}");
    let mut addrs = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| ConnectError::Resolve(format!("{asked}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| ConnectError::Resolve(format!("{asked}: no address")))
}

pub(super) async fn connect_once(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout { addr, timeout })?
        .map_err(|source| ConnectError::Io { addr, source })?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    Ok(stream)
}
