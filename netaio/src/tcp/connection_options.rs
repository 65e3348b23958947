//! The settings of a TCP connection (frame size, deadlines, queues), shared by
//! [`TcpServerBuilder`](super::TcpServerBuilder) and [`TcpClientBuilder`](super::TcpClientBuilder)
//! with their setters written once.

use std::time::Duration;

use super::driver::DriverConfig;
use crate::message::MAX_FRAME;
use crate::node::NodeBuilder;

/// What every TCP connection of a node is run with, server or client.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionOptions {
    pub(crate) max_frame_size: usize,
    pub(crate) read_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_timeout: Duration,
    pub(crate) send_queue: usize,
    pub(crate) send_queue_bytes: usize,
    pub(crate) write_backlog: usize,
}

impl ConnectionOptions {
    /// The defaults, with the kind's idle timeout (a server's closes idle connections, a
    /// client's keeps them).
    pub(crate) fn with_idle_timeout(idle_timeout: Option<Duration>) -> Self {
        Self {
            max_frame_size: MAX_FRAME,
            read_timeout: Duration::from_secs(10),
            idle_timeout,
            write_timeout: Duration::from_secs(30),
            send_queue: 1024,
            send_queue_bytes: 256 * 1024,
            write_backlog: 64 * 1024,
        }
    }

    /// The connection driver's deadlines and backlog, with the server-only admission settings
    /// (`None` on a client, which opened the connection itself). `dialed`: this node opened
    /// the connection (a client's): it goes on reading while the answers it queued to what it
    /// read stay under the write backlog, whatever of its own waits to be written.
    pub(crate) fn driver(
        &self,
        handshake_timeout: Option<Duration>,
        max_auth_failures: Option<u32>,
        dialed: bool,
    ) -> DriverConfig {
        DriverConfig {
            read_timeout: self.read_timeout,
            idle_timeout: self.idle_timeout,
            write_timeout: self.write_timeout,
            handshake_timeout,
            max_auth_failures,
            write_high_water: self.write_backlog,
            read_high_water: dialed.then_some(self.write_backlog),
        }
    }
}

/// The options of a TCP kind of node (server, client): where its [`ConnectionOptions`] are.
pub(crate) trait TcpKind {
    /// The settings its connections are run with.
    fn connection(&mut self) -> &mut ConnectionOptions;
}

// The bound is sealed on purpose: the kinds are the crate's; a user picks one through its
// alias and never names the trait.
#[expect(
    private_bounds,
    reason = "a sealed bound: only the crate's kinds implement it"
)]
impl<K: TcpKind> NodeBuilder<K> {
    /// The largest frame accepted or sent, header included (default and maximum: the largest
    /// frame the header can describe). A larger incoming frame ends the connection (a server
    /// answers it with ERROR `frame too large` first).
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.kind.connection().max_frame_size = bytes.min(MAX_FRAME);
        self
    }

    /// How long a started frame may take to arrive in full (default 10 s): a peer that sends
    /// half a header and stops is disconnected after this.
    #[must_use]
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.kind.connection().read_timeout = crate::node::sane(t);
        self
    }

    /// Close a connection with no valid traffic for this long (default: 300 s on a server,
    /// `None` on a client; `None` keeps it). Valid traffic is a frame that passed the instance
    /// plugins, or a message of the node's own (`send`, `notify`, …) taken from the
    /// connection's queue; refused frames, garbage and the error replies to them do not
    /// postpone it.
    #[must_use]
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.kind.connection().idle_timeout = t.map(crate::node::sane);
        self
    }

    /// How long the peer may leave our data unread before it is disconnected (default 30 s).
    #[must_use]
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.kind.connection().write_timeout = crate::node::sane(t);
        self
    }

    /// Messages queued per connection (default 1024, at least 1). When full, `send` waits,
    /// `try_send` is [`SendError::QueueFull`](crate::SendError::QueueFull), and a server's
    /// fan-out (`broadcast`, `notify`) skips the connection.
    #[must_use]
    pub fn send_queue(mut self, n: usize) -> Self {
        self.kind.connection().send_queue = n.max(1);
        self
    }

    /// Bytes queued per connection (default 256 KiB; a larger frame is queued when the queue is
    /// otherwise empty). Beyond, `send` (and a request) waits,
    /// `try_send` is [`SendError::QueueFull`](crate::SendError::QueueFull), and a server's
    /// fan-out skips the connection (a slow reader loses messages rather than growing the
    /// server; one that does not read at all is closed by the write timeout).
    #[must_use]
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        self.kind.connection().send_queue_bytes = bytes;
        self
    }

    /// A connection's write backlog (replies and queued messages not yet taken by the socket)
    /// above which it stops reading frames and taking queued messages until the peer reads
    /// (default 64 KiB, at least 1 KiB). The backlog reaches at most this plus two frames. A
    /// client's connection stops taking queued messages there but goes on reading while the
    /// answers it queued to what it read (replies to the server's requests) stay under this:
    /// the replies to its own calls add nothing, and a client with many large calls in flight
    /// must take them while its requests wait for the server to read.
    #[must_use]
    pub fn write_backlog(mut self, bytes: usize) -> Self {
        self.kind.connection().write_backlog = bytes.max(1024);
        self
    }
}
