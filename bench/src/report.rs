//! What the driver measured: the records of each run, their medians and ratios, and the table
//! printed (and pasted into BENCHMARKS.md).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::driver::Config;
use crate::stats::{Sample, median};
use crate::{Impl, Mode, Workload};

/// One client run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// The workload.
    pub workload: String,
    /// The server.
    pub server: String,
    /// The mode.
    pub mode: String,
    /// Run index (0-based).
    pub run: usize,
    /// What the client measured.
    #[serde(flatten)]
    pub sample: Sample,
    /// Peak resident memory of the server process (VmHWM), KiB.
    pub server_peak_rss_kib: Option<u64>,
}

/// Medians of one (workload, server, mode).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The workload.
    pub workload: String,
    /// The server.
    pub server: String,
    /// The mode.
    pub mode: String,
    /// Runs.
    pub runs: usize,
    /// Median messages per second.
    pub rate: f64,
    /// Median content MB/s.
    pub mb_per_s: f64,
    /// Median p50 latency, µs.
    pub p50_us: Option<f64>,
    /// Median p99 latency, µs.
    pub p99_us: Option<f64>,
    /// Median server peak RSS, KiB.
    pub server_peak_rss_kib: Option<f64>,
    /// Median rate ÷ the baseline's median rate in the same workload (netaio rows).
    pub ratio: Option<f64>,
    /// The baseline's median p50 latency ÷ this median p50 (netaio rows of round-trip
    /// workloads): the same ratio for a closed loop, but robust to stalls from other processes.
    pub p50_ratio: Option<f64>,
    /// Requests sealed inline by the client (sum over runs).
    pub inline_sealed: u64,
}

/// The memory measurement of one server.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRecord {
    /// The server.
    pub server: String,
    /// The mode.
    pub mode: String,
    /// RSS with no connection, KiB.
    pub idle_rss_kib: u64,
    /// RSS with the idle connections open, KiB.
    pub loaded_rss_kib: u64,
    /// Idle connections held.
    pub conns: usize,
    /// (loaded − idle) ÷ conns, KiB.
    pub per_conn_kib: f64,
}

/// The JSON file.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: BTreeMap<String, String>,
    /// The configuration.
    pub config: Config,
    /// Every run.
    pub runs: Vec<RunRecord>,
    /// Medians and ratios.
    pub summary: Vec<Summary>,
    /// Idle memory (empty when skipped).
    pub memory: Vec<MemoryRecord>,
    /// Why the memory measurement was skipped, if it was.
    pub memory_skipped: Option<String>,
    /// Wall time of the whole run, seconds.
    pub elapsed_secs: f64,
    /// /proc/loadavg at the start and at the end (other processes competing for the CPUs make
    /// the ratios unreliable).
    pub loadavg: [String; 2],
}

pub(crate) fn summarize(runs: &[RunRecord]) -> Vec<Summary> {
    let mut groups: BTreeMap<(String, String, String), Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((r.workload.clone(), r.server.clone(), r.mode.clone()))
            .or_default()
            .push(r);
    }
    let mut out: Vec<Summary> = groups
        .into_iter()
        .map(|((workload, server, mode), rs)| {
            let med = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
                let v: Vec<f64> = rs.iter().filter_map(|r| f(r)).collect();
                median(&v)
            };
            Summary {
                workload,
                server,
                mode,
                runs: rs.len(),
                rate: med(&|r| Some(r.sample.rate)).unwrap_or(0.0),
                mb_per_s: med(&|r| Some(r.sample.mb_per_s)).unwrap_or(0.0),
                p50_us: med(&|r| r.sample.p50_us),
                p99_us: med(&|r| r.sample.p99_us),
                server_peak_rss_kib: med(&|r| r.server_peak_rss_kib.map(|k| k as f64)),
                ratio: None,
                p50_ratio: None,
                inline_sealed: rs.iter().map(|r| r.sample.inline_sealed).sum(),
            }
        })
        .collect();
    let baselines: BTreeMap<String, (f64, Option<f64>)> = out
        .iter()
        .filter(|s| s.server == Impl::Baseline.name())
        .map(|s| (s.workload.clone(), (s.rate, s.p50_us)))
        .collect();
    for s in &mut out {
        if s.server != Impl::Baseline.name()
            && let Some((rate, p50)) = baselines.get(&s.workload)
        {
            s.ratio = (*rate > 0.0).then(|| s.rate / rate);
            s.p50_ratio = match (p50, s.p50_us) {
                (Some(b), Some(n)) if n > 0.0 => Some(b / n),
                _ => None,
            };
        }
    }
    let mode_rank = |m: &str| Mode::ALL.iter().position(|x| x.name() == m).unwrap_or(9);
    let server_rank = |s: &str| match s {
        "baseline" => 0,
        "python" => 1,
        _ => 2,
    };
    out.sort_by(|a, b| {
        (&a.workload, server_rank(&a.server), mode_rank(&a.mode)).cmp(&(
            &b.workload,
            server_rank(&b.server),
            mode_rank(&b.mode),
        ))
    });
    out
}

