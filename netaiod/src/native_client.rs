//! [`NativeClient`]: an application's connection to the daemon's native API.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use netaio::{Connection, Message, MessageType, RequestError, Router, TcpClient};

use netaio::router::Content;
use tokio::sync::mpsc;

use crate::codec::{ApiMessage, HEADER_LEN, check_header};
use crate::native::{
    CALL_URI, FEATURE_CALL, FEATURE_SERVE, GOSSIP_URI, HELLO_URI, NATIVE_VERSION, NOTIFICATION_URI,
    PEER_EVENT_URI, PEER_UP, PEERS_URI, SERVE_URI, SUBSCRIBE_URI, WATCH_URI, call_content,
};

/// Neighbour events kept for the application before the oldest new ones are dropped (a gap in
/// the ids).
pub const EVENT_QUEUE: usize = 256;

/// Where a daemon's native API listens: its `[native] address` or its `[native] socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeAddr {
    /// A TCP address (loopback).
    Tcp(SocketAddr),
    /// A Unix socket's path.
    Unix(std::path::PathBuf),
}

impl From<SocketAddr> for NativeAddr {
    fn from(addr: SocketAddr) -> Self {
        NativeAddr::Tcp(addr)
    }
}

impl std::fmt::Display for NativeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeAddr::Tcp(a) => write!(f, "{a}"),
            NativeAddr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A neighbour event of the daemon ([`NativeClient::watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEvent {
    /// Consecutive: a gap means events were lost.
    pub id: u64,
    /// Up (a new neighbour) or down.
    pub up: bool,
    /// The neighbour's address.
    pub peer: String,
}

/// Why a native API request failed.
#[derive(Debug, thiserror::Error)]
pub enum NativeClientError {
    /// The daemon could not be reached.
    #[error(transparent)]
    Connect(#[from] netaio::ConnectError),
    /// The request failed or was answered with an error (the daemon's or the remote side's
    /// text in it).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The daemon's HELLO answer is malformed.
    #[error("malformed HELLO answer")]
    Hello,
    /// A peer id or uri too long for a CALL, or data too large for a message.
    #[error("peer id, uri or data too long")]
    TooLong,
}

/// An application's connection to a daemon: [`connect`](Self::connect) says hello;
/// [`serve`](Self::serve) registers a uri its router answers; [`call`](Self::call) reaches a uri
/// served behind another daemon.
#[derive(Debug)]
pub struct NativeClient {
    _client: TcpClient,
    conn: Connection,
    peer_id: String,
    features: u32,
    events: std::sync::Mutex<Option<mpsc::Receiver<PeerEvent>>>,
    notifications: std::sync::Mutex<Option<mpsc::Receiver<ApiMessage>>>,
}

impl NativeClient {
    /// Connects to the daemon's native API with `router` (answering the uris this application
    /// will serve), and says hello.
    pub async fn connect(addr: SocketAddr, router: Router) -> Result<Self, NativeClientError> {
        Self::connect_version(addr, router, NATIVE_VERSION).await
    }

    /// As [`connect`](Self::connect), to the daemon's Unix socket (`[native] socket`).
    pub async fn connect_unix(
        path: impl AsRef<std::path::Path>,
        router: Router,
    ) -> Result<Self, NativeClientError> {
        let at = NativeAddr::Unix(path.as_ref().to_path_buf());
        Self::connect_to(&at, router, NATIVE_VERSION).await
    }

    /// As [`connect`](Self::connect), claiming another version (to test what an old client
    /// gets).
    pub async fn connect_version(
        addr: SocketAddr,
        router: Router,
        version: u16,
    ) -> Result<Self, NativeClientError> {
        Self::connect_to(&NativeAddr::Tcp(addr), router, version).await
    }

    /// As [`connect_version`](Self::connect_version), to a TCP address or a Unix socket.
    pub async fn connect_to(
        at: &NativeAddr,
        router: Router,
        version: u16,
    ) -> Result<Self, NativeClientError> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let router = router.on(
            (MessageType::NOTIFY_URI, PEER_EVENT_URI),
            move |Content(mut c): Content| {
                let tx = tx.clone();
                async move {
                    if c.len() >= 9 {
                        let id = c.get_u64();
                        let up = c.get_u8() == PEER_UP;
                        let peer = String::from_utf8_lossy(&c).into_owned();
                        let _ = tx.try_send(PeerEvent { id, up, peer });
                    }
                }
            },
        );
        let (ntx, nrx) = mpsc::channel(EVENT_QUEUE);
        let router = router.on(
            (MessageType::NOTIFY_URI, NOTIFICATION_URI),
            move |Content(c): Content| {
                let ntx = ntx.clone();
                async move {
                    let Some(Ok((kind, _))) = c
                        .get(..HEADER_LEN)
                        .and_then(|h| <[u8; HEADER_LEN]>::try_from(h).ok())
                        .map(check_header)
                    else {
                        return;
                    };
                    if let Ok(m) = ApiMessage::decode(kind, c.slice(HEADER_LEN..)) {
                        let _ = ntx.try_send(m);
                    }
                }
            },
        );
        let client = TcpClient::builder().router(router).build();
        let conn = match at {
            NativeAddr::Tcp(addr) => client.connect(*addr).await?,
            #[cfg(unix)]
            NativeAddr::Unix(path) => client.connect_unix(path).await?,
            #[cfg(not(unix))]
            NativeAddr::Unix(path) => {
                return Err(NativeClientError::Connect(netaio::ConnectError::Resolve(
                    format!("{}: no Unix sockets on this platform", path.display()),
                )));
            }
        };
        let mut hello = BytesMut::new();
        hello.put_u16(version);
        hello.put_u32(FEATURE_SERVE | FEATURE_CALL);
        let request = Message::new(MessageType::REQUEST_URI, HELLO_URI, hello.freeze());
        let mut reply = conn.call(request).await?.content().clone();
        if reply.len() < 6 {
            return Err(NativeClientError::Hello);
        }
        let _version = reply.get_u16();
        let features = reply.get_u32();
        let peer_id = String::from_utf8(reply.to_vec()).map_err(|_| NativeClientError::Hello)?;
        Ok(Self {
            _client: client,
            conn,
            peer_id,
            features,
            events: std::sync::Mutex::new(Some(rx)),
            notifications: std::sync::Mutex::new(Some(nrx)),
        })
    }

    /// The daemon's peer id (what applications behind other daemons call it by).
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The features both sides have.
    pub fn features(&self) -> u32 {
        self.features
    }

    /// Registers `uri`: requests for it from other daemons reach this application's router.
    pub async fn serve(&self, uri: &str) -> Result<(), NativeClientError> {
        let request = Message::new(MessageType::REQUEST_URI, SERVE_URI, uri.to_owned());
        self.conn.call(request).await?;
        Ok(())
    }

    /// Calls `uri` served by an application behind the daemon `peer`; the reply's content.
    pub async fn call(
        &self,
        peer: &str,
        uri: &str,
        body: impl AsRef<[u8]>,
    ) -> Result<Bytes, NativeClientError> {
        let content = call_content(peer, uri, body.as_ref()).ok_or(NativeClientError::TooLong)?;
        let request = Message::new(MessageType::REQUEST_URI, CALL_URI, content);
        Ok(self.conn.call(request).await?.content().clone())
    }

    /// Subscribes to `data_type` (gossip): with `validate`, each notification waits for this
    /// application's [`validate`](Self::validate) before the daemon forwards peer data; without,
    /// notifications come with message id 0 and need no answer.
    pub async fn subscribe(&self, data_type: u16, validate: bool) -> Result<(), NativeClientError> {
        let mut c = BytesMut::new();
        c.put_u16(data_type);
        c.put_u8(u8::from(validate));
        let request = Message::new(MessageType::REQUEST_URI, SUBSCRIBE_URI, c.freeze());
        self.conn.call(request).await?;
        Ok(())
    }

    /// Spreads `data` of `data_type` (a GOSSIP ANNOUNCE).
    pub async fn announce(
        &self,
        ttl: u8,
        data_type: u16,
        data: impl Into<Bytes>,
    ) -> Result<(), NativeClientError> {
        let m = ApiMessage::Announce {
            ttl,
            data_type,
            data: data.into(),
        };
        self.gossip(&m).await
    }

    /// Answers a notification (a GOSSIP VALIDATION).
    pub async fn validate(&self, message_id: u16, valid: bool) -> Result<(), NativeClientError> {
        self.gossip(&ApiMessage::Validation { message_id, valid })
            .await
    }

    async fn gossip(&self, m: &ApiMessage) -> Result<(), NativeClientError> {
        let bytes = m.to_bytes().map_err(|_| NativeClientError::TooLong)?;
        let request = Message::new(MessageType::REQUEST_URI, GOSSIP_URI, bytes);
        self.conn.call(request).await?;
        Ok(())
    }

    /// The notifications of the subscribed data types (`ApiMessage::Notification`), once per
    /// client (`None` the second time); at most `EVENT_QUEUE` kept.
    pub fn notifications(&self) -> Option<mpsc::Receiver<ApiMessage>> {
        self.notifications.lock().ok().and_then(|mut n| n.take())
    }

    /// The daemon's gossip neighbours.
    pub async fn peers(&self) -> Result<Vec<String>, NativeClientError> {
        let request = Message::new(MessageType::REQUEST_URI, PEERS_URI, "");
        let reply = self.conn.call(request).await?;
        let text = String::from_utf8_lossy(reply.content()).into_owned();
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// Watches the daemon's neighbour events: the id the next event will have, and the events
    /// (once per client; `None` the second time).
    pub async fn watch(
        &self,
    ) -> Result<Option<(u64, mpsc::Receiver<PeerEvent>)>, NativeClientError> {
        let request = Message::new(MessageType::REQUEST_URI, WATCH_URI, "");
        let mut reply = self.conn.call(request).await?.content().clone();
        let next = reply.try_get_u64().map_err(|_| NativeClientError::Hello)?;
        let rx = self.events.lock().ok().and_then(|mut e| e.take());
        Ok(rx.map(|rx| (next, rx)))
    }

    /// Completes when the connection to the daemon has ended (the daemon stopped or closed it,
    /// or [`close`](Self::close)): a subscriber's notifications stop then.
    pub async fn closed(&self) {
        let mut changes = self.conn.state_changes();
        let _ = changes.wait_for(|s| s.is_closed()).await;
    }

    /// Closes the connection (its routes are forgotten on the next call for them).
    pub async fn close(self) {
        self.conn.close().await;
    }
}
