//! `relay --listen ADDR`: a relay (`netaio::relay::Relay`) on a TCP server, its limits as flags
//! (the `RelayConfig` setters, defaults from `RelayConfig::default()`), printing reservations and
//! refusals as they happen; and `serve --reserve-at RELAY --id ID`, a service reachable by its id
//! through a relay.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use netaio::bytes::Bytes;
use netaio::relay::{
    FORWARD, RESERVE, Rate, Relay, RelayAddress, RelayConfig, RelayRefusal, RelayStats,
    ReserveError,
};
use netaio::router::{BoxedHandler, Request, Route};
use netaio::{Connection, MessageType, Router, TcpClient, TcpServer};
use serde_json::json;

use super::after;
use crate::common::{CommonArgs, Plugins};
use crate::content::parse_duration;
use crate::exit::{Code, Failure};
use crate::output::Output;
use crate::target::{Target, Transport};

/// A duration flag shown in whole seconds (`--help` prints the default as `3600`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}", d.as_secs())
        } else {
            write!(f, "{}ms", d.as_millis())
        }
    }
}

impl FromStr for Secs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Secs)
    }
}

/// A rate flag: `COUNT/PERIOD` (`30/120` or `30/120s`: 30 per 2 minutes; `500/1`: 500 per
/// second; PERIOD as any duration, `250ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateArg(pub Rate);

impl fmt::Display for RateArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.count, Secs(self.0.period))
    }
}

impl FromStr for RateArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (count, period) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not COUNT/PERIOD (500/1: 500 per second)"))?;
        let count = count
            .trim()
            .parse::<u64>()
            .map_err(|e| format!("{s:?}: the count: {e}"))?;
        let period = parse_duration(period.trim())?;
        Ok(RateArg(Rate::new(count, period)))
    }
}

fn defaults() -> RelayConfig {
    RelayConfig::default()
}

/// `netaio relay`: where it listens and its limits.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// tcp HOST:PORT (port 0: any free port, printed first)
    #[arg(long, value_name = "ADDR", value_parser = Target::parse)]
    pub listen: Target,
    /// Stop after this long (default: until Ctrl-C)
    #[arg(long, value_name = "T", value_parser = parse_duration)]
    pub seconds: Option<Duration>,
    /// Reservations held at once
    #[arg(long, value_name = "N", default_value_t = defaults().get_max_reservations(), help_heading = "Relay limits")]
    pub max_reservations: usize,
    /// Reservations held at once from one source IP (IPv6: one /64)
    #[arg(long, value_name = "N", default_value_t = defaults().get_max_reservations_per_ip(), help_heading = "Relay limits")]
    pub max_reservations_per_ip: usize,
    /// How long a reservation lasts unless renewed
    #[arg(long, value_name = "T", default_value_t = Secs(defaults().get_reservation_duration()), help_heading = "Relay limits")]
    pub reservation_duration: Secs,
    /// Reservations and circuits one connection may create (COUNT/PERIOD)
    #[arg(long, value_name = "RATE", default_value_t = RateArg(defaults().get_reservation_rate_per_sender()), help_heading = "Relay limits")]
    pub reservation_rate_per_sender: RateArg,
    /// Reservations and circuits one source IP may create (COUNT/PERIOD)
    #[arg(long, value_name = "RATE", default_value_t = RateArg(defaults().get_reservation_rate_per_ip()), help_heading = "Relay limits")]
    pub reservation_rate_per_ip: RateArg,
    /// Circuits at once (a sender without a reservation talking to a reserved peer)
    #[arg(long, value_name = "N", default_value_t = defaults().get_max_circuits(), help_heading = "Relay limits")]
    pub max_circuits: usize,
    /// Circuits at once to one reserved peer
    #[arg(long, value_name = "N", default_value_t = defaults().get_max_circuits_per_peer(), help_heading = "Relay limits")]
    pub max_circuits_per_peer: usize,
    /// How long a circuit lasts
    #[arg(long, value_name = "T", default_value_t = Secs(defaults().get_circuit_duration()), help_heading = "Relay limits")]
    pub circuit_duration: Secs,
    /// Bytes a circuit carries (both directions) before it ends
    #[arg(long, value_name = "B", default_value_t = defaults().get_circuit_bytes(), help_heading = "Relay limits")]
    pub circuit_bytes: u64,
    /// The largest inner frame relayed, bytes
    #[arg(long, value_name = "B", default_value_t = defaults().get_max_envelope_size(), help_heading = "Relay limits")]
    pub max_envelope_size: usize,
    /// Envelopes queued for one recipient connection
    #[arg(long, value_name = "N", default_value_t = defaults().get_queue_envelopes(), help_heading = "Relay limits")]
    pub queue_envelopes: usize,
    /// Bytes of envelopes queued for one recipient connection
    #[arg(long, value_name = "B", default_value_t = defaults().get_queue_bytes(), help_heading = "Relay limits")]
    pub queue_bytes: usize,
    /// Envelopes one sending connection may relay (COUNT/PERIOD)
    #[arg(long, value_name = "RATE", default_value_t = RateArg(defaults().get_envelope_rate_per_sender()), help_heading = "Relay limits")]
    pub envelope_rate_per_sender: RateArg,
    /// Inner-frame bytes one sending connection may relay (COUNT/PERIOD)
    #[arg(long, value_name = "RATE", default_value_t = RateArg(defaults().get_byte_rate_per_sender()), help_heading = "Relay limits")]
    pub byte_rate_per_sender: RateArg,
    /// Envelopes one source IP may relay (COUNT/PERIOD)
    #[arg(long, value_name = "RATE", default_value_t = RateArg(defaults().get_envelope_rate_per_ip()), help_heading = "Relay limits")]
    pub envelope_rate_per_ip: RateArg,
    /// Inner-frame bytes one source IP may relay (COUNT/PERIOD)
    #[arg(long, value_name = "RATE", default_value_t = RateArg(defaults().get_byte_rate_per_ip()), help_heading = "Relay limits")]
    pub byte_rate_per_ip: RateArg,
    /// Source IPs, and sending connections, whose rates are tracked at once
    #[arg(long, value_name = "N", default_value_t = defaults().get_max_tracked_ips(), help_heading = "Relay limits")]
    pub max_tracked_ips: usize,
}

