//! [`Extensions`]: the shared values handlers ask for with [`State`](super::State), one per type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// Shared values handlers can ask for with [`State`](super::State), keyed by type.
#[derive(Clone, Default)]
pub(crate) struct Extensions(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Extensions {
    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Add a value, replacing the value of the same type if there is one.
    pub(super) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Whether a value of that type was added.
    pub(crate) fn contains(&self, need: &NeededState) -> bool {
        self.0.contains_key(&need.id)
    }

    /// Add every value of `other`; its values replace those of the same types.
    pub(super) fn extend(&mut self, other: Extensions) {
        self.0.extend(other.0);
    }
}

/// A state type a handler needs ([`FromRequest::needed_state`](super::FromRequest::needed_state)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeededState {
    id: TypeId,
    /// The type's name, for the error.
    pub name: &'static str,
}

impl NeededState {
    /// The state of type `T`.
    pub fn of<T: 'static>() -> Self {
        Self {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }
}

/// A handler takes [`State<T>`](super::State) for a `T` never added with
/// [`Router::with_state`](super::Router::with_state) ([`BindError::MissingState`](crate::BindError::MissingState)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the handler of {route} (registered at {at}) takes State<{state}>, which was never added with Router::with_state"
)]
pub struct MissingStateError {
    /// The route (its key, or `the fallback`).
    pub route: String,
    /// Where the handler was registered (`file:line:column`), when known.
    pub at: String,
    /// The state's type.
    pub state: &'static str,
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::router::test_support::{REQ, addr, call};
    use crate::router::{Context, Router, State};
    use crate::{Message, MessageType};

    #[tokio::test]
    async fn state_extractor() {
        async fn show(State(n): State<u32>, State(s): State<&'static str>) -> Message {
            Message::ok(s, n.to_string())
        }
        let routes = Router::new()
            .on(REQ, show)
            .with_state(1u32)
            .with_state(42u32) // replaces the first value of the same type
            .merge(Router::new().with_state("from merge"))
            .into_shared();
        let handler = routes.select(REQ, &Bytes::new(), addr(1)).handler.unwrap();
        let ctx = Context::detached_with_state(addr(1), routes.state().clone());
        let reply = call(&handler, Message::new(REQ, "", ""), ctx)
            .await
            .unwrap();
        assert_eq!(reply, Message::ok("from merge", "42"));

        // A context without the state: the handler does not run, ERROR "missing state" is sent.
        let reply = call(
            &handler,
            Message::new(REQ, "", ""),
            Context::detached(addr(1)),
        )
        .await
        .unwrap();
        assert_eq!(
            reply,
            Message::new(MessageType::ERROR, "ERROR", "missing state")
        );
    }
}
