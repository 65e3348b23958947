//! Who is here, as the chat sees them: the peer table's peers with their nick, former nicks and
//! trust, how each is shown (`nick`, or `nick#fingerprint` when ambiguous), and the notices when
//! someone joins, is renamed or leaves. Shared by the chat route, the event loop and the commands.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use netaio::peer::{Peer, PeerTable};
use netaio_asymmetric::PublicKeys;
use tokio::sync::mpsc;

use crate::known::{KnownPeers, Trust};
use crate::outbox::Outgoing;
use crate::protocol::{ChatPeerPlugin, Envelope, Kind, fingerprint};
use crate::refusals::Refusals;
use crate::terminal::Names;
use crate::ui::Ui;

/// Message ids remembered to drop duplicates (a retry whose first copy arrived).
pub const DEDUP_CAPACITY: usize = 4096;
/// Former nicks remembered per peer (to say who `/msg OLDNICK` now is).
pub const FORMER_NICKS: usize = 8;

/// This chat's own keys.
pub(crate) struct Me {
    pub(crate) keys: PublicKeys,
    pub(crate) fp: String,
}

/// What we know of a peer beyond the peer table: its nick and whether its key is trusted.
pub(crate) struct View {
    pub(crate) keys: PublicKeys,
    pub(crate) fp: String,
    /// The nick in its adverts.
    pub(crate) advertised: String,
    /// Its current nick (the advertised one, or the last one it signed).
    pub(crate) nick: String,
    /// The nicks it went by before, oldest first (bounded).
    pub(crate) former: VecDeque<String>,
    pub(crate) trust: Trust,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) malformed: u64,
    pub(crate) duplicates: u64,
    pub(crate) withheld: u64,
}

/// Message ids seen recently, bounded (oldest forgotten first).
pub(crate) struct Seen {
    set: HashSet<([u8; 32], [u8; 16])>,
    order: VecDeque<([u8; 32], [u8; 16])>,
}

