//! Cost of one tapehash of a 72-byte preimage (a gossip bulletin header) at the parameters in
//! use (tapehash1 with code size 64 for bulletins) and the Python package's defaults, beside one
//! SHA-256 of the same bytes. The cost depends on the preimage (how many of the program's
//! instructions hash the tape), so each iteration hashes another one (a counter in the last 8
//! bytes, as a nonce search does) and the figure is the mean.
//!
//! `cargo bench -p netaio-tapehash --bench tapehash` (add `-- --quick` for a short run).

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use netaio_tapehash::Tapehash;
use sha2::{Digest, Sha256};

fn tapehash(c: &mut Criterion) {
    let mut header: Vec<u8> = (0u8..72).collect();
    let mut n = 0u64;
    let mut next = move || {
        n += 1;
        header.truncate(64);
        header.extend_from_slice(&n.to_be_bytes());
        header.clone()
    };
    let mut group = c.benchmark_group("hash_72B");
    group.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(next()))));
    let functions = [
        ("tapehash1_cs20", Tapehash::v1(20)),
        ("tapehash1_cs64", Tapehash::v1(64)),
        ("tapehash2_tsm2", Tapehash::v2(2)),
        ("tapehash3_cs64_tsm2", Tapehash::v3(64, 2)),
    ];
    for (name, function) in functions {
        let Ok(function) = function else { continue };
        group.bench_function(name, |b| b.iter(|| function.hash(black_box(&next()))));
    }
    group.finish();
}

criterion_group!(benches, tapehash);
criterion_main!(benches);
