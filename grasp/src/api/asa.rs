//! [`Asa`]: an autonomic service agent registered with a node, and the calls of RFC 8991 it
//! makes (registration, discovery, negotiation, synchronization, flooding).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::listener::ObjectiveListener;
use super::node::{Inner, listener_addr, lock, now};
use super::session::{Negotiated, NegotiationSession, Step, decode_failure};
use crate::net::sockets;
use crate::net::stream::{MessageStream, ReadError};
use crate::proto::{
    AsaId, AsaLocator, DEFAULT_TIMEOUT, Discover, GraspError, Negotiation, Origin, RegisterOptions,
    TaggedObjective,
};
use crate::wire::{IPPROTO_TCP, Locator, Message, Objective};

/// How long connecting to a peer may take: there should always be a listener there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The options of `discover` (RFC 8991: timeout, minimum_TTL; and the prototype's flush).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoverOptions {
    /// How long to collect responses (zero: the cache only). It is at least 100 ms per loop
    /// count.
    pub timeout: Duration,
    /// Forget the cached locators first.
    pub flush: bool,
    /// Forget the cached locators whose remaining ttl is at most this (zero: all of them).
    pub minimum_ttl: Option<Duration>,
}

impl DiscoverOptions {
    /// Collect responses for `timeout`.
    pub fn timeout(timeout: Duration) -> DiscoverOptions {
        DiscoverOptions {
            timeout,
            flush: false,
            minimum_ttl: None,
        }
    }

    /// Forget the cached locators first.
    #[must_use]
    pub fn flush(mut self, on: bool) -> Self {
        self.flush = on;
        self
    }

    /// Forget the cached locators whose remaining ttl is at most `ttl`.
    #[must_use]
    pub fn minimum_ttl(mut self, ttl: Duration) -> Self {
        self.minimum_ttl = Some(ttl);
        self
    }
}

/// An ASA registered with a node ([`Grasp::register_asa`](super::Grasp::register_asa)). The
/// calls take `&self`: run several at once from clones or tasks.
#[derive(Debug, Clone)]
pub struct Asa {
    inner: Arc<Inner>,
    id: AsaId,
    name: Arc<str>,
}

impl Asa {
    pub(crate) fn new(inner: Arc<Inner>, id: AsaId, name: &str) -> Asa {
        Asa {
            inner,
            id,
            name: name.into(),
        }
    }

