//! The relay scenario of BENCHMARKS.md (issue 14): request/response between two netaio nodes in
//! this process, directly (a client calling a server) and through a [`Relay`] (both peers
//! reserved at the relay; the service is a client connection of the relay, as behind a NAT), for
//! a small and a large payload. It reports the request rate and throughput of each and the ratio
//! relay ÷ direct, and prints one JSON line.

use std::time::{Duration, Instant};

use netaio::peer::Peer;
use netaio::relay::{Rate, Relay, RelayConfig};
use netaio::{CallOptions, Connection, Message, MessageType, Router, TcpClient, TcpServer};
use serde::Serialize;

/// `relay` flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "relay")]
pub struct RelayArgs {
    /// Calls per measurement
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Calls in flight at once (each caller task makes one call at a time)
    #[arg(long, default_value_t = 16)]
    pub concurrency: u64,
    /// Payload sizes, bytes (request and reply alike)
    #[arg(long, value_delimiter = ',', default_value = "64,60000")]
    pub sizes: Vec<usize>,
    /// Which paths to measure: `both`, or one of `direct` and `relay` (one path per process, for
    /// callgrind: the instructions of N more calls are the difference of two runs)
    #[arg(long, default_value = "both")]
    pub mode: String,
}

/// One measurement.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rates {
    /// Calls answered per second.
    pub calls_per_s: f64,
    /// Payload bytes per second, both directions.
    pub mb_per_s: f64,
}

/// Direct and relayed at one size.
#[derive(Debug, Clone, Serialize)]
pub struct RelayRow {
    /// Payload bytes.
    pub size: usize,
    /// A client calling a server.
    pub direct: Rates,
    /// The same through a relay.
    pub relayed: Rates,
    /// relayed ÷ direct, calls per second.
    pub ratio: f64,
}

fn echo() -> Router {
    Router::new().on(
        (MessageType::REQUEST_URI, "echo"),
        |m: Message| async move { Message::respond("echo", m.content().clone()) },
    )
}

/// Run `count` calls, `concurrency` at a time, with `call`.
async fn measure<F, Fut>(args: &RelayArgs, size: usize, call: F) -> crate::Result<Rates>
where
    F: Fn(Message) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Message, netaio::RequestError>> + Send,
{
    let per_task = args.count / args.concurrency.max(1);
    let payload = bytes::Bytes::from(vec![0x5a; size]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let call = call.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let reply = call(Message::new(
                    MessageType::REQUEST_URI,
                    "echo",
                    payload.clone(),
                ))
                .await?;
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
    let calls = (per_task * args.concurrency.max(1)) as f64;
    Ok(Rates {
        calls_per_s: calls / secs,
        mb_per_s: calls * 2.0 * size as f64 / secs / 1e6,
    })
}

/// The relay's limits for the benchmark: rates and queues out of the way (the defaults allow 500
/// envelopes per second per connection).
fn bench_config() -> RelayConfig {
    RelayConfig::default()
        .envelope_rate_per_sender(Rate::per_second(u32::MAX.into()))
        .envelope_rate_per_ip(Rate::per_second(u32::MAX.into()))
        .byte_rate_per_sender(Rate::per_second(u64::MAX >> 8))
        .byte_rate_per_ip(Rate::per_second(u64::MAX >> 8))
        .queue_envelopes(4096)
        .queue_bytes(256 << 20)
}

/// Both measurements at each size.
pub async fn run(args: &RelayArgs) -> crate::Result<Vec<RelayRow>> {
    let timeout = CallOptions::new().timeout(Duration::from_secs(30));
    // Direct: a client calling a server.
    // Queues large enough for every call in flight at the largest size (a call that finds its
    // queue full fails at once, which would end the measurement).
    const QUEUE: usize = 64 << 20;
    let client = || TcpClient::builder().send_queue_bytes(QUEUE);
    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(echo())
        .send_queue_bytes(QUEUE)
        .bind()
        .await?;
    let direct_addr = server.local_addr();
    tokio::spawn(server.serve());
    let direct: Connection = client().build().connect(direct_addr).await?;
    // Through a relay: the service reserved as `c`, the caller as `a`.
    let relay = Relay::new(bench_config());
    let rserver = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new().merge(relay.router()))
        .send_queue_bytes(QUEUE)
        .bind()
        .await?;
    let raddr = rserver.local_addr();
    tokio::spawn(rserver.serve());
    let service = client().router(echo()).build();
    let c = service.connect(raddr).await?;
    c.reserve("c").await?;
    let a = client().build().connect(raddr).await?;
    a.reserve("a").await?;
    let peer = Peer::new("c");
    let mut rows = Vec::new();
    for &size in &args.sizes {
        // A short warm-up of each path, then the measurements.
        let warm = RelayArgs {
            count: args.count / 10,
            ..args.clone()
        };
        let (d, o) = (direct.clone(), timeout.clone());
        let direct_call = move |m| {
            let (d, o) = (d.clone(), o.clone());
            async move { d.start_call(m, &o).await }
        };
        let (r, p, o) = (a.clone(), peer.clone(), timeout.clone());
        let relay_call = move |m| {
            let (r, p, o) = (r.clone(), p.clone(), o.clone());
            async move { r.start_call_via_relay(&p, m, &o).await }
        };
        let (do_direct, do_relay) = match args.mode.as_str() {
            "direct" => (true, false),
            "relay" => (false, true),
            _ => (true, true),
        };
        let none = Rates {
            calls_per_s: f64::NAN,
            mb_per_s: f64::NAN,
        };
        if do_direct {
            measure(&warm, size, direct_call.clone()).await?;
        }
        if do_relay {
            measure(&warm, size, relay_call.clone()).await?;
        }
        let d = match do_direct {
            true => measure(args, size, direct_call).await?,
            false => none,
        };
        let r = match do_relay {
            true => measure(args, size, relay_call).await?,
            false => none,
        };
        rows.push(RelayRow {
            size,
            direct: d,
            relayed: r,
            ratio: r.calls_per_s / d.calls_per_s,
        });
    }
    Ok(rows)
}
