//! Shared helpers for the end-to-end tests of netaio (the files under `tests/`): start a server on
//! 127.0.0.1 port 0, wait for connection events with a deadline, and talk raw bytes to a server.
//!
//! Every wait here is bounded: a helper that does not get what it waits for within [`WAIT`] (or the
//! deadline it is given) panics with a message naming what it waited for.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod fuzz;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use netaio::codec::{Frame, FrameCodec};
use netaio::message::{Header, PostcardCodec};
use netaio::tcp::{CloseReason, ConnectionEvent, ConnectionId, TcpServerBuilder};
use netaio::{Message, MessageType, Router, ServerHandle, TcpClient, TcpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;

/// The longest any single step of a test may wait for something that should happen "at once".
pub const WAIT: Duration = Duration::from_secs(5);

/// The uri the [`echo_router`] answers on.
pub const ECHO: &str = "echo";

/// Log to the test output when `RUST_LOG` is set (for debugging a failing test).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Await `fut`, panicking with `what` if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// A router answering on uri [`ECHO`]: REQUEST_URI with RESPOND_URI, CREATE/UPDATE/DELETE with OK,
/// each echoing the content.
pub fn echo_router() -> Router {
    async fn respond(msg: Message) -> Message {
        Message::respond(msg.uri().clone(), msg.content().clone())
    }
    async fn ok(msg: Message) -> Message {
        Message::ok(msg.uri().clone(), msg.content().clone())
    }
    Router::new()
        .on((MessageType::REQUEST_URI, ECHO), respond)
        .on((MessageType::CREATE_URI, ECHO), ok)
        .on((MessageType::UPDATE_URI, ECHO), ok)
        .on((MessageType::DELETE_URI, ECHO), ok)
}

/// A UDP node serving on a spawned task (see [`start_udp`]).
#[derive(Debug)]
pub struct TestUdpNode {
    /// Its handle.
    pub handle: netaio::UdpHandle,
    /// The address it is bound to.
    pub addr: SocketAddr,
    join: tokio::task::JoinHandle<()>,
}

impl TestUdpNode {
    /// Shut the node down and wait (within [`WAIT`]) until it has stopped.
    pub async fn stop(self) {
        self.handle.shutdown();
        within(WAIT, "the node to stop", self.join).await.unwrap();
    }
}

/// Bind a UDP node from `builder` on 127.0.0.1, port 0 (the builder's address is replaced), and
/// serve it on a spawned task.
pub async fn start_udp(builder: netaio::udp::UdpNodeBuilder) -> TestUdpNode {
    init_tracing();
    let node = builder.address(([127, 0, 0, 1], 0)).bind().await.unwrap();
    let addr = node.local_addr();
    let handle = node.handle();
    TestUdpNode {
        handle,
        addr,
        join: tokio::spawn(node.serve()),
    }
}

/// A server running on a spawned task.
#[derive(Debug)]
pub struct TestServer {
    /// The bound address (127.0.0.1 and an ephemeral port).
    pub addr: SocketAddr,
    /// The server's handle.
    pub handle: ServerHandle,
    /// The task running `serve()`.
    pub join: JoinHandle<()>,
    /// Every event since the server was bound (used by [`TestServer::stop`] to check that no
    /// connection task panicked).
    all_events: broadcast::Receiver<ConnectionEvent>,
}

/// Start a server with the default limits and `router` on 127.0.0.1, port 0.
pub async fn start(router: Router) -> TestServer {
    start_with(TcpServer::builder().router(router)).await
}

/// Start a server from `builder` on 127.0.0.1, port 0 (the builder's address is replaced).
pub async fn start_with(builder: TcpServerBuilder) -> TestServer {
    start_on(SocketAddr::from(([127, 0, 0, 1], 0)), builder).await
}

/// Start a server from `builder` on `addr` (a loopback address; port 0 or a port known to be
/// free, such as the one a stopped test server had).
pub async fn start_on(addr: SocketAddr, builder: TcpServerBuilder) -> TestServer {
    assert!(addr.ip().is_loopback(), "tests listen on loopback only");
    init_tracing();
    let server = builder
        .address(addr)
        .bind()
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let addr = server.local_addr();
    let handle = server.handle();
    let all_events = handle.events();
    let join = tokio::spawn(server.serve());
    TestServer {
        addr,
        handle,
        join,
        all_events,
    }
}

impl TestServer {
    /// Connection events from now on.
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.handle.events()
    }

    /// Assert that no connection task has panicked so far (a panicking connection task is reported
    /// as `Disconnected` with reason `Io("handler panicked")`).
    pub fn assert_no_panic(&mut self) {
        loop {
            match self.all_events.try_recv() {
                Ok(ConnectionEvent::Disconnected { reason, peer, .. }) => {
                    assert_ne!(
                        reason,
                        CloseReason::Io("handler panicked".into()),
                        "connection task of {peer} panicked"
                    );
                }
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    panic!("{n} connection events lost: cannot check for panics")
                }
                Err(_) => break,
            }
        }
    }

    /// Shut down, wait (bounded) for `serve()` to return, and check that nothing panicked.
    pub async fn stop(mut self) {
        self.handle.shutdown();
        within(WAIT, "serve() to return after shutdown", &mut self.join)
            .await
            .expect("serve() panicked");
        self.assert_no_panic();
    }
}

