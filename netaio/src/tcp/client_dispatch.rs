//! What a client does with each frame from its server: decode, open, answer its own waiting
//! requests, route the rest to its router or its inbox, seal and write handler replies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::Connection;
use super::connection::inbox_size;
use super::driver::{CloseReason, Dispatch, Verdict};
use crate::codec::{Frame, FrameCodec, FrameError};
use crate::error::{RequestError, SendError};
use crate::node::inbound::{Inbound, Pipeline};
use crate::node::refusals::{self, Refused};
use crate::plugin::SendOptions;
use crate::router::{Context, Request, Routes};
use crate::{Message, MessageType};

pub(super) struct ClientDispatch {
    pub(super) ctx: Context,
    pub(super) conn: Connection,
    pub(super) routes: Arc<Routes>,
    pub(super) codec: FrameCodec,
    pub(super) inbox: mpsc::Sender<Message>,
    /// A frame from the server decoded once (header, checksum): it speaks netaio.
    pub(super) heard: bool,
    /// Why the first bytes from a server never heard were not netaio.
    pub(super) garbled: Option<String>,
}

impl ClientDispatch {
    /// Why the server is taken for something other than netaio, when the connection ended
    /// with `reason`: nothing it sent ever decoded, and it sent something.
    pub(super) fn not_netaio(&self, reason: &CloseReason) -> Option<String> {
        if self.heard {
            return None;
        }
        match (&self.garbled, reason) {
            (Some(why), _) => Some(why.clone()),
            (None, CloseReason::BadFrame(why)) => Some(why.clone()),
            (None, CloseReason::Truncated) => {
                Some("its first bytes are not a complete frame".into())
            }
            _ => None,
        }
    }
}

impl Dispatch for ClientDispatch {
    async fn on_frame(&mut self, frame: Frame, out: &mut BytesMut) -> Verdict {
        let auth = frame.auth.clone();
        let checksum = frame.header.checksum;
        let msg = match frame.decode(self.codec.auth_codec()) {
            Ok(m) => {
                if !self.heard {
                    self.heard = true;
                    self.conn.inner.heard.store(true, Ordering::Release);
                }
                m
            }
            Err(e) => {
                if !self.heard && self.garbled.is_none() {
                    self.garbled = Some(e.to_string());
                }
                tracing::warn!(error = %e, "invalid frame from server dropped");
                // If the reply reference can still be read, fail that request now rather than at
                // its timeout.
                if let Some(id) = self
                    .codec
                    .auth_codec()
                    .decode(&auth)
                    .ok()
                    .and_then(|f| crate::message::reply_ref_in(&f))
                {
                    let mut invalid =
                        Message::new(MessageType::ERROR, "ERROR", format!("invalid reply: {e}"));
                    invalid.set_reply_ref(id);
                    if let Some(p) = self
                        .conn
                        .inner
                        .requests
                        .correlate_unauthenticated((), &invalid)
                    {
                        p.answer(RequestError::from_reply(invalid));
                    }
                }
                return Verdict::Refused;
            }
        };
        if msg.message_type == crate::node::relay::DELIVER {
            return super::relay_client::delivered(self, msg, checksum, out).await;
        }
        let peer = self.ctx.peer_addr();
        let plugins = &self.conn.inner.client.plugins;
        let peer_info = self.conn.inner.peer_info.get();
        let pipeline = Pipeline {
            plugins,
            routes: &self.routes,
            requests: &self.conn.inner.requests,
            answers_refusals: false,
            accepts_unauthenticated_errors: true,
        };
        // A route, else the router's fallback when the application set one, else the inbox.
        let (handler, inner, msg) = match pipeline.receive(msg, (), peer, || peer_info.clone()) {
            Inbound::Routed {
                handler,
                inner,
                msg,
            } => (handler, inner, msg),
            Inbound::Answered | Inbound::Stale => return Verdict::Valid,
            Inbound::AnsweredUnverified => return Verdict::Unverified,
            Inbound::Refused(r) => {
                let refused = Refused {
                    addr: peer,
                    error: &r.error,
                    plugin: r.plugin,
                    what: "messages",
                };
                let table = &self.conn.inner.client.refusals;
                refusals::report(table, &refused, tokio::time::Instant::now());
                return Verdict::Refused;
            }
        };
        // A notification of a uri subscribed with `Connection::subscribe` goes to its stream,
        // before any route: the application asked for it there.
        let Some(msg) = self.conn.inner.subscriptions.deliver(msg, &self.conn) else {
            return Verdict::Valid;
        };
        if let Some(handler) = handler {
            let rid = msg.request_id();
            // At most once: a request the server may re-send runs its handler only the first
            // time (see the server's dispatch).
            let req = Request {
                message: msg,
                ctx: self.ctx.clone(),
            };
            let Some(reply) = self.conn.inner.dedup.call_once((), &handler, req).await else {
                // A copy of a request that passed the instance plugins: a valid frame.
                return Verdict::Valid;
            };
            if let Some(mut reply) = reply {
                if let Some(id) = rid {
                    reply.set_reply_ref(id);
                }
                let heavy = plugins.outer.is_blocking() || inner.is_blocking();
                let opts = SendOptions::new().inner(inner);
                let sealed = if heavy {
                    // On the blocking pool; boxed, so that its state does not size the future of
                    // every frame (the driver moves it into place per frame, replies included).
                    Box::pin(plugins.seal(reply, &opts, peer_info.as_deref(), Some(peer))).await
                } else {
                    plugins.seal_now(reply, &opts, peer_info.as_deref(), Some(peer))
                };
                match sealed
                    .map_err(SendError::from)
                    .and_then(|m| self.codec.encode_message(&m, out).map_err(SendError::from))
                {
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "handler reply cannot be sent; dropped"),
                }
            }
            return Verdict::Valid;
        }
        self.to_inbox(msg);
        Verdict::Valid
    }

    fn on_fatal(&mut self, _err: &FrameError, _out: &mut BytesMut) {}
}

impl ClientDispatch {
    /// Put a message no handler takes in the inbox, or drop it when the inbox is full (in
    /// messages or bytes).
    pub(super) fn to_inbox(&self, msg: Message) {
        let size = inbox_size(&msg);
        let budget = &self.conn.inner.inbox_bytes;
        if !budget.try_take(size, true) {
            tracing::warn!(r#type = %msg.message_type, bytes = size, "inbox full (bytes): message dropped");
            return;
        }
        match self.inbox.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(m)) => {
                budget.give(size);
                tracing::warn!(r#type = %m.message_type, "inbox full: message dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => budget.give(size),
        }
    }
}
