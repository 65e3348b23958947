//! The Python profile: `python_compat()` on [`TcpServerBuilder`], [`TcpClientBuilder`] and
//! [`UdpNodeBuilder`]. It sets Python's encodings and conventions through the builders' own
//! setters (and, for what has no public setter, their crate-visible fields), so that the
//! transports know nothing of this module: a transport's native defaults are its only
//! conventions, and this file is the one place that turns them into Python's.

use std::sync::Arc;

use super::{PackifyCodec, PackifyPeerPlugin, python_error};
use crate::node::requests::Matching;
use crate::tcp::{TcpClientBuilder, TcpServerBuilder};
use crate::udp::UdpNodeBuilder;

impl TcpServerBuilder {
    /// Python-compatible mode (default off): the auth block as Python's packify
    /// ([`PackifyCodec`]) and peers packed as Python's `DefaultPeerPlugin`
    /// ([`PackifyPeerPlugin`]), so that Python netaio 0.0.9 clients can talk to this server. The
    /// error replies already follow Python's conventions (see [`compat`](crate::compat)). Choose
    /// the plugins separately, for example [`LegacyHmacAuth`](crate::compat::LegacyHmacAuth) to
    /// match Python's `HMACAuthPlugin`.
    ///
    /// It also switches the idle timeout off, as Python has none: a Python client never
    /// reconnects, so one that subscribes and then waits quietly for notifications would be cut
    /// off for good. Call [`idle_timeout`](Self::idle_timeout) after this to set one anyway; the
    /// other limits (read timeout of a started frame, connection limit) stay on.
    ///
    /// ```
    /// use netaio::compat::LegacyHmacAuth;
    /// use netaio::TcpServer;
    ///
    /// let builder = TcpServer::builder()
    ///     .address(([127, 0, 0, 1], 8888))
    ///     .python_compat()
    ///     .auth(LegacyHmacAuth::new("secret"));
    /// ```
    #[must_use]
    #[cfg_attr(docsrs, doc(cfg(feature = "python-compat")))]
    pub fn python_compat(self) -> Self {
        self.auth_codec(Arc::new(PackifyCodec))
            .peer_plugin(PackifyPeerPlugin)
            .idle_timeout(None)
    }
}

impl TcpClientBuilder {
    /// Python-compatible mode (default off), for Python netaio 0.0.9 servers: the auth block as
    /// Python's packify ([`PackifyCodec`]), peers packed as Python's `DefaultPeerPlugin`
    /// ([`PackifyPeerPlugin`]), and Python's error replies understood: an error-type reply
    /// without a reply reference that matches no request by uri (Python answers with uri
    /// `ERROR`, or an empty uri for its default NOT_FOUND) answers the oldest waiting request,
    /// even when it failed the instance auth check (Python sends AUTH_ERROR without a MAC). A
    /// wrong secret or an unknown route then fails a request at once with
    /// [`RequestError::Auth`](crate::RequestError::Auth) or
    /// [`RequestError::NotFound`](crate::RequestError::NotFound) instead of a timeout. Choose the
    /// plugins separately (see [`compat`](crate::compat)).
    ///
    /// ```
    /// use netaio::compat::{LegacyHmacAuth, LegacySha256StreamCipher};
    /// use netaio::TcpClient;
    ///
    /// let client = TcpClient::builder()
    ///     .python_compat()
    ///     .auth(LegacyHmacAuth::new("secret"))
    ///     .cipher(LegacySha256StreamCipher::new("key"))
    ///     .build();
    /// ```
    #[must_use]
    #[cfg_attr(docsrs, doc(cfg(feature = "python-compat")))]
    pub fn python_compat(self) -> Self {
        let mut b = self
            .auth_codec(Arc::new(PackifyCodec))
            .peer_plugin(PackifyPeerPlugin);
        b.matching = Matching::Python;
        b
    }
}