/// The id of the next connection from `peer` (or from anyone, when `peer` is `None`).
pub async fn connected(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    peer: Option<SocketAddr>,
) -> ConnectionId {
    within(WAIT, "a Connected event", async {
        loop {
            match events.recv().await.expect("event stream") {
                ConnectionEvent::Connected { id, peer: p } if peer.is_none_or(|x| x == p) => {
                    return id;
                }
                _ => {}
            }
        }
    })
    .await
}

/// Wait for connection `id` to end and return why it ended.
pub async fn disconnected(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    id: ConnectionId,
) -> CloseReason {
    within(WAIT, "a Disconnected event", async {
        loop {
            match events.recv().await.expect("event stream") {
                ConnectionEvent::Disconnected { id: i, reason, .. } if i == id => return reason,
                _ => {}
            }
        }
    })
    .await
}

/// Why connection `id` ended, waiting as long as it takes (the caller bounds it, for deadlines
/// longer than [`WAIT`]).
pub async fn disconnected_eventually(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    id: ConnectionId,
) -> CloseReason {
    loop {
        if let ConnectionEvent::Disconnected { id: i, reason, .. } =
            events.recv().await.expect("event stream")
            && i == id
        {
            return reason;
        }
    }
}

/// Prove the server still serves: a fresh client connects, gets its echo, and closes.
pub async fn assert_serves(addr: SocketAddr) {
    let client = TcpClient::builder().request_timeout(WAIT).build();
    let conn = within(WAIT, "connect", client.connect(addr))
        .await
        .expect("connect");
    let reply = conn.request(ECHO, "still alive").await.expect("echo");
    assert_eq!(reply.message_type, MessageType::RESPOND_URI);
    assert_eq!(reply.content().as_ref(), b"still alive");
    conn.close().await;
}

/// A 9-byte header.
pub fn header(message_type: MessageType, auth_length: u16, body_length: u16, crc: u32) -> [u8; 9] {
    Header {
        message_type,
        auth_length,
        body_length,
        checksum: crc,
    }
    .to_bytes()
}

/// A frame with an arbitrary auth block and body, and a correct header for them (lengths and CRC).
pub fn raw_frame(message_type: MessageType, auth: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = header(
        message_type,
        u16::try_from(auth.len()).unwrap(),
        u16::try_from(body.len()).unwrap(),
        crc32(body),
    )
    .to_vec();
    v.extend_from_slice(auth);
    v.extend_from_slice(body);
    v
}

/// CRC-32 (IEEE), as the header carries it.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// The frame of `msg` in the native encoding.
pub fn frame_of(msg: &Message) -> Bytes {
    msg.to_bytes(&PostcardCodec).expect("encode")
}

/// A raw TCP connection to a server: write any bytes, read frames back.
#[derive(Debug)]
pub struct RawConn {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
    codec: FrameCodec,
}

