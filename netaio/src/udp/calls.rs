//! Calls with options over UDP ([`UdpHandle::start_call`], [`UdpHandle::call_any`]) and what the
//! request table reports (late replies, counters, round-trip estimates).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

use super::UdpHandle;
use crate::Message;
use crate::error::{RequestError, SendError};
use crate::message::fields;
use crate::node::relay::RelayAddress;
use crate::node::requests::{
    self, CallLink, CallOptions, CallTarget, LateReply, PendingCall, RequestStats, Requests,
    RttEstimate,
};
use crate::peer::Peer;
use crate::plugin::SendOptions;

/// A UDP node and one address, as a call link: the peer's, or the relay's that the call goes
/// through.
pub(super) struct UdpLink {
    pub(super) node: UdpHandle,
    pub(super) addr: SocketAddr,
    /// Through the relay at `addr`: the request table's entry is the relay's address (the reply
    /// comes from there), the request goes in an envelope.
    pub(super) via: Option<Via>,
}

/// Where a call through a relay goes.
pub(super) struct Via {
    /// The recipient, at the relay.
    pub(super) to: RelayAddress,
    /// Its record, for peer-specific plugins.
    pub(super) peer: Arc<Peer>,
}

impl CallLink for UdpLink {
    type Peer = SocketAddr;

    fn requests(&self) -> &Requests<SocketAddr> {
        &self.node.shared.requests
    }

    fn peer(&self) -> SocketAddr {
        self.addr
    }

    fn ready(&self) -> Result<(), RequestError> {
        if self.node.shared.cancel.is_cancelled() {
            Err(SendError::Stopped.into())
        } else {
            Ok(())
        }
    }

    async fn send(&self, msg: Message, opts: &SendOptions) -> Result<(), SendError> {
        match &self.via {
            None => self.node.send_request(self.addr, msg, opts).await,
            // The relay's challenge is answered on the envelope (see `send_envelope`).
            Some(v) => {
                let peer = Some(&*v.peer);
                self.node
                    .send_envelope(self.addr, &v.to, msg, opts, peer)
                    .await
            }
        }
    }

    /// A return-routability challenge (the peer's, or the relay's to the envelope): its
    /// cookie goes on the request, or the envelope, sent again.
    fn challenge(&self, answer: &Result<Message, RequestError>) -> Option<(&'static str, Bytes)> {
        match answer {
            Err(RequestError::NotPermitted(reply)) => reply
                .auth
                .get(fields::COOKIE)
                .map(|c| (fields::COOKIE, c.clone())),
            _ => None,
        }
    }
}

impl UdpHandle {
    /// Start a call to `addr` with options (soft timeout, retries, …): a [`PendingCall`] to
    /// await for the reply, whose [`soft_timeout`](PendingCall::soft_timeout) can be selected
    /// on. With [`retry`](CallOptions::retry), the request is sent again (same id, sealed
    /// afresh) each time a soft timeout passes. A request that cannot leave fails at once.
    pub fn start_call(&self, addr: SocketAddr, msg: Message, opts: &CallOptions) -> PendingCall {
        requests::start_call(
            UdpLink {
                node: self.clone(),
                addr,
                via: None,
            },
            msg,
            opts,
        )
    }

    /// A hedged call to the first of `addrs`, then, on its soft timeout or failure, the next
    /// (see [`call_any`](crate::call_any)).
    pub async fn call_any(
        &self,
        addrs: &[SocketAddr],
        msg: Message,
        opts: &CallOptions,
    ) -> Result<Message, RequestError> {
        let targets: Vec<(UdpHandle, SocketAddr)> =
            addrs.iter().map(|a| (self.clone(), *a)).collect();
        requests::call_any(&targets, msg, opts).await
    }

    /// Replies that came after their call's hard timeout, from now on (bounded: a receiver
    /// further behind than the configured buffer loses the oldest).
    pub fn late_replies(&self) -> broadcast::Receiver<LateReply> {
        self.shared.requests.late_replies()
    }

    /// The counters of this node's requests, and of the requests it answered from its
    /// at-most-once cache.
    pub fn request_stats(&self) -> RequestStats {
        self.shared.requests.stats(self.shared.dedup.duplicates())
    }

    /// The round-trip estimates per address and route (empty unless adaptive timeouts are on).
    pub fn rtt_estimates(&self) -> Vec<(SocketAddr, RttEstimate)> {
        self.shared.requests.rtt_estimates()
    }
}

impl CallTarget for (UdpHandle, SocketAddr) {
    fn start_call(&self, msg: Message, opts: &CallOptions) -> PendingCall {
        self.0.start_call(self.1, msg, opts)
    }
}
