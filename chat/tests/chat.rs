//! The chat as people use it: `chat` processes on 127.0.0.1 (IPv4 multicast on `lo`, each test
//! with a group port of its own), driven through stdin, their stdout read line by line.
//!
//! - `three_people_talk`: discovery, a room message shown exactly once by each of the others, a
//!   direct message shown only by its target, a nick change (told to a newcomer too), someone
//!   with the wrong room secret who sees nothing and is seen by nobody, `/quit`, Ctrl-C and the
//!   end of input each shown to the others as a leave notice, a known key recognised on return.
//! - `impostors_and_forgeries`: a second process using alice's nick with another key is flagged
//!   and its messages withheld until bob runs `/trust`. Then a forger advertises alice's (public) peer from its own
//!   address, so that bob attributes that address to alice, and sends messages claiming to be
//!   alice: one with its own keys, one encrypted exactly as alice would but signed with the wrong
//!   key, one signed by alice but encrypted with the wrong key. Each is refused by the check it
//!   fails (counted in `/stats`) and none is shown, while the same path with both of alice's keys
//!   (the control) is shown, once, although sent twice.
//! - `a_newcomer_is_answered_at_once`: with a room secret and adverts a minute apart, someone who
//!   joins sees the others at once (they answer its first advert), and can talk to them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::terminal::{BACKSPACE, CTRL_C, END, ENTER, HOME, LEFT, RIGHT, TAB, TermChat, UP};
use common::{Chat, LIMIT, free_port};
use netaio::Router;
use netaio::peer::PeerConfig;
use netaio::plugin::{Plugins, SendOptions};
use netaio::udp::{MulticastConfig, MulticastInterface, UdpNode};
use netaio_asymmetric::{Identity, X25519Cipher};
use netaio_chat::protocol::{
    APP_ID, ChatPeerPlugin, Envelope, Kind, SignedBy, chat_plugins, fingerprint, room_plugins,
};

const SECRET: &str = "correct horse battery staple";

fn joined(nick: &str) -> impl Fn(&str) -> bool + '_ {
    move |l| l.starts_with(&format!("* {nick} joined ("))
}

fn said<'a>(nick: &'a str, text: &'a str) -> impl Fn(&str) -> bool + 'a {
    move |l| l == format!("<{nick}> {text}")
}

#[test]
fn a_newcomer_is_answered_at_once() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    // Adverts a minute apart: within the test's 30 s, alice advertises only as she starts,
    // before bob listens, so bob can learn of her only from her answer to his first advert.
    let flags = [
        "--room-secret",
        SECRET,
        "--advert-interval-ms",
        "60000",
        "--peer-timeout-ms",
        "180000",
    ];
    let mut alice = Chat::start(home.path(), "a", "alice", port, &flags);
    let mut bob = Chat::start(home.path(), "b", "bob", port, &flags);
    alice.wait_for("bob's advert", joined("bob"));
    bob.wait_for("alice's answer", joined("alice"));
    alice.type_line("welcome bob");
    bob.wait_for("her message", said("alice", "welcome bob"));
    assert_eq!(alice.count(|l| l.contains("not delivered")), 0);
}

