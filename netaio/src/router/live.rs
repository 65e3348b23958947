//! [`Routes`]: the live routing table of a running node, shared by its connections and changeable
//! at run time, with [`Matched`] (what [`Routes::select`] chose for a message) and [`OnceClaim`]
//! (a one-shot route selected and not taken yet).

use std::fmt;
use std::net::SocketAddr;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::state::{Extensions, MissingStateError};
use super::table::{Entry, Table};
use super::{BoxedHandler, RouteError, RouteKey};
use crate::plugin::Plugins;
use crate::{Message, MessageType};

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

/// A one-shot route selected for a message and not taken yet. It holds no lock: the inner
/// plugins (crypto) run while other messages are routed; the route is taken afterwards, only if
/// it is still the same registration ([`Entry::id`]) — when another message took it first, the
/// claim fails and the message is routed again.
pub(crate) struct OnceClaim<'a> {
    routes: &'a Routes,
    key: RouteKey,
    id: u64,
}

impl OnceClaim<'_> {
    /// Settle the claim of a selected route (none for a persistent one) once its inner plugins
    /// have run: a message that `passed` them takes the one-shot route; a refused one leaves it
    /// for the message it is waiting for. Returns false when the message passed but another one
    /// took the route in the meantime (the selection no longer holds).
    #[inline]
    pub(crate) fn settle(claim: Option<Self>, passed: bool) -> bool {
        match claim {
            Some(claim) if passed => claim.take(),
            _ => true,
        }
    }

    /// Remove the one-shot route if it is still the one selected: the message passed its checks
    /// and its handler will run. False if it is gone or replaced.
    fn take(self) -> bool {
        let mut table = self.routes.table.write().unwrap_or_else(|e| e.into_inner());
        let slot = table.slot_mut(self.key.clone());
        if slot.once.as_ref().is_none_or(|e| e.id != self.id) {
            if slot.is_empty() {
                table.remove(&self.key, false);
            }
            return false;
        }
        slot.once = None;
        self.routes.once_count.fetch_sub(1, Ordering::AcqRel);
        if slot.is_empty() {
            table.remove(&self.key, false);
        }
        true
    }
}

/// A message routed and opened with its route's inner plugins: what [`Routes::route`] returns.
pub(crate) struct Routed<E> {
    /// The route's handler, else the fallback; `None` when neither exists.
    pub(crate) handler: Option<BoxedHandler>,
    /// The route's inner plugins (none for the fallback).
    pub(crate) inner: Plugins,
    /// The message opened with them, or why it was refused.
    pub(crate) opened: Result<Message, E>,
}

