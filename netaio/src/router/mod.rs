//! The router: handlers keyed by `(type, uri, peer)`, `(type, uri)` or `type`, most specific first,
//! persistent and one-shot, with a fallback (default) handler.
//!
//! ```
//! use netaio::router::Router;
//! use netaio::{Message, MessageType};
//!
//! let router = Router::new()
//!     .on((MessageType::REQUEST_URI, "echo"), |msg: Message| async move {
//!         Message::respond(msg.uri().clone(), msg.content().clone())
//!     })
//!     .on(MessageType::PUBLISH_URI, |_msg: Message| async {})
//!     .fallback(|| async { Message::not_found() });
//! ```

mod context;
mod extract;
mod handler;
mod ops;
mod route;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

pub use context::{Context, Request};
pub use extract::{Content, FromRequest, PeerAddr, Postcard, Rejection, State, Uri};
pub use handler::{BoxFuture, BoxedHandler, Handler, IntoErrorReply, IntoReply};
pub use ops::{NodeFuture, NodeOps, PeerLink};
pub use route::{IntoRoute, Route, Service};

use crate::MessageType;
use crate::message::HexPreview;
use crate::plugin::Plugins;

/// The key a handler is registered under. Matching tries, in order, `Peer`, `Uri`, `Type`.
///
/// Built from tuples:
///
/// ```
/// use netaio::router::RouteKey;
/// use netaio::MessageType;
///
/// let by_type: RouteKey = MessageType::PUBLISH_URI.into();
/// let by_uri: RouteKey = (MessageType::REQUEST_URI, "echo").into();
/// let by_bytes: RouteKey = (MessageType::REQUEST_URI, b"echo").into();
/// let by_peer: RouteKey = (MessageType::OK, "x", "127.0.0.1:9000".parse().unwrap()).into();
/// assert_eq!(by_uri, by_bytes);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum RouteKey {
    /// Any message of this type.
    Type(MessageType),
    /// This type and exactly this uri.
    Uri(MessageType, Bytes),
    /// This type and uri, from (or, on a client, to) this peer address.
    Peer(MessageType, Bytes, SocketAddr),
}

impl RouteKey {
    /// The message type of the key.
    pub fn message_type(&self) -> MessageType {
        match self {
            RouteKey::Type(t) | RouteKey::Uri(t, _) | RouteKey::Peer(t, _, _) => *t,
        }
    }
}

impl fmt::Debug for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Type(t) => write!(f, "({t:?})"),
            RouteKey::Uri(t, u) => write!(f, "({t:?}, {:?})", HexPreview(u)),
            RouteKey::Peer(t, u, a) => write!(f, "({t:?}, {:?}, {a})", HexPreview(u)),
        }
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<MessageType> for RouteKey {
    fn from(t: MessageType) -> Self {
        RouteKey::Type(t)
    }
}

macro_rules! uri_key_from {
    ($($ty:ty),*) => {$(
        impl From<(MessageType, $ty)> for RouteKey {
            fn from((t, uri): (MessageType, $ty)) -> Self {
                RouteKey::Uri(t, Bytes::from(uri))
            }
        }
        impl From<(MessageType, $ty, SocketAddr)> for RouteKey {
            fn from((t, uri, addr): (MessageType, $ty, SocketAddr)) -> Self {
                RouteKey::Peer(t, Bytes::from(uri), addr)
            }
        }
    )*};
}
uri_key_from!(&'static str, &'static [u8], String, Vec<u8>, Bytes);

impl<const N: usize> From<(MessageType, &'static [u8; N])> for RouteKey {
    fn from((t, uri): (MessageType, &'static [u8; N])) -> Self {
        RouteKey::Uri(t, Bytes::from_static(uri))
    }
}

impl<const N: usize> From<(MessageType, &'static [u8; N], SocketAddr)> for RouteKey {
    fn from((t, uri, addr): (MessageType, &'static [u8; N], SocketAddr)) -> Self {
        RouteKey::Peer(t, Bytes::from_static(uri), addr)
    }
}

/// Registering a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A handler of the same kind (persistent or one-shot) is already registered at this key.
    #[error("a {kind} handler is already registered for {key:?} (first registered at {first})")]
    Duplicate {
        /// The key.
        key: RouteKey,
        /// "persistent" or "one-shot".
        kind: &'static str,
        /// Where the first handler was registered.
        first: &'static Location<'static>,
    },
}

#[derive(Clone)]
struct Entry {
    handler: BoxedHandler,
    inner: Plugins,
    at: &'static Location<'static>,
}

/// The handler chosen for a message, with its inner plugins.
pub(crate) struct Matched<'a> {
    /// The route's handler, else the fallback; `None` when neither exists.
    pub(crate) handler: Option<BoxedHandler>,
    /// The route's inner plugins (none for the fallback).
    pub(crate) inner: Plugins,
    /// For a one-shot route: the claim to [`settle`](OnceClaim::settle) once the inner plugins
    /// have run (taken when the message passed them, left in place otherwise).
    pub(crate) once: Option<OnceClaim<'a>>,
}

/// A one-shot route selected for a message and not taken yet. It holds the routing table's write
/// lock, so that no other message can select the route meanwhile: keep it only while the inner
/// plugins run (it is not `Send`, so it cannot be held across an `.await` of a node's tasks).
pub(crate) struct OnceClaim<'a> {
    table: std::sync::RwLockWriteGuard<'a, Table>,
    key: RouteKey,
    once_count: &'a AtomicUsize,
}

impl OnceClaim<'_> {
    /// Settle the claim of a selected route (none for a persistent one) once its inner plugins
    /// have run: a message that `passed` them takes the one-shot route; a refused one leaves it
    /// for the message it is waiting for. Either way the routing table's lock is released.
    #[inline]
    pub(crate) fn settle(claim: Option<Self>, passed: bool) {
        if let Some(claim) = claim
            && passed
        {
            claim.take();
        }
    }

    /// Remove the one-shot route: the message passed its checks and its handler will run.
    fn take(mut self) {
        let slot = self.table.slot_mut(self.key.clone());
        if slot.once.take().is_some() {
            self.once_count.fetch_sub(1, Ordering::AcqRel);
        }
        if slot.is_empty() {
            self.table.remove(&self.key, false);
        }
    }
}