impl RelayArgs {
    /// The relay's limits from the flags.
    pub fn config(&self) -> RelayConfig {
        RelayConfig::default()
            .max_reservations(self.max_reservations)
            .max_reservations_per_ip(self.max_reservations_per_ip)
            .reservation_duration(self.reservation_duration.0)
            .reservation_rate_per_sender(self.reservation_rate_per_sender.0)
            .reservation_rate_per_ip(self.reservation_rate_per_ip.0)
            .max_circuits(self.max_circuits)
            .max_circuits_per_peer(self.max_circuits_per_peer)
            .circuit_duration(self.circuit_duration.0)
            .circuit_bytes(self.circuit_bytes)
            .max_envelope_size(self.max_envelope_size)
            .queue_envelopes(self.queue_envelopes)
            .queue_bytes(self.queue_bytes)
            .envelope_rate_per_sender(self.envelope_rate_per_sender.0)
            .byte_rate_per_sender(self.byte_rate_per_sender.0)
            .envelope_rate_per_ip(self.envelope_rate_per_ip.0)
            .byte_rate_per_ip(self.byte_rate_per_ip.0)
            .max_tracked_ips(self.max_tracked_ips)
    }
}

/// A relay address for people and JSON: the peer id (text when it is UTF-8) or `circuit N`.
fn relay_address(uri: &[u8]) -> String {
    match RelayAddress::decode(uri) {
        Some(RelayAddress::Peer(id)) => crate::content::preview(&id, 60),
        Some(RelayAddress::Circuit(n)) => format!("circuit {n}"),
        None => format!("(malformed {})", crate::content::preview(uri, 60)),
    }
}

