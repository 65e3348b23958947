//! [`Router`]: handlers keyed by [`RouteKey`], built with consuming methods and handed to a server
//! or client.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::live::Routes;
use super::state::{Extensions, MissingStateError};
use super::table::{Entry, Table};
use super::{BoxedHandler, Handler, IntoRoute, IntoService, Route, RouteError, RouteKey, Service};
use crate::MessageType;

/// Handlers keyed by [`RouteKey`], built with consuming methods and handed to a server or client.
///
/// ```
/// use netaio::router::{PeerAddr, State};
/// use netaio::{Message, MessageType, Router};
///
/// async fn greet(msg: Message, PeerAddr(from): PeerAddr, State(name): State<&'static str>) -> Message {
///     Message::respond(msg.uri().clone(), format!("{name} greets {from}"))
/// }
/// let router = Router::new()
///     .on((MessageType::REQUEST_URI, "greet"), greet) // by type and uri
///     .on(MessageType::PUBLISH_URI, |_: Message| async {}) // by type: any uri, no reply
///     .with_state("server one");
/// assert_eq!(router.len(), 2);
/// assert!(router.check_state().is_ok());
/// ```
///
/// Registering two handlers of the same kind at one key is a mistake the user sees at once:
/// [`on`](Router::on) and [`once`](Router::once) panic at the second registration (the panic location)
/// with a message naming where the first was made (like axum), and
/// [`try_route`](Router::try_route) (and the other `try_` methods) return a [`RouteError`]. A one-shot and a
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

    /// Register a persistent handler (a shorthand for `route(Route::on(key, handler))`).
    ///
    /// ```
    /// use netaio::{Message, MessageType, Router};
    ///
    /// let router = Router::new().on((MessageType::REQUEST_URI, "ping"), || async {
    ///     Message::respond("ping", "pong")
    /// });
    /// assert_eq!(router.len(), 1);
    /// ```
    ///
    /// # Panics
    ///
    /// If a persistent handler is already registered at `key` (the message names where).
    #[track_caller]
    #[must_use]
    pub fn on<H: Handler<A>, A: 'static>(self, key: impl Into<RouteKey>, handler: H) -> Self {
        self.route(Route::on(key, handler))
    }

    /// Register a one-shot handler: it runs for the first matching message and is then removed (a
    /// shorthand for `route(Route::once(key, handler))`).
    ///
    /// ```
    /// use netaio::{MessageType, Router};
    ///
    /// let router = Router::new().once((MessageType::OK, "ready"), || async {});
    /// assert_eq!(router.len(), 1);
    /// ```
    ///
    /// # Panics
    ///
    /// If a one-shot handler is already registered at `key`.
    #[track_caller]
    #[must_use]
    pub fn once<H: Handler<A>, A: 'static>(self, key: impl Into<RouteKey>, handler: H) -> Self {
        self.route(Route::once(key, handler))
    }

    /// Register a [`Route`]: one declared with [`#[on]`](crate::on) / [`#[once]`](crate::once) (pass
    /// `echo {}` for the function `echo`; see also [`routes`](Router::routes)), or built with
    /// [`Route::on`] / [`Route::once`], with inner plugins if it has them
    /// ([`Route::with_inner`]): incoming messages for such a route pass the inner auth check and
    /// decryption before it runs, and its replies are sealed with them.
    ///
    /// ```
    /// use netaio::plugin::{HmacAuth, Plugins};
    /// use netaio::router::{Route, Router};
    /// use netaio::{Message, MessageType};
    ///
    /// let admin = Route::on((MessageType::REQUEST_URI, "admin"), |m: Message| async move {
    ///     Message::respond(m.uri().clone(), "done")
    /// })
    /// .with_inner(Plugins::new().auth(HmacAuth::new(b"admin secret")));
    /// let router = Router::new().route(admin);
    /// assert_eq!(router.len(), 1);
    /// ```
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

    /// [`route`](Router::route), or say why not: [`RouteError::Duplicate`] names the key and where
    /// the handler already there was declared.
    ///
    /// ```
    /// use netaio::router::{Route, RouteError, Router};
    /// use netaio::MessageType;
    ///
    /// let router = Router::new().on(MessageType::OK, || async {});
    /// let err = router.try_route(Route::on(MessageType::OK, || async {})).unwrap_err();
    /// assert!(matches!(err, RouteError::Duplicate { kind: "persistent", .. }));
    /// ```
    pub fn try_route(mut self, route: impl IntoRoute) -> Result<Self, RouteError> {
        let Route {
            key,
            handler,
            once,
            inner,
            at,
        } = route.into_route();
        self.table
            .insert(key, Entry::new(handler, inner, at), once)?;
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

    /// [`routes`](Router::routes), or say why not (the first duplicate).
    ///
    /// ```
    /// use netaio::router::{Route, Router};
    /// use netaio::MessageType;
    ///
    /// let twice = [Route::on(MessageType::OK, || async {}), Route::on(MessageType::OK, || async {})];
    /// assert!(Router::new().try_routes(twice).is_err());
    /// ```
    pub fn try_routes<I>(self, routes: I) -> Result<Self, RouteError>
    where
        I: IntoIterator,
        I::Item: IntoRoute,
    {
        routes
            .into_iter()
            .try_fold(self, |router, r| router.try_route(r))
    }

    /// Mount a [`Service`] (an `impl` block marked [`#[service]`](crate::service)), given by value or
    /// as an `Arc` you keep a handle to: register every route of the service and add the `Arc` as
    /// shared state (so other handlers can take `State<Arc<S>>`).
    ///
    /// ```
    /// use std::sync::Arc;
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
    ///
    /// // Keep a handle to the service's state.
    /// let greeter = Arc::new(Greeter { greeting: "hello".into() });
    /// let router = Router::new().mount(Arc::clone(&greeter));
    /// assert_eq!(router.len(), 1);
    /// ```
    ///
    /// # Panics
    ///
    /// If one of its routes is already registered (with the place it was first declared).
    #[track_caller]
    #[must_use]
    pub fn mount(self, service: impl IntoService) -> Self {
        match self.try_mount(service) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`mount`](Router::mount), or say why not (the first duplicate route).
    ///
    /// ```
    /// use netaio::{service, Message, Router};
    ///
    /// struct Ping;
    ///
    /// #[service]
    /// impl Ping {
    ///     #[on(REQUEST_URI, uri = "ping")]
    ///     async fn ping(&self) -> Message {
    ///         Message::respond("ping", "pong")
    ///     }
    /// }
    ///
    /// let router = Router::new().mount(Ping);
    /// assert!(router.try_mount(Ping).is_err());
    /// ```
    pub fn try_mount(self, service: impl IntoService) -> Result<Self, RouteError> {
        let service = service.into_service();
        let routes = Arc::clone(&service).routes();
        Ok(self.try_routes(routes)?.with_state(service))
    }

    /// The handler for messages that match no key.
    #[must_use]
    pub fn fallback<H: Handler<A>, A: 'static>(mut self, handler: H) -> Self {
        self.fallback = Some(BoxedHandler::new(handler));
        self
    }

    /// Add a shared value that handlers receive with the [`State`](super::State) extractor (one value per type;
    /// a second value of the same type replaces the first).
    #[must_use]
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
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
        self.state.extend(other.state);
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

    /// Check that every handler's [`State<T>`](super::State) was added with
    /// [`with_state`](Self::with_state). The nodes do it when they are bound
    /// ([`BindError::MissingState`](crate::BindError::MissingState)); a client when it connects
    /// ([`ConnectError::MissingState`](crate::ConnectError::MissingState)).
    ///
    /// ```
    /// use netaio::router::{Router, State};
    /// use netaio::{Message, MessageType};
    ///
    /// async fn hits(State(n): State<u64>) -> Message {
    ///     Message::ok("hits", n.to_string())
    /// }
    /// let router = Router::new().on((MessageType::REQUEST_URI, "hits"), hits);
    /// let e = router.check_state().unwrap_err();
    /// assert_eq!(e.state, "u64");
    /// assert!(router.with_state(7u64).check_state().is_ok());
    /// ```
    pub fn check_state(&self) -> Result<(), MissingStateError> {
        if let Some(e) = self.table.missing_state(&self.state) {
            return Err(e);
        }
        let fallback = self.fallback.as_ref().map(|f| f.needed_states());
        match fallback.and_then(|n| n.iter().find(|n| !self.state.contains(n))) {
            Some(need) => Err(MissingStateError {
                route: "the fallback".into(),
                at: "Router::fallback".into(),
                state: need.name,
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn into_shared(self) -> Arc<Routes> {
        Arc::new(Routes::new(self.table, self.fallback, self.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use crate::router::test_support::{REQ, addr, call, dispatch, tagged};
    use crate::router::{Context, Routes};

    #[tokio::test]
    async fn persistent_and_one_shot_may_share_a_key() {
        let router = Router::new()
            .on((REQ, "x"), tagged("persistent"))
            .try_route(Route::once((REQ, "x"), tagged("once")))
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
        let first = Route::on((REQ, "x"), tagged("a"));
        let router = Router::new().try_route(first).unwrap();
        let err = router
            .try_route(Route::on((REQ, "x"), tagged("b")))
            .unwrap_err();
        let RouteError::Duplicate { key, kind, first } = &err else {
            panic!("{err:?}")
        };
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
        let first = Route::once(REQ, tagged("a"));
        let router = Router::new().try_route(first).unwrap();
        let err = router.try_route(Route::once(REQ, tagged("b"))).unwrap_err();
        let RouteError::Duplicate { kind, first, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((*kind, first.line()), ("one-shot", first_line));

        let peer_key = (REQ, "x", addr(1));
        let router = Router::new().on(peer_key, tagged("a"));
        assert!(router.try_route(Route::on(peer_key, tagged("b"))).is_err());
    }

    #[test]
    #[should_panic(
        expected = "a persistent handler is already registered for (REQUEST_URI, \"x\") (first registered at netaio/src/router/builder.rs:"
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
