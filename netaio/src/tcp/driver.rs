//! The connection driver shared by the server and the client: one task per connection that reads
//! frames, hands them in order to a dispatcher, and writes replies and queued messages in batches.
//!
//! Reading and writing run concurrently in one `select!`, so a peer that pipelines without reading
//! cannot deadlock the connection; the write buffer has a high-water mark above which reading (and
//! taking queued messages) pauses, so memory stays bounded. Every wait has a deadline: a started
//! frame must complete within the read timeout, a connection with no traffic closes after the idle
//! timeout, and a write that makes no progress fails after the write timeout.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::codec::{Frame, FrameCodec, FrameError};

/// How long a closing connection keeps discarding input, and how much at most.
const LINGER: Duration = Duration::from_millis(250);
const LINGER_BYTES: usize = 1 << 20;

/// How much room a read gets at least.
const READ_CHUNK: usize = 16 * 1024;

/// Limits applied to one connection.
#[derive(Debug, Clone)]
pub(crate) struct DriverConfig {
    pub(crate) read_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_timeout: Duration,
    pub(crate) write_high_water: usize,
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
    /// No traffic for the idle timeout.
    IdleTimeout,
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
            CloseReason::WriteTimeout => f.write_str("peer did not read in time"),
            CloseReason::BadFrame(e) => write!(f, "bad frame: {e}"),
            CloseReason::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

/// What the driver calls for each frame.
pub(crate) trait Dispatch: Send {
    /// Handle one frame; append any reply frames to `out`.
    fn on_frame(&mut self, frame: Frame, out: &mut BytesMut) -> impl Future<Output = ()> + Send;

