//! The deadlines of a TCP connection, and the count of refused frames that ends one, kept apart
//! from the I/O so they can be tested with made-up instants.
//!
//! - **Handshake**: a connection must present one valid frame (one that passed the instance
//!   plugins, that is authenticated; with none, any frame that decodes) within the handshake
//!   timeout of opening, so a peer without the key cannot hold a connection slot (optional; a
//!   server's, not a client's).
//! - **Read**: a frame whose first bytes arrived must complete within the read timeout, so a peer
//!   cannot hold a connection open by trickling a frame (slowloris).
//! - **Idle**: a connection with no valid traffic closes after the idle timeout (optional). Valid
//!   traffic is a valid frame received, or a message of this node's own taken from the send
//!   queue; bytes that do not make a valid frame (refused frames, garbage, the error replies to
//!   them) do not count, so a peer cannot keep a connection by sending what fails the checks.
//! - **Write**: while replies are waiting to be written, the peer must take some of them within
//!   the write timeout of the last progress, so a peer that stops reading cannot pin the buffer.
//! - **Refused frames**: a connection that sends more than the limit of refused frames in a row
//!   (failing the instance plugins, or not decoding) is closed (optional; a server's).
//!
//! The driver reports each event with the instant it already read from the clock (the struct
//! never reads it itself, so the hot path keeps one clock read per batch of frames and one per
//! read), reports each frame's [`Verdict`] (no clock read), and asks [`Deadlines::next`] which
//! deadline to arm its timer for.

use std::time::Duration;

use tokio::time::Instant;

use super::driver::{CloseReason, DriverConfig};

/// What the dispatcher made of one frame, for the connection's deadlines and its count of
/// refused frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It passed the instance plugins (with none: it decoded). Completes the handshake, resets
    /// the count of refused frames and counts as activity.
    Valid,
    /// It did not decode, or failed the instance plugins. Counts towards the limit of refused
    /// frames in a row.
    Refused,
    /// It failed the instance plugins but was accepted anyway (an error reply without plugins
    /// answering a request of this node): neither proof of the key nor a refusal.
    Unverified,
}

/// Which deadline the connection is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// The first valid frame must arrive.
    Handshake,
    /// A started frame must complete.
    Read,
    /// Some valid traffic must happen.
    Idle,
    /// The write backlog must make progress.
    Write,
}

impl Deadline {
    /// Why the connection closes when this deadline passes.
    pub(crate) fn reason(self) -> CloseReason {
        match self {
            Deadline::Handshake => CloseReason::HandshakeTimeout,
            Deadline::Read => CloseReason::ReadTimeout,
            Deadline::Idle => CloseReason::IdleTimeout,
            Deadline::Write => CloseReason::WriteTimeout,
        }
    }
}

/// The timestamps the deadlines count from, the timeouts, and the refused frames in a row.
///
/// Of the read, idle and write deadlines only one applies at a time, in this order of
/// precedence: the write deadline while a backlog exists (a connection that cannot write cannot
/// usefully read either: reading pauses at the high-water mark), else the read deadline while
/// reading with a frame started, else the idle deadline while reading. The handshake deadline,
/// while reading and until the first valid frame, applies besides whichever of those: the
/// earlier of the two is the one waited for.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines {
    read_timeout: Duration,
    idle_timeout: Option<Duration>,
    write_timeout: Duration,
    /// The last valid traffic: what the idle deadline counts from.
    last_activity: Instant,
    /// When the first bytes of the frame now partially buffered arrived, if any.
    frame_started: Option<Instant>,
    /// When the write backlog began or last shrank: what the write deadline counts from.
    write_progress: Instant,
    /// When the handshake deadline passes; `None` once a valid frame arrived (or without one).
    handshake: Option<Instant>,
    /// Whether a valid frame arrived since the last [`Deadlines::dispatched`].
    valid_since_dispatch: bool,
    /// Refused frames in a row.
    refused: u32,
    /// How many refused frames in a row close the connection (`None`: no limit).
    max_refused: Option<u32>,
}

