//! The hedging scenario of BENCHMARKS.md: two netaio TCP servers (or UDP nodes) in this process, one of which
//! stalls (`--stall-ms`, 10 ms) on a share of its requests (`--stall-percent`, 5 %), and one
//! client making one call at a time. It measures the round-trip latency (p50, p99) of calls to
//! the fast server alone, to the stalling server alone (no hedging), to the stalling server with
//! the soft timeout but no hedge (how many calls pass their soft timeout when nothing is
//! cancelled: what the soft-timeout machinery costs by itself), and of `call_any` over both (the
//! stalling one first, the other asked when the soft timeout passes), and prints them with one
//! JSON line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netaio::udp::UdpNode;
use netaio::{CallOptions, Connection, Message, MessageType, Router, TcpClient, TcpServer};
use serde::Serialize;

use crate::stats::percentile;

/// `hedge` flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "hedge")]
pub struct HedgeArgs {
    /// Calls per measurement
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// How long the stalling server stalls, ms
    #[arg(long, default_value_t = 10)]
    pub stall_ms: u64,
    /// The share of its requests it stalls, %
    #[arg(long, default_value_t = 5.0)]
    pub stall_percent: f64,
    /// The soft timeout after which the other server is asked, µs (below 1000 the node's
    /// request timer is woken at it by netaio's fine timer thread instead of tokio's timer
    /// rounding it up to its next millisecond tick)
    #[arg(long, default_value_t = 1000)]
    pub soft_us: u64,
    /// Over UDP instead of TCP (no head-of-line blocking: a stalled request does not hold up
    /// the next ones)
    #[arg(long)]
    pub udp: bool,
    /// TCP: handlers of one connection the servers run at once (`concurrent_requests`; 1, the
    /// default, handles a connection's requests in order, so a stalled one holds up the next)
    #[arg(long, default_value_t = 1)]
    pub concurrent: usize,
}

/// p50 and p99 of one measurement, µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// The largest.
    pub max_us: f64,
}

/// The three measurements.
#[derive(Debug, Clone, Serialize)]
pub struct HedgeResult {
    /// Calls to the server that never stalls.
    pub fast_only: Latency,
    /// Calls to the stalling server, no hedging.
    pub stalling_only: Latency,
    /// Calls to the stalling server with the soft timeout and no hedge: what the soft-timeout
    /// machinery costs by itself.
    pub soft_only: Latency,
    /// Of those, the calls whose soft timeout passed (the ones a hedge would have sent on).
    pub soft_only_passed: u64,
    /// `call_any` over both, the stalling one first.
    pub hedged: Latency,
    /// Hedged calls answered by the second server.
    pub hedged_by_second: u64,
    /// The soft timeout, µs.
    pub soft_us: u64,
    /// The servers' `concurrent_requests` (TCP).
    pub concurrent: usize,
}

/// A deterministic generator (splitmix64), so that every run stalls the same requests.
fn splitmix(state: &AtomicU64) -> u64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn router(name: &'static str, stall: Duration, percent: f64) -> Router {
    let state = Arc::new(AtomicU64::new(7));
    let threshold = (percent / 100.0 * u64::MAX as f64) as u64;
    Router::new().on(
        (MessageType::REQUEST_URI, crate::ECHO_URI),
        move |_m: Message| {
            let stalls = percent > 0.0 && splitmix(&state) < threshold;
            async move {
                if stalls {
                    tokio::time::sleep(stall).await;
                }
                Message::respond(crate::ECHO_URI, name)
            }
        },
    )
}

async fn serve(router: Router, concurrent: usize) -> crate::Result<std::net::SocketAddr> {
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(router)
        .concurrent_requests(concurrent)
        .bind()
        .await?;
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    Ok(addr)
}

fn latency(mut v: Vec<u64>) -> Latency {
    v.sort_unstable();
    let us = |p: f64| percentile(&v, p).unwrap_or(0) as f64 / 1000.0;
    Latency {
        p50_us: us(50.0),
        p99_us: us(99.0),
        max_us: us(100.0),
    }
}

async fn measure<F, Fut>(count: u64, mut call: F) -> crate::Result<Vec<u64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Message, netaio::RequestError>>,
{
    let mut v = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let t = Instant::now();
        call().await?;
        v.push(t.elapsed().as_nanos() as u64);
    }
    Ok(v)
}

