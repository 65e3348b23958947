//! Methods shared word for word by the three node kinds, written once.

/// The plugin setters of `TcpServerBuilder`, `TcpClientBuilder` and `UdpNodeBuilder` (each has a
/// `plugins: NodePlugins` field).
macro_rules! plugin_setters {
    () => {
        /// The instance auth plugin (default none): every message is checked on receive and made
        /// on send.
        #[must_use]
        pub fn auth(self, plugin: impl $crate::plugin::AuthPlugin) -> Self {
            self.auth_arc(::std::sync::Arc::new(plugin))
        }

        /// The instance auth plugin, shared (default none).
        #[must_use]
        pub fn auth_arc(
            mut self,
            plugin: ::std::sync::Arc<dyn $crate::plugin::AuthPlugin>,
        ) -> Self {
            self.plugins.outer.auth = Some(plugin);
            self
        }

        /// The instance cipher plugin (default none): every message is decrypted on receive and
        /// encrypted on send.
        #[must_use]
        pub fn cipher(self, plugin: impl $crate::plugin::CipherPlugin) -> Self {
            self.cipher_arc(::std::sync::Arc::new(plugin))
        }

        /// The instance cipher plugin, shared (default none).
        #[must_use]
        pub fn cipher_arc(
            mut self,
            plugin: ::std::sync::Arc<dyn $crate::plugin::CipherPlugin>,
        ) -> Self {
            self.plugins.outer.cipher = Some(plugin);
            self
        }

        /// The peer plugin (default [`PostcardPeerPlugin`]($crate::plugin::PostcardPeerPlugin)).
        #[must_use]
        pub fn peer_plugin(mut self, plugin: impl $crate::plugin::PeerPlugin) -> Self {
            self.plugins.peer_plugin = ::std::sync::Arc::new(plugin);
            self
        }

        /// This node's own peer (id and data), given to plugins (default none; with peer
        /// management, a random id).
        #[must_use]
        pub fn local_peer(mut self, peer: $crate::peer::Peer) -> Self {
            self.plugins.local = Some(peer);
            self
        }
    };
}

/// The request setters of `TcpServerBuilder`, `TcpClientBuilder` and `UdpNodeBuilder` (each has a
/// `requests: RequestSettings` field): the node's defaults for its calls, its late replies and
/// its at-most-once cache.
macro_rules! request_setters {
    () => {
        /// The soft timeout of calls that set none (default `None`): see
        /// [`CallOptions::soft_timeout`]($crate::CallOptions::soft_timeout). Only calls made with
        /// options (`start_call`, [`call_any`]($crate::call_any)) act on it; `call` and
        /// `request` wait for the reply or the hard timeout as before.
        #[must_use]
        pub fn soft_timeout(mut self, t: Option<::std::time::Duration>) -> Self {
            self.requests.soft_timeout = t.map($crate::node::sane);
            self
        }

        /// Adaptive timeouts (default `None`: off): calls that set no timeout get soft and hard
        /// timeouts from the round trips measured per (peer, route); see
        /// [`AdaptiveTimeouts`]($crate::AdaptiveTimeouts).
        #[must_use]
        pub fn adaptive_timeouts(mut self, config: Option<$crate::AdaptiveTimeouts>) -> Self {
            self.requests.adaptive = config;
            self
        }

        /// How the node remembers requests that timed out, for their late replies (default
        /// [`LateReplyConfig::default`]($crate::LateReplyConfig)).
        #[must_use]
        pub fn late_replies(mut self, config: $crate::LateReplyConfig) -> Self {
            self.requests.late = config;
            self
        }

        /// Bounds of the cache that runs a re-sent request at most once (default
        /// [`DedupConfig::default`]($crate::DedupConfig)).
        #[must_use]
        pub fn dedup(mut self, config: $crate::DedupConfig) -> Self {
            self.requests.dedup = config;
            self
        }
    };
}

/// Route changes at run time on `ServerHandle`, `TcpClient` and `UdpHandle` (each reaches its live
/// routing table as `self.shared.routes`).
macro_rules! runtime_routes {
    () => {
        /// Add a persistent handler while running.
        #[track_caller]
        pub fn on<H: $crate::router::Handler<A>, A: 'static>(
            &self,
            key: impl Into<$crate::router::RouteKey>,
            handler: H,
        ) -> Result<(), $crate::router::RouteError> {
            self.on_with(key, handler, $crate::plugin::Plugins::new())
        }

        /// Add a persistent handler with inner plugins while running.
        #[track_caller]
        pub fn on_with<H: $crate::router::Handler<A>, A: 'static>(
            &self,
            key: impl Into<$crate::router::RouteKey>,
            handler: H,
            inner: $crate::plugin::Plugins,
        ) -> Result<(), $crate::router::RouteError> {
            let handler = $crate::router::BoxedHandler::new(handler);
            self.shared.routes.insert(key.into(), handler, false, inner)
        }

        /// Add a one-shot handler while running.
        #[track_caller]
        pub fn once<H: $crate::router::Handler<A>, A: 'static>(
            &self,
            key: impl Into<$crate::router::RouteKey>,
            handler: H,
        ) -> Result<(), $crate::router::RouteError> {
            self.once_with(key, handler, $crate::plugin::Plugins::new())
        }

        /// Add a one-shot handler with inner plugins while running.
        #[track_caller]
        pub fn once_with<H: $crate::router::Handler<A>, A: 'static>(
            &self,
            key: impl Into<$crate::router::RouteKey>,
            handler: H,
            inner: $crate::plugin::Plugins,
        ) -> Result<(), $crate::router::RouteError> {
            let handler = $crate::router::BoxedHandler::new(handler);
            self.shared.routes.insert(key.into(), handler, true, inner)
        }

        /// Remove the persistent handler at a key; false if there was none.
        pub fn remove_handler(&self, key: impl Into<$crate::router::RouteKey>) -> bool {
            self.shared.routes.remove(&key.into(), false)
        }

        /// Remove the one-shot handler at a key; false if there was none.
        pub fn remove_once(&self, key: impl Into<$crate::router::RouteKey>) -> bool {
            self.shared.routes.remove(&key.into(), true)
        }
    };
}
