//! tapehash1/2/3, the linear difficulty and Python's `work` loop, against the live Python
//! package `tapehash==0.1.1`: several code sizes, tape size multipliers and inputs (edge values
//! and seeded random ones), each digest compared byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use netaio_tapehash::{
    Difficulty, MAX_PARAM, linear_difficulty, linear_target, meets_linear, tapehash1, tapehash2,
    tapehash3,
};
use serde_json::{Value, json};

use crate::python::ask;

/// splitmix64: a seeded stream of test inputs (the same on every run).
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// One hash to compare: (algorithm, preimage, code_size, tape_size_multiplier).
type Case = (u8, Vec<u8>, u32, u32);

fn cases() -> Vec<Case> {
    let mut rng = Seeded(0x7a9e_4a54);
    let header: Vec<u8> = (0u8..72).collect();
    let long = rng.bytes(1000);
    let preimages: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        b"hello world".to_vec(),
        header,
        long,
    ];
    let mut cases = Vec::new();
    for p in &preimages {
        for code_size in [1, 2, 3, 20, 64, 65, 257, 4096] {
            cases.push((1, p.clone(), code_size, 0));
        }
        for tsm in [1, 2, 3, 5, 16, 100] {
            cases.push((2, p.clone(), 0, tsm));
        }
        for (code_size, tsm) in [
            (1, 1),
            (2, 1),
            (7, 5),
            (64, 2),
            (65, 3),
            (129, 4),
            (1000, 16),
        ] {
            cases.push((3, p.clone(), code_size, tsm));
        }
    }
    // The largest parameters, where they stay cheap enough for Python.
    cases.push((1, b"max".to_vec(), MAX_PARAM, 0));
    cases.push((2, b"max".to_vec(), 0, MAX_PARAM));
    cases.push((3, b"max".to_vec(), MAX_PARAM, 1));
    for _ in 0..60 {
        let algo = 1 + rng.below(3) as u8;
        let len = rng.below(200) as usize;
        let preimage = rng.bytes(len);
        let code_size = 1 + rng.below(300) as u32;
        let tsm = 1 + rng.below(20) as u32;
        cases.push((algo, preimage, code_size, tsm));
    }
    cases
}

fn rust_hash(&(algo, ref preimage, code_size, tsm): &Case) -> [u8; 32] {
    match algo {
        1 => tapehash1(preimage, code_size),
        2 => tapehash2(preimage, tsm),
        _ => tapehash3(preimage, code_size, tsm),
    }
    .unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn tapehash_digests_match_python() {
    let cases = cases();
    let request = json!({
        "hashes": cases.iter().map(|(a, p, c, t)| json!([a, hex::encode(p), c, t])).collect::<Vec<_>>(),
        "digests": [], "difficulties": [], "work": [],
    });
    let answer = ask(&request);
    let python = strings(&answer["hashes"]);
    assert_eq!(python.len(), cases.len());
    for (case, want) in cases.iter().zip(&python) {
        assert_eq!(
            hex::encode(rust_hash(case)),
            *want,
            "tapehash{} preimage {} code_size {} tape_size_multiplier {}",
            case.0,
            hex::encode(&case.1),
            case.2,
            case.3
        );
    }
}

/// Digests at the edges of the linear rule: 0, 1, powers of two and their neighbours, all
/// ones, and tapehash outputs.
fn digests() -> Vec<[u8; 32]> {
    let mut out = vec![[0u8; 32], [0xff; 32]];
    let mut one = [0u8; 32];
    one[31] = 1;
    out.push(one);
    for byte in [0usize, 1, 7, 15, 16, 20, 31] {
        for value in [0x80u8, 0x40, 0x01, 0x03] {
            let mut d = [0u8; 32];
            d[byte] = value;
            out.push(d);
            let mut below = d;
            // Just under that power of two: ...00ff..ff
            below[byte] = value.wrapping_sub(1);
            for b in below.iter_mut().skip(byte + 1) {
                *b = 0xff;
            }
            out.push(below);
            let mut above = d;
            above[31] |= 1;
            out.push(above);
        }
    }
    for i in 0u32..20 {
        out.push(tapehash1(&i.to_be_bytes(), 20).unwrap());
    }
    out
}

const DIFFICULTIES: [u128; 12] = [
    0,
    1,
    2,
    3,
    7,
    128,
    1000,
    65_536,
    1 << 40,
    u64::MAX as u128,
    1 << 100,
    u128::MAX,
];

#[test]
fn linear_difficulty_target_and_check_match_python() {
    let digests = digests();
    let request = json!({
        "hashes": [],
        "digests": digests.iter().map(hex::encode).collect::<Vec<_>>(),
        // As decimal text: JSON numbers above 2**64 do not survive serde_json.
        "difficulties": DIFFICULTIES.iter().map(u128::to_string).collect::<Vec<_>>(),
        "work": [],
    });
    let answer = ask(&request);
    let python_difficulty = strings(&answer["difficulty"]);
    for (d, want) in digests.iter().zip(&python_difficulty) {
        // Exact below u128::MAX; Python's larger values saturate.
        let want: u128 = want.parse().unwrap_or(u128::MAX);
        assert_eq!(linear_difficulty(d), want, "digest {}", hex::encode(d));
    }
    for (d, row) in digests.iter().zip(answer["check"].as_array().unwrap()) {
        for (x, want) in DIFFICULTIES.iter().zip(row.as_array().unwrap()) {
            let want = want.as_bool().unwrap();
            assert_eq!(
                meets_linear(d, *x),
                want,
                "digest {} difficulty {x}",
                hex::encode(d)
            );
            assert_eq!(Difficulty::Linear(*x).is_met_by(d), want);
        }
    }
    for (x, want) in DIFFICULTIES.iter().zip(strings(&answer["target"])) {
        assert_eq!(hex::encode(linear_target(*x)), want, "target of {x}");
    }
}

/// Python's `work` (from a start nonce, incrementing until the tapehash1 digest of
/// `prefix ‖ nonce` is at most the target) and the same search in Rust stop at the same nonce.
#[test]
fn work_finds_the_same_nonce_as_python() {
    let jobs: Vec<(Vec<u8>, u32, u128)> = vec![
        (b"first".to_vec(), 0, 16),
        (b"second".to_vec(), 12_345, 100),
        ((0u8..72).collect(), 7, 300),
        (Vec::new(), 1, 2),
    ];
    let request = json!({
        "hashes": [], "digests": [], "difficulties": [],
        "work": jobs.iter().map(|(p, n, d)| json!([hex::encode(p), n, d.to_string()])).collect::<Vec<_>>(),
    });
    let answer = ask(&request);
    let python: Vec<u64> = answer["work"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    for ((prefix, start, d), want) in jobs.iter().zip(python) {
        let target = linear_target(*d);
        let found = (*start..)
            .find(|n| {
                tapehash1(&[prefix.as_slice(), &n.to_be_bytes()].concat(), 20).unwrap() <= target
            })
            .unwrap();
        assert_eq!(
            u64::from(found),
            want,
            "prefix {} difficulty {d}",
            hex::encode(prefix)
        );
        let digest = tapehash1(&[prefix.as_slice(), &found.to_be_bytes()].concat(), 20).unwrap();
        assert!(meets_linear(&digest, *d));
    }
}
