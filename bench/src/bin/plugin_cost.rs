//! The plugins' cost per message, without sockets: `plugin-cost --mode M --size B --count N`
//! seals N requests with the mode's instance plugins (as the bench client, node id
//! [`CLIENT_NODE`]), then opens them with another instance of the same plugins (as the server).
//!
//! A shared clock advances one second every 1,000 messages in both phases, so each message is
//! opened at the second it was sealed and the replay cache holds about 60,000 nonces in steady
//! state (a busy node at its ±60 s window), evicting as the clock moves. Prints the wall time of
//! each phase (noisy on a shared machine); under callgrind, count one phase:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='netaio::plugin::pipeline::open_outer*' \
//!     target/release/plugin-cost --mode sealed --size 64 --count 100000
//! valgrind --tool=callgrind --toggle-collect='netaio::plugin::pipeline::seal*' \
//!     target/release/plugin-cost --mode sealed --size 64 --count 100000
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use netaio::plugin::{Freshness, PluginContext, Plugins, open_outer, seal};
use netaio::{Message, MessageType};
use netaio_bench::frames::{CLIENT_NODE, plugins_with};
use netaio_bench::{ECHO_URI, Mode};

/// Seal N messages with a mode's plugins, then open them; prints the time of each phase.
#[derive(Debug, Parser)]
#[command(name = "plugin-cost")]
struct Cli {
    /// none, hmac, hmac+aead, sealed, sealed-chacha
    #[arg(long, value_name = "MODE", default_value = "sealed")]
    mode: Mode,
    /// Content bytes
    #[arg(long, value_name = "B", default_value_t = 64)]
    size: usize,
    /// Messages
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    count: u64,
}

/// Messages per second of the shared clock.
const PER_SECOND: u64 = 1_000;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ticks = Arc::new(AtomicU64::new(0));
    let freshness = || {
        let t = ticks.clone();
        Freshness::default()
            .capacity(1 << 20)
            .clock(Arc::new(move || {
                1_700_000_000 + t.load(Ordering::Relaxed) / PER_SECOND
            }))
    };
    let client = plugins_with(cli.mode, &freshness);
    let server = plugins_with(cli.mode, &freshness);
    let none = Plugins::new();
    let client_ctx = PluginContext {
        node: Some(CLIENT_NODE),
        ..PluginContext::default()
    };
    let server_ctx = PluginContext {
        node: Some(CLIENT_NODE + 1),
        ..PluginContext::default()
    };
    let content: Vec<u8> = (0..cli.size).map(|i| (i % 251) as u8).collect();
    let mut msg = Message::new(MessageType::REQUEST_URI, ECHO_URI, content);
    msg.set_request_id(1);

    let start = Instant::now();
    let mut sealed = Vec::with_capacity(usize::try_from(cli.count).unwrap_or(0));
    for _ in 0..cli.count {
        ticks.fetch_add(1, Ordering::Relaxed);
        match seal(msg.clone(), &none, &client, &client_ctx) {
            Ok(m) => sealed.push(m),
            Err(e) => {
                eprintln!("error: seal: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let seal_time = start.elapsed();

    ticks.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let mut refused = 0u64;
    for m in sealed {
        ticks.fetch_add(1, Ordering::Relaxed);
        if open_outer(m, &server, &server_ctx).is_err() {
            refused += 1;
        }
    }
    let open_time = start.elapsed();
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e9 / cli.count.max(1) as f64;
    println!(
        "{} {} B × {}: seal {:.0} ns, open {:.0} ns per message; {} refused",
        cli.mode,
        cli.size,
        cli.count,
        per(seal_time),
        per(open_time),
        refused
    );
    if refused > 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
