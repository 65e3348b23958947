//! [`ObjectiveListener`]: an objective's TCP port, where negotiation and synchronization
//! requests arrive, and its queue of negotiation requests.
//!
//! The queue is why `listen_negotiate` never drops a request: from the first call until
//! `stop_negotiate`, every request is accepted and queued while the ASA is busy with another
//! (the prototype stops listening between calls, and its peers see "peer not listening"). A full
//! queue holds further requests in their connections, in order, until there is room.

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Mutex as AsyncMutex, Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::node::{Inner, lock};
use crate::net::stream::{MessageStream, ReadError};
use crate::proto::{DEFAULT_TIMEOUT, Origin, RequestDecision};
use crate::wire::Objective;

/// A negotiation request waiting for `listen_negotiate`.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) stream: MessageStream,
    pub(crate) session_id: u32,
    pub(crate) objective: Objective,
    pub(crate) peer: IpAddr,
}

/// One objective's port and request queue.
#[derive(Debug)]
pub(crate) struct ObjectiveListener {
    pub(crate) port: u16,
    pub(crate) queue: AsyncMutex<mpsc::Receiver<Incoming>>,
    pub(crate) stopped: Notify,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl ObjectiveListener {
    /// Serve `listener` for `name`, queueing up to `queue` negotiation requests.
    pub(crate) fn start(weak: Weak<Inner>, listener: TcpListener, queue: usize) -> Arc<Self> {
        let port = listener.local_addr().map_or(0, |a| a.port());
        let (tx, rx) = mpsc::channel(queue);
        let task = tokio::spawn(accept_loop(weak, listener, tx));
        Arc::new(ObjectiveListener {
            port,
            queue: AsyncMutex::new(rx),
            stopped: Notify::new(),
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// Stop accepting; the waiting `listen_negotiate` calls return.
    pub(crate) fn stop(&self) {
        if let Some(t) = lock(&self.task).take() {
            t.abort();
        }
        self.stopped.notify_waiters();
    }

    /// Close the requests queued (after `stop_negotiate`): their peers see the end.
    pub(crate) fn drain(&self, inner: &Inner) {
        if let Ok(mut q) = self.queue.try_lock() {
            while let Ok(i) = q.try_recv() {
                inner
                    .core()
                    .end_session(i.session_id, Origin::Remote(i.peer));
            }
        }
    }
}

impl Drop for ObjectiveListener {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(weak: Weak<Inner>, listener: TcpListener, tx: mpsc::Sender<Incoming>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "request accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let Ok(permit) = inner.connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "request refused: too many connections");
            continue;
        };
        let max = inner.max_message;
        drop(inner);
        let weak = weak.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut s = MessageStream::new(stream, max);
            let msg = match s.read(Instant::now() + Duration::from_secs(10)).await {
                Ok(m) => m,
                Err(ReadError::Decode(e)) => {
                    tracing::debug!(%peer, error = %e, "bad request");
                    let answer = weak.upgrade().and_then(|i| i.core().invalid_answer(&e));
                    if let Some(bytes) = answer {
                        let _ = s.write(&bytes).await;
                    }
                    s.close().await;
                    return;
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "request not read");
                    return;
                }
            };
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let decision = inner.core().on_request(peer.ip(), msg);
            drop(inner);
            match decision {
                RequestDecision::Negotiate {
                    session_id,
                    objective,
                } => {
                    // The connection now belongs to the session, not to the accept budget.
                    drop(permit);
                    let incoming = Incoming {
                        stream: s,
                        session_id,
                        objective,
                        peer: peer.ip(),
                    };
                    if tx.send(incoming).await.is_err()
                        && let Some(inner) = weak.upgrade()
                    {
                        inner
                            .core()
                            .end_session(session_id, Origin::Remote(peer.ip()));
                    }
                }
                RequestDecision::Reply(bytes) => {
                    if let Err(e) = s.write(&bytes).await {
                        tracing::debug!(%peer, error = %e, "synchronization answer not sent");
                    }
                    s.close().await;
                }
                RequestDecision::Close => s.close().await,
                RequestDecision::Discard => {
                    // Silence until the peer gives up (its timeout) or ours runs out.
                    let _ = s.read(Instant::now() + DEFAULT_TIMEOUT).await;
                    drop(permit);
                }
            }
        });
    }
}
