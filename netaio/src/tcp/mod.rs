//! TCP transport: [`TcpServer`] and [`TcpClient`].
//!
//! Both sides run one task per connection (the driver) that reads frames, dispatches them in order,
//! and writes replies and queued messages in batches, with read, idle and write timeouts. A server
//! also closes a connection that shows no valid frame within its handshake timeout or keeps
//! sending refused ones, limits connections per source, evicts an unauthenticated (else the
//! longest idle) connection when full, and bounds every queue in bytes as well as messages.
//!
//! On Unix, the same server and client also speak over a Unix socket
//! ([`TcpServerBuilder::bind_unix`], [`TcpServerBuilder::unix_socket`],
//! [`TcpClient::connect_unix`]); the server then knows each peer's credentials
//! ([`ServerHandle::peer_credentials`]).
//!
//! With `peer_management(PeerConfig)` on both sides, the client advertises itself on connect
//! (`ADVERTISE_PEER`), the server answers `PEER_DISCOVERED`, and each records the other in its
//! [`PeerTable`](crate::peer::PeerTable) and on the connection; `DISCONNECT` on close (or the end
//! of the connection) removes it.

mod admission;
mod calls;
mod client;
mod client_builder;
mod client_dispatch;
mod concurrent;
mod connection;
mod connection_options;
mod deadlines;
pub(crate) mod driver;
mod large_frames;
mod node_ops;
mod outgoing;
mod peers;
mod reconnect;
mod relay_client;
mod relay_server;
mod send_queue;
mod server;
mod server_builder;
mod server_dispatch;
mod server_handle;
mod stream;
mod subscription;
#[cfg(unix)]
mod unix;
mod unix_peer;

pub use client::TcpClient;
pub use client_builder::{TcpClientBuilder, TcpClientOptions};
pub use connection::{Connection, ConnectionClosed, ConnectionState};
pub use driver::CloseReason;
pub use reconnect::Reconnect;
pub use relay_server::Relay;
pub use server::{ConnectionEvent, ConnectionId, ConnectionInfo, TcpServer};
pub use server_builder::{TcpServerBuilder, TcpServerOptions};
pub use server_handle::{ServerHandle, ServerStats};
pub use subscription::{MAX_SUBSCRIPTIONS, Subscription};
pub use unix_peer::{PeerCredentials, unix_peer_uid};
