//! What the native API does on its own, beside the requests it answers: neighbour events pushed
//! to the watching applications, and the clean-up when an application's connection ends.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use netaio::tcp::{ConnectionEvent, ConnectionId};
use netaio::{Message, MessageType};
use netaio_gossip::net::GossipEvent;

use super::{PEER_DOWN, PEER_EVENT_URI, PEER_UP, State};
use crate::daemon::ApiEvent;

/// Numbers the node's neighbour events and pushes them to the watching connections; a
/// connection whose queue is full misses the event (a gap in its ids), one that closed stops
/// watching.
pub(super) async fn push_events(
    s: Arc<State>,
    mut events: tokio::sync::broadcast::Receiver<GossipEvent>,
) {
    use std::sync::atomic::Ordering;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let (kind, peer) = match events.recv().await {
            Ok(GossipEvent::NeighborUp(p)) => (PEER_UP, p),
            Ok(GossipEvent::NeighborDown(p)) => (PEER_DOWN, p),
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                // Lost: their ids are skipped, so watchers see the gap.
                s.next_event.fetch_add(n, Ordering::SeqCst);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let id = s.next_event.fetch_add(1, Ordering::SeqCst);
        let Some(local) = s.local.get() else { continue };
        let mut content = BytesMut::new();
        content.put_u64(id);
        content.put_u8(kind);
        content.put_slice(peer.to_string().as_bytes());
        let message = Message::new(MessageType::NOTIFY_URI, PEER_EVENT_URI, content.freeze());
        let watchers: Vec<ConnectionId> = s
            .watchers
            .lock()
            .map(|w| w.iter().copied().collect())
            .unwrap_or_default();
        for conn in watchers {
            match local.try_send(conn, &message) {
                Ok(()) => {}
                Err(netaio::SendError::QueueFull) => {
                    tracing::debug!(?conn, id, "watcher's queue full: event missed");
                }
                Err(_) => {
                    if let Ok(mut w) = s.watchers.lock() {
                        w.remove(&conn);
                    }
                }
            }
        }
    }
}

/// A native connection ended: its gossip subscriptions (and its open validations) end, its
/// routes and watch are forgotten.
pub(super) async fn forget_closed(
    s: Arc<State>,
    mut events: tokio::sync::broadcast::Receiver<ConnectionEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let id = match events.recv().await {
            Ok(ConnectionEvent::Disconnected { id, .. }) => id,
            Ok(_) | Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        if let Ok(mut g) = s.greeted.lock() {
            g.remove(&id);
        }
        if let Ok(mut w) = s.watchers.lock() {
            w.remove(&id);
        }
        if let Ok(mut r) = s.routes.lock() {
            r.retain(|_, c| *c != id);
        }
        let conn = s.conn_ids.lock().ok().and_then(|mut m| m.remove(&id));
        if let Some(conn) = conn {
            let _ = s.gossip.send(ApiEvent::Closed(conn)).await;
        }
    }
}