impl Seen {
    pub(crate) fn new() -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True if new.
    pub(crate) fn insert(&mut self, key: [u8; 32], id: [u8; 16]) -> bool {
        if !self.set.insert((key, id)) {
            return false;
        }
        self.order.push_back((key, id));
        if self.order.len() > DEDUP_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

pub(crate) struct State {
    pub(crate) nick: String,
    pub(crate) advertised: String,
    pub(crate) peers: HashMap<Bytes, View>,
    pub(crate) known: KnownPeers,
    pub(crate) seen: Seen,
    pub(crate) counters: Counters,
    pub(crate) known_write_failed: bool,
}

/// The chat's shared part: used by the route handler, the event loop and the command loop.
pub(crate) struct Shared {
    pub(crate) ui: Arc<Ui>,
    pub(crate) me: Me,
    pub(crate) state: Mutex<State>,
    pub(crate) outbox: mpsc::UnboundedSender<Outgoing>,
    /// The nicks the line editor completes.
    pub(crate) names: Names,
    /// Datagrams refused by the room secret, or sealed with one we do not have.
    pub(crate) refusals: Arc<Refusals>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Classify (nick, key) and remember a first-seen nick.
    pub(crate) fn judge(&self, st: &mut State, nick: &str, key: &[u8; 32]) -> Trust {
        let trust = st
            .known
            .classify(nick, key, (&st.nick, &self.me.keys.ed25519));
        if trust == Trust::New
            && let Err(e) = st.known.remember(nick, key)
            && !st.known_write_failed
        {
            st.known_write_failed = true;
            self.ui.error(&format!(
                "cannot write the known peers file ({e}); keys are remembered for this session only"
            ));
        }
        trust
    }

    /// How to show a peer: its nick, with the fingerprint when the nick is ambiguous (someone
    /// else here uses it, or it is yours) or its key is not the known one.
    pub(crate) fn display(&self, st: &State, id: &Bytes) -> String {
        let Some(v) = st.peers.get(id) else {
            return "someone who left".into();
        };
        let shared = v.nick.eq_ignore_ascii_case(&st.nick)
            || st
                .peers
                .iter()
                .any(|(other, o)| other != id && o.nick.eq_ignore_ascii_case(&v.nick));
        if shared || matches!(v.trust, Trust::Changed { .. }) {
            format!("{}#{}", v.nick, short(&v.fp))
        } else {
            v.nick.clone()
        }
    }

    /// Give the line editor the names to complete: everyone here as they are shown.
    pub(crate) fn publish_names(&self, st: &State) {
        let mut names: Vec<String> = st.peers.keys().map(|id| self.display(st, id)).collect();
        names.sort_by_key(|n| n.to_ascii_lowercase());
        self.names.set_peers(names);
    }

    fn warn_changed(&self, display: &str, nick: &str, v_fp: &str, known: &[[u8; 32]]) {
        let known: Vec<String> = known.iter().map(fingerprint).collect();
        self.ui.warn(&format!(
            "key changed for {nick}: {display} has key {v_fp}, but you know {nick} as {}. \
             Its messages are not shown. If you trust it: /trust {nick} {}",
            known.join(" or "),
            short(v_fp)
        ));
    }

    /// A peer was discovered or updated.
    pub(crate) fn seen_peer(&self, peer: &Peer) {
        let (Ok(keys), Ok(nick)) = (ChatPeerPlugin::keys(peer), ChatPeerPlugin::nick(peer)) else {
            return; // validated by the node already
        };
        let addr = peer
            .addrs
            .first()
            .map_or_else(|| "?".into(), ToString::to_string);
        let mut st = self.lock();
        if let Some(v) = st.peers.get_mut(&peer.id) {
            // A new address, or new data: a restart under another nick.
            if v.advertised != nick {
                v.advertised = nick.clone();
                self.rename(&mut st, &peer.id, &nick);
            }
            return;
        }
        let trust = self.judge(&mut st, &nick, &keys.ed25519);
        let fp = fingerprint(&keys.ed25519);
        st.peers.insert(
            peer.id.clone(),
            View {
                keys,
                fp: fp.clone(),
                advertised: nick.clone(),
                nick: nick.clone(),
                former: VecDeque::new(),
                trust: trust.clone(),
            },
        );
        let display = self.display(&st, &peer.id);
        match &trust {
            Trust::Known => self
                .ui
                .notice(&format!("{display} joined (key {fp}, {addr})")),
            Trust::New => self.ui.notice(&format!(
                "{display} joined (key {fp}, {addr}; first time seen: key remembered)"
            )),
            Trust::Namesake => self.ui.notice(&format!(
                "{display} joined (key {fp}, {addr}; uses your nick: shown with its key)"
            )),
            Trust::Changed { known } => {
                self.ui
                    .notice(&format!("{display} joined (key {fp}, {addr})"));
                self.warn_changed(&display, &nick, &fp, known);
            }
        }
        self.publish_names(&st);
        // Our adverts carry the nick we started with: tell a newcomer the current one.
        if st.nick != st.advertised {
            let env = Envelope::new(Kind::Nick, st.nick.clone(), "");
            let _ = self.outbox.send(Outgoing::Send {
                env,
                to: vec![peer.id.clone()],
                report: None,
            });
        }
    }

    /// A peer now goes by `nick`.
    pub(crate) fn rename(&self, st: &mut State, id: &Bytes, nick: &str) {
        let Some(key) = st.peers.get(id).map(|v| v.keys.ed25519) else {
            return;
        };
        let before = self.display(st, id);
        let trust = self.judge(st, nick, &key);
        let Some(v) = st.peers.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut v.nick, nick.to_owned());
        v.former.retain(|n| !n.eq_ignore_ascii_case(nick));
        v.former.push_back(old);
        if v.former.len() > FORMER_NICKS {
            v.former.pop_front();
        }
        v.trust = trust.clone();
        let fp = v.fp.clone();
        let after = self.display(st, id);
        self.ui.notice(&format!("{before} is now known as {after}"));
        if let Trust::Changed { known } = &trust {
            self.warn_changed(&after, nick, &fp, known);
        }
        self.publish_names(st);
    }

    /// A peer left or timed out.
    pub(crate) fn gone(&self, peer: &Peer, timed_out: Option<Duration>) {
        let mut st = self.lock();
        if !st.peers.contains_key(&peer.id) {
            return;
        }
        let display = self.display(&st, &peer.id);
        st.peers.remove(&peer.id);
        match timed_out {
            None => self.ui.notice(&format!("{display} left")),
            Some(t) => self.ui.notice(&format!(
                "{display} timed out (not heard from for {} s)",
                t.as_secs()
            )),
        }
        self.publish_names(&st);
    }

    /// After lost events: bring the views in line with the table.
    pub(crate) fn resync(&self, table: &PeerTable, timeout: Duration) {
        let peers = table.peers();
        for p in &peers {
            self.seen_peer(p);
        }
        let gone: Vec<Bytes> = {
            let st = self.lock();
            st.peers
                .keys()
                .filter(|id| !peers.iter().any(|p| p.id == **id))
                .cloned()
                .collect()
        };
        for id in gone {
            self.gone(&Peer::new(id), Some(timeout));
        }
    }

    /// The "nobody else is here" explanation: the line itself, then a hint when datagrams were
    /// refused or could not be read (a room secret that differs, or is missing on one side).
    pub(crate) fn nobody_here(&self, line: &str, as_error: bool) {
        if as_error {
            self.ui.error(line);
        } else {
            self.ui.notice(line);
        }
        for hint in self.refusals.hints() {
            self.ui.error(&hint);
        }
    }
}

/// The first 8 hex digits of a fingerprint.
pub(crate) fn short(fp: &str) -> &str {
    fp.get(..8).unwrap_or(fp)
}
