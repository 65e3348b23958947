//! The three deadlines of a TCP connection, kept apart from the I/O so they can be tested with
//! made-up instants.
//!
//! - **Read**: a frame whose first bytes arrived must complete within the read timeout, so a peer
//!   cannot hold a connection open by trickling a frame (slowloris).
//! - **Idle**: a connection with no traffic either way closes after the idle timeout (optional).
//! - **Write**: while replies are waiting to be written, the peer must take some of them within
//!   the write timeout of the last progress, so a peer that stops reading cannot pin the buffer.
//!
//! The driver reports each event with the instant it already read from the clock (the struct
//! never reads it itself, so the hot path keeps one clock read per batch of frames and one per
//! read), and asks [`Deadlines::next`] which deadline to arm its timer for.

use std::time::Duration;

use tokio::time::Instant;

use super::driver::CloseReason;

/// Which deadline the connection is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// A started frame must complete.
    Read,
    /// Some traffic must happen.
    Idle,
    /// The write backlog must make progress.
    Write,
}

impl Deadline {
    /// Why the connection closes when this deadline passes.
    pub(crate) fn reason(self) -> CloseReason {
        match self {
            Deadline::Read => CloseReason::ReadTimeout,
            Deadline::Idle => CloseReason::IdleTimeout,
            Deadline::Write => CloseReason::WriteTimeout,
        }
    }
}

/// The timestamps the three deadlines count from, and the timeouts.
///
/// Only one deadline applies at a time, in this order of precedence: the write deadline while a
/// backlog exists (a connection that cannot write cannot usefully read either: reading pauses
/// at the high-water mark), else the read deadline while reading with a frame started, else the
/// idle deadline while reading.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines {
    read_timeout: Duration,
    idle_timeout: Option<Duration>,
    write_timeout: Duration,
    /// The last read or write: what the idle deadline counts from.
    last_activity: Instant,
    /// When the first bytes of the frame now partially buffered arrived, if any.
    frame_started: Option<Instant>,
    /// When the write backlog began or last shrank: what the write deadline counts from.
    write_progress: Instant,
}

impl Deadlines {
    /// The deadlines of a connection that opened at `now`: opening counts as activity.
    pub(crate) fn new(
        read_timeout: Duration,
        idle_timeout: Option<Duration>,
        write_timeout: Duration,
        now: Instant,
    ) -> Self {
        Self {
            read_timeout,
            idle_timeout,
            write_timeout,
            last_activity: now,
            frame_started: None,
            write_progress: now,
        }
    }

    /// Bytes were read at `now`. They may start a frame: the read deadline counts from the first
    /// bytes of a frame, so an already started frame keeps its start (a peer trickling a byte at
    /// a time does not push the deadline back). Whether the bytes completed it is known only
    /// after decoding, reported by [`Deadlines::dispatched`].
    #[inline]
    pub(crate) fn read(&mut self, now: Instant) {
        self.last_activity = now;
        self.frame_started.get_or_insert(now);
    }

    /// Frames were decoded and dispatched at `now`; `partial` says whether bytes are left in the
    /// read buffer (the start of another frame, which then counts from `now`).
    #[inline]
    pub(crate) fn dispatched(&mut self, now: Instant, partial: bool) {
        self.frame_started = partial.then_some(now);
    }

    /// The write backlog went from empty to not empty at `now`: the write deadline starts.
    #[inline]
    pub(crate) fn backlog_started(&mut self, now: Instant) {
        self.write_progress = now;
    }

    /// Some bytes were written at `now`: progress for the write deadline, activity for the idle
    /// deadline.
    #[inline]
    pub(crate) fn wrote(&mut self, now: Instant) {
        self.write_progress = now;
        self.last_activity = now;
    }

    /// The deadline that applies, and when it passes, given whether the connection is still
    /// `reading` and whether a write `backlog` exists; `None` when nothing is waited for (not
    /// reading, nothing to write, or no idle timeout).
    #[inline]
    pub(crate) fn next(&self, reading: bool, backlog: bool) -> Option<(Instant, Deadline)> {
        if backlog {
            Some((self.write_progress + self.write_timeout, Deadline::Write))
        } else if let Some(started) = self.frame_started.filter(|_| reading) {
            Some((started + self.read_timeout, Deadline::Read))
        } else if reading {
            self.idle_timeout
                .map(|t| (self.last_activity + t, Deadline::Idle))
        } else {
            None
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Deadlines opened at `t0`, with the idle timeout on.
    fn opened(t0: Instant) -> Deadlines {
        Deadlines::new(READ, Some(IDLE), WRITE, t0)
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
    fn completing_the_frame_clears_the_read_deadline() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.read(t0 + secs(1));
        d.dispatched(t0 + secs(2), false);
        // Back to idle, counted from the read (dispatching is not traffic).
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(1) + IDLE, Deadline::Idle))
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
    fn reads_and_writes_count_as_activity_for_idle() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.read(t0 + secs(20));
        d.dispatched(t0 + secs(20), false);
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(20) + IDLE, Deadline::Idle))
        );
        d.wrote(t0 + secs(50));
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(50) + IDLE, Deadline::Idle))
        );
        assert_eq!(d.expired(t0 + secs(20) + IDLE, true, false), None);
        assert_eq!(
            d.expired(t0 + secs(50) + IDLE, true, false),
            Some(Deadline::Idle)
        );
    }

    #[test]
    fn no_idle_deadline_without_an_idle_timeout() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(READ, None, WRITE, t0);
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
        d.read(t0 + secs(3));
        d.dispatched(t0 + secs(3), false);
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
        // Without the frame, idle.
        d.dispatched(t0 + secs(101), false);
        assert_eq!(
            d.next(true, false),
            Some((t0 + secs(100) + IDLE, Deadline::Idle))
        );
    }

    #[test]
    fn only_the_write_deadline_applies_once_reading_stopped() {
        let t0 = Instant::now();
        let mut d = opened(t0);
        d.read(t0 + secs(1));
        // A started frame no longer matters (the connection is closing), nor does idleness.
        assert_eq!(d.next(false, false), None);
        assert_eq!(d.expired(t0 + secs(1000), false, false), None);
        // But a backlog that does not drain still fails.
        d.backlog_started(t0 + secs(2));
        assert_eq!(
            d.next(false, true),
            Some((t0 + secs(2) + WRITE, Deadline::Write))
        );
    }
}
