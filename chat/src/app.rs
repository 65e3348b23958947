//! The running chat: a `UdpNode` doing multicast discovery, the chat route, the peer events, the
//! typed commands and the outbox that delivers messages (with acknowledgements and retries).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netaio::peer::{Peer, PeerConfig, PeerEvent, PeerTable};
use netaio::plugin::{Plugins, SendOptions};
use netaio::router::{Context, Route};
use netaio::udp::{MulticastConfig, UdpHandle, UdpNode};
use netaio::{BindError, Message, MessageType, RequestError, Router};
use netaio_asymmetric::PublicKeys;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use zeroize::Zeroizing;

use crate::commands::{self, Command, HELP};
use crate::identity::{self, IdentityError};
use crate::known::{KnownPeers, Trust};
use crate::protocol::{
    APP_ID, CHAT_URI, ChatPeerPlugin, Envelope, Kind, MAX_TEXT, NickError, chat_plugins,
    fingerprint, peer_id, room_plugins, valid_nick, verified_sender,
};
use crate::ui::Ui;

/// Attempts per recipient before a message is reported as not delivered.
pub const ATTEMPTS: u32 = 3;
/// Message ids remembered to drop duplicates (a retry whose first copy arrived).
pub const DEDUP_CAPACITY: usize = 4096;

/// How a chat is set up (see the `chat` program's flags).
#[derive(Debug)]
pub struct Options {
    /// The nick to start with.
    pub nick: String,
    /// The identity file (created if missing).
    pub identity: PathBuf,
    /// The known-peers file (created when the first key is remembered).
    pub known_peers: PathBuf,
    /// The unicast address to bind (its family chooses IPv4 or IPv6 discovery).
    pub bind: SocketAddr,
    /// The multicast group, port and interface.
    pub multicast: MulticastConfig,
    /// Time between adverts.
    pub advert_interval: Duration,
    /// A peer not heard from for this long is gone.
    pub peer_timeout: Duration,
    /// How long to wait for a recipient's acknowledgement before retrying.
    pub ack_timeout: Duration,
    /// The room secret, if any.
    pub room_secret: Option<Zeroizing<Vec<u8>>>,
}