/// How many times a message is routed again when other messages keep taking the one-shot routes
/// it selected; after that it goes to the persistent route (or the fallback).
const MAX_CLAIMS: usize = 8;

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

    /// Route `msg` from `peer` and open it with the route's inner plugins (`open`): the one
    /// place that selects, opens and claims one-shot routes for every transport.
    ///
    /// A one-shot route is taken only by a message that passes its inner plugins, and no lock is
    /// held while they run; if another message took the route meanwhile, this one is routed
    /// again from the message as it arrived (bounded: [`MAX_CLAIMS`] rounds, then the persistent
    /// route). Without one-shot routes this is one read-locked lookup and one `open`.
    #[inline]
    pub(crate) fn route<E>(
        &self,
        msg: Message,
        peer: SocketAddr,
        mut open: impl FnMut(Message, &Plugins) -> Result<Message, E>,
    ) -> Routed<E> {
        let mut msg = msg;
        for _ in 0..MAX_CLAIMS {
            let Matched {
                handler,
                inner,
                once,
            } = self.select(msg.message_type, msg.uri(), peer);
            let Some(claim) = once else {
                let opened = open(msg, &inner);
                return Routed {
                    handler,
                    inner,
                    opened,
                };
            };
            // Kept to route again if the claim is lost (only while a one-shot route matches).
            let arrived = msg.clone();
            let opened = open(msg, &inner);
            if OnceClaim::settle(Some(claim), opened.is_ok()) {
                return Routed {
                    handler,
                    inner,
                    opened,
                };
            }
            tracing::debug!("one-shot route taken by another message; routing again");
            msg = arrived;
        }
        let Matched { handler, inner, .. } =
            self.select_persistent(msg.message_type, msg.uri(), peer);
        let opened = open(msg, &inner);
        Routed {
            handler,
            inner,
            opened,
        }
    }

    /// The handler for a message, most specific key first, else the router's fallback.
    ///
    /// A one-shot handler at the matching key comes before the persistent one; it comes with a
    /// [`OnceClaim`] that the caller settles ([`OnceClaim::settle`]) once the route's inner plugins
    /// have run: a message that passed takes the route, a refused message leaves it for the
    /// message it is waiting for. No lock is held after this returns.
    pub(crate) fn select(&self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> Matched<'_> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let Some((level, slot)) = table.find(t, uri, peer) else {
            return self.fallback_matched();
        };
        match (&slot.once, &slot.persistent) {
            (Some(once), _) => {
                let mut matched = Matched::from(once);
                matched.once = Some(OnceClaim {
                    routes: self,
                    key: level.key(t, uri, peer),
                    id: once.id,
                });
                matched
            }
            (None, Some(route)) => Matched::from(route),
            (None, None) => self.fallback_matched(),
        }
    }

    /// As [`select`](Self::select), ignoring one-shot routes.
    fn select_persistent(&self, t: MessageType, uri: &Bytes, peer: SocketAddr) -> Matched<'_> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        match table
            .find(t, uri, peer)
            .and_then(|(_, s)| s.persistent.as_ref())
        {
            Some(route) => Matched::from(route),
            None => self.fallback_matched(),
        }
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
        let at = Location::caller();
        if let Some(need) = (handler.needed_states().iter()).find(|n| !self.state.contains(n)) {
            return Err(RouteError::MissingState(MissingStateError {
                route: key.to_string(),
                at: at.to_string(),
                state: need.name,
            }));
        }
        let route = Entry::new(handler, inner, at);
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

    /// The content of the reply `h` gives (the test handlers answer with their name).
    fn name_of(h: &BoxedHandler) -> String {
        let reply = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(call(
                h,
                Message::new(REQ, "x", ""),
                Context::detached(addr(1)),
            ));
        String::from_utf8(reply.unwrap().content().to_vec()).unwrap()
    }

    /// While a one-shot route's inner plugins run, the table is not locked: the same thread can
    /// route another message and register a route (with the table's write lock held across the
    /// checks, as before, this deadlocked).
    #[test]
    fn a_one_shot_routes_checks_run_without_the_table_locked() {
        let routes = Router::new()
            .once((REQ, "x"), tagged("once"))
            .on((REQ, "y"), tagged("y"))
            .into_shared();
        let (done_tx, done) = std::sync::mpsc::channel();
        let worker = {
            let routes = routes.clone();
            std::thread::spawn(move || {
                let routed = routes.route(Message::new(REQ, "x", ""), addr(1), |m, _| {
                    let other =
                        routes.route(Message::new(REQ, "y", ""), addr(2), |m, _| Ok::<_, ()>(m));
                    assert_eq!(name_of(&other.handler.unwrap()), "y");
                    routes
                        .insert(
                            (REQ, "z").into(),
                            BoxedHandler::new(tagged("z")),
                            false,
                            Plugins::new(),
                        )
                        .unwrap();
                    Ok::<_, ()>(m)
                });
                let _ = done_tx.send(name_of(&routed.handler.unwrap()));
            })
        };
        let ran = done
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("routing deadlocked while a one-shot route's checks ran");
        worker.join().unwrap();
        assert_eq!(ran, "once");
        assert_eq!(routes.once_count.load(Ordering::Acquire), 0);
    }

    /// Two messages select the same one-shot route; the one whose checks finish first takes it,
    /// the other is routed again (to the persistent route) from the message as it arrived.
    #[test]
    fn a_message_that_loses_a_one_shot_route_is_routed_again() {
        let routes = Router::new()
            .once((REQ, "x"), tagged("once"))
            .on((REQ, "x"), tagged("persistent"))
            .into_shared();
        let mut opened_with = Vec::new();
        let mut inner_winner = None;
        let loser = routes.route(Message::new(REQ, "x", "first"), addr(1), |m, _| {
            opened_with.push(m.content().clone());
            if inner_winner.is_none() {
                // Meanwhile another message takes the one-shot route.
                let w = routes.route(Message::new(REQ, "x", "second"), addr(2), |m, _| {
                    Ok::<_, ()>(m)
                });
                inner_winner = Some(name_of(&w.handler.unwrap()));
            }
            Ok::<_, ()>(m)
        });
        assert_eq!(inner_winner.as_deref(), Some("once"));
        assert_eq!(name_of(&loser.handler.unwrap()), "persistent");
        assert_eq!(loser.opened.unwrap().content().as_ref(), b"first");
        // Opened twice: once for the one-shot route it lost, once for the persistent one.
        assert_eq!(opened_with.len(), 2);
        assert_eq!(routes.once_count.load(Ordering::Acquire), 0);
    }

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
