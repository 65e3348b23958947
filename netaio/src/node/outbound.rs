//! Preparing outgoing messages: sealed with the node's plugins and encoded, for one recipient or
//! for many at once (sealed once and the same bytes sent to all, unless a plugin is
//! peer-specific). Every transport's send, notify and broadcast goes through here.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::Message;
use crate::codec::FrameCodec;
use crate::error::SendError;
use crate::peer::Peer;
use crate::plugin::{NodePlugins, SendOptions};

/// One recipient of a fan-out: `to` is the transport's handle on it (a connection's queue, an
/// address), `addr` and `peer` what the plugins see.
#[derive(Debug)]
pub(crate) struct Recipient<T> {
    pub(crate) to: T,
    pub(crate) addr: SocketAddr,
    pub(crate) peer: Option<Arc<Peer>>,
}

impl<T> Recipient<T> {
    /// Seal for this recipient (on the blocking pool when a plugin is CPU-heavy) and encode.
    pub(crate) async fn seal(
        &self,
        plugins: &NodePlugins,
        codec: &FrameCodec,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Bytes, SendError> {
        seal(
            plugins,
            codec,
            msg,
            opts,
            self.peer.as_deref(),
            Some(self.addr),
        )
        .await
    }

    /// Seal for this recipient inline (synchronous callers) and encode.
    pub(crate) fn seal_now(
        &self,
        plugins: &NodePlugins,
        codec: &FrameCodec,
        msg: Message,
        opts: &SendOptions,
    ) -> Result<Bytes, SendError> {
        seal_now(
            plugins,
            codec,
            msg,
            opts,
            self.peer.as_deref(),
            Some(self.addr),
        )
    }
}

/// Seal for one recipient inline (synchronous callers; a CPU-heavy plugin runs here too) and
/// encode.
pub(crate) fn seal_now(
    plugins: &NodePlugins,
    codec: &FrameCodec,
    msg: Message,
    opts: &SendOptions,
    peer: Option<&Peer>,
    addr: Option<SocketAddr>,
) -> Result<Bytes, SendError> {
    let sealed = plugins.seal_now(msg, opts, peer, addr)?;
    Ok(codec.to_frame(&sealed)?)
}

/// Seal for one recipient (on the blocking pool when a plugin is CPU-heavy) and encode.
pub(crate) async fn seal(
    plugins: &NodePlugins,
    codec: &FrameCodec,
    msg: Message,
    opts: &SendOptions,
    peer: Option<&Peer>,
    addr: Option<SocketAddr>,
) -> Result<Bytes, SendError> {
    let sealed = plugins.seal(msg, opts, peer, addr).await?;
    Ok(codec.to_frame(&sealed)?)
}

/// The frame for each recipient. Sealed once when no plugin in force is peer-specific (a failure
/// then fails the whole fan-out: nothing is sent); otherwise once per recipient, and a recipient
/// its plugins cannot seal for is skipped and logged.
pub(crate) async fn seal_each<T>(
    plugins: &NodePlugins,
    codec: &FrameCodec,
    msg: &Message,
    opts: &SendOptions,
    recipients: Vec<Recipient<T>>,
) -> Result<Vec<(T, Bytes)>, SendError> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    if !opts.is_peer_specific(&plugins.outer) {
        let bytes = seal(plugins, codec, msg.clone(), opts, None, None).await?;
        return Ok(recipients
            .into_iter()
            .map(|r| (r.to, bytes.clone()))
            .collect());
    }
    let mut out = Vec::with_capacity(recipients.len());
    for r in recipients {
        match r.seal(plugins, codec, msg.clone(), opts).await {
            Ok(bytes) => out.push((r.to, bytes)),
            Err(e) => {
                tracing::warn!(peer = %r.addr, error = %e, "cannot prepare the message for one recipient; skipped")
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::plugin::{AuthError, AuthPlugin, PluginContext, Plugins};

    /// Counts `make` calls; peer-specific on demand, and refuses recipients without a peer.
    struct Counting {
        makes: Arc<AtomicUsize>,
        peer_specific: bool,
    }

    impl AuthPlugin for Counting {
        fn make(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
            self.makes.fetch_add(1, Ordering::SeqCst);
            if self.peer_specific {
                let peer = ctx.peer.ok_or(AuthError::Other("no peer".into()))?;
                msg.auth.insert("to", peer.id.clone());
            }
            Ok(())
        }
        fn check(&self, _: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
            Ok(())
        }
        fn is_peer_specific(&self) -> bool {
            self.peer_specific
        }
    }

    fn node(peer_specific: bool) -> (NodePlugins, Arc<AtomicUsize>) {
        let makes = Arc::new(AtomicUsize::new(0));
        let plugins = NodePlugins {
            outer: Plugins::new().auth(Counting {
                makes: makes.clone(),
                peer_specific,
            }),
            ..NodePlugins::default()
        };
        (plugins, makes)
    }

    fn recipients(n: u8, with_peer: bool) -> Vec<Recipient<u8>> {
        (0..n)
            .map(|i| Recipient {
                to: i,
                addr: SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(i))),
                peer: with_peer.then(|| Arc::new(Peer::new(format!("p{i}")))),
            })
            .collect()
    }

    /// [`seal_each`] with the default options.
    async fn each(
        plugins: &NodePlugins,
        codec: &FrameCodec,
        msg: &Message,
        rs: Vec<Recipient<u8>>,
    ) -> Result<Vec<(u8, Bytes)>, SendError> {
        seal_each(plugins, codec, msg, &SendOptions::default(), rs).await
    }

    #[tokio::test]
    async fn sealed_once_for_all_unless_peer_specific() {
        let codec = FrameCodec::new();
        let msg = Message::ok("k", "v");
        let (plugins, makes) = node(false);
        let out = each(&plugins, &codec, &msg, recipients(5, false))
            .await
            .unwrap();
        assert_eq!(makes.load(Ordering::SeqCst), 1);
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|(_, b)| *b == out[0].1));

        let (plugins, makes) = node(true);
        let out = each(&plugins, &codec, &msg, recipients(5, true))
            .await
            .unwrap();
        assert_eq!(makes.load(Ordering::SeqCst), 5);
        assert_eq!(
            out.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_ne!(out[0].1, out[1].1, "each recipient got its own frame");
    }

    #[tokio::test]
    async fn a_recipient_that_cannot_be_sealed_for_is_skipped_a_shared_failure_fails_all() {
        let codec = FrameCodec::new();
        let msg = Message::ok("k", "v");
        let (plugins, _) = node(true);
        let mut rs = recipients(3, true);
        rs[1].peer = None;
        let out = each(&plugins, &codec, &msg, rs).await.unwrap();
        assert_eq!(out.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [0, 2]);
        // Too large to encode: the shared frame fails, so the fan-out fails.
        let (plugins, _) = node(false);
        let big = Message::ok("k", vec![0u8; 70_000]);
        let e = each(&plugins, &codec, &big, recipients(2, false))
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Encode(_)), "{e:?}");
        let none = each(&plugins, &codec, &big, recipients(0, false))
            .await
            .unwrap();
        assert!(none.is_empty());
    }
}
