//! The lookup table behind [`Router`](super::Router) and the live
//! [`Routes`](super::live::Routes): handlers by `(type, uri, peer)`, `(type, uri)` and `type`, a
//! persistent and a one-shot handler per key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::Location;

use bytes::Bytes;
use rustc_hash::FxBuildHasher;

use super::state::{Extensions, MissingStateError};
use super::{BoxedHandler, RouteError, RouteKey};
use crate::MessageType;
use crate::plugin::Plugins;

/// A registered handler with its inner plugins and where it was registered.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) handler: BoxedHandler,
    pub(super) inner: Plugins,
    pub(super) at: &'static Location<'static>,
    /// Unique per registration: a one-shot route claimed by a message is taken only if it is
    /// still this registration (not one registered again at the same key meanwhile).
    pub(super) id: u64,
}

impl Entry {
    pub(super) fn new(
        handler: BoxedHandler,
        inner: Plugins,
        at: &'static Location<'static>,
    ) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            handler,
            inner,
            at,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// What is registered at one key: at most one handler of each kind.
#[derive(Clone, Default)]
pub(super) struct Slot {
    pub(super) persistent: Option<Entry>,
    pub(super) once: Option<Entry>,
}

impl Slot {
    pub(super) fn is_empty(&self) -> bool {
        self.persistent.is_none() && self.once.is_none()
    }
}

/// The route tables hash with rustc's Fx hash (multiply-rotate, not keyed). The tables are filled
/// by the application, not by peers: a peer only chooses the key it looks up, which costs one probe
/// sequence whatever its hash, so no keyed (SipHash) hasher is needed against collision attacks,
/// and SipHash was a tenth of the dispatch cost.
type FastMap<K, V> = HashMap<K, V, FxBuildHasher>;

/// The routes: `(type, uri)` routes are looked up by type, then by the uri as a byte slice, so a
/// lookup neither clones the message's uri nor builds a key.
#[derive(Clone, Default)]
pub(super) struct Table {
    by_peer: FastMap<(MessageType, Bytes, SocketAddr), Slot>,
    by_uri: FastMap<MessageType, FastMap<Bytes, Slot>>,
    by_type: FastMap<MessageType, Slot>,
}

/// Which kind of key matched (the key itself is only built when a one-shot route is taken).
#[derive(Clone, Copy)]
pub(super) enum Level {
    Peer,
    Uri,
    Type,
}

impl Level {
    pub(super) fn key(self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> RouteKey {
        match self {
            Level::Peer => RouteKey::Peer(t, uri.clone(), peer),
            Level::Uri => RouteKey::Uri(t, uri.clone()),
            Level::Type => RouteKey::Type(t),
        }
    }
}

impl Table {
    /// A route whose handler takes state that `state` lacks, when there is one.
    pub(super) fn missing_state(&self, state: &Extensions) -> Option<MissingStateError> {
        let by_uri = self.by_uri.iter().flat_map(|(t, m)| {
            m.iter()
                .map(move |(u, s)| (RouteKey::Uri(*t, u.clone()), s))
        });
        let by_peer =
            (self.by_peer.iter()).map(|((t, u, a), s)| (RouteKey::Peer(*t, u.clone(), *a), s));
        let slots = (self.by_type.iter())
            .map(|(t, s)| (RouteKey::Type(*t), s))
            .chain(by_uri)
            .chain(by_peer);
        for (key, slot) in slots {
            for entry in slot.persistent.iter().chain(slot.once.iter()) {
                let needs = entry.handler.needed_states();
                if let Some(need) = needs.iter().find(|n| !state.contains(n)) {
                    return Some(MissingStateError {
                        route: key.to_string(),
                        at: entry.at.to_string(),
                        state: need.name,
                    });
                }
            }
        }
        None
    }

    pub(super) fn slot_mut(&mut self, key: RouteKey) -> &mut Slot {
        match key {
            RouteKey::Type(t) => self.by_type.entry(t).or_default(),
            RouteKey::Uri(t, u) => self.by_uri.entry(t).or_default().entry(u).or_default(),
            RouteKey::Peer(t, u, a) => self.by_peer.entry((t, u, a)).or_default(),
        }
    }

    pub(super) fn insert(
        &mut self,
        key: RouteKey,
        route: Entry,
        once: bool,
    ) -> Result<(), RouteError> {
        let slot = self.slot_mut(key.clone());
        let (place, kind) = if once {
            (&mut slot.once, "one-shot")
        } else {
            (&mut slot.persistent, "persistent")
        };
        if let Some(first) = place {
            return Err(RouteError::Duplicate {
                key,
                kind,
                first: first.at,
            });
        }
        *place = Some(route);
        Ok(())
    }

    pub(super) fn remove(&mut self, key: &RouteKey, once: bool) -> bool {
        fn take<K, Q>(map: &mut FastMap<K, Slot>, k: &Q, once: bool) -> bool
        where
            K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            let Some(slot) = map.get_mut(k) else {
                return false;
            };
            let removed = if once {
                slot.once.take().is_some()
            } else {
                slot.persistent.take().is_some()
            };
            if slot.is_empty() {
                map.remove(k);
            }
            removed
        }
        match key {
            RouteKey::Type(t) => take(&mut self.by_type, t, once),
            RouteKey::Uri(t, u) => {
                let Some(uris) = self.by_uri.get_mut(t) else {
                    return false;
                };
                let removed = take(uris, u.as_ref(), once);
                if uris.is_empty() {
                    self.by_uri.remove(t);
                }
                removed
            }
            RouteKey::Peer(t, u, a) => take(&mut self.by_peer, &(*t, u.clone(), *a), once),
        }
    }

