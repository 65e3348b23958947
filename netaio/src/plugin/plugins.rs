//! [`Plugins`] (an auth and a cipher plugin), [`SendOptions`], the auth-error hook, and a
//! node's plugin setup.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::Message;
use crate::peer::Peer;

/// An auth plugin and a cipher plugin, either optional: a node's instance plugins, or the inner
/// plugins of one handler or one call.
///
/// ```
/// use netaio::plugin::Plugins;
/// let none = Plugins::new();
/// assert!(none.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Plugins {
    /// The auth plugin.
    pub auth: Option<Arc<dyn AuthPlugin>>,
    /// The cipher plugin.
    pub cipher: Option<Arc<dyn CipherPlugin>>,
}

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugins")
            .field("auth", &self.auth.is_some())
            .field("cipher", &self.cipher.is_some())
            .finish()
    }
}

impl Plugins {
    /// No plugins.
    pub const fn new() -> Self {
        Self {
            auth: None,
            cipher: None,
        }
    }

    /// With this auth plugin.
    #[must_use]
    pub fn auth(mut self, plugin: impl AuthPlugin) -> Self {
        self.auth = Some(Arc::new(plugin));
        self
    }

    /// With this (shared) auth plugin.
    #[must_use]
    pub fn auth_arc(mut self, plugin: Arc<dyn AuthPlugin>) -> Self {
        self.auth = Some(plugin);
        self
    }

    /// With this cipher plugin.
    #[must_use]
    pub fn cipher(mut self, plugin: impl CipherPlugin) -> Self {
        self.cipher = Some(Arc::new(plugin));
        self
    }

    /// With this (shared) cipher plugin.
    #[must_use]
    pub fn cipher_arc(mut self, plugin: Arc<dyn CipherPlugin>) -> Self {
        self.cipher = Some(plugin);
        self
    }

    /// True when neither plugin is set.
    pub fn is_empty(&self) -> bool {
        self.auth.is_none() && self.cipher.is_none()
    }

    /// True when a plugin is peer-specific.
    pub fn is_peer_specific(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| a.is_peer_specific())
            || self.cipher.as_ref().is_some_and(|c| c.is_peer_specific())
    }

    /// True when the auth plugin's `make` is CPU-heavy.
    pub fn is_blocking(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| a.is_blocking())
    }

    /// These plugins with the auth and/or cipher switched off (`use_auth` / `use_cipher`).
    #[must_use]
    pub fn select(&self, use_auth: bool, use_cipher: bool) -> Self {
        Self {
            auth: self.auth.clone().filter(|_| use_auth),
            cipher: self.cipher.clone().filter(|_| use_cipher),
        }
    }
}

/// A message that failed an auth check, as given to the auth-error hook.
#[derive(Clone, Copy)]
pub struct AuthFailure<'a> {
    /// The message as received.
    pub message: &'a Message,
    /// Why the check failed.
    pub error: &'a AuthError,
    /// Instance or inner plugin.
    pub stage: Stage,
    /// The plugin that refused it.
    pub plugin: &'a dyn AuthPlugin,
    /// The sender's address.
    pub addr: SocketAddr,
}

impl fmt::Debug for AuthFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFailure")
            .field("type", &self.message.message_type)
            .field("error", self.error)
            .field("stage", &self.stage)
            .field("addr", &self.addr)
            .finish()
    }
}

/// Decides the reply to a message that failed an auth check (sent without plugins); `None` sends
/// nothing. Set with the transports' `auth_error_hook`.
pub type AuthErrorHook = Arc<dyn Fn(&AuthFailure<'_>) -> Option<Message> + Send + Sync>;

/// The default auth-error hook: the plugin's [`AuthPlugin::error_reply`], except for a message that
/// is itself an error (no error ping-pong).
pub fn default_auth_error_reply(failure: &AuthFailure<'_>) -> Option<Message> {
    if failure.message.message_type.is_error() {
        None
    } else {
        Some(failure.plugin.error_reply(failure.error))
    }
}

/// Per-call options for sending: inner plugins and the `use_auth` / `use_cipher` switches for the
/// node's instance plugins, and for requests a timeout.
///
/// ```
/// use std::time::Duration;
/// use netaio::plugin::SendOptions;
///
/// let opts = SendOptions::new().use_cipher(false).timeout(Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Inner plugins for this call (a request's reply is opened with them too).
    pub inner: Plugins,
    /// Apply the instance auth plugin (default true).
    pub use_auth: bool,
    /// Apply the instance cipher plugin (default true).
    pub use_cipher: bool,
    /// Request timeout; `None` uses the node's default.
    pub timeout: Option<std::time::Duration>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            inner: Plugins::new(),
            use_auth: true,
            use_cipher: true,
            timeout: None,
        }
    }
}

