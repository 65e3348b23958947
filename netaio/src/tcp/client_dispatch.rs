//! What a client does with each frame from its server: decode, open, answer its own waiting
//! requests, route the rest to its router or its inbox, seal and write handler replies.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::Connection;
use super::driver::Dispatch;
use crate::codec::{Frame, FrameCodec, FrameError};
use crate::error::{RequestError, SendError};
use crate::node::requests::{self, Correlated};
use crate::plugin::{SendOptions, open_inner, open_outer};
use crate::router::{Context, Request, Routed, Routes};
use crate::{Message, MessageType};

pub(super) struct ClientDispatch {
    pub(super) ctx: Context,
    pub(super) conn: Connection,
    pub(super) routes: Arc<Routes>,
    pub(super) codec: FrameCodec,
    pub(super) inbox: mpsc::Sender<Message>,
}

impl Dispatch for ClientDispatch {
    async fn on_frame(&mut self, frame: Frame, out: &mut BytesMut) {
        let auth = frame.auth.clone();
        let msg = match frame.decode(self.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => {
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
                return;
            }
        };
        let peer = self.ctx.peer_addr();
        let plugins = &self.conn.inner.client.plugins;
        // Kept only when a check can fail, for answering a request with an unauthenticated error.
        let received =
            (!plugins.outer.is_empty() && msg.message_type.is_error()).then(|| msg.clone());
        let peer_info = self.conn.inner.peer_info.get();
        let pctx = plugins.ctx(peer_info.as_deref(), Some(peer));
        let requests = &self.conn.inner.requests;
        let msg = match open_outer(msg, &plugins.outer, &pctx) {
            Ok(m) => m,
            Err(e) => {
                // An error reply sent without plugins answers its request: by reference, or in
                // Python-compatible mode (no references) the oldest waiting request.
                if let Some(received) = received
                    && let Some(p) = requests.correlate_unauthenticated((), &received)
                {
                    tracing::debug!(error = %e, "unauthenticated error reply completed its request");
                    p.answer(RequestError::from_reply(received));
                    return;
                }
                tracing::warn!(error = %e, "message from server refused");
                return;
            }
        };
        match requests.correlate((), &msg) {
            Correlated::NotAReply => {}
            Correlated::Answers(p) => {
                return requests::complete(p, msg, plugins, peer_info.as_deref(), peer);
            }
            Correlated::Stale => return,
        }
        // A route, else the router's fallback when the application set one, else the inbox.
        let Routed {
            handler,
            inner,
            opened,
        } = self
            .routes
            .route(msg, peer, |msg, inner| open_inner(msg, inner, &pctx));
        let msg = match opened {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "message from server refused by the handler's plugins");
                return;
            }
        };
        if let Some(handler) = handler {
            let rid = msg.request_id();
            let req = Request {
                message: msg,
                ctx: self.ctx.clone(),
            };
            if let Some(mut reply) = handler.call(req).await {
                if let Some(id) = rid {
                    reply.set_reply_ref(id);
                }
                let opts = SendOptions::new().inner(inner);
                let sealed = plugins
                    .seal(reply, &opts, peer_info.as_deref(), Some(peer))
                    .await;
                match sealed
                    .map_err(SendError::from)
                    .and_then(|m| self.codec.encode_message(&m, out).map_err(SendError::from))
                {
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "handler reply cannot be sent; dropped"),
                }
            }
            return;
        }
        match self.inbox.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(m)) => {
                tracing::warn!(r#type = %m.message_type, "inbox full: message dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn on_fatal(&mut self, _err: &FrameError, _out: &mut BytesMut) {}
}