    /// The slot that matches first: `(type, uri, peer)`, `(type, uri)`, `type`.
    pub(super) fn find(
        &self,
        t: MessageType,
        uri: &Bytes,
        peer: SocketAddr,
    ) -> Option<(Level, &Slot)> {
        if !self.by_peer.is_empty()
            && let Some(s) = self.by_peer.get(&(t, uri.clone(), peer))
        {
            return Some((Level::Peer, s));
        }
        if let Some(s) = self.by_uri.get(&t).and_then(|m| m.get(uri.as_ref())) {
            return Some((Level::Uri, s));
        }
        self.by_type.get(&t).map(|s| (Level::Type, s))
    }

    /// Every slot with its key.
    pub(super) fn into_slots(self) -> impl Iterator<Item = (RouteKey, Slot)> {
        let Table {
            by_peer,
            by_uri,
            by_type,
        } = self;
        by_peer
            .into_iter()
            .map(|((t, u, a), s)| (RouteKey::Peer(t, u, a), s))
            .chain(
                by_uri.into_iter().flat_map(|(t, uris)| {
                    uris.into_iter().map(move |(u, s)| (RouteKey::Uri(t, u), s))
                }),
            )
            .chain(by_type.into_iter().map(|(t, s)| (RouteKey::Type(t), s)))
    }

    /// Every slot.
    pub(super) fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.by_peer
            .values()
            .chain(self.by_uri.values().flat_map(|uris| uris.values()))
            .chain(self.by_type.values())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Router;
    use super::super::test_support::{REQ, addr, dispatch, tagged};
    use crate::MessageType;

    #[tokio::test]
    async fn most_specific_key_wins() {
        let routes = Router::new()
            .on(REQ, tagged("type"))
            .on((REQ, "x"), tagged("type+uri"))
            .on((REQ, "x", addr(1)), tagged("type+uri+peer"))
            .into_shared();
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("type+uri+peer")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(2)).await.as_deref(),
            Some("type+uri")
        );
        assert_eq!(
            dispatch(&routes, REQ, "y", addr(1)).await.as_deref(),
            Some("type")
        );
        assert_eq!(
            dispatch(&routes, REQ, "", addr(1)).await.as_deref(),
            Some("type")
        );
        // Another type matches none of them, even with the same uri and peer.
        assert_eq!(
            dispatch(&routes, MessageType::CREATE_URI, "x", addr(1)).await,
            None
        );
        // Uris compare as exact bytes.
        assert_eq!(
            dispatch(&routes, REQ, "X", addr(2)).await.as_deref(),
            Some("type")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x ", addr(2)).await.as_deref(),
            Some("type")
        );
    }

    #[tokio::test]
    async fn many_uris_of_many_lengths_each_find_their_own_handler() {
        // Uris that differ only past the first 8 bytes, only in length, or only in type.
        let uris: Vec<String> = (0..300)
            .map(|i| match i % 3 {
                0 => format!("{i}"),
                1 => format!("common/prefix/{i}"),
                _ => "z".repeat(i / 3 + 1),
            })
            .collect();
        let mut router = Router::new();
        for (i, u) in uris.iter().enumerate() {
            let name: &'static str = Box::leak(format!("h{i}").into_boxed_str());
            router = router
                .on((REQ, u.clone()), tagged(name))
                .on((MessageType::CREATE_URI, u.clone()), tagged("create"));
        }
        assert_eq!(router.len(), 600);
        let routes = router.into_shared();
        for (i, u) in uris.iter().enumerate() {
            assert_eq!(
                dispatch(&routes, REQ, u, addr(1)).await,
                Some(format!("h{i}")),
                "{u}"
            );
        }
        assert_eq!(
            dispatch(&routes, REQ, "common/prefix/", addr(1)).await,
            None
        );
        assert_eq!(dispatch(&routes, REQ, "zz z", addr(1)).await, None);
        // Removing every route of one type leaves the other type's routes.
        for u in &uris {
            assert!(routes.remove(&(REQ, u.clone()).into(), false));
            assert!(!routes.remove(&(REQ, u.clone()).into(), false));
        }
        assert_eq!(dispatch(&routes, REQ, "3", addr(1)).await, None);
        assert_eq!(
            dispatch(&routes, MessageType::CREATE_URI, "3", addr(1))
                .await
                .as_deref(),
            Some("create")
        );
    }

    #[tokio::test]
    async fn each_key_level_matches_alone() {
        let peer_only = Router::new()
            .on((REQ, "x", addr(1)), tagged("peer"))
            .into_shared();
        assert_eq!(
            dispatch(&peer_only, REQ, "x", addr(1)).await.as_deref(),
            Some("peer")
        );
        assert_eq!(dispatch(&peer_only, REQ, "x", addr(2)).await, None);
        assert_eq!(dispatch(&peer_only, REQ, "y", addr(1)).await, None);

        let uri_only = Router::new().on((REQ, b"x"), tagged("uri")).into_shared();
        assert_eq!(
            dispatch(&uri_only, REQ, "x", addr(1)).await.as_deref(),
            Some("uri")
        );
        assert_eq!(dispatch(&uri_only, REQ, "y", addr(1)).await, None);

        let type_only = Router::new().on(REQ, tagged("type")).into_shared();
        assert_eq!(
            dispatch(&type_only, REQ, "anything", addr(1))
                .await
                .as_deref(),
            Some("type")
        );
        assert_eq!(
            dispatch(&type_only, MessageType::OK, "anything", addr(1)).await,
            None
        );

        let empty = Router::new().into_shared();
        assert_eq!(dispatch(&empty, REQ, "x", addr(1)).await, None);
    }
}
