//! `auth = ...` and `cipher = ...` attach inner plugins to a route, on a function and on a service
//! method (where the expression may use `self`, the service's `Arc`).

use netaio::plugin::{
    AuthError, AuthPlugin, CipherError, CipherPlugin, PluginContext,
};
use netaio::router::{IntoRoute, Service};
use netaio::{Message, on, once, service};
use std::sync::Arc;

#[derive(Clone)]
struct Token(&'static [u8]);

impl AuthPlugin for Token {
    fn make(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        msg.auth.insert("token", self.0);
        Ok(())
    }
    fn check(&self, msg: &mut Message, _: &PluginContext<'_>) -> Result<(), AuthError> {
        msg.auth.remove("token").map(|_| ()).ok_or(AuthError::Invalid)
    }
}

struct Plain;

impl CipherPlugin for Plain {
    fn encrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
        Ok(msg)
    }
    fn decrypt(&self, msg: Message, _: &PluginContext<'_>) -> Result<Message, CipherError> {
        Ok(msg)
    }
}

#[on(REQUEST_URI, uri = "both", auth = Token(b"t"), cipher = Plain)]
async fn both() {}

#[once(REQUEST_URI, cipher = Plain)]
async fn cipher_only() {}

#[on(REQUEST_URI, uri = "none")]
async fn none() {}

struct Svc {
    token: Token,
}

#[service]
impl Svc {
    #[on(REQUEST_URI, uri = "svc", auth = self.token.clone())]
    async fn guarded(&self) {}
}

fn main() {
    let r = both {}.into_route();
    assert!(r.inner().auth.is_some() && r.inner().cipher.is_some());
    let r = cipher_only {}.into_route();
    assert!(r.inner().auth.is_none() && r.inner().cipher.is_some());
    assert!(none {}.into_route().inner().is_empty());
    let routes = Arc::new(Svc { token: Token(b"s") }).routes();
    assert!(routes[0].inner().auth.is_some());
}
