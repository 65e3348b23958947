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

mod builder;
mod context;
mod extract;
mod handler;
mod key;
mod live;
mod ops;
mod reply;
mod route;
mod state;
mod table;
#[cfg(test)]
mod test_support;

pub use builder::Router;
pub use context::{Context, Request};
pub use extract::{Content, FromRequest, PeerAddr, Postcard, Rejection, State, Uri};
pub use handler::{BoxFuture, BoxedHandler, Handler};
pub use key::{RouteError, RouteKey};
pub(crate) use live::{Routed, Routes};
pub use ops::{NodeFuture, NodeOps, PeerLink};
pub use reply::{ErrorReply, IntoErrorReply, IntoReply};
pub use route::{IntoRoute, IntoService, Route, Service};
pub(crate) use state::Extensions;
pub use state::{MissingStateError, NeededState};

use crate::plugin::Plugins;

/// Inner plugins attached to one route (the same type as a node's [`Plugins`]).
pub type InnerPlugins = Plugins;
