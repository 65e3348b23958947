//! The fixed plugin order as plain functions.

use super::{AuthError, CipherError, PluginContext, Plugins};
use crate::Message;

/// Which layer a plugin belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The node's instance plugins.
    Outer,
    /// A handler's or a call's inner plugins.
    Inner,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Outer => "instance",
            Stage::Inner => "inner",
        })
    }
}

/// Preparing an outgoing message failed; nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// An auth plugin could not make its fields.
    #[error("{stage} auth: {source}")]
    Auth {
        /// Which layer.
        stage: Stage,
        /// Why.
        source: AuthError,
    },
    /// A cipher plugin could not encrypt.
    #[error("{stage} cipher: {source}")]
    Cipher {
        /// Which layer.
        stage: Stage,
        /// Why.
        source: CipherError,
    },
}

/// An incoming message failed a check; it must not be processed further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// An auth check failed.
    #[error("{stage} auth: {source}")]
    Auth {
        /// Which layer.
        stage: Stage,
        /// Why.
        source: AuthError,
    },
    /// Decryption failed.
    #[error("{stage} cipher: {source}")]
    Cipher {
        /// Which layer.
        stage: Stage,
        /// Why.
        source: CipherError,
    },
}

fn seal_layer(
    mut msg: Message,
    plugins: &Plugins,
    stage: Stage,
    ctx: &PluginContext<'_>,
) -> Result<Message, SealError> {
    if let Some(c) = &plugins.cipher {
        msg = c
            .encrypt(msg, ctx)
            .map_err(|source| SealError::Cipher { stage, source })?;
    }
    if let Some(a) = &plugins.auth {
        a.make(&mut msg, ctx)
            .map_err(|source| SealError::Auth { stage, source })?;
    }
    Ok(msg)
}

fn open_layer(
    mut msg: Message,
    plugins: &Plugins,
    stage: Stage,
    ctx: &PluginContext<'_>,
) -> Result<Message, OpenError> {
    if let Some(a) = &plugins.auth {
        a.check(&mut msg, ctx)
            .map_err(|source| OpenError::Auth { stage, source })?;
    }
    if let Some(c) = &plugins.cipher {
        msg = c
            .decrypt(msg, ctx)
            .map_err(|source| OpenError::Cipher { stage, source })?;
    }
    Ok(msg)
}

/// Prepare an outgoing message: inner cipher encrypt → inner auth make → instance cipher encrypt →
/// instance auth make.
///
/// ```
/// use netaio::plugin::{seal, open_outer, open_inner, Plugins, PluginContext};
/// use netaio::Message;
///
/// let msg = Message::ok("x", "y");
/// let ctx = PluginContext::default();
/// let sealed = seal(msg.clone(), &Plugins::new(), &Plugins::new(), &ctx).unwrap();
/// let opened = open_inner(open_outer(sealed, &Plugins::new(), &ctx).unwrap(), &Plugins::new(), &ctx).unwrap();
/// assert_eq!(opened, msg);
/// ```
pub fn seal(
    msg: Message,
    inner: &Plugins,
    outer: &Plugins,
    ctx: &PluginContext<'_>,
) -> Result<Message, SealError> {
    let msg = seal_layer(msg, inner, Stage::Inner, ctx)?;
    seal_layer(msg, outer, Stage::Outer, ctx)
}

/// The receive steps before routing: instance auth check → instance cipher decrypt.
pub fn open_outer(
    msg: Message,
    outer: &Plugins,
    ctx: &PluginContext<'_>,
) -> Result<Message, OpenError> {
    open_layer(msg, outer, Stage::Outer, ctx)
}

