//! The load generator: one client for both servers.
//!
//! It writes request frames built with netaio's codec and plugin pipeline (sealed in the plugin
//! modes) and reads replies by their 9-byte header only, checking each reply's type and body
//! length. It never decodes, verifies or decrypts a reply, so it does the same, minimal work
//! against the baseline and against netaio: what differs between two runs is the server.
//!
//! Requests are built **before** the timed part (an `HmacAuth` server refuses a replayed nonce,
//! so every request needs its own seal; sealing inline would put the client's crypto into the
//! measured round trips). W3 is bounded in time, so its pool is sized from `--rate-estimate`;
//! requests past the pool are sealed inline and counted in `inline_sealed`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Result;
use crate::args::ClientArgs;
use crate::frames::{FrameReader, Sealer, body_len};
use crate::stats::{Sample, percentile};

/// Run the client role (`bench client …`, `loadgen`): prints one JSON [`Sample`] line (or
/// `ready N` for the idle workload).
pub fn run(args: ClientArgs) -> Result<()> {
    let addr = args.address;
    let workload = args.workload.as_str();
    let mode = args.mode;
    let size = args.size;
    let timeout = Duration::from_secs(args.timeout);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // `--codec python`: packify auth blocks, for the Python server.
    let codec = match args.codec.as_str() {
        "native" => netaio::codec::FrameCodec::new(),
        "python" => {
            netaio::codec::FrameCodec::with_auth_codec(Arc::new(netaio::compat::PackifyCodec))
        }
        other => return Err(format!("unknown codec `{other}` (native, python)").into()),
    };
    let sealer = Arc::new(Sealer::with_codec(mode, size, codec));
    let sample = rt.block_on(async {
        let run = async {
            match workload {
                "w1" | "w5" | "rt" => {
                    let count = args.count.unwrap_or(20_000);
                    let warmup = args.warmup.unwrap_or(1_000);
                    round_trips(addr, &sealer, count, warmup).await.map(Some)
                }
                "w4" | "udp" => {
                    let count = args.count.unwrap_or(20_000);
                    let warmup = args.warmup.unwrap_or(1_000);
                    udp_round_trips(addr, &sealer, count, warmup).map(Some)
                }
                "w2" | "pipeline" => {
                    let count = args.count.unwrap_or(400_000);
                    pipelined(addr, &sealer, count).await.map(Some)
                }
                "w3" | "many" => {
                    let conns = args.conns.unwrap_or(50);
                    let secs = args.seconds;
                    let rate = args.rate_estimate;
                    many(addr, &sealer, conns, Duration::from_secs_f64(secs), rate)
                        .await
                        .map(Some)
                }
                "idle" => {
                    let conns = args.conns.unwrap_or(5_000);
                    idle(addr, &sealer, conns).await.map(|()| None)
                }
                other => Err(format!("unknown workload `{other}`").into()),
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(format!("workload did not finish within {timeout:?}").into()),
        }
    })?;
    if let Some(sample) = sample {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(&sample)?)?;
        out.flush()?;
    }
    Ok(())
}

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// A latency sample: `count` round trips in `secs`, `lat` their latencies in ns.
pub fn latency_sample(count: u64, secs: f64, size: usize, mut lat: Vec<u64>) -> Sample {
    lat.sort_unstable();
    let us = |p| percentile(&lat, p).map(|ns| ns as f64 / 1_000.0);
    Sample {
        count,
        secs,
        rate: count as f64 / secs,
        mb_per_s: (count as f64 * size as f64) / secs / 1e6,
        p50_us: us(50.0),
        p99_us: us(99.0),
        inline_sealed: 0,
        lost: 0,
    }
}

