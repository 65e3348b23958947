//! The netaio side: netaio's own client, as a user writes it. `TcpClient` with the mode's instance
//! plugins, `Connection::request("echo", content)` per message; W2 keeps `window` requests in
//! flight with `buffer_unordered`; W3 uses one client per connection (a client keeps one
//! connection per server address).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use netaio::{Connection, TcpClient};

use super::raw_side::rate_sample;
use crate::client::latency_sample;
use crate::frames::plugins;
use crate::stats::Sample;
use crate::{ECHO_URI, Mode, Result};

fn content(size: usize) -> Bytes {
    Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

/// A client with the mode's plugins, connected to `addr`. Its replay cache holds `replay`
/// nonces (every reply of the run comes within the freshness window).
async fn connect(addr: SocketAddr, mode: Mode, replay: usize) -> Result<Connection> {
    let p = plugins(mode, replay);
    let mut builder = TcpClient::builder();
    if let Some(auth) = p.auth {
        builder = builder.auth_arc(auth);
    }
    if let Some(cipher) = p.cipher {
        builder = builder.cipher_arc(cipher);
    }
    Ok(builder.build().connect(addr).await?)
}

fn check(reply: &netaio::Message, expect: &Bytes) -> Result<()> {
    if reply.content() != expect {
        return Err("the echo's content differs from the request's".into());
    }
    Ok(())
}

/// W1: `count` timed round trips after `warmup` untimed ones.
pub async fn round_trips(
    addr: SocketAddr,
    mode: Mode,
    size: usize,
    count: usize,
    warmup: usize,
) -> Result<Sample> {
    let conn = connect(addr, mode, count + warmup + 1_000).await?;
    let body = content(size);
    for _ in 0..warmup {
        check(&conn.request(ECHO_URI, body.clone()).await?, &body)?;
    }
    let mut lat = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        check(&conn.request(ECHO_URI, body.clone()).await?, &body)?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(latency_sample(count as u64, secs, size, lat))
}

/// W2: `count` requests, `window` in flight.
pub async fn windowed(
    addr: SocketAddr,
    mode: Mode,
    size: usize,
    count: usize,
    warmup: usize,
    window: usize,
) -> Result<Sample> {
    let conn = connect(addr, mode, count + warmup + 1_000).await?;
    let body = content(size);
    let run = |n: usize| {
        let (conn, body) = (&conn, &body);
        futures::stream::iter(0..n)
            .map(move |_| conn.request(ECHO_URI, body.clone()))
            .buffer_unordered(window.max(1))
    };
    let mut warm = run(warmup);
    while let Some(reply) = warm.next().await {
        check(&reply?, &body)?;
    }
    let start = Instant::now();
    let mut timed = run(count);
    while let Some(reply) = timed.next().await {
        check(&reply?, &body)?;
    }
    Ok(rate_sample(count, start, size))
}

/// W3: `conns` connections doing round trips until `duration` has passed.
pub async fn many(
    addr: SocketAddr,
    mode: Mode,
    size: usize,
    conns: usize,
    duration: Duration,
) -> Result<Sample> {
    let body = content(size);
    let mut all = Vec::with_capacity(conns);
    for _ in 0..conns {
        // Each connection sends well under a million requests in a run.
        all.push(connect(addr, mode, 1_000_000).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = all
        .into_iter()
        .map(|conn| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    check(&conn.request(ECHO_URI, body.clone()).await?, &body)?;
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
