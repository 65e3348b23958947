//! What a server does with each frame of a connection: decode, open, correlate replies to its
//! own requests, route, run the handler, seal and write the reply; refusals answered as the
//! auth-error hook says. Each frame's verdict (valid: it passed the instance plugins) goes back
//! to the driver, and the first valid one marks the connection authenticated in the registry.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::task::{Context as TaskContext, Poll};

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::ServerHandle;
use super::concurrent::{Concurrent, Job};
use super::driver::{Dispatch, Now, Verdict};
use super::server::*;
use crate::codec::{Frame, FrameCodec, FrameError};
use crate::message::{AuthFields, DecodeError};
use crate::node::inbound::{Inbound, Pipeline};
use crate::node::refusals::{self, Refused};
use crate::node::requests::{Admit, Running};
use crate::peer::PeerSlot;
use crate::plugin::AuthPlugin;
use crate::plugin::{AuthFailure, NodePlugins, OpenError, Plugins, SendOptions, Stage};
use crate::router::{BoxFuture, Context, Request, Routes};
use crate::{Message, MessageType};
use tracing::Instrument;

/// How often a connection's last activity, for the eviction of the longest idle, is recorded.
const ACTIVE_GRANULARITY: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) struct ServerDispatch {
    pub(super) ctx: Context,
    pub(super) id: ConnectionId,
    pub(super) server: ServerHandle,
    pub(super) routes: Arc<Routes>,
    pub(super) codec: FrameCodec,
    pub(super) plugins: NodePlugins,
    pub(super) peer: SocketAddr,
    pub(super) peer_info: PeerSlot,
    /// The source the connection counts against.
    pub(super) source: IpAddr,
    pub(super) status: Arc<ConnStatus>,
    /// Whether a valid frame arrived (the registry was told once).
    pub(super) authenticated: bool,
    /// When `status.last_active` is next worth updating (it is kept to the second: reading the
    /// clock into milliseconds on every batch would cost more than the eviction order gains).
    pub(super) next_active_store: Instant,
    /// Handlers running in tasks, when the server lets them run concurrently.
    pub(super) concurrent: Option<Concurrent>,
    /// What is left of the frame `on_frame_now` started and `resume` finishes. In a mutex only
    /// to be `Sync` (the handler's future is not, and `&self` is held across awaits); reached
    /// through `get_mut`, never locked.
    pub(super) later: std::sync::Mutex<Option<Later>>,
    /// An empty vector of auth fields, kept from the last reply written, for the next reply.
    pub(super) spare_auth: AuthFields,
}

/// The most auth fields a kept vector may have room for (a reply's reference and a plugin
/// layer's fields fit).
const SPARE_AUTH_FIELDS: usize = 16;

/// A frame whose handler did not complete on its first poll, or whose reply a plugin seals on
/// the blocking pool.
pub(super) struct Later {
    /// The handler's future, still running; `None` when the reply is known.
    call: Option<BoxFuture<Option<Message>>>,
    reply: Option<Message>,
    /// The at-most-once id of a request running for the first time.
    running: Option<u64>,
    rid: Option<Bytes>,
    inner: Plugins,
    span: tracing::Span,
    verdict: Verdict,
}

impl ServerDispatch {
    /// The context for `msg`: a relay's large `FORWARD` gets its body as received and checksum
    /// (`echo`), from which the relay derives the checksum of the `DELIVER` it makes (a small
    /// one is hashed again, cheaper than the arithmetic).
    fn ctx_for(&self, msg: &Message, echo: &(Bytes, u32)) -> Context {
        use crate::node::relay::{COMBINE_FROM, FORWARD};
        match msg.message_type == FORWARD && echo.0.len() >= COMBINE_FROM {
            true => self.ctx.clone().with_received(echo.0.clone(), echo.1),
            false => self.ctx.clone(),
        }
    }

    /// Encode a finished (already sealed) message; a reply that cannot be encoded is answered with
    /// ERROR `reply too large` sealed with the instance plugins.
    fn write(&self, reply: &Message, out: &mut BytesMut) {
        self.write_known(reply, None, out);
    }

    /// [`write`](Self::write), with the checksum of `echo`'s body (the request's, checked on
    /// receipt) when the reply's body is the same bytes: no second CRC over them.
    fn write_known(&self, reply: &Message, echo: Option<&(Bytes, u32)>, out: &mut BytesMut) {
        let known = echo
            .filter(|(body, _)| reply.body.is_encoding_of(body))
            .map(|(_, checksum)| *checksum);
        if let Err(e) = self.codec.encode_message_known(reply, out, known) {
            tracing::warn!(error = %e, "reply cannot be encoded; answering ERROR instead");
            let mut err = Message::new(MessageType::ERROR, reply.uri().clone(), "reply too large");
            if let Some(r) = reply.reply_ref() {
                err.set_reply_ref(r);
            }
            self.write_sealed(err, &Plugins::new(), true, out);
        }
    }

