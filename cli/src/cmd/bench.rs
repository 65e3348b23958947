//! `bench ADDR`: requests as fast as the server answers them, over `--connections` connections
//! with `--pipeline` requests in flight on each, for `--seconds` or `--requests`; prints
//! msgs/s, MB/s (request and reply content) and the latency percentiles, with a progress line
//! on a terminal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netaio::{CallOptions, Message, MessageType};
use serde_json::json;

use super::peer::Remote;
use crate::cli::BenchArgs;
use crate::common::CommonArgs;
use crate::exit::Failure;
use crate::output::Output;

/// Latency samples kept in all (the count goes on beyond; percentiles then come from the first
/// ones), so a long run cannot grow without bound.
const MAX_SAMPLES: usize = 2_000_000;

/// What one worker (one request in flight at a time) measured.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    bytes: u64,
    micros: Vec<u32>,
    first_failure: Option<Failure>,
}

/// Shared between the workers: requests left to start (`--requests`), whether to stop, and
/// completed requests for the progress line.
#[derive(Debug)]
struct Shared {
    left: Option<AtomicU64>,
    stop: AtomicBool,
    done: AtomicU64,
}

impl Shared {
    /// Take one request from the budget; false when the run is over.
    fn take(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match &self.left {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

async fn worker(
    remote: Arc<Remote>,
    msg: Message,
    opts: CallOptions,
    shared: Arc<Shared>,
    cap: usize,
) -> Tally {
    let mut t = Tally::default();
    while shared.take() {
        let started = Instant::now();
        match remote.start_call(msg.clone(), &opts, None).await {
            Ok(reply) => {
                let us = started.elapsed().as_micros();
                t.ok += 1;
                t.bytes += (msg.content().len() + reply.content().len()) as u64;
                if t.micros.len() < cap {
                    t.micros.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Err(e) => {
                t.failed += 1;
                if t.first_failure.is_none() {
                    t.first_failure = Some(Failure::request(&e));
                }
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    t
}

/// The `p`-th percentile of sorted samples.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or(0)
}

fn human_micros(us: u32) -> String {
    if us >= 1_000 {
        format!("{:.1} ms", f64::from(us) / 1e3)
    } else {
        format!("{us} µs")
    }
}

/// Run the measurement.
pub async fn run(common: &CommonArgs, out: &Output, args: BenchArgs) -> Result<(), Failure> {
    let plugins = common.plugins()?;
    let msg = Message::new(
        MessageType::REQUEST_URI,
        args.uri.clone(),
        vec![b'x'; args.size],
    );
    let opts = CallOptions::default()
        .timeout(args.timeout)
        .no_soft_timeout();
    let mut remotes = Vec::new();
    for _ in 0..args.connections {
        remotes.push(Arc::new(
            Remote::open(&args.addr, &plugins, args.timeout).await?,
        ));
    }
    let seconds = match (args.seconds, args.requests) {
        (Some(s), _) => Some(s),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(5)),
    };
    let shared = Arc::new(Shared {
        left: args.requests.map(AtomicU64::new),
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
    });
    let workers = (args.connections * args.pipeline) as usize;
    let cap = (MAX_SAMPLES / workers).max(1_000);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for remote in &remotes {
        for _ in 0..args.pipeline {
            tasks.push(tokio::spawn(worker(
                remote.clone(),
                msg.clone(),
                opts.clone(),
                shared.clone(),
                cap,
            )));
        }
    }
    let ticker = {
        let shared = shared.clone();
        let live = out.is_live();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.tick().await;
            loop {
                tick.tick().await;
                if seconds.is_some_and(|s| started.elapsed() >= s) {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                if live {
                    let done = shared.done.load(Ordering::Relaxed);
                    let rate = done as f64 / started.elapsed().as_secs_f64();
                    eprint!(
                        "\r{done} requests, {rate:.0} msgs/s, {:.1} s   ",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        })
    };
    let mut total = Tally::default();
    for task in tasks {
        let t = task
            .await
            .map_err(|e| Failure::other(format!("a bench worker failed: {e}")))?;
        total.ok += t.ok;
        total.failed += t.failed;
        total.bytes += t.bytes;
        total.micros.extend(t.micros);
        if total.first_failure.is_none() {
            total.first_failure = t.first_failure;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    ticker.abort();
    if out.is_live() {
        eprintln!();
    }
    for remote in remotes {
        if let Ok(r) = Arc::try_unwrap(remote) {
            r.close().await;
        }
    }
    total.micros.sort_unstable();
    let (p50, p90, p99) = (
        percentile(&total.micros, 50.0),
        percentile(&total.micros, 90.0),
        percentile(&total.micros, 99.0),
    );
    let max = total.micros.last().copied().unwrap_or(0);
    let rate = total.ok as f64 / elapsed;
    let mb = total.bytes as f64 / 1e6 / elapsed;
    out.event(
        "bench",
        json!({
            "addr": args.addr.to_string(), "connections": args.connections, "pipeline": args.pipeline,
            "size": args.size, "seconds": elapsed, "ok": total.ok, "failed": total.failed,
            "msgs_per_s": rate, "mb_per_s": mb,
            "p50_us": p50, "p90_us": p90, "p99_us": p99, "max_us": max,
        }),
        || {
            format!(
                "requests {} ok, {} failed in {elapsed:.2} s over {} connection(s) x {} in flight, {} B each\n\
                 rate     {rate:.0} msgs/s, {mb:.2} MB/s (request and reply content)\n\
                 latency  p50 {}  p90 {}  p99 {}  max {}",
                total.ok, total.failed, args.connections, args.pipeline, args.size,
                human_micros(p50), human_micros(p90), human_micros(p99), human_micros(max)
            )
        },
    );
    match total.first_failure {
        Some(f) => Err(Failure::new(
            f.code,
            format!(
                "{} of {} requests failed; the first: {}",
                total.failed,
                total.ok + total.failed,
                f.message
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_samples() {
        let s: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&s, 50.0), 50);
        assert_eq!(percentile(&s, 90.0), 90);
        assert_eq!(percentile(&s, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn the_budget_is_taken_exactly() {
        let shared = Shared {
            left: Some(AtomicU64::new(2)),
            stop: AtomicBool::new(false),
            done: AtomicU64::new(0),
        };
        assert!(shared.take() && shared.take());
        assert!(!shared.take());
    }
}
