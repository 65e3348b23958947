//! Proof-of-work cost of a bulletin at the default difficulty (tapehash1, code size 64, 7
//! leading zero bits: 128 tapehashes on average): minting one, and verifying one on receipt.
//!
//! `cargo bench -p netaio-gossip --bench mint` (add `-- --quick` for a short run). Each
//! iteration mints a different content, so the time is the mean over the geometric spread of
//! tries.

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use netaio_gossip::{Bulletin, BulletinPolicy, TopicId};

const NOW: u64 = 1_700_000_000;

fn mint(c: &mut Criterion) {
    let policy = BulletinPolicy::default();
    let topic = TopicId::from_descriptor(b"bench");
    let mut n = 0u64;
    let mut group = c.benchmark_group("bulletin_default_difficulty");
    group.bench_function("mint_100B", |b| {
        b.iter(|| {
            n += 1;
            let mut content = n.to_be_bytes().to_vec();
            content.resize(100, 0);
            black_box(policy.mint(topic, content, NOW, 0).unwrap())
        })
    });
    let minted: Vec<Bulletin> = (0..64u64)
        .map(|i| {
            let mut content = i.to_be_bytes().to_vec();
            content.resize(100, 0);
            policy.mint(topic, content, NOW, 0).unwrap().into_bulletin()
        })
        .collect();
    let mut i = 0;
    group.bench_function("verify_100B", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % minted.len();
                minted[i].clone()
            },
            |bulletin| black_box(policy.verify(bulletin, NOW).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, mint);
criterion_main!(benches);
