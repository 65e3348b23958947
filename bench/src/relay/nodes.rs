//! The scenario's nodes (the direct path's server, the relay, the service behind it, the
//! caller's ends of both paths) over TCP or UDP, and the measurement: both paths in rounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netaio::peer::Peer;
use netaio::plugin::SendOptions;
use netaio::relay::{Rate, Relay, RelayConfig};
use netaio::udp::{UdpNode, UdpNodeBuilder, UdpRelay};
use netaio::{
    CallOptions, Connection, Message, MessageType, RequestError, Router, TcpClient, TcpServer,
    UdpHandle,
};

use super::{CallArgs, CpuTally, Path, Rates, RelayRow, RoundRates, round_order, row};
use crate::Transport;
use crate::procs::cpu_ns;

/// The service's id at the relay.
pub const SERVICE_ID: &str = "c";

/// How long a call may take: long enough for any queue, short enough that a lost datagram
/// ends the run instead of hanging it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Queues large enough for every call in flight at the largest size (a call that finds its
/// queue full fails at once, which would end the measurement).
const QUEUE: usize = 64 << 20;

fn echo() -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, crate::ECHO_URI),
        |m: Message| async move { Message::respond(crate::ECHO_URI, m.content().clone()) },
    )
}

/// The relay's limits for the benchmark: rates, queues and reservations out of the way (the
/// defaults allow 500 envelopes per second per connection and 4 reservations per IP address).
fn bench_config() -> RelayConfig {
    RelayConfig::default()
        .envelope_rate_per_sender(Rate::per_second(u32::MAX.into()))
        .envelope_rate_per_ip(Rate::per_second(u32::MAX.into()))
        .byte_rate_per_sender(Rate::per_second(u64::MAX >> 8))
        .byte_rate_per_ip(Rate::per_second(u64::MAX >> 8))
        .max_reservations_per_ip(64)
        .queue_envelopes(4096)
        .queue_bytes(256 << 20)
}

const LOCALHOST: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

/// A UDP node on localhost, with both socket buffers at `buffer` bytes when given
/// (`--udp-buffer`; else the kernel's defaults, which 16 calls in flight of 8 kB overflow).
fn udp_builder(buffer: Option<usize>) -> UdpNodeBuilder {
    let b = UdpNode::builder().address(LOCALHOST);
    match buffer {
        Some(n) => b.recv_buffer_size(n).send_buffer_size(n),
        None => b,
    }
}

/// Print the `role`'s socket buffers as the kernel reports them (Linux: twice the size granted),
/// when `--udp-buffer` asked for a size.
fn report_buffers(role: &str, node: &UdpHandle, buffer: Option<usize>) {
    if let Some(asked) = buffer {
        let show = |r: std::io::Result<usize>| r.map_or_else(|e| e.to_string(), |n| n.to_string());
        eprintln!(
            "relay: the {role}'s UDP socket buffers, {asked} B asked: SO_RCVBUF {}, SO_SNDBUF {} \
             (as the kernel reports them; Linux reports twice what it granted)",
            show(node.recv_buffer_size()),
            show(node.send_buffer_size()),
        );
    }
}

/// The direct path's echo server, serving in a task of the current runtime (UDP: with both
/// socket buffers at `udp_buffer` bytes when given).
pub async fn server(transport: Transport, udp_buffer: Option<usize>) -> crate::Result<SocketAddr> {
    match transport {
        Transport::Tcp => {
            let server = TcpServer::builder()
                .address(LOCALHOST)
                .router(echo())
                .send_queue_bytes(QUEUE)
                .bind()
                .await?;
            let addr = server.local_addr();
            tokio::spawn(server.serve());
            Ok(addr)
        }
        Transport::Udp => {
            let node = udp_builder(udp_buffer).router(echo()).bind().await?;
            report_buffers("server", &node.handle(), udp_buffer);
            let addr = node.local_addr();
            tokio::spawn(node.serve());
            Ok(addr)
        }
    }
}

/// The relay, serving in a task of the current runtime (UDP: with both socket buffers at
/// `udp_buffer` bytes when given).
pub async fn relay(transport: Transport, udp_buffer: Option<usize>) -> crate::Result<SocketAddr> {
    match transport {
        Transport::Tcp => {
            let relay = Relay::new(bench_config());
            let server = TcpServer::builder()
                .address(LOCALHOST)
                .router(Router::new().merge(relay.router()))
                .send_queue_bytes(QUEUE)
                .bind()
                .await?;
            let addr = server.local_addr();
            tokio::spawn(server.serve());
            Ok(addr)
        }
        Transport::Udp => {
            let node = udp_builder(udp_buffer)
                .relay(UdpRelay::new(bench_config()))
                .bind()
                .await?;
            report_buffers("relay", &node.handle(), udp_buffer);
            let addr = node.local_addr();
            tokio::spawn(node.serve());
            Ok(addr)
        }
    }
}

