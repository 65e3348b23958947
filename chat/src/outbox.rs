//! Delivery: the outbox sends queued messages one after the other (so that lines arrive in the
//! order they were typed), each to all its recipients at once, as calls answered by `OK` and retried
//! on timeout; then reports who did not get it, as lines (piped mode) or to the echo of the typed
//! line (terminal mode), which shows a mark.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use netaio::Message;
use netaio::RequestError;
use netaio::plugin::{Plugins, SendOptions};
use netaio::udp::UdpHandle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::people::Shared;
use crate::protocol::Envelope;
use crate::ui::{Delivery, OwnLine, Ui};

/// Attempts per recipient before a message is reported as not delivered.
pub const ATTEMPTS: u32 = 3;

/// Who did not get a message, and why: (how they are shown, the reason).
pub(crate) type Failures = Vec<(String, String)>;

/// What to do with the recipients that did not acknowledge.
pub(crate) enum Report {
    /// Print `! not delivered to NICK: why` for each.
    Lines,
    /// Hand them to the echo of the typed line.
    To(oneshot::Sender<Failures>),
}

/// What the outbox sends.
pub(crate) enum Outgoing {
    Send {
        env: Envelope,
        to: Vec<Bytes>,
        /// `None`: nobody is told (nick announcements).
        report: Option<Report>,
    },
    /// Everything before this was sent: stop.
    Stop,
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

/// Send queued messages one after the other, each to its recipients at once.
pub(crate) async fn outbox(
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
        let mut failures = Failures::new();
        while let Some(done) = set.join_next().await {
            let Ok((id, Err(why))) = done else {
                continue;
            };
            tracing::debug!(peer = %String::from_utf8_lossy(&id), %why, "not delivered");
            let who = {
                let st = shared.lock();
                shared.display(&st, &id)
            };
            failures.push((who, why));
        }
        match report {
            None => {}
            Some(Report::Lines) => {
                for (who, why) in failures {
                    shared.ui.error(&format!("not delivered to {who}: {why}"));
                }
            }
            // The echo may be gone (the chat is closing): nothing else to tell.
            Some(Report::To(tx)) => {
                let _ = tx.send(failures);
            }
        }
    }
}

/// Show a line one typed, in the transcript, once its delivery is known: `<nick> text ✓` when
/// everyone acknowledged it, `✗ not delivered to ...` otherwise. If that takes longer than `wait`
/// (a first attempt went unanswered), the line is shown at once as pending (`…`) and the outcome
/// follows on a line of its own.
pub(crate) async fn echo(
    ui: Arc<Ui>,
    line: OwnLine,
    mut done: oneshot::Receiver<Failures>,
    wait: Duration,
) {
    let failures = match tokio::time::timeout(wait, &mut done).await {
        Ok(outcome) => outcome,
        Err(_) => {
            ui.own(&line, &Delivery::Pending);
            match done.await {
                Ok(failures) => ui.outcome(&line, &failures),
                // The outbox stopped before sending it (the chat is closing).
                Err(_) => ui.outcome(&line, &[(String::from("anyone"), "the chat closed".into())]),
            }
            return;
        }
    };
    match failures {
        Ok(f) if f.is_empty() => ui.own(&line, &Delivery::Delivered),
        Ok(f) => ui.own(&line, &Delivery::Failed(&f)),
        Err(_) => ui.own(
            &line,
            &Delivery::Failed(&[(String::from("anyone"), "the chat closed".into())]),
        ),
    }
}