/// W1 / W5: one connection, `count` timed round trips after `warmup` untimed ones.
pub async fn round_trips(
    addr: SocketAddr,
    sealer: &Sealer,
    count: usize,
    warmup: usize,
) -> Result<Sample> {
    let frames = sealer.frames(1, warmup + count)?;
    let expect = match frames.first() {
        Some(f) => body_len(f)?,
        None => return Err("no requests".into()),
    };
    let mut stream = connect(addr).await?;
    let mut reader = FrameReader::default();
    let mut lat = Vec::with_capacity(count);
    let mut start = Instant::now();
    for (i, frame) in frames.iter().enumerate() {
        if i == warmup {
            start = Instant::now();
        }
        let t = Instant::now();
        stream.write_all(frame).await?;
        reader.next(&mut stream).await?.check(expect)?;
        if i >= warmup {
            lat.push(t.elapsed().as_nanos() as u64);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(latency_sample(
        count as u64,
        secs,
        sealer.content().len(),
        lat,
    ))
}

/// W4: UDP round trips from one socket, `count` timed after `warmup` untimed. Plain blocking
/// `std` socket calls (the lightest client there is); a request without a reply within a second
/// is counted as lost and not retried.
pub fn udp_round_trips(
    addr: SocketAddr,
    sealer: &Sealer,
    count: usize,
    warmup: usize,
) -> Result<Sample> {
    let frames = sealer.frames(1, warmup + count)?;
    let expect = match frames.first() {
        Some(f) => body_len(f)?,
        None => return Err("no requests".into()),
    };
    let socket = std::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.connect(addr)?;
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut buf = vec![0u8; 65_536];
    prove_address(&socket, sealer, &mut buf)?;
    let mut lat = Vec::with_capacity(count);
    let mut lost = 0u64;
    let mut start = Instant::now();
    for (i, frame) in frames.iter().enumerate() {
        if i == warmup {
            start = Instant::now();
        }
        let t = Instant::now();
        socket.send(frame)?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                let reply = buf.get(..n).unwrap_or_default();
                let header = netaio::message::Header::from_bytes(reply)?;
                crate::frames::Reply {
                    message_type: header.message_type,
                    body_len: usize::from(header.body_length),
                }
                .check(expect)?;
                if i >= warmup {
                    lat.push(t.elapsed().as_nanos() as u64);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                lost += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let done = lat.len() as u64;
    let mut sample = latency_sample(done, secs, sealer.content().len(), lat);
    sample.lost = lost;
    Ok(sample)
}

/// Before the timed requests, untimed: a netaio node without auth answers the first request
/// from an address it has not verified with a challenge (NOT_PERMITTED and a cookie); send that
/// request again with the cookie, as a netaio caller does, and the address is verified for the
/// rest of the run. Other servers answer it as any request.
fn prove_address(socket: &std::net::UdpSocket, sealer: &Sealer, buf: &mut [u8]) -> Result<()> {
    let rid = u64::MAX;
    socket.send(&sealer.frame(rid)?)?;
    let n = socket.recv(buf)?;
    let reply = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
    let header = netaio::message::Header::from_bytes(&reply)?;
    if header.message_type != netaio::MessageType::NOT_PERMITTED {
        return Ok(());
    }
    let challenge = netaio::Message::decode(reply, sealer.codec().auth_codec())?;
    let Some(cookie) = challenge.auth.get(netaio::message::fields::COOKIE) else {
        return Err("NOT_PERMITTED without a cookie".into());
    };
    socket.send(&sealer.frame_with_cookie(rid, cookie.clone())?)?;
    let n = socket.recv(buf)?;
    let header = netaio::message::Header::from_bytes(buf.get(..n).unwrap_or_default())?;
    if header.message_type == netaio::MessageType::NOT_PERMITTED {
        return Err("the node challenged the request sent with its cookie".into());
    }
    Ok(())
}

/// W2: one connection, `count` requests written back to back while the replies are read.
pub async fn pipelined(addr: SocketAddr, sealer: &Sealer, count: usize) -> Result<Sample> {
    // All requests in one buffer: the writer is a single `write_all`, as cheap as a client gets.
    let mut all = BytesMut::new();
    for rid in 1..=count as u64 {
        sealer.push(rid, &mut all)?;
    }
    let expect = {
        let mut one = BytesMut::new();
        sealer.push(1, &mut one)?;
        body_len(&one)?
    };
    let all = all.freeze();
    let mut stream = connect(addr).await?;
    let (mut rd, mut wr) = stream.split();
    let start = Instant::now();
    let write = async {
        wr.write_all(&all).await?;
        Ok::<_, crate::Error>(())
    };
    let read = async {
        let mut reader = FrameReader::default();
        let mut got = 0usize;
        while got < count {
            while let Some(reply) = reader.try_next()? {
                reply.check(expect)?;
                got += 1;
            }
            if got < count {
                reader.fill(&mut rd).await?;
            }
        }
        Ok::<_, crate::Error>(())
    };
    tokio::try_join!(write, read)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Sample {
        count: count as u64,
        secs,
        rate: count as f64 / secs,
        mb_per_s: (count as f64 * sealer.content().len() as f64) / secs / 1e6,
        p50_us: None,
        p99_us: None,
        inline_sealed: 0,
        lost: 0,
    })
}

/// W3: `conns` connections doing round trips until `duration` has passed.
pub async fn many(
    addr: SocketAddr,
    sealer: &Arc<Sealer>,
    conns: usize,
    duration: Duration,
    rate_estimate: f64,
) -> Result<Sample> {
    let per_conn = ((rate_estimate * duration.as_secs_f64()) / conns as f64).ceil() as usize + 100;
    let expect = body_len(&sealer.frame(0)?)?;
    let mut tasks = Vec::with_capacity(conns);
    let mut streams = Vec::with_capacity(conns);
    let mut pools = Vec::with_capacity(conns);
    for c in 0..conns {
        streams.push(connect(addr).await?);
        // Request ids are unique across connections: c * 2^32 + i.
        pools.push(sealer.frames((c as u64) << 32, per_conn)?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    for (c, (mut stream, pool)) in streams.into_iter().zip(pools).enumerate() {
        let sealer = sealer.clone();
        tasks.push(tokio::spawn(async move {
            let mut reader = FrameReader::default();
            let mut lat = Vec::with_capacity(per_conn);
            let mut inline = 0u64;
            let mut next = ((c as u64) << 32) + per_conn as u64;
            let mut pool = pool.into_iter();
            loop {
                let t = Instant::now();
                if t >= deadline {
                    break;
                }
                let frame: Bytes = match pool.next() {
                    Some(f) => f,
                    None => {
                        inline += 1;
                        next += 1;
                        sealer.frame(next)?
                    }
                };
                stream.write_all(&frame).await?;
                reader.next(&mut stream).await?.check(expect)?;
                lat.push(t.elapsed().as_nanos() as u64);
            }
            Ok::<_, crate::Error>((lat, inline))
        }));
    }
    let mut all = Vec::new();
    let mut inline = 0;
    for t in tasks {
        let (lat, n) = t.await??;
        all.extend(lat);
        inline += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut sample = latency_sample(all.len() as u64, secs, sealer.content().len(), all);
    sample.inline_sealed = inline;
    Ok(sample)
}

/// Memory: open `conns` connections, do one round trip on each (so the server has accepted and
/// served every one), print `ready N`, then keep them open until stdin closes.
pub async fn idle(addr: SocketAddr, sealer: &Sealer, conns: usize) -> Result<()> {
    // One request per connection, each its own seal (an auth plugin refuses a replay).
    let frames = sealer.frames(1, conns)?;
    let expect = body_len(frames.first().ok_or("no connections")?)?;
    let mut frames = frames.into_iter();
    let mut streams = Vec::with_capacity(conns);
    // In batches, so the accept backlog is never overrun.
    for chunk_start in (0..conns).step_by(200) {
        let n = (conns - chunk_start).min(200);
        let mut batch = Vec::with_capacity(n);
        for frame in frames.by_ref().take(n) {
            let mut s = connect(addr).await?;
            s.write_all(&frame).await?;
            batch.push(s);
        }
        for mut s in batch {
            let mut reader = FrameReader::default();
            reader
                .next_within(&mut s, Duration::from_secs(10))
                .await?
                .check(expect)?;
            streams.push(s);
        }
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {}", streams.len())?;
        out.flush()?;
    }
    // Hold the connections until the driver closes our stdin.
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    while stdin.read_line(&mut line).await? > 0 {
        line.clear();
    }
    drop(streams);
    Ok(())
}
