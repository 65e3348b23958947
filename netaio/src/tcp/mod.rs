//! TCP transport: [`TcpServer`] and [`TcpClient`].
//!
//! Both sides run one task per connection (the driver) that reads frames, dispatches them in order,
//! and writes replies and queued messages in batches, with read, idle and write timeouts.

mod client;
mod driver;
mod server;

pub use client::{Connection, Reconnect, TcpClient, TcpClientBuilder};
pub use driver::CloseReason;
pub use server::{
    ConnectionEvent, ConnectionId, ConnectionInfo, ServerHandle, TcpServer, TcpServerBuilder,
};
