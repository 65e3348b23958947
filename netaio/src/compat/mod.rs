//! Wire compatibility with Python netaio 0.0.9: run a Rust node in a network of Python nodes, and
//! migrate one service at a time.
//!
//! Needs the `python-compat` feature (off by default), which also adds `python_compat()` to the
//! three transport builders (this module's `profile.rs`; no transport depends on this module).
//!
//! The frame layout is the same in both modes; what differs is how the auth block and peer data
//! are encoded, and which plugins both ends run:
//!
//! - [`PackifyCodec`]: the auth block as Python's `packify` dict (the [`packify`] module has the
//!   general encoder and decoder);
//! - [`PackifyPeerPlugin`]: peer data and peer adverts as Python's `DefaultPeerPlugin`;
//! - [`python_error`] / [`python_error_type`]: Python's `make_error_msg`, which picks an error
//!   reply's type from its text (the native library types it by the error's type instead);
//! - [`LegacyHmacAuth`] and [`LegacySha256StreamCipher`]: Python's `HMACAuthPlugin` and
//!   `Sha256StreamCipherPlugin`, byte for byte. **They are insecure** (no replay protection, the
//!   message type is not authenticated, an unauthenticated XOR cipher) and exist only to talk to
//!   Python nodes; a network that no longer has Python nodes should move to
//!   [`HmacAuth`](crate::plugin::HmacAuth) and [`AeadCipher`](crate::plugin::AeadCipher).
//!
//! One switch sets the codec, the peer plugin and Python's conventions on a transport:
//! `python_compat()` on [`TcpServerBuilder`](crate::tcp::TcpServerBuilder::python_compat),
//! [`TcpClientBuilder`](crate::tcp::TcpClientBuilder::python_compat) and
//! [`UdpNodeBuilder`](crate::udp::UdpNodeBuilder::python_compat) (which also joins Python's
//! multicast group, `224.0.0.1` on the node's own port). Peer management
//! (`peer_management(PeerConfig::default())`) has Python's defaults already. The plugins are
//! chosen separately, like Python's `auth_plugin=` and `cipher_plugin=`:
//!
//! ```no_run
//! use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher};
//! use netaio::{Message, MessageType, Router, TcpClient, TcpServer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Python: TCPServer(port=8888, auth_plugin=HMACAuthPlugin({"secret": "s"}),
//! //                   cipher_plugin=Sha256StreamCipherPlugin({"key": "k"}))
//! let router = Router::new().on(MessageType::REQUEST_URI, |m: Message| async move {
//!     Message::respond(m.uri().clone(), m.content().clone())
//! });
//! let server = TcpServer::builder()
//!     .address(([0, 0, 0, 0], 8888))
//!     .router(router)
//!     .python_compat()
//!     .auth(LegacyHmacAuth::new("s"))
//!     .cipher(LegacySha256StreamCipher::new("k"))
//!     .bind()
//!     .await?;
//! tokio::spawn(server.serve());
//!
//! // A Rust client for a Python server with the same plugins.
//! let client = TcpClient::builder()
//!     .python_compat()
//!     .auth(LegacyHmacAuth::new("s"))
//!     .cipher(LegacySha256StreamCipher::new("k"))
//!     .build();
//! let conn = client.connect("127.0.0.1:8888").await?;
//! let reply = conn.request("echo", "hello").await?;
//! # drop(reply);
//! # Ok(()) }
//! ```
//!
//! What Python-compatible mode keeps from the native mode, and why it still interoperates:
//!
//! - A Rust client still puts its request id in the auth field `rid`, and a Rust server answers
//!   with `rref`: Python ignores auth fields it does not know, and a reply from a Python server
//!   (which has no `rref`) is matched by type and uri, as Python's `request()` does. Note that
//!   [`LegacyHmacAuth`] does not cover these fields (it covers no auth field).
//! - A Rust client in this mode also takes an **error reply without a reply reference** that
//!   matches no request by uri (Python answers with uri `ERROR`, or `b''` for its default
//!   NOT_FOUND) as the answer to its oldest waiting request, and accepts it even without a MAC
//!   (Python sends AUTH_ERROR unauthenticated): a wrong secret or an unknown route then fails
//!   the request at once with a typed error instead of a timeout. A Python server answers each
//!   connection's frames strictly in order, which makes the oldest waiting request the right one.
//! - The server's error conventions are already Python's: a frame with a bad checksum gets ERROR
//!   `invalid message` with uri `ERROR`, an unknown route NOT_FOUND `not found` with an empty uri,
//!   a failed auth check the plugin's error ([`LegacyHmacAuth`]: AUTH_ERROR `HMAC auth failed`,
//!   uri `ERROR`), sent without plugins. The Rust server sends `invalid message` without plugins
//!   too (Python applies its instance plugins to it; either way a Python client drops it).
//! - The server's idle timeout is off in this mode (Python has none, and a Python client that
//!   loses its connection never reconnects); the other limits stay.
//! - A `UdpNode` answers an unrouted message with Python's UDP NOT_FOUND (uri `ERROR`), but never
//!   answers a datagram it refuses or an error-type message (the Python node does both).
//!
//! The Rust side stays stricter than Python where Python crashes or misbehaves (see the Python
//! reference, sections 11 and 12): frames are bounded and time out, a failed check never runs a
//! handler, an unknown message type does not close the connection, and an auth block that is not
//! a dict of byte strings is refused.

mod codec;
mod errors;
mod legacy_cipher;
mod legacy_hmac;
pub mod packify;
mod peer;
mod profile;

pub use codec::{BoundedPackifyCodec, PackifyCodec};
pub use errors::{python_error, python_error_type};
pub use legacy_cipher::LegacySha256StreamCipher;
pub use legacy_hmac::LegacyHmacAuth;
pub use peer::PackifyPeerPlugin;