impl RawConn {
    /// Connect to `addr`.
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = within(WAIT, "raw connect", TcpStream::connect(addr))
            .await
            .expect("raw connect");
        RawConn {
            stream,
            buf: BytesMut::new(),
            codec: FrameCodec::new(),
        }
    }

    /// Wrap an accepted stream (a test playing the server).
    pub fn from_stream(stream: TcpStream) -> RawConn {
        RawConn {
            stream,
            buf: BytesMut::new(),
            codec: FrameCodec::new(),
        }
    }

    /// Our side's address (the server sees it as the peer address).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Write bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("raw write");
    }

    /// Write a message as a frame.
    pub async fn send(&mut self, msg: &Message) {
        self.write(&frame_of(msg)).await;
    }

    /// Close our writing half (the server reads EOF).
    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.expect("raw shutdown");
    }

    /// The next frame, within [`WAIT`]. Panics on EOF or timeout.
    pub async fn read_frame(&mut self) -> Frame {
        within(WAIT, "a frame from the server", async {
            loop {
                if let Some(frame) = self.codec.decode(&mut self.buf).expect("framing") {
                    return frame;
                }
                let n = self.stream.read_buf(&mut self.buf).await.expect("raw read");
                assert!(n > 0, "server closed the connection before a whole frame");
            }
        })
        .await
    }

    /// The next message, within [`WAIT`]. Panics on EOF, timeout or an undecodable frame.
    pub async fn read_message(&mut self) -> Message {
        let frame = self.read_frame().await;
        frame.decode(&PostcardCodec).expect("decodable reply")
    }

    /// Send `msg` and read one reply.
    pub async fn round_trip(&mut self, msg: &Message) -> Message {
        self.send(msg).await;
        self.read_message().await
    }

    /// Wait (at most `limit`) for the server to close the connection, asserting that no more data
    /// arrives first. Returns how long it took.
    pub async fn expect_eof(&mut self, limit: Duration) -> Duration {
        let start = tokio::time::Instant::now();
        within(limit, "the server to close the connection", async {
            loop {
                let n = self.stream.read_buf(&mut self.buf).await.expect("raw read");
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before EOF: {:?}",
            &self.buf[..]
        );
        start.elapsed()
    }

    /// Assert the connection is still open and serving: an echo request is answered.
    pub async fn assert_open(&mut self) {
        let reply = self
            .round_trip(&Message::new(MessageType::REQUEST_URI, ECHO, "ping"))
            .await;
        assert_eq!(reply.message_type, MessageType::RESPOND_URI, "{reply:?}");
        assert_eq!(reply.content().as_ref(), b"ping");
    }
}

pub mod netns;

/// Plugins that record what they do, for proving the order of the plugin pipeline.
pub mod recording {
    use std::sync::{Arc, Mutex};

    use netaio::Message;
    use netaio::plugin::{
        AuthError, AuthPlugin, CipherError, CipherPlugin, PluginContext, Plugins,
    };

    /// The shared record: one line per plugin step or handler call, in order.
    pub type Log = Arc<Mutex<Vec<String>>>;

    /// Append a line.
    pub fn push(log: &Log, s: String) {
        log.lock().unwrap().push(s);
    }

    /// Adds (and on check removes) the field `layer`; logs `who auth make|check`.
    #[derive(Debug)]
    pub struct RecAuth {
        who: &'static str,
        layer: &'static str,
        log: Log,
    }

    impl AuthPlugin for RecAuth {
        fn make(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
            push(&self.log, format!("{} auth make", self.who));
            msg.auth.insert(self.layer, "1");
            Ok(())
        }
        fn check(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
            push(&self.log, format!("{} auth check", self.who));
            msg.auth
                .remove(self.layer)
                .map(|_| ())
                .ok_or_else(|| AuthError::MissingField(self.layer.into()))
        }
        /// It stands for a real auth plugin: a UDP node takes its sender as verified (no
        /// return-routability challenge in the recorded steps).
        fn authenticates_sender(&self) -> bool {
            true
        }
    }

    /// Wraps the content in `layer(…)`; logs `who cipher encrypt|decrypt`.
    #[derive(Debug)]
    pub struct RecCipher {
        who: &'static str,
        layer: &'static str,
        log: Log,
    }

    impl CipherPlugin for RecCipher {
        fn encrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
            push(&self.log, format!("{} cipher encrypt", self.who));
            let c = [self.layer.as_bytes(), b"(", msg.content(), b")"].concat();
            Ok(msg.with_content(c))
        }
        fn decrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
            push(&self.log, format!("{} cipher decrypt", self.who));
            let inner = msg
                .content()
                .strip_prefix(self.layer.as_bytes())
                .and_then(|r| r.strip_prefix(b"("))
                .and_then(|r| r.strip_suffix(b")"))
                .ok_or(CipherError::Decrypt)?
                .to_vec();
            Ok(msg.with_content(inner))
        }
    }

    /// A recording auth + cipher pair as `Plugins`, logging as `who`, marking its layer `layer`.
    pub fn plugins(who: &'static str, layer: &'static str, log: &Log) -> Plugins {
        Plugins::new()
            .auth(RecAuth {
                who,
                layer,
                log: log.clone(),
            })
            .cipher(RecCipher {
                who,
                layer,
                log: log.clone(),
            })
    }

    /// The exact record of one request/response through instance and inner plugins on both sides.
    pub const EXPECTED: [&str; 17] = [
        // client send
        "client inner cipher encrypt",
        "client inner auth make",
        "client instance cipher encrypt",
        "client instance auth make",
        // server receive
        "server instance auth check",
        "server instance cipher decrypt",
        "server inner auth check",
        "server inner cipher decrypt",
        "handler sees \"ping\"",
        // server reply
        "server inner cipher encrypt",
        "server inner auth make",
        "server instance cipher encrypt",
        "server instance auth make",
        // client receive
        "client instance auth check",
        "client instance cipher decrypt",
        "client inner auth check",
        "client inner cipher decrypt",
    ];
}

/// A raw UDP socket on 127.0.0.1 that counts what it sent (to tell whether a node sent it more).
#[derive(Debug)]
pub struct RawUdp {
    /// The socket.
    pub sock: tokio::net::UdpSocket,
    /// Bytes sent so far.
    pub sent: usize,
}

impl RawUdp {
    /// Bound to an ephemeral port of 127.0.0.1.
    pub async fn new() -> Self {
        Self {
            sock: tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            sent: 0,
        }
    }

    /// Send `datagram` to `to`, counted.
    pub async fn send(&mut self, datagram: &[u8], to: SocketAddr) {
        self.sock.send_to(datagram, to).await.unwrap();
        self.sent += datagram.len();
    }

    /// Every datagram already waiting (loopback delivers a datagram before `send_to` returns).
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, _)) = self.sock.try_recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    }

    /// The next datagram, within the test's wait.
    pub async fn recv(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = within(WAIT, "a datagram", self.sock.recv_from(&mut buf))
            .await
            .unwrap();
        buf[..n].to_vec()
    }
}
