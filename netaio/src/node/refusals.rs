//! Refused messages made diagnosable at the default log level: each source's refusals counted
//! in a bounded table ([`SourceRefusals`], what a node exposes), and a warning that names the
//! source, the plugin and why, logged once per source and interval and a few times per second
//! at most in all (a flood of forged sources must not become a flood of log lines).
//!
//! I/O-free: time comes in as `now`; the transports keep the table behind a lock, taken only on
//! the refusal path.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use crate::plugin::{OpenError, RefusalReason, Stage};

/// How many sources a node remembers refusals of (the least recently refused is forgotten for
/// a new one). Each entry is a few dozen bytes: the table stays under 32 KiB.
pub(crate) const MAX_SOURCES: usize = 256;
/// A source is named in the log once per interval (the count says how many came in between).
const LOG_INTERVAL: Duration = Duration::from_secs(60);
/// At most this many refusal lines per [`GLOBAL_WINDOW`], whatever the number of sources.
const GLOBAL_LINES: u32 = 8;
const GLOBAL_WINDOW: Duration = Duration::from_secs(10);

/// What a node refused from one source address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceRefusals {
    /// The source address.
    pub addr: SocketAddr,
    /// How many messages (datagrams, frames) from it were refused.
    pub count: u64,
    /// Why the last one was refused.
    pub reason: RefusalReason,
    /// The plugin that refused the last one (its [`name`](crate::plugin::AuthPlugin::name)).
    pub plugin: &'static str,
    /// Its layer: the node's instance plugins or a route's inner ones.
    pub stage: Stage,
    /// When the first and the last were refused.
    pub first: Instant,
    /// When the last was refused.
    pub last: Instant,
}

struct Entry {
    refusals: SourceRefusals,
    logged: Option<Instant>,
    /// Refusals since the last log line.
    unlogged: u64,
}

/// One refusal, as the transports report it.
pub(crate) struct Refused<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) error: &'a OpenError,
    pub(crate) plugin: &'static str,
    /// "datagrams", "messages": what the log line says was refused.
    pub(crate) what: &'static str,
}

/// The per-source table and the log's rate limit.
pub(crate) struct RefusalTable {
    entries: FxHashMap<SocketAddr, Entry>,
    capacity: usize,
    window_start: Option<Instant>,
    lines_in_window: u32,
}

impl Default for RefusalTable {
    fn default() -> Self {
        Self::new(MAX_SOURCES)
    }
}

/// A log line owed for a refusal: the source, how many since its last line, and the details.
pub(crate) struct LogLine {
    pub(crate) since_last: u64,
    pub(crate) total: u64,
}

impl RefusalTable {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: FxHashMap::default(),
            capacity: capacity.max(1),
            window_start: None,
            lines_in_window: 0,
        }
    }

    /// Count a refusal at `now`; `Some` when it is to be logged at the default level.
    pub(crate) fn record(
        &mut self,
        addr: SocketAddr,
        error: &OpenError,
        plugin: &'static str,
        now: Instant,
    ) -> Option<LogLine> {
        let stage = match error {
            OpenError::Auth { stage, .. } | OpenError::Cipher { stage, .. } => *stage,
        };
        if !self.entries.contains_key(&addr) && self.entries.len() >= self.capacity {
            // The least recently refused goes: a scan, on the refusal path only, of a table
            // small enough for it.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.refusals.last)
                .map(|(a, _)| *a)
            {
                self.entries.remove(&oldest);
            }
        }
        let entry = self.entries.entry(addr).or_insert_with(|| Entry {
            refusals: SourceRefusals {
                addr,
                count: 0,
                reason: RefusalReason::Other,
                plugin,
                stage,
                first: now,
                last: now,
            },
            logged: None,
            unlogged: 0,
        });
        let r = &mut entry.refusals;
        r.count += 1;
        r.reason = error.reason();
        r.plugin = plugin;
        r.stage = stage;
        r.last = now;
        entry.unlogged += 1;
        let due = entry
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_INTERVAL);
        if !due {
            return None;
        }
        let window = self.window_start.get_or_insert(now);
        if now.saturating_duration_since(*window) >= GLOBAL_WINDOW {
            *window = now;
            self.lines_in_window = 0;
        }
        if self.lines_in_window >= GLOBAL_LINES {
            return None;
        }
        self.lines_in_window += 1;
        entry.logged = Some(now);
        let line = LogLine {
            since_last: entry.unlogged,
            total: entry.refusals.count,
        };
        entry.unlogged = 0;
        Some(line)
    }

    /// The sources, the most recently refused first.
    pub(crate) fn snapshot(&self) -> Vec<SourceRefusals> {
        let mut all: Vec<_> = self.entries.values().map(|e| e.refusals.clone()).collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.last));
        all
    }
}

