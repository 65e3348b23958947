//! [`RouteKey`] (what a handler is registered under) and [`RouteError`] (why registering failed).

use std::fmt;
use std::net::SocketAddr;
use std::panic::Location;

use bytes::Bytes;

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
    /// A handler added to a running node takes [`State<T>`](super::State) for a `T` its router
    /// never had ([`Router::with_state`](super::Router::with_state)).
    #[error(transparent)]
    MissingState(#[from] super::MissingStateError),
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: MessageType = MessageType::REQUEST_URI;

    #[test]
    fn route_keys_from_tuples() {
        let a = SocketAddr::from(([127, 0, 0, 1], 5));
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
}
