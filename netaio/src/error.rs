//! Errors of the transport operations, one enum per operation.

use bytes::Bytes;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::message::EncodeError;
use crate::{Message, MessageType};

/// Sending a message failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message cannot be encoded (too large, …). Nothing was sent.
    #[error("message cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
    /// A plugin refused to prepare the message (for example a peer-specific cipher with no key for
    /// the recipient). Nothing was sent.
    #[error("message cannot be sealed: {0}")]
    Seal(#[from] crate::plugin::SealError),
    /// The connection is closed (or, on a client with reconnect, not connected right now).
    #[error("connection closed")]
    Closed,
    /// The connection's send queue is full, in messages or in bytes (the peer is not reading
    /// fast enough).
    #[error("send queue full")]
    QueueFull,
    /// The server's send queues together hold their byte budget
    /// ([`max_queued_bytes`](crate::tcp::TcpServerBuilder::max_queued_bytes)): slow readers
    /// hold it; nothing was queued.
    #[error("the server's send queues are full (node-wide byte budget)")]
    NodeQueueFull,
    /// The node has stopped ([`UdpHandle::shutdown`](crate::UdpHandle::shutdown)): nothing
    /// more is sent, and no request can start.
    #[error("the node has stopped")]
    Stopped,
    /// No connection with that id (it has ended).
    #[error("no such connection")]
    UnknownConnection,
    /// The socket refused the datagram (no route, unreachable, …); the OS error is kept.
    #[error("send failed: {0}")]
    Io(#[from] io::Error),
    /// This operation is not available on this kind of node (for example `subscribe` on a client).
    #[error("not supported here: {0}")]
    Unsupported(&'static str),
}

/// A subscription could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The subscriber (a connection, an address) already has the maximum number of
    /// subscriptions.
    #[error("too many subscriptions for this subscriber (limit {0})")]
    Limit(usize),
    /// The node already holds the maximum number of subscriptions in total. The limit is
    /// node-wide: on a server, all connections together; on a UDP node, all source addresses
    /// together (where it is reached only when it is 0: a UDP node evicts its least recently
    /// renewed subscription instead).
    #[error(
        "too many subscriptions on this node (node-wide limit {0}, all subscribers together; on UDP, all source addresses)"
    )]
    NodeLimit(usize),
    /// The subscriber's keys would exceed its budget of key bytes (a key longer than the budget
    /// is refused this way too).
    #[error("subscription keys too large for this subscriber (limit {0} bytes)")]
    KeyBytes(usize),
    /// The keys of all subscriptions of the node would exceed its budget of key bytes.
    #[error("subscription keys too large for this node (limit {0} bytes)")]
    NodeKeyBytes(usize),
    /// The subscriber's address has not proved that it receives what is sent to it (UDP: the
    /// datagram passed no auth plugin that authenticates its sender, and the address completed no
    /// cookie round trip), so its subscription does not count: otherwise anyone could subscribe
    /// a forged address and have the node send it notifications.
    #[error(
        "subscription refused: the source address is not verified (no authenticated datagram, no cookie round trip)"
    )]
    Unverified,
    /// The connection has ended.
    #[error("no such connection")]
    UnknownConnection,
    /// Subscriptions are not available on this kind of node.
    #[error("subscriptions are not supported here")]
    Unsupported,
}

