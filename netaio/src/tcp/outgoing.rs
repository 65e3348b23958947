//! A connection's outgoing bytes, in the order they go out: replies and small frames batched in
//! one write buffer, large queued frames kept in their own buffers and written from there with a
//! vectored write.
//!
//! Copying a queued frame into the write buffer costs a pass over its bytes; for pipelined small
//! frames it pays (one buffer, one `write` per batch), for a large frame it is a copy the kernel
//! makes again anyway. A relay's `DELIVER` (a small head, then the inner frame as it was
//! received) and a client's 60 kB request thus reach the socket with no userland copy in the
//! driver: one copy fewer per hop (issues 14 and 20).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::send_queue::Queued;
use super::stream::TryWrite;

/// The smallest piece of a queued frame written from its own buffer rather than copied into the
/// write buffer. Measured with callgrind (BENCHMARKS.md, "Vectored writes of queued frames"): at
/// 4 kB a call costs the same either way, at 8 kB the copy costs 700-800 instructions more than
/// keeping the piece apart (a frozen stretch of the write buffer, a reference count, one more
/// slice for the kernel), at 16 kB 16,000 more. Smaller frames are still batched, so pipelined
/// small messages keep one buffer and one `write` per batch.
pub(crate) const VECTORED_FROM: usize = 8 * 1024;

/// The most slices handed to one vectored write (the rest go in the next).
const MAX_SLICES: usize = 32;

/// A connection's outgoing bytes: `parts`, then `buf`.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Pieces written before `buf`, in order: stretches of the write buffer frozen when a large
    /// piece was queued after them, and large pieces in their own buffers. Bounded with the rest
    /// of the backlog by the driver's high-water mark; every piece is non-empty.
    parts: VecDeque<Bytes>,
    /// Bytes in `parts`.
    parts_len: usize,
    /// Where replies and small frames are appended (after every piece of `parts`).
    pub(crate) buf: BytesMut,
    /// [`VECTORED_FROM`], or "never" on a stream without vectored writes (where a vectored
    /// write would write one slice per call).
    vectored_from: usize,
}

impl Outgoing {
    /// Empty; `vectored`: whether the stream writes several slices in one call.
    pub(crate) fn new(vectored: bool) -> Self {
        Self {
            parts: VecDeque::new(),
            parts_len: 0,
            buf: BytesMut::new(),
            vectored_from: if vectored { VECTORED_FROM } else { usize::MAX },
        }
    }

