//! The tarpc side: one `echo(Vec<u8>) -> Vec<u8>` service, bincode over TCP (tarpc's
//! `serde_transport::tcp`), served as tarpc's README serves (each channel's requests run as tasks
//! of their own), called as a user calls it (`EchoClient`, a fresh `context::current()` each).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{StreamExt, future};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};

use super::raw_side::rate_sample;
use crate::Result;
use crate::client::latency_sample;
use crate::stats::Sample;

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

/// Serve [`Echo`] on `addr` until killed; prints `listening ADDR` once bound.
pub async fn serve(addr: SocketAddr) -> Result<()> {
    let listener = tarpc::serde_transport::tcp::listen(addr, Bincode::default).await?;
    super::compare::announce(listener.local_addr())?;
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
pub async fn round_trips(
    addr: SocketAddr,
    size: usize,
    count: usize,
    warmup: usize,
) -> Result<Sample> {
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
    let secs = start.elapsed().as_secs_f64();
    Ok(latency_sample(count as u64, secs, size, lat))
}

/// W2: `count` requests, `window` in flight.
pub async fn windowed(
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
    Ok(rate_sample(count, start, size))
}

/// W3: `conns` connections doing round trips until `duration` has passed.
pub async fn many(
    addr: SocketAddr,
    size: usize,
    conns: usize,
    duration: Duration,
) -> Result<Sample> {
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
                Ok::<_, crate::Error>(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(latency_sample(lat.len() as u64, secs, size, lat))
}
