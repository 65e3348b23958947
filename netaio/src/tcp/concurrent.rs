//! A server connection's handlers running side by side
//! ([`TcpServerBuilder::concurrent_requests`](super::TcpServerBuilder::concurrent_requests)).
//!
//! By default a connection's frames are handled in order, one at a time: a handler that takes
//! 10 ms holds up every request behind it on that connection. A caller that hedges (asks a
//! second server when the first is slow) then cancels its call, but the server still runs it,
//! and the caller's next requests on that connection wait behind it and are hedged too. With
//! concurrency on, a request that carries a request id (so that its reply, carrying the same id
//! as its reference, can overtake others) runs in a task of its own, and its reply goes out
//! through the connection's send queue as soon as it is ready. Requests without an id (Python
//! netaio 0.0.9 peers, which match replies by uri) are still handled in order.
//!
//! Bounded: at most `limit` handlers of one connection run in tasks; beyond, the next one runs
//! in line (the connection reads no more until it finishes), as without concurrency. The tasks
//! end with their connection (a reply then has nowhere to go).

use std::net::IpAddr;

use bytes::Bytes;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{ConnectionId, ServerHandle};
use crate::node::requests::Running;
use crate::plugin::{Plugins, SendOptions};
use crate::router::{BoxedHandler, Request};

/// The handlers of one connection running in tasks.
pub(super) struct Concurrent {
    limit: usize,
    tasks: JoinSet<()>,
}

/// One request to run in a task.
pub(super) struct Job {
    pub(super) handler: BoxedHandler,
    pub(super) request: Request,
    /// The route's inner plugins (the reply is sealed with them).
    pub(super) inner: Plugins,
    /// The request id as sent (the reply's reference).
    pub(super) request_id: Bytes,
    /// Its at-most-once key, when it asked for at-most-once execution: (client, id).
    pub(super) once: Option<(IpAddr, u64)>,
    pub(super) span: tracing::Span,
}

impl Concurrent {
    /// Up to `limit` handlers at once in tasks (a limit of 0 or 1 is no concurrency: `None`).
    pub(super) fn new(limit: usize) -> Option<Self> {
        (limit > 1).then(|| Self {
            limit,
            tasks: JoinSet::new(),
        })
    }

    /// Whether another handler may start in a task now (finished tasks are reaped first).
    pub(super) fn has_room(&mut self) -> bool {
        while self.tasks.try_join_next().is_some() {}
        self.tasks.len() < self.limit
    }

    /// Run `job` in a task; its reply is queued for connection `conn` of `server`.
    pub(super) fn spawn(&mut self, server: ServerHandle, conn: ConnectionId, job: Job) {
        let Job {
            handler,
            request,
            inner,
            request_id,
            once,
            span,
        } = job;
        self.tasks.spawn(async move {
            let running = once.map(|(client, id)| Running::new(&server.shared.dedup, client, id));
            let reply = handler.call(request).instrument(span).await;
            if let Some(running) = running {
                running.finish(reply.as_ref());
            }
            let Some(mut reply) = reply else {
                return;
            };
            reply
                .auth
                .insert_static(crate::message::fields::REPLY_REF, request_id);
            let opts = SendOptions::new().inner(inner);
            if let Err(e) = server.send_with(conn, &reply, &opts).await {
                tracing::debug!(error = %e, "reply of a concurrent handler not sent");
            }
        });
    }
}
