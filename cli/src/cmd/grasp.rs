//! `grasp discover|synchronize|flood|get-flood OBJECTIVE`, on `netaio-grasp` (RFC 8990). Values
//! are written and printed as JSON (CBOR byte strings as `{"bytes": hex}`, tags as
//! `{"tag": n, "value": …}`).

use std::time::Duration;

use netaio_grasp::proto::CoreInterface;
use netaio_grasp::{Asa, Grasp, Objective, RegisterOptions, Value};
use serde_json::{Value as Json, json};
use tokio::time::Instant;

use super::after;
use crate::cli::{GraspCommand, GraspNode, GraspObjective};
use crate::exit::{Code, Failure};
use crate::output::Output;

/// JSON to a CBOR value.
fn to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i.into()),
            None => n
                .as_u64()
                .map(|u| Value::Integer(u.into()))
                .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::Text(k.clone()), to_value(v)))
                .collect(),
        ),
    }
}

/// A CBOR value as JSON.
fn to_json(v: &Value) -> Json {
    match v {
        Value::Integer(i) => {
            i64::try_from(*i).map_or_else(|_| Json::from(i.to_string()), Json::from)
        }
        Value::Bytes(b) => json!({"bytes": hex::encode(b)}),
        Value::Text(s) => Json::from(s.as_str()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => {
            let all_text = m.iter().all(|(k, _)| matches!(k, Value::Text(_)));
            if all_text {
                Json::Object(
                    m.iter()
                        .map(|(k, v)| match k {
                            Value::Text(k) => (k.clone(), to_json(v)),
                            other => (format!("{other:?}"), to_json(v)),
                        })
                        .collect(),
                )
            } else {
                Json::Array(
                    m.iter()
                        .map(|(k, v)| json!([to_json(k), to_json(v)]))
                        .collect(),
                )
            }
        }
        Value::Tag(t, inner) => json!({"tag": t, "value": to_json(inner)}),
        Value::Bool(b) => Json::Bool(*b),
        Value::Null | Value::Undefined => Json::Null,
        Value::Simple(s) => json!({"simple": s}),
        Value::Float(f) => json!(f),
    }
}

/// Start the node the flags describe.
async fn node(n: &GraspNode) -> Result<Grasp, Failure> {
    let fail = |e: &dyn std::fmt::Display| Failure::other(format!("cannot start GRASP: {e}"));
    let mut builder = Grasp::builder();
    if let Some(port) = n.port {
        builder = builder.port(port);
    }
    if let Some(ip) = n.loopback {
        let lo = netaio_grasp::net::interfaces::system_interfaces()
            .map_err(|e| fail(&e))?
            .into_iter()
            .find(|i| i.addrs.iter().any(|a| a.is_loopback()))
            .ok_or_else(|| Failure::other("no loopback interface"))?;
        let on_lo = CoreInterface {
            index: lo.index,
            link_local: None,
            ipv4: Some(ip),
        };
        return builder
            .ipv6(false)
            .ipv4(true)
            .multicast_loop(true)
            .start_on(vec![on_lo], None)
            .await
            .map_err(|e| fail(&e));
    }
    builder = builder.ipv4(n.ipv4).ipv6(!n.ipv4);
    for i in &n.interface {
        builder = builder.interface(i.clone());
    }
    builder.start().await.map_err(|e| fail(&e))
}

fn objective(o: &GraspObjective) -> Objective {
    Objective::new(o.name.clone())
        .synch(true)
        .loop_count(o.loop_count)
}

fn asa(node: &Grasp) -> Result<Asa, Failure> {
    node.register_asa("netaio-cli")
        .map_err(|e| Failure::other(format!("GRASP: {e}")))
}

fn grasp_failure(e: &netaio_grasp::GraspError) -> Failure {
    Failure::other(format!("GRASP: {e}"))
}

/// Run a GRASP command.
pub async fn run(out: &Output, cmd: GraspCommand) -> Result<(), Failure> {
    match cmd {
        GraspCommand::Discover {
            objective: o,
            node: n,
        } => {
            let node = node(&n).await?;
            let asa = asa(&node)?;
            let wait = n.seconds.unwrap_or(Duration::from_secs(3));
            let found = asa
                .discover(&objective(&o), wait)
                .await
                .map_err(|e| grasp_failure(&e))?;
            for l in &found {
                out.event(
                    "locator",
                    json!({"objective": o.name, "locator": l.locator.to_string(), "diverted": l.diverted}),
                    || format!("{} {}{}", o.name, l.locator, if l.diverted { " (via a relay)" } else { "" }),
                );
            }
            node.shutdown();
            if found.is_empty() {
                return Err(Failure::new(
                    Code::Timeout,
                    format!("no node offers {} (waited {wait:?})", o.name),
                ));
            }
            Ok(())
        }
        GraspCommand::Synchronize {
            objective: o,
            node: n,
        } => {
            let node = node(&n).await?;
            let asa = asa(&node)?;
            let wait = n.seconds.unwrap_or(Duration::from_secs(10));
            let got = asa.synchronize(&objective(&o), None, Some(wait)).await;
            node.shutdown();
            let got = got.map_err(|e| {
                Failure::new(Code::Timeout, format!("GRASP synchronize {}: {e}", o.name))
            })?;
            let value = got.value.as_ref().map_or(Json::Null, to_json);
            out.event(
                "value",
                json!({"objective": o.name, "value": value}),
                || format!("{} {value}", o.name),
            );
            Ok(())
        }
        GraspCommand::Flood {
            objective: o,
            value,
            ttl_ms,
            node: n,
        } => {
            let value: Json = serde_json::from_str(&value)
                .map_err(|e| Failure::other(format!("the value is not JSON: {e}")))?;
            let node = node(&n).await?;
            let asa = asa(&node)?;
            let obj = objective(&o);
            asa.register_obj(&obj, RegisterOptions::default())
                .await
                .map_err(|e| grasp_failure(&e))?;
            let with_value = obj.value(to_value(&value));
            asa.listen_synchronize(&with_value)
                .map_err(|e| grasp_failure(&e))?;
            out.event(
                "flooding",
                json!({"objective": o.name, "value": value}),
                || {
                    format!(
                        "flooding {} {value} (and answering discovery and synchronization)",
                        o.name
                    )
                },
            );
            let flooding = async {
                let mut tick = tokio::time::interval(Duration::from_secs(2));
                loop {
                    tick.tick().await;
                    if let Err(e) = asa.flood(ttl_ms, &[(with_value.clone(), None)]) {
                        return grasp_failure(&e);
                    }
                }
            };
            let result = tokio::select! {
                e = flooding => Err(e),
                why = netaio_support::signals::stop_signals() => {
                    tracing::info!("{why}: stopping");
                    Ok(())
                }
                () = after(n.seconds) => Ok(()),
            };
            node.shutdown();
            result
        }
        GraspCommand::GetFlood {
            objective: o,
            node: n,
        } => {
            let node = node(&n).await?;
            let asa = asa(&node)?;
            let wait = n.seconds.unwrap_or(Duration::from_secs(10));
            let deadline = Instant::now() + wait;
            let obj = objective(&o);
            let found = loop {
                let got = asa.get_flood(&obj).map_err(|e| grasp_failure(&e))?;
                if !got.is_empty() || Instant::now() >= deadline {
                    break got;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            node.shutdown();
            for t in &found {
                let value = t.objective.value.as_ref().map_or(Json::Null, to_json);
                let locator = t.locator.as_ref().map(ToString::to_string);
                out.event(
                    "flood",
                    json!({"objective": o.name, "value": value, "locator": locator}),
                    || {
                        format!(
                            "{} {value}{}",
                            o.name,
                            locator
                                .as_deref()
                                .map_or_else(String::new, |l| format!(" from {l}"))
                        )
                    },
                );
            }
            if found.is_empty() {
                return Err(Failure::new(
                    Code::Timeout,
                    format!("no flood of {} within {wait:?}", o.name),
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_cbor_values_round_trip() {
        let j: Json =
            serde_json::from_str(r#"[1, "two", {"three": [true, null]}, -4, 2.5]"#).unwrap();
        assert_eq!(to_json(&to_value(&j)), j);
        assert_eq!(
            to_json(&Value::Bytes(vec![1, 255])),
            json!({"bytes": "01ff"})
        );
    }
}
