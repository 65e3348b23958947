//! A client's subscriptions ([`Connection::subscribe`]): SUBSCRIBE_URI sent and confirmed, and
//! the server's NOTIFY_URI messages of that uri delivered to a [`Subscription`] stream instead of
//! the inbox.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Connection;
use super::connection::inbox_size;
use crate::error::RequestError;
use crate::{Message, MessageType};

/// Notifications waiting in one subscription's stream, at most (their bytes count against the
/// connection's inbox budget, [`inbox_bytes`](super::TcpClientBuilder::inbox_bytes)).
const QUEUE: usize = 256;
/// Subscriptions one connection holds at most (each is a map entry and a channel).
pub const MAX_SUBSCRIPTIONS: usize = 1024;

/// The subscriptions of one connection, by uri.
#[derive(Default)]
pub(super) struct Subscriptions {
    by_uri: Mutex<HashMap<Bytes, (u64, mpsc::Sender<Message>)>>,
    /// Whether there is any: the dispatch looks no further when there is none.
    any: AtomicBool,
    next_id: AtomicU64,
}

impl Subscriptions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Bytes, (u64, mpsc::Sender<Message>)>> {
        self.by_uri.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add (or replace) the stream of `uri`.
    fn add(&self, uri: Bytes) -> Result<(u64, mpsc::Receiver<Message>), RequestError> {
        let mut map = self.lock();
        if map.len() >= MAX_SUBSCRIPTIONS && !map.contains_key(&uri) {
            return Err(RequestError::TooManyInFlight(MAX_SUBSCRIPTIONS));
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        map.insert(uri, (id, tx));
        self.any.store(true, Ordering::Release);
        Ok((id, rx))
    }

    /// Remove the stream of `uri` if it is still the one registered as `id`.
    fn remove(&self, uri: &Bytes, id: u64) {
        let mut map = self.lock();
        if map.get(uri).is_some_and(|(i, _)| *i == id) {
            map.remove(uri);
        }
        self.any.store(!map.is_empty(), Ordering::Release);
    }

    /// End every stream: the connection dropped, and the server forgot them.
    pub(super) fn clear(&self) {
        let mut map = self.lock();
        map.clear();
        self.any.store(false, Ordering::Release);
    }

    /// Hand a NOTIFY_URI to its subscription: `None` when taken (or dropped, the stream being
    /// full), `Some(msg)` when no subscription has its uri.
    pub(super) fn deliver(&self, msg: Message, conn: &Connection) -> Option<Message> {
        if msg.message_type != MessageType::NOTIFY_URI || !self.any.load(Ordering::Acquire) {
            return Some(msg);
        }
        let tx = match self.lock().get(msg.uri()) {
            Some((_, tx)) => tx.clone(),
            None => return Some(msg),
        };
        let size = inbox_size(&msg);
        let budget = &conn.inner.inbox_bytes;
        if !budget.try_take(size, true) {
            tracing::warn!(bytes = size, "inbox full (bytes): notification dropped");
            return None;
        }
        if let Err(e) = tx.try_send(msg) {
            budget.give(size);
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                tracing::warn!("subscription stream full: notification dropped");
            }
        }
        None
    }
}

/// The notifications of one uri, from [`Connection::subscribe`]: a stream
/// (`futures_core::Stream`) of the server's NOTIFY_URI messages with that uri, in order.
///
/// It ends when the connection ends (a client that reconnects subscribes again). Dropping it
/// stops the delivery here, without telling the server;
/// [`unsubscribe`](Self::unsubscribe) tells it. Up to 256 notifications wait in it (their bytes
/// count against the connection's inbox budget); more are dropped and logged.
#[derive(Debug)]
pub struct Subscription {
    uri: Bytes,
    id: u64,
    rx: mpsc::Receiver<Message>,
    conn: Connection,
}

impl Subscription {
    /// The uri subscribed to.
    pub fn uri(&self) -> &Bytes {
        &self.uri
    }

    /// The next notification; `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Message> {
        let msg = self.rx.recv().await?;
        self.conn.inner.inbox_bytes.give(inbox_size(&msg));
        Some(msg)
    }

    /// Send UNSUBSCRIBE_URI and wait for the server's CONFIRM_UNSUBSCRIBE; the stream ends.
    pub async fn unsubscribe(self) -> Result<Message, RequestError> {
        self.conn.unsubscribe(self.uri.clone()).await
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(msg)) = &polled {
            self.conn.inner.inbox_bytes.give(inbox_size(msg));
        }
        polled
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.conn.inner.subscriptions.remove(&self.uri, self.id);
        // What waits in the channel gives its bytes back.
        while let Ok(msg) = self.rx.try_recv() {
            self.conn.inner.inbox_bytes.give(inbox_size(&msg));
        }
    }
}

impl Connection {
    /// Subscribe to `uri`: send SUBSCRIBE_URI, wait for the server's CONFIRM_SUBSCRIBE, and
    /// return the stream of the server's NOTIFY_URI messages with that uri (they no longer go to
    /// the inbox or to a route). Subscribing again to the same uri replaces the stream (the
    /// earlier one ends). A connection holds at most 1,024 subscriptions
    /// ([`RequestError::TooManyInFlight`] beyond).
    ///
    /// ```no_run
    /// # async fn f(conn: netaio::Connection) -> Result<(), netaio::RequestError> {
    /// let mut news = conn.subscribe("news").await?;
    /// while let Some(note) = news.recv().await {
    ///     println!("{}", String::from_utf8_lossy(note.content()));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, uri: impl Into<Bytes>) -> Result<Subscription, RequestError> {
        let uri = uri.into();
        // Registered before the request leaves: a notification the server sends right after
        // its confirmation is dispatched before this call returns.
        let (id, rx) = self.inner.subscriptions.add(uri.clone())?;
        let sub = Subscription {
            uri: uri.clone(),
            id,
            rx,
            conn: self.clone(),
        };
        // Dropped on failure, which unregisters it.
        self.call(Message::new(MessageType::SUBSCRIBE_URI, uri, Bytes::new()))
            .await?;
        Ok(sub)
    }

    /// Send UNSUBSCRIBE_URI for `uri` and wait for CONFIRM_UNSUBSCRIBE; the uri's
    /// [`Subscription`] stream, if any, ends.
    pub async fn unsubscribe(&self, uri: impl Into<Bytes>) -> Result<Message, RequestError> {
        let uri = uri.into();
        {
            let mut map = self.inner.subscriptions.lock();
            map.remove(&uri);
            self.inner
                .subscriptions
                .any
                .store(!map.is_empty(), Ordering::Release);
        }
        self.call(Message::new(
            MessageType::UNSUBSCRIBE_URI,
            uri,
            Bytes::new(),
        ))
        .await
    }
}
