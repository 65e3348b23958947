//! Briggs, the banker of the Python GRASP prototype's demonstration pair (its `Briggs.py`),
//! written with `netaio-grasp`: it gives out money in NZD, haggling with [`grasp_gray`] over
//! objective EX3 with a random reserve for each negotiation and random waits.
//!
//! ```text
//! grasp_briggs [--interface NAME]... [--secs N] [--flood-every-secs N]
//! ```
//!
//! It registers EX1 (synchronizable, loop count 4; flooded with the time every
//! `--flood-every-secs`), EX2 (synchronizable, rapid mode, served as `[1, "two", 3]`) and EX3
//! (negotiable, dry runs allowed, overlapping registrations allowed). For each request for EX3:
//! another currency than NZD is declined ("Invalid currency"); an amount up to half its
//! reserves is accepted; otherwise it offers half its reserves and raises its offer by 10 at
//! each step (never above what is asked), sometimes asking the peer to wait, until its offer
//! reaches 60% of its reserves: then it declines ("Insufficient funds"). Running out of loop
//! count ends the negotiation too. It serves several negotiations at once.
//!
//! [`grasp_gray`]: ../grasp_gray/index.html

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use netaio_grasp::{
    Grasp, GraspError, NegotiationSession, Objective, Outcome, RegisterOptions, Step, Value,
};
use netaio_support::signals::stop_signals;

/// Briggs, the banker: negotiates EX3 (NZD) with random reserves, floods EX1, serves EX2.
#[derive(Debug, Parser)]
#[command(name = "grasp_briggs")]
struct Cli {
    /// Run on this interface (repeat for several; default: every usable one)
    #[arg(long, value_name = "NAME")]
    interface: Vec<String>,
    /// Stop after N seconds (default: run until Ctrl-C)
    #[arg(long, value_name = "N")]
    secs: Option<u64>,
    /// Flood EX1 every N seconds (the prototype: 60)
    #[arg(long, value_name = "N", default_value_t = 60)]
    flood_every_secs: u64,
}

fn say(line: &str) {
    println!("{line}");
}

/// `["NZD", amount]` (possibly wrapped in tag 24) as (currency, amount).
fn money(v: Option<&Value>) -> Option<(String, i64)> {
    let v = v?;
    let v = match v {
        Value::Tag(24, _) => v.decode_embedded_cbor()?,
        other => other.clone(),
    };
    match v.as_array()? {
        [c, a] => Some((c.as_text()?.to_owned(), a.as_i64()?)),
        _ => None,
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
            eprintln!("grasp_briggs: {e}");
            return ExitCode::from(2);
        }
    };
    let bound = netaio_support::signals::after(cli.secs);
    tokio::select! {
        r = run(&node, cli.flood_every_secs) => if let Err(e) = r {
            eprintln!("grasp_briggs: {e}");
            return ExitCode::from(2);
        },
        _ = bound => {}
        s = stop_signals() => say(&format!("Briggs stops: {s}")),
    }
    ExitCode::SUCCESS
}

async fn run(node: &Grasp, flood_every: u64) -> Result<(), GraspError> {
    let asa = node.register_asa("Briggs")?;
    let ex1 = Objective::new("EX1").synch(true).loop_count(4);
    let ex2 = Objective::new("EX2").synch(true).loop_count(4);
    let ex3 = Objective::new("EX3").neg(true).dry(true);
    asa.register_obj(&ex1, RegisterOptions::default()).await?;
    asa.register_obj(&ex2, RegisterOptions::default().rapid(true))
        .await?;
    asa.register_obj(&ex3, RegisterOptions::default().overlap(true))
        .await?;
    asa.listen_synchronize(&ex2.clone().value(vec![1.into(), "two".into(), 3.into()]))?;
    let flooder = asa.clone();
    tokio::spawn(async move {
        loop {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let value = Value::from(format!("{secs} s since 1970, from Briggs"));
            // Valid until just before the next flood (the prototype: every 60 s, ttl 59 s).
            let ttl = flood_every
                .saturating_mul(1000)
                .saturating_sub(1000)
                .max(1000);
            let ttl = u32::try_from(ttl).unwrap_or(u32::MAX);
            if let Err(e) = flooder.flood(ttl, &[(ex1.clone().value(value), None)]) {
                say(&format!("flood failure: {e}"));
            }
            tokio::time::sleep(Duration::from_secs(flood_every.max(1))).await;
        }
    });
    say("Briggs is ready to negotiate EX3");
    loop {
        let reserves = rand::random_range(100..=400);
        let wait_ms = rand::random_range(9000..=20000);
        say(&format!("reserves: ${reserves}, wait: {wait_ms} ms"));
        let (session, request) = asa.listen_negotiate(&ex3).await?;
        tokio::spawn(negotiate(session, request, reserves, wait_ms));
    }
}

async fn end(session: NegotiationSession, reason: &str) {
    say(&format!("declining: {reason}"));
    if let Err(e) = session
        .end_negotiate(Outcome::Decline(Some(reason.to_owned())))
        .await
    {
        say(&format!("end_negotiate error: {e}"));
    }
}

async fn negotiate(
    mut session: NegotiationSession,
    request: Objective,
    reserves: i64,
    wait_ms: u32,
) {
    let Some((currency, asked)) = money(request.value.as_ref()) else {
        return end(session, "Invalid currency").await;
    };
    say(&format!(
        "got a request for {currency} {asked}{}",
        if request.is_dry() { " (dry run)" } else { "" }
    ));
    if currency != "NZD" {
        return end(session, "Invalid currency").await;
    }
    if asked <= reserves / 2 {
        say("request accepted");
        if let Err(e) = session.end_negotiate(Outcome::Accept).await {
            say(&format!("end_negotiate error: {e}"));
        }
        return;
    }
    let mut proffer = reserves / 2;
    let mut offer = request;
    loop {
        say(&format!("offering NZD {proffer}"));
        offer.value = Some(Value::Array(vec!["NZD".into(), proffer.into()]));
        // The prototype waits 1 s; a loaded machine may take longer.
        match session
            .negotiate_step(&offer, Some(Duration::from_secs(5)))
            .await
        {
            Ok(Step::Accepted(_)) => return say("negotiation succeeded"),
            Ok(Step::Offer(answer)) => {
                let Some((_, wanted)) = money(answer.value.as_ref()) else {
                    return end(session, "Invalid currency").await;
                };
                say(&format!(
                    "loop count {}, request {wanted}",
                    answer.loop_count
                ));
                if rand::random::<bool>() {
                    match session.negotiate_wait(wait_ms).await {
                        Ok(()) => say("asked the peer to wait"),
                        Err(e) => return say(&format!("wait failed: {e}")),
                    }
                    tokio::time::sleep(Duration::from_millis(u64::from(wait_ms) / 4)).await;
                }
                if proffer * 10 < reserves * 6 {
                    proffer += 10;
                    if proffer > wanted {
                        // Always be a little mean.
                        proffer = wanted - 1;
                    }
                    offer = answer;
                } else {
                    return end(session, "Insufficient funds").await;
                }
            }
            Err(GraspError::LoopExhausted) => return end(session, "Loop count exhausted").await,
            Err(GraspError::Declined { reason }) => {
                return say(&format!(
                    "declined by the peer: {}",
                    reason.unwrap_or_default()
                ));
            }
            Err(e) => return say(&format!("failed: {e}")),
        }
    }
}
