//! Methods shared word for word by the three node handles, written once. (The builders'
//! shared setters are methods of the generic `NodeBuilder`, `node/builder.rs`.)

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
