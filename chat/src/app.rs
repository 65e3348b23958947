//! The running chat: a `UdpNode` doing multicast discovery with the chat route, the loop that
//! takes peer events and typed lines, and the goodbye. What it is made of: who is here
//! ([`people`](crate::people)), the chat route ([`receive`](crate::receive)), the commands
//! ([`session`](crate::session)), delivery ([`outbox`](crate::outbox)).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netaio::peer::{PeerConfig, PeerEvent};
use netaio::plugin::HmacAuth;
use netaio::router::{Context, PeerAddr, Route};
use netaio::udp::{MulticastConfig, UdpNode};
use netaio::{BindError, Message, MessageType, Router};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use zeroize::Zeroizing;

use crate::commands;
use crate::identity::{self, IdentityError};
use crate::known::KnownPeers;
use crate::outbox::{ATTEMPTS, Outgoing, outbox};
use crate::people::{Counters, Me, Seen, Shared, State};
use crate::protocol::{
    APP_ID, CHAT_URI, ChatPeerPlugin, NickError, chat_plugins, fingerprint, room_plugins,
    valid_nick,
};
use crate::refusals::{Refusals, RoomAuth};
use crate::session::Chat;
use crate::terminal::Names;
use crate::ui::Ui;

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
    /// Ctrl-C at the line editor (a key there, not a signal): leave, as on SIGINT.
    Interrupt,
}

/// Run the chat until `/quit`, the end of `input`, or `stop` completes (Ctrl-C). Returns once
/// the goodbye (`DISCONNECT`) was sent. `names` gets one's nick and the people here, for the
/// line editor's prompt and completion.
pub async fn run(
    opts: Options,
    ui: Arc<Ui>,
    mut input: mpsc::Receiver<Input>,
    names: Names,
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
    let refusals = Arc::new(Refusals::default());
    names.set_own(&opts.nick);
    let shared = Arc::new(Shared {
        ui: ui.clone(),
        me,
        names,
        refusals: refusals.clone(),
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
    let mut router = Router::new().route(
        Route::on(
            (MessageType::PUBLISH_URI, CHAT_URI),
            move |msg: Message, ctx: Context| {
                let s = s.clone();
                async move { s.on_message(&msg, &ctx) }
            },
        )
        .with_inner(plugins.clone()),
    );
    if opts.room_secret.is_none() {
        // Without a secret, the adverts of a room with one arrive sealed (uri encrypted, so no
        // route takes them): note who sends them, for the "nobody is here" hint. Never answered.
        let r = refusals.clone();
        router = router.fallback(move |msg: Message, PeerAddr(from): PeerAddr| {
            if msg.auth.contains(HmacAuth::MAC_FIELD) {
                r.sealed(from);
            }
            async {}
        });
    }
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
        builder = builder
            .auth(RoomAuth::new(auth, refusals.clone()))
            .cipher(cipher);
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
        echoes: Mutex::new(JoinSet::new()),
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
                Some(Input::Interrupt) => {
                    ui.notice("Ctrl-C: leaving");
                    break;
                }
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
    chat.finish_echoes(Duration::from_secs(1)).await;
    handle.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    ui.notice("bye");
    Ok(())
}
