//! The connection driver shared by the server and the client: one task per connection that reads
//! frames, hands them in order to a dispatcher, and writes replies and queued messages in batches.
//!
//! Reading and writing run concurrently in one `select!`, so a peer that pipelines without reading
//! cannot deadlock the connection; the write buffer has a high-water mark above which reading (and
//! taking queued messages) pauses, so memory stays bounded. Every wait has a deadline: a started
//! frame must complete within the read timeout, a connection with no valid traffic closes after
//! the idle timeout, a server's connection that presents no valid frame within the handshake
//! timeout closes, and a write that makes no progress fails after the write timeout. Which
//! deadline applies, and when, is decided by `Deadlines` (in `deadlines.rs`, free of I/O); this
//! loop reports its events (and each frame's verdict) to it and keeps the one timer.

use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut as _, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite as _, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::io::poll_read_buf;
use tokio_util::sync::CancellationToken;

pub(crate) use super::deadlines::Verdict;
use super::deadlines::{Deadline, Deadlines};
use super::large_frames::{self, LARGE_FRAME};
use super::outgoing::Outgoing;
use super::send_queue::QueueReceiver;
use super::stream::Stream;
use crate::codec::{Frame, FrameCodec, FrameError};

/// How long a closing connection keeps discarding input, and how much at most.
const LINGER: Duration = Duration::from_millis(250);
const LINGER_BYTES: usize = 1 << 20;

/// How much room a read gets once reads have filled the buffer (pipelined or large frames).
const READ_CHUNK: usize = 16 * 1024;

/// How much room a read gets while the peer sends little at a time (an idle or request/response
/// connection keeps only this much read buffer).
const READ_SMALL: usize = 2 * 1024;

