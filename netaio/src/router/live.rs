//! [`Routes`]: the live routing table of a running node, shared by its connections and changeable
//! at run time, with [`Matched`] (what [`Routes::select`] chose for a message) and [`OnceClaim`]
//! (a one-shot route selected and not taken yet).

use std::fmt;
use std::net::SocketAddr;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::state::Extensions;
use super::table::{Entry, Table};
use super::{BoxedHandler, RouteError, RouteKey};
use crate::MessageType;
use crate::plugin::Plugins;

/// The handler chosen for a message, with its inner plugins.
pub(crate) struct Matched<'a> {
    /// The route's handler, else the fallback; `None` when neither exists.
    pub(crate) handler: Option<BoxedHandler>,
    /// The route's inner plugins (none for the fallback).
    pub(crate) inner: Plugins,
    /// For a one-shot route: the claim to [`settle`](OnceClaim::settle) once the inner plugins
    /// have run (taken when the message passed them, left in place otherwise).
    pub(crate) once: Option<OnceClaim<'a>>,
}

/// A one-shot route selected for a message and not taken yet. It holds the routing table's write
/// lock, so that no other message can select the route meanwhile: keep it only while the inner
/// plugins run (it is not `Send`, so it cannot be held across an `.await` of a node's tasks).
pub(crate) struct OnceClaim<'a> {
    table: std::sync::RwLockWriteGuard<'a, Table>,
    key: RouteKey,
    once_count: &'a AtomicUsize,
}

impl OnceClaim<'_> {
    /// Settle the claim of a selected route (none for a persistent one) once its inner plugins
    /// have run: a message that `passed` them takes the one-shot route; a refused one leaves it
    /// for the message it is waiting for. Either way the routing table's lock is released.
    #[inline]
    pub(crate) fn settle(claim: Option<Self>, passed: bool) {
        if let Some(claim) = claim
            && passed
        {
            claim.take();
        }
    }

    /// Remove the one-shot route: the message passed its checks and its handler will run.
    fn take(mut self) {
        let slot = self.table.slot_mut(self.key.clone());
        if slot.once.take().is_some() {
            self.once_count.fetch_sub(1, Ordering::AcqRel);
        }
        if slot.is_empty() {
            self.table.remove(&self.key, false);
        }
    }
}

impl From<&Entry> for Matched<'_> {
    fn from(r: &Entry) -> Self {
        Matched {
            handler: Some(r.handler.clone()),
            inner: r.inner.clone(),
            once: None,
        }
    }
}

/// The live routing table of a running node: shared by its connections, changeable at run time.
pub(crate) struct Routes {
    table: RwLock<Table>,
    once_count: AtomicUsize,
    fallback: Option<BoxedHandler>,
    state: Arc<Extensions>,
}

impl Routes {
    /// The live table of a router's table, fallback and state.
    pub(super) fn new(table: Table, fallback: Option<BoxedHandler>, state: Extensions) -> Self {
        let once_count = table.slots().filter(|s| s.once.is_some()).count();
        Routes {
            table: RwLock::new(table),
            once_count: AtomicUsize::new(once_count),
            fallback,
            state: Arc::new(state),
        }
    }

    pub(crate) fn state(&self) -> &Arc<Extensions> {
        &self.state
    }

    /// The handler for a message, most specific key first, else the router's fallback.
    ///
    /// A one-shot handler at the matching key comes before the persistent one; it comes with a
    /// [`OnceClaim`] that the caller settles ([`OnceClaim::settle`]) once the route's inner plugins
    /// have run: a message that passed takes the route, a refused message leaves it for the
    /// message it is waiting for. The claim holds the table's write lock, taken only while
    /// one-shot routes exist.
    pub(crate) fn select(&self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> Matched<'_> {
        if self.once_count.load(Ordering::Acquire) == 0 {
            let table = self.table.read().unwrap_or_else(|e| e.into_inner());
            match table.find(t, uri, peer) {
                // A one-shot route registered since the count was read: take the write path.
                Some((_, slot)) if slot.once.is_some() => {}
                found => {
                    return match found.and_then(|(_, s)| s.persistent.as_ref()) {
                        Some(route) => Matched::from(route),
                        None => self.fallback_matched(),
                    };
                }
            }
        }
        let table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let Some((level, slot)) = table.find(t, uri, peer) else {
            return self.fallback_matched();
        };
        let Some(once) = slot.once.as_ref() else {
            return match slot.persistent.as_ref() {
                Some(route) => Matched::from(route),
                None => self.fallback_matched(),
            };
        };
        let mut matched = Matched::from(once);
        matched.once = Some(OnceClaim {
            key: level.key(t, uri, peer),
            table,
            once_count: &self.once_count,
        });
        matched
    }

