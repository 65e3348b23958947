//! The other end of `request`, `send` and `bench`: a TCP connection, or a UDP node of our own
//! sending to an address.

use std::net::SocketAddr;
use std::time::Duration;

use netaio::peer::Peer;
use netaio::{
    CallOptions, Connection, Message, PendingCall, Router, TcpClient, UdpHandle, UdpNode,
};
use tokio::task::JoinHandle;

use crate::common::Plugins;
use crate::exit::Failure;
use crate::target::{Target, Transport};

/// A connected TCP server or a UDP address with our node.
#[derive(Debug)]
pub enum Remote {
    /// A TCP connection.
    Tcp(Connection),
    /// Our UDP node, the address, and the task serving the node (replies arrive through it).
    Udp(UdpHandle, SocketAddr, JoinHandle<()>),
}

impl Remote {
    /// Connect (TCP) or bind a node of the address's family on any port (UDP).
    pub async fn open(
        target: &Target,
        plugins: &Plugins,
        timeout: Duration,
    ) -> Result<Remote, Failure> {
        match target.transport {
            Transport::Tcp => {
                let client = plugins
                    .client(TcpClient::builder())
                    .request_timeout(timeout)
                    .build();
                let conn = client
                    .connect(target.host_port.as_str())
                    .await
                    .map_err(|e| Failure::connect(&e))?;
                Ok(Remote::Tcp(conn))
            }
            Transport::Udp => {
                let addr = target.resolve().await?;
                let any: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let node = plugins
                    .udp(UdpNode::builder())
                    .address(any)
                    .router(Router::new())
                    .request_timeout(timeout)
                    .bind()
                    .await
                    .map_err(|e| Failure::other(format!("cannot bind a UDP socket: {e}")))?;
                let handle = node.handle();
                let task = tokio::spawn(node.serve());
                Ok(Remote::Udp(handle, addr, task))
            }
        }
    }

    /// Start a call: to the address, or with `via` to that peer through the relay at the
    /// address (TCP only; `open` refuses the rest).
    pub fn start_call(&self, msg: Message, opts: &CallOptions, via: Option<&Peer>) -> PendingCall {
        match (self, via) {
            (Remote::Tcp(conn), None) => conn.start_call(msg, opts),
            (Remote::Tcp(conn), Some(peer)) => conn.start_call_via_relay(peer, msg, opts),
            (Remote::Udp(handle, addr, _), _) => handle.start_call(*addr, msg, opts),
        }
    }

    /// Send without waiting for a reply.
    pub async fn send(&self, msg: &Message) -> Result<(), Failure> {
        let sent = match self {
            Remote::Tcp(conn) => conn.send(msg).await,
            Remote::Udp(handle, addr, _) => handle.send(*addr, msg).await,
        };
        sent.map_err(|e| Failure::send(&e))
    }

    /// Close gracefully: what is queued is written first.
    pub async fn close(self) {
        match self {
            Remote::Tcp(conn) => conn.close().await,
            Remote::Udp(handle, _, task) => {
                handle.shutdown();
                let _ = task.await;
            }
        }
    }
}
