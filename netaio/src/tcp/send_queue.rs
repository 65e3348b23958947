//! A connection's send queue, bounded in messages and in bytes, with a byte budget shared by all
//! the connections of a server (`max_queued_bytes`): what `send`, `notify`, `broadcast` and
//! requests queue for a connection's driver to write.
//!
//! A sender reserves the frame's bytes before it queues the frame and the driver gives them back
//! when it takes frames out, once per batch (one atomic subtraction per batch, none per frame).
//! A frame larger than the connection's budget is queued only when the connection's queue is
//! empty, so any frame can be sent.
//!
//! A request is encoded in place ([`QueueSender::try_send_encoded`]): into the connection's
//! batch, one buffer that the driver takes whole, announced by one item in the queue while it is
//! not empty. So a pipelining client pays no buffer of its own per request, no queue item per
//! request and no copy per frame in the driver (issue 20). A frame queued while a batch waits
//! joins the batch, so frames are still written in the order they were queued; frames in a batch
//! are bounded by the byte budget (not by the count).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc};

use crate::error::SendError;

/// Bytes reserved against a limit, and a way to wait for room.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    used: AtomicUsize,
    limit: usize,
    /// Senders waiting for room (a cheap look before `notify_waiters`, which takes a lock).
    waiting: AtomicUsize,
    room: Notify,
}

impl ByteBudget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Bytes reserved now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Reserve `n` bytes if they fit; `or_empty`: also when nothing is reserved (one frame above
    /// the limit).
    pub(crate) fn try_take(&self, n: usize, or_empty: bool) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let fits = cur.saturating_add(n) <= self.limit || (or_empty && cur == 0);
            if !fits {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Give back `n` reserved bytes.
    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.room.notify_waiters();
        }
    }
}

/// The byte accounting of one connection's queue.
#[derive(Debug)]
struct QueueBytes {
    conn: ByteBudget,
    /// The server's budget for all its connections' queues (a client has none).
    node: Option<Arc<ByteBudget>>,
}

/// Which budget refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Connection,
    Node,
}

impl QueueBytes {
    fn reserve(&self, n: usize) -> Result<(), Full> {
        if !self.conn.try_take(n, true) {
            return Err(Full::Connection);
        }
        if let Some(node) = &self.node
            && !node.try_take(n, false)
        {
            self.conn.give(n);
            return Err(Full::Node);
        }
        Ok(())
    }

    fn release(&self, n: usize) {
        self.conn.give(n);
        if let Some(node) = &self.node {
            node.give(n);
        }
    }
}

impl From<Full> for SendError {
    fn from(f: Full) -> Self {
        match f {
            Full::Connection => SendError::QueueFull,
            Full::Node => SendError::NodeQueueFull,
        }
    }
}

/// A frame in a send queue: one buffer, or a head and a tail written one after the other (a
/// relay's `DELIVER`: its own header and uri, then the inner frame as it was received, with no
/// copy to join them; the driver copies a small piece into its write buffer and writes a large
/// one from where it is, see `outgoing.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queued {
    head: Bytes,
    tail: Bytes,
}

impl Queued {
    /// A frame of `head` then `tail`.
    #[inline]
    pub(crate) fn from_parts(head: Bytes, tail: Bytes) -> Self {
        Self { head, tail }
    }

    /// The head and the tail (empty for a frame in one piece).
    #[inline]
    pub(crate) fn into_parts(self) -> (Bytes, Bytes) {
        (self.head, self.tail)
    }

    /// The frame's length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Append the frame to the write buffer.
    #[inline]
    pub(crate) fn write_to(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(&self.head);
        if !self.tail.is_empty() {
            dst.extend_from_slice(&self.tail);
        }
    }
}

impl From<Bytes> for Queued {
    #[inline]
    fn from(head: Bytes) -> Self {
        Self {
            head,
            tail: Bytes::new(),
        }
    }
}

/// What a connection's queue carries: a frame, or word that its batch holds frames.
#[derive(Debug)]
enum Item {
    Frame(Queued),
    Batch,
}

/// Frames encoded in place by their senders, waiting for the driver as one buffer.
#[derive(Debug, Default)]
struct Batch {
    buf: BytesMut,
    /// An [`Item::Batch`] is in the queue (the driver has not taken the batch yet).
    queued: bool,
    /// The driver's end is gone.
    closed: bool,
}

fn lock(batch: &Mutex<Batch>) -> MutexGuard<'_, Batch> {
    batch.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sending end of a connection's queue; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct QueueSender {
    tx: mpsc::Sender<Item>,
    bytes: Arc<QueueBytes>,
    batch: Arc<Mutex<Batch>>,
}

