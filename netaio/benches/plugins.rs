//! Seal / open cost of the bundled symmetric plugins at 64 B and 60 kB of content: `HmacAuth`,
//! `AeadCipher`, both, `AeadAuth` with each algorithm (`sealed-aes-gcm`, `sealed-xchacha`) and
//! `HashcashAuth`.
//!
//! `cargo bench -p netaio --bench plugins` (add `-- --quick` for a short run). Frame encoding of
//! the same message is measured alongside as the baseline to compare against.
//!
//! Auth plugins refuse replays, so `open` benchmarks need a new sealed message per iteration:
//! it is sealed in the (untimed) setup. Sender and receiver share a clock that advances one
//! second every 1,000 messages, so the replay cache holds about 60,000 nonces in steady state
//! (a busy node at its ±60 s window) and expired ones are evicted as the clock moves. The sender
//! seals with a node id, as a node does (the auth plugins put it in their nonces, and the replay
//! cache counts nonces per sender id).

// A benchmark that cannot seal or open is broken: panicking is the right answer.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netaio::message::PostcardCodec;
use netaio::plugin::{
    AeadAlgorithm, AeadAuth, AeadCipher, Freshness, HashcashAuth, HmacAuth, PluginContext, Plugins,
    open_outer, seal,
};
use netaio::{Message, MessageType};

const SIZES: [(usize, &str); 2] = [(64, "64B"), (60_000, "60kB")];
const BATCH: BatchSize = BatchSize::NumIterations(1000);

/// A clock shared by sender and receiver: one second per 1,000 ticks.
#[derive(Clone, Default)]
struct Ticks(Arc<AtomicU64>);

impl Ticks {
    fn tick(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn freshness(&self) -> Freshness {
        let n = self.0.clone();
        Freshness::default()
            .capacity(1 << 20)
            .clock(Arc::new(move || {
                1_700_000_000 + n.load(Ordering::Relaxed) / 1000
            }))
    }
}

fn message(size: usize) -> Message {
    let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut m = Message::new(MessageType::REQUEST_URI, "bench/uri", content);
    m.set_request_id(1);
    m
}

/// Benchmark seal and open of one plugin set; `replay_safe` says open needs a new message each
/// time.
fn seal_open(c: &mut Criterion, name: &str, node: &Plugins, ticks: &Ticks, replay_safe: bool) {
    let sender = PluginContext {
        node: Some(1),
        ..PluginContext::default()
    };
    let ctx = PluginContext {
        node: Some(2),
        ..PluginContext::default()
    };
    let none = Plugins::new();
    let mut g = c.benchmark_group(name);
    for (size, label) in SIZES {
        let msg = message(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", label), &msg, |b, msg| {
            b.iter(|| seal(black_box(msg.clone()), &none, node, &sender).unwrap())
        });
        if replay_safe {
            g.bench_with_input(BenchmarkId::new("open", label), &msg, |b, msg| {
                b.iter_batched(
                    || {
                        ticks.tick();
                        seal(msg.clone(), &none, node, &sender).unwrap()
                    },
                    |sealed| open_outer(black_box(sealed), node, &ctx).unwrap(),
                    BATCH,
                )
            });
        } else {
            let sealed = seal(msg.clone(), &none, node, &sender).unwrap();
            g.bench_with_input(BenchmarkId::new("open", label), &sealed, |b, sealed| {
                b.iter(|| open_outer(black_box(sealed.clone()), node, &ctx).unwrap())
            });
        }
    }
    g.finish();
}

fn baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for (size, label) in SIZES {
        let msg = message(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encode", label), &msg, |b, msg| {
            b.iter(|| black_box(msg).to_bytes(&PostcardCodec).unwrap())
        });
    }
    g.finish();
}

fn hmac(c: &mut Criterion) {
    let ticks = Ticks::default();
    let node = Plugins::new().auth(HmacAuth::new(b"bench secret").freshness(ticks.freshness()));
    seal_open(c, "hmac", &node, &ticks, true);
}

fn aead(c: &mut Criterion) {
    let node = Plugins::new().cipher(AeadCipher::new(b"bench secret"));
    seal_open(c, "aead", &node, &Ticks::default(), false);
}

fn hmac_aead(c: &mut Criterion) {
    let ticks = Ticks::default();
    let node = Plugins::new()
        .auth(HmacAuth::new(b"bench secret").freshness(ticks.freshness()))
        .cipher(AeadCipher::new(b"bench secret").encrypt_uri(true));
    seal_open(c, "hmac+aead", &node, &ticks, true);
}

/// `AeadAuth`: what `hmac_aead` guarantees, in one pass.
fn sealed(c: &mut Criterion) {
    for (name, alg) in [
        ("sealed-aes-gcm", AeadAlgorithm::Aes256Gcm),
        ("sealed-xchacha", AeadAlgorithm::XChaCha20Poly1305),
    ] {
        let ticks = Ticks::default();
        let node = Plugins::new().auth(
            AeadAuth::new(b"bench secret")
                .algorithm(alg)
                .encrypt_uri(true)
                .freshness(ticks.freshness()),
        );
        seal_open(c, name, &node, &ticks, true);
    }
}

/// Seal = solve at 8 bits (256 hashes on average); open = verify (one stamp hash plus the
/// content digest).
fn hashcash(c: &mut Criterion) {
    let ticks = Ticks::default();
    let node = Plugins::new().auth(HashcashAuth::new(8).freshness(ticks.freshness()));
    seal_open(c, "hashcash8", &node, &ticks, true);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = baseline, hmac, aead, hmac_aead, sealed, hashcash
}
criterion_main!(benches);
