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
mod route;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

pub(crate) use context::Link;
pub use context::{Context, Request};
pub use extract::{Content, FromRequest, PeerAddr, Postcard, Rejection, State, Uri};
pub use handler::{BoxFuture, BoxedHandler, Handler, IntoErrorReply, IntoReply};
pub use route::{IntoRoute, Route, Service};

use crate::MessageType;
use crate::message::HexPreview;

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
    at: &'static Location<'static>,
}

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

#[derive(Clone, Default)]
struct Table {
    by_peer: HashMap<(MessageType, Bytes, SocketAddr), Slot>,
    by_uri: HashMap<(MessageType, Bytes), Slot>,
    by_type: HashMap<MessageType, Slot>,
}

impl Table {
    fn slot_mut(&mut self, key: RouteKey) -> &mut Slot {
        match key {
            RouteKey::Type(t) => self.by_type.entry(t).or_default(),
            RouteKey::Uri(t, u) => self.by_uri.entry((t, u)).or_default(),
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
        fn take<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Slot>, k: &K, once: bool) -> bool {
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
            RouteKey::Uri(t, u) => take(&mut self.by_uri, &(*t, u.clone()), once),
            RouteKey::Peer(t, u, a) => take(&mut self.by_peer, &(*t, u.clone(), *a), once),
        }
    }

    /// The slot that matches first, with its key: `(type, uri, peer)`, `(type, uri)`, `type`.
    fn find(&self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> Option<(RouteKey, &Slot)> {
        if !self.by_peer.is_empty() {
            let k = (t, uri.clone(), peer);
            if let Some(s) = self.by_peer.get(&k) {
                return Some((RouteKey::Peer(k.0, k.1, k.2), s));
            }
        }
        if !self.by_uri.is_empty() {
            let k = (t, uri.clone());
            if let Some(s) = self.by_uri.get(&k) {
                return Some((RouteKey::Uri(k.0, k.1), s));
            }
        }
        self.by_type.get(&t).map(|s| (RouteKey::Type(t), s))
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
/// [`on`](Router::on) and [`once`](Router::once) panic naming both call sites (like axum), and
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
    /// If a persistent handler is already registered at `key` (the message names both places).
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
        mut self,
        key: RouteKey,
        handler: BoxedHandler,
        once: bool,
    ) -> Result<Self, RouteError> {
        let route = Entry {
            handler,
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
            at,
        } = route.into_route();
        self.table.insert(key, Entry { handler, at }, once)?;
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
        let Table {
            by_peer,
            by_uri,
            by_type,
        } = other.table;
        let slots = by_peer
            .into_iter()
            .map(|((t, u, a), s)| (RouteKey::Peer(t, u, a), s))
            .chain(
                by_uri
                    .into_iter()
                    .map(|((t, u), s)| (RouteKey::Uri(t, u), s)),
            )
            .chain(by_type.into_iter().map(|(t, s)| (RouteKey::Type(t), s)));
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
        let count = |s: &Slot| usize::from(s.persistent.is_some()) + usize::from(s.once.is_some());
        self.table.by_peer.values().map(count).sum::<usize>()
            + self.table.by_uri.values().map(count).sum::<usize>()
            + self.table.by_type.values().map(count).sum::<usize>()
    }

    /// True when no handler is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn into_shared(self) -> Arc<Routes> {
        let once_count = self
            .table
            .by_peer
            .values()
            .filter(|s| s.once.is_some())
            .count()
            + self
                .table
                .by_uri
                .values()
                .filter(|s| s.once.is_some())
                .count()
            + self
                .table
                .by_type
                .values()
                .filter(|s| s.once.is_some())
                .count();
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

    pub(crate) fn fallback(&self) -> Option<&BoxedHandler> {
        self.fallback.as_ref()
    }

    /// The handler for a message, most specific key first; a one-shot handler at the matching key
    /// is taken (removed) before the persistent one. `None` when nothing matches (the caller
    /// decides what the fallback is).
    pub(crate) fn select(
        &self,
        t: MessageType,
        uri: &Bytes,
        peer: SocketAddr,
    ) -> Option<BoxedHandler> {
        if self.once_count.load(Ordering::Acquire) == 0 {
            let table = self.table.read().unwrap_or_else(|e| e.into_inner());
            return table
                .find(t, uri, peer)
                .and_then(|(_, s)| s.persistent.as_ref())
                .map(|r| r.handler.clone());
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let (key, slot) = table.find(t, uri, peer)?;
        if slot.once.is_none() {
            return slot.persistent.as_ref().map(|r| r.handler.clone());
        }
        let slot = table.slot_mut(key.clone());
        let route = slot.once.take();
        if slot.is_empty() {
            table.remove(&key, false);
        }
        self.once_count.fetch_sub(1, Ordering::AcqRel);
        route.map(|r| r.handler)
    }

    #[track_caller]
    pub(crate) fn insert(
        &self,
        key: RouteKey,
        handler: BoxedHandler,
        once: bool,
    ) -> Result<(), RouteError> {
        let route = Entry {
            handler,
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