/// Counts a waiting sender in a budget's `waiting` while it lives.
struct Waiting<'a>(&'a ByteBudget);

impl<'a> Waiting<'a> {
    fn new(b: &'a ByteBudget) -> Self {
        b.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(b)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl QueueSender {
    /// Queue a frame without waiting: [`SendError::QueueFull`] when the connection's queue is
    /// full (in messages or bytes), [`SendError::NodeQueueFull`] when the server's budget for
    /// all queues is, [`SendError::Closed`] when the connection has ended.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), SendError> {
        self.try_send_queued(frame.into())
    }

    /// [`try_send`](Self::try_send) for a frame in two parts, `head` then `tail`.
    pub(crate) fn try_send_parts(&self, head: Bytes, tail: Bytes) -> Result<(), SendError> {
        self.try_send_queued(Queued::from_parts(head, tail))
    }

    /// A frame whose bytes are reserved joins the batch waiting in the queue, if there is one
    /// (after the batch's frames, as it was queued after them): `None`. Else it is handed back
    /// to go into the queue as an item of its own. (Only a client's connection makes batches;
    /// elsewhere this is one uncontended lock, off the path of replies, which the dispatcher
    /// writes straight into the write buffer.)
    fn join_batch(&self, frame: Queued) -> Option<Queued> {
        let mut batch = lock(&self.batch);
        if batch.queued && !batch.closed {
            frame.write_to(&mut batch.buf);
            return None;
        }
        Some(frame)
    }

    fn try_send_queued(&self, frame: Queued) -> Result<(), SendError> {
        let n = frame.len();
        self.bytes.reserve(n)?;
        let Some(frame) = self.join_batch(frame) else {
            return Ok(());
        };
        self.tx.try_send(Item::Frame(frame)).map_err(|e| {
            self.bytes.release(n);
            queue_error(&e)
        })
    }

    /// Encode a frame in place at the end of the connection's batch (`encode` appends it, or
    /// leaves the buffer as it was and fails), without waiting: errors as
    /// [`try_send`](Self::try_send)'s, or `encode`'s.
    pub(crate) fn try_send_encoded(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let mut batch = lock(&self.batch);
        if batch.closed {
            return Err(SendError::Closed);
        }
        let start = batch.buf.len();
        encode(&mut batch.buf)?;
        let n = batch.buf.len() - start;
        if let Err(full) = self.bytes.reserve(n) {
            batch.buf.truncate(start);
            return Err(full.into());
        }
        if !batch.queued {
            if let Err(e) = self.tx.try_send(Item::Batch) {
                batch.buf.truncate(start);
                self.bytes.release(n);
                return Err(queue_error(&e));
            }
            batch.queued = true;
        }
        Ok(())
    }

    /// Queue a frame, waiting while the queue (or the server's budget for all queues) is full;
    /// [`SendError::Closed`] when the connection ends meanwhile.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), SendError> {
        self.send_queued(frame.into()).await
    }

    /// [`send`](Self::send) for a frame in two parts, `head` then `tail`.
    pub(crate) async fn send_parts(&self, head: Bytes, tail: Bytes) -> Result<(), SendError> {
        self.send_queued(Queued::from_parts(head, tail)).await
    }

    async fn send_queued(&self, frame: Queued) -> Result<(), SendError> {
        let n = frame.len();
        loop {
            let conn = &self.bytes.conn;
            let node = self.bytes.node.as_deref();
            // Registered before the check, so a release between the check and the wait wakes it.
            let conn_room = conn.room.notified();
            let node_room = node.map(|b| b.room.notified());
            tokio::pin!(conn_room);
            let mut node_room = std::pin::pin!(node_room);
            conn_room.as_mut().enable();
            if let Some(f) = node_room.as_mut().as_pin_mut() {
                f.enable();
            }
            let _waiting = (Waiting::new(conn), node.map(Waiting::new));
            if self.bytes.reserve(n).is_ok() {
                break;
            }
            tokio::select! {
                () = &mut conn_room => {}
                () = async { if let Some(f) = node_room.as_mut().as_pin_mut() { f.await } else { std::future::pending().await } } => {}
                () = self.tx.closed() => return Err(SendError::Closed),
            }
        }
        let Some(frame) = self.join_batch(frame) else {
            return Ok(());
        };
        self.tx.send(Item::Frame(frame)).await.map_err(|_| {
            self.bytes.release(n);
            SendError::Closed
        })
    }

    /// Bytes queued for this connection now.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.bytes.conn.used()
    }
}

