//! [`Route`] (a handler with its key, as the attribute macros declare it), [`IntoRoute`] (what
//! [`Router::route`](super::Router::route) accepts) and [`Service`] (a value whose methods are
//! routes, mounted with [`Router::mount`](super::Router::mount)).

use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use super::{BoxedHandler, Handler, InnerPlugins, RouteKey};

/// A handler together with its key, whether it is one-shot, and where it was declared.
///
/// [`#[on]`](crate::on) and [`#[once]`](crate::once) declare routes; [`handlers!`](crate::handlers)
/// collects them for [`Router::routes`](super::Router::routes). A route can also be built by hand:
///
/// ```
/// use netaio::router::{Route, Router};
/// use netaio::{Message, MessageType};
///
/// async fn echo(msg: Message) -> Message {
///     Message::respond(msg.uri().clone(), msg.content().clone())
/// }
/// let route = Route::on((MessageType::REQUEST_URI, "echo"), echo);
/// assert!(!route.is_once());
/// let router = Router::new().route(route);
/// assert_eq!(router.len(), 1);
/// ```
#[derive(Clone)]
pub struct Route {
    pub(super) key: RouteKey,
    pub(super) handler: BoxedHandler,
    pub(super) once: bool,
    pub(super) inner: InnerPlugins,
    pub(super) at: &'static Location<'static>,
}

impl Route {
    /// A persistent route (declared where this is called).
    #[track_caller]
    pub fn on<H: Handler<A>, A: 'static>(key: impl Into<RouteKey>, handler: H) -> Self {
        Self::from_boxed(key.into(), BoxedHandler::new(handler), false)
    }

    /// A one-shot route: it runs for the first matching message and is then removed.
    #[track_caller]
    pub fn once<H: Handler<A>, A: 'static>(key: impl Into<RouteKey>, handler: H) -> Self {
        Self::from_boxed(key.into(), BoxedHandler::new(handler), true)
    }

    /// A route from an already erased handler (what the attribute macros generate). The location
    /// reported in duplicate-route errors is where this is called.
    #[track_caller]
    pub fn from_boxed(key: RouteKey, handler: BoxedHandler, once: bool) -> Self {
        Self {
            key,
            handler,
            once,
            inner: InnerPlugins::new(),
            at: Location::caller(),
        }
    }

    /// With inner plugins: messages for this route pass the inner auth check and decryption before
    /// the handler runs, and its replies are sealed with them (see [`Router::route`]). A one-shot
    /// route is taken only by a message that passes them: a message they refuse leaves it in place
    /// for the message it is waiting for.
    ///
    /// [`Router::route`]: super::Router::route
    #[must_use]
    pub fn with_inner(mut self, inner: InnerPlugins) -> Self {
        self.inner = inner;
        self
    }

    /// The key.
    pub fn key(&self) -> &RouteKey {
        &self.key
    }

    /// True for a one-shot route.
    pub fn is_once(&self) -> bool {
        self.once
    }

    /// Where the route was declared: the handler function for the attribute macros.
    pub fn location(&self) -> &'static Location<'static> {
        self.at
    }

    /// The handler.
    pub fn handler(&self) -> &BoxedHandler {
        &self.handler
    }

    /// The route's inner plugins (empty unless set with [`with_inner`](Route::with_inner)).
    pub fn inner(&self) -> &InnerPlugins {
        &self.inner
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("key", &self.key)
            .field("once", &self.once)
            .field("inner", &self.inner)
            .field("at", &format_args!("{}", self.at))
            .finish()
    }
}

/// Something that is a [`Route`]: a `Route`, or the type [`#[on]`](crate::on) and
/// [`#[once]`](crate::once) generate next to a handler function (a braced struct of the same name,
/// so `handlers![echo]` or `echo {}` names the route while `echo(...)` still calls the function).
pub trait IntoRoute {
    /// The route.
    fn into_route(self) -> Route;
}

impl IntoRoute for Route {
    fn into_route(self) -> Route {
        self
    }
}

/// A value whose methods are routes: what [`#[service]`](crate::service) implements for an `impl`
/// block whose methods carry `#[on(...)]` or `#[once(...)]`.
///
/// [`Router::mount`](super::Router::mount) (and `mount` on the server and client builders) puts the
/// value in an `Arc`, registers every route with it, and adds the `Arc` as shared state, so other
/// handlers can take it with `State<Arc<YourService>>`.
///
/// Implementing it by hand is possible (return one [`Route`] per handler), but `#[service]` is the
/// intended way.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a netaio service",
    label = "not a service",
    note = "put `#[netaio::service]` on an `impl {Self}` block whose methods carry `#[on(...)]`"
)]
pub trait Service: Send + Sync + 'static {
    /// The service's routes, each holding a clone of the `Arc`.
    fn routes(self: Arc<Self>) -> Vec<Route>;
}

/// What [`Router::mount`](super::Router::mount) accepts: a [`Service`] by value (put in a new
/// `Arc`), or an `Arc` of one that you keep a handle to.
///
/// ```
/// use std::sync::Arc;
/// use netaio::router::IntoService;
/// use netaio::{service, Message};
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
/// let shared = Arc::new(Ping);
/// // The same `Arc`, not a copy of the service.
/// assert!(Arc::ptr_eq(&Arc::clone(&shared).into_service(), &shared));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a netaio service",
    label = "not a service",
    note = "put `#[netaio::service]` on an `impl {Self}` block whose methods carry `#[on(...)]`, then mount the value or an `Arc` of it"
)]
pub trait IntoService {
    /// The service.
    type Service: Service;

    /// The service in an `Arc` (the one given, for an `Arc`).
    fn into_service(self) -> Arc<Self::Service>;
}

impl<S: Service> IntoService for S {
    type Service = S;

    fn into_service(self) -> Arc<S> {
        Arc::new(self)
    }
}

impl<S: Service> IntoService for Arc<S> {
    type Service = S;

    fn into_service(self) -> Arc<S> {
        self
    }
}

/// Collect routes declared with [`#[on]`](crate::on) / [`#[once]`](crate::once) (or any
/// [`IntoRoute`]) into an array for [`Router::routes`](crate::Router::routes).
///
/// ```
/// use netaio::router::Router;
/// use netaio::{handlers, on, Message};
///
/// #[on(REQUEST_URI, uri = "echo")]
/// async fn echo(msg: Message) -> Message {
///     Message::respond(msg.uri().clone(), msg.content().clone())
/// }
///
/// #[on(PUBLISH_URI)]
/// async fn log(msg: Message) {
///     println!("{:?}", msg.uri());
/// }
///
/// let router = Router::new().routes(handlers![echo, log]);
/// assert_eq!(router.len(), 2);
/// ```
#[macro_export]
macro_rules! handlers {
    () => {{
        let routes: [$crate::router::Route; 0] = [];
        routes
    }};
    ($($($segment:ident)::+),+ $(,)?) => {
        [$($crate::router::IntoRoute::into_route($($segment)::+ {})),+]
    };
}
