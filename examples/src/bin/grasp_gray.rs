//! Gray, the client of the Python GRASP prototype's demonstration pair (its `Gray.py`), written
//! with `netaio-grasp`: it asks [`grasp_briggs`] for money over objective EX3, a random sum
//! each round, with random loop counts, dry runs and values wrapped in CBOR tag 24.
//!
//! ```text
//! grasp_gray [--interface NAME]... [--rounds N] [--secs N]
//! ```
//!
//! It first synchronizes EX1 and EX2 (and "Nonsense", which fails), then, each round: picks a
//! sum from 10 to 500 (one round in seven in USD, which Briggs declines), discovers EX3 (with
//! the cache flushed after three failures), asks for the sum, and haggles: it asks 90% of its
//! last ask each step, accepts an offer of at least that, and gives up ("You are mean!") below
//! 70% of the sum. Then it synchronizes EX1 and prints the EX1 floods it has. Each round ends
//! with one line: `round N: agreed …`, `round N: declined …`, `round N: gave up …` or
//! `round N: failed …`.
//!
//! [`grasp_briggs`]: ../grasp_briggs/index.html

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netaio_grasp::{
    Asa, AsaLocator, DiscoverOptions, Grasp, GraspError, Negotiated, Objective, Outcome,
    RegisterOptions, Step, Value,
};
use netaio_support::signals::stop_signals;

/// Gray, the client: asks Briggs for money over EX3, a random sum each round.
#[derive(Debug, Parser)]
#[command(name = "grasp_gray")]
struct Cli {
    /// Run on this interface (repeat for several; default: every usable one)
    #[arg(long, value_name = "NAME")]
    interface: Vec<String>,
    /// Stop after N rounds (default: run until Ctrl-C or --secs)
    #[arg(long, value_name = "N")]
    rounds: Option<u64>,
    /// Stop after N seconds
    #[arg(long, value_name = "N")]
    secs: Option<u64>,
    /// Pause between rounds, ms (the prototype: 5000)
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pause_ms: u64,
}

fn say(line: &str) {
    println!("{line}");
}

fn amount(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    let v = match v {
        Value::Tag(24, _) => v.decode_embedded_cbor()?,
        other => other.clone(),
    };
    v.as_array()?.get(1)?.as_i64()
}

/// `[currency, sum]`, wrapped in tag 24 when `tag24` (the prototype does so at random).
fn money(currency: &str, sum: i64, tag24: bool) -> Value {
    let v = Value::Array(vec![currency.into(), sum.into()]);
    if tag24 {
        Value::embedded_cbor(&v).unwrap_or(v)
    } else {
        v
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    netaio_support::init_tracing("warn");
    let cli: Cli = netaio_support::parse_args();
    let mut builder = Grasp::builder();
    for i in &cli.interface {
        builder = builder.interface(i.clone());
    }
    let node = match builder.start().await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("grasp_gray: {e}");
            return ExitCode::from(2);
        }
    };
    tokio::select! {
        r = run(&node, cli.rounds, Duration::from_millis(cli.pause_ms)) => if let Err(e) = r {
            eprintln!("grasp_gray: {e}");
            return ExitCode::from(2);
        },
        _ = netaio_support::signals::after(cli.secs) => {}
        s = stop_signals() => say(&format!("Gray stops: {s}")),
    }
    ExitCode::SUCCESS
}

async fn synch(asa: &Asa, obj: &Objective) {
    match asa
        .synchronize(obj, None, Some(Duration::from_secs(5)))
        .await
    {
        Ok(o) => say(&format!("synchronized {}: {:?}", obj.name, o.value)),
        Err(e) => say(&format!("synch failed {}: {e}", obj.name)),
    }
}

