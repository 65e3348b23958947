//! `tarpc-echo`: the tarpc side of netaio-bench's `rpc-compare` (issue 20). One
//! `echo(Vec<u8>) -> Vec<u8>` service, bincode over TCP (tarpc's `serde_transport::tcp`), served
//! as tarpc's README serves (each channel's requests run as tasks of their own) and called as a
//! user calls it (`EchoClient`, a fresh `context::current()` each).
//!
//! `tarpc-echo server [--address A]` prints `listening ADDR` and serves until killed;
//! `tarpc-echo client --address A --workload w1|w2|w3 …` prints one JSON line with the fields
//! of netaio-bench's `Sample`. `rpc-compare` runs both; this package has no netaio in it, so
//! that tarpc's dependency features (it turns on `tracing`'s `log`) stay out of netaio's build.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, future};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

/// The echo service.
#[tarpc::service]
pub trait Echo {
    /// The payload back.
    async fn echo(payload: Vec<u8>) -> Vec<u8>;
}

/// The server's implementation of [`Echo`].
#[derive(Debug, Clone, Copy)]
pub struct EchoServer;

impl Echo for EchoServer {
    async fn echo(self, _: context::Context, payload: Vec<u8>) -> Vec<u8> {
        payload
    }
}

/// A tarpc echo server or client for rpc-compare.
#[derive(Debug, Parser)]
#[command(name = "tarpc-echo")]
enum Cli {
    /// Serve until killed; prints `listening ADDR`
    Server {
        /// Address to listen on
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        address: SocketAddr,
    },
    /// Run one workload; prints one JSON line
    Client(ClientArgs),
}

/// The client's flags (as `rpc-compare client` names them).
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// The server's address
    #[arg(long, value_name = "ADDR")]
    address: SocketAddr,
    /// w1 (round trips), w2 (--window in flight) or w3 (--conns connections for --seconds)
    #[arg(long, value_name = "W", value_parser = ["w1", "w2", "w3", "W1", "W2", "W3"])]
    workload: String,
    /// Request content bytes
    #[arg(long, value_name = "B", default_value_t = 64)]
    size: usize,
    /// Timed requests of W1 and W2
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    count: usize,
    /// Untimed requests first (W1, W2)
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    warmup: usize,
    /// Requests in flight in W2
    #[arg(long, value_name = "N", default_value_t = 256)]
    window: usize,
    /// Connections of W3
    #[arg(long, value_name = "N", default_value_t = 50)]
    conns: usize,
    /// Duration of W3, seconds
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    seconds: f64,
}

/// What the client prints: the fields of netaio-bench's `Sample`.
#[derive(Debug, serde::Serialize)]
struct Sample {
    count: u64,
    secs: f64,
    rate: f64,
    mb_per_s: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    inline_sealed: u64,
    lost: u64,
}

impl Sample {
    fn new(count: usize, secs: f64, size: usize, mut lat: Vec<u64>) -> Self {
        lat.sort_unstable();
        let pct = |p: f64| {
            let rank = ((p / 100.0) * lat.len() as f64).ceil() as usize;
            lat.get(rank.clamp(1, lat.len().max(1)) - 1)
                .map(|ns| *ns as f64 / 1_000.0)
        };
        Sample {
            count: count as u64,
            secs,
            rate: count as f64 / secs,
            mb_per_s: (count as f64 * size as f64) / secs / 1e6,
            p50_us: pct(50.0),
            p99_us: pct(99.0),
            inline_sealed: 0,
            lost: 0,
        }
    }
}

fn main() -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                match Cli::parse() {
                    Cli::Server { address } => serve(address).await,
                    Cli::Client(args) => run_client(args).await,
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serve [`Echo`] on `addr` until killed; prints `listening ADDR` once bound.
async fn serve(addr: SocketAddr) -> Result<()> {
    let listener = tarpc::serde_transport::tcp::listen(addr, Bincode::default).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {}", listener.local_addr())?;
        out.flush()?;
    }
    listener
        .filter_map(|t| future::ready(t.ok()))
        .for_each(|transport| {
            // As netaio and the raw server do.
            let _ = transport.get_ref().set_nodelay(true);
            let channel = BaseChannel::with_defaults(transport);
            tokio::spawn(
                channel
                    .execute(EchoServer.serve())
                    .for_each(|response| async move {
                        tokio::spawn(response);
                    }),
            );
            future::ready(())
        })
        .await;
    Ok(())
}

async fn run_client(a: ClientArgs) -> Result<()> {
    let run = async {
        match a.workload.to_ascii_lowercase().as_str() {
            "w1" => round_trips(a.address, a.size, a.count, a.warmup).await,
            "w2" => windowed(a.address, a.size, a.count, a.warmup, a.window).await,
            _ => {
                many(
                    a.address,
                    a.size,
                    a.conns,
                    Duration::from_secs_f64(a.seconds),
                )
                .await
            }
        }
    };
    let sample = match tokio::time::timeout(Duration::from_secs(300), run).await {
        Ok(r) => r?,
        Err(_) => return Err("the workload did not finish within 300 s".into()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&sample)?)?;
    out.flush()?;
    Ok(())
}

async fn connect(addr: SocketAddr, window: usize) -> Result<EchoClient> {
    let transport = tarpc::serde_transport::tcp::connect(addr, Bincode::default).await?;
    transport.get_ref().set_nodelay(true)?;
    let mut config = client::Config::default();
    config.max_in_flight_requests = config.max_in_flight_requests.max(window);
    config.pending_request_buffer = config.pending_request_buffer.max(window);
    Ok(EchoClient::new(config, transport).spawn())
}

fn content(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

async fn one(client: &EchoClient, body: &[u8]) -> Result<()> {
    let reply = client.echo(context::current(), body.to_vec()).await?;
    if reply != body {
        return Err("the echo differs from the request".into());
    }
    Ok(())
}

/// W1: `count` timed round trips after `warmup` untimed ones.
async fn round_trips(addr: SocketAddr, size: usize, count: usize, warmup: usize) -> Result<Sample> {
    let client = connect(addr, 1).await?;
    let body = content(size);
    for _ in 0..warmup {
        one(&client, &body).await?;
    }
    let mut lat = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        one(&client, &body).await?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    Ok(Sample::new(count, start.elapsed().as_secs_f64(), size, lat))
}

/// W2: `count` requests, `window` in flight.
async fn windowed(
    addr: SocketAddr,
    size: usize,
    count: usize,
    warmup: usize,
    window: usize,
) -> Result<Sample> {
    let client = connect(addr, window).await?;
    let body = content(size);
    let run = |n: usize| {
        let (client, body) = (&client, &body);
        futures::stream::iter(0..n)
            .map(move |_| one(client, body))
            .buffer_unordered(window.max(1))
    };
    let mut warm = run(warmup);
    while let Some(r) = warm.next().await {
        r?;
    }
    let start = Instant::now();
    let mut timed = run(count);
    while let Some(r) = timed.next().await {
        r?;
    }
    Ok(Sample::new(
        count,
        start.elapsed().as_secs_f64(),
        size,
        Vec::new(),
    ))
}

/// W3: `conns` connections doing round trips until `duration` has passed.
async fn many(addr: SocketAddr, size: usize, conns: usize, duration: Duration) -> Result<Sample> {
    let body = content(size);
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(connect(addr, 1).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    one(&client, &body).await?;
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                Ok::<_, Error>(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let n = lat.len();
    Ok(Sample::new(n, start.elapsed().as_secs_f64(), size, lat))
}