/// A plain TCP proxy to `to`, serving in a task of the current runtime: every accepted
/// connection is joined to a new one to `to` by tokio's `copy_bidirectional`, with 64 KiB
/// buffers (its default 8 KiB would cost more system calls per 60 kB call). It neither parses
/// nor checks what it forwards: the least a relay in user space can do.
pub async fn proxy(to: SocketAddr) -> crate::Result<SocketAddr> {
    const BUF: usize = 64 << 10;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(LOCALHOST)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(to).await?;
                inbound.set_nodelay(true)?;
                outbound.set_nodelay(true)?;
                tokio::io::copy_bidirectional_with_sizes(&mut inbound, &mut outbound, BUF, BUF)
                    .await?;
                Ok::<(), std::io::Error>(())
            });
        }
    });
    Ok(addr)
}

/// The echo service behind the relay at `relay`, reserved there as [`SERVICE_ID`]; it answers
/// for as long as the returned value lives (TCP: its connection to the relay) and the runtime
/// runs. Returns its own address too (UDP; the relay's for TCP, where it has none to offer).
/// UDP: with both socket buffers at `udp_buffer` bytes when given.
pub async fn service(
    transport: Transport,
    relay: SocketAddr,
    udp_buffer: Option<usize>,
) -> crate::Result<(SocketAddr, Box<dyn std::any::Any + Send>)> {
    match transport {
        Transport::Tcp => {
            let client = TcpClient::builder()
                .send_queue_bytes(QUEUE)
                .router(echo())
                .build();
            let conn = client.connect(relay).await?;
            conn.reserve(SERVICE_ID).await?;
            Ok((relay, Box::new((client, conn))))
        }
        Transport::Udp => {
            let node = udp_builder(udp_buffer).router(echo()).bind().await?;
            let handle = node.handle();
            report_buffers("service", &handle, udp_buffer);
            tokio::spawn(node.serve());
            handle.reserve(relay, SERVICE_ID).await?;
            Ok((handle.local_addr(), Box::new(handle)))
        }
    }
}

/// The caller's ends of both paths.
#[derive(Debug, Clone)]
pub enum Ends {
    /// A connection to the server and one to the relay (reserved as `a`).
    Tcp {
        /// To the server.
        direct: Connection,
        /// To the relay (or to a plain proxy to the server).
        relayed: Connection,
        /// `relayed` is a plain proxy to the server: called as the server is.
        proxied: bool,
    },
    /// One node calling the server's address and the relay's (reserved there as `a`).
    Udp {
        /// The caller's node.
        node: UdpHandle,
        /// The server.
        direct: SocketAddr,
        /// The relay.
        relay: SocketAddr,
    },
}

impl Ends {
    /// Connect to the server at `direct` and the relay at `relay` (and reserve there as `a`,
    /// so that replies come to an id, as the service's requests do), or, `proxied`, to a plain
    /// proxy to the server at `relay` (TCP only). UDP: with both socket buffers at
    /// `udp_buffer` bytes when given.
    pub async fn connect(
        transport: Transport,
        direct: SocketAddr,
        relay: SocketAddr,
        udp_buffer: Option<usize>,
        proxied: bool,
    ) -> crate::Result<Ends> {
        match transport {
            Transport::Tcp => {
                let client = TcpClient::builder().send_queue_bytes(QUEUE).build();
                let d = client.connect(direct).await?;
                let r = client.connect(relay).await?;
                if !proxied {
                    r.reserve("a").await?;
                }
                Ok(Ends::Tcp {
                    direct: d,
                    relayed: r,
                    proxied,
                })
            }
            Transport::Udp if proxied => Err("a proxy is TCP only".into()),
            Transport::Udp => {
                let node = udp_builder(udp_buffer).bind().await?;
                let handle = node.handle();
                report_buffers("caller", &handle, udp_buffer);
                tokio::spawn(node.serve());
                handle.reserve(relay, "a").await?;
                Ok(Ends::Udp {
                    node: handle,
                    direct,
                    relay,
                })
            }
        }
    }

    async fn call(&self, path: Path, msg: Message) -> Result<Message, RequestError> {
        let opts = CallOptions::new().timeout(CALL_TIMEOUT);
        let peer = Peer::new(SERVICE_ID);
        match (self, path) {
            (Ends::Tcp { direct, .. }, Path::Direct) => direct.start_call(msg, &opts).await,
            (
                Ends::Tcp {
                    relayed, proxied, ..
                },
                Path::Relayed,
            ) => {
                if *proxied {
                    relayed.start_call(msg, &opts).await
                } else {
                    relayed.start_call_via_relay(&peer, msg, &opts).await
                }
            }
            (Ends::Udp { node, direct, .. }, Path::Direct) => {
                let opts = SendOptions::default().timeout(CALL_TIMEOUT);
                node.call_with(*direct, msg, &opts).await
            }
            (Ends::Udp { node, relay, .. }, Path::Relayed) => {
                node.start_call_via_relay(*relay, &peer, msg, &opts).await
            }
        }
    }