pub(crate) fn fmt_rate(x: f64) -> String {
    let s = format!("{:.0}", x);
    let bytes = s.as_bytes();
    let mut out = String::new();
    for (i, c) in bytes.iter().enumerate() {
        if i > 0 && (bytes.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(char::from(*c));
    }
    out
}

/// The table, as printed (and pasted into BENCHMARKS.md).
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let opt = |v: Option<f64>, prec: usize| v.map_or("-".to_owned(), |x| format!("{x:.prec$}"));
    s.push_str(&format!(
        "\nnetaio vs raw tokio baseline — medians of {} runs{}; ratio = server rate ÷ baseline rate; p50 ratio = baseline p50 ÷ server p50\n\n",
        r.config.runs,
        match (r.config.pinned, r.config.niced) {
            (true, true) => ", server on CPU 0, client on CPU 1, both at nice -20",
            (true, false) => ", server on CPU 0, client on CPU 1",
            (false, true) => ", unpinned, at nice -20",
            (false, false) => ", unpinned",
        }
    ));
    s.push_str("| workload | server | mode | rate (/s) | MB/s | p50 µs | p99 µs | server peak RSS MiB | ratio | p50 ratio |\n");
    s.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for x in &r.summary {
        let desc = x
            .workload
            .parse::<Workload>()
            .map(|w| format!("{} ({})", w.name(), w.describe()))
            .unwrap_or_else(|_| x.workload.clone());
        s.push_str(&format!(
            "| {desc} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
            x.server,
            x.mode,
            fmt_rate(x.rate),
            x.mb_per_s,
            opt(x.p50_us, 1),
            opt(x.p99_us, 1),
            opt(x.server_peak_rss_kib.map(|k| k / 1024.0), 1),
            opt(x.ratio, 3),
            opt(x.p50_ratio, 3),
        ));
    }
    if !r.memory.is_empty() {
        s.push_str("\n| memory | mode | idle server RSS KiB | RSS with idle conns KiB | idle conns | per conn KiB |\n");
        s.push_str("|---|---|---:|---:|---:|---:|\n");
        for m in &r.memory {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.1} |\n",
                m.server, m.mode, m.idle_rss_kib, m.loaded_rss_kib, m.conns, m.per_conn_kib
            ));
        }
    }
    if let Some(why) = &r.memory_skipped {
        s.push_str(&format!("\nmemory measurement skipped: {why}\n"));
    }
    s.push_str(&format!(
        "\nmachine: {} ({} CPUs), kernel {}; total {:.0} s; load average {} at the start, {} at the end\n",
        r.machine.get("cpu").map_or("?", String::as_str),
        r.machine.get("cpus").map_or("?", String::as_str),
        r.machine.get("kernel").map_or("?", String::as_str),
        r.elapsed_secs,
        r.loadavg[0],
        r.loadavg[1],
    ));
    let busy = r
        .loadavg
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .any(|l| l > 1.5);
    if busy {
        s.push_str("warning: other processes were loading the machine; ratios are less reliable\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_get_thousands_separators() {
        assert_eq!(fmt_rate(1234567.4), "1,234,567");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_rate(1000.0), "1,000");
    }

    #[test]
    fn ratios_are_against_the_same_workload_baseline() {
        let rec = |w: &str, server: &str, mode: &str, rate: f64| RunRecord {
            workload: w.into(),
            server: server.into(),
            mode: mode.into(),
            run: 0,
            sample: Sample {
                count: 1,
                secs: 1.0,
                rate,
                mb_per_s: 0.0,
                p50_us: None,
                p99_us: None,
                inline_sealed: 0,
                lost: 0,
            },
            server_peak_rss_kib: None,
        };
        let runs = vec![
            rec("W1", "baseline", "none", 100.0),
            rec("W1", "baseline", "none", 120.0),
            rec("W1", "baseline", "none", 80.0),
            rec("W1", "netaio", "none", 90.0),
            rec("W1", "netaio", "hmac", 50.0),
            rec("W2", "netaio", "none", 600.0),
            rec("W2", "python", "none", 10.0),
            rec("W2", "baseline", "none", 1000.0),
        ];
        let s = summarize(&runs);
        let get = |w: &str, srv: &str, m: &str| {
            s.iter()
                .find(|x| x.workload == w && x.server == srv && x.mode == m)
                .unwrap()
        };
        assert_eq!(get("W1", "baseline", "none").rate, 100.0);
        assert_eq!(get("W1", "baseline", "none").ratio, None);
        assert_eq!(get("W1", "netaio", "none").ratio, Some(0.9));
        assert_eq!(get("W1", "netaio", "hmac").ratio, Some(0.5));
        assert_eq!(get("W2", "netaio", "none").ratio, Some(0.6));
        // The Python server (--python) gets its ratio to the same baseline too.
        assert_eq!(get("W2", "python", "none").ratio, Some(0.01));
        // Within a workload: baseline, then Python, then netaio by mode.
        let order: Vec<(&str, &str, &str)> = s
            .iter()
            .map(|x| (x.workload.as_str(), x.server.as_str(), x.mode.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("W1", "baseline", "none"),
                ("W1", "netaio", "none"),
                ("W1", "netaio", "hmac"),
                ("W2", "baseline", "none"),
                ("W2", "python", "none"),
                ("W2", "netaio", "none"),
            ]
        );
    }
}
