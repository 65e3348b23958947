//! The transport: the node's sockets, its interfaces and one-message-at-a-time TCP streams.

pub mod interfaces;
pub mod sockets;
pub mod stream;