/// The receive steps after routing: inner auth check → inner cipher decrypt.
pub fn open_inner(
    msg: Message,
    inner: &Plugins,
    ctx: &PluginContext<'_>,
) -> Result<Message, OpenError> {
    open_layer(msg, inner, Stage::Inner, ctx)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::plugin::{AuthPlugin, CipherPlugin};

    type Log = Arc<Mutex<Vec<String>>>;

    struct RecAuth(&'static str, Log, bool);
    impl AuthPlugin for RecAuth {
        fn make(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
            self.1.lock().unwrap().push(format!("{} make", self.0));
            msg.auth.insert(self.0, "1");
            Ok(())
        }
        fn check(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
            self.1.lock().unwrap().push(format!("{} check", self.0));
            if self.2 {
                return Err(AuthError::Invalid);
            }
            msg.auth
                .remove(self.0)
                .map(|_| ())
                .ok_or(AuthError::MissingField(self.0.into()))
        }
    }

    struct RecCipher(&'static str, Log);
    impl CipherPlugin for RecCipher {
        fn encrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
            self.1.lock().unwrap().push(format!("{} encrypt", self.0));
            let c = [self.0.as_bytes(), b"(", msg.content(), b")"].concat();
            Ok(msg.with_content(c))
        }
        fn decrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
            self.1.lock().unwrap().push(format!("{} decrypt", self.0));
            let c = msg.content().clone();
            let inner = c
                .strip_prefix(self.0.as_bytes())
                .and_then(|r| r.strip_prefix(b"("))
                .and_then(|r| r.strip_suffix(b")"))
                .ok_or(CipherError::Decrypt)?;
            let inner = bytes::Bytes::copy_from_slice(inner);
            Ok(msg.with_content(inner))
        }
    }

    fn plugins(prefix: &'static str, log: &Log, fail_check: bool) -> Plugins {
        let (a, c) = match prefix {
            "inner" => ("inner-auth", "inner-cipher"),
            _ => ("outer-auth", "outer-cipher"),
        };
        Plugins::new()
            .auth(RecAuth(a, log.clone(), fail_check))
            .cipher(RecCipher(c, log.clone()))
    }

    #[test]
    fn order_is_fixed_both_ways() {
        let log: Log = Arc::default();
        let inner = plugins("inner", &log, false);
        let outer = plugins("outer", &log, false);
        let ctx = PluginContext::default();
        let msg = Message::ok("u", "hello");
        let sealed = seal(msg.clone(), &inner, &outer, &ctx).unwrap();
        assert_eq!(
            sealed.content().as_ref(),
            b"outer-cipher(inner-cipher(hello))"
        );
        let routed = open_outer(sealed, &outer, &ctx).unwrap();
        let opened = open_inner(routed, &inner, &ctx).unwrap();
        assert_eq!(opened, msg);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "inner-cipher encrypt",
                "inner-auth make",
                "outer-cipher encrypt",
                "outer-auth make",
                "outer-auth check",
                "outer-cipher decrypt",
                "inner-auth check",
                "inner-cipher decrypt",
            ]
        );
    }

    #[test]
    fn failed_check_stops_before_decrypt() {
        let log: Log = Arc::default();
        let outer = plugins("outer", &log, true);
        let ctx = PluginContext::default();
        let sealed = seal(
            Message::ok("u", "x"),
            &Plugins::new(),
            &plugins("outer", &log, false),
            &ctx,
        )
        .unwrap();
        log.lock().unwrap().clear();
        let err = open_outer(sealed, &outer, &ctx).unwrap_err();
        assert!(matches!(
            err,
            OpenError::Auth {
                stage: Stage::Outer,
                source: AuthError::Invalid
            }
        ));
        assert_eq!(*log.lock().unwrap(), ["outer-auth check"]);
    }

    #[test]
    fn switches_select_instance_plugins() {
        let log: Log = Arc::default();
        let p = plugins("outer", &log, false);
        assert!(p.select(false, true).auth.is_none());
        assert!(p.select(false, true).cipher.is_some());
        assert!(p.select(true, false).cipher.is_none());
        assert!(p.select(false, false).is_empty());
    }
}
