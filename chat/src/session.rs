//! The commands, as the running chat carries them out: saying something to the room or to one
//! person, changing nick, listing who is here, trusting a key, the counters, who one is.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use netaio::udp::UdpHandle;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::app::Options;
use crate::commands::{Command, HELP};
use crate::known::Trust;
use crate::outbox::{Outgoing, Report, echo};
use crate::people::{Shared, View, short};
use crate::protocol::{Envelope, Kind, MAX_TEXT, valid_nick};
use crate::ui::{OwnLine, Ui};

/// Own lines whose delivery is awaited at most, to show them (each holds a task).
pub const MAX_ECHOES: usize = 256;

/// The running chat, as the command loop sees it.
pub(crate) struct Chat {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: UdpHandle,
    pub(crate) opts: Options,
    pub(crate) group: Option<SocketAddr>,
    /// The echoes of typed lines waiting for their delivery (terminal mode).
    pub(crate) echoes: Mutex<JoinSet<()>>,
}

impl Chat {
    fn ui(&self) -> &Ui {
        &self.shared.ui
    }

    /// Queue `env` for `to`; at a terminal, `line` is shown once its delivery is known.
    fn send(&self, env: Envelope, to: Vec<Bytes>, line: OwnLine) {
        let report = if self.ui().echoes() {
            let (tx, rx) = oneshot::channel();
            let mut echoes = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
            while echoes.try_join_next().is_some() {}
            if echoes.len() < MAX_ECHOES {
                echoes.spawn(echo(
                    self.shared.ui.clone(),
                    line,
                    rx,
                    self.opts.ack_timeout,
                ));
            }
            Report::To(tx)
        } else {
            Report::Lines
        };
        let _ = self.shared.outbox.send(Outgoing::Send {
            env,
            to,
            report: Some(report),
        });
    }

    /// Wait (at most `limit`) for the echoes still waiting for their delivery.
    pub(crate) async fn finish_echoes(&self, limit: Duration) {
        let mut echoes =
            std::mem::take(&mut *self.echoes.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::time::timeout(limit, async { while echoes.join_next().await.is_some() {} })
            .await;
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
    pub(crate) fn execute(&self, cmd: Command) -> bool {
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
            self.shared.nobody_here(
                "nobody else is here yet: message not sent (/peers lists who is here)",
                true,
            );
            return;
        }
        let line = OwnLine {
            nick: nick.clone(),
            to: None,
            text: text.clone(),
        };
        self.send(Envelope::new(Kind::Room, nick, text), to, line);
    }

    /// The one peer `who` (`nick` or `nick#fingerprint-prefix`) names, and how it is shown.
    fn resolve(&self, who: &str) -> Result<(Bytes, String), String> {
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
            [] => {
                // Someone here went by that nick before: say what they are called now.
                let mut now: Vec<String> = st
                    .peers
                    .iter()
                    .filter(|(_, v)| v.former.iter().any(|f| f.eq_ignore_ascii_case(nick)))
                    .filter(|(_, v)| fp.as_deref().is_none_or(|f| v.fp.starts_with(f)))
                    .map(|(id, _)| self.shared.display(&st, id))
                    .collect();
                now.sort();
                match now.as_slice() {
                    [] => Err(format!("nobody called {who} is here (/peers lists who is)")),
                    [one] => Err(format!(
                        "nobody called {who} is here: {nick} is now known as {one} (/msg {one} ...)"
                    )),
                    many => Err(format!(
                        "nobody called {who} is here: {nick} was the nick of {}",
                        many.join(", ")
                    )),
                }
            }
            [(id, v)] => match &v.trust {
                Trust::Changed { .. } => Err(format!(
                    "{} has a key you have not accepted for {}: not sent (/trust {} {} to accept it)",
                    self.shared.display(&st, id),
                    v.nick,
                    v.nick,
                    short(&v.fp)
                )),
                _ => Ok(((*id).clone(), self.shared.display(&st, id))),
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
            Ok((id, shown)) => {
                let nick = self.shared.lock().nick.clone();
                let line = OwnLine {
                    nick: nick.clone(),
                    to: Some(shown),
                    text: text.clone(),
                };
                self.send(Envelope::new(Kind::Direct, nick, text), vec![id], line);
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
            self.shared.names.set_own(&nick);
            // Who is shown with a fingerprint depends on one's own nick.
            self.shared.publish_names(&st);
            st.peers.keys().cloned().collect::<Vec<_>>()
        };
        self.ui().notice(&format!("you are now known as {nick}"));
        if !to.is_empty() {
            let env = Envelope::new(Kind::Nick, nick, "");
            let _ = self.shared.outbox.send(Outgoing::Send {
                env,
                to,
                report: None,
            });
        }
    }

    fn peers(&self) {
        let st = self.shared.lock();
        if st.peers.is_empty() {
            drop(st);
            self.shared.nobody_here("nobody else is here yet", false);
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
                Trust::Namesake => "  uses your nick",
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
        self.shared.publish_names(&st);
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
        drop(st);
        for hint in self.shared.refusals.hints() {
            self.ui().info(&hint);
        }
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
