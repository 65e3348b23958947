//! The two echo servers: netaio, and the hand-written tokio baseline of the same framing.
//!
//! Both print `listening ADDR` on stdout once bound and then serve until killed. Both run on the
//! same kind of tokio runtime (current-thread by default, as each is pinned to one core by the
//! driver), both set `TCP_NODELAY`, both batch the replies of every frame found in one read into
//! one write.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, BytesMut};
use netaio::message::{Header, MAX_FRAME};
use netaio::udp::UdpNode;
use netaio::{Message, MessageType, Router, TcpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::args::ServerArgs;
use crate::frames::plugins;
use crate::procs::announce;
use crate::{ECHO_URI, Impl, Mode, Result, Transport};

/// Default replay-cache capacity of the netaio server in the plugin modes (see
/// [`plugins`]): room for every nonce of the largest workload.
pub const DEFAULT_REPLAY_CAPACITY: usize = 4_200_000;

/// The echo handler: the request's uri and content back, as RESPOND_URI.
async fn echo(msg: Message) -> Message {
    Message::respond(msg.uri().clone(), msg.content().clone())
}

/// The netaio router: the echo route and 32 other routes (so that the route table is not
/// trivially small).
pub fn router() -> Router {
    let mut router = Router::new().on((MessageType::REQUEST_URI, ECHO_URI), echo);
    for i in 0..16 {
        router = router
            .on((MessageType::REQUEST_URI, format!("other/{i}")), echo)
            .on((MessageType::PUBLISH_URI, format!("topic/{i}")), echo);
    }
    router
}

/// Run the server role (`bench server …`, `netaio-echo`, `baseline-echo`) with implementation
/// `imp`.
pub fn run(args: ServerArgs, imp: Impl) -> Result<()> {
    let ServerArgs {
        mode,
        address: addr,
        threads,
        replay_capacity: capacity,
        transport,
        // Seconds; 0 turns the idle timeout off (the default is the library's, 300 s).
        idle_timeout: idle,
    } = args;
    if imp != Impl::Netaio && mode != Mode::None {
        return Err(format!("the {imp} server has no plugins here: use --mode none").into());
    }
    if imp == Impl::Python {
        return exec_python(addr, transport);
    }
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        match (imp, transport) {
            (Impl::Netaio, Transport::Tcp) => netaio_server(addr, mode, capacity, idle).await,
            (Impl::Baseline, Transport::Tcp) => baseline_server(addr).await,
            (Impl::Netaio, Transport::Udp) => netaio_udp_server(addr, mode, capacity).await,
            (Impl::Baseline, Transport::Udp) => baseline_udp_server(addr).await,
            (Impl::Python, _) => Err("the Python server is not run in this process".into()),
        }
    })
}

/// The Python interpreter with netaio 0.0.9: `NETAIO_PYTHON`, else the workspace's `.venv` (as
/// `.ci/run` makes it), else `python3`.
pub fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("NETAIO_PYTHON") {
        return p.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// Become the Python echo server (same process, so the driver's pinning, priority and RSS
/// measurement apply to it): `examples/python/compat_server.py` (TCPServer; REQUEST_URI →
/// RESPOND_URI) or `compat_udp_node.py` (UDPNode; REQUEST_URI → OK). Both print `listening PORT`.
fn exec_python(addr: SocketAddr, transport: Transport) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python");
    let mut cmd = std::process::Command::new(python());
    match transport {
        Transport::Tcp => cmd
            .arg(dir.join("compat_server.py"))
            .args(["--bind", &addr.ip().to_string()]),
        Transport::Udp => cmd.arg(dir.join("compat_udp_node.py")),
    };
    cmd.args(["--port", &addr.port().to_string()]);
    let program = cmd.get_program().to_owned();
    // Only returns on failure.
    let err = cmd.exec();
    Err(format!("cannot run {program:?}: {err}").into())
}