/// A deadline far enough to mean "none" (the timer's initial value).
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// Limits applied to one connection.
#[derive(Debug, Clone)]
pub(crate) struct DriverConfig {
    pub(crate) read_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_timeout: Duration,
    /// A connection must present a valid frame within this of opening (a server's).
    pub(crate) handshake_timeout: Option<Duration>,
    /// Refused frames in a row that close the connection (a server's).
    pub(crate) max_auth_failures: Option<u32>,
    /// The write backlog above which taking queued messages pauses.
    pub(crate) write_high_water: usize,
    /// On a connection this node dialed (a client's), the bytes of answers to what it read
    /// (replies to the peer's requests) above which reading pauses, whatever else waits to be
    /// written; `None` on a server, which pauses reading at the write high water (what it reads
    /// are requests whose replies fill the backlog). A client reads mostly replies to its own
    /// calls, which add nothing to the backlog; it must go on taking them while its requests
    /// wait for the peer to read, or, with many large calls in flight, both sides wait on each
    /// other with full buffers.
    pub(crate) read_high_water: Option<usize>,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection.
    PeerClosed,
    /// The peer closed the connection in the middle of a frame.
    Truncated,
    /// This side closed it (shutdown or `close()`).
    Local,
    /// A frame started but did not complete within the read timeout.
    ReadTimeout,
    /// No valid traffic for the idle timeout.
    IdleTimeout,
    /// No valid frame (one that passed the instance plugins) within the handshake timeout of
    /// connecting.
    HandshakeTimeout,
    /// Too many frames in a row failed the instance plugins or did not decode.
    AuthFailures,
    /// Closed to make room for a new connection on a full server (an unauthenticated or the
    /// longest idle connection).
    Evicted,
    /// The peer did not take our data within the write timeout.
    WriteTimeout,
    /// The peer sent a frame that breaks the framing (for example one above the size limit).
    BadFrame(String),
    /// An I/O error.
    Io(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Truncated => f.write_str("closed by peer in the middle of a frame"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::ReadTimeout => f.write_str("partial frame not completed in time"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::HandshakeTimeout => f.write_str("no valid frame in time"),
            CloseReason::AuthFailures => f.write_str("too many refused frames in a row"),
            CloseReason::Evicted => f.write_str("evicted to make room for a new connection"),
            CloseReason::WriteTimeout => f.write_str("peer did not read in time"),
            CloseReason::BadFrame(e) => write!(f, "bad frame: {e}"),
            CloseReason::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

/// What the driver calls for each frame.
pub(crate) trait Dispatch: Send {
    /// Handle one frame; append any reply frames to `out`. Says whether the frame was valid
    /// (passed the instance plugins), for the handshake, the idle deadline and the count of
    /// refused frames. Called only for a frame [`on_frame_now`](Dispatch::on_frame_now)
    /// handed back ([`Now::Async`]): a dispatcher whose `on_frame_now` never does so keeps
    /// this default, which refuses the frame (and says so in the log).
    fn on_frame(
        &mut self,
        frame: Frame,
        out: &mut BytesMut,
    ) -> impl Future<Output = Verdict> + Send {
        let _ = (frame, out);
        tracing::error!("a frame handed back by a dispatcher that handles every frame at once");
        std::future::ready(Verdict::Refused)
    }

    /// Handle one frame without building a future for it, when that needs no waiting (the
    /// default: never, the frame goes back to the driver for [`on_frame`](Dispatch::on_frame)).
    /// `cx` is the connection task's: a future polled with it wakes the task.
    fn on_frame_now(&mut self, frame: Frame, _out: &mut BytesMut, _cx: &mut Context<'_>) -> Now {
        Now::Async(frame)
    }

    /// Finish the frame [`on_frame_now`](Dispatch::on_frame_now) answered [`Now::Resume`] for.
    fn resume(&mut self, _out: &mut BytesMut) -> impl Future<Output = Verdict> + Send {
        std::future::ready(Verdict::Valid)
    }

    /// The connection had valid traffic at `now` (once per batch, not per frame): a valid frame,
    /// or a message of this node's own taken from the queue.
    fn active(&mut self, _now: Instant) {}

    /// The framing broke (`err`); append a last message for the peer, if any, before the close.
    fn on_fatal(&mut self, err: &FrameError, out: &mut BytesMut);
}

/// What [`Dispatch::on_frame_now`] did with a frame.
pub(crate) enum Now {
    /// Handled: the frame's verdict.
    Done(Verdict),
    /// Not started: hand it to [`Dispatch::on_frame`].
    Async(Frame),
    /// Started; [`Dispatch::resume`] finishes it.
    Resume,
}

/// Move the messages queued for this connection while a frame was handled (a handler's `send` or
/// `notify` to its own connection) in front of the reply the dispatcher appended at `mark`, so
/// they go out in the order the handler produced them: what it sent first, then its reply.
///
/// Returns whether it took anything from the queue.
fn queued_before_reply(
    outbound: &mut QueueReceiver,
    out: &mut Outgoing,
    mark: usize,
    high_water: usize,
) -> bool {
    // Usually nothing was queued: a cheap look before the receive (which costs atomics).
    if outbound.is_empty() {
        return false;
    }
    let Some(first) = outbound.try_recv() else {
        return false;
    };
    let reply = out.buf.split_off(mark.min(out.buf.len()));
    out.push(first);
    while out.len() < high_water {
        match outbound.try_recv() {
            Some(b) => out.push(b),
            None => break,
        }
    }
    outbound.release();
    // After every frame pushed, large ones included.
    out.buf.unsplit(reply);
    true
}

/// Take one unit of the task's cooperative budget (tokio's `coop`, shared with the task's I/O
/// operations and reset each time the task is polled anew). Returns `false`, without waiting, when
/// the budget is used up: the task's wake-up is then already scheduled, so the next await that
/// pends yields to the other tasks.
async fn take_budget() -> bool {
    let mut take = std::pin::pin!(tokio::task::consume_budget());
    std::future::poll_fn(|cx| Poll::Ready(take.as_mut().poll(cx).is_ready())).await
}

/// Run a connection until it closes. Returns why it closed.
///
/// Frames are handed to the dispatcher in order, one at a time, and each takes a unit of the
/// task's cooperative budget (128 units per turn in tokio, shared with the task's reads and
/// writes). When the budget runs out the driver writes the replies of the batch so far and yields,
/// then goes on with the frames still buffered: a peer that pipelines thousands of frames whose
/// handlers complete at once cannot monopolise its worker thread, so other connections are served
/// between its batches. A connection that waits for its peer between frames starts every turn with
/// a fresh budget and never yields for this.
///
/// The hot path is kept free of per-message costs beyond the dispatch itself: the clock is read
/// once per batch of frames and once per read, replies are written at once with a non-blocking
/// write (one `write` syscall per batch, no `select!` round when the socket takes everything),
/// the cancellation future is created once, and the deadline timer is only moved earlier, never
/// later (a timer that fires before the current deadline is a spurious wake-up and is re-armed).
///
/// Nor are the cancellation future and the outbound queue polled for real on every round (each
/// such poll costs a few hundred instructions: mutexes, atomics, the cooperative budget). A poll
/// that returns `Pending` leaves the task's waker registered until the event happens, so while it
/// is registered a cheap look stands in for the poll: the token's flag for the cancellation (it is
/// set before the waiters are woken), and whether the queue holds anything for the outbound queue
/// (a send uses up the registered waker and leaves a message; taking messages with `try_recv`
/// therefore counts as unregistering).
pub(crate) async fn drive<S: Stream, D: Dispatch>(
    mut stream: S,
    codec: FrameCodec,
    cfg: &DriverConfig,
    dispatch: &mut D,
    outbound: &mut QueueReceiver,
    cancel: &CancellationToken,
) -> CloseReason {
    let (mut rd, mut wr) = stream.split();
    // Buffers start small and grow with the traffic: an idle connection costs little memory.
    let mut rbuf = BytesMut::with_capacity(READ_SMALL);
    // A large frame is read into a pooled buffer of its own (see `large_frames`): the buffer
    // and the frame's auth block and body length; then the frame, decoded, until dispatched.
    let mut codec = codec.without_large_reserve();
    let mut large: Option<(Vec<u8>, usize)> = None;
    let mut ready: Option<Frame> = None;
    // Replies and small queued frames are batched into one write buffer; large queued frames
    // are written from their own buffers (vectored), in their place.
    let mut wbuf = Outgoing::new(wr.is_write_vectored());
    let mut read_room = READ_SMALL;
    // Bytes the dispatcher added to the backlog (answers to what was read) not yet written, as
    // far as the writes tell (they take the backlog in order, whoever queued it): what paces
    // a dialed connection's reads.
    let mut answered: usize = 0;
    let mut reading = true;
    let mut outbound_open = true;
    let mut stopping = false;
    let mut result: Option<CloseReason> = None;
    let now = Instant::now();
    let mut deadlines = Deadlines::new(cfg, now);
    let sleep = tokio::time::sleep_until(now + FAR);
    tokio::pin!(sleep);
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    // Whether the last real poll of `cancelled` / `outbound` returned `Pending`, so that the task's
    // waker is registered with it (see above).
    let mut cancel_armed = false;
    let mut outbound_armed = false;

    'conn: loop {
        // Hand the complete frames to the dispatcher, in order, until the write backlog is full or
        // the task's cooperative budget is used up.
        let was_empty = wbuf.is_empty();
        let mut dispatched = false;
        // Whether decoding stopped at the high-water mark with frames possibly left in `rbuf`.
        let mut full = true;
        // Whether the task's cooperative budget ran out: frames may be left for the next turn.
        let mut spent = false;
        while may_read(cfg, &wbuf, answered) {
            let next = match ready.take() {
                Some(f) => Ok(Some(f)),
                None => codec.decode(&mut rbuf),
            };
            match next {
                Ok(Some(frame)) => {
                    let mark = wbuf.buf.len();
                    // Most frames are handled at once, without a future moved into place per
                    // frame (a few hundred instructions of copying).
                    let mut frame = Some(frame);
                    let now = std::future::poll_fn(|cx| match frame.take() {
                        Some(f) => Poll::Ready(dispatch.on_frame_now(f, &mut wbuf.buf, cx)),
                        None => Poll::Pending,
                    })
                    .await;
                    let verdict = match now {
                        Now::Done(verdict) => verdict,
                        Now::Async(frame) => dispatch.on_frame(frame, &mut wbuf.buf).await,
                        Now::Resume => dispatch.resume(&mut wbuf.buf).await,
                    };
                    answered += wbuf.buf.len().saturating_sub(mark);
                    if queued_before_reply(outbound, &mut wbuf, mark, cfg.write_high_water) {
                        outbound_armed = false;
                    }
                    dispatched = true;
                    if deadlines.frame(verdict) {
                        // Refused frame after refused frame: a peer without the key (or
                        // without the framing) gets no more of our attention. What was
                        // answered so far is flushed.
                        tracing::info!("closing connection: too many refused frames in a row");
                        full = false;
                        rbuf.clear();
                        large = None;
                        reading = false;
                        result.get_or_insert(CloseReason::AuthFailures);
                        break;
                    }
                    if !take_budget().await {
                        full = false;
                        spent = true;
                        break;
                    }
                }
                Ok(None) => {
                    full = false;
                    if large.is_none()
                        && let Some(rest) = codec.pending_rest()
                        && rest >= LARGE_FRAME
                    {
                        // Whatever of the frame is buffered moves over; the rest is read there.
                        let mut b = large_frames::take(rest);
                        b.extend_from_slice(&rbuf);
                        rbuf.clear();
                        large = Some((b, rest));
                    }
                    break;
                }
                Err(e) => {
                    full = false;
                    tracing::warn!(error = %e, "closing connection: framing lost");
                    dispatch.on_fatal(&e, &mut wbuf.buf);
                    rbuf.clear();
                    large = None;
                    reading = false;
                    result.get_or_insert(CloseReason::BadFrame(e.to_string()));
                    break;
                }
            }
        }
        if dispatched || (was_empty && !wbuf.is_empty()) {
            let now = Instant::now();
            if was_empty && !wbuf.is_empty() {
                deadlines.backlog_started(now);
            }
            if dispatched && deadlines.dispatched(now, !rbuf.is_empty() || large.is_some()) {
                dispatch.active(now);
            }
            // Write the batch now, without waiting for a select round: usually the socket takes
            // it all and the connection goes straight back to reading.
            let mut wrote = false;
            while !wbuf.is_empty() {
                match wbuf.try_write(&wr) {
                    Ok(0) => {
                        result.get_or_insert(CloseReason::Io("write returned 0".into()));
                        break 'conn;
                    }
                    Ok(n) => {
                        wbuf.advance(n);
                        answered = answered.saturating_sub(n);
                        wrote = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "write failed");
                        result.get_or_insert(CloseReason::Io(e.to_string()));
                        break 'conn;
                    }
                }
            }
            if wrote {
                deadlines.wrote(now);
            }
            if spent {
                // Fairness: the batch's replies are written (or left for the select), now let the
                // other tasks run; the rest of the buffered frames follow when this task is
                // polled again, in order.
                tokio::task::consume_budget().await;
                continue;
            }
            if full && may_read(cfg, &wbuf, answered) {
                // The write made room: go on with the frames still buffered.
                continue;
            }
        }
        if !reading && wbuf.is_empty() {
            if (!rbuf.is_empty() || large.is_some()) && result.is_none() {
                tracing::debug!(bytes = rbuf.len(), "peer closed in the middle of a frame");
                result = Some(CloseReason::Truncated);
            }
            break;
        }

        let deadline = deadlines.next(reading, !wbuf.is_empty());
        // Move the timer only when the deadline comes earlier (or the timer already fired): a
        // later deadline, the usual case as activity goes on, is checked when the timer fires.
        if let Some((until, _)) = &deadline
            && (*until < sleep.deadline() || sleep.is_elapsed())
        {
            sleep.as_mut().reset(*until);
        }
        let room = wbuf.len() < cfg.write_high_water;
        let may_read = may_read(cfg, &wbuf, answered);
        // Read in large chunks once a read has filled the room it had (pipelined small frames
        // then cost one syscall per batch); small reads keep a small buffer.
        if reading && large.is_none() && rbuf.capacity() - rbuf.len() < read_room / 2 {
            rbuf.reserve(read_room);
        }
        let room_before_read = rbuf.capacity() - rbuf.len();

        tokio::select! {
            biased;
            () = std::future::poll_fn(|cx| {
                crate::node::poll_cancelled(cancel, cancelled.as_mut(), &mut cancel_armed, cx)
            }), if !stopping => {
                // Graceful: stop reading, finish what was received, flush, close.
                stopping = true;
                reading = false;
                result.get_or_insert(CloseReason::Local);
                while let Some(b) = outbound.try_recv() {
                    wbuf.push(b);
                }
                outbound.release();
            }
            r = std::future::poll_fn(|cx| wbuf.poll_write(&mut wr, cx)), if !wbuf.is_empty() => match r {
                Ok(0) => {
                    result.get_or_insert(CloseReason::Io("write returned 0".into()));
                    break;
                }
                Ok(n) => {
                    wbuf.advance(n);
                    answered = answered.saturating_sub(n);
                    deadlines.wrote(Instant::now());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "write failed");
                    result.get_or_insert(CloseReason::Io(e.to_string()));
                    break;
                }
            },
            m = std::future::poll_fn(|cx| {
                if outbound_armed && outbound.is_empty() {
                    return Poll::Pending;
                }
                let r = outbound.poll_recv(cx);
                outbound_armed = r.is_pending();
                r
            }), if outbound_open && room && !stopping => match m {
                Some(b) => {
                    let now = Instant::now();
                    if wbuf.is_empty() {
                        deadlines.backlog_started(now);
                    }
                    deadlines.sent(now);
                    dispatch.active(now);
                    wbuf.push(b);
                    while wbuf.len() < cfg.write_high_water {
                        match outbound.try_recv() {
                            Some(b) => wbuf.push(b),
                            None => break,
                        }
                    }
                    outbound.release();
                }
                None => outbound_open = false,
            },
            r = std::future::poll_fn(|cx| match large.as_mut() {
                // Exactly the frame's bytes: what follows it goes to `rbuf`.
                Some((b, rest)) => {
                    let left = rest.saturating_sub(b.len());
                    let mut room = (&mut *b).limit(left);
                    poll_read_buf(std::pin::Pin::new(&mut rd), cx, &mut room)
                }
                None => poll_read_buf(std::pin::Pin::new(&mut rd), cx, &mut rbuf),
            }), if reading && may_read && ready.is_none() => match r {
                Ok(0) => {
                    reading = false;
                    if rbuf.is_empty() && large.is_none() {
                        result.get_or_insert(CloseReason::PeerClosed);
                    }
                }
                Ok(n) => {
                    match large.take() {
                        Some((b, rest)) if b.len() >= rest => {
                            ready = codec.complete_pending(large_frames::freeze(b));
                        }
                        Some(l) => large = Some(l),
                        None if n == room_before_read => read_room = READ_CHUNK,
                        None => {}
                    }
                    deadlines.read(Instant::now());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "read failed");
                    result.get_or_insert(CloseReason::Io(e.to_string()));
                    break;
                }
            },
            () = &mut sleep, if deadline.is_some() => {
                // Nothing else ran in this round, so the deadline is the one computed above.
                let Some(kind) = deadlines.expired(Instant::now(), reading, !wbuf.is_empty()) else {
                    // Armed for an earlier deadline that has since moved: re-armed above.
                    continue;
                };
                let reason = kind.reason();
                tracing::info!(reason = %reason, "closing connection");
                result.get_or_insert(reason);
                // A peer that does not read, or never showed the key, is not owed a flush.
                if matches!(kind, Deadline::Write | Deadline::Handshake) {
                    break;
                }
                reading = false;
                rbuf.clear();
                large = None;
            }
        }
    }
    let _ = tokio::time::timeout(cfg.write_timeout, wr.shutdown()).await;
    // Lingering close: closing a socket with unread input makes the kernel send a reset, which can
    // destroy replies the peer has not read yet. Discard what the peer still sends, briefly, until
    // it closes its side.
    if result != Some(CloseReason::PeerClosed) {
        let mut scratch = [0u8; 4096];
        let _ = tokio::time::timeout(LINGER, async {
            let mut total = 0usize;
            while total < LINGER_BYTES {
                match rd.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
    }
    result.unwrap_or(CloseReason::PeerClosed)
}

/// Whether the connection reads (and dispatches what it read) with this backlog: a server's
/// while its backlog is under the write high water, a dialed one's while the answers it queued
/// are under its read high water (see [`DriverConfig::read_high_water`]).
fn may_read(cfg: &DriverConfig, wbuf: &Outgoing, answered: usize) -> bool {
    match cfg.read_high_water {
        None => wbuf.len() < cfg.write_high_water,
        Some(limit) => answered < limit,
    }
}

#[cfg(test)]
mod tests {
    //! The deadlines as the driver enforces them, over a real loopback connection in paused time.
    //!
    //! Paused time advances on its own only when the runtime has nothing to do, and it does so
    //! even when the same idle round delivers socket events (the woken task runs after the jump).
    //! So these tests never wait on a socket while a timer is pending: they let socket events in
    //! with `settle` (yields, which poll the sockets without moving the clock) and wait only on
    //! timers. Should a socket event slip past a timer anyway, the clock jumps and the exact
    //! instants asserted below fail: the tests cannot pass by accident.

    use super::*;
    use crate::message::Header;
    use bytes::Bytes;
    use tokio::net::{TcpListener, TcpStream};

    const READ: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(30);
    const WRITE: Duration = Duration::from_secs(5);
    const MS: Duration = Duration::from_millis(1);

    /// A dispatcher for connections that never complete a frame.
    struct Ignore;

    impl Dispatch for Ignore {
        async fn on_frame(&mut self, _: Frame, _: &mut BytesMut) -> Verdict {
            Verdict::Valid
        }
        fn on_fatal(&mut self, _: &FrameError, _: &mut BytesMut) {}
    }

    /// A connected pair on 127.0.0.1: (the peer, the driver's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (peer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (peer.unwrap(), accepted.unwrap().0)
    }

    /// Run the driver on `stream` in a task; returns it and the sender of its outbound queue.
    fn spawn_driver(
        stream: TcpStream,
        idle_timeout: Option<Duration>,
    ) -> (
        tokio::task::JoinHandle<CloseReason>,
        crate::tcp::send_queue::QueueSender,
    ) {
        let cfg = DriverConfig {
            read_timeout: READ,
            idle_timeout,
            write_timeout: WRITE,
            handshake_timeout: None,
            max_auth_failures: None,
            write_high_water: 1 << 20,
            read_high_water: None,
        };
        let (tx, mut rx) = crate::tcp::send_queue::channel(8, 1 << 16, None);
        let task = tokio::spawn(async move {
            let cancel = CancellationToken::new();
            drive(
                stream,
                FrameCodec::new(),
                &cfg,
                &mut Ignore,
                &mut rx,
                &cancel,
            )
            .await
        });
        (task, tx)
    }

    /// Let pending socket events reach their tasks without moving the paused clock.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// Read what `peer` has now: `Some(0)` at end of stream, `None` if nothing yet.
    fn read_now(peer: &TcpStream, buf: &mut [u8]) -> Option<usize> {
        match peer.try_read(buf) {
            Ok(n) => Some(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Assert that the driver closes the connection at `at` exactly: still open just before, end
    /// of stream at `at` without the clock moving on.
    async fn assert_closes_at(peer: &TcpStream, at: Instant) {
        let mut buf = [0u8; 64];
        tokio::time::sleep_until(at - MS).await;
        settle().await;
        assert_eq!(read_now(peer, &mut buf), None, "closed before the deadline");
        tokio::time::sleep_until(at).await;
        settle().await;
        assert_eq!(
            read_now(peer, &mut buf),
            Some(0),
            "not closed at the deadline"
        );
        assert_eq!(Instant::now(), at);
    }

    #[tokio::test(start_paused = true)]
    async fn half_a_header_is_closed_after_exactly_the_read_timeout() {
        let (mut peer, end) = pair().await;
        // An idle timeout shorter than the read timeout: the started frame's deadline, not the
        // idle one, applies.
        let (driver, _tx) = spawn_driver(end, Some(READ / 2));
        // Read by the driver before any timer of this test exists (see the module comment).
        peer.write_all(&[0u8; Header::LEN / 2]).await.unwrap();
        let t0 = Instant::now();
        settle().await;

        assert_closes_at(&peer, t0 + READ).await;
        drop(peer);
        assert_eq!(driver.await.unwrap(), CloseReason::ReadTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_postpones_the_idle_timeout() {
        let (peer, end) = pair().await;
        let t0 = Instant::now();
        let (driver, tx) = spawn_driver(end, Some(IDLE));
        settle().await;

        // Halfway through the idle timeout, the driver writes a queued message: activity.
        tokio::time::sleep_until(t0 + IDLE / 2).await;
        tx.send(Bytes::from_static(b"hello")).await.unwrap();
        settle().await;
        let mut buf = [0u8; 64];
        assert_eq!(read_now(&peer, &mut buf), Some(5));
        assert_eq!(&buf[..5], b"hello");

        // The timer armed for t0 + IDLE fires then and is re-armed: the close comes an idle
        // timeout after the write.
        assert_closes_at(&peer, t0 + IDLE / 2 + IDLE).await;
        drop(peer);
        assert_eq!(driver.await.unwrap(), CloseReason::IdleTimeout);
    }

    /// A dispatcher that keeps every frame, as a relay keeps a body queued for another
    /// connection (so a large frame's buffer is still lent out when the next one is read), or,
    /// `copy`, a copy of it (the buffer goes back to the pool at once, and a later, smaller large
    /// frame is read into it: room past the frame's end).
    struct Keep(tokio::sync::mpsc::UnboundedSender<Frame>, bool);

    impl Dispatch for Keep {
        async fn on_frame(&mut self, f: Frame, _: &mut BytesMut) -> Verdict {
            let f = match self.1 {
                false => f,
                true => Frame {
                    header: f.header,
                    auth: Bytes::copy_from_slice(&f.auth),
                    body: Bytes::copy_from_slice(&f.body),
                },
            };
            let _ = self.0.send(f);
            Verdict::Valid
        }
        fn on_fatal(&mut self, _: &FrameError, _: &mut BytesMut) {}
    }

    #[tokio::test]
    async fn large_frames_read_into_their_own_buffers_arrive_whole_and_in_order() {
        for copy in [false, true] {
            large_frames_in_order(copy).await;
        }
    }

    async fn large_frames_in_order(copy: bool) {
        use crate::{Message, MessageType};
        let codec = FrameCodec::new();
        let frame = |n: usize, fill: u8| {
            let body = Bytes::from(vec![fill; n]);
            codec
                .to_frame(&Message::new(MessageType::PUBLISH_URI, "t", body))
                .unwrap()
        };
        // Small and large (past LARGE_FRAME) frames mixed, so that a large one ends in the
        // middle of a read and a small one follows it in the same segment.
        let frames = [
            frame(10, 1),
            frame(65_000, 9),
            frame(40_000, 2),
            frame(20, 3),
            frame(LARGE_FRAME, 4),
            frame(65_000, 5),
            frame(5, 6),
            frame(60_000, 7),
        ];
        let all: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        let mut want = Vec::new();
        let (mut dec, mut buf) = (FrameCodec::new(), BytesMut::from(&all[..]));
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            want.push(f);
        }
        assert_eq!(want.len(), frames.len());
        // All of them once more, written at once: a large frame's last read then has the next
        // frames' bytes behind it in the socket.
        want.extend(want.clone());

        let (mut peer, end) = pair().await;
        let (tx, mut got) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let cfg = DriverConfig {
                read_timeout: READ,
                idle_timeout: None,
                write_timeout: WRITE,
                handshake_timeout: None,
                max_auth_failures: None,
                write_high_water: 1 << 20,
                read_high_water: None,
            };
            let (_qtx, mut rx) = crate::tcp::send_queue::channel(8, 1 << 16, None);
            drive(
                end,
                FrameCodec::new(),
                &cfg,
                &mut Keep(tx, copy),
                &mut rx,
                &CancellationToken::new(),
            )
            .await
        });
        // In pieces cut across headers and bodies, then a large frame cut short by the close.
        let mut at = 0;
        for piece in [3usize, 5_000, 37_000, 1, 90_000, 20_000] {
            let end = (at + piece).min(all.len());
            peer.write_all(&all[at..end]).await.unwrap();
            at = end;
            tokio::task::yield_now().await;
        }
        peer.write_all(&all[at..]).await.unwrap();
        peer.write_all(&all).await.unwrap();
        let cut = frame(50_000, 8);
        peer.write_all(&cut[..30_000]).await.unwrap();
        drop(peer);

        let reason = tokio::time::timeout(Duration::from_secs(10), driver)
            .await
            .expect("the driver ends")
            .unwrap();
        let mut kept = Vec::new();
        while let Ok(f) = got.try_recv() {
            kept.push(f);
        }
        assert_eq!(kept, want, "every frame, whole and in order");
        assert_eq!(reason, CloseReason::Truncated, "the cut frame is reported");
    }
}
