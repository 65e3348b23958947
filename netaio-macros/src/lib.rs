//! Attribute macros for [netaio](https://docs.rs/netaio): [`macro@on`], [`macro@once`] and
//! [`macro@service`]. Use them through the `netaio` crate (`netaio::on`, `netaio::once`,
//! `netaio::service`); the generated code refers to `::netaio`.
//!
//! Each macro keeps the item as written and adds what the router needs next to it. When something
//! is wrong, the error points at the offending token and says what to write instead, and the item
//! is still emitted so that the rest of the crate (and the editor) keeps working.

#![forbid(unsafe_code)]

mod args;
mod handler;
mod route;
mod service;

use proc_macro::TokenStream;

/// Declare a persistent handler: `#[on(TYPE)]` or `#[on(TYPE, uri = URI)]` on an `async fn`.
///
/// - `TYPE` is the message type: a `MessageType` constant name (`REQUEST_URI`, `PUBLISH_URI`,
///   ...), or any expression of type `MessageType` (`MessageType::OK`, a custom constant
///   `crate::PING`, `MessageType::custom(40)`).
/// - `uri = URI` (optional) routes only that uri: a string literal, a byte-string literal, or an
///   expression of a type a `RouteKey` is built from (`String`, `Vec<u8>`, `Bytes`, ...). Without
///   it, the handler takes every message of the type that no uri route matches.
/// - `auth = A`, `cipher = C` (optional) attach inner plugins to the route: values implementing
///   `netaio::plugin::AuthPlugin` / `CipherPlugin`, evaluated when the route is built (in a
///   [`macro@service`] they may use `self`, the service's `Arc`). Messages for the route pass the
///   inner auth check and decryption before the handler runs; its reply is sealed with them.
///
/// The function stays as written, so it can be called directly (in unit tests, say). Its
/// arguments are extractors (`Message`, `Context`, `PeerAddr`, `Uri`, `Content`, `Postcard<T>`,
/// `State<T>`, `MessageType`, or your own `FromRequest` types, in any order and number), and it
/// returns a `Message`, an `Option<Message>`, `()` (no reply) or a `Result<T, E>` whose error
/// becomes the error reply.
///
/// Next to the function the macro emits a same-named braced struct (hidden from the docs) that
/// implements `netaio::router::IntoRoute`; collect routes with `netaio::handlers!` and register
/// them with `Router::routes`:
///
/// ```
/// use netaio::router::{PeerAddr, Postcard};
/// use netaio::{handlers, on, Message, MessageType, Router};
///
/// const PING: MessageType = MessageType::custom(40);
///
/// #[on(REQUEST_URI, uri = "echo")]
/// async fn echo(msg: Message) -> Message {
///     Message::respond(msg.uri().clone(), msg.content().clone())
/// }
///
/// #[on(REQUEST_URI, uri = b"whoami")]
/// async fn whoami(PeerAddr(addr): PeerAddr) -> Message {
///     Message::respond("whoami", addr.to_string())
/// }
///
/// #[on(MessageType::CREATE_URI, uri = "sum")]
/// async fn sum(Postcard(numbers): Postcard<Vec<u32>>) -> Result<Message, String> {
///     let total = numbers.iter().try_fold(0u32, |a, b| a.checked_add(*b));
///     let total = total.ok_or("overflow")?;
///     Ok(Message::ok("sum", total.to_string()))
/// }
///
/// #[on(PING)]
/// async fn ping() -> Message {
///     Message::new(PING, "", "pong")
/// }
///
/// let router = Router::new().routes(handlers![echo, whoami, sum, ping]);
/// assert_eq!(router.len(), 4);
///
/// // The function itself is untouched.
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let reply = echo(Message::new(MessageType::REQUEST_URI, "echo", "hi")).await;
/// assert_eq!(reply.content().as_ref(), b"hi");
/// # });
/// ```
///
/// A mistake is reported at the token that causes it:
///
/// ```compile_fail
/// #[netaio::on(REQUEST_URI, uri = "echo")]
/// fn echo(msg: netaio::Message) -> netaio::Message { msg } // error: must be an `async fn`
/// ```
#[proc_macro_attribute]
pub fn on(args: TokenStream, item: TokenStream) -> TokenStream {
    route::expand(route::Kind::On, args.into(), item.into()).into()
}

/// Declare a one-shot handler: like [`macro@on`], but the handler runs for the first matching
/// message and is then removed from the router. At a key that also has a persistent handler, the
/// one-shot handler runs first.
///
/// ```
/// use netaio::{handlers, once, Message, Router};
///
/// #[once(OK, uri = "welcome")]
/// async fn first_welcome(msg: Message) {
///     println!("server says {:?}", msg.content());
/// }
///
/// let router = Router::new().routes(handlers![first_welcome]);
/// assert_eq!(router.len(), 1);
/// ```
#[proc_macro_attribute]
pub fn once(args: TokenStream, item: TokenStream) -> TokenStream {
    route::expand(route::Kind::Once, args.into(), item.into()).into()
}

/// Turn an `impl` block into a service: every method marked `#[on(...)]` or `#[once(...)]` (same
/// arguments as [`macro@on`]) becomes a route, and `Router::mount(value)` (or `mount` on
/// `TcpServer::builder()` / `TcpClient::builder()`) registers all of them with the value, in an
/// `Arc`, shared by every connection.
///
/// Marked methods take `&self` (or `self: Arc<Self>`, or no `self`) followed by extractors, and
/// return what a handler returns. Other methods and items of the block are left alone, and the
/// marked methods stay callable as written. Mutable state goes behind a `Mutex` or an atomic,
/// since one value serves every connection at once. The value is also added as shared state, so
/// handlers elsewhere can take `State<Arc<YourService>>`.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use netaio::router::ErrorReply;
/// use netaio::{service, Message, Router};
///
/// #[derive(Default)]
/// struct Store {
///     items: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
/// }
///
/// #[service]
/// impl Store {
///     #[on(CREATE_URI)]
///     async fn create(&self, msg: Message) -> Message {
///         let mut items = self.items.lock().unwrap();
///         items.insert(msg.uri().to_vec(), msg.content().to_vec());
///         Message::ok(msg.uri().clone(), "created")
///     }
///
///     #[on(REQUEST_URI)]
///     async fn get(&self, msg: Message) -> Result<Message, ErrorReply> {
///         let items = self.items.lock().unwrap();
///         let value = items
///             .get(msg.uri().as_ref())
///             .ok_or(ErrorReply::not_found("not found"))?;
///         Ok(Message::respond(msg.uri().clone(), value.clone()))
///     }
///
///     fn len(&self) -> usize {
///         self.items.lock().unwrap().len()
///     }
/// }
///
/// let router = Router::new().mount(Store::default());
/// assert_eq!(router.len(), 2);
/// ```
#[proc_macro_attribute]
pub fn service(args: TokenStream, item: TokenStream) -> TokenStream {
    service::expand(args.into(), item.into()).into()
}
