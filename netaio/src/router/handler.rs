//! [`Handler`] (any async fn of extractors) and [`BoxedHandler`] (one with its types erased).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::extract::FromRequest;
use super::state::NeededState;
use super::{IntoReply, Request};
use crate::Message;

/// A boxed, sendable future: what an erased handler returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An async function usable as a handler: its arguments are extractors ([`FromRequest`]) and its
/// output implements [`IntoReply`].
///
/// Implemented for `Fn` closures and functions of up to eight arguments. You do not implement it
/// yourself; when a function is rejected, check that it is `async`, that every argument implements
/// [`FromRequest`] and that the output implements [`IntoReply`].
///
/// ```
/// use netaio::router::{PeerAddr, Router};
/// use netaio::{Message, MessageType};
///
/// async fn echo(msg: Message) -> Message {
///     Message::respond(msg.uri().clone(), msg.content().clone())
/// }
/// async fn whoami(msg: Message, PeerAddr(addr): PeerAddr) -> Message {
///     Message::respond(msg.uri().clone(), addr.to_string())
/// }
/// let router = Router::new()
///     .on((MessageType::REQUEST_URI, "echo"), echo)
///     .on((MessageType::REQUEST_URI, "whoami"), whoami);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a netaio handler",
    label = "not a handler",
    note = "a handler is an `async fn` (or closure returning a `Send` future) of up to 8 arguments that implement `FromRequest`, returning something that implements `IntoReply`",
    note = "with `#[netaio::on(...)]` on the function, the compiler points at the offending argument or return type"
)]
pub trait Handler<Args>: Clone + Send + Sync + Sized + 'static {
    /// Run the handler on a request.
    fn call(&self, req: Request) -> BoxFuture<Option<Message>>;

    /// The state its arguments need ([`FromRequest::needed_state`]), checked when a node is
    /// bound. Default: none.
    fn needed_states() -> Vec<NeededState> {
        Vec::new()
    }
}

impl<F, Fut, R> Handler<()> for F
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    fn call(&self, _req: Request) -> BoxFuture<Option<Message>> {
        let fut = (self)();
        Box::pin(async move { fut.await.into_reply() })
    }
}

/// Handlers of one or more arguments: every argument but the last is extracted from `&Request`,
/// the last one from the request itself ([`FromRequest::from_request_owned`]), so that a final
/// `Message` argument is moved out rather than cloned.
macro_rules! impl_handler {
    ([$($ty:ident),*], $last:ident) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($ty,)* $last> Handler<($($ty,)* $last,)> for F
        where
            F: Fn($($ty,)* $last) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoReply,
            $($ty: FromRequest + Send + 'static,)*
            $last: FromRequest + Send + 'static,
        {
            fn needed_states() -> Vec<NeededState> {
                [$($ty::needed_state(),)* $last::needed_state()]
                    .into_iter()
                    .flatten()
                    .collect()
            }

            fn call(&self, req: Request) -> BoxFuture<Option<Message>> {
                $(
                    let $ty = match $ty::from_request(&req) {
                        Ok(v) => v,
                        Err(rejection) => {
                            let reply = rejection.into_message();
                            return Box::pin(std::future::ready(Some(reply)));
                        }
                    };
                )*
                let $last = match $last::from_request_owned(req) {
                    Ok(v) => v,
                    Err(rejection) => {
                        let reply = rejection.into_message();
                        return Box::pin(std::future::ready(Some(reply)));
                    }
                };
                let fut = (self)($($ty,)* $last);
                Box::pin(async move { fut.await.into_reply() })
            }
        }
    };
}

impl_handler!([], T1);
impl_handler!([T1], T2);
impl_handler!([T1, T2], T3);
impl_handler!([T1, T2, T3], T4);
impl_handler!([T1, T2, T3, T4], T5);
impl_handler!([T1, T2, T3, T4, T5], T6);
impl_handler!([T1, T2, T3, T4, T5, T6], T7);
impl_handler!([T1, T2, T3, T4, T5, T6, T7], T8);

/// A handler with its argument types erased, done once at registration.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn call(&self, req: Request) -> BoxFuture<Option<Message>>;
    fn needed_states(&self) -> &[NeededState];
}

struct Erased<H, A> {
    handler: H,
    needs: Vec<NeededState>,
    _args: std::marker::PhantomData<fn() -> A>,
}

impl<H: Handler<A>, A: 'static> ErasedHandler for Erased<H, A> {
    fn call(&self, req: Request) -> BoxFuture<Option<Message>> {
        self.handler.call(req)
    }

    fn needed_states(&self) -> &[NeededState] {
        &self.needs
    }
}

/// A function of the whole request, erased by [`BoxedHandler::from_fn`].
struct FnHandler<F>(F, Vec<NeededState>);

impl<F, Fut> ErasedHandler for FnHandler<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Message>> + Send + 'static,
{
    fn call(&self, req: Request) -> BoxFuture<Option<Message>> {
        Box::pin((self.0)(req))
    }

    fn needed_states(&self) -> &[NeededState] {
        &self.1
    }
}

/// A type-erased handler, cheap to clone.
#[derive(Clone)]
pub struct BoxedHandler(pub(crate) Arc<dyn ErasedHandler>);

impl BoxedHandler {
    /// Erase a handler.
    pub fn new<H: Handler<A>, A: 'static>(handler: H) -> Self {
        Self(Arc::new(Erased {
            needs: H::needed_states(),
            handler,
            _args: std::marker::PhantomData,
        }))
    }

    /// Erase a function of the whole [`Request`] that returns the reply, if any. This is what the
    /// attribute macros generate: they extract each argument themselves, so that a wrong argument
    /// type is reported at that argument.
    ///
    /// ```
    /// use netaio::router::{BoxedHandler, Request};
    /// use netaio::Message;
    ///
    /// let echo = BoxedHandler::from_fn(|req: Request| async move {
    ///     Some(Message::respond(req.message.uri().clone(), req.message.content().clone()))
    /// });
    /// ```
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Message>> + Send + 'static,
    {
        Self(Arc::new(FnHandler(f, Vec::new())))
    }

    /// [`from_fn`](Self::from_fn) for a function that extracts arguments needing state: the
    /// attribute macros pass each argument's [`FromRequest::needed_state`], so that a node
    /// checks them when it is bound.
    pub fn from_fn_needing<F, Fut>(
        needs: impl IntoIterator<Item = Option<NeededState>>,
        f: F,
    ) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Message>> + Send + 'static,
    {
        Self(Arc::new(FnHandler(
            f,
            needs.into_iter().flatten().collect(),
        )))
    }

    /// The state its arguments need (see [`FromRequest::needed_state`]).
    pub fn needed_states(&self) -> &[NeededState] {
        self.0.needed_states()
    }

    /// Run it.
    pub fn call(&self, req: Request) -> BoxFuture<Option<Message>> {
        self.0.call(req)
    }
}

impl std::fmt::Debug for BoxedHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxedHandler")
    }
}