/// Binding a server or a UDP node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The OS refused the address (in use, not available, …), or the socket setup failed
    /// (multicast group, interface).
    #[error("cannot bind {addr}: {source}")]
    Io {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A Unix socket could not be bound at `path`: the OS refused, a server already listens
    /// there (`AddrInUse`), or a file that is not a socket is in the way (`AlreadyExists`).
    #[error("cannot bind the Unix socket {}: {source}", path.display())]
    Unix {
        /// The socket's path.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// Peer management cannot be set up (a route of the application at a peer-management key,
    /// a local peer the peer plugin cannot pack): a configuration error, nothing was bound.
    #[error(transparent)]
    PeerManagement(#[from] PeerManagementError),
    /// The multicast group cannot be joined as configured.
    #[error(transparent)]
    Multicast(#[from] MulticastError),
    /// A handler takes [`State<T>`](crate::router::State) for a `T` never added with
    /// [`Router::with_state`](crate::Router::with_state): a programming error, found before the
    /// first request.
    #[error(transparent)]
    MissingState(#[from] crate::router::MissingStateError),
    /// Routes the builder adds (a relay's) collide with the router's: a configuration error,
    /// nothing was bound.
    #[error(transparent)]
    Route(#[from] crate::router::RouteError),
}

/// A UDP node's multicast group cannot be joined ([`BindError::Multicast`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MulticastError {
    /// The configured group is not a multicast address (a configuration error).
    #[error("{0} is not a multicast address")]
    NotMulticast(std::net::IpAddr),
    /// The group and the node's address are of different families (a configuration error).
    #[error("group {group} and node address {local} are of different families")]
    FamilyMismatch {
        /// The group.
        group: std::net::IpAddr,
        /// The node's address.
        local: SocketAddr,
    },
    /// The node is bound to an address no interface holds.
    #[error("no interface holds the node's address {0}")]
    NoInterfaceHolds(std::net::IpAddr),
    /// No interface matches the configured choice (`MulticastInterface`, shown as configured).
    #[error("no interface matches {interface} for group {group}")]
    NoInterfaceMatches {
        /// The configured interface choice.
        interface: String,
        /// The group.
        group: std::net::IpAddr,
    },
    /// The interfaces could not be listed to find the configured one.
    #[error("cannot list interfaces to find {interface}: {source}")]
    Interfaces {
        /// The configured interface choice.
        interface: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The OS refused to join the group on every interface tried. The text names the group,
    /// the (last) interface and its index, the OS error and, for the usual causes, what to
    /// check: `cannot join multicast group 239.255.110.97 on the default interface (index 0):
    /// No such device (os error 19): no multicast route (no interface but loopback is up?): add
    /// one (`ip route add 224.0.0.0/4 dev IFACE`) or choose an interface with
    /// MulticastConfig::interface`.
    #[error(
        "cannot join multicast group {group} on {interface} (index {index}){}: {source}{}",
        others(*tried),
        join_hint(*group, *index, source)
    )]
    Join {
        /// The group.
        group: std::net::IpAddr,
        /// The interface of the last refusal: its name, or `the default interface` when the
        /// OS was left to choose (index 0).
        interface: String,
        /// Its index (0: the OS's choice, by its routing table).
        index: u32,
        /// How many interfaces were tried (the others failed too).
        tried: usize,
        /// The OS error of the last refusal.
        #[source]
        source: io::Error,
    },
    /// A socket option for the group (loopback, TTL), or the socket that receives the group's
    /// datagrams, cannot be set up.
    #[error("cannot set up the socket for multicast group {group}: {source}")]
    Socket {
        /// The group and its port.
        group: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn others(tried: usize) -> String {
    match tried {
        0 | 1 => String::new(),
        2 => " and 1 other interface".into(),
        n => format!(" and {} other interfaces", n - 1),
    }
}

/// What to check for the usual reasons a join is refused (Linux and the BSDs share these
/// errno values; `std` gives them no `ErrorKind` of their own).
fn join_hint(group: std::net::IpAddr, index: u32, e: &io::Error) -> String {
    const ENODEV: i32 = 19;
    #[cfg(target_os = "linux")]
    const ENOBUFS: i32 = 105;
    #[cfg(not(target_os = "linux"))]
    const ENOBUFS: i32 = 55;
    let route = if group.is_ipv4() {
        "`ip route add 224.0.0.0/4 dev IFACE`"
    } else {
        "`ip -6 route add ff00::/8 dev IFACE table local`"
    };
    let hint = match (e.raw_os_error(), e.kind()) {
        (Some(ENODEV), _) if index == 0 => format!(
            "no multicast route (no interface but loopback is up?): add one ({route}) or choose \
             an interface with MulticastConfig::interface"
        ),
        (Some(ENODEV), _) => format!("interface index {index} is gone or down (see `ip link`)"),
        (Some(ENOBUFS), _) => "too many groups joined on this host (Linux: sysctl \
             net.ipv4.igmp_max_memberships)"
            .into(),
        (_, io::ErrorKind::AddrNotAvailable) => {
            "the interface has no usable address for the group (see `ip addr`)".into()
        }
        (_, io::ErrorKind::AddrInUse) => "the socket is already a member on this interface".into(),
        _ => return String::new(),
    };
    format!(": {hint}")
}

/// Connecting a client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No connection within the connect timeout.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    Timeout {
        /// The server address.
        addr: SocketAddr,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The OS refused (connection refused, unreachable, …).
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// The server address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The address did not resolve: what was asked for, and why.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// A handler of the client's router takes [`State<T>`](crate::router::State) for a `T`
    /// never added with [`Router::with_state`](crate::Router::with_state): a programming error,
    /// found before anything is sent (as [`BindError::MissingState`] is for a server).
    #[error(transparent)]
    MissingState(#[from] crate::router::MissingStateError),

    /// Connecting to a Unix socket failed (no such socket, nobody listening, permission denied,
    /// or `TimedOut` after the connect timeout).
    #[error("cannot connect to the Unix socket {}: {source}", path.display())]
    Unix {
        /// The socket's path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A request (`request`, `create`, `update`, `delete`, `call`) failed.
///
/// An error reply of the peer arrives as its own variant, at once (not as a timeout):
///
/// ```
/// use netaio::{Message, RequestError};
///
/// let e = RequestError::from_reply(Message::not_found()).unwrap_err();
/// assert!(matches!(e, RequestError::NotFound(_)));
/// assert_eq!(e.reply().unwrap().content().as_ref(), b"not found");
/// # fn handle(r: Result<Message, RequestError>) {
/// match r {
///     Ok(reply) => println!("{reply:?}"),
///     Err(RequestError::Timeout(t)) => println!("no reply within {t:?}"),
///     Err(RequestError::NotFound(_)) => println!("no such route"),
///     Err(e) => println!("{e}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply within the request timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection closed before the reply arrived.
    #[error("connection closed before the reply")]
    Closed,
    /// What came back is not netaio: no frame from the peer ever decoded (a bad header or
    /// checksum, or a frame cut short), as when the address is an HTTP server or another
    /// protocol. The detail says what was wrong with the first bytes.
    #[error("the peer does not speak netaio (bad header / checksum): {0}")]
    NotNetaio(String),
    /// The request could not leave this host (not connected, reconnecting, no such connection,
    /// send queue full, a plugin could not seal it, the socket refused it): it failed at once,
    /// not after its timeout, and the peer never saw it. Once a request has left, a call only
    /// ever fails by timeout, an error reply or the end of its connection.
    #[error(transparent)]
    Send(#[from] SendError),
    /// Too many requests are waiting for replies on this connection.
    #[error("too many requests in flight (limit {0})")]
    TooManyInFlight(usize),
    /// The reply failed this call's inner plugins (or, for an error reply, the instance plugins).
    #[error("reply refused: {0}")]
    Refused(#[from] crate::plugin::OpenError),
    /// The peer answered AUTH_ERROR.
    #[error("authentication error: {}", reply_text(.0))]
    Auth(Message),
    /// The peer answered NOT_FOUND.
    #[error("not found: {}", reply_text(.0))]
    NotFound(Message),
    /// The peer answered NOT_PERMITTED.
    #[error("not permitted: {}", reply_text(.0))]
    NotPermitted(Message),
    /// The peer answered ERROR.
    #[error("error reply: {}", reply_text(.0))]
    Error(Message),
    /// [`call_any`](crate::call_any) was given no target.
    #[error("no target to call")]
    NoTarget,
}

impl RequestError {
    /// The error a reply of an error type stands for, or `None` for a non-error reply.
    pub fn from_reply(reply: Message) -> Result<Message, RequestError> {
        match reply.message_type {
            MessageType::AUTH_ERROR => Err(RequestError::Auth(reply)),
            MessageType::NOT_FOUND => Err(RequestError::NotFound(reply)),
            MessageType::NOT_PERMITTED => Err(RequestError::NotPermitted(reply)),
            MessageType::ERROR => Err(RequestError::Error(reply)),
            _ => Ok(reply),
        }
    }

    /// The error reply, for the variants that carry one.
    pub fn reply(&self) -> Option<&Message> {
        match self {
            RequestError::Auth(m)
            | RequestError::NotFound(m)
            | RequestError::NotPermitted(m)
            | RequestError::Error(m) => Some(m),
            _ => None,
        }
    }
}

fn reply_text(m: &Message) -> String {
    String::from_utf8_lossy(m.content()).into_owned()
}

/// `receive_once` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The connection is closed and nothing is left to receive.
    #[error("connection closed")]
    Closed,
    /// Nothing arrived within the timeout.
    #[error("nothing received within {0:?}")]
    Timeout(Duration),
}

/// Peer management could not be set up on a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerManagementError {
    /// The node's own peer cannot be packed by its peer plugin.
    #[error("cannot pack the local peer: {0}")]
    LocalPeer(#[from] crate::plugin::PeerError),
    /// The application already has a route at a peer-management key.
    #[error("peer management: {0}")]
    Route(#[from] crate::router::RouteError),
}

/// [`advertise`](crate::tcp::Connection::advertise) did not record the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdvertiseError {
    /// Peer management is off on this node.
    #[error("peer management is off")]
    Disabled,
    /// The advert could not be sent or got no answer (timeout, refusal, error reply).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The server (or UDP node) answered with something other than `PEER_DISCOVERED`.
    #[error("the peer answered {} instead of PEER_DISCOVERED", .0.message_type)]
    UnexpectedReply(Message),
    /// The server's peer does not unpack or validate.
    #[error("unusable peer: {0}")]
    InvalidPeer(crate::plugin::PeerError),
    /// The server has this node's own peer id.
    #[error("the server has this node's own peer id")]
    OwnId,
    /// This node's peer table refused the server (it is full). A local limit, not the server's
    /// answer.
    #[error(transparent)]
    Table(#[from] crate::peer::PeerTableError),
}

/// A typed call ([`Connection::call_postcard`](crate::Connection::call_postcard),
/// [`UdpHandle::call_postcard`](crate::UdpHandle::call_postcard)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostcardCallError {
    /// The request does not serialize with postcard; nothing was sent.
    #[error("request cannot be serialized: {0}")]
    Encode(postcard::Error),
    /// The call failed (timeout, closed, an error reply, …).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The reply's content does not deserialize as the expected type.
    #[error("reply is not a {expected}: {source}")]
    Decode {
        /// The expected type.
        expected: &'static str,
        /// Why.
        #[source]
        source: postcard::Error,
        /// The reply as received.
        reply: Message,
    },
}

impl PostcardCallError {
    /// A REQUEST_URI to `uri` whose content is `req` serialized with postcard.
    pub(crate) fn request<Req: serde::Serialize + ?Sized>(
        uri: impl Into<Bytes>,
        req: &Req,
    ) -> Result<Message, PostcardCallError> {
        let content = postcard::to_allocvec(req).map_err(PostcardCallError::Encode)?;
        Ok(Message::new(MessageType::REQUEST_URI, uri, content))
    }

    /// The reply's content deserialized as `Resp`.
    pub(crate) fn reply<Resp: serde::de::DeserializeOwned>(
        reply: Message,
    ) -> Result<Resp, PostcardCallError> {
        postcard::from_bytes(reply.content()).map_err(|source| PostcardCallError::Decode {
            expected: std::any::type_name::<Resp>(),
            source,
            reply,
        })
    }
}