    /// Stop the caller's node (UDP; TCP connections close when dropped).
    pub fn close(&self) {
        if let Ends::Udp { node, .. } = self {
            node.shutdown();
        }
    }
}

/// Make `count` calls of `size` bytes on `path`, `concurrency` at a time.
async fn measure(
    ends: &Arc<Ends>,
    path: Path,
    size: usize,
    count: u64,
    concurrency: u64,
) -> crate::Result<Rates> {
    let concurrency = concurrency.max(1);
    let per_task = count / concurrency;
    let payload = Bytes::from(vec![0x5a; size]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (ends, payload) = (ends.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let msg = Message::new(MessageType::REQUEST_URI, crate::ECHO_URI, payload.clone());
                let reply = ends.call(path, msg).await?;
                if reply.content().len() != payload.len() {
                    return Err("short reply".into());
                }
            }
            Ok::<(), crate::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let calls = (per_task * concurrency) as f64;
    Ok(Rates {
        calls_per_s: calls / secs,
        mb_per_s: calls * 2.0 * size as f64 / secs / 1e6,
    })
}

/// The processes whose CPU time is read around each measurement, by role: this one as
/// `caller` (or as `process` when it holds every node), and the server, relay and service
/// processes when they are others.
#[derive(Debug, Clone)]
pub struct Roles {
    /// This process's role name.
    pub me: &'static str,
    /// The server's, the relay's and the service's process ids (none in process).
    pub others: Option<[u32; 3]>,
}

impl Roles {
    /// The roles of `path` and their process ids (0: this process).
    fn of(&self, path: Path) -> Vec<(&'static str, u32)> {
        let mut v = vec![(self.me, 0)];
        if let Some([server, relay, service]) = self.others {
            match path {
                Path::Direct => v.push(("server", server)),
                Path::Relayed => v.extend([("relay", relay), ("service", service)]),
            }
        }
        v
    }
}

fn cpu_of(pid: u32) -> u64 {
    cpu_ns(if pid == 0 { std::process::id() } else { pid }).unwrap_or(0)
}

/// Measure both paths (as `args.mode` says) at every size in `args.rounds` rounds, after a
/// warm-up of a tenth of `args.count` calls on each; CPU time of `roles` around each.
pub async fn run_rounds(
    ends: &Arc<Ends>,
    args: &CallArgs,
    sizes: &[usize],
    roles: &Roles,
) -> crate::Result<Vec<RelayRow>> {
    let (do_direct, do_relay) = args.paths()?;
    let wanted = |p: Path| match p {
        Path::Direct => do_direct,
        Path::Relayed => do_relay,
    };
    for &size in sizes {
        for path in [Path::Direct, Path::Relayed] {
            if wanted(path) {
                measure(ends, path, size, args.count / 10, args.concurrency).await?;
            }
        }
    }
    let mut rounds: Vec<Vec<RoundRates>> = vec![Vec::new(); sizes.len()];
    let mut cpu: Vec<[CpuTally; 2]> = vec![Default::default(); sizes.len()];
    for round in 0..args.rounds.max(1) {
        for (i, &size) in sizes.iter().enumerate() {
            let mut got = [Rates::NONE; 2];
            for path in round_order(round) {
                if !wanted(path) {
                    continue;
                }
                let who = roles.of(path);
                let before: Vec<u64> = who.iter().map(|&(_, pid)| cpu_of(pid)).collect();
                let rates = measure(ends, path, size, args.count, args.concurrency).await?;
                let spent: Vec<(&str, u64)> = who
                    .iter()
                    .zip(&before)
                    .map(|(&(role, pid), b)| (role, cpu_of(pid).saturating_sub(*b)))
                    .collect();
                let calls = args.count / args.concurrency.max(1) * args.concurrency.max(1);
                let slot = usize::from(path == Path::Relayed);
                if let (Some(tally), Some(g)) = (
                    cpu.get_mut(i).and_then(|c| c.get_mut(slot)),
                    got.get_mut(slot),
                ) {
                    tally.add(calls, &spent);
                    *g = rates;
                }
            }
            let [direct, relayed] = got;
            if let Some(r) = rounds.get_mut(i) {
                r.push(RoundRates {
                    direct,
                    relayed,
                    ratio: relayed.calls_per_s / direct.calls_per_s,
                });
            }
        }
    }
    Ok(sizes
        .iter()
        .zip(rounds)
        .zip(&cpu)
        .map(|((&size, r), [d, rel])| row(size, r, [d, rel]))
        .collect())
}