impl From<&Entry> for Matched<'_> {
    fn from(r: &Entry) -> Self {
        Matched {
            handler: Some(r.handler.clone()),
            inner: r.inner.clone(),
            once: None,
        }
    }
}

/// Inner plugins attached to one route (the same type as a node's [`Plugins`]).
pub type InnerPlugins = Plugins;

#[derive(Clone, Default)]
struct Slot {
    persistent: Option<Entry>,
    once: Option<Entry>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.persistent.is_none() && self.once.is_none()
    }
}

/// A fast, non-cryptographic hasher for the route tables (the multiply-rotate hash of rustc's
/// `FxHasher`). The tables are filled by the application, not by peers: a peer only chooses the
/// key it looks up, which costs one probe sequence whatever its hash, so no keyed (SipHash)
/// hasher is needed against collision attacks, and SipHash was a tenth of the dispatch cost.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(rest) {
                *d = *s;
            }
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest; hashbrown indexes with them.
        self.hash.rotate_left(26)
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The routes: `(type, uri)` routes are looked up by type, then by the uri as a byte slice, so a
/// lookup neither clones the message's uri nor builds a key.
#[derive(Clone, Default)]
struct Table {
    by_peer: FastMap<(MessageType, Bytes, SocketAddr), Slot>,
    by_uri: FastMap<MessageType, FastMap<Bytes, Slot>>,
    by_type: FastMap<MessageType, Slot>,
}

/// Which kind of key matched (the key itself is only built when a one-shot route is taken).
#[derive(Clone, Copy)]
enum Level {
    Peer,
    Uri,
    Type,
}

impl Level {
    fn key(self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> RouteKey {
        match self {
            Level::Peer => RouteKey::Peer(t, uri.clone(), peer),
            Level::Uri => RouteKey::Uri(t, uri.clone()),
            Level::Type => RouteKey::Type(t),
        }
    }
}

impl Table {
    fn slot_mut(&mut self, key: RouteKey) -> &mut Slot {
        match key {
            RouteKey::Type(t) => self.by_type.entry(t).or_default(),
            RouteKey::Uri(t, u) => self.by_uri.entry(t).or_default().entry(u).or_default(),
            RouteKey::Peer(t, u, a) => self.by_peer.entry((t, u, a)).or_default(),
        }
    }

    fn insert(&mut self, key: RouteKey, route: Entry, once: bool) -> Result<(), RouteError> {
        let slot = self.slot_mut(key.clone());
        let (place, kind) = if once {
            (&mut slot.once, "one-shot")
        } else {
            (&mut slot.persistent, "persistent")
        };
        if let Some(first) = place {
            return Err(RouteError::Duplicate {
                key,
                kind,
                first: first.at,
            });
        }
        *place = Some(route);
        Ok(())
    }

    fn remove(&mut self, key: &RouteKey, once: bool) -> bool {
        fn take<K, Q>(map: &mut FastMap<K, Slot>, k: &Q, once: bool) -> bool
        where
            K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            let Some(slot) = map.get_mut(k) else {
                return false;
            };
            let removed = if once {
                slot.once.take().is_some()
            } else {
                slot.persistent.take().is_some()
            };
            if slot.is_empty() {
                map.remove(k);
            }
            removed
        }
        match key {
            RouteKey::Type(t) => take(&mut self.by_type, t, once),
            RouteKey::Uri(t, u) => {
                let Some(uris) = self.by_uri.get_mut(t) else {
                    return false;
                };
                let removed = take(uris, u.as_ref(), once);
                if uris.is_empty() {
                    self.by_uri.remove(t);
                }
                removed
            }
            RouteKey::Peer(t, u, a) => take(&mut self.by_peer, &(*t, u.clone(), *a), once),
        }
    }

    /// The slot that matches first: `(type, uri, peer)`, `(type, uri)`, `type`.
    fn find(&self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> Option<(Level, &Slot)> {
        if !self.by_peer.is_empty()
            && let Some(s) = self.by_peer.get(&(t, uri.clone(), peer))
        {
            return Some((Level::Peer, s));
        }
        if let Some(s) = self.by_uri.get(&t).and_then(|m| m.get(uri.as_ref())) {
            return Some((Level::Uri, s));
        }
        self.by_type.get(&t).map(|s| (Level::Type, s))
    }

    /// Every slot with its key.
    fn into_slots(self) -> impl Iterator<Item = (RouteKey, Slot)> {
        let Table {
            by_peer,
            by_uri,
            by_type,
        } = self;
        by_peer
            .into_iter()
            .map(|((t, u, a), s)| (RouteKey::Peer(t, u, a), s))
            .chain(
                by_uri.into_iter().flat_map(|(t, uris)| {
                    uris.into_iter().map(move |(u, s)| (RouteKey::Uri(t, u), s))
                }),
            )
            .chain(by_type.into_iter().map(|(t, s)| (RouteKey::Type(t), s)))
    }

    /// Every slot.
    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.by_peer
            .values()
            .chain(self.by_uri.values().flat_map(|uris| uris.values()))
            .chain(self.by_type.values())
    }
}

/// Shared values handlers can ask for with [`State`], keyed by type.
#[derive(Clone, Default)]
pub(crate) struct Extensions(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Extensions {
    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }
}