    /// The framing broke (`err`); append a last message for the peer, if any, before the close.
    fn on_fatal(&mut self, err: &FrameError, out: &mut BytesMut);
}

enum Deadline {
    Read,
    Idle,
    Write,
}

/// Move the messages queued for this connection while a frame was handled (a handler's `send` or
/// `notify` to its own connection) in front of the reply the dispatcher appended at `mark`, so
/// they go out in the order the handler produced them: what it sent first, then its reply.
fn queued_before_reply(
    outbound: &mut mpsc::Receiver<Bytes>,
    wbuf: &mut BytesMut,
    mark: usize,
    high_water: usize,
) {
    let Ok(first) = outbound.try_recv() else {
        return;
    };
    let reply = wbuf.split_off(mark.min(wbuf.len()));
    wbuf.extend_from_slice(&first);
    while wbuf.len() < high_water {
        match outbound.try_recv() {
            Ok(b) => wbuf.extend_from_slice(&b),
            Err(_) => break,
        }
    }
    wbuf.unsplit(reply);
}

/// Run a connection until it closes. Returns why it closed.
pub(crate) async fn drive<D: Dispatch>(
    mut stream: TcpStream,
    mut codec: FrameCodec,
    cfg: &DriverConfig,
    dispatch: &mut D,
    outbound: &mut mpsc::Receiver<Bytes>,
    cancel: &CancellationToken,
) -> CloseReason {
    let (mut rd, mut wr) = stream.split();
    let mut rbuf = BytesMut::with_capacity(8 * 1024);
    let mut wbuf = BytesMut::with_capacity(8 * 1024);
    let mut reading = true;
    let mut outbound_open = true;
    let mut stopping = false;
    let mut result: Option<CloseReason> = None;
    let now = Instant::now();
    let mut last_activity = now;
    let mut frame_started: Option<Instant> = None;
    let mut write_progress = now;
    let far = Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(now + far);
    tokio::pin!(sleep);

    loop {
        // Hand every complete frame to the dispatcher, in order, unless the write backlog is full.
        while wbuf.len() < cfg.write_high_water {
            match codec.decode(&mut rbuf) {
                Ok(Some(frame)) => {
                    let was_empty = wbuf.is_empty();
                    let mark = wbuf.len();
                    dispatch.on_frame(frame, &mut wbuf).await;
                    queued_before_reply(outbound, &mut wbuf, mark, cfg.write_high_water);
                    if was_empty && !wbuf.is_empty() {
                        write_progress = Instant::now();
                    }
                    frame_started = if rbuf.is_empty() {
                        None
                    } else {
                        Some(Instant::now())
                    };
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "closing connection: framing lost");
                    dispatch.on_fatal(&e, &mut wbuf);
                    rbuf.clear();
                    reading = false;
                    result.get_or_insert(CloseReason::BadFrame(e.to_string()));
                    break;
                }
            }
        }
        if !reading && wbuf.is_empty() {
            if !rbuf.is_empty() && result.is_none() {
                tracing::debug!(bytes = rbuf.len(), "peer closed in the middle of a frame");
                result = Some(CloseReason::Truncated);
            }
            break;
        }

        let deadline = if !wbuf.is_empty() {
            Some((write_progress + cfg.write_timeout, Deadline::Write))
        } else if let Some(started) = frame_started.filter(|_| reading) {
            Some((started + cfg.read_timeout, Deadline::Read))
        } else if reading {
            cfg.idle_timeout
                .map(|t| (last_activity + t, Deadline::Idle))
        } else {
            None
        };
        let until = deadline
            .as_ref()
            .map(|(t, _)| *t)
            .unwrap_or_else(|| Instant::now() + far);
        if sleep.deadline() != until {
            sleep.as_mut().reset(until);
        }
        let room = wbuf.len() < cfg.write_high_water;
        // Read in large chunks: pipelined small frames then cost one syscall per batch.
        if reading && rbuf.capacity() - rbuf.len() < READ_CHUNK / 2 {
            rbuf.reserve(READ_CHUNK);
        }

        tokio::select! {
            biased;
            () = cancel.cancelled(), if !stopping => {
                // Graceful: stop reading, finish what was received, flush, close.
                stopping = true;
                reading = false;
                result.get_or_insert(CloseReason::Local);
                while let Ok(b) = outbound.try_recv() {
                    wbuf.extend_from_slice(&b);
                }
            }
            r = wr.write_buf(&mut wbuf), if !wbuf.is_empty() => match r {
                Ok(0) => {
                    result.get_or_insert(CloseReason::Io("write returned 0".into()));
                    break;
                }
                Ok(_) => {
                    write_progress = Instant::now();
                    last_activity = write_progress;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "write failed");
                    result.get_or_insert(CloseReason::Io(e.to_string()));
                    break;
                }
            },
            m = outbound.recv(), if outbound_open && room && !stopping => match m {
                Some(b) => {
                    if wbuf.is_empty() {
                        write_progress = Instant::now();
                    }
                    wbuf.extend_from_slice(&b);
                    while wbuf.len() < cfg.write_high_water {
                        match outbound.try_recv() {
                            Ok(b) => wbuf.extend_from_slice(&b),
                            Err(_) => break,
                        }
                    }
                }
                None => outbound_open = false,
            },
            r = rd.read_buf(&mut rbuf), if reading && room => match r {
                Ok(0) => {
                    reading = false;
                    if rbuf.is_empty() {
                        result.get_or_insert(CloseReason::PeerClosed);
                    }
                }
                Ok(_) => {
                    last_activity = Instant::now();
                    frame_started.get_or_insert(last_activity);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "read failed");
                    result.get_or_insert(CloseReason::Io(e.to_string()));
                    break;
                }
            },
            () = &mut sleep, if deadline.is_some() => {
                let reason = match deadline {
                    Some((_, Deadline::Write)) => CloseReason::WriteTimeout,
                    Some((_, Deadline::Read)) => CloseReason::ReadTimeout,
                    _ => CloseReason::IdleTimeout,
                };
                tracing::info!(reason = %reason, "closing connection");
                result.get_or_insert(reason);
                if matches!(deadline, Some((_, Deadline::Write))) {
                    break;
                }
                reading = false;
                rbuf.clear();
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
