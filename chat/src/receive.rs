//! The chat route: a message that passed the signature and decryption checks (the route's inner
//! plugins), deduplicated, attributed to the key that signed it, and shown unless that key is not
//! the one known for its nick.

use netaio::Message;
use netaio::router::Context;

use crate::known::Trust;
use crate::people::{Shared, short};
use crate::protocol::{CHAT_URI, Envelope, Kind, fingerprint, peer_id, verified_sender};

impl Shared {
    /// Handle one chat message; the reply is the acknowledgement (`OK`), or none for a message
    /// that is not a chat message.
    pub(crate) fn on_message(&self, msg: &Message, ctx: &Context) -> Option<Message> {
        let ack = || Some(Message::ok(CHAT_URI, ""));
        let Some(key) = verified_sender(&msg.auth) else {
            self.lock().counters.malformed += 1;
            return None;
        };
        let env = match Envelope::decode(msg.content()) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "malformed chat message dropped");
                self.lock().counters.malformed += 1;
                return None;
            }
        };
        let id = peer_id(&key);
        // The message may overtake the peer event that announces its sender.
        let known = self.lock().peers.contains_key(&id);
        if !known && let Some(p) = ctx.udp().and_then(|h| h.peers().get(&id)) {
            self.seen_peer(&p);
        }
        let mut st = self.lock();
        if !st.seen.insert(key, env.id) {
            st.counters.duplicates += 1;
            return ack();
        }
        let (display, trust) = if st.peers.contains_key(&id) {
            if st.peers.get(&id).is_some_and(|v| v.nick != env.nick) {
                self.rename(&mut st, &id, &env.nick);
            }
            let trust = st.peers.get(&id).map(|v| v.trust.clone());
            (self.display(&st, &id), trust.unwrap_or(Trust::Known))
        } else {
            // Verified against a peer that has left the table since.
            let trust = self.judge(&mut st, &env.nick, &key);
            (format!("{}#{}", env.nick, short(&fingerprint(&key))), trust)
        };
        if let Trust::Changed { .. } = trust {
            st.counters.withheld += 1;
            if env.kind != Kind::Nick {
                self.ui.warn(&format!(
                    "withheld a message from {display}: not the key you know for {}",
                    env.nick
                ));
            }
            return ack();
        }
        drop(st);
        match env.kind {
            Kind::Room => self.ui.chat(&display, false, &env.text),
            Kind::Direct => self.ui.chat(&display, true, &env.text),
            Kind::Nick => {}
        }
        ack()
    }
}