/// Handlers keyed by [`RouteKey`], built with consuming methods and handed to a server or client.
///
/// Registering two handlers of the same kind at one key is a mistake the user sees at once:
/// [`on`](Router::on) and [`once`](Router::once) panic at the second registration (the panic location)
/// with a message naming where the first was made (like axum), and
/// [`try_on`](Router::try_on) / [`try_once`](Router::try_once) return a [`RouteError`]. A one-shot and a
/// persistent handler may share a key: the one-shot handler runs first and is then removed.
///
/// Messages that match no key go to the fallback; a server's default fallback answers
/// NOT_FOUND `not found` with an empty uri, as the Python library does.
#[derive(Clone, Default)]
pub struct Router {
    table: Table,
    fallback: Option<BoxedHandler>,
    state: Extensions,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.len())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a persistent handler.
    ///
    /// # Panics
    ///
    /// If a persistent handler is already registered at `key` (the message names where).
    #[track_caller]
    #[must_use]
    pub fn on<H: Handler<A>, A: 'static>(self, key: impl Into<RouteKey>, handler: H) -> Self {
        match self.try_on(key, handler) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Register a one-shot handler: it runs for the first matching message and is then removed.
    ///
    /// # Panics
    ///
    /// If a one-shot handler is already registered at `key`.
    #[track_caller]
    #[must_use]
    pub fn once<H: Handler<A>, A: 'static>(self, key: impl Into<RouteKey>, handler: H) -> Self {
        match self.try_once(key, handler) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Register a persistent handler with inner plugins: incoming messages for it pass the inner auth
    /// check and inner decryption before it runs, and its replies are sealed with them.
    ///
    /// # Panics
    ///
    /// If a persistent handler is already registered at `key`.
    #[track_caller]
    #[must_use]
    pub fn on_with<H: Handler<A>, A: 'static>(
        self,
        key: impl Into<RouteKey>,
        handler: H,
        inner: Plugins,
    ) -> Self {
        match self.try_insert_with(key.into(), BoxedHandler::new(handler), false, inner) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`once`](Router::once) with inner plugins. The route is taken only by a message that passes
    /// them: a message the inner auth check or decryption refuses is refused as for any route, and
    /// leaves the one-shot handler in place for the message it is waiting for.
    ///
    /// # Panics
    ///
    /// If a one-shot handler is already registered at `key`.
    #[track_caller]
    #[must_use]
    pub fn once_with<H: Handler<A>, A: 'static>(
        self,
        key: impl Into<RouteKey>,
        handler: H,
        inner: Plugins,
    ) -> Self {
        match self.try_insert_with(key.into(), BoxedHandler::new(handler), true, inner) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Register a persistent handler, or say why not.
    #[track_caller]
    pub fn try_on<H: Handler<A>, A: 'static>(
        self,
        key: impl Into<RouteKey>,
        handler: H,
    ) -> Result<Self, RouteError> {
        self.try_insert(key.into(), BoxedHandler::new(handler), false)
    }

    /// Register a one-shot handler, or say why not.
    #[track_caller]
    pub fn try_once<H: Handler<A>, A: 'static>(
        self,
        key: impl Into<RouteKey>,
        handler: H,
    ) -> Result<Self, RouteError> {
        self.try_insert(key.into(), BoxedHandler::new(handler), true)
    }

    /// Register an already erased handler (used by the attribute macros and by services).
    #[track_caller]
    pub fn try_insert(
        self,
        key: RouteKey,
        handler: BoxedHandler,
        once: bool,
    ) -> Result<Self, RouteError> {
        self.try_insert_with(key, handler, once, Plugins::new())
    }

    /// Register an already erased handler with inner plugins.
    #[track_caller]
    pub fn try_insert_with(
        mut self,
        key: RouteKey,
        handler: BoxedHandler,
        once: bool,
        inner: Plugins,
    ) -> Result<Self, RouteError> {
        let route = Entry {
            handler,
            inner,
            at: Location::caller(),
        };
        self.table.insert(key, route, once)?;
        Ok(self)
    }

    /// Register a [`Route`]: one declared with [`#[on]`](crate::on) / [`#[once]`](crate::once) (pass
    /// `echo {}` for the function `echo`; see also [`routes`](Router::routes)), or built with
    /// [`Route::on`] / [`Route::once`].
    ///
    /// # Panics
    ///
    /// If a handler of the same kind is already registered at the route's key (the message names
    /// where the first one was declared).
    #[track_caller]
    #[must_use]
    pub fn route(self, route: impl IntoRoute) -> Self {
        match self.try_route(route) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`route`](Router::route), or say why not.
    pub fn try_route(mut self, route: impl IntoRoute) -> Result<Self, RouteError> {
        let Route {
            key,
            handler,
            once,
            inner,
            at,
        } = route.into_route();
        self.table.insert(key, Entry { handler, inner, at }, once)?;
        Ok(self)
    }

    /// Register several routes, typically collected with [`handlers!`](crate::handlers):
    ///
    /// ```
    /// use netaio::{handlers, on, Message, Router};
    ///
    /// #[on(REQUEST_URI, uri = "ping")]
    /// async fn ping() -> Message {
    ///     Message::respond("ping", "pong")
    /// }
    /// #[netaio::once(OK, uri = "ready")]
    /// async fn ready() {}
    ///
    /// let router = Router::new().routes(handlers![ping, ready]);
    /// assert_eq!(router.len(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If two handlers of the same kind end up at one key.
    #[track_caller]
    #[must_use]
    pub fn routes<I>(self, routes: I) -> Self
    where
        I: IntoIterator,
        I::Item: IntoRoute,
    {
        match self.try_routes(routes) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`routes`](Router::routes), or say why not.
    pub fn try_routes<I>(self, routes: I) -> Result<Self, RouteError>
    where
        I: IntoIterator,
        I::Item: IntoRoute,
    {
        routes
            .into_iter()
            .try_fold(self, |router, r| router.try_route(r))
    }

    /// Mount a [`Service`] (an `impl` block marked [`#[service]`](crate::service)): register every
    /// route of the service and add it, in an `Arc`, as shared state (so other handlers can take
    /// `State<Arc<S>>`).
    ///
    /// ```
    /// use netaio::{service, Message, Router};
    ///
    /// struct Greeter {
    ///     greeting: String,
    /// }
    ///
    /// #[service]
    /// impl Greeter {
    ///     #[on(REQUEST_URI, uri = "hello")]
    ///     async fn hello(&self, msg: Message) -> Message {
    ///         let name = String::from_utf8_lossy(msg.content());
    ///         Message::respond("hello", format!("{}, {name}", self.greeting))
    ///     }
    /// }
    ///
    /// let router = Router::new().mount(Greeter { greeting: "hi".into() });
    /// assert_eq!(router.len(), 1);
    /// ```
    ///
    /// # Panics
    ///
    /// If one of its routes is already registered (with the place it was first declared).
    #[track_caller]
    #[must_use]
    pub fn mount<S: Service>(self, service: S) -> Self {
        self.mount_shared(Arc::new(service))
    }

    /// [`mount`](Router::mount) a service you keep a handle to.
    ///
    /// # Panics
    ///
    /// If one of its routes is already registered.
    #[track_caller]
    #[must_use]
    pub fn mount_shared<S: Service>(self, service: Arc<S>) -> Self {
        match self.try_mount_shared(service) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`mount`](Router::mount), or say why not.
    pub fn try_mount<S: Service>(self, service: S) -> Result<Self, RouteError> {
        self.try_mount_shared(Arc::new(service))
    }

    /// [`mount_shared`](Router::mount_shared), or say why not.
    pub fn try_mount_shared<S: Service>(self, service: Arc<S>) -> Result<Self, RouteError> {
        let routes = Arc::clone(&service).routes();
        Ok(self.try_routes(routes)?.with_state(service))
    }

    /// The handler for messages that match no key.
    #[must_use]
    pub fn fallback<H: Handler<A>, A: 'static>(mut self, handler: H) -> Self {
        self.fallback = Some(BoxedHandler::new(handler));
        self
    }

    /// Add a shared value that handlers receive with the [`State`] extractor (one value per type;
    /// a second value of the same type replaces the first).
    #[must_use]
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.0.insert(TypeId::of::<T>(), Arc::new(state));
        self
    }

    /// Move every route, the state and the fallback (if `self` has none) of `other` into `self`.
    ///
    /// # Panics
    ///
    /// If both routers have a handler of the same kind at one key.
    #[track_caller]
    #[must_use]
    pub fn merge(self, other: Router) -> Self {
        match self.try_merge(other) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`merge`](Router::merge), or say why not.
    pub fn try_merge(mut self, other: Router) -> Result<Self, RouteError> {
        let slots = other.table.into_slots();
        for (key, slot) in slots {
            if let Some(r) = slot.persistent {
                self.table.insert(key.clone(), r, false)?;
            }
            if let Some(r) = slot.once {
                self.table.insert(key, r, true)?;
            }
        }
        self.state.0.extend(other.state.0);
        if self.fallback.is_none() {
            self.fallback = other.fallback;
        }
        Ok(self)
    }

    /// Number of registered handlers (persistent and one-shot).
    pub fn len(&self) -> usize {
        self.table
            .slots()
            .map(|s| usize::from(s.persistent.is_some()) + usize::from(s.once.is_some()))
            .sum()
    }

    /// True when no handler is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The handler a node would run for a message of type `t` and uri `uri` from `peer`: the most
    /// specific key first, a one-shot handler before the persistent one at the same key (without
    /// taking it), then the fallback; `None` when nothing matches (a node then answers
    /// NOT_FOUND). Inner plugins are not applied. Handy to unit-test a router without a socket.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netaio::router::{Context, Request, Router};
    /// use netaio::{Message, MessageType};
    ///
    /// # tokio_test_block_on(async {
    /// let router = Router::new().on((MessageType::REQUEST_URI, "echo"), |m: Message| async move {
    ///     Message::respond(m.uri().clone(), m.content().clone())
    /// });
    /// let peer = "127.0.0.1:9000".parse().unwrap();
    /// let msg = Message::new(MessageType::REQUEST_URI, "echo", "hi");
    /// let handler = router.handler_for(msg.message_type, msg.uri(), peer).unwrap();
    /// let reply = handler.call(Request { message: msg, ctx: Context::detached(peer) }).await;
    /// assert_eq!(reply.unwrap().content().as_ref(), b"hi");
    /// assert!(router.handler_for(MessageType::OK, &Bytes::from_static(b"echo"), peer).is_none());
    /// # });
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub fn handler_for(
        &self,
        t: MessageType,
        uri: &Bytes,
        peer: SocketAddr,
    ) -> Option<&BoxedHandler> {
        match self.table.find(t, uri, peer) {
            Some((_, slot)) => slot
                .once
                .as_ref()
                .or(slot.persistent.as_ref())
                .map(|e| &e.handler),
            None => self.fallback.as_ref(),
        }
    }

    pub(crate) fn into_shared(self) -> Arc<Routes> {
        let once_count = self.table.slots().filter(|s| s.once.is_some()).count();
        Arc::new(Routes {
            table: RwLock::new(self.table),
            once_count: AtomicUsize::new(once_count),
            fallback: self.fallback,
            state: Arc::new(self.state),
        })
    }
}

