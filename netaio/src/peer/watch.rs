//! [`PeerWatch`]: the peers known when it was taken, then the table's later events.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::{Peer, PeerEvent};

/// The peers of a [`PeerTable`](super::PeerTable) and every later change, from
/// [`PeerTable::watch`](super::PeerTable::watch) (or a node's `watch_peers()`).
///
/// ```
/// use netaio::peer::{Peer, PeerEvent, PeerTable};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let table = PeerTable::new();
/// table.observe(Peer::new("early"), "10.0.0.1:8888".parse().unwrap()).unwrap();
/// let mut watch = table.watch(); // taken late: the early peer is still seen
/// table.observe(Peer::new("late"), "10.0.0.2:8888".parse().unwrap()).unwrap();
/// for id in ["early", "late"] {
///     match watch.recv().await.unwrap() {
///         PeerEvent::Discovered(p) => assert_eq!(p.id.as_ref(), id.as_bytes()),
///         other => panic!("{other:?}"),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct PeerWatch {
    snapshot: VecDeque<Arc<Peer>>,
    events: broadcast::Receiver<PeerEvent>,
}

impl PeerWatch {
    pub(super) fn new(peers: Vec<Arc<Peer>>, events: broadcast::Receiver<PeerEvent>) -> Self {
        Self {
            snapshot: peers.into(),
            events,
        }
    }

    /// The next event: [`PeerEvent::Discovered`] for each peer known when the watch was taken,
    /// then the table's events as they happen. [`RecvError::Lagged`] when more than
    /// [`PeerTable::EVENT_BUFFER`](super::PeerTable::EVENT_BUFFER) events were not taken in
    /// time (the oldest are lost; [`PeerTable::peers`](super::PeerTable::peers) has the current
    /// state), [`RecvError::Closed`] when the table is gone.
    pub async fn recv(&mut self) -> Result<PeerEvent, RecvError> {
        match self.snapshot.pop_front() {
            Some(p) => Ok(PeerEvent::Discovered(p)),
            None => self.events.recv().await,
        }
    }

    /// [`recv`](Self::recv) without waiting.
    pub fn try_recv(&mut self) -> Result<PeerEvent, TryRecvError> {
        match self.snapshot.pop_front() {
            Some(p) => Ok(PeerEvent::Discovered(p)),
            None => self.events.try_recv(),
        }
    }
}
