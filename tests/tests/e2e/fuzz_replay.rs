//! The fuzz targets on the stable toolchain: every target over its committed corpus
//! (`fuzz/corpus/<target>/`, which `cargo fuzz` also starts from) and the library's own seeds,
//! then over seeded random mutations of them (bit flips, byte overwrites with boundary values,
//! insertions, deletions, truncations, splices). libFuzzer on nightly explores far more
//! (`fuzz/README.md`); this keeps every target running in every CI build.
//!
//! `NETAIO_WRITE_FUZZ_CORPUS=1` also writes the seeds into the corpus directories.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use netaio_tests::fuzz::{TARGETS, seeds};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Mutated inputs per target, and a time bound per target (debug builds are slow).
const MUTATIONS: usize = 100_000;
const TIME_PER_TARGET: Duration = Duration::from_secs(20);

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] = [0, 1, 0x7f, 0x80, 0xfe, 0xff][rng.random_range(0..6)];
            }
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..=16);
                let fill: u8 = rng.random();
                out.splice(i..i, std::iter::repeat_n(fill, n));
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(16));
                out.drain(i..i + n);
            }
            4 => out.truncate(rng.random_range(0..=len)),
            _ => {
                let cut = rng.random_range(0..=len);
                let from = rng.random_range(0..=other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
    out
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations_of_it() {
    let seeds = seeds();
    if std::env::var_os("NETAIO_WRITE_FUZZ_CORPUS").is_some() {
        for (i, (target, bytes)) in seeds.iter().enumerate() {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{i:03}")), bytes).unwrap();
        }
    }
    for (name, target) in TARGETS {
        let mut inputs = corpus(name);
        assert!(
            !inputs.is_empty(),
            "fuzz/corpus/{name} is empty: cargo fuzz would start from nothing"
        );
        inputs.extend(
            seeds
                .iter()
                .filter(|(t, _)| *t == name)
                .map(|(_, b)| b.clone()),
        );
        for input in &inputs {
            target(input);
        }
        let mut rng = StdRng::seed_from_u64(0x6e65_7461_696f);
        let start = Instant::now();
        let mut ran = 0;
        while ran < MUTATIONS && start.elapsed() < TIME_PER_TARGET {
            let a = &inputs[rng.random_range(0..inputs.len())];
            let b = &inputs[rng.random_range(0..inputs.len())];
            target(&mutate(&mut rng, a, b));
            ran += 1;
        }
        eprintln!("{name}: {} corpus inputs, {ran} mutations", inputs.len());
        assert!(
            ran >= 1_000,
            "{name}: only {ran} mutations in the time bound"
        );
    }
}