impl Deadlines {
    /// The deadlines of a connection that opened at `now`: opening counts as activity, and
    /// starts the handshake deadline.
    pub(crate) fn new(cfg: &DriverConfig, now: Instant) -> Self {
        Self {
            read_timeout: cfg.read_timeout,
            idle_timeout: cfg.idle_timeout,
            write_timeout: cfg.write_timeout,
            last_activity: now,
            frame_started: None,
            write_progress: now,
            handshake: cfg.handshake_timeout.map(|t| now + t),
            valid_since_dispatch: false,
            refused: 0,
            max_refused: cfg.max_auth_failures,
        }
    }

    /// Bytes were read at `now`. They may start a frame: the read deadline counts from the first
    /// bytes of a frame, so an already started frame keeps its start (a peer trickling a byte at
    /// a time does not push the deadline back). Bytes are not activity: only a valid frame is.
    /// Whether the bytes completed a frame is known only after decoding, reported by
    /// [`Deadlines::dispatched`].
    #[inline]
    pub(crate) fn read(&mut self, now: Instant) {
        self.frame_started.get_or_insert(now);
    }

    /// The dispatcher's verdict on one frame (no clock read: the batch's instant comes with
    /// [`Deadlines::dispatched`]). Returns true when the connection must close: the limit of
    /// refused frames in a row is reached.
    #[inline]
    pub(crate) fn frame(&mut self, verdict: Verdict) -> bool {
        match verdict {
            Verdict::Valid => {
                self.refused = 0;
                self.valid_since_dispatch = true;
                false
            }
            Verdict::Refused => {
                self.refused = self.refused.saturating_add(1);
                self.max_refused.is_some_and(|max| self.refused >= max)
            }
            Verdict::Unverified => false,
        }
    }

    /// Frames were decoded and dispatched at `now`; `partial` says whether bytes are left in the
    /// read buffer (the start of another frame, which then counts from `now`). Returns whether a
    /// valid frame was among them: activity at `now`, and the end of the handshake.
    #[inline]
    pub(crate) fn dispatched(&mut self, now: Instant, partial: bool) -> bool {
        self.frame_started = partial.then_some(now);
        if !self.valid_since_dispatch {
            return false;
        }
        self.valid_since_dispatch = false;
        self.last_activity = now;
        self.handshake = None;
        true
    }