    /// Its handle.
    pub fn id(&self) -> AsaId {
        self.id
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// RFC 8991 `deregister_asa`: its objectives go too (those also registered by others stay
    /// theirs).
    pub fn deregister_asa(&self) -> Result<(), GraspError> {
        let gone = self.inner.core().deregister_asa(self.id, &self.name)?;
        self.drop_listeners(&gone);
        Ok(())
    }

    fn drop_listeners(&self, names: &[String]) {
        let mut ls = lock(&self.inner.listeners);
        for n in names {
            if let Some(l) = ls.remove(n) {
                l.stop();
                l.drain(&self.inner);
            }
        }
    }

    /// RFC 8991 `register_obj`. A negotiable or synchronizable objective gets its own TCP port
    /// (its locator's port in discovery answers).
    pub async fn register_obj(
        &self,
        obj: &Objective,
        options: RegisterOptions,
    ) -> Result<(), GraspError> {
        let joins = self.inner.core().check_register(self.id, obj, &options)?;
        let needs_port = !joins && (obj.is_neg() || obj.is_synch() || obj.is_dry());
        let listener = if needs_port {
            let ipv4_only = {
                let core = self.inner.core();
                core.config().ipv4 && !core.config().ipv6
            };
            let l = sockets::tcp_listener(listener_addr(ipv4_only), false)
                .map_err(|e| GraspError::Unspec(format!("no TCP port: {e}")))?;
            Some(ObjectiveListener::start(
                Arc::downgrade(&self.inner),
                l,
                self.inner.listen_queue,
            ))
        } else {
            None
        };
        let port = listener.as_ref().map_or(0, |l| l.port);
        self.inner
            .core()
            .register_obj(self.id, obj, options, port)?;
        if let Some(l) = listener {
            lock(&self.inner.listeners).insert(obj.name.clone(), l);
        }
        Ok(())
    }

    /// RFC 8991 `deregister_obj`.
    pub fn deregister_obj(&self, obj: &Objective) -> Result<(), GraspError> {
        if self.inner.core().deregister_obj(self.id, &obj.name)? {
            self.drop_listeners(std::slice::from_ref(&obj.name));
        }
        Ok(())
    }

    /// RFC 8991 `discover` with a timeout (see [`discover_with`](Self::discover_with)).
    pub async fn discover(
        &self,
        obj: &Objective,
        timeout: Duration,
    ) -> Result<Vec<AsaLocator>, GraspError> {
        self.discover_with(obj, DiscoverOptions::timeout(timeout))
            .await
    }

    /// RFC 8991 `discover`: the cached locators of `obj` when there are any (after `flush` and
    /// `minimum_ttl`), else those found by a discovery within the timeout (an empty list is not
    /// an error).
    pub async fn discover_with(
        &self,
        obj: &Objective,
        options: DiscoverOptions,
    ) -> Result<Vec<AsaLocator>, GraspError> {
        let started = self.inner.core().discover(
            now(),
            self.id,
            obj,
            options.timeout,
            options.flush,
            options.minimum_ttl,
        )?;
        match started {
            Discover::Cached(l) => Ok(l),
            Discover::Started { id, out, .. } => {
                let rx = self.inner.await_discovery(id);
                self.inner.execute(out);
                self.inner.rearm();
                rx.await
                    .map_err(|_| GraspError::Unspec("node stopped".into()))
            }
        }
    }

    /// Discovery for a call given no peer: the first locator found, or `err`.
    async fn first_peer(
        &self,
        obj: &Objective,
        timeout: Duration,
        err: GraspError,
    ) -> Result<AsaLocator, GraspError> {
        self.discover(obj, timeout)
            .await?
            .into_iter()
            .find(|l| l.socket_addr().is_some())
            .ok_or(err)
    }

    fn tcp_addr(peer: &AsaLocator) -> Result<SocketAddr, GraspError> {
        match peer.locator.protocol() {
            Some(IPPROTO_TCP) => peer.socket_addr().ok_or(GraspError::InvalidLoc),
            _ => Err(GraspError::InvalidLoc),
        }
    }

    /// RFC 8991 `request_negotiate`: ask `peer` (`None`: discover one first) for `obj`'s value,
    /// waiting up to `timeout` (`None`: 60 s). The loop count is `obj`'s.
    pub async fn request_negotiate(
        &self,
        obj: &Objective,
        peer: Option<&AsaLocator>,
        timeout: Option<Duration>,
    ) -> Result<Negotiated, GraspError> {
        self.inner.core().check_asa(self.id)?;
        if !(obj.is_neg() || obj.is_dry()) {
            return Err(GraspError::NotNeg);
        }
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        let peer = match peer {
            Some(p) => p.clone(),
            None => {
                self.first_peer(obj, timeout, GraspError::NoDiscReply)
                    .await?
            }
        };
        let to = Self::tcp_addr(&peer)?;
        let session_id = self.inner.core().new_session()?;
        let (state, req) = Negotiation::request(session_id, obj);
        let opened = async {
            let bytes = req
                .encode_limited(self.inner.max_message)
                .map_err(|e| GraspError::Unspec(e.to_string()))?;
            let mut stream = sockets::connect(to, CONNECT_TIMEOUT)
                .await
                .map(|s| MessageStream::new(s, self.inner.max_message))
                .map_err(|e| GraspError::SockErrNegRq(Arc::new(e)))?;
            stream
                .write(&bytes)
                .await
                .map_err(|e| GraspError::SockErrNegRq(Arc::new(e)))?;
            Ok(stream)
        }
        .await;
        let stream = match opened {
            Ok(s) => s,
            Err(e) => {
                self.inner.core().end_session(session_id, Origin::Local);
                return Err(e);
            }
        };
        let mut session =
            NegotiationSession::new(state, stream, self.inner.clone(), Origin::Local, to);
        match session.await_reply(timeout).await? {
            Step::Offer(o) => Ok(Negotiated::Offer(session, o)),
            Step::Accepted(o) => Ok(Negotiated::Accepted(o)),
        }
    }

    /// RFC 8991 `listen_negotiate`: the next negotiation request for `obj` (registered by this
    /// ASA, negotiable), with the session to answer it. From the first call until
    /// [`stop_negotiate`](Self::stop_negotiate) every request is queued while the ASA is busy;
    /// several tasks may wait at once (each gets its own request).
    pub async fn listen_negotiate(
        &self,
        obj: &Objective,
    ) -> Result<(NegotiationSession, Objective), GraspError> {
        self.inner.core().listen_negotiate(self.id, obj)?;
        let listener = lock(&self.inner.listeners)
            .get(&obj.name)
            .cloned()
            .ok_or(GraspError::NotObj)?;
        let incoming = {
            let stopped = listener.stopped.notified();
            let mut queue = tokio::select! {
                q = listener.queue.lock() => q,
                _ = stopped => return Err(GraspError::NoSession),
            };
            let stopped = listener.stopped.notified();
            tokio::select! {
                i = queue.recv() => i.ok_or(GraspError::NoSession)?,
                _ = stopped => return Err(GraspError::NoSession),
            }
        };
        let peer = incoming
            .stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::new(incoming.peer, 0));
        let state = Negotiation::accept(incoming.session_id, &incoming.objective);
        let session = NegotiationSession::new(
            state,
            incoming.stream,
            self.inner.clone(),
            Origin::Remote(incoming.peer),
            peer,
        );
        Ok((session, incoming.objective))
    }