    fn fallback_matched(&self) -> Matched<'_> {
        Matched {
            handler: self.fallback.clone(),
            inner: Plugins::new(),
            once: None,
        }
    }

    #[track_caller]
    pub(crate) fn insert(
        &self,
        key: RouteKey,
        handler: BoxedHandler,
        once: bool,
        inner: Plugins,
    ) -> Result<(), RouteError> {
        let route = Entry {
            handler,
            inner,
            at: Location::caller(),
        };
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        table.insert(key, route, once)?;
        if once {
            self.once_count.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    pub(crate) fn remove(&self, key: &RouteKey, once: bool) -> bool {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let removed = table.remove(key, once);
        if removed && once {
            self.once_count.fetch_sub(1, Ordering::AcqRel);
        }
        removed
    }
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use crate::router::test_support::{REQ, addr, call, dispatch, tagged};
    use crate::router::{Context, Router};

    #[tokio::test]
    async fn python_checked_one_shot_scenario() {
        // Spec section 4: persistent (REQUEST_URI, "a"), persistent REQUEST_URI, one-shot
        // REQUEST_URI; requests for a, b, b, a.
        let routes = Router::new()
            .on((REQ, "a"), tagged("type+uri"))
            .on(REQ, tagged("type-only persistent"))
            .once(REQ, tagged("one-shot"))
            .into_shared();
        let mut ran = Vec::new();
        for uri in ["a", "b", "b", "a"] {
            ran.push(dispatch(&routes, REQ, uri, addr(1)).await.unwrap());
        }
        assert_eq!(
            ran,
            ["type+uri", "one-shot", "type-only persistent", "type+uri"]
        );
    }

    #[test]
    fn one_shot_is_taken_only_when_its_checks_pass() {
        let routes = Router::new()
            .once((REQ, "x"), tagged("once"))
            .on(REQ, tagged("type"))
            .into_shared();
        let uri = Bytes::from_static(b"x");
        let run = |h: BoxedHandler| {
            let msg = Message::new(REQ, "x", "");
            let reply = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(call(&h, msg, Context::detached(addr(1))));
            String::from_utf8(reply.unwrap().content().to_vec()).unwrap()
        };
        // Selected for messages its checks refuse: refused, and the route stays.
        for _ in 0..3 {
            let selected = routes.select(REQ, &uri, addr(1));
            assert_eq!(run(selected.handler.clone().unwrap()), "once");
            assert!(selected.once.is_some());
            OnceClaim::settle(selected.once, false);
        }
        assert_eq!(routes.once_count.load(Ordering::Acquire), 1);
        // The message it waits for takes it; the next one goes to the persistent route.
        let taken = routes.select(REQ, &uri, addr(1));
        OnceClaim::settle(taken.once, true);
        assert_eq!(run(taken.handler.unwrap()), "once");
        assert_eq!(routes.once_count.load(Ordering::Acquire), 0);
        let next = routes.select(REQ, &uri, addr(1));
        assert!(next.once.is_none());
        assert_eq!(run(next.handler.unwrap()), "type");
    }

    #[tokio::test]
    async fn one_shot_runs_once_then_the_key_is_free() {
        let routes = Router::new()
            .once((REQ, "x"), tagged("once"))
            .on(REQ, tagged("type"))
            .into_shared();
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("once")
        );
        assert_eq!(
            dispatch(&routes, REQ, "x", addr(1)).await.as_deref(),
            Some("type")
        );

        let alone = Router::new().once(REQ, tagged("once")).into_shared();
        assert_eq!(
            dispatch(&alone, REQ, "x", addr(1)).await.as_deref(),
            Some("once")
        );
        assert_eq!(dispatch(&alone, REQ, "x", addr(1)).await, None);

        // Registered at run time, a one-shot handler is also taken once.
        alone
            .insert(
                REQ.into(),
                BoxedHandler::new(tagged("late")),
                true,
                Plugins::new(),
            )
            .unwrap();
        assert_eq!(
            dispatch(&alone, REQ, "x", addr(1)).await.as_deref(),
            Some("late")
        );
        assert_eq!(dispatch(&alone, REQ, "x", addr(1)).await, None);
    }
}