    /// Messages of this node's own (`send`, `notify`, a request) were taken from the send queue
    /// at `now`: activity.
    #[inline]
    pub(crate) fn sent(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// The write backlog went from empty to not empty at `now`: the write deadline starts.
    #[inline]
    pub(crate) fn backlog_started(&mut self, now: Instant) {
        self.write_progress = now;
    }

    /// Some bytes were written at `now`: progress for the write deadline (not activity for the
    /// idle deadline: what is written answers traffic already counted, or refused).
    #[inline]
    pub(crate) fn wrote(&mut self, now: Instant) {
        self.write_progress = now;
    }

    /// Whether the handshake is done (a valid frame arrived, or there is no handshake deadline).
    #[cfg(test)]
    pub(crate) fn handshake_done(&self) -> bool {
        self.handshake.is_none()
    }

    /// The deadline that applies, and when it passes, given whether the connection is still
    /// `reading` and whether a write `backlog` exists; `None` when nothing is waited for (not
    /// reading, nothing to write, or no idle timeout and no handshake pending).
    #[inline(always)]
    pub(crate) fn next(&self, reading: bool, backlog: bool) -> Option<(Instant, Deadline)> {
        let first = if backlog {
            Some((self.write_progress + self.write_timeout, Deadline::Write))
        } else if let Some(started) = self.frame_started.filter(|_| reading) {
            Some((started + self.read_timeout, Deadline::Read))
        } else if reading {
            self.idle_timeout
                .map(|t| (self.last_activity + t, Deadline::Idle))
        } else {
            None
        };
        match self.handshake.filter(|_| reading) {
            Some(h) if first.is_none_or(|(until, _)| h <= until) => Some((h, Deadline::Handshake)),
            _ => first,
        }
    }

    /// The deadline that has passed at `now`, if the one that applies (see [`Deadlines::next`])
    /// has. A timer armed for an earlier deadline that has since moved later fires early; this
    /// tells such a spurious wake-up from a real expiry.
    pub(crate) fn expired(&self, now: Instant, reading: bool, backlog: bool) -> Option<Deadline> {
        self.next(reading, backlog)
            .filter(|(until, _)| now >= *until)
            .map(|(_, kind)| kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);
    const WRITE: Duration = Duration::from_secs(5);
    const HANDSHAKE: Duration = Duration::from_secs(8);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn config(
        idle: Option<Duration>,
        handshake: Option<Duration>,
        max_refused: Option<u32>,
    ) -> DriverConfig {
        DriverConfig {
            read_timeout: READ,
            idle_timeout: idle,
            write_timeout: WRITE,
            handshake_timeout: handshake,
            max_auth_failures: max_refused,
            write_high_water: 1 << 16,
            read_high_water: None,
        }
    }

    /// Deadlines opened at `t0`, with the idle timeout on, no handshake, no refusal limit (a
    /// client's).
    fn opened(t0: Instant) -> Deadlines {
        Deadlines::new(&config(Some(IDLE), None, None), t0)
    }

    /// Deadlines opened at `t0` as a server's: idle, handshake, at most 3 refused frames in a
    /// row.
    fn guarded(t0: Instant) -> Deadlines {
        Deadlines::new(&config(Some(IDLE), Some(HANDSHAKE), Some(3)), t0)
    }

    /// A valid frame read at `at` and dispatched at once.
    fn valid_frame(d: &mut Deadlines, at: Instant) -> bool {
        d.read(at);
        assert!(!d.frame(Verdict::Valid));
        d.dispatched(at, false)
    }

    #[test]
    fn a_fresh_connection_waits_on_idle_from_its_opening() {
        let t0 = Instant::now();
        let d = opened(t0);
        assert_eq!(d.next(true, false), Some((t0 + IDLE, Deadline::Idle)));
        assert_eq!(d.expired(t0 + IDLE - ms(1), true, false), None);
        assert_eq!(d.expired(t0 + IDLE, true, false), Some(Deadline::Idle));
    }

    #[test]
    fn a_partial_frame_expires_read_timeout_after_its_first_byte() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.read(t0 + secs(1));
        // More bytes of the same frame, trickled: the deadline stays with the first byte.
        d.read(t0 + secs(4));
        d.read(t0 + secs(9));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(1) + READ, Deadline::Read))
        );
        assert_eq!(d.expired(t0 + secs(1) + READ - ms(1), true, false), None);
        assert_eq!(
            d.expired(t0 + secs(1) + READ, true, false),
            Some(Deadline::Read)
        );
        assert_eq!(
            d.expired(t0 + secs(1) + READ, true, false)
                .map(Deadline::reason),
            Some(CloseReason::ReadTimeout)
        );
    }

    #[test]
    fn completing_a_valid_frame_clears_the_read_deadline_and_is_activity() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.read(t0 + secs(1));
        assert!(!d.frame(Verdict::Valid));
        assert!(d.dispatched(t0 + secs(2), false), "a valid frame: activity");
        // Back to idle, counted from the dispatch of the valid frame.
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(2) + IDLE, Deadline::Idle))
        );
        assert_eq!(d.expired(t0 + secs(1) + READ, true, false), None);
        // The next frame's deadline counts from its own first byte.
        d.read(t0 + secs(30));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(30) + READ, Deadline::Read))
        );
    }

    #[test]
    fn bytes_left_after_a_dispatch_start_a_frame_at_the_dispatch() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.read(t0 + secs(1));
        d.dispatched(t0 + secs(3), true);
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(3) + READ, Deadline::Read))
        );
        // A later read continues that frame: it does not restart the deadline.
        d.read(t0 + secs(4));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(3) + READ, Deadline::Read))
        );
    }

    #[test]
    fn valid_frames_and_sent_messages_are_activity_reads_and_writes_are_not() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        assert!(valid_frame(&mut d, t0 + secs(20)));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(20) + IDLE, Deadline::Idle))
        );
        d.sent(t0 + secs(50));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(50) + IDLE, Deadline::Idle))
        );
        assert_eq!(d.expired(t0 + secs(20) + IDLE, true, false), None);
        // Bytes read and bytes written (replies, refusals) do not move it.
        d.read(t0 + secs(55));
        assert!(!d.frame(Verdict::Refused));
        assert!(!d.dispatched(t0 + secs(55), false), "no valid frame");
        d.backlog_started(t0 + secs(56));
        d.wrote(t0 + secs(57));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(50) + IDLE, Deadline::Idle))
        );
        assert_eq!(
            d.expired(t0 + secs(50) + IDLE, true, false),
            Some(Deadline::Idle)
        );
    }

    #[test]
    fn refused_and_unverified_frames_do_not_postpone_the_idle_deadline() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        // A peer sending a refused frame every IDLE / 2: each one used to reset the idle timer.
        for i in 1..=4u32 {
            let at = t0 + IDLE / 2 * i;
            d.read(at);
            assert!(!d.frame(if i % 2 == 0 {
                Verdict::Refused
            } else {
                Verdict::Unverified
            }));
            assert!(!d.dispatched(at, false));
        }
        assert_eq!(d.next(true, false), Some((t0 + IDLE, Deadline::Idle)));
        assert_eq!(d.expired(t0 + IDLE, true, false), Some(Deadline::Idle));
    }

    #[test]
    fn no_idle_deadline_without_an_idle_timeout() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(&config(None, None, None), t0);
        assert_eq!(d.next(true, false), None);
        assert_eq!(d.expired(t0 + secs(86_400), true, false), None);
        // The other two still apply.
        d.read(t0 + secs(1));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(1) + READ, Deadline::Read))
        );
        d.backlog_started(t0 + secs(2));
        assert_eq!(
            d.next(true, true),
            Some((t0 + secs(2) + WRITE, Deadline::Write))
        );
    }

    #[test]
    fn the_write_deadline_counts_from_the_start_of_the_backlog() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.backlog_started(t0 + secs(7));
        assert_eq!(
            d.next(true, true),
            Some((t0 + secs(7) + WRITE, Deadline::Write))
        );
        assert_eq!(d.expired(t0 + secs(7) + WRITE - ms(1), true, true), None);
        assert_eq!(
            d.expired(t0 + secs(7) + WRITE, true, true)
                .map(Deadline::reason),
            Some(CloseReason::WriteTimeout)
        );
    }

    #[test]
    fn a_write_that_progresses_pushes_the_write_deadline_back() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.backlog_started(t0 + secs(1));
        d.wrote(t0 + secs(4));
        assert_eq!(
            d.next(true, true),
            Some((t0 + secs(4) + WRITE, Deadline::Write))
        );
        assert_eq!(d.expired(t0 + secs(1) + WRITE, true, true), None);
        assert_eq!(
            d.expired(t0 + secs(4) + WRITE, true, true),
            Some(Deadline::Write)
        );
    }

    #[test]
    fn reads_do_not_push_the_write_deadline_back() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.backlog_started(t0 + secs(1));
        valid_frame(&mut d, t0 + secs(3));
        assert_eq!(
            d.next(true, true),
            Some((t0 + secs(1) + WRITE, Deadline::Write))
        );
    }

    #[test]
    fn write_takes_precedence_over_read_over_idle() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        // A frame started and a backlog exists; the idle deadline would come first of all.
        d.read(t0 + secs(100));
        d.backlog_started(t0 + secs(200));
        let write = Some((t0 + secs(200) + WRITE, Deadline::Write));
        let read = Some((t0 + secs(100) + READ, Deadline::Read));
        assert_eq!(d.next(true, true), write);
        // Precedence, not the earliest: the read deadline has passed, the write one has not.
        assert_eq!(d.expired(t0 + secs(201), true, true), None);
        // Without the backlog, the started frame.
        assert_eq!(d.next(true, false), read);
        // Without the frame, idle (from the opening: the frame was never completed).
        d.dispatched(t0 + secs(101), false);
        assert_eq!(d.next(true, false), Some((t0 + IDLE, Deadline::Idle)));
    }

    #[test]
    fn only_the_write_deadline_applies_once_reading_stopped() {
        let t0 = Instant::now();
        let mut d = guarded(t0);
        d.read(t0 + secs(1));
        // A started frame no longer matters (the connection is closing), nor do idleness and
        // the handshake.
        assert_eq!(d.next(false, false), None);
        assert_eq!(d.expired(t0 + secs(1000), false, false), None);
        // But a backlog that does not drain still fails.
        d.backlog_started(t0 + secs(2));
        assert_eq!(
            d.next(false, true),
            Some((t0 + secs(2) + WRITE, Deadline::Write))
        );
    }

    #[test]
    fn without_a_valid_frame_the_handshake_deadline_closes_from_the_opening() {
        let t0 = Instant::now();
        let mut d = guarded(t0);
        assert!(!d.handshake_done());
        assert_eq!(
            d.next(true, false),
            Some((t0 + HANDSHAKE, Deadline::Handshake))
        );
        // Refused frames, unverified ones and partial frames do not complete it.
        d.read(t0 + secs(1));
        assert!(!d.frame(Verdict::Refused));
        assert!(!d.frame(Verdict::Unverified));
        assert!(!d.dispatched(t0 + secs(1), true));
        assert!(!d.handshake_done());
        // A started frame's read deadline comes later than the handshake's: the handshake's.
        assert_eq!(
            d.next(true, false),
            Some((t0 + HANDSHAKE, Deadline::Handshake))
        );
        assert_eq!(d.expired(t0 + HANDSHAKE - ms(1), true, false), None);
        assert_eq!(
            d.expired(t0 + HANDSHAKE, true, false).map(Deadline::reason),
            Some(CloseReason::HandshakeTimeout)
        );
        // Also while a backlog of refusals waits for a peer that does not read: the earlier.
        d.backlog_started(t0 + secs(6));
        assert_eq!(
            d.next(true, true),
            Some((t0 + HANDSHAKE, Deadline::Handshake))
        );
    }

    #[test]
    fn an_earlier_deadline_applies_before_the_handshake() {
        let t0 = Instant::now();
        let mut d = guarded(t0);
        d.backlog_started(t0 + secs(1));
        // The write deadline (6 s) comes before the handshake's (8 s).
        assert_eq!(
            d.next(true, true),
            Some((t0 + secs(1) + WRITE, Deadline::Write))
        );
        // With a short idle timeout, idle comes first as well.
        let d = Deadlines::new(&config(Some(secs(2)), Some(HANDSHAKE), None), t0);
        assert_eq!(d.next(true, false), Some((t0 + secs(2), Deadline::Idle)));
    }

    #[test]
    fn the_first_valid_frame_ends_the_handshake_for_good() {
        let t0 = Instant::now();
        let mut d = guarded(t0);
        assert!(valid_frame(&mut d, t0 + secs(7)));
        assert!(d.handshake_done());
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(7) + IDLE, Deadline::Idle))
        );
        // Refused frames afterwards do not bring it back.
        d.read(t0 + secs(9));
        assert!(!d.frame(Verdict::Refused));
        d.dispatched(t0 + secs(9), false);
        assert!(d.handshake_done());
        assert_eq!(d.expired(t0 + secs(7) + IDLE - ms(1), true, false), None);
    }

    #[test]
    fn the_handshake_counts_the_batch_of_its_valid_frame_not_later_ones() {
        let t0 = Instant::now();
        let mut d = guarded(t0);
        // A refused frame, then a valid one, in one batch.
        d.read(t0 + secs(2));
        assert!(!d.frame(Verdict::Refused));
        assert!(!d.frame(Verdict::Valid));
        assert!(d.dispatched(t0 + secs(2), false));
        // A later batch of refused frames only: not activity.
        d.read(t0 + secs(5));
        assert!(!d.frame(Verdict::Refused));
        assert!(!d.dispatched(t0 + secs(5), false));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(2) + IDLE, Deadline::Idle))
        );
    }

    #[test]
    fn refused_frames_in_a_row_close_at_the_limit_and_a_valid_frame_resets_the_count() {
        let t0 = Instant::now();
        let mut d = guarded(t0);
        assert!(!d.frame(Verdict::Refused));
        assert!(!d.frame(Verdict::Refused));
        // A valid frame: the count starts again.
        assert!(!d.frame(Verdict::Valid));
        assert!(!d.frame(Verdict::Refused));
        assert!(!d.frame(Verdict::Refused));
        // Unverified frames neither count nor reset.
        assert!(!d.frame(Verdict::Unverified));
        assert!(d.frame(Verdict::Refused), "the third in a row closes");
    }

    #[test]
    fn no_limit_on_refused_frames_without_one() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        for _ in 0..10_000 {
            assert!(!d.frame(Verdict::Refused));
        }
    }
}
