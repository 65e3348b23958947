//! Sub-millisecond deadlines for the nodes' request timers: one thread for the whole process
//! that sleeps until the earliest deadline registered, spins through the last few microseconds,
//! and wakes the timer task that registered it.
//!
//! tokio's timers fire on millisecond ticks, so a soft timeout of 200 µs would pass after 1 to
//! 2 ms. The first way round it was for the node's timer task to yield (`yield_now`) until the
//! deadline by the real clock. Measured (`hedge`, BENCHMARKS.md), that made the calls it timed
//! slower: a call to a server with a 200 µs soft timeout took a median 280 µs instead of 95
//! (loaded machine), and more than half of them passed their soft timeout, because the yielding
//! task kept one of the runtime's workers (and, on a busy machine, a CPU) to itself for the
//! whole wait, while the round trip it waited for needed both. This thread costs no worker: it
//! sleeps in the kernel until shortly before the deadline and spins only for the last
//! [`SPIN`] (the kernel wakes a sleeping thread up to ~50 µs late: Linux's default timer slack).
//!
//! Bounded: at most [`MAX_PENDING`] deadlines wait at once (a node's timer registers at most
//! one at a time); beyond, and if the thread cannot be started, the caller falls back to
//! tokio's timer.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long before a deadline the thread stops sleeping and spins.
const SPIN: Duration = Duration::from_micros(50);

/// Deadlines waiting at most.
const MAX_PENDING: usize = 4096;

#[derive(Default)]
struct State {
    /// (deadline, registration number) → whom to wake.
    due: BTreeMap<(Instant, u64), Arc<Notify>>,
    next: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The thread, started on first use (`None`: it could not be started).
static TIMER: OnceLock<Option<Arc<Shared>>> = OnceLock::new();

fn timer() -> Option<&'static Arc<Shared>> {
    TIMER
        .get_or_init(|| {
            let shared = Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            });
            let s = shared.clone();
            match std::thread::Builder::new()
                .name("netaio-fine-timer".into())
                .spawn(move || run(&s))
            {
                Ok(_) => Some(shared),
                Err(e) => {
                    tracing::warn!(error = %e, "fine request timer not started; tokio's timer (1 ms ticks) instead");
                    None
                }
            }
        })
        .as_ref()
}

/// A deadline registered with the thread; dropping it takes it out (if it has not passed).
pub(super) struct Registration {
    shared: &'static Arc<Shared>,
    key: (Instant, u64),
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock().due.remove(&self.key);
    }
}

/// Wake `notify` (`notify_one`) at `at`, to within a few microseconds. `None` when the thread
/// is not available or full: use another timer.
pub(super) fn register(at: Instant, notify: &Arc<Notify>) -> Option<Registration> {
    let shared = timer()?;
    let mut st = shared.lock();
    if st.due.len() >= MAX_PENDING {
        return None;
    }
    st.next += 1;
    let key = (at, st.next);
    let first = st.due.first_key_value().is_none_or(|(k, _)| key < *k);
    st.due.insert(key, notify.clone());
    drop(st);
    if first {
        shared.changed.notify_one();
    }
    Some(Registration { shared, key })
}

fn run(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        let now = Instant::now();
        while let Some(entry) = st.due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().notify_one();
        }
        let Some(&(at, _)) = st.due.first_key_value().map(|(k, _)| k) else {
            st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let left = at.saturating_duration_since(now);
        if left > SPIN {
            st = shared
                .changed
                .wait_timeout(st, left - SPIN)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        } else {
            // The last microseconds: let registrations and removals in between looks.
            drop(st);
            std::hint::spin_loop();
            st = shared.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_deadline_wakes_its_notify_after_it_and_a_dropped_one_never() {
        let notify = Arc::new(Notify::new());
        // Dropped before it passes: never fires.
        let gone = register(Instant::now() + Duration::from_micros(300), &notify).unwrap();
        drop(gone);
        let t0 = Instant::now();
        let at = t0 + Duration::from_micros(200);
        let reg = register(at, &notify).unwrap();
        // Bounded wait (a real clock: this is a real thread's timing).
        tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .expect("woken");
        assert!(Instant::now() >= at, "not before the deadline");
        drop(reg);
        // The dropped one (due 100 µs after the first) left no permit behind.
        let again = tokio::time::timeout(Duration::from_millis(5), notify.notified()).await;
        assert!(again.is_err(), "a removed deadline fired");
    }
}