/// The relay's handler for `t`, wrapped to print what it decided.
fn watched(relay: &Router, t: MessageType, out: Output) -> Result<Route, Failure> {
    let any: SocketAddr = ([0, 0, 0, 0], 0).into();
    let inner = relay
        .handler_for(t, &Bytes::new(), any)
        .cloned()
        .ok_or_else(|| Failure::other("the relay has no route for its own message type"))?;
    let handler = BoxedHandler::from_fn(move |req: Request| {
        let inner = inner.clone();
        async move {
            let peer = req.ctx.peer_addr();
            let uri = req.message.uri().clone();
            let reply = inner.call(req).await;
            report(out, t, peer, &uri, reply.as_ref());
            reply
        }
    });
    Ok(Route::from_boxed(t.into(), handler, false))
}

/// Print a reservation (granted or refused) or an envelope refused with an answer.
fn report(
    out: Output,
    t: MessageType,
    peer: SocketAddr,
    uri: &[u8],
    reply: Option<&netaio::Message>,
) {
    let refusal = reply.and_then(RelayRefusal::from_message);
    if t == RESERVE {
        let id = crate::content::preview(uri, 60);
        match (reply, refusal) {
            (Some(r), None) if r.message_type == MessageType::OK => {
                let secs = netaio::relay::RelayLimits::decode(r.content())
                    .map_or(0, |l| l.reservation_secs);
                out.event(
                    "reserved",
                    json!({"peer": peer.to_string(), "id": id, "reservation_secs": secs}),
                    || format!("{peer:<22} reserved {id} for {secs} s"),
                );
            }
            (_, Some(r)) => out.event(
                "reservation_refused",
                json!({"peer": peer.to_string(), "id": id, "refusal": r.code()}),
                || format!("{peer:<22} reservation of {id} refused: {}", r.code()),
            ),
            _ => {}
        }
    } else if let Some(r) = refusal {
        let to = relay_address(uri);
        out.event(
            "refused",
            json!({"peer": peer.to_string(), "to": to, "refusal": r.code()}),
            || format!("{peer:<22} envelope to {to} refused: {}", r.code()),
        );
    }
}

/// The relay's counters as JSON and for people.
fn print_stats(out: &Output, s: &RelayStats) {
    out.event(
        "stats",
        json!({
            "reservations": s.reservations, "circuits": s.circuits,
            "queued_envelopes": s.queued_envelopes, "queued_bytes": s.queued_bytes,
            "relayed": s.relayed, "refused": s.refused, "rate_limited": s.rate_limited,
            "queue_full": s.queue_full, "no_route": s.no_route,
        }),
        || {
            format!(
                "stats: {} reservations, {} circuits, {} relayed, {} refused ({} no route, {} rate limited, {} queue full)",
                s.reservations,
                s.circuits,
                s.relayed,
                s.refused,
                s.no_route,
                s.rate_limited,
                s.queue_full
            )
        },
    );
}

/// Run a relay until Ctrl-C or `--seconds`.
pub async fn run(common: &CommonArgs, out: &Output, args: RelayArgs) -> Result<(), Failure> {
    if args.listen.transport != Transport::Tcp {
        return Err(Failure::other(
            "a relay listens on TCP only (--listen HOST:PORT)",
        ));
    }
    let plugins = common.plugins()?;
    let addr = args.listen.resolve().await?;
    let relay = Relay::new(args.config());
    let routes = relay.router();
    let router = Router::new()
        .route(watched(&routes, RESERVE, *out)?)
        .route(watched(&routes, FORWARD, *out)?);
    let server = plugins
        .server(TcpServer::builder())
        .address(addr)
        .router(router)
        .bind()
        .await
        .map_err(|e| Failure::other(format!("cannot listen on {addr}: {e}")))?;
    super::serve::listening(out, "tcp", server.local_addr());
    let events = tokio::spawn(super::serve::connection_events(
        *out,
        server.handle().events(),
    ));
    // Counters change without an answer too (an envelope refused without a request id, an
    // expiry): a `stats` line whenever they changed, checked each second.
    let watcher = {
        let (relay, out) = (relay.clone(), *out);
        tokio::spawn(async move {
            let mut last = relay.stats();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = relay.stats();
                if now != last {
                    print_stats(&out, &now);
                    last = now;
                }
            }
        })
    };
    let seconds = args.seconds;
    let stop = async move {
        tokio::select! {
            why = netaio_support::signals::stop_signals() => tracing::info!("{why}: stopping"),
            () = after(seconds) => {}
        }
    };
    server.serve_with_shutdown(stop).await;
    watcher.abort();
    events.abort();
    print_stats(out, &relay.stats());
    Ok(())
}

