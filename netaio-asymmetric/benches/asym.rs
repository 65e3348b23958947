//! Seal/open cost of the public-key plugins at 64 B and 60 kB of content:
//! `X25519Cipher` encrypt/decrypt (keys cached after the first message) and `Ed25519Auth`
//! make/check (check includes the freshness and replay bookkeeping).
//!
//! Run with `cargo bench -p netaio-asymmetric --bench asym`.

// Benchmark setup fails loudly rather than measuring the wrong thing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use netaio::Message;
use netaio::plugin::{AuthPlugin, CipherPlugin, Freshness, PluginContext};
use netaio_asymmetric::{AsymmetricPeerPlugin, Ed25519Auth, Identity, X25519Cipher};

const SIZES: [(usize, &str); 2] = [(64, "64B"), (60_000, "60kB")];

fn ctx(peer: &netaio::peer::Peer) -> PluginContext<'_> {
    PluginContext {
        peer: Some(peer),
        peer_plugin: Some(&AsymmetricPeerPlugin),
        ..Default::default()
    }
}

fn x25519(c: &mut Criterion) {
    let (alice, bob) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
    let (pa, pb) = (alice.peer("a").unwrap(), bob.peer("b").unwrap());
    let (ca, cb) = (X25519Cipher::new(&alice), X25519Cipher::new(&bob));
    let mut g = c.benchmark_group("x25519_cipher");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (size, name) in SIZES {
        let msg = Message::ok("bench", vec![0x5a; size]);
        let sealed = ca.encrypt(msg.clone(), &ctx(&pb)).unwrap();
        assert_eq!(cb.decrypt(sealed.clone(), &ctx(&pa)).unwrap(), msg);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("seal/{name}"), |b| {
            b.iter(|| black_box(ca.encrypt(msg.clone(), &ctx(&pb)).unwrap()))
        });
        g.bench_function(format!("open/{name}"), |b| {
            b.iter(|| black_box(cb.decrypt(sealed.clone(), &ctx(&pa)).unwrap()))
        });
    }
    g.finish();
}

fn ed25519(c: &mut Criterion) {
    let alice = Identity::from_seed([1; 32]);
    let pa = alice.peer("a").unwrap();
    let signer = Ed25519Auth::new(&alice);
    // Every checked message is new (a replayed one would be refused), so the replay cache grows
    // for the whole run: give it room.
    let verifier = Ed25519Auth::new(&Identity::from_seed([2; 32]))
        .freshness(Freshness::default().capacity(50_000_000));
    let none = PluginContext::default();
    let mut g = c.benchmark_group("ed25519_auth");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (size, name) in SIZES {
        let msg = Message::ok("bench", vec![0x5a; size]);
        let mut probe = msg.clone();
        signer.make(&mut probe, &none).unwrap();
        verifier.check(&mut probe, &ctx(&pa)).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("seal/{name}"), |b| {
            b.iter(|| {
                let mut m = msg.clone();
                signer.make(&mut m, &none).unwrap();
                black_box(m)
            })
        });
        g.bench_function(format!("open/{name}"), |b| {
            b.iter_batched(
                || {
                    let mut m = msg.clone();
                    signer.make(&mut m, &none).unwrap();
                    m
                },
                |mut m| {
                    verifier.check(&mut m, &ctx(&pa)).unwrap();
                    black_box(m)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, x25519, ed25519);
criterion_main!(benches);