/// The live routing table of a running node: shared by its connections, changeable at run time.
pub(crate) struct Routes {
    table: RwLock<Table>,
    once_count: AtomicUsize,
    fallback: Option<BoxedHandler>,
    state: Arc<Extensions>,
}

impl Routes {
    pub(crate) fn state(&self) -> &Arc<Extensions> {
        &self.state
    }

    /// The handler for a message, most specific key first, else the router's fallback.
    ///
    /// A one-shot handler at the matching key comes before the persistent one; it comes with a
    /// [`OnceClaim`] that the caller settles ([`OnceClaim::settle`]) once the route's inner plugins
    /// have run: a message that passed takes the route, a refused message leaves it for the
    /// message it is waiting for. The claim holds the table's write lock, taken only while
    /// one-shot routes exist.
    pub(crate) fn select(&self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> Matched<'_> {
        if self.once_count.load(Ordering::Acquire) == 0 {
            let table = self.table.read().unwrap_or_else(|e| e.into_inner());
            match table.find(t, uri, peer) {
                // A one-shot route registered since the count was read: take the write path.
                Some((_, slot)) if slot.once.is_some() => {}
                found => {
                    return match found.and_then(|(_, s)| s.persistent.as_ref()) {
                        Some(route) => Matched::from(route),
                        None => self.fallback_matched(),
                    };
                }
            }
        }
        let table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let Some((level, slot)) = table.find(t, uri, peer) else {
            return self.fallback_matched();
        };
        let Some(once) = slot.once.as_ref() else {
            return match slot.persistent.as_ref() {
                Some(route) => Matched::from(route),
                None => self.fallback_matched(),
            };
        };
        let mut matched = Matched::from(once);
        matched.once = Some(OnceClaim {
            key: level.key(t, uri, peer),
            table,
            once_count: &self.once_count,
        });
        matched
    }

