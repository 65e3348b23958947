//! Why nobody is here: datagrams refused by the room secret's check (a secret that differs, or
//! that only this side has), and datagrams sealed with a secret this side does not have. Counted
//! per source address (bounded), so that "nobody else is here yet" can say what is wrong:
//! `datagrams from 2 addresses could not be authenticated: is the room secret the same?`.
//!
//! The library counts refusals per node, not per source (`UdpHandle::stats`); [`RoomAuth`] wraps
//! the room's `HmacAuth` to see the source of each refusal.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use netaio::Message;
use netaio::plugin::{AuthError, AuthPlugin, HmacAuth, PluginContext};

/// Source addresses remembered per kind of refusal.
pub const MAX_SOURCES: usize = 64;

#[derive(Debug, Default)]
struct Sources {
    addrs: BTreeSet<SocketAddr>,
    /// Sources past [`MAX_SOURCES`], counted but not remembered.
    more: bool,
}

impl Sources {
    fn add(&mut self, addr: SocketAddr) {
        if self.addrs.len() < MAX_SOURCES {
            self.addrs.insert(addr);
        } else if !self.addrs.contains(&addr) {
            self.more = true;
        }
    }

    fn describe(&self) -> Option<String> {
        let n = self.addrs.len();
        match (n, self.more) {
            (0, _) => None,
            (1, false) => self.addrs.first().map(|a| format!("{a}")),
            (_, false) => Some(format!("{n} addresses")),
            (_, true) => Some(format!("more than {n} addresses")),
        }
    }
}

/// Datagrams refused or unreadable, by source.
#[derive(Debug, Default)]
pub struct Refusals {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// A MAC that does not verify, or none where one is needed.
    unauthenticated: Sources,
    /// A MAC that verified on a message too old or too new.
    stale: Sources,
    /// Sealed with a room secret, arriving at a chat without one.
    sealed: Sources,
}

impl Refusals {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The room check refused a datagram from `addr` for `error`.
    pub fn refused(&self, addr: SocketAddr, error: &AuthError) {
        match error {
            AuthError::MissingField(_) | AuthError::MalformedField(_) | AuthError::Invalid => {
                self.with(|i| i.unauthenticated.add(addr));
            }
            AuthError::Stale { .. } => self.with(|i| i.stale.add(addr)),
            // Its own datagrams looped back, replays and a full cache say nothing of the secret.
            _ => {}
        }
    }

    /// A datagram sealed with a room secret (it carries the MAC field) came to a chat without one.
    pub fn sealed(&self, addr: SocketAddr) {
        self.with(|i| i.sealed.add(addr));
    }

    /// One line per kind of trouble seen, each saying what to check.
    pub fn hints(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut hints = Vec::new();
        if let Some(who) = inner.unauthenticated.describe() {
            hints.push(format!(
                "datagrams from {who} could not be authenticated: is the room secret the same?"
            ));
        }
        if let Some(who) = inner.stale.describe() {
            hints.push(format!(
                "datagrams from {who} were refused as too old or too new: are the clocks in sync?"
            ));
        }
        if let Some(who) = inner.sealed.describe() {
            hints.push(format!(
                "datagrams from {who} are sealed with a room secret: start the chat with the same \
                 --room-secret to see them"
            ));
        }
        hints
    }
}

/// The room secret's `HmacAuth`, recording the source of each datagram it refuses.
pub struct RoomAuth {
    inner: HmacAuth,
    refusals: Arc<Refusals>,
}

impl std::fmt::Debug for RoomAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomAuth").finish_non_exhaustive()
    }
}

impl RoomAuth {
    /// Wrap `inner`, recording into `refusals`.
    pub fn new(inner: HmacAuth, refusals: Arc<Refusals>) -> Self {
        Self { inner, refusals }
    }
}

impl AuthPlugin for RoomAuth {
    fn make(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        self.inner.make(msg, ctx)
    }

    fn check(&self, msg: &mut Message, ctx: &PluginContext<'_>) -> Result<(), AuthError> {
        let result = self.inner.check(msg, ctx);
        if let (Err(e), Some(addr)) = (&result, ctx.addr) {
            self.refusals.refused(addr, e);
        }
        result
    }

    fn error_reply(&self, err: &AuthError) -> Message {
        self.inner.error_reply(err)
    }

    fn is_peer_specific(&self) -> bool {
        self.inner.is_peer_specific()
    }

    fn is_blocking(&self) -> bool {
        self.inner.is_blocking()
    }

    // Without it the node took room members for unverified senders: it never answered an
    // advert to the group, so a newcomer learned of the others only at their next advert
    // (5 s), and their first messages to it were refused as from an unknown key.
    fn authenticates_sender(&self) -> bool {
        self.inner.authenticates_sender()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn hints_name_the_source_or_count_them() {
        let r = Refusals::default();
        assert!(r.hints().is_empty());
        r.refused(addr(1), &AuthError::Replay);
        r.refused(addr(1), &AuthError::Reflected);
        assert!(r.hints().is_empty(), "not about the secret");
        r.refused(addr(1), &AuthError::Invalid);
        r.refused(addr(1), &AuthError::MissingField("hmac".into()));
        assert_eq!(
            r.hints(),
            ["datagrams from 127.0.0.1:1 could not be authenticated: is the room secret the same?"]
        );
        r.refused(addr(2), &AuthError::Invalid);
        r.refused(addr(3), &AuthError::Stale { ts: 1, now: 100 });
        r.sealed(addr(4));
        let hints = r.hints();
        assert_eq!(hints.len(), 3, "{hints:?}");
        assert!(hints[0].starts_with("datagrams from 2 addresses could not"));
        assert!(hints[1].contains("127.0.0.1:3") && hints[1].contains("clocks"));
        assert!(hints[2].contains("127.0.0.1:4") && hints[2].contains("--room-secret"));
    }

    #[test]
    fn sources_are_bounded() {
        let r = Refusals::default();
        for port in 0..(MAX_SOURCES as u16 + 10) {
            r.refused(addr(port), &AuthError::Invalid);
        }
        assert_eq!(
            r.inner.lock().unwrap().unauthenticated.addrs.len(),
            MAX_SOURCES
        );
        assert!(
            r.hints()[0].starts_with(&format!("datagrams from more than {MAX_SOURCES} addresses"))
        );
    }

    #[test]
    fn room_auth_authenticates_senders_as_its_hmac_does() {
        let room = RoomAuth::new(HmacAuth::new(b"room secret"), Arc::default());
        assert!(room.authenticates_sender());
    }

    #[test]
    fn room_auth_records_the_source_of_a_bad_mac() {
        let refusals = Arc::new(Refusals::default());
        let ours = RoomAuth::new(HmacAuth::new(b"right"), refusals.clone());
        let theirs = HmacAuth::new(b"wrong");
        let mut msg = Message::new(netaio::MessageType::PUBLISH_URI, "x", "y");
        theirs.make(&mut msg, &PluginContext::default()).unwrap();
        let ctx = PluginContext {
            addr: Some(addr(9)),
            ..PluginContext::default()
        };
        assert_eq!(ours.check(&mut msg, &ctx), Err(AuthError::Invalid));
        assert_eq!(refusals.hints().len(), 1);
        assert!(refusals.hints()[0].contains("127.0.0.1:9"));
    }
}