async fn run(node: &Grasp, rounds: Option<u64>, pause: Duration) -> Result<(), GraspError> {
    let asa = node.register_asa("Gray")?;
    let ex1 = Objective::new("EX1").synch(true).loop_count(4);
    let ex2 = Objective::new("EX2").synch(true).loop_count(4);
    let ex3 = Objective::new("EX3").neg(true);
    asa.register_obj(&ex3, RegisterOptions::default().overlap(true))
        .await?;
    synch(&asa, &ex1).await;
    synch(&asa, &ex2).await;
    synch(&asa, &Objective::new("Nonsense").synch(true)).await;
    let mut failures = 0;
    for round in 1.. {
        if rounds.is_some_and(|n| round > n) {
            break;
        }
        let want = rand::random_range(10..=500i64);
        let currency = if want % 7 == 0 { "USD" } else { "NZD" };
        let tag24 = want & 8 != 0;
        let obj = ex3
            .clone()
            .loop_count(rand::random_range(4..=20))
            .dry(want & 4 != 0)
            .value(money(currency, want, tag24));
        say(&format!(
            "round {round}: asking for {currency} {want}, loop count {}{}",
            obj.loop_count,
            if obj.is_dry() { ", dry run" } else { "" }
        ));
        let options = DiscoverOptions::timeout(Duration::from_secs(1)).flush(failures > 3);
        if failures > 3 {
            failures = 0;
        }
        let found = asa.discover_with(&ex3, options).await?;
        let Some(peer) = found.first() else {
            say(&format!("round {round}: failed: nothing discovered"));
            failures += 1;
            continue;
        };
        let line = haggle(&asa, &obj, peer, want, tag24).await;
        if line.starts_with("failed") {
            failures += 1;
        }
        say(&format!("round {round}: {line}"));
        tokio::time::sleep(pause).await;
        synch(&asa, &ex1).await;
        for t in asa.get_flood(&ex1)? {
            say(&format!(
                "flooded EX1 from {}: {:?}",
                t.locator
                    .map_or("(no locator)".to_owned(), |l| l.to_string()),
                t.objective.value
            ));
        }
    }
    Ok(())
}

/// One negotiation; the line that says how it ended.
async fn haggle(asa: &Asa, obj: &Objective, peer: &AsaLocator, want: i64, tag24: bool) -> String {
    let limit = want * 7 / 10;
    let (mut session, mut answer) = match asa.request_negotiate(obj, Some(peer), None).await {
        Ok(Negotiated::Accepted(_)) => return format!("agreed {want} at once"),
        Ok(Negotiated::Offer(s, o)) => (s, o),
        Err(GraspError::Declined { reason }) => {
            return format!("declined: {}", reason.unwrap_or_default());
        }
        Err(e) => return format!("failed: {e}"),
    };
    let mut proffer = want * 9 / 10;
    loop {
        let Some(offered) = amount(answer.value.as_ref()) else {
            let _ = session
                .end_negotiate(Outcome::Decline(Some("Invalid value".into())))
                .await;
            return "failed: the offer is not money".into();
        };
        say(&format!(
            "peer offered {offered}, loop count {}",
            answer.loop_count
        ));
        if offered >= proffer {
            return match session.end_negotiate(Outcome::Accept).await {
                Ok(()) => format!("agreed {offered}"),
                Err(e) => format!("failed: {e}"),
            };
        }
        proffer = proffer * 9 / 10;
        if proffer < limit {
            let _ = session
                .end_negotiate(Outcome::Decline(Some("You are mean!".into())))
                .await;
            return format!("gave up at {offered}: You are mean!");
        }
        let ask = obj.clone().value(money("NZD", proffer, tag24));
        say(&format!("asking for {proffer}"));
        match session
            .negotiate_step(&ask, Some(Duration::from_secs(25)))
            .await
        {
            Ok(Step::Offer(o)) => answer = o,
            Ok(Step::Accepted(_)) => return format!("agreed {proffer}"),
            Err(GraspError::Declined { reason }) => {
                return format!("declined: {}", reason.unwrap_or_default());
            }
            Err(GraspError::LoopExhausted) => {
                let _ = session
                    .end_negotiate(Outcome::Decline(Some("Loop count exhausted".into())))
                    .await;
                return "gave up: loop count exhausted".into();
            }
            Err(e) => return format!("failed: {e}"),
        }
    }
}