/// The netaio echo server with the mode's instance plugins; `idle` overrides the idle timeout
/// (seconds, 0 for none).
pub async fn netaio_server(
    addr: SocketAddr,
    mode: Mode,
    replay_capacity: usize,
    idle: Option<u64>,
) -> Result<()> {
    let p = plugins(mode, replay_capacity);
    let mut builder = TcpServer::builder()
        .address(addr)
        .router(router())
        .max_connections(20_000)
        // Every load client and idle connection comes from 127.0.0.1.
        .max_connections_per_ip(20_000);
    if let Some(secs) = idle {
        builder = builder.idle_timeout((secs > 0).then(|| std::time::Duration::from_secs(secs)));
    }
    if let Some(auth) = p.auth {
        builder = builder.auth_arc(auth);
    }
    if let Some(cipher) = p.cipher {
        builder = builder.cipher_arc(cipher);
    }
    let server = builder.bind().await?;
    announce(server.local_addr())?;
    server.serve().await;
    Ok(())
}

/// The netaio UDP echo node with the mode's instance plugins.
pub async fn netaio_udp_server(addr: SocketAddr, mode: Mode, replay_capacity: usize) -> Result<()> {
    let p = plugins(mode, replay_capacity);
    let mut builder = UdpNode::builder().address(addr).router(router());
    if let Some(auth) = p.auth {
        builder = builder.auth_arc(auth);
    }
    if let Some(cipher) = p.cipher {
        builder = builder.cipher_arc(cipher);
    }
    let node = builder.bind().await?;
    announce(node.local_addr())?;
    node.serve().await;
    Ok(())
}

/// The UDP baseline: per datagram, parse the header, check that the datagram is exactly one
/// frame and the body's CRC, and send the reply frame (RESPOND_URI, auth block and body echoed).
pub async fn baseline_udp_server(addr: SocketAddr) -> Result<()> {
    let socket = UdpSocket::bind(addr).await?;
    announce(socket.local_addr()?)?;
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::with_capacity(65_536);
    loop {
        let (n, src) = socket.recv_from(&mut buf).await?;
        let datagram = buf.get(..n).unwrap_or_default();
        let Ok(header) = Header::from_bytes(datagram) else {
            continue;
        };
        if header.frame_len() != n {
            continue;
        }
        let auth_end = Header::LEN + usize::from(header.auth_length);
        let body = datagram.get(auth_end..).unwrap_or_default();
        if crc32fast::hash(body) != header.checksum {
            continue;
        }
        let reply = Header {
            message_type: MessageType::RESPOND_URI,
            ..header
        };
        out.clear();
        out.extend_from_slice(&reply.to_bytes());
        out.extend_from_slice(datagram.get(Header::LEN..).unwrap_or_default());
        socket.send_to(&out, src).await?;
    }
}

/// The baseline: accept, and per connection parse the 9-byte header, wait for the auth block and
/// body, check the body's CRC, and write a reply frame (RESPOND_URI, the auth block and body
/// echoed). No routing, no plugins, no auth-block decoding.
pub async fn baseline_server(addr: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr).await?;
    announce(listener.local_addr()?)?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = baseline_connection(stream).await;
        });
    }
}

async fn baseline_connection(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut rbuf = BytesMut::with_capacity(8 * 1024);
    let mut wbuf = BytesMut::with_capacity(8 * 1024);
    loop {
        // Every complete frame in the buffer: one reply each, written together below.
        while let Some(head) = rbuf.first_chunk::<{ Header::LEN }>() {
            let header = Header::from_bytes(head)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let total = header.frame_len();
            if total > MAX_FRAME {
                return Ok(());
            }
            let Some(frame) = rbuf.get(..total) else {
                rbuf.reserve(total - rbuf.len());
                break;
            };
            let auth_end = Header::LEN + usize::from(header.auth_length);
            let (auth, body) = (
                frame.get(Header::LEN..auth_end).unwrap_or_default(),
                frame.get(auth_end..).unwrap_or_default(),
            );
            let crc = crc32fast::hash(body);
            let reply = if crc == header.checksum {
                Header {
                    message_type: MessageType::RESPOND_URI,
                    ..header
                }
            } else {
                // A real server would answer ERROR; the benchmark never sends a bad frame.
                Header {
                    message_type: MessageType::ERROR,
                    ..header
                }
            };
            wbuf.reserve(total);
            wbuf.put_slice(&reply.to_bytes());
            wbuf.put_slice(auth);
            wbuf.put_slice(body);
            rbuf.advance(total);
        }
        if !wbuf.is_empty() {
            stream.write_all(&wbuf).await?;
            wbuf.clear();
        }
        if rbuf.capacity() - rbuf.len() < 8 * 1024 {
            rbuf.reserve(16 * 1024);
        }
        if stream.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
    }
}