#[test]
fn three_people_talk() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = ["--room-secret", SECRET];
    let mut alice = Chat::start(home.path(), "a", "alice", port, &secret);
    let mut bob = Chat::start(home.path(), "b", "bob", port, &secret);
    let mut carol = Chat::start(home.path(), "c", "carol", port, &secret);

    // Each discovers the others.
    for (me, others) in [
        (&mut alice, ["bob", "carol"]),
        (&mut bob, ["alice", "carol"]),
        (&mut carol, ["alice", "bob"]),
    ] {
        for other in others {
            let line = me.wait_for(&format!("{other} joined"), joined(other));
            assert!(line.contains("first time seen: key remembered"), "{line}");
        }
        let rows = me.peers();
        assert_eq!(rows.len(), 2, "{rows:?}");
        for (row, other) in rows.iter().zip(others) {
            assert!(row.starts_with(other), "{row}");
            assert!(row.contains("127.0.0.1:"), "{row}");
            assert!(row.contains("heard "), "{row}");
            assert!(!row.contains("KEY CHANGED"), "{row}");
        }
    }
    // Their keys were remembered.
    let known = std::fs::read_to_string(alice.dir.join("known_peers")).unwrap();
    assert!(known.lines().any(|l| l.starts_with("bob ")), "{known}");

    // A room message reaches both others exactly once. `marker` is sent after it (alice sends
    // one message at a time, each after every recipient acknowledged the one before), so once
    // the marker is shown every copy of the first message has arrived.
    alice.type_line("hello room");
    alice.type_line("marker one");
    for other in [&mut bob, &mut carol] {
        other.wait_for("the marker", said("alice", "marker one"));
        assert_eq!(other.count(said("alice", "hello room")), 1);
    }
    assert_eq!(alice.count(|l| l.contains("hello room")), 0, "no echo");

    // A direct message reaches only its target.
    bob.type_line("/msg carol the secret plan");
    carol.wait_for("the direct message", |l| {
        l == "<bob> (private) the secret plan"
    });
    bob.type_line("marker two");
    alice.wait_for("bob's marker", said("bob", "marker two"));
    carol.wait_for("bob's marker", said("bob", "marker two"));
    assert_eq!(alice.count(|l| l.contains("secret plan")), 0);
    assert_eq!(bob.count(|l| l.contains("not delivered")), 0);

    // A nick change is shown, and the new nick can be messaged.
    bob.type_line("/nick robert");
    bob.wait_for("the nick confirmation", |l| {
        l == "* you are now known as robert"
    });
    alice.wait_for("the rename", |l| l == "* bob is now known as robert");
    alice.type_line("/msg robert hi robert");
    bob.wait_for("the message to the new nick", |l| {
        l == "<alice> (private) hi robert"
    });
    // The old nick says who it is now.
    let from = alice.mark();
    alice.type_line("/msg bob still there?");
    alice.wait_from(from, "the new name", |l| {
        l == "! nobody called bob is here: bob is now known as robert (/msg robert ...)"
    });

    // Dave has the wrong room secret: he sees nothing and nobody sees him.
    let before = alice.stats().auth;
    let mut dave = Chat::start(home.path(), "d", "dave", port, &["--room-secret", "wrong"]);
    // His adverts reach alice and fail her check; theirs reach him and fail his.
    alice.stats_until("dave's adverts refused", |s| s.auth > before);
    dave.stats_until("the others' adverts refused", |s| s.auth > 0);
    assert!(dave.peers().is_empty());
    let from = dave.mark();
    dave.type_line("is anyone here?");
    dave.wait_from(from, "the not-sent notice", |l| {
        l.starts_with("! nobody else is here yet")
    });
    // ... and why: the others' datagrams failed his room check.
    dave.wait_from(from, "the room secret hint", |l| {
        l.starts_with("! datagrams from ")
            && l.ends_with(" could not be authenticated: is the room secret the same?")
    });
    // Eve has no secret at all: the room's datagrams reach her sealed.
    let mut eve = Chat::start(home.path(), "e", "eve", port, &[]);
    let deadline = Instant::now() + LIMIT;
    loop {
        let from = eve.mark();
        eve.type_line("/peers");
        eve.wait_from(from, "the /peers answer", |l| {
            l == "* nobody else is here yet"
        });
        std::thread::sleep(Duration::from_millis(200));
        let n = eve.mark();
        if eve.log[from..n]
            .iter()
            .any(|l| l.contains("! datagrams from ") && l.contains("are sealed with a room secret"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "eve never got the hint: {:#?}",
            eve.log
        );
    }
    alice.type_line("while the fourth is here");
    bob.wait_for("alice's message", said("alice", "while the fourth is here"));
    carol.wait_for("alice's message", said("alice", "while the fourth is here"));
    for c in [&mut alice, &mut bob, &mut carol] {
        let rows = c.peers();
        assert_eq!(rows.len(), 2, "{}: {rows:?}", c.nick);
        assert!(rows.iter().all(|r| !r.starts_with("dave")), "{rows:?}");
        assert!(rows.iter().all(|r| !r.starts_with("eve")), "{rows:?}");
        assert_eq!(
            c.count(|l| l.contains("dave")),
            0,
            "{}: {:#?}",
            c.nick,
            c.log
        );
        assert_eq!(c.count(|l| l.contains("anyone here")), 0, "{}", c.nick);
    }
    assert_eq!(
        dave.count(|l| l.contains("joined") || l.starts_with('<')),
        0
    );

    // `/quit`: the others see carol leave (her DISCONNECT; the peer timeout is 15 s).
    let left = Instant::now();
    assert!(carol.quit().success());
    alice.wait_for("carol's leave notice", |l| l == "* carol left");
    bob.wait_for("carol's leave notice", |l| l == "* carol left");
    assert!(
        left.elapsed() < Duration::from_secs(10),
        "by DISCONNECT, not expiry"
    );

    assert!(dave.quit().success());
    assert!(eve.quit().success());

    // Carol comes back with the same identity: alice knows her key already, and she learns bob's
    // current nick although his adverts still carry the one he started with.
    let mut carol2 = Chat::start(home.path(), "c", "carol", port, &secret);
    let back = alice.wait_from(0, "carol back", |l| {
        l.starts_with("* carol joined (") && !l.contains("first time")
    });
    assert!(!back.contains("first time"), "{back}");
    carol2.wait_for("bob's advertised nick", |l| {
        l.starts_with("* bob joined (") && !l.contains("first time")
    });
    carol2.wait_for("bob's current nick", |l| {
        l == "* bob is now known as robert"
    });
    carol2.type_line("/msg robert welcome back to me");
    bob.wait_for("carol's direct message", |l| {
        l == "<carol> (private) welcome back to me"
    });

    // Ctrl-C is /quit: alice leaves with a goodbye and exits 0.
    let status = Command::new("kill")
        .args(["-INT", &alice.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(alice.wait_exit().success());
    assert_eq!(alice.count(|l| l == "* Ctrl-C: leaving"), 1);
    bob.wait_for("alice's leave notice", |l| l == "* alice left");
    carol2.wait_for("alice's leave notice", |l| l == "* alice left");
    // So is the end of the input.
    bob.close_input();
    assert!(bob.wait_exit().success());
    carol2.wait_for("bob's leave notice", |l| l == "* robert left");
    assert!(carol2.quit().success());
    for c in [
        &mut alice,
        &mut bob,
        &mut carol,
        &mut carol2,
        &mut dave,
        &mut eve,
    ] {
        assert!(
            c.log.last().is_some_and(|l| l.ends_with("* bye")),
            "{}",
            c.nick
        );
        c.assert_plain();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostors_and_forgeries() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = ["--room-secret", SECRET];
    let mut alice = Chat::start(home.path(), "a", "alice", port, &secret);
    let mut bob = Chat::start(home.path(), "b", "bob", port, &secret);
    bob.wait_for("alice joined", joined("alice"));
    alice.wait_for("bob joined", joined("bob"));

    // Mallory starts a chat as "alice" with a key of her own: flagged at bob, and her
    // messages (direct or to the room) are withheld.
    let mut mallory = Chat::start(home.path(), "m", "alice", port, &secret);
    let mallory_fp = fingerprint(
        &netaio_chat::identity::load(&mallory.identity())
            .unwrap()
            .public_keys()
            .ed25519,
    );
    let flagged = bob.wait_for("the key change warning", |l| {
        l.starts_with("!! key changed for alice:")
    });
    assert!(flagged.contains(&mallory_fp), "{flagged}");
    let row = bob
        .peers()
        .into_iter()
        .find(|r| r.contains(&mallory_fp))
        .expect("mallory listed");
    assert!(
        row.starts_with(&format!("alice#{}", &mallory_fp[..8])),
        "{row}"
    );
    assert!(row.ends_with("KEY CHANGED: not trusted"), "{row}");
    mallory.wait_for("bob joined", joined("bob"));
    // In mallory's own chat, the real alice uses "her" nick: shown with its key, not as a key
    // change of someone she knows; and likewise mallory in alice's.
    let alice_fp = fingerprint(
        &netaio_chat::identity::load(&alice.identity())
            .unwrap()
            .public_keys()
            .ed25519,
    );
    let seen = mallory.wait_for("the real alice", |l| {
        l.starts_with(&format!("* alice#{} joined (", &alice_fp[..8]))
    });
    assert!(seen.contains("uses your nick"), "{seen}");
    let seen = alice.wait_for("mallory", |l| {
        l.starts_with(&format!("* alice#{} joined (", &mallory_fp[..8]))
    });
    assert!(seen.contains("uses your nick"), "{seen}");
    mallory.type_line("it is me, alice, send me the files");
    mallory.type_line("/msg bob psst, it is alice");
    bob.stats_until("both withheld", |s| s.withheld == 2);
    let withheld = format!("!! withheld a message from alice#{}", &mallory_fp[..8]);
    assert_eq!(bob.count(|l| l.starts_with(&withheld)), 2);
    // Bob cannot message her by mistake either.
    let from = bob.mark();
    bob.type_line(&format!("/msg alice#{} hi", &mallory_fp[..8]));
    bob.wait_from(from, "the refusal", |l| {
        l.starts_with("! ") && l.contains("/trust alice")
    });
    // Once bob accepts her key (say they compared fingerprints), her messages are shown, with
    // the fingerprint since two people use the nick.
    let from = bob.mark();
    bob.type_line(&format!("/trust alice {}", &mallory_fp[..8]));
    bob.wait_from(from, "the trust confirmation", |l| {
        l == format!("* key {mallory_fp} is now trusted for alice")
    });
    mallory.type_line("thanks for trusting me");
    bob.wait_for("her message", |l| {
        l == format!("<alice#{}> thanks for trusting me", &mallory_fp[..8])
    });
    let known = std::fs::read_to_string(bob.dir.join("known_peers")).unwrap();
    assert_eq!(known.lines().filter(|l| l.starts_with("alice ")).count(), 2);
    alice.type_line("the real one here");
    mallory.wait_for("the real alice's line", |l| {
        l == format!("<alice#{}> the real one here", &alice_fp[..8])
    });
    assert_eq!(mallory.count(|l| l.starts_with("!! key changed")), 0);
    assert_eq!(alice.count(|l| l.starts_with("!! key changed")), 0);
    assert!(mallory.quit().success());
    bob.wait_for("mallory left", |l| {
        l == format!("* alice#{} left", &mallory_fp[..8])
    });

    // A forger takes alice's public peer (id and public keys, all public), advertises it from
    // its own address with the room secret (an insider), so bob attributes that address to
    // alice, and sends a message signed and encrypted with its own key.
    let alice_id = netaio_chat::identity::load(&alice.identity()).unwrap();
    let forger_id = Identity::generate();
    let (auth, cipher) = room_plugins(SECRET.as_bytes());
    let node = UdpNode::builder()
        .address(([127, 0, 0, 1], 0))
        .router(Router::new())
        .peer_plugin(ChatPeerPlugin)
        .local_peer(ChatPeerPlugin::local_peer(&alice_id, "alice").unwrap())
        .multicast(
            MulticastConfig::default()
                .port(port)
                .interface(MulticastInterface::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST))),
        )
        .peer_management(
            PeerConfig::default()
                .app_id(APP_ID)
                .advertise_interval(Duration::from_millis(100)),
        )
        .auth(auth)
        .cipher(cipher)
        .bind()
        .await
        .unwrap();
    let forger = node.handle();
    let forger_addr = node.local_addr();
    // Aborted at the end rather than shut down: its goodbye would make bob drop alice.
    let serving = tokio::spawn(node.serve());
    let bob_addr = bob.addr();
    let deadline = Instant::now() + LIMIT;
    while bob
        .peers()
        .iter()
        .all(|r| !(r.starts_with("alice ") && r.contains(&forger_addr.to_string())))
        || forger.peers().by_addr(bob_addr).is_none()
    {
        assert!(
            Instant::now() < deadline,
            "bob never saw alice at {forger_addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = bob.stats();

    // All with the forger's keys: refused (the signature check comes first).
    let forged = |text: &str| Envelope::new(Kind::Room, "alice", text).to_message();
    let send = |msg, plugins| {
        let forger = forger.clone();
        async move {
            forger
                .send_with(bob_addr, &msg, &SendOptions::new().inner(plugins))
                .await
                .unwrap();
        }
    };
    send(forged("FORGED 1: wire the money"), chat_plugins(&forger_id)).await;
    let s = bob.stats_until("the forgery refused", |s| s.auth > before.auth);
    assert_eq!(s.decrypt, before.decrypt);
    // Encrypted exactly as alice would (her X25519 key), signed with the wrong key: only the
    // signature check stands in the way.
    let as_alice_wrong_signature = Plugins::new()
        .cipher(X25519Cipher::new(&alice_id))
        .auth(SignedBy::new(&forger_id));
    send(forged("FORGED 2: bad signature"), as_alice_wrong_signature).await;
    let s2 = bob.stats_until("the bad signature refused", |x| x.auth > s.auth);
    assert_eq!(s2.decrypt, before.decrypt);
    // Signed with alice's key but encrypted with another: only decryption stands in the way.
    let signed_by_alice_wrong_cipher = Plugins::new()
        .cipher(X25519Cipher::new(&forger_id))
        .auth(SignedBy::new(&alice_id));
    send(
        forged("FORGED 3: wrong encryption"),
        signed_by_alice_wrong_cipher,
    )
    .await;
    let s3 = bob.stats_until("the bad encryption refused", |x| x.decrypt > before.decrypt);
    assert_eq!(s3.auth, s2.auth);

    // The control: the same path, signed with alice's real key, sent twice: shown once.
    let control = Envelope::new(Kind::Room, "alice", "control message");
    for _ in 0..2 {
        forger
            .send_with(
                bob_addr,
                &control.to_message(),
                &SendOptions::new().inner(chat_plugins(&alice_id)),
            )
            .await
            .unwrap();
    }
    // Both copies were queued at bob before alice types this.
    alice.type_line("marker");
    bob.wait_for("alice's marker", said("alice", "marker"));
    assert_eq!(bob.count(said("alice", "control message")), 1);
    assert_eq!(
        bob.stats().duplicates,
        before.duplicates + 1,
        "the second copy was a duplicate"
    );
    assert_eq!(bob.count(|l| l.contains("FORGED")), 0);
    assert_eq!(bob.count(|l| l.contains("send me the files")), 0);
    assert_eq!(bob.count(|l| l.contains("psst")), 0);
    serving.abort();

    assert!(alice.quit().success());
    assert!(bob.quit().success());
    bob.assert_plain();
}

/// At a terminal (a pseudo-terminal, its screen rendered as a VT100 would): alice edits with the
/// cursor keys, recalls a line from the history, completes a command and a nick with Tab, keeps a
/// half-typed line while a message arrives, sees her own lines with their delivery mark (and
/// the names of those who did not get one), and leaves with Ctrl-C. Bob reads through a pipe.
#[test]
fn typing_at_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut alice = TermChat::start(home.path(), "a", "alice", port);
    let mut bob = Chat::start(home.path(), "b", "bob", port, &[]);
    bob.wait_for("alice joined", joined("alice"));
    alice.wait_row("bob joined", |r| r.starts_with("* bob joined ("));

    // Cursor keys, Home, End and Backspace edit the line; none of them reaches bob as text.
    alice.keys("hllo wrld");
    alice.keys(&LEFT.repeat(3));
    alice.keys("o");
    alice.keys(HOME);
    alice.keys(RIGHT);
    alice.keys("e");
    alice.keys(END);
    alice.keys(" !!");
    alice.keys(BACKSPACE);
    alice.keys(ENTER);
    bob.wait_for("the edited line", said("alice", "hello world !"));
    // Alice's own line, once, in the transcript's format, with the mark that bob has it; the
    // line as the editor left it is gone.
    alice.wait_row("her line, delivered", |r| r == "<alice> hello world ! ✓");
    assert!(
        !alice.rows().iter().any(|r| r.starts_with("alice> hello")),
        "{}",
        alice.screen()
    );

    // Up recalls it; edited and sent again.
    alice.keys(UP);
    alice.wait_screen("the recalled line", |s| s.contains("alice> hello world !"));
    alice.keys(&BACKSPACE.repeat(2));
    alice.keys("?");
    alice.keys(ENTER);
    bob.wait_for("the recalled line", said("alice", "hello world?"));

    // A message arrives while alice is typing: it is printed above, her line stays as it was.
    alice.keys("half typed");
    alice.wait_screen("the half-typed line", |s| s.contains("alice> half typed"));
    bob.type_line("interrupting you");
    alice.wait_row("bob's message", |r| r == "<bob> interrupting you");
    assert_eq!(
        alice.cursor_row(),
        "alice> half typed",
        "{}",
        alice.screen()
    );
    alice.keys(" line");
    alice.keys(ENTER);
    bob.wait_for("the finished line", said("alice", "half typed line"));

    // Tab completes the command and the nick.
    alice.keys("/ms");
    alice.keys(TAB);
    alice.keys("b");
    alice.keys(TAB);
    alice.keys("psst");
    alice.keys(ENTER);
    bob.wait_for("the direct message", |l| l == "<alice> (private) psst");
    alice.wait_row("her direct message, delivered", |r| {
        r == "<alice> (to bob) psst ✓"
    });

    // Bob stops answering (stopped, not gone): after the retries alice is told he did not get it.
    let stop = |signal: &str| {
        let status = Command::new("kill")
            .args([signal, &bob.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    stop("-STOP");
    alice.keys("anyone there?");
    alice.keys(ENTER);
    alice.wait_row("the failed delivery", |r| {
        r.contains("not delivered to bob (no answer)") && r.contains("anyone there?")
    });
    stop("-CONT");

    // Ctrl-C leaves, as SIGINT does through a pipe.
    alice.keys(CTRL_C);
    assert!(alice.wait_exit().success());
    alice.wait_row("the leave notice", |r| r == "* Ctrl-C: leaving");
    bob.wait_for("alice's leave notice", |l| l == "* alice left");
    assert!(bob.quit().success());
}

/// At a terminal, the library's log lines are printed above the prompt like the chat's own
/// lines: a WARN of netaio (datagrams refused from a chat with another room secret) arrives while
/// alice is typing, and her half-typed line stays intact on the last row.
#[test]
fn library_log_lines_do_not_garble_the_typed_line() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut alice =
        TermChat::start_with(home.path(), "a", "alice", port, &["--room-secret", SECRET]);
    alice.keys("half typed");
    alice.wait_screen("the half-typed line", |s| s.contains("alice> half typed"));
    // Another room secret: its adverts fail alice's room auth, which the library logs at WARN.
    let mut mallory = Chat::start(
        home.path(),
        "m",
        "mallory",
        port,
        &["--room-secret", "wrong"],
    );
    alice.wait_row("the library's warning", |r| {
        r.contains("WARN") && r.contains("datagrams refused from")
    });
    // The editor redraws the prompt and the line below what was printed.
    let until = Instant::now() + LIMIT;
    while alice.cursor_row() != "alice> half typed" && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        alice.cursor_row(),
        "alice> half typed",
        "{}",
        alice.screen()
    );
    assert!(
        !alice
            .rows()
            .iter()
            .any(|r| r.contains("half typed") && r.contains("WARN")),
        "{}",
        alice.screen()
    );
    alice.keys(CTRL_C);
    assert!(alice.wait_exit().success());
    assert!(mallory.quit().success());
}