/// The driver's end of a connection's queue. Frames taken out are counted and their bytes given
/// back by [`QueueReceiver::release`], once per batch.
#[derive(Debug)]
pub(crate) struct QueueReceiver {
    rx: mpsc::Receiver<Item>,
    bytes: Arc<QueueBytes>,
    batch: Arc<Mutex<Batch>>,
    /// Bytes taken out since the last release.
    taken: usize,
}

impl QueueReceiver {
    /// Whether the queue holds nothing (a cheap look, no receive).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Take a frame without waiting.
    #[inline]
    pub(crate) fn try_recv(&mut self) -> Option<Queued> {
        let item = self.rx.try_recv().ok()?;
        Some(self.take(item))
    }

    /// The frame of an item (the whole batch for a batch's), counted as taken.
    fn take(&mut self, item: Item) -> Queued {
        let q = match item {
            Item::Frame(q) => q,
            Item::Batch => {
                let mut batch = lock(&self.batch);
                batch.queued = false;
                // Shares the batch's buffer; it is reused once the driver has copied or written
                // this out.
                Queued::from(batch.buf.split().freeze())
            }
        };
        self.taken += q.len();
        q
    }

    /// Poll for a frame; `None` once every sender is gone.
    #[inline]
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Queued>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|item| self.take(item)))
    }

    /// Give back the bytes of the frames taken out since the last call.
    #[inline]
    pub(crate) fn release(&mut self) {
        if self.taken > 0 {
            self.bytes.release(std::mem::take(&mut self.taken));
        }
    }
}

impl Drop for QueueReceiver {
    /// The connection ended: what is still queued will never be written; its bytes go back to
    /// the server's budget (a sender that queues after this fails and gives back its own).
    fn drop(&mut self) {
        lock(&self.batch).closed = true;
        self.rx.close();
        while self.try_recv().is_some() {}
        self.release();
    }
}

/// A queue of at most `count` frames and `bytes` bytes (a frame above `bytes` fits an empty
/// queue), reserving also from `node` when given.
pub(crate) fn channel(
    count: usize,
    bytes: usize,
    node: Option<Arc<ByteBudget>>,
) -> (QueueSender, QueueReceiver) {
    let (tx, rx) = mpsc::channel(count.max(1));
    let bytes = Arc::new(QueueBytes {
        conn: ByteBudget::new(bytes),
        node,
    });
    let batch = Arc::new(Mutex::new(Batch::default()));
    (
        QueueSender {
            tx,
            bytes: bytes.clone(),
            batch: batch.clone(),
        },
        QueueReceiver {
            rx,
            bytes,
            batch,
            taken: 0,
        },
    )
}

