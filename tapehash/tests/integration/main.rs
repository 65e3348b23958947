//! Integration tests of `netaio-tapehash`, built as one test binary
//! (`cargo test -p netaio-tapehash --test integration`).
mod python;
mod python_vectors;