/// Run the scenario.
pub async fn run(args: &HedgeArgs) -> crate::Result<HedgeResult> {
    if args.udp {
        return run_udp(args).await;
    }
    let stall = Duration::from_millis(args.stall_ms);
    let stalling = serve(
        router("stalling", stall, args.stall_percent),
        args.concurrent,
    )
    .await?;
    let fast = serve(router("fast", stall, 0.0), args.concurrent).await?;
    let client = TcpClient::new();
    let conns: [Connection; 2] = [client.connect(stalling).await?, client.connect(fast).await?];
    // Warm up both connections.
    for c in &conns {
        for _ in 0..1000 {
            c.call(req()).await?;
        }
    }
    let fast_only = measure(args.count, || conns[1].call(req())).await?;
    let stalling_only = measure(args.count, || conns[0].call(req())).await?;
    let soft = soft_options(args);
    let before = conns[0].request_stats().soft_timeouts;
    let soft_only = measure(args.count, || conns[0].start_call(req(), &soft)).await?;
    let soft_passed = conns[0].request_stats().soft_timeouts - before;
    let opts = options(args);
    let by_second = AtomicU64::new(0);
    let hedged = measure(args.count, || async {
        let r = netaio::call_any(&conns, req(), &opts).await?;
        count_fast(&r, &by_second);
        Ok(r)
    })
    .await?;
    client.close_all().await;
    let soft_only = (soft_only, soft_passed);
    Ok(result(
        args,
        fast_only,
        stalling_only,
        soft_only,
        hedged,
        &by_second,
    ))
}

async fn run_udp(args: &HedgeArgs) -> crate::Result<HedgeResult> {
    let stall = Duration::from_millis(args.stall_ms);
    let a = UdpNode::bind(
        ([127, 0, 0, 1], 0),
        router("stalling", stall, args.stall_percent),
    )
    .await?;
    let b = UdpNode::bind(([127, 0, 0, 1], 0), router("fast", stall, 0.0)).await?;
    let addrs = [a.local_addr(), b.local_addr()];
    let nodes = [a.handle(), b.handle()];
    tokio::spawn(a.serve());
    tokio::spawn(b.serve());
    let node = UdpNode::bind(([127, 0, 0, 1], 0), Router::new()).await?;
    let client = node.handle();
    tokio::spawn(node.serve());
    let [stalling, fast] = addrs;
    for a in [stalling, fast] {
        for _ in 0..1000 {
            client.call(a, req()).await?;
        }
    }
    let fast_only = measure(args.count, || client.call(fast, req())).await?;
    let stalling_only = measure(args.count, || client.call(stalling, req())).await?;
    let soft = soft_options(args);
    let before = client.request_stats().soft_timeouts;
    let soft_only = measure(args.count, || client.start_call(stalling, req(), &soft)).await?;
    let soft_passed = client.request_stats().soft_timeouts - before;
    let opts = options(args);
    let by_second = AtomicU64::new(0);
    let hedged = measure(args.count, || async {
        let r = client.call_any(&addrs, req(), &opts).await?;
        count_fast(&r, &by_second);
        Ok(r)
    })
    .await?;
    for n in nodes.iter().chain([&client]) {
        n.shutdown();
    }
    let soft_only = (soft_only, soft_passed);
    Ok(result(
        args,
        fast_only,
        stalling_only,
        soft_only,
        hedged,
        &by_second,
    ))
}

fn req() -> Message {
    Message::new(MessageType::REQUEST_URI, crate::ECHO_URI, "x")
}

fn soft_options(args: &HedgeArgs) -> CallOptions {
    CallOptions::new().soft_timeout(Duration::from_micros(args.soft_us))
}

fn options(args: &HedgeArgs) -> CallOptions {
    soft_options(args).hedge(1)
}

fn count_fast(reply: &Message, by_second: &AtomicU64) {
    if reply.content().as_ref() == b"fast" {
        by_second.fetch_add(1, Ordering::Relaxed);
    }
}

fn result(
    args: &HedgeArgs,
    fast_only: Vec<u64>,
    stalling_only: Vec<u64>,
    (soft_only, soft_only_passed): (Vec<u64>, u64),
    hedged: Vec<u64>,
    by_second: &AtomicU64,
) -> HedgeResult {
    HedgeResult {
        fast_only: latency(fast_only),
        stalling_only: latency(stalling_only),
        soft_only: latency(soft_only),
        soft_only_passed,
        hedged: latency(hedged),
        hedged_by_second: by_second.load(Ordering::Relaxed),
        soft_us: args.soft_us,
        concurrent: args.concurrent,
    }
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

    #[test]
    fn percentiles_in_microseconds() {
        let l = latency((1..=100).map(|i| i * 1000).collect());
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (50.0, 99.0, 100.0));
    }
}