    fn fallback_matched(&self) -> Matched<'_> {
        Matched {
            handler: self.fallback.clone(),
            inner: Plugins::new(),
            once: None,
        }
    }

    #[track_caller]
    pub(crate) fn insert(
        &self,
        key: RouteKey,
        handler: BoxedHandler,
        once: bool,
        inner: Plugins,
    ) -> Result<(), RouteError> {
        let route = Entry {
            handler,
            inner,
            at: Location::caller(),
        };
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        table.insert(key, route, once)?;
        if once {
            self.once_count.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    pub(crate) fn remove(&self, key: &RouteKey, once: bool) -> bool {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let removed = table.remove(key, once);
        if removed && once {
            self.once_count.fetch_sub(1, Ordering::AcqRel);
        }
        removed
    }
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A handler that answers OK with its own name, so a test can see which one ran.
    fn tagged(
        name: &'static str,
    ) -> impl Fn() -> std::future::Ready<Message> + Clone + Send + Sync + 'static {
        move || std::future::ready(Message::ok("", name))
    }

    /// Select like a node does and run the handler; the reply's content, or `None` when nothing
    /// matched.
    async fn dispatch(
        routes: &Routes,
        t: MessageType,
        uri: &str,
        peer: SocketAddr,
    ) -> Option<String> {
        let uri = Bytes::copy_from_slice(uri.as_bytes());
        let matched = routes.select(t, &uri, peer);
        OnceClaim::settle(matched.once, true);
        let handler = matched.handler?;
        let req = Request {
            message: Message::new(t, uri, ""),
            ctx: Context::detached(peer),
        };
        let reply = handler.call(req).await.expect("the test handlers reply");
        Some(String::from_utf8(reply.content().to_vec()).unwrap())
    }

    async fn call(handler: &BoxedHandler, message: Message, ctx: Context) -> Option<Message> {
        handler.call(Request { message, ctx }).await
    }

    const REQ: MessageType = MessageType::REQUEST_URI;

    #[tokio::test]
    async fn most_specific_key_wins() {
        let routes = Router::new()
            .on(REQ, tagged("type"))
            .on((REQ, "x"), tagged("type+uri"))
            .on((REQ, "x", addr(1)), tagged("type+uri+peer"))
            .into_shared();
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("type+uri+peer")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(2)).await.as_deref(),
            Some("type+uri")
        );
        assert_eq!(
            dispatch(&routes, REQ, "y", addr(1)).await.as_deref(),
            Some("type")
        );
        assert_eq!(
            dispatch(&routes, REQ, "", addr(1)).await.as_deref(),
            Some("type")
        );
        // Another type matches none of them, even with the same uri and peer.
        assert_eq!(
            dispatch(&routes, MessageType::CREATE_URI, "x", addr(1)).await,
            None
        );
        // Uris compare as exact bytes.
        assert_eq!(
            dispatch(&routes, REQ, "X", addr(2)).await.as_deref(),
            Some("type")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x ", addr(2)).await.as_deref(),
            Some("type")
        );
    }

    #[tokio::test]
    async fn many_uris_of_many_lengths_each_find_their_own_handler() {
        // Uris that differ only past the first 8 bytes, only in length, or only in type.
        let uris: Vec<String> = (0..300)
            .map(|i| match i % 3 {
                0 => format!("{i}"),
                1 => format!("common/prefix/{i}"),
                _ => "z".repeat(i / 3 + 1),
            })
            .collect();
        let mut router = Router::new();
        for (i, u) in uris.iter().enumerate() {
            let name: &'static str = Box::leak(format!("h{i}").into_boxed_str());
            router = router
                .on((REQ, u.clone()), tagged(name))
                .on((MessageType::CREATE_URI, u.clone()), tagged("create"));
        }
        assert_eq!(router.len(), 600);
        let routes = router.into_shared();
        for (i, u) in uris.iter().enumerate() {
            assert_eq!(
                dispatch(&routes, REQ, u, addr(1)).await,
                Some(format!("h{i}")),
                "{u}"
            );
        }
        assert_eq!(
            dispatch(&routes, REQ, "common/prefix/", addr(1)).await,
            None
        );
        assert_eq!(dispatch(&routes, REQ, "zz z", addr(1)).await, None);
        // Removing every route of one type leaves the other type's routes.
        for u in &uris {
            assert!(routes.remove(&(REQ, u.clone()).into(), false));
            assert!(!routes.remove(&(REQ, u.clone()).into(), false));
        }
        assert_eq!(dispatch(&routes, REQ, "3", addr(1)).await, None);
        assert_eq!(
            dispatch(&routes, MessageType::CREATE_URI, "3", addr(1))
                .await
                .as_deref(),
            Some("create")
        );
    }

    #[tokio::test]
    async fn each_key_level_matches_alone() {
        let peer_only = Router::new()
            .on((REQ, "x", addr(1)), tagged("peer"))
            .into_shared();
        assert_eq!(
            dispatch(&peer_only, REQ, "x", addr(1)).await.as_deref(),
            Some("peer")
        );
        assert_eq!(dispatch(&peer_only, REQ, "x", addr(2)).await, None);
        assert_eq!(dispatch(&peer_only, REQ, "y", addr(1)).await, None);

        let uri_only = Router::new().on((REQ, b"x"), tagged("uri")).into_shared();
        assert_eq!(
            dispatch(&uri_only, REQ, "x", addr(1)).await.as_deref(),
            Some("uri")
        );
        assert_eq!(dispatch(&uri_only, REQ, "y", addr(1)).await, None);

        let type_only = Router::new().on(REQ, tagged("type")).into_shared();
        assert_eq!(
            dispatch(&type_only, REQ, "anything", addr(1))
                .await
                .as_deref(),
            Some("type")
        );
        assert_eq!(
            dispatch(&type_only, MessageType::OK, "anything", addr(1)).await,
            None
        );

        let empty = Router::new().into_shared();
        assert_eq!(dispatch(&empty, REQ, "x", addr(1)).await, None);
    }

    #[tokio::test]
    async fn python_checked_one_shot_scenario() {
        // Spec section 4: persistent (REQUEST_URI, "a"), persistent REQUEST_URI, one-shot
        // REQUEST_URI; requests for a, b, b, a.
        let routes = Router::new()
            .on((REQ, "a"), tagged("type+uri"))
            .on(REQ, tagged("type-only persistent"))
            .once(REQ, tagged("one-shot"))
            .into_shared();
        let mut ran = Vec::new();
        for uri in ["a", "b", "b", "a"] {
            ran.push(dispatch(&routes, REQ, uri, addr(1)).await.unwrap());
        }
        assert_eq!(
            ran,
            ["type+uri", "one-shot", "type-only persistent", "type+uri"]
        );
    }

    #[test]
    fn one_shot_is_taken_only_when_its_checks_pass() {
        let routes = Router::new()
            .once((REQ, "x"), tagged("once"))
            .on(REQ, tagged("type"))
            .into_shared();
        let uri = Bytes::from_static(b"x");
        let run = |h: BoxedHandler| {
            let msg = Message::new(REQ, "x", "");
            let reply = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(call(&h, msg, Context::detached(addr(1))));
            String::from_utf8(reply.unwrap().content().to_vec()).unwrap()
        };
        // Selected for messages its checks refuse: refused, and the route stays.
        for _ in 0..3 {
            let selected = routes.select(REQ, &uri, addr(1));
            assert_eq!(run(selected.handler.clone().unwrap()), "once");
            assert!(selected.once.is_some());
            OnceClaim::settle(selected.once, false);
        }
        assert_eq!(routes.once_count.load(Ordering::Acquire), 1);
        // The message it waits for takes it; the next one goes to the persistent route.
        let taken = routes.select(REQ, &uri, addr(1));
        OnceClaim::settle(taken.once, true);
        assert_eq!(run(taken.handler.unwrap()), "once");
        assert_eq!(routes.once_count.load(Ordering::Acquire), 0);
        let next = routes.select(REQ, &uri, addr(1));
        assert!(next.once.is_none());
        assert_eq!(run(next.handler.unwrap()), "type");
    }

    #[tokio::test]
    async fn one_shot_runs_once_then_the_key_is_free() {
        let routes = Router::new()
            .once((REQ, "x"), tagged("once"))
            .on(REQ, tagged("type"))
            .into_shared();
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("once")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("type")
        );

        let alone = Router::new().once(REQ, tagged("once")).into_shared();
        assert_eq!(
            dispatch(&alone, REQ, "x", addr(1)).await.as_deref(),
            Some("once")
        );
        assert_eq!(dispatch(&alone, REQ, "x", addr(1)).await, None);

        // Registered at run time, a one-shot handler is also taken once.
        alone
            .insert(
                REQ.into(),
                BoxedHandler::new(tagged("late")),
                true,
                Plugins::new(),
            )
            .unwrap();
        assert_eq!(
            dispatch(&alone, REQ, "x", addr(1)).await.as_deref(),
            Some("late")
        );
        assert_eq!(dispatch(&alone, REQ, "x", addr(1)).await, None);
    }

    #[tokio::test]
    async fn persistent_and_one_shot_may_share_a_key() {
        let router = Router::new()
            .on((REQ, "x"), tagged("persistent"))
            .try_once((REQ, "x"), tagged("once"))
            .expect("a one-shot next to a persistent handler is allowed");
        assert_eq!(router.len(), 2);
        let routes = router.into_shared();
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("once")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("persistent")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("persistent")
        );
    }

    #[test]
    fn duplicate_registration_is_an_error_naming_the_first_place() {
        let first_line = line!() + 1;
        let router = Router::new().try_on((REQ, "x"), tagged("a")).unwrap();
        let err = router.try_on((REQ, "x"), tagged("b")).unwrap_err();
        let RouteError::Duplicate { key, kind, first } = &err;
        assert_eq!(*key, RouteKey::Uri(REQ, Bytes::from_static(b"x")));
        assert_eq!(*kind, "persistent");
        assert_eq!(first.file(), file!());
        assert_eq!(first.line(), first_line);
        let text = err.to_string();
        assert!(
            text.contains(&format!("{}:{first_line}", file!())),
            "{text}"
        );

        let first_line = line!() + 1;
        let router = Router::new().try_once(REQ, tagged("a")).unwrap();
        let err = router.try_once(REQ, tagged("b")).unwrap_err();
        let RouteError::Duplicate { kind, first, .. } = &err;
        assert_eq!((*kind, first.line()), ("one-shot", first_line));

        let peer_key = (REQ, "x", addr(1));
        let router = Router::new().on(peer_key, tagged("a"));
        assert!(router.try_on(peer_key, tagged("b")).is_err());
    }

    #[test]
    #[should_panic(
        expected = "a persistent handler is already registered for (REQUEST_URI, \"x\") (first registered at netaio/src/router/mod.rs:"
    )]
    fn on_panics_on_duplicate() {
        let _ = Router::new()
            .on((REQ, "x"), tagged("a"))
            .on((REQ, "x"), tagged("b"));
    }

    #[test]
    #[should_panic(expected = "a one-shot handler is already registered for (OK)")]
    fn once_panics_on_duplicate() {
        let _ = Router::new()
            .once(MessageType::OK, tagged("a"))
            .once(MessageType::OK, tagged("b"));
    }

    #[test]
    fn on_panic_names_the_first_call_site() {
        let first_line = line!() + 1;
        let router = Router::new().on((REQ, "x"), tagged("a"));
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            router.on((REQ, "x"), tagged("b"))
        }))
        .expect_err("duplicate must panic");
        let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            text.contains(&format!("{}:{first_line}:", file!())),
            "{text}"
        );
    }

    #[tokio::test]
    async fn merge_moves_routes_and_detects_conflicts() {
        let a = Router::new().on((REQ, "a"), tagged("a"));
        let b = Router::new()
            .on((REQ, "b"), tagged("b"))
            .once((REQ, "a"), tagged("a-once"));
        let merged = a.merge(b);
        assert_eq!(merged.len(), 3);
        let routes = merged.into_shared();
        assert_eq!(
            dispatch(&routes, REQ, "a", addr(1)).await.as_deref(),
            Some("a-once")
        );
        assert_eq!(
            dispatch(&routes, REQ, "a", addr(1)).await.as_deref(),
            Some("a")
        );
        assert_eq!(
            dispatch(&routes, REQ, "b", addr(1)).await.as_deref(),
            Some("b")
        );

        let a = Router::new().on((REQ, "a"), tagged("a"));
        let b = Router::new().on((REQ, "a"), tagged("other"));
        assert!(matches!(
            a.try_merge(b),
            Err(RouteError::Duplicate {
                kind: "persistent",
                ..
            })
        ));
        let a = Router::new().once(REQ, tagged("a"));
        let b = Router::new().once(REQ, tagged("other"));
        assert!(matches!(
            a.try_merge(b),
            Err(RouteError::Duplicate {
                kind: "one-shot",
                ..
            })
        ));
    }

    #[test]
    #[should_panic(expected = "already registered")]
    fn merge_panics_on_conflict() {
        let _ = Router::new()
            .on(REQ, tagged("a"))
            .merge(Router::new().on(REQ, tagged("b")));
    }

    #[tokio::test]
    async fn fallback_and_merge_keep_the_first_fallback() {
        let peer = addr(1);
        // What a message no route matches gets.
        let fallback =
            |routes: &Routes| routes.select(MessageType::OK, &Bytes::new(), peer).handler;
        let no_fallback = Router::new().into_shared();
        assert!(fallback(&no_fallback).is_none());

        let routes = Router::new().fallback(tagged("fallback")).into_shared();
        let reply = call(
            &fallback(&routes).unwrap(),
            Message::ok("", ""),
            Context::detached(peer),
        )
        .await
        .unwrap();
        assert_eq!(reply.content().as_ref(), b"fallback");

        let mine = Router::new().fallback(tagged("mine"));
        let theirs = Router::new().fallback(tagged("theirs"));
        let routes = mine.merge(theirs).into_shared();
        let reply = call(
            &fallback(&routes).unwrap(),
            Message::ok("", ""),
            Context::detached(peer),
        )
        .await
        .unwrap();
        assert_eq!(reply.content().as_ref(), b"mine");

        let routes = Router::new()
            .merge(Router::new().fallback(tagged("theirs")))
            .into_shared();
        let reply = call(
            &fallback(&routes).unwrap(),
            Message::ok("", ""),
            Context::detached(peer),
        )
        .await
        .unwrap();
        assert_eq!(reply.content().as_ref(), b"theirs");
    }

    #[tokio::test]
    async fn state_extractor() {
        async fn show(State(n): State<u32>, State(s): State<&'static str>) -> Message {
            Message::ok(s, n.to_string())
        }
        let routes = Router::new()
            .on(REQ, show)
            .with_state(1u32)
            .with_state(42u32) // replaces the first value of the same type
            .merge(Router::new().with_state("from merge"))
            .into_shared();
        let handler = routes.select(REQ, &Bytes::new(), addr(1)).handler.unwrap();
        let ctx = Context::detached_with_state(addr(1), routes.state().clone());
        let reply = call(&handler, Message::new(REQ, "", ""), ctx)
            .await
            .unwrap();
        assert_eq!(reply, Message::ok("from merge", "42"));

        // A context without the state: the handler does not run, ERROR "missing state" is sent.
        let reply = call(
            &handler,
            Message::new(REQ, "", ""),
            Context::detached(addr(1)),
        )
        .await
        .unwrap();
        assert_eq!(
            reply,
            Message::new(MessageType::ERROR, "ERROR", "missing state")
        );
    }

    #[tokio::test]
    async fn postcard_extractor() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Put {
            key: String,
            value: u32,
        }
        let handler = BoxedHandler::new(|Postcard(put): Postcard<Put>| async move {
            Message::ok(put.key, put.value.to_string())
        });
        let content = postcard::to_allocvec(&Put {
            key: "k".into(),
            value: 7,
        })
        .unwrap();
        let reply = call(
            &handler,
            Message::new(REQ, "put", content),
            Context::detached(addr(1)),
        )
        .await
        .unwrap();
        assert_eq!(reply, Message::ok("k", "7"));

        // Truncated content: rejected with ERROR, uri of the request, handler not run.
        let reply = call(
            &handler,
            Message::new(REQ, "put", &b"\x05ab"[..]),
            Context::detached(addr(1)),
        )
        .await
        .unwrap();
        assert_eq!(reply.message_type, MessageType::ERROR);
        assert_eq!(reply.uri().as_ref(), b"put");
        assert!(
            reply.content().starts_with(b"invalid content: "),
            "{reply:?}"
        );
    }

    #[tokio::test]
    async fn the_last_argument_is_extracted_from_the_request_by_value() {
        /// Says how it was extracted.
        struct How(&'static str);
        impl FromRequest for How {
            fn from_request(_: &Request) -> Result<Self, Rejection> {
                Ok(How("ref"))
            }
            fn from_request_owned(_: Request) -> Result<Self, Rejection> {
                Ok(How("owned"))
            }
        }
        let peer = addr(1);
        let one = BoxedHandler::new(|a: How| async move { Message::ok("", a.0) });
        let three = BoxedHandler::new(|a: How, b: How, c: How| async move {
            Message::ok("", format!("{},{},{}", a.0, b.0, c.0))
        });
        let msg = || Message::new(REQ, "x", "");
        let reply = call(&one, msg(), Context::detached(peer)).await.unwrap();
        assert_eq!(reply.content().as_ref(), b"owned");
        let reply = call(&three, msg(), Context::detached(peer)).await.unwrap();
        assert_eq!(reply.content().as_ref(), b"ref,ref,owned");
        // A final Message argument is the request's message itself (its auth fields included).
        let echo = BoxedHandler::new(|t: MessageType, m: Message| async move {
            Message::ok(t.to_string(), m.auth.get("k").cloned().unwrap_or_default())
        });
        let mut m = msg();
        m.auth.insert("k", "v");
        let reply = call(&echo, m, Context::detached(peer)).await.unwrap();
        assert_eq!(reply.content().as_ref(), b"v");
    }

    #[tokio::test]
    async fn other_extractors() {
        let handler = BoxedHandler::new(
            |t: MessageType,
             PeerAddr(peer): PeerAddr,
             Uri(uri): Uri,
             Content(content): Content,
             ctx: Context| async move {
                assert_eq!(ctx.peer_addr(), peer);
                Message::ok(uri, format!("{t:?} {peer} {}", content.len()))
            },
        );
        let reply = call(
            &handler,
            Message::new(REQ, "u", "abc"),
            Context::detached(addr(9)),
        )
        .await
        .unwrap();
        assert_eq!(reply, Message::ok("u", "REQUEST_URI 127.0.0.1:9 3"));
    }

    #[tokio::test]
    async fn into_reply_variants() {
        let msg = Message::ok("u", "c");
        assert_eq!(().into_reply(), None);
        assert_eq!(msg.clone().into_reply(), Some(msg.clone()));
        assert_eq!(Some(msg.clone()).into_reply(), Some(msg.clone()));
        assert_eq!(None::<Message>.into_reply(), None);
        assert_eq!(Some(()).into_reply(), None);
        assert_eq!(Ok::<_, String>(msg.clone()).into_reply(), Some(msg.clone()));
        assert_eq!(Ok::<(), String>(()).into_reply(), None);
        assert_eq!(
            Err::<Message, String>("auth failed".into()).into_reply(),
            Some(Message::new(
                MessageType::AUTH_ERROR,
                "ERROR",
                "auth failed"
            ))
        );
        assert_eq!(
            Err::<(), String>("boom".into()).into_reply(),
            Some(Message::new(MessageType::ERROR, "ERROR", "boom"))
        );
        assert_eq!(
            Err::<(), Message>(Message::not_permitted()).into_reply(),
            Some(Message::not_permitted())
        );
        assert_eq!(Ok::<Option<Message>, Message>(None).into_reply(), None);

        // Through a handler: the return value becomes the reply.
        let handler = BoxedHandler::new(|msg: Message| async move {
            if msg.uri().as_ref() == b"ok" {
                Ok(Some(Message::ok("ok", "")))
            } else if msg.uri().as_ref() == b"none" {
                Ok(None)
            } else {
                Err(format!("{:?} not found", msg.uri()))
            }
        });
        let ctx = Context::detached(addr(1));
        let run = |uri: &'static str| call(&handler, Message::new(REQ, uri, ""), ctx.clone());
        assert_eq!(run("ok").await, Some(Message::ok("ok", "")));
        assert_eq!(run("none").await, None);
        assert_eq!(
            run("zz").await.unwrap().message_type,
            MessageType::NOT_FOUND
        );
    }

    #[test]
    fn route_keys_from_tuples() {
        let a = addr(5);
        assert_eq!(RouteKey::from(REQ), RouteKey::Type(REQ));
        let uri = RouteKey::Uri(REQ, Bytes::from_static(b"u"));
        assert_eq!(RouteKey::from((REQ, "u")), uri);
        assert_eq!(RouteKey::from((REQ, b"u")), uri);
        assert_eq!(RouteKey::from((REQ, &b"u"[..])), uri);
        assert_eq!(RouteKey::from((REQ, String::from("u"))), uri);
        assert_eq!(RouteKey::from((REQ, vec![b'u'])), uri);
        assert_eq!(RouteKey::from((REQ, Bytes::from_static(b"u"))), uri);
        let peer = RouteKey::Peer(REQ, Bytes::from_static(b"u"), a);
        assert_eq!(RouteKey::from((REQ, "u", a)), peer);
        assert_eq!(RouteKey::from((REQ, b"u", a)), peer);
        assert_eq!(peer.message_type(), REQ);
    }

    #[test]
    fn len_counts_both_kinds() {
        let r = Router::new();
        assert!(r.is_empty());
        let r = r
            .on(REQ, tagged("a"))
            .once(REQ, tagged("b"))
            .on((REQ, "x"), tagged("c"))
            .once((REQ, "x", addr(1)), tagged("d"));
        assert_eq!(r.len(), 4);
        assert!(!r.is_empty());
    }
}