/// Count `r` in `table` and log it: a warning when the table says so, else at debug level.
pub(crate) fn report(table: &std::sync::Mutex<RefusalTable>, r: &Refused<'_>, now: Instant) {
    let line = match table.lock() {
        Ok(mut t) => t.record(r.addr, r.error, r.plugin, now),
        Err(_) => None,
    };
    let reason = r.error.reason();
    match line {
        Some(LogLine { since_last, total }) => tracing::warn!(
            peer = %r.addr,
            plugin = r.plugin,
            %reason,
            total,
            "{}",
            Line { r, reason, since_last }
        ),
        None => tracing::debug!(peer = %r.addr, plugin = r.plugin, error = %r.error, "refused"),
    }
}

/// `datagrams refused from 10.0.0.2:7000 by HmacAuth (instance auth): bad MAC or signature
/// (is the secret (or key) the same on both sides?)`.
struct Line<'a> {
    r: &'a Refused<'a>,
    reason: RefusalReason,
    since_last: u64,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (stage, kind) = match self.r.error {
            OpenError::Auth { stage, .. } => (stage, "auth"),
            OpenError::Cipher { stage, .. } => (stage, "cipher"),
        };
        write!(
            f,
            "{} refused from {} by {} ({stage} {kind}): {} ({})",
            self.r.what,
            self.r.addr,
            self.r.plugin,
            self.reason,
            self.reason.hint()
        )?;
        if self.since_last > 1 {
            write!(f, "; {} since the last report", self.since_last)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::AuthError;

    fn bad_mac() -> OpenError {
        OpenError::Auth {
            stage: Stage::Outer,
            source: AuthError::Invalid,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_source_is_logged_once_per_interval_and_counted_every_time() {
        let mut t = RefusalTable::new(4);
        let t0 = Instant::now();
        assert!(t.record(addr(1), &bad_mac(), "HmacAuth", t0).is_some());
        for i in 1..10 {
            let at = t0 + Duration::from_secs(i);
            assert!(t.record(addr(1), &bad_mac(), "HmacAuth", at).is_none());
        }
        let line = t
            .record(addr(1), &bad_mac(), "HmacAuth", t0 + LOG_INTERVAL)
            .expect("logged again after the interval");
        assert_eq!((line.since_last, line.total), (10, 11));
        let s = t.snapshot();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].count, 11);
        assert_eq!(s[0].reason, RefusalReason::BadMac);
        assert_eq!(s[0].plugin, "HmacAuth");
    }

    #[test]
    fn many_sources_log_a_few_lines_per_window_and_the_table_stays_bounded() {
        let mut t = RefusalTable::new(16);
        let now = Instant::now();
        let logged = (0..1000)
            .filter(|p| {
                let at = now + Duration::from_millis(u64::from(*p));
                t.record(addr(*p), &bad_mac(), "HmacAuth", at).is_some()
            })
            .count();
        assert_eq!(logged, GLOBAL_LINES as usize);
        assert_eq!(t.snapshot().len(), 16);
        // The newest sources are kept.
        assert!(t.snapshot().iter().all(|s| s.addr.port() >= 1000 - 16));
        let later = now + GLOBAL_WINDOW + Duration::from_secs(1);
        assert!(
            t.record(addr(5000), &bad_mac(), "HmacAuth", later)
                .is_some()
        );
    }
}