/// A reservation held by `serve --reserve-at`: the connection to the relay and its renewals.
#[derive(Debug)]
pub struct Reservation {
    conn: Connection,
    _client: TcpClient,
    renewals: tokio::task::JoinHandle<()>,
}

impl Reservation {
    /// Connect to `relay` with `router` (the service's routes: what the relay delivers is
    /// handled by them), reserve `id`, and renew it at half its duration. `lost` gets the
    /// failure when a renewal fails or the connection ends.
    pub async fn start(
        plugins: &Plugins,
        out: Output,
        relay: &Target,
        id: &str,
        router: Router,
        lost: Arc<Mutex<Option<tokio::sync::oneshot::Sender<Failure>>>>,
    ) -> Result<Reservation, Failure> {
        if relay.transport != Transport::Tcp {
            return Err(Failure::other("a relay is reached over TCP only"));
        }
        let client = plugins.client(TcpClient::builder()).router(router).build();
        let conn = client
            .connect(relay.host_port.as_str())
            .await
            .map_err(|e| Failure::connect(&e))?;
        let secs = reserve(&conn, id).await?;
        out.event(
            "reserved",
            json!({"relay": relay.to_string(), "id": id, "reservation_secs": secs}),
            || format!("reserved {id} at relay {relay} for {secs} s"),
        );
        let (c, id, relay) = (conn.clone(), id.to_owned(), relay.to_string());
        let renewals = tokio::spawn(async move {
            let mut changes = c.state_changes();
            let mut secs = secs;
            let failure = loop {
                let wait = Duration::from_secs((secs / 2).max(1));
                let closed = async {
                    match changes.wait_for(|s| s.is_closed()).await {
                        Ok(s) => format!("{:?}", *s),
                        Err(_) => "closed".to_owned(),
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    why = closed => {
                        break Failure::new(Code::Connection, format!("the relay {relay} ended the connection ({why})"));
                    }
                }
                match reserve(&c, &id).await {
                    Ok(s) => secs = s,
                    Err(f) => break f,
                }
            };
            if let Some(tx) = lost.lock().ok().and_then(|mut l| l.take()) {
                let _ = tx.send(failure);
            }
        });
        Ok(Reservation {
            conn,
            _client: client,
            renewals,
        })
    }

    /// Stop renewing and close the connection (the relay forgets the reservation).
    pub async fn close(self) {
        self.renewals.abort();
        self.conn.close().await;
    }
}

/// Reserve `id`; the seconds it lasts.
async fn reserve(conn: &Connection, id: &str) -> Result<u64, Failure> {
    match conn.reserve(id.to_owned()).await {
        Ok(limits) => Ok(limits.reservation_secs),
        Err(ReserveError::Refused(r)) => Err(Failure::new(
            Code::ErrorReply,
            format!("the relay refused the reservation of {id}: {}", r.code()),
        )),
        Err(ReserveError::Request(e)) => Err(Failure::request(&e)),
        Err(e) => Err(Failure::other(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Only {
        #[command(flatten)]
        relay: RelayArgs,
    }

    #[test]
    fn the_flags_defaults_are_the_library_defaults() {
        let only = Only::try_parse_from(["relay", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(only.relay.config(), RelayConfig::default());
    }

    #[test]
    fn limits_and_rates_parse() {
        let only = Only::try_parse_from([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--max-reservations",
            "2",
            "--reservation-duration",
            "90",
            "--envelope-rate-per-ip",
            "7/250ms",
        ])
        .unwrap();
        let c = only.relay.config();
        assert_eq!(c.get_max_reservations(), 2);
        assert_eq!(c.get_reservation_duration(), Duration::from_secs(90));
        assert_eq!(
            c.get_envelope_rate_per_ip(),
            Rate::new(7, Duration::from_millis(250))
        );
        assert_eq!(RateArg(Rate::per_second(500)).to_string(), "500/1");
        for bad in ["7", "x/1", "7/0", "7/x"] {
            assert!(bad.parse::<RateArg>().is_err(), "{bad}");
        }
    }
}
