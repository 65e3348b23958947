//! Buffers for large incoming frames, kept for reuse across frames and connections.
//!
//! Why: a frame read into the connection's read buffer shares that buffer's allocation until
//! the frame is dropped. A relay (or any route that keeps a frame's body, say queued for another
//! connection) therefore makes the next large frame need a fresh allocation, and glibc's malloc
//! gives such a block back to the kernel when it is freed at the top of the heap, so every large
//! frame was read into pages faulted in and zeroed anew: about 10 page faults per 60 kB frame,
//! half the relay's CPU per relayed call (BENCHMARKS.md, "A relay's large frames and malloc").
//! A large frame is read instead into a buffer of its own taken from a small process-wide pool,
//! and its [`Bytes`] give the buffer back when the last of them is dropped.

use std::sync::Mutex;

use bytes::Bytes;

pub(crate) use crate::codec::LARGE_FRAME;

/// Buffers larger than this are not kept (a rare huge frame should not pin its memory).
const MAX_KEPT_BUFFER: usize = 1 << 20;

/// The most bytes of capacity the pool keeps in all.
const MAX_KEPT_BYTES: usize = 8 << 20;

/// The most buffers the pool keeps.
const MAX_KEPT_BUFFERS: usize = 64;

#[derive(Default)]
struct Pool {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    buffers: Vec::new(),
    bytes: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool holds no invariant a panic elsewhere could break half-way.
    POOL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An empty buffer with room for `len` bytes: a kept one if one is large enough, else new.
pub(crate) fn take(len: usize) -> Vec<u8> {
    let kept = {
        let mut p = pool();
        // The buffer given back last: still in the cache.
        let found = p.buffers.iter().rposition(|b| b.capacity() >= len);
        found.map(|i| {
            let b = p.buffers.remove(i);
            p.bytes -= b.capacity();
            b
        })
    };
    match kept {
        Some(mut b) => {
            b.clear();
            b
        }
        None => Vec::with_capacity(len),
    }
}

/// A full frame buffer as [`Bytes`]: back to the pool when the last `Bytes` of it is dropped.
pub(crate) fn freeze(buffer: Vec<u8>) -> Bytes {
    Bytes::from_owner(Kept(buffer))
}

/// A pooled buffer lent out as [`Bytes`].
struct Kept(Vec<u8>);

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let b = std::mem::take(&mut self.0);
        let cap = b.capacity();
        if cap > MAX_KEPT_BUFFER {
            return;
        }
        let mut p = pool();
        if p.buffers.len() < MAX_KEPT_BUFFERS && p.bytes + cap <= MAX_KEPT_BYTES {
            p.bytes += cap;
            p.buffers.push(b);
        }
    }
}

/// Bytes of capacity the pool keeps now (for tests).
#[cfg(test)]
pub(crate) fn kept_bytes() -> usize {
    pool().bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_bytes_is_dropped_and_is_reused() {
        let mut b = take(40_000);
        b.extend_from_slice(&[7u8; 40_000]);
        let ptr = b.as_ptr();
        let frame = freeze(b);
        let body = frame.slice(100..);
        drop(frame);
        assert_eq!(body.len(), 39_900);
        assert!(body.iter().all(|&x| x == 7));
        drop(body);
        // Other tests may use the pool at the same time: look for this buffer among the kept.
        let mut found = false;
        let mut taken = Vec::new();
        for _ in 0..MAX_KEPT_BUFFERS {
            let b = take(40_000);
            found |= b.as_ptr() == ptr;
            assert!(b.is_empty() && b.capacity() >= 40_000);
            taken.push(b);
            if found {
                break;
            }
        }
        assert!(found, "the buffer was not kept");
    }

    #[test]
    fn the_pool_keeps_no_huge_buffer_and_stays_bounded() {
        let big = take(MAX_KEPT_BUFFER + 1);
        drop(freeze(big));
        let all: Vec<Bytes> = (0..MAX_KEPT_BUFFERS + 8)
            .map(|_| freeze(vec![1u8; 512 * 1024]))
            .collect();
        drop(all);
        assert!(kept_bytes() <= MAX_KEPT_BYTES);
        assert!(pool().buffers.len() <= MAX_KEPT_BUFFERS);
        assert!(
            pool()
                .buffers
                .iter()
                .all(|b| b.capacity() <= MAX_KEPT_BUFFER)
        );
    }
}
