//! The soak run (issue 12): many clients for a long time, with reconnects and server restarts,
//! counting replies lost for requests the server accepted (must be 0) and sampling the process's
//! resident memory (must plateau). Not part of the test suite's timing: `soak` runs it for
//! minutes; the test below runs a short round-counted version.
//!
//! Each client sends one request at a time, numbered, and the server counts what its handler
//! ran per client; a request the handler ran whose reply the client never got is *lost*. A
//! request refused before the handler (server restarting, connection down) is not accepted and
//! not lost: the caller got a typed error at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use netaio::router::State;
use netaio::tcp::Reconnect;
use netaio::{Message, MessageType, Router, TcpClient, TcpServer};

use crate::Result;

/// How long each round lasts.
#[derive(Debug, Clone, Copy)]
pub enum RoundLength {
    /// Wall-clock time per round (the `soak` program).
    Time(Duration),
    /// Requests per client per round (tests).
    Requests(u64),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Concurrent clients.
    pub clients: usize,
    /// Rounds; the server is stopped and started again on the same address between rounds.
    pub rounds: u32,
    /// The length of a round.
    pub round: RoundLength,
    /// Content bytes per request.
    pub size: usize,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Requests the server's handler ran.
    pub handled: u64,
    /// Replies the clients got (content checked).
    pub replied: u64,
    /// Requests that failed with a typed error (not connected, connection lost, timeout).
    pub refused: u64,
    /// Requests handled and never answered: must be 0.
    pub lost: u64,
    /// Replies handled per round (all rounds must serve).
    pub per_round: Vec<u64>,
    /// Resident memory after each round, in KiB (empty where `/proc` is missing).
    pub rss_kib: Vec<u64>,
}

impl SoakReport {
    /// True when the resident memory of the last round is within 25 % (+ 8 MiB) of the largest
    /// seen in the first half of the run: it stopped growing. True without samples.
    pub fn rss_plateaued(&self) -> bool {
        let half = self.rss_kib.len().div_ceil(2);
        let (Some(early), Some(last)) = (
            self.rss_kib.iter().take(half.max(1)).max(),
            self.rss_kib.last(),
        ) else {
            return true;
        };
        *last <= early + early / 4 + 8 * 1024
    }
}

/// Per-client counters of the server's handler.
#[derive(Clone)]
struct Counters(Arc<Vec<AtomicU64>>);

async fn echo(msg: Message, State(handled): State<Counters>) -> Message {
    // The first 8 bytes name the client.
    if let Some(id) = msg.content().first_chunk::<8>() {
        let id = u64::from_be_bytes(*id) as usize;
        if let Some(c) = handled.0.get(id) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
    Message::respond(msg.uri().clone(), msg.content().clone())
}

async fn start(
    addr: SocketAddr,
    handled: Counters,
) -> Result<(
    SocketAddr,
    netaio::ServerHandle,
    tokio::task::JoinHandle<()>,
)> {
    let router = Router::new()
        .on((MessageType::REQUEST_URI, "soak"), echo)
        .with_state(handled);
    let server = TcpServer::builder()
        .router(router)
        .address(addr)
        .bind()
        .await?;
    let addr = server.local_addr();
    let handle = server.handle();
    Ok((addr, handle, tokio::spawn(server.serve())))
}

/// The resident set size of this process in KiB, from `/proc/self/status`.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run the soak on 127.0.0.1.
pub async fn run(config: &SoakConfig) -> Result<SoakReport> {
    let handled = Counters(Arc::new(
        (0..config.clients).map(|_| AtomicU64::new(0)).collect(),
    ));
    let (addr, mut server, mut join) =
        start(SocketAddr::from(([127, 0, 0, 1], 0)), handled.clone()).await?;
    let client = TcpClient::builder()
        .reconnect(Some(
            Reconnect::default()
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(200))
                .max_attempts(None),
        ))
        .build();
    let mut conns = Vec::with_capacity(config.clients);
    for _ in 0..config.clients {
        conns.push(client.connect(addr).await?);
    }
    let replied = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut report = SoakReport::default();
    let mut seq = vec![0u64; config.clients];
    for round in 0..config.rounds {
        if round > 0 {
            // A restart: graceful stop (in-flight replies flushed), then the same address again.
            server.shutdown();
            join.await?;
            (_, server, join) = start(addr, handled.clone()).await?;
        }
        let before = replied.load(Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for (id, conn) in conns.iter().enumerate() {
            let (conn, replied, refused, stop) =
                (conn.clone(), replied.clone(), refused.clone(), stop.clone());
            let first = seq.get(id).copied().unwrap_or(0);
            let length = config.round;
            let size = config.size.max(16);
            tasks.spawn(async move {
                let mut n = first;
                loop {
                    match length {
                        RoundLength::Requests(k) if n - first >= k => break,
                        _ if stop.load(Ordering::Relaxed) => break,
                        _ => {}
                    }
                    let mut content = Vec::with_capacity(size);
                    content.extend_from_slice(&(id as u64).to_be_bytes());
                    content.extend_from_slice(&n.to_be_bytes());
                    content.resize(size, 0);
                    n += 1;
                    match conn.request("soak", content.clone()).await {
                        Ok(reply) if reply.content().as_ref() == content.as_slice() => {
                            replied.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => return Err(format!("client {id}: a reply to another request")),
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            // Not connected: wait for the reconnect instead of spinning.
                            if !conn.is_connected() {
                                let _ = tokio::time::timeout(
                                    Duration::from_secs(5),
                                    conn.wait_connected(),
                                )
                                .await;
                            }
                        }
                    }
                }
                Ok((id, n))
            });
        }
        if let RoundLength::Time(t) = config.round {
            tokio::time::sleep(t).await;
            stop.store(true, Ordering::Relaxed);
        }
        while let Some(done) = tasks.join_next().await {
            let (id, n) = done??;
            if let Some(s) = seq.get_mut(id) {
                *s = n;
            }
        }
        report
            .per_round
            .push(replied.load(Ordering::Relaxed) - before);
        report.rss_kib.extend(rss_kib());
    }
    server.shutdown();
    join.await?;
    report.handled = handled.0.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    report.replied = replied.load(Ordering::Relaxed);
    report.refused = refused.load(Ordering::Relaxed);
    report.lost = report.handled.saturating_sub(report.replied);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_accepted_request_is_lost_across_server_restarts() {
        let report = run(&SoakConfig {
            clients: 8,
            rounds: 3,
            round: RoundLength::Requests(200),
            size: 64,
        })
        .await
        .unwrap();
        assert_eq!(report.lost, 0, "{report:?}");
        assert_eq!(report.per_round.len(), 3);
        assert!(
            report.per_round.iter().all(|&n| n > 0),
            "every round served: {report:?}"
        );
        assert_eq!(report.handled, report.replied);
    }

    #[test]
    fn plateau_rule() {
        let flat = SoakReport {
            rss_kib: vec![10_000, 12_000, 12_100, 12_000],
            ..Default::default()
        };
        assert!(flat.rss_plateaued());
        let growing = SoakReport {
            rss_kib: vec![10_000, 20_000, 40_000, 80_000],
            ..Default::default()
        };
        assert!(!growing.rss_plateaued());
    }
}