impl SendOptions {
    /// The defaults: instance plugins on, no inner plugins, the node's timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// With these inner plugins.
    #[must_use]
    pub fn inner(mut self, inner: Plugins) -> Self {
        self.inner = inner;
        self
    }

    /// True when a plugin applied under these options is peer-specific.
    pub(crate) fn is_peer_specific(&self, outer: &Plugins) -> bool {
        self.inner.is_peer_specific()
            || outer
                .select(self.use_auth, self.use_cipher)
                .is_peer_specific()
    }

    /// Switch the instance auth plugin on or off.
    #[must_use]
    pub fn use_auth(mut self, on: bool) -> Self {
        self.use_auth = on;
        self
    }

    /// Switch the instance cipher plugin on or off.
    #[must_use]
    pub fn use_cipher(mut self, on: bool) -> Self {
        self.use_cipher = on;
        self
    }

    /// With this request timeout.
    #[must_use]
    pub fn timeout(mut self, t: std::time::Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// A node's plugin setup, shared by its connections.
#[derive(Clone)]
pub(crate) struct NodePlugins {
    pub(crate) outer: Plugins,
    pub(crate) local: Option<Peer>,
    pub(crate) peer_plugin: Arc<dyn PeerPlugin>,
    pub(crate) auth_error: AuthErrorHook,
    /// [`PluginContext::node`]; drawn again by [`for_new_node`](Self::for_new_node).
    pub(crate) node: u64,
}

impl fmt::Debug for NodePlugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodePlugins")
            .field("outer", &self.outer)
            .field("local", &self.local.as_ref().map(|p| &p.id))
            .finish_non_exhaustive()
    }
}

impl Default for NodePlugins {
    fn default() -> Self {
        Self {
            outer: Plugins::new(),
            local: None,
            peer_plugin: Arc::new(PostcardPeerPlugin),
            auth_error: Arc::new(default_auth_error_reply),
            node: rand::random(),
        }
    }
}

impl NodePlugins {
    /// The setup for a node being bound or built: its own instance id, whatever template (a
    /// cloned builder) it came from.
    pub(crate) fn for_new_node(mut self) -> Self {
        self.node = rand::random();
        self
    }

    pub(crate) fn ctx<'a>(
        &'a self,
        peer: Option<&'a Peer>,
        addr: Option<SocketAddr>,
    ) -> PluginContext<'a> {
        PluginContext {
            peer,
            addr,
            local: self.local.as_ref(),
            peer_plugin: Some(&*self.peer_plugin),
            node: Some(self.node),
        }
    }

    /// Seal inline (for synchronous callers).
    pub(crate) fn seal_now(
        &self,
        msg: Message,
        opts: &SendOptions,
        peer: Option<&Peer>,
        addr: Option<SocketAddr>,
    ) -> Result<Message, SealError> {
        let outer = self.outer.select(opts.use_auth, opts.use_cipher);
        seal(msg, &opts.inner, &outer, &self.ctx(peer, addr))
    }

    /// Seal, on the blocking pool when a plugin says its `make` is CPU-heavy.
    pub(crate) async fn seal(
        &self,
        msg: Message,
        opts: &SendOptions,
        peer: Option<&Peer>,
        addr: Option<SocketAddr>,
    ) -> Result<Message, SealError> {
        let outer = self.outer.select(opts.use_auth, opts.use_cipher);
        if !(outer.is_blocking() || opts.inner.is_blocking()) {
            return seal(msg, &opts.inner, &outer, &self.ctx(peer, addr));
        }
        let this = self.clone();
        let inner = opts.inner.clone();
        let peer = peer.cloned();
        let joined = tokio::task::spawn_blocking(move || {
            seal(msg, &inner, &outer, &this.ctx(peer.as_ref(), addr))
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(SealError::Auth {
                stage: Stage::Outer,
                source: AuthError::Other(format!("sealing task failed: {e}")),
            })
        })
    }
}
