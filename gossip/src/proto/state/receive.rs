//! Receiving a payload (`Gossip` or `Fetched`): dedup, the host's validation, the hold for the
//! application's verdict (`hold_subscribed`) and its release, then forwarding and delivery.

use std::time::Instant;

use rand::Rng;
use tracing::{debug, trace, warn};

use super::super::event::{Event, Output};
use super::super::held::HeldMessage;
use super::super::host::{Host, Verdict};
use super::super::message::Gossip;
use super::super::{MessageId, PeerId};
use super::{Cx, Protocol};

impl<P: PeerId, R: Rng> Protocol<P, R> {
    pub(super) fn on_gossip(
        &mut self,
        now: Instant,
        from: P,
        g: Gossip,
        fetched: bool,
        host: &mut impl Host<P>,
    ) {
        let mut cx = Cx {
            now,
            cfg: &self.cfg,
            rng: &mut self.rng,
            fx: &mut self.fx,
        };
        if self.broadcast.is_seen(&g.id, now) {
            self.stats.duplicates += 1;
            if !fetched {
                self.broadcast.on_duplicate(from, &g, &mut cx);
            }
            return;
        }
        if g.payload.len() > self.cfg.limits.max_payload {
            return;
        }
        match host.validate(&from, &g) {
            Verdict::Accept => {}
            Verdict::Ignore => {
                self.stats.ignored += 1;
                trace!(peer = ?from, id = ?g.id, "ignored by the host");
                return;
            }
            Verdict::Reject => {
                self.stats.rejected += 1;
                warn!(peer = ?from, id = ?g.id, "invalid message: peer banned");
                // Not remembered as seen: a forged copy must not shadow the real message.
                self.queues.clear(&from);
                self.membership.ban(from, &mut cx);
                self.outputs.push_back(Output::Event(Event::PeerBanned {
                    peer: from,
                    id: g.id,
                }));
                return;
            }
        }
        let subscribed = self.topics.is_subscribed(&g.topic);
        if !subscribed && !self.cfg.relay_unsubscribed {
            self.stats.ignored += 1;
            trace!(peer = ?from, id = ?g.id, "ignored: topic not subscribed");
            return;
        }
        if subscribed && self.cfg.hold_subscribed {
            // Seen from now on, so copies from other neighbours are duplicates, not held twice.
            self.broadcast.hold(g.id, now);
            self.stats.held += 1;
            let dropped = self.held.push(HeldMessage {
                from,
                message: g.clone(),
                fetched,
            });
            if dropped > 0 {
                self.stats.held_dropped += dropped as u64;
                debug!(
                    dropped,
                    "hold full: oldest held messages dropped unforwarded"
                );
            }
            self.outputs.push_back(Output::Event(Event::Held {
                from,
                message: g,
                fetched,
            }));
            return;
        }
        self.forward_accepted(now, from, g, fetched, subscribed, true, host);
    }

    /// Releases a message held for the application's verdict ([`Event::Held`]): with
    /// [`Verdict::Accept`] it is stored and forwarded as any valid message; with
    /// [`Verdict::Ignore`] dropped quietly; with [`Verdict::Reject`] dropped, counted in
    /// [`Stats::discarded`](super::super::Stats::discarded) and reported as [`Event::Discarded`] against the peer it came from
    /// (not banned: the application's rules are not the proof of work). Whether it was held
    /// (false once dropped from a full hold, or released already).
    pub fn release(
        &mut self,
        now: Instant,
        id: &MessageId,
        verdict: Verdict,
        host: &mut impl Host<P>,
    ) -> bool {
        let Some(held) = self.held.take(id) else {
            return false;
        };
        match verdict {
            Verdict::Accept => {
                let subscribed = self.topics.is_subscribed(&held.message.topic);
                self.forward_accepted(
                    now,
                    held.from,
                    held.message,
                    held.fetched,
                    subscribed,
                    false,
                    host,
                );
            }
            Verdict::Ignore => self.stats.ignored += 1,
            Verdict::Reject => {
                self.stats.discarded += 1;
                debug!(peer = ?held.from, id = ?id, "held message released as invalid");
                self.outputs.push_back(Output::Event(Event::Discarded {
                    peer: held.from,
                    id: *id,
                }));
            }
        }
        self.flush(now);
        true
    }

    /// Messages held for the application's verdict, and their payload bytes.
    pub fn held(&self) -> (usize, usize) {
        (self.held.len(), self.held.bytes())
    }

    /// A valid message: forwarded, stored, and (when `report` and subscribed) reported.
    #[allow(clippy::too_many_arguments)]
    fn forward_accepted(
        &mut self,
        now: Instant,
        from: P,
        g: Gossip,
        fetched: bool,
        subscribed: bool,
        report: bool,
        host: &mut impl Host<P>,
    ) {
        let mut cx = Cx {
            now,
            cfg: &self.cfg,
            rng: &mut self.rng,
            fx: &mut self.fx,
        };
        self.stats.max_hops = self.stats.max_hops.max(g.hops);
        if fetched {
            self.broadcast.accept_fetched(from, &g, &mut cx);
        } else {
            self.broadcast.accept(from, &g, &mut cx);
        }
        host.store(&g, subscribed);
        if subscribed && report {
            self.stats.delivered += 1;
            self.outputs.push_back(Output::Event(Event::Received {
                from,
                message: g,
                fetched,
            }));
        }
    }
}
