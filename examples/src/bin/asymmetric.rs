//! Public-key plugins from `netaio-asymmetric` between two parties that exchanged peer data: the
//! counterpart of the Python README's `X25519CipherPlugin` + `TapescriptAuthPlugin` example.
//!
//! ```text
//! cargo run -p netaio-examples --bin asymmetric
//! ```
//!
//! The server (`vault`) and each client have an [`Identity`] (one seed: an X25519 key to encrypt
//! with, an Ed25519 key to sign with). A client first sends its peer (id and public keys) in an
//! ADVERTISE_PEER message; the server's handler records it for that connection with
//! `Context::set_peer` and answers PEER_DISCOVERED with its own peer, which the client records
//! with `Connection::set_peer`. From then on the `secret` route's inner plugins, `X25519Cipher`
//! (a key per pair of peers and direction) and `Ed25519Auth` (signatures checked against the
//! recorded key), protect each request and its reply.
//!
//! The handshake itself runs without plugins (neither side can encrypt to or verify the other
//! before it), so the server only accepts adverts whose Ed25519 key it has registered, and the
//! client checks that the server's keys are the ones it expects (pinned): an unauthenticated
//! advert could otherwise come from a man in the middle. Refusals are shown too: a call without
//! the plugins, a call before the exchange (refused locally: no key for the server), and a client
//! whose key is not registered.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use netaio::peer::Peer;
use netaio::plugin::{PeerPlugin, PluginContext, Plugins, SendOptions, seal};
use netaio::router::{Content, Context};
use netaio::{Connection, Message, MessageType, RequestError, TcpClient, TcpServer, service};
use netaio_asymmetric::{AsymmetricPeerPlugin, Ed25519Auth, Identity, PublicKeys, X25519Cipher};
use netaio_examples::{init_tracing, show};

const WAIT: Duration = Duration::from_secs(5);

/// The server: its identity, and the Ed25519 keys of the clients it lets in (registered out of
/// band, as an SSH server has its `authorized_keys`).
struct Vault {
    identity: Identity,
    members: Vec<[u8; 32]>,
}

#[service]
impl Vault {
    /// The handshake: learn the client's keys, answer with ours.
    #[on(ADVERTISE_PEER, uri = "vault")]
    async fn advertise(&self, Content(packed): Content, ctx: Context) -> Result<Message, Message> {
        let refused = |why: String| Message::new(MessageType::NOT_PERMITTED, "vault", why);
        let peer = AsymmetricPeerPlugin
            .unpack(&packed)
            .and_then(|p| AsymmetricPeerPlugin.validate(&p).map(|()| p))
            .map_err(|e| refused(format!("bad peer: {e}")))?;
        let keys = AsymmetricPeerPlugin
            .public_keys(&peer)
            .map_err(|e| refused(format!("bad peer: {e}")))?;
        if !self.members.contains(&keys.ed25519) {
            return Err(refused("key not registered".into()));
        }
        println!(
            "  vault recorded peer \"{}\" for connection {}",
            peer.id.escape_ascii(),
            ctx.connection_id()
                .map_or_else(|| "?".into(), |c| c.to_string())
        );
        ctx.set_peer(Some(peer));
        let ours = self
            .identity
            .peer("vault")
            .and_then(|p| AsymmetricPeerPlugin.pack(&p));
        let ours = ours.map_err(|e| Message::error(format!("cannot pack our peer: {e}")))?;
        Ok(Message::new(MessageType::PEER_DISCOVERED, "vault", ours))
    }

