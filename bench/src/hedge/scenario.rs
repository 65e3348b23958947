//! The scenario's two halves: a server that stalls on a fixed pseudo-random share of its
//! requests, and the client's interleaved phases against two of them.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netaio::udp::{UdpHandle, UdpNode};
use netaio::{
    CallOptions, Connection, HedgeBudget, Message, MessageType, RequestError, Router, TcpClient,
    TcpServer,
};

use super::{CallArgs, Phase, Rounds, StallArgs, calls_in_round, round_order};

/// Untimed calls to each server before the first round.
const WARMUP: usize = 1_000;

/// A deterministic generator (splitmix64), so that every run stalls the same requests.
fn splitmix(state: &AtomicU64) -> u64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The echo route, answering `name`, stalling as `stall` says.
fn router(name: &str, stall: &StallArgs) -> Router {
    let state = Arc::new(AtomicU64::new(7));
    let percent = stall.stall_percent;
    let threshold = (percent / 100.0 * u64::MAX as f64) as u64;
    let wait = Duration::from_millis(stall.stall_ms);
    // Cloned per reply: a reference count, not a copy.
    let name = Bytes::from(name.to_owned());
    Router::new().on(
        (MessageType::REQUEST_URI, crate::ECHO_URI),
        move |_m: Message| {
            let stalls = percent > 0.0 && splitmix(&state) < threshold;
            let name = name.clone();
            async move {
                if stalls {
                    tokio::time::sleep(wait).await;
                }
                Message::respond(crate::ECHO_URI, name)
            }
        },
    )
}

/// A TCP server (or, `udp`, a UDP node) answering `name`, bound to `addr` and serving in a task
/// of the current runtime until the process ends.
pub async fn serve(
    addr: SocketAddr,
    name: &str,
    stall: &StallArgs,
    udp: bool,
) -> crate::Result<SocketAddr> {
    let router = router(name, stall);
    if udp {
        let node = UdpNode::bind(addr, router).await?;
        let addr = node.local_addr();
        tokio::spawn(node.serve());
        return Ok(addr);
    }
    let server = TcpServer::builder()
        .address(addr)
        .router(router)
        .concurrent_requests(stall.concurrent)
        .bind()
        .await?;
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    Ok(addr)
}

/// The client's two targets, the stalling one first.
#[derive(Debug)]
pub enum Targets {
    /// A connection to each TCP server.
    Tcp {
        /// The client the connections belong to.
        client: TcpClient,
        /// [stalling, fast].
        conns: [Connection; 2],
    },
    /// A UDP node of the client's own and the two servers' addresses.
    Udp {
        /// The client's node.
        node: UdpHandle,
        /// [stalling, fast].
        addrs: [SocketAddr; 2],
    },
}

impl Targets {
    /// Connect to (or, `udp`, bind a node for) the two servers, and warm both up.
    pub async fn connect(stalling: SocketAddr, fast: SocketAddr, udp: bool) -> crate::Result<Self> {
        let targets = if udp {
            let node = UdpNode::bind(([127, 0, 0, 1], 0), Router::new()).await?;
            let handle = node.handle();
            tokio::spawn(node.serve());
            Targets::Udp {
                node: handle,
                addrs: [stalling, fast],
            }
        } else {
            let client = TcpClient::new();
            let conns = [client.connect(stalling).await?, client.connect(fast).await?];
            Targets::Tcp { client, conns }
        };
        for which in [Server::Stalling, Server::Fast] {
            for _ in 0..WARMUP {
                targets.call(which).await?;
            }
        }
        Ok(targets)
    }

    async fn call(&self, which: Server) -> Result<Message, RequestError> {
        match self {
            Targets::Tcp { conns, .. } => pick(conns, which).call(req()).await,
            Targets::Udp { node, addrs } => node.call(*pick(addrs, which), req()).await,
        }
    }

    async fn soft(&self, which: Server, opts: &CallOptions) -> Result<Message, RequestError> {
        match self {
            Targets::Tcp { conns, .. } => pick(conns, which).start_call(req(), opts).await,
            Targets::Udp { node, addrs } => node.start_call(*pick(addrs, which), req(), opts).await,
        }
    }

    async fn hedged(&self, opts: &CallOptions) -> Result<Message, RequestError> {
        match self {
            Targets::Tcp { conns, .. } => netaio::call_any(conns, req(), opts).await,
            Targets::Udp { node, addrs } => node.call_any(addrs, req(), opts).await,
        }
    }

    fn soft_timeouts(&self, which: Server) -> u64 {
        match self {
            Targets::Tcp { conns, .. } => pick(conns, which).request_stats().soft_timeouts,
            // One node for both servers: its count covers every call it made.
            Targets::Udp { node, .. } => node.request_stats().soft_timeouts,
        }
    }

