//! Shared helpers for the netaio-asymmetric tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use netaio::Message;
use netaio::message::PostcardCodec;
use netaio::peer::Peer;
use netaio::plugin::{Freshness, PluginContext};
use netaio_asymmetric::AsymmetricPeerPlugin;

pub const T0: u64 = 1_700_000_000;

/// A context whose remote peer is `peer`.
pub fn ctx(peer: &Peer) -> PluginContext<'_> {
    PluginContext {
        peer: Some(peer),
        peer_plugin: Some(&AsymmetricPeerPlugin),
        ..Default::default()
    }
}

/// A freshness policy on a settable clock starting at [`T0`].
pub fn clock(window_secs: u64) -> (Freshness, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(T0));
    let read = now.clone();
    let f = Freshness::new(Duration::from_secs(window_secs))
        .clock(Arc::new(move || read.load(Ordering::SeqCst)));
    (f, now)
}

/// Through the wire: encode with the default codec and decode again.
pub fn wire(msg: &Message) -> Message {
    let frame = msg.to_bytes(&PostcardCodec).unwrap();
    Message::decode(frame, &PostcardCodec).unwrap()
}