impl UdpNodeBuilder {
    /// Python-compatible mode (default off), for Python 0.0.9 nodes: the auth block as Python's
    /// packify ([`PackifyCodec`]), peers packed as Python's `DefaultPeerPlugin`
    /// ([`PackifyPeerPlugin`]), Python's multicast setup (with the `multicast` feature, on by
    /// default: `MulticastConfig::python()`, the all-hosts group `224.0.0.1` on the node's own
    /// port, joined at bind as Python's node does; call `multicast` after this for another
    /// group), and Python's UDP default reply for an unrouted message: NOT_FOUND `not found` with
    /// uri `ERROR` ([`python_error`]`("not found")`, Python's `make_error_msg`; the TCP server's
    /// has an empty uri). Choose the plugins separately (see [`compat`](crate::compat)); add
    /// [`peer_management`](Self::peer_management) for Python's adverts (its defaults are
    /// Python's: app id `netaio`, every 20 s, 60 s timeout).
    ///
    /// Without the `multicast` feature the node joins no group: it talks to Python nodes by
    /// unicast only (requests, replies, [`advertise_to`](crate::UdpHandle::advertise_to)).
    ///
    /// What stays the node's own: nothing that fails to decode or fails a check is answered (the
    /// Python node answers those, which makes it a reflector), error-type messages are never
    /// answered (two Python nodes answer each other's NOT_FOUND forever), a node does not drop
    /// datagrams by source IP (Python's `ignore_own_ip`), and a datagram with bytes after its
    /// frame is refused (Python ignores them; Python never sends them).
    ///
    /// Return routability (see [`UdpNode`](crate::udp::UdpNode#return-routability)) stays on: a
    /// Python node cannot echo a cookie (it sends no request id to be challenged on, and knows no
    /// challenge), so what it gets depends on its auth:
    ///
    /// - with [`LegacyHmacAuth`](super::LegacyHmacAuth) and its
    ///   [`freshness`](super::LegacyHmacAuth::freshness) checks on, its datagrams verify its
    ///   address: full replies, and its subscriptions count. Without the freshness checks
    ///   Python's MAC can be replayed from a forged address, so it verifies nothing;
    /// - without, its address is never verified: it gets replies no larger than its datagram
    ///   (a larger error reply is shortened to its type, anything else larger is dropped, both
    ///   counted in [`UdpStats::replies_limited`](crate::udp::UdpStats::replies_limited)), and
    ///   its subscriptions are refused. Python's request/reply of equal sizes (an echo) works;
    ///   a small request for a large answer does not. That is the price of not being an
    ///   amplifier for whoever forges a Python node's address; give the network a secret.
    ///
    /// And subscriptions do not expire ([`subscription_ttl`](Self::subscription_ttl)`(None)`):
    /// a Python subscriber subscribes once and never renews. They are still limited per address
    /// and evicted, the least recently made first, at the node-wide limit.
    ///
    /// ```
    /// use netaio::compat::LegacyHmacAuth;
    /// use netaio::udp::UdpNode;
    ///
    /// let builder = UdpNode::builder()
    ///     .address(([0, 0, 0, 0], 8888))
    ///     .python_compat()
    ///     .auth(LegacyHmacAuth::new("secret"));
    /// ```
    #[must_use]
    #[cfg_attr(docsrs, doc(cfg(feature = "python-compat")))]
    pub fn python_compat(self) -> Self {
        let mut b = self
            .auth_codec(Arc::new(PackifyCodec))
            .peer_plugin(PackifyPeerPlugin);
        #[cfg(feature = "multicast")]
        {
            b = b.multicast(crate::udp::MulticastConfig::python());
        }
        b.matching = Matching::Python;
        b.kind.not_found = python_error("not found");
        b.kind.subscription_ttl = None;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageType;

    #[test]
    fn the_udp_profile_sets_pythons_conventions() {
        let native = UdpNodeBuilder::default();
        assert_eq!(native.matching, Matching::Native);
        assert_eq!(native.kind.not_found, crate::Message::not_found());
        let python = UdpNodeBuilder::default().python_compat();
        assert_eq!(python.matching, Matching::Python);
        // Python's `make_error_msg("not found")`: uri `ERROR`, unlike the native empty uri.
        assert_eq!(python.kind.not_found.message_type, MessageType::NOT_FOUND);
        assert_eq!(python.kind.not_found.uri().as_ref(), b"ERROR");
        assert_eq!(python.kind.not_found.content().as_ref(), b"not found");
        // Python subscribers never renew: their subscriptions do not expire.
        assert_eq!(
            native.kind.subscription_ttl,
            Some(UdpNodeBuilder::DEFAULT_SUBSCRIPTION_TTL)
        );
        assert_eq!(python.kind.subscription_ttl, None);
    }

    #[cfg(feature = "multicast")]
    #[test]
    fn the_udp_profile_joins_pythons_group() {
        let python = format!("{:?}", UdpNodeBuilder::default().python_compat());
        let group = format!("{:?}", crate::udp::MulticastConfig::python());
        assert!(
            python.contains(&format!("multicast: Some({group})")),
            "{python}"
        );
    }

    #[test]
    fn the_tcp_client_profile_matches_pythons_error_replies() {
        assert_eq!(TcpClientBuilder::default().matching, Matching::Native);
        assert_eq!(
            TcpClientBuilder::default().python_compat().matching,
            Matching::Python
        );
    }
}