    /// Seal with `inner` and (when `outer`) the instance plugins, then encode.
    fn write_sealed(&self, msg: Message, inner: &Plugins, outer: bool, out: &mut BytesMut) {
        let opts = SendOptions::new()
            .inner(inner.clone())
            .use_auth(outer)
            .use_cipher(outer);
        let peer = self.peer_info.get();
        match self
            .plugins
            .seal_now(msg, &opts, peer.as_deref(), Some(self.peer))
        {
            Ok(m) => {
                if let Err(e) = self.codec.encode_message(&m, out) {
                    tracing::warn!(error = %e, "sealed reply cannot be encoded; dropped");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reply cannot be sealed; dropped"),
        }
    }

    /// Seal (without the blocking pool) and encode a reply. Returns the auth fields of the
    /// message written, for their vector to be used again.
    fn reply_now(
        &self,
        msg: Message,
        inner: &Plugins,
        echo: Option<&(Bytes, u32)>,
        out: &mut BytesMut,
    ) -> Option<AuthFields> {
        if inner.is_empty() && self.plugins.outer.is_empty() {
            self.write_known(&msg, echo, out);
            return Some(msg.auth);
        }
        let (uri, rref) = (msg.uri().clone(), msg.reply_ref());
        let opts = SendOptions::new().inner(inner.clone());
        let peer = self.peer_info.get();
        let sealed = self
            .plugins
            .seal_now(msg, &opts, peer.as_deref(), Some(self.peer));
        match sealed {
            Ok(m) => {
                self.write_known(&m, echo, out);
                Some(m.auth)
            }
            Err(e) => {
                self.write_or_error(Err(e), uri, rref, out);
                None
            }
        }
    }

    /// Keep the emptied vector of a written reply's auth fields for the next reply (one
    /// allocation less per reply), unless it grew large.
    fn recycle(spare: &mut AuthFields, auth: Option<AuthFields>) {
        if let Some(mut auth) = auth
            && auth.capacity() <= SPARE_AUTH_FIELDS
        {
            // Emptied now: a kept value must not hold the read buffer it was sliced from.
            auth.clear();
            *spare = auth;
        }
    }

    async fn reply(&self, msg: Message, inner: &Plugins, out: &mut BytesMut) {
        if !(self.plugins.outer.is_blocking() || inner.is_blocking()) {
            self.reply_now(msg, inner, None, out);
            return;
        }
        let (uri, rref) = (msg.uri().clone(), msg.reply_ref());
        let opts = SendOptions::new().inner(inner.clone());
        let peer = self.peer_info.get();
        // A CPU-heavy plugin seals on the blocking pool. Boxed: its state would otherwise size
        // the future of every frame.
        let sealed = Box::pin(
            self.plugins
                .seal(msg, &opts, peer.as_deref(), Some(self.peer)),
        )
        .await;
        self.write_or_error(sealed, uri, rref, out);
    }

    /// Encode a sealed reply, or answer ERROR `internal error` if it could not be sealed.
    fn write_or_error<E: std::fmt::Display>(
        &self,
        sealed: Result<Message, E>,
        uri: Bytes,
        rref: Option<u64>,
        out: &mut BytesMut,
    ) {
        match sealed {
            Ok(m) => self.write(&m, out),
            Err(e) => {
                tracing::warn!(error = %e, "reply cannot be sealed; answering ERROR instead");
                let mut err = Message::new(MessageType::ERROR, uri, "internal error");
                if let Some(r) = rref {
                    err.set_reply_ref(r);
                }
                self.write_sealed(err, &Plugins::new(), true, out);
            }
        }
    }

    fn invalid(&self, err: &DecodeError, auth: &Bytes, out: &mut BytesMut) {
        tracing::warn!(error = %err, "invalid frame: answering ERROR");
        let mut reply = Message::error("invalid message");
        // The auth block is outside the checksum: if it still decodes, echo the request id so the
        // waiting request fails at once instead of timing out.
        if let Some(id) = self
            .codec
            .auth_codec()
            .decode(auth)
            .ok()
            .and_then(|f| crate::message::request_id_in(&f))
        {
            reply.set_reply_ref(id);
        }
        // Unsealed, like the auth-error reply: a malformed frame must not make the server run its
        // plugins (a proof-of-work stamp on every garbage frame would be a CPU amplifier).
        self.write(&reply, out);
    }

    /// A check failed: log, and answer as the hook (auth) or the defaults (cipher) say, without
    /// plugins, never to an error-type message.
    fn refused(
        &self,
        msg: &Message,
        err: &OpenError,
        plugin: Option<&dyn AuthPlugin>,
        out: &mut BytesMut,
    ) {
        let reply = match (err, plugin) {
            (OpenError::Auth { source, stage }, Some(plugin)) => {
                (self.plugins.auth_error)(&AuthFailure {
                    message: msg,
                    error: source,
                    stage: *stage,
                    plugin,
                    addr: self.peer,
                })
            }
            _ if msg.message_type.is_error() => None,
            _ => Some(Message::new(
                MessageType::ERROR,
                "ERROR",
                "decryption failed",
            )),
        };
        if let Some(mut reply) = reply {
            if let Some(id) = msg.request_id() {
                reply.set_reply_ref(id);
            }
            self.write(&reply, out);
        }
    }

    /// The first valid frame: the connection is no longer first in line for eviction. Once per
    /// connection (the registry's lock, not per frame).
    #[cold]
    fn authenticate(&mut self) {
        self.authenticated = true;
        self.server
            .registry()
            .admission
            .authenticated(self.id, self.source);
    }

    /// A frame passed the instance plugins: valid, and the connection is authenticated.
    #[inline]
    fn valid(&mut self) -> Verdict {
        if !self.authenticated {
            self.authenticate();
        }
        Verdict::Valid
    }
}

impl Dispatch for ServerDispatch {
    // `on_frame` is the trait's: `on_frame_now` never hands a frame back.

    /// The whole frame at once (decode, open, route, the handler's first poll, seal, encode)
    /// when its handler completes on its first poll and no plugin seals on the blocking pool:
    /// then no future is built or moved for the frame. Otherwise what is left goes to `later`
    /// and [`resume`](Dispatch::resume) finishes it.
    fn on_frame_now(&mut self, frame: Frame, out: &mut BytesMut, cx: &mut TaskContext<'_>) -> Now {
        let Frame { header, auth, body } = frame;
        // The body as received and its checksum, checked below: an echoed reply reuses it.
        let echo = (body.clone(), header.checksum);
        let msg = match Message::from_parts(header, &auth, body, self.codec.auth_codec()) {
            Ok(m) => m,
            Err(e) => {
                self.invalid(&e, &auth, out);
                return Now::Done(Verdict::Refused);
            }
        };
        drop(auth);
        let span = tracing::debug_span!("message", r#type = %msg.message_type, uri = ?crate::message::HexPreview(msg.uri()));
        let pipeline = Pipeline {
            plugins: &self.plugins,
            routes: &self.routes,
            requests: &self.server.shared.requests,
            answers_refusals: true,
            accepts_unauthenticated_errors: true,
        };
        // The peer record is read (a lock and a reference count) only when a plugin will see it.
        let (handler, inner, msg) =
            match pipeline.receive(msg, self.id, self.peer, || self.peer_info.get()) {
                Inbound::Routed {
                    handler,
                    inner,
                    msg,
                } => (handler, inner, msg),
                Inbound::Answered | Inbound::Stale => return Now::Done(self.valid()),
                Inbound::AnsweredUnverified => return Now::Done(Verdict::Unverified),
                Inbound::Refused(r) => {
                    if let Some(received) = &r.received {
                        self.refused(received, &r.error, r.auth.as_deref(), out);
                    }
                    let refused = Refused {
                        addr: self.peer,
                        error: &r.error,
                        plugin: r.plugin,
                        what: "messages",
                    };
                    refusals::report(&self.server.shared.refusals, &refused, Instant::now());
                    // A route's inner plugins refusing a message that passed the instance
                    // ones: the connection did show the key.
                    return Now::Done(match r.error {
                        OpenError::Auth {
                            stage: Stage::Inner,
                            ..
                        }
                        | OpenError::Cipher {
                            stage: Stage::Inner,
                            ..
                        } => self.valid(),
                        _ => Verdict::Refused,
                    });
                }
            };
        // Before the handler runs: however long it takes, the connection has shown the key.
        let verdict = self.valid();
        // The request id as sent: the reply carries the same bytes as its reply reference (no
        // re-encoding, no allocation).
        let rid = msg
            .auth
            .get(crate::message::fields::REQUEST_ID)
            .filter(|v| (1..=8).contains(&v.len()))
            .cloned();
        let is_error = msg.message_type.is_error();
        // At most once: a request its caller may re-send runs its handler only the first time;
        // a copy gets the same reply again (sealed afresh), or nothing while the first runs.
        // Keyed by the client's address without its port: a retry after a reconnect comes
        // from a new port.
        let dedup = &self.server.shared.dedup;
        let client = self.peer.ip();
        let mut once = None;
        let mut cached = None;
        if handler.is_some() {
            match dedup.admit(client, &msg) {
                Admit::Run(id) => once = id,
                // A copy of a request that passed the instance plugins: a valid frame.
                Admit::Drop => return Now::Done(Verdict::Valid),
                Admit::Cached(reply) => cached = Some(reply),
            }
        }
        // Concurrent handlers (opt-in): a request with an id runs in a task of its own.
        if let Some(concurrent) = self.concurrent.as_mut()
            && cached.is_none()
            && handler.is_some()
            && rid.is_some()
            && concurrent.has_room()
            && let (Some(handler), Some(request_id)) = (handler.clone(), rid.clone())
        {
            let job = Job {
                handler,
                request: Request {
                    ctx: self.ctx.clone(),
                    message: msg,
                },
                inner,
                request_id,
                once: once.map(|id| (client, id)),
                span,
            };
            concurrent.spawn(self.server.clone(), self.id, job);
            return Now::Done(verdict);
        }
        let running = once.map(|id| Running::new(dedup, client, id));
        let reply = match (cached, handler) {
            (Some(reply), _) => Some(reply),
            (None, Some(h)) => {
                let req = Request {
                    ctx: self.ctx_for(&msg, &echo),
                    message: msg,
                };
                let mut call = h.call(req);
                // Polled here with the connection task's waker: a handler that is not ready
                // wakes the task, which goes on with it in `resume`.
                match span.in_scope(|| call.as_mut().poll(cx)) {
                    Poll::Ready(reply) => reply,
                    Poll::Pending => {
                        *self.later.get_mut().unwrap_or_else(PoisonError::into_inner) =
                            Some(Later {
                                call: Some(call),
                                reply: None,
                                running: running.map(Running::detach),
                                rid,
                                inner,
                                span,
                                verdict,
                            });
                        return Now::Resume;
                    }
                }
            }
            (None, None) if is_error => {
                // Never answer an error with an error: no ping-pong.
                tracing::debug!(parent: &span, "unhandled error-type message dropped");
                None
            }
            (None, None) => Some(Message::not_found()),
        };
        if let Some(running) = running {
            running.finish(reply.as_ref());
        }
        if let Some(mut reply) = reply {
            if let Some(id) = rid {
                // A reply built without auth fields takes the vector of the last one written.
                if reply.auth.is_empty() {
                    std::mem::swap(&mut reply.auth, &mut self.spare_auth);
                }
                reply
                    .auth
                    .insert_static(crate::message::fields::REPLY_REF, id);
            }
            if self.plugins.outer.is_blocking() || inner.is_blocking() {
                *self.later.get_mut().unwrap_or_else(PoisonError::into_inner) = Some(Later {
                    call: None,
                    reply: Some(reply),
                    running: None,
                    rid: None,
                    inner,
                    span,
                    verdict,
                });
                return Now::Resume;
            }
            let written = self.reply_now(reply, &inner, Some(&echo), out);
            Self::recycle(&mut self.spare_auth, written);
        }
        Now::Done(verdict)
    }

    /// The rest of the frame [`on_frame_now`](Dispatch::on_frame_now) left in `later`: the
    /// handler's future awaited, then the reply sealed (on the blocking pool if a plugin says so)
    /// and encoded.
    async fn resume(&mut self, out: &mut BytesMut) -> Verdict {
        let later = self.later.get_mut().unwrap_or_else(PoisonError::into_inner);
        let Some(later) = later.take() else {
            return Verdict::Valid;
        };
        let Later {
            call,
            reply,
            running,
            rid,
            inner,
            span,
            verdict,
        } = later;
        // Re-armed before the await: a connection dropped while the handler runs forgets the
        // request, so that a retry runs it.
        let client = self.peer.ip();
        let running = running.map(|id| Running::new(&self.server.shared.dedup, client, id));
        let reply = match call {
            Some(call) => call.instrument(span).await,
            None => reply,
        };
        if let Some(running) = running {
            running.finish(reply.as_ref());
        }
        if let Some(mut reply) = reply {
            if let Some(id) = rid {
                reply
                    .auth
                    .insert_static(crate::message::fields::REPLY_REF, id);
            }
            self.reply(reply, &inner, out).await;
        }
        verdict
    }

    #[inline]
    fn active(&mut self, now: Instant) {
        if now >= self.next_active_store {
            self.next_active_store = now + ACTIVE_GRANULARITY;
            self.status
                .last_active
                .store(self.server.shared.millis(now), Ordering::Relaxed);
        }
    }

    fn on_fatal(&mut self, err: &FrameError, out: &mut BytesMut) {
        let text = match err {
            FrameError::Decode(DecodeError::FrameTooLarge { .. }) => "frame too large",
            _ => "invalid message",
        };
        // Unsealed, as for any frame that never passed the checks.
        self.write(&Message::new(MessageType::ERROR, "ERROR", text), out);
    }
}