    /// Close the connections (or the node).
    pub async fn close(self) {
        match self {
            Targets::Tcp { client, .. } => client.close_all().await,
            Targets::Udp { node, .. } => node.shutdown(),
        }
    }
}

/// One of the two servers.
#[derive(Debug, Clone, Copy)]
enum Server {
    Stalling,
    Fast,
}

/// `pair`'s element for `which` ([stalling, fast]).
fn pick<T>(pair: &[T; 2], which: Server) -> &T {
    let [stalling, fast] = pair;
    match which {
        Server::Stalling => stalling,
        Server::Fast => fast,
    }
}

fn req() -> Message {
    Message::new(MessageType::REQUEST_URI, crate::ECHO_URI, "x")
}

/// `count` calls one after another; their round-trip times in ns.
async fn measure<F, Fut>(count: u64, mut call: F) -> crate::Result<Vec<u64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Message, RequestError>>,
{
    let mut v = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for _ in 0..count {
        let t = Instant::now();
        call().await?;
        v.push(t.elapsed().as_nanos() as u64);
    }
    Ok(v)
}

/// The phases, interleaved in `args.rounds` rounds; each round's ratio is printed on stderr as
/// it ends.
pub async fn run_rounds(targets: &Targets, args: &CallArgs) -> crate::Result<Rounds> {
    let soft = CallOptions::new().soft_timeout(Duration::from_micros(args.soft_us));
    let hedge = match args.budget {
        Some(ratio) => soft.clone().hedge(1).hedge_budget(HedgeBudget::new(ratio)),
        None => soft.clone().hedge(1),
    };
    let rounds = args.rounds.max(1);
    let mut r = Rounds::with_capacity(args.count);
    for round in 0..rounds {
        let n = calls_in_round(args.count, rounds, round);
        for phase in round_order(round) {
            let times = match phase {
                Phase::Fast => measure(n, || targets.call(Server::Fast)).await?,
                Phase::Stalling => measure(n, || targets.call(Server::Stalling)).await?,
                Phase::SoftOnly => {
                    let before = targets.soft_timeouts(Server::Stalling);
                    let times = measure(n, || targets.soft(Server::Stalling, &soft)).await?;
                    r.soft_passed += targets.soft_timeouts(Server::Stalling) - before;
                    times
                }
                Phase::Hedged => {
                    let by_second = Cell::new(0);
                    let times = measure(n, || async {
                        let reply = targets.hedged(&hedge).await?;
                        if reply.content().as_ref() == b"fast" {
                            by_second.set(by_second.get() + 1);
                        }
                        Ok(reply)
                    })
                    .await?;
                    r.by_second += by_second.get();
                    times
                }
            };
            r.record(phase, times);
        }
        r.end_round();
        if let Some(last) = r.last_round() {
            eprintln!(
                "  round {round}: fast p99 {:>9.1} µs, hedged p99 {:>9.1} µs, ratio {:.2}",
                last.fast_p99_us, last.hedged_p99_us, last.ratio
            );
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_stalls_the_asked_share() {
        let state = AtomicU64::new(7);
        let threshold = (0.05 * u64::MAX as f64) as u64;
        let n = (0..100_000)
            .filter(|_| splitmix(&state) < threshold)
            .count();
        assert!((4_500..5_500).contains(&n), "{n}");
    }

    /// The phases against two in-process servers on loopback, untimed: what is checked is the
    /// bookkeeping (every call counted once, in its phase and round), not the latencies. Nothing
    /// stalls and the soft timeout (10 s) is never reached, so no timer decides the outcome.
    #[tokio::test]
    async fn every_call_of_every_phase_is_counted_in_its_round() {
        for udp in [false, true] {
            let stall = StallArgs {
                stall_ms: 10,
                stall_percent: 0.0,
                concurrent: 1,
            };
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            let stalling = serve(any, "stalling", &stall, udp).await.unwrap();
            let fast = serve(any, "fast", &stall, udp).await.unwrap();
            let targets = Targets::connect(stalling, fast, udp).await.unwrap();
            let args = CallArgs {
                count: 31,
                rounds: 3,
                soft_us: 10_000_000,
                budget: Some(0.1),
            };
            let r = run_rounds(&targets, &args).await.unwrap().finish();
            targets.close().await;
            assert_eq!(
                (r.count, r.rounds, r.per_round.len()),
                (31, 3, 3),
                "udp {udp}"
            );
            assert!(
                r.per_round
                    .iter()
                    .all(|x| x.ratio.is_finite() && x.ratio > 0.0)
            );
            // The first server answers every hedged call: the soft timeout never passes.
            assert_eq!(
                (r.hedged_by_second, r.soft_only_passed),
                (0, 0),
                "udp {udp}"
            );
            assert!(r.fast_only.p50_us > 0.0 && r.hedged.p99_us > 0.0);
        }
    }
}