    /// Only for a recorded peer: the request must be signed by its key and encrypted to ours; the
    /// reply is encrypted to its key and signed by ours.
    #[on(
        REQUEST_URI,
        uri = "secret",
        auth = Ed25519Auth::new(&self.identity),
        cipher = X25519Cipher::new(&self.identity)
    )]
    async fn secret(&self, Content(question): Content, ctx: Context) -> Message {
        let who = ctx.peer().map(|p| p.id.clone()).unwrap_or_default();
        let answer = format!(
            "for {} only: the answer to \"{}\" is 42",
            who.escape_ascii(),
            question.escape_ascii()
        );
        Message::respond("secret", answer)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    netaio_support::parse_no_args(
        "asymmetric",
        "Public-key plugins (X25519Cipher + Ed25519Auth) between a server and clients that exchanged peer data; prints the exchange. Takes no arguments.",
    );
    init_tracing("warn");
    match run().await {
        Ok(()) => {
            println!("asymmetric example finished");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("asymmetric: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    // Identities are normally loaded from a stored seed (`Identity::from_seed`).
    let vault = Identity::generate();
    let alice = Identity::generate();
    let mallory = Identity::generate();
    let vault_keys = vault.public_keys();

    let server = TcpServer::builder()
        .address(([127, 0, 0, 1], 0))
        .peer_plugin(AsymmetricPeerPlugin)
        .mount(Vault {
            identity: vault,
            members: vec![alice.public_keys().ed25519],
        })
        .bind()
        .await?;
    let addr = server.local_addr();
    let handle = server.handle();
    let serving = tokio::spawn(server.serve());
    println!(
        "vault listening on {addr}, Ed25519 key {}…",
        hex::encode(&vault_keys.ed25519[..8])
    );

    let question = || Message::new(MessageType::REQUEST_URI, "secret", "what is the answer?");

    // Alice: registered. Each party is its own node (a `TcpClient` keeps one connection per
    // server address).
    let conn = party(&alice, "alice")?.connect(addr).await?;
    println!("alice connected");
    let vault_peer = handshake(&conn, &alice, "alice")
        .await?
        .map_err(|e| format!("alice's advert refused: {}", show::request_error(&e)))?;
    let keys = AsymmetricPeerPlugin.public_keys(&vault_peer)?;
    expect(keys == vault_keys, "the vault's keys to be the pinned ones")?;
    println!("  alice recorded peer \"vault\": its keys are the pinned ones");
    conn.set_peer(Some(vault_peer.clone()));

    let layer = || SendOptions::new().inner(plugins(&alice));
    // What goes on the wire (the pure pipeline function the transports use).
    let ctx = PluginContext {
        peer: Some(&vault_peer),
        peer_plugin: Some(&AsymmetricPeerPlugin),
        ..PluginContext::default()
    };
    let sealed = seal(question(), &plugins(&alice), &Plugins::new(), &ctx)?;
    println!(
        "on the wire: uri \"{}\", {} bytes of content instead of {}, auth fields {}",
        sealed.uri().escape_ascii(),
        sealed.content().len(),
        question().content().len(),
        sealed
            .auth
            .iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let reply = call(
        &conn,
        question(),
        &layer(),
        " (encrypted to the vault, signed by alice)",
    )
    .await?;
    expect(
        reply.content().as_ref().starts_with(b"for alice only"),
        "the vault's answer for alice",
    )?;
    // The same route without the plugins: no signature, refused before the handler.
    refused(&conn, question(), &SendOptions::new(), " (no plugins)").await?;

    // Mallory: a valid identity, but not registered.
    let conn2 = party(&mallory, "mallory")?.connect(addr).await?;
    println!("mallory connected");
    // Before any exchange she has no key for the vault: refused locally, nothing is sent.
    let to_vault = SendOptions::new().inner(plugins(&mallory));
    println!(
        "> {} (mallory, before the exchange)",
        show::message(&question())
    );
    match conn2.call_with(question(), &to_vault).await {
        Err(e @ RequestError::Send(_)) => println!("< not sent: {e}"),
        other => return Err(format!("expected a local send error, got {other:?}").into()),
    }
    match handshake(&conn2, &mallory, "mallory").await? {
        Err(e @ RequestError::NotPermitted(_)) => {
            println!("< error {}", show::request_error(&e));
        }
        other => return Err(format!("expected NotPermitted, got {other:?}").into()),
    }
    // The vault's keys are public, so she can encrypt to it; her signature is not accepted.
    conn2.set_peer(Some(AsymmetricPeerPlugin.peer(
        "vault",
        &vault_keys,
        Default::default(),
    )?));
    refused(
        &conn2,
        question(),
        &to_vault,
        " (mallory, unregistered key)",
    )
    .await?;

    conn2.close().await;
    conn.close().await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .map_err(|_| "server did not stop within 15 s")??;
    println!("server shut down");
    Ok(())
}

/// A client node for this identity.
fn party(identity: &Identity, name: &'static str) -> Result<TcpClient, Box<dyn Error>> {
    Ok(TcpClient::builder()
        .peer_plugin(AsymmetricPeerPlugin)
        .local_peer(identity.peer(name)?)
        .request_timeout(WAIT)
        .build())
}

/// A party's plugins for the protected route: encrypt to the peer, sign with the own key.
fn plugins(identity: &Identity) -> Plugins {
    Plugins::new()
        .auth(Ed25519Auth::new(identity))
        .cipher(X25519Cipher::new(identity))
}

/// Send our peer (id and public keys) in ADVERTISE_PEER; on PEER_DISCOVERED, the vault's peer.
async fn handshake(
    conn: &Connection,
    identity: &Identity,
    id: &'static str,
) -> Result<Result<Peer, RequestError>, Box<dyn Error>> {
    let packed: Bytes = AsymmetricPeerPlugin.pack(&identity.peer(id)?)?;
    let advert = Message::new(MessageType::ADVERTISE_PEER, "vault", packed);
    println!(
        "> ADVERTISE_PEER \"vault\" (peer \"{id}\", Ed25519 key {}…; no plugins)",
        hex::encode(&identity.public_keys().ed25519[..8])
    );
    let reply = match conn.call(advert).await {
        Ok(reply) => reply,
        Err(e) if e.reply().is_some() => return Ok(Err(e)),
        Err(e) => return Err(e.into()),
    };
    expect(
        reply.message_type == MessageType::PEER_DISCOVERED,
        "PEER_DISCOVERED",
    )?;
    let peer = AsymmetricPeerPlugin.unpack(reply.content())?;
    AsymmetricPeerPlugin.validate(&peer)?;
    println!(
        "< PEER_DISCOVERED \"vault\" (peer \"{}\", Ed25519 key {}…)",
        peer.id.escape_ascii(),
        hex::encode(&PublicKeys::from_peer(&peer)?.ed25519[..8])
    );
    Ok(Ok(peer))
}

/// Print a call and its reply; any error ends the example.
async fn call(
    conn: &Connection,
    msg: Message,
    opts: &SendOptions,
    note: &str,
) -> Result<Message, Box<dyn Error>> {
    println!("> {}{note}", show::message(&msg));
    let reply = conn
        .call_with(msg, opts)
        .await
        .map_err(|e| format!("request failed: {}", show::request_error(&e)))?;
    println!("< {}", show::message(&reply));
    Ok(reply)
}

/// Print a call that must be refused with AUTH_ERROR.
async fn refused(
    conn: &Connection,
    msg: Message,
    opts: &SendOptions,
    note: &str,
) -> Result<(), Box<dyn Error>> {
    println!("> {}{note}", show::message(&msg));
    match conn.call_with(msg, opts).await {
        Err(e @ RequestError::Auth(_)) => {
            println!("< error {}", show::request_error(&e));
            Ok(())
        }
        Err(e) => Err(format!("expected RequestError::Auth, got {e}").into()),
        Ok(m) => Err(format!("expected RequestError::Auth, got {}", show::message(&m)).into()),
    }
}

fn expect(ok: bool, what: &str) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected outcome: expected {what}").into())
    }
}