/// Why the chat could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The identity file.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The known-peers file.
    #[error("cannot read known peers file {}: {source}", path.display())]
    KnownPeers {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The nick.
    #[error("invalid nick: {0}")]
    Nick(#[from] NickError),
    /// Binding the socket or joining the group.
    #[error("cannot start the node: {0}")]
    Bind(#[from] BindError),
    /// Building the own peer.
    #[error("cannot build the own peer: {0}")]
    Peer(#[from] netaio::plugin::PeerError),
}

/// A line of input, or a line that was too long to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line (without its terminator).
    Line(String),
    /// A line longer than the reader accepts, dropped.
    TooLong,
}

struct Me {
    keys: PublicKeys,
    fp: String,
}

/// What we know of a peer beyond the peer table: its nick and whether its key is trusted.
struct View {
    keys: PublicKeys,
    fp: String,
    /// The nick in its adverts.
    advertised: String,
    /// Its current nick (the advertised one, or the last one it signed).
    nick: String,
    trust: Trust,
}

#[derive(Default)]
struct Counters {
    malformed: u64,
    duplicates: u64,
    withheld: u64,
}

/// Message ids seen recently, bounded (oldest forgotten first).
struct Seen {
    set: HashSet<([u8; 32], [u8; 16])>,
    order: VecDeque<([u8; 32], [u8; 16])>,
}

impl Seen {
    fn new() -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True if new.
    fn insert(&mut self, key: [u8; 32], id: [u8; 16]) -> bool {
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

struct State {
    nick: String,
    advertised: String,
    peers: HashMap<Bytes, View>,
    known: KnownPeers,
    seen: Seen,
    counters: Counters,
    known_write_failed: bool,
}

/// What the outbox sends.
enum Outgoing {
    Send {
        env: Envelope,
        to: Vec<Bytes>,
        /// Report recipients that did not acknowledge.
        report: bool,
    },
    /// Everything before this was sent: stop.
    Stop,
}

/// The chat's shared part: used by the route handler, the event loop and the command loop.
struct Shared {
    ui: Arc<Ui>,
    me: Me,
    state: Mutex<State>,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Classify (nick, key) and remember a first-seen nick.
    fn judge(&self, st: &mut State, nick: &str, key: &[u8; 32]) -> Trust {
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
    fn display(&self, st: &State, id: &Bytes) -> String {
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
    fn seen_peer(&self, peer: &Peer) {
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
            Trust::Changed { known } => {
                self.ui
                    .notice(&format!("{display} joined (key {fp}, {addr})"));
                self.warn_changed(&display, &nick, &fp, known);
            }
        }
        // Our adverts carry the nick we started with: tell a newcomer the current one.
        if st.nick != st.advertised {
            let env = Envelope::new(Kind::Nick, st.nick.clone(), "");
            let _ = self.outbox.send(Outgoing::Send {
                env,
                to: vec![peer.id.clone()],
                report: false,
            });
        }
    }

    /// A peer now goes by `nick`.
    fn rename(&self, st: &mut State, id: &Bytes, nick: &str) {
        let Some(key) = st.peers.get(id).map(|v| v.keys.ed25519) else {
            return;
        };
        let before = self.display(st, id);
        let trust = self.judge(st, nick, &key);
        let Some(v) = st.peers.get_mut(id) else {
            return;
        };
        v.nick = nick.to_owned();
        v.trust = trust.clone();
        let fp = v.fp.clone();
        let after = self.display(st, id);
        self.ui.notice(&format!("{before} is now known as {after}"));
        if let Trust::Changed { known } = &trust {
            self.warn_changed(&after, nick, &fp, known);
        }
    }

    /// A peer left or timed out.
    fn gone(&self, peer: &Peer, timed_out: Option<Duration>) {
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
    }

    /// After lost events: bring the views in line with the table.
    fn resync(&self, table: &PeerTable, timeout: Duration) {
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

    /// The chat route: a message that passed the signature and decryption checks.
    fn on_message(&self, msg: &Message, ctx: &Context) -> Option<Message> {
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

/// The first 8 hex digits of a fingerprint.
fn short(fp: &str) -> &str {
    fp.get(..8).unwrap_or(fp)
}

/// Deliver one message to one peer: a call answered by `OK`, retried on timeout (at the peer's
/// latest address).
async fn deliver_one(
    handle: UdpHandle,
    plugins: Plugins,
    msg: Message,
    id: Bytes,
    timeout: Duration,
) -> Result<(), String> {
    let opts = SendOptions::new().inner(plugins).timeout(timeout);
    for _ in 0..ATTEMPTS {
        let Some(addr) = handle
            .peers()
            .get(&id)
            .and_then(|p| p.addrs.first().copied())
        else {
            return Err("no longer here".into());
        };
        match handle.call_with(addr, msg.clone(), &opts).await {
            Ok(_) => return Ok(()),
            Err(RequestError::Timeout(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("no answer".into())
}

/// Send queued messages one after the other (each to its recipients at once), so that lines
/// arrive in the order they were typed.
async fn outbox(
    shared: Arc<Shared>,
    handle: UdpHandle,
    plugins: Plugins,
    timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(item) = rx.recv().await {
        let Outgoing::Send { env, to, report } = item else {
            break;
        };
        let msg = env.to_message();
        let mut set = JoinSet::new();
        for id in to {
            let (h, p, m) = (handle.clone(), plugins.clone(), msg.clone());
            set.spawn(async move {
                let r = deliver_one(h, p, m, id.clone(), timeout).await;
                (id, r)
            });
        }
        while let Some(done) = set.join_next().await {
            let Ok((id, Err(why))) = done else {
                continue;
            };
            tracing::debug!(peer = %String::from_utf8_lossy(&id), %why, "not delivered");
            if report {
                let who = {
                    let st = shared.lock();
                    shared.display(&st, &id)
                };
                shared.ui.error(&format!("not delivered to {who}: {why}"));
            }
        }
    }
}

/// The running chat, as the command loop sees it.
struct Chat {
    shared: Arc<Shared>,
    handle: UdpHandle,
    opts: Options,
    group: Option<SocketAddr>,
}

impl Chat {
    fn ui(&self) -> &Ui {
        &self.shared.ui
    }

    fn send(&self, env: Envelope, to: Vec<Bytes>) {
        let _ = self.shared.outbox.send(Outgoing::Send {
            env,
            to,
            report: true,
        });
    }

    fn check_text(&self, text: &str) -> bool {
        if text.len() > MAX_TEXT {
            self.ui().error(&format!(
                "message too long ({} bytes; at most {MAX_TEXT}): not sent",
                text.len()
            ));
            return false;
        }
        true
    }

    /// Run one command; false to quit.
    fn execute(&self, cmd: Command) -> bool {
        match cmd {
            Command::Empty => {}
            Command::Say(text) => self.say(text),
            Command::Msg { to, text } => self.direct(&to, text),
            Command::Nick(nick) => self.nick(nick),
            Command::Peers => self.peers(),
            Command::Trust { nick, fingerprint } => self.trust(&nick, &fingerprint),
            Command::Stats => self.stats(),
            Command::Whoami => self.whoami(),
            Command::Help => {
                self.ui().notice("commands:");
                for line in HELP {
                    self.ui().info(line);
                }
            }
            Command::Quit => return false,
        }
        true
    }

    fn say(&self, text: String) {
        if !self.check_text(&text) {
            return;
        }
        let (nick, to) = {
            let st = self.shared.lock();
            (
                st.nick.clone(),
                st.peers.keys().cloned().collect::<Vec<_>>(),
            )
        };
        if to.is_empty() {
            self.ui()
                .error("nobody else is here yet: message not sent (/peers lists who is here)");
            return;
        }
        self.send(Envelope::new(Kind::Room, nick, text), to);
    }

    /// The one peer `who` (`nick` or `nick#fingerprint-prefix`) names.
    fn resolve(&self, who: &str) -> Result<Bytes, String> {
        let (nick, fp) = match who.split_once('#') {
            Some((n, f)) => (n, Some(f.to_ascii_lowercase())),
            None => (who, None),
        };
        let st = self.shared.lock();
        let found: Vec<(&Bytes, &View)> = st
            .peers
            .iter()
            .filter(|(_, v)| v.nick.eq_ignore_ascii_case(nick))
            .filter(|(_, v)| fp.as_deref().is_none_or(|f| v.fp.starts_with(f)))
            .collect();
        match found.as_slice() {
            [] => Err(format!("nobody called {who} is here (/peers lists who is)")),
            [(id, v)] => match &v.trust {
                Trust::Changed { .. } => Err(format!(
                    "{} has a key you have not accepted for {}: not sent (/trust {} {} to accept it)",
                    self.shared.display(&st, id),
                    v.nick,
                    v.nick,
                    short(&v.fp)
                )),
                _ => Ok((*id).clone()),
            },
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|(id, _)| self.shared.display(&st, id))
                    .collect();
                Err(format!(
                    "several people are called {who}: {}; say which",
                    names.join(", ")
                ))
            }
        }
    }

    fn direct(&self, who: &str, text: String) {
        if !self.check_text(&text) {
            return;
        }
        match self.resolve(who) {
            Ok(id) => {
                let nick = self.shared.lock().nick.clone();
                self.send(Envelope::new(Kind::Direct, nick, text), vec![id]);
            }
            Err(e) => self.ui().error(&e),
        }
    }

    fn nick(&self, nick: String) {
        if let Err(e) = valid_nick(&nick) {
            self.ui().error(&e.to_string());
            return;
        }
        let to = {
            let mut st = self.shared.lock();
            if st.nick == nick {
                drop(st);
                self.ui().notice(&format!("you are already {nick}"));
                return;
            }
            st.nick = nick.clone();
            st.peers.keys().cloned().collect::<Vec<_>>()
        };
        self.ui().notice(&format!("you are now known as {nick}"));
        if !to.is_empty() {
            let env = Envelope::new(Kind::Nick, nick, "");
            let _ = self.shared.outbox.send(Outgoing::Send {
                env,
                to,
                report: false,
            });
        }
    }

    fn peers(&self) {
        let st = self.shared.lock();
        if st.peers.is_empty() {
            self.ui().notice("nobody else is here yet");
            return;
        }
        let mut rows: Vec<(String, &Bytes, &View)> = st
            .peers
            .iter()
            .map(|(id, v)| (self.shared.display(&st, id), id, v))
            .collect();
        rows.sort_by_key(|a| a.0.to_ascii_lowercase());
        let n = rows.len();
        self.ui().notice(&format!(
            "{n} {} here:",
            if n == 1 {
                "other person"
            } else {
                "other people"
            }
        ));
        for (display, id, v) in rows {
            let peer = self.handle.peers().get(id);
            let addr = peer
                .as_ref()
                .and_then(|p| p.addrs.first())
                .map_or_else(|| "?".into(), ToString::to_string);
            let heard = peer.as_ref().and_then(|p| p.last_seen).map_or_else(
                || "?".into(),
                |t| format!("{} s ago", t.elapsed().as_secs()),
            );
            let flag = match v.trust {
                Trust::Changed { .. } => "  KEY CHANGED: not trusted",
                _ => "",
            };
            self.ui().info(&format!(
                "{display:<24} key {}  {addr:<24} heard {heard}{flag}",
                v.fp
            ));
        }
    }

    fn trust(&self, nick: &str, fp: &str) {
        let fp: String = fp
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if fp.len() < 8 || !fp.chars().all(|c| c.is_ascii_hexdigit()) {
            self.ui()
                .error("give at least the first 8 hex digits of the fingerprint (see /peers)");
            return;
        }
        let mut st = self.shared.lock();
        let found: Vec<Bytes> = st
            .peers
            .iter()
            .filter(|(_, v)| v.nick.eq_ignore_ascii_case(nick) && v.fp.starts_with(&fp))
            .map(|(id, _)| id.clone())
            .collect();
        let [id] = found.as_slice() else {
            drop(st);
            self.ui().error(&format!(
                "no one here is {nick} with a key fingerprint starting {fp} (see /peers)"
            ));
            return;
        };
        let Some((key, vfp)) = st.peers.get(id).map(|v| (v.keys.ed25519, v.fp.clone())) else {
            return;
        };
        if let Err(e) = st.known.remember(nick, &key) {
            self.ui()
                .error(&format!("cannot write the known peers file: {e}"));
        }
        if let Some(v) = st.peers.get_mut(id) {
            v.trust = Trust::Known;
        }
        drop(st);
        self.ui()
            .notice(&format!("key {vfp} is now trusted for {nick}"));
    }

    fn stats(&self) {
        let s = self.handle.stats();
        let st = self.shared.lock();
        self.ui().notice(&format!(
            "dropped: failed authentication {}, failed decryption {}, undecodable {}, malformed {}; \
             duplicates {}; withheld {}",
            s.auth_failed,
            s.decrypt_failed,
            s.invalid,
            st.counters.malformed,
            st.counters.duplicates,
            st.counters.withheld
        ));
    }

    fn whoami(&self) {
        let nick = self.shared.lock().nick.clone();
        self.ui()
            .notice(&format!("you are {nick}, key {}", self.shared.me.fp));
        self.ui().info(&format!(
            "identity file     {}",
            self.opts.identity.display()
        ));
        self.ui().info(&format!(
            "known peers file  {}",
            self.opts.known_peers.display()
        ));
        self.ui()
            .info(&format!("listening on      {}", self.handle.local_addr()));
        if let Some(g) = self.group {
            self.ui().info(&format!("peers found on    {g}"));
        }
        self.ui().info(&format!(
            "room secret       {}",
            if self.opts.room_secret.is_some() {
                "yes"
            } else {
                "no"
            }
        ));
    }
}

/// Run the chat until `/quit`, the end of `input`, or `stop` completes (Ctrl-C). Returns once
/// the goodbye (`DISCONNECT`) was sent.
pub async fn run(
    opts: Options,
    ui: Arc<Ui>,
    mut input: mpsc::Receiver<Input>,
    stop: impl std::future::Future<Output = &'static str>,
) -> Result<(), ChatError> {
    valid_nick(&opts.nick)?;
    let loaded = identity::load_or_create(&opts.identity)?;
    let identity = loaded.identity;
    let (known, warnings) =
        KnownPeers::load(&opts.known_peers).map_err(|source| ChatError::KnownPeers {
            path: opts.known_peers.clone(),
            source,
        })?;
    for w in warnings {
        ui.error(&w);
    }
    let keys = identity.public_keys();
    let me = Me {
        keys,
        fp: fingerprint(&keys.ed25519),
    };
    let plugins = chat_plugins(&identity);
    let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        ui: ui.clone(),
        me,
        state: Mutex::new(State {
            nick: opts.nick.clone(),
            advertised: opts.nick.clone(),
            peers: HashMap::new(),
            known,
            seen: Seen::new(),
            counters: Counters::default(),
            known_write_failed: false,
        }),
        outbox: outbox_tx,
    });
    let s = shared.clone();
    let router = Router::new().route(
        Route::on(
            (MessageType::PUBLISH_URI, CHAT_URI),
            move |msg: Message, ctx: Context| {
                let s = s.clone();
                async move { s.on_message(&msg, &ctx) }
            },
        )
        .with_inner(plugins.clone()),
    );
    let mut builder = UdpNode::builder()
        .address(opts.bind)
        .router(router)
        .peer_plugin(ChatPeerPlugin)
        .local_peer(ChatPeerPlugin::local_peer(&identity, &opts.nick)?)
        .multicast(opts.multicast.clone())
        .peer_management(
            PeerConfig::default()
                .app_id(APP_ID)
                .advertise_interval(opts.advert_interval)
                .peer_timeout(opts.peer_timeout),
        );
    if let Some(secret) = &opts.room_secret {
        let (auth, cipher) = room_plugins(secret);
        builder = builder.auth(auth).cipher(cipher);
    }
    drop(identity);
    let node = builder.bind().await?;
    let handle = node.handle();
    let mut events = handle.peer_events();
    let group = handle.multicast_group();
    let serving = tokio::spawn(node.serve());
    let sender = tokio::spawn(outbox(
        shared.clone(),
        handle.clone(),
        plugins,
        opts.ack_timeout,
        outbox_rx,
    ));

    ui.notice(&format!(
        "you are {} (key {}{})",
        opts.nick,
        shared.me.fp,
        if loaded.created {
            format!("; new identity saved in {}", opts.identity.display())
        } else {
            String::new()
        }
    ));
    ui.notice(&format!(
        "listening on {}, finding peers on {}{}; /help lists the commands",
        handle.local_addr(),
        group.map_or_else(|| "?".into(), |g| g.to_string()),
        if opts.room_secret.is_some() {
            " with the room secret"
        } else {
            ""
        }
    ));

    let chat = Chat {
        shared: shared.clone(),
        handle: handle.clone(),
        opts,
        group,
    };
    let timeout = chat.opts.peer_timeout;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(PeerEvent::Discovered(p) | PeerEvent::Updated(p)) => shared.seen_peer(&p),
                Ok(PeerEvent::Disconnected(p)) => shared.gone(&p, None),
                Ok(PeerEvent::Expired(p)) => shared.gone(&p, Some(timeout)),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => shared.resync(handle.peers(), timeout),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            line = input.recv() => match line {
                Some(Input::Line(l)) => match commands::parse(&l) {
                    Ok(cmd) => if !chat.execute(cmd) { break },
                    Err(e) => ui.error(&e),
                },
                Some(Input::TooLong) => ui.error("line too long: ignored"),
                None => break,
            },
            why = &mut stop => {
                ui.notice(&format!("{why}: leaving"));
                break;
            }
        }
    }

    // Finish what was typed (bounded), then say goodbye.
    let _ = shared.outbox.send(Outgoing::Stop);
    let drain = chat.opts.ack_timeout * ATTEMPTS + Duration::from_secs(1);
    let started = Instant::now();
    if tokio::time::timeout(drain, sender).await.is_err() {
        tracing::debug!(waited = ?started.elapsed(), "outbox not drained");
    }
    handle.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    ui.notice("bye");
    Ok(())
}
