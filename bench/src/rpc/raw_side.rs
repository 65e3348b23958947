//! The raw side's W2: the main harness's minimal frame client (pre-built frames, replies read by
//! their header only), keeping `window` requests in flight like the library clients.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::Result;
use crate::frames::{FrameReader, Sealer, body_len};
use crate::stats::Sample;

/// W2: `count` requests over one connection, at most `window` of them unanswered; the frames
/// are built before the timed part and each top-up of the window is one write.
pub async fn windowed(
    addr: SocketAddr,
    sealer: &Sealer,
    count: usize,
    window: usize,
) -> Result<Sample> {
    let mut all = BytesMut::new();
    // ends[i]: where frame i ends in `all`.
    let mut ends = Vec::with_capacity(count + 1);
    ends.push(0);
    for rid in 1..=count as u64 {
        sealer.push(rid, &mut all)?;
        ends.push(all.len());
    }
    let expect = body_len(&all)?;
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut reader = FrameReader::default();
    let (mut sent, mut got) = (0usize, 0usize);
    let start = Instant::now();
    while got < count {
        let upto = count.min(got + window.max(1));
        if upto > sent {
            let from = ends.get(sent).copied().unwrap_or_default();
            let to = ends.get(upto).copied().unwrap_or_default();
            wr.write_all(all.get(from..to).unwrap_or_default()).await?;
            sent = upto;
        }
        reader.fill(&mut rd).await?;
        while let Some(reply) = reader.try_next()? {
            reply.check(expect)?;
            got += 1;
        }
    }
    Ok(rate_sample(count, start, sealer.content().len()))
}

/// A throughput sample: `count` messages of `size` content bytes since `start`.
pub fn rate_sample(count: usize, start: Instant, size: usize) -> Sample {
    let secs = start.elapsed().as_secs_f64();
    Sample {
        count: count as u64,
        secs,
        rate: count as f64 / secs,
        mb_per_s: (count as f64 * size as f64) / secs / 1e6,
        p50_us: None,
        p99_us: None,
        inline_sealed: 0,
        lost: 0,
    }
}
