//! What the integration tests share.

use netaio::Message;
use netaio::plugin::{AuthError, AuthPlugin, PluginContext};

/// Accepts messages carrying a fixed token in the auth field `token` (a test plugin, not
/// security): `make` adds it, `check` removes it and refuses a missing or different one.
#[derive(Clone)]
pub struct Token(pub &'static [u8]);

impl AuthPlugin for Token {
    fn make(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        msg.auth.insert("token", self.0);
        Ok(())
    }
    fn check(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        match msg.auth.remove("token") {
            Some(t) if t.as_ref() == self.0 => Ok(()),
            Some(_) => Err(AuthError::Invalid),
            None => Err(AuthError::MissingField("token".into())),
        }
    }
}