    /// RFC 8991 `stop_negotiate`: requests for `obj` are refused from now on; those queued are
    /// closed.
    pub fn stop_negotiate(&self, obj: &Objective) -> Result<(), GraspError> {
        self.inner.core().stop_negotiate(self.id, &obj.name)?;
        if let Some(l) = lock(&self.inner.listeners).get(&obj.name).cloned() {
            l.stopped.notify_waiters();
            l.drain(&self.inner);
        }
        Ok(())
    }

    /// RFC 8991 `synchronize`: `obj`'s current value from `peer`; with no peer, a flooded
    /// value if one is cached, else a value that came with a discovery response (rapid mode),
    /// else a request to the first peer discovered. Waits up to `timeout` (`None`: 60 s).
    pub async fn synchronize(
        &self,
        obj: &Objective,
        peer: Option<&AsaLocator>,
        timeout: Option<Duration>,
    ) -> Result<Objective, GraspError> {
        self.inner.core().check_asa(self.id)?;
        if !obj.is_synch() {
            return Err(GraspError::NotSynch);
        }
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        let peer = match peer {
            Some(p) => p.clone(),
            None => {
                let flooded = self.inner.core().get_flood(now(), self.id, obj)?;
                if let Some(t) = flooded.into_iter().next() {
                    return Ok(t.objective);
                }
                let p = self
                    .first_peer(obj, timeout, GraspError::NotFloodDisc)
                    .await?;
                if let Some(o) = self.inner.core().rapid_value(now(), &obj.name) {
                    return Ok(o);
                }
                p
            }
        };
        let to = Self::tcp_addr(&peer)?;
        let session_id = self.inner.core().new_session()?;
        let result = self.synch_request(to, session_id, obj, timeout).await;
        self.inner.core().end_session(session_id, Origin::Local);
        result
    }

    async fn synch_request(
        &self,
        to: SocketAddr,
        session_id: u32,
        obj: &Objective,
        timeout: Duration,
    ) -> Result<Objective, GraspError> {
        let req = Message::ReqSyn {
            session_id,
            objective: obj.clone(),
        };
        let bytes = req
            .encode_limited(self.inner.max_message)
            .map_err(|e| GraspError::Unspec(e.to_string()))?;
        let mut s = match sockets::connect(to, CONNECT_TIMEOUT).await {
            Ok(s) => MessageStream::new(s, self.inner.max_message),
            Err(e) => return Err(GraspError::SockErrSynRq(Arc::new(e))),
        };
        s.write(&bytes)
            .await
            .map_err(|e| GraspError::SockErrSynRq(Arc::new(e)))?;
        let deadline = Instant::now() + timeout;
        let answer = s.read(deadline).await;
        s.close().await;
        match answer {
            Ok(Message::Synch {
                session_id: sid,
                mut objective,
            }) if sid == session_id && objective.name == obj.name => {
                objective.loop_count = objective.loop_count.saturating_sub(1);
                Ok(objective)
            }
            Ok(_) => Err(GraspError::NoValidSynch),
            Err(ReadError::TimedOut) => Err(GraspError::NoSynchReply),
            Err(ReadError::Closed | ReadError::Io(_)) => Err(GraspError::NoListener),
            Err(ReadError::Decode(e)) => Err(match decode_failure(&e) {
                GraspError::CborFail => GraspError::CborFail,
                _ => GraspError::NoValidSynch,
            }),
        }
    }

    /// RFC 8991 `listen_synchronize`: answer synchronization requests for `obj` (registered by
    /// this ASA, synchronizable) with its value, until
    /// [`stop_synchronize`](Self::stop_synchronize). Call again when the value changes.
    pub fn listen_synchronize(&self, obj: &Objective) -> Result<(), GraspError> {
        self.inner.core().listen_synchronize(self.id, obj)
    }

    /// RFC 8991 `stop_synchronize`.
    pub fn stop_synchronize(&self, obj: &Objective) -> Result<(), GraspError> {
        self.inner.core().stop_synchronize(self.id, &obj.name)
    }

    /// RFC 8991 `flood`: multicast these objectives (registered by this ASA, synchronizable)
    /// with their values, each with an optional locator, valid for `ttl_ms` milliseconds (0:
    /// indefinitely), to every GRASP node within their loop count.
    pub fn flood(
        &self,
        ttl_ms: u32,
        items: &[(Objective, Option<Locator>)],
    ) -> Result<(), GraspError> {
        let out = self
            .inner
            .core()
            .flood(now(), self.id, ttl_ms, items.to_vec())?;
        self.inner.execute(out);
        Ok(())
    }

    /// RFC 8991 `get_flood`: the unexpired flooded values of `obj`, one per source locator.
    pub fn get_flood(&self, obj: &Objective) -> Result<Vec<TaggedObjective>, GraspError> {
        self.inner.core().get_flood(now(), self.id, obj)
    }

    /// RFC 8991 `expire_flood`: forget a flooded value (one `get_flood` returned).
    pub fn expire_flood(&self, tagged: &TaggedObjective) -> Result<(), GraspError> {
        self.inner.core().expire_flood(self.id, tagged)
    }
}