    /// Bytes waiting to be written.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.parts_len + self.buf.len()
    }

    /// Whether nothing waits to be written.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.parts_len == 0 && self.buf.is_empty()
    }

    /// Append a queued frame: its large pieces by reference, the others copied.
    #[inline]
    pub(crate) fn push(&mut self, frame: Queued) {
        if frame.len() < self.vectored_from {
            // Small as a whole (the usual case): both pieces copied, nothing taken apart.
            frame.write_to(&mut self.buf);
            return;
        }
        let (head, tail) = frame.into_parts();
        self.push_piece(head);
        if !tail.is_empty() {
            self.push_piece(tail);
        }
    }

    fn push_piece(&mut self, piece: Bytes) {
        if piece.len() < self.vectored_from {
            self.buf.extend_from_slice(&piece);
            return;
        }
        if !self.buf.is_empty() {
            // What is in the buffer goes first. The buffer keeps its spare capacity and gets its
            // memory back once this stretch is written and dropped.
            let before = self.buf.split().freeze();
            self.parts_len += before.len();
            self.parts.push_back(before);
        }
        self.parts_len += piece.len();
        self.parts.push_back(piece);
    }

    /// The first pieces (at most [`MAX_SLICES`]) as slices for a vectored write, in `slots`.
    fn slices<'s, 'a>(&'a self, slots: &'s mut [IoSlice<'a>; MAX_SLICES]) -> &'s [IoSlice<'a>] {
        let buf = (!self.buf.is_empty()).then_some(self.buf.as_ref());
        let pieces = self.parts.iter().map(Bytes::as_ref).chain(buf);
        let mut n = 0;
        for (slot, piece) in slots.iter_mut().zip(pieces) {
            *slot = IoSlice::new(piece);
            n += 1;
        }
        slots.get(..n).unwrap_or_default()
    }

    /// Write what the socket takes now, without waiting (one call): the bytes written.
    #[inline]
    pub(crate) fn try_write<W: TryWrite>(&self, wr: &W) -> io::Result<usize> {
        if self.parts.is_empty() {
            return wr.try_write(&self.buf);
        }
        let mut slots = [IoSlice::new(&[]); MAX_SLICES];
        wr.try_write_vectored(self.slices(&mut slots))
    }

    /// Poll one write of what is waiting: the bytes written.
    #[inline]
    pub(crate) fn poll_write<W: AsyncWrite + Unpin>(
        &self,
        wr: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.parts.is_empty() {
            return Pin::new(wr).poll_write(cx, &self.buf);
        }
        let mut slots = [IoSlice::new(&[]); MAX_SLICES];
        Pin::new(wr).poll_write_vectored(cx, self.slices(&mut slots))
    }

    /// Drop the first `n` bytes (written), across pieces.
    pub(crate) fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.parts.front_mut() else {
                // A write never reports more than it was given; `min` keeps that an assumption
                // this cannot panic on.
                self.buf.advance(n.min(self.buf.len()));
                return;
            };
            if n < front.len() {
                front.advance(n);
                self.parts_len -= n;
                return;
            }
            n -= front.len();
            self.parts_len -= front.len();
            self.parts.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A writer that takes at most `max` bytes per call and records them.
    struct Taker {
        max: usize,
        got: RefCell<Vec<u8>>,
        calls: RefCell<usize>,
    }

    impl Taker {
        fn new(max: usize) -> Self {
            Self {
                max,
                got: RefCell::new(Vec::new()),
                calls: RefCell::new(0),
            }
        }
    }

    impl TryWrite for Taker {
        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            self.try_write_vectored(&[IoSlice::new(buf)])
        }

        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            *self.calls.borrow_mut() += 1;
            let mut left = self.max;
            for b in bufs {
                let n = b.len().min(left);
                self.got.borrow_mut().extend_from_slice(&b[..n]);
                left -= n;
                if left == 0 {
                    break;
                }
            }
            Ok(self.max - left)
        }
    }

    fn filled(n: usize, byte: u8) -> Bytes {
        Bytes::from(vec![byte; n])
    }

    /// Write everything through `wr`, a bounded number of calls.
    fn drain(out: &mut Outgoing, wr: &Taker) {
        for _ in 0..100_000 {
            if out.is_empty() {
                return;
            }
            let n = out.try_write(wr).unwrap();
            assert!(n > 0);
            out.advance(n);
        }
        panic!("not drained");
    }

    #[test]
    fn large_pieces_keep_their_place_between_small_frames_and_replies() {
        let mut out = Outgoing::new(true);
        let mut expected = Vec::new();
        out.buf.extend_from_slice(b"reply1|");
        expected.extend_from_slice(b"reply1|");
        for (i, size) in [10, VECTORED_FROM, 3, VECTORED_FROM * 3 + 7, 1]
            .into_iter()
            .enumerate()
        {
            let b = filled(size, i as u8);
            expected.extend_from_slice(&b);
            out.push(Queued::from(b));
        }
        // A relay's two-part frame: a small head copied, the large tail by reference.
        let (head, tail) = (filled(40, 0xAA), filled(VECTORED_FROM + 1, 0xBB));
        expected.extend_from_slice(&head);
        expected.extend_from_slice(&tail);
        out.push(Queued::from_parts(head, tail));
        out.buf.extend_from_slice(b"|reply2");
        expected.extend_from_slice(b"|reply2");
        assert_eq!(out.len(), expected.len());
        // reply1 + 10, large, 3, large, 1 + head, tail; and the buffer.
        assert_eq!(out.parts.len(), 6);

        // A writer that takes odd amounts, splitting every piece somewhere.
        let wr = Taker::new(4093);
        drain(&mut out, &wr);
        assert_eq!(*wr.got.borrow(), expected);
        assert_eq!(out.len(), 0);
    }

    #[test]
    fn small_frames_are_copied_into_one_buffer_and_written_in_one_call() {
        let mut out = Outgoing::new(true);
        for i in 0..100u8 {
            out.push(Queued::from(filled(64, i)));
        }
        assert!(out.parts.is_empty());
        let wr = Taker::new(usize::MAX);
        drain(&mut out, &wr);
        assert_eq!((wr.got.borrow().len(), *wr.calls.borrow()), (6400, 1));
    }

    #[test]
    fn without_vectored_writes_everything_is_copied() {
        let mut out = Outgoing::new(false);
        out.push(Queued::from(filled(VECTORED_FROM * 2, 1)));
        assert!(out.parts.is_empty());
        assert_eq!(out.len(), VECTORED_FROM * 2);
    }

    #[test]
    fn more_pieces_than_one_write_takes_go_in_the_next() {
        let mut out = Outgoing::new(true);
        let mut expected = Vec::new();
        for i in 0..(MAX_SLICES as u8 * 2) {
            let b = filled(VECTORED_FROM, i);
            expected.extend_from_slice(&b);
            out.push(Queued::from(b));
            out.buf.extend_from_slice(&[i]);
            expected.push(i);
        }
        let wr = Taker::new(usize::MAX);
        drain(&mut out, &wr);
        assert_eq!(*wr.got.borrow(), expected);
        assert!(*wr.calls.borrow() >= 4);
    }
}