fn queue_error<T>(e: &mpsc::error::TrySendError<T>) -> SendError {
    match e {
        mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
        mpsc::error::TrySendError::Closed(_) => SendError::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![0u8; n])
    }

    #[test]
    fn bytes_bound_the_queue_and_come_back_when_the_driver_takes_them() {
        let (tx, mut rx) = channel(100, 1000, None);
        tx.try_send(frame(600)).unwrap();
        tx.try_send(frame(400)).unwrap();
        assert!(matches!(tx.try_send(frame(1)), Err(SendError::QueueFull)));
        assert_eq!(tx.queued_bytes(), 1000);
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(600));
        // Not given back until the batch is released.
        assert!(matches!(tx.try_send(frame(1)), Err(SendError::QueueFull)));
        rx.release();
        assert_eq!(tx.queued_bytes(), 400);
        tx.try_send(frame(600)).unwrap();
    }

    #[test]
    fn a_frame_above_the_budget_fits_an_empty_queue_only() {
        let (tx, mut rx) = channel(100, 1000, None);
        tx.try_send(frame(5000)).unwrap();
        assert!(matches!(
            tx.try_send(frame(5000)),
            Err(SendError::QueueFull)
        ));
        assert!(rx.try_recv().is_some());
        rx.release();
        tx.try_send(frame(5000)).unwrap();
    }

    #[test]
    fn the_count_still_bounds_the_queue() {
        let (tx, _rx) = channel(2, 1 << 20, None);
        tx.try_send(frame(1)).unwrap();
        tx.try_send(frame(1)).unwrap();
        assert!(matches!(tx.try_send(frame(1)), Err(SendError::QueueFull)));
        // The refused frame's bytes were given back.
        assert_eq!(tx.queued_bytes(), 2);
    }

    #[test]
    fn the_node_budget_is_shared_and_refusal_gives_the_connection_bytes_back() {
        let node = Arc::new(ByteBudget::new(1500));
        let (a, mut ra) = channel(100, 1000, Some(node.clone()));
        let (b, _rb) = channel(100, 1000, Some(node.clone()));
        a.try_send(frame(1000)).unwrap();
        b.try_send(frame(500)).unwrap();
        assert!(matches!(
            b.try_send(frame(100)),
            Err(SendError::NodeQueueFull)
        ));
        assert_eq!((b.queued_bytes(), node.used()), (500, 1500));
        ra.try_recv().unwrap();
        ra.release();
        assert_eq!(node.used(), 500);
        b.try_send(frame(100)).unwrap();
    }

    #[test]
    fn a_frame_in_two_parts_counts_both_and_is_written_in_order() {
        let (tx, mut rx) = channel(100, 1000, None);
        tx.try_send_parts(Bytes::from_static(b"head|"), Bytes::from_static(b"tail"))
            .unwrap();
        tx.try_send(Bytes::from_static(b"|next")).unwrap();
        assert_eq!(tx.queued_bytes(), 14);
        assert!(matches!(
            tx.try_send_parts(frame(500), frame(500)),
            Err(SendError::QueueFull)
        ));
        let mut wbuf = BytesMut::new();
        while let Some(q) = rx.try_recv() {
            q.write_to(&mut wbuf);
        }
        rx.release();
        assert_eq!(&wbuf[..], b"head|tail|next");
        assert_eq!(tx.queued_bytes(), 0);
    }

    #[test]
    fn a_dropped_receiver_gives_everything_back_to_the_node() {
        let node = Arc::new(ByteBudget::new(10_000));
        let (tx, rx) = channel(100, 5000, Some(node.clone()));
        tx.try_send(frame(300)).unwrap();
        tx.try_send(frame(200)).unwrap();
        assert_eq!(node.used(), 500);
        drop(rx);
        assert_eq!(node.used(), 0);
        assert!(matches!(tx.try_send(frame(1)), Err(SendError::Closed)));
        assert_eq!(node.used(), 0);
    }

    fn encode(bytes: &'static [u8]) -> impl FnOnce(&mut BytesMut) -> Result<(), SendError> {
        move |buf| {
            buf.extend_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn encoded_frames_share_one_batch_and_frames_queued_meanwhile_keep_their_order() {
        let (tx, mut rx) = channel(2, 1000, None);
        tx.try_send(Bytes::from_static(b"a|")).unwrap();
        tx.try_send_encoded(encode(b"r1|")).unwrap();
        // Joins the batch waiting (the queue's count is full): written after r1, before r2.
        tx.try_send(Bytes::from_static(b"b|")).unwrap();
        tx.try_send_encoded(encode(b"r2|")).unwrap();
        assert_eq!(tx.queued_bytes(), 10);
        let mut wbuf = BytesMut::new();
        let mut items = 0;
        while let Some(q) = rx.try_recv() {
            q.write_to(&mut wbuf);
            items += 1;
        }
        rx.release();
        assert_eq!((&wbuf[..], items), (&b"a|r1|b|r2|"[..], 2));
        assert_eq!(tx.queued_bytes(), 0);
        // The batch was taken: the next frame opens a new one.
        tx.try_send_encoded(encode(b"r3")).unwrap();
        assert_eq!(rx.try_recv().map(|q| q.len()), Some(2));
    }

    #[test]
    fn an_encoded_frame_over_the_budget_or_a_failed_encoding_leaves_the_batch_as_it_was() {
        let (tx, mut rx) = channel(100, 10, None);
        tx.try_send_encoded(encode(b"12345678")).unwrap();
        assert!(matches!(
            tx.try_send_encoded(encode(b"too long")),
            Err(SendError::QueueFull)
        ));
        assert!(matches!(
            tx.try_send_encoded(|_| Err(SendError::Closed)),
            Err(SendError::Closed)
        ));
        let q = rx.try_recv().unwrap();
        assert_eq!(q.len(), 8);
        assert!(rx.try_recv().is_none());
        drop(q);
        rx.release();
        drop(rx);
        assert!(matches!(
            tx.try_send_encoded(encode(b"x")),
            Err(SendError::Closed)
        ));
        assert_eq!(tx.queued_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn send_waits_for_room_and_fails_when_the_connection_ends() {
        let (tx, mut rx) = channel(100, 1000, None);
        tx.try_send(frame(1000)).unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(frame(10)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        rx.try_recv().unwrap();
        rx.release();
        waiting.await.unwrap().unwrap();
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(10));
        rx.release();
        assert_eq!(tx.queued_bytes(), 0);

        tx.try_send(frame(1000)).unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(frame(10)).await }
        });
        tokio::task::yield_now().await;
        drop(rx);
        assert!(matches!(waiting.await.unwrap(), Err(SendError::Closed)));
    }
}
