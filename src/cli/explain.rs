//! `palisade explain`: one request through the engine, narrated.

use super::{load_policy, now_ns, print};
use clap::Args;
use palisade::geo::Place;
use palisade::policy::{action_name, scope_name, Action, Decision, Policy, Request, TokenState};
use palisade::ratelimit::MemoryStore;
use palisade::scoring::{
    ClientState, Contribution, Model, Observation, Scored, TopFeatures, Vector, REQUEST,
};
use serde_json::json;
use std::net::IpAddr;
use std::process::ExitCode;

#[derive(Args)]
pub struct ExplainArgs {
    /// Policy file (YAML or JSON).
    #[arg(long)]
    config: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request path, with an optional query (`/search?q=x`).
    #[arg(long)]
    path: String,
    #[arg(long, default_value = "localhost")]
    host: String,
    /// The scheme the request came in on (Envoy's `:scheme`): `http` or
    /// `https`. Browsers send `Sec-Fetch-*` and client hints only to https
    /// and loopback hosts, which the header-consistency checks take into
    /// account.
    #[arg(long, default_value = "http", value_parser = ["http", "https"])]
    scheme: String,
    /// The connecting peer's address.
    #[arg(long)]
    ip: Option<IpAddr>,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Print the decision as JSON.
    #[arg(long)]
    json: bool,
    /// Show the learned score's inputs: every feature of a client whose
    /// only request is this one (with `--feature` overrides), and what the
    /// model makes of them.
    #[arg(long)]
    features: bool,
    /// A feature value, `name=value` (repeatable): what the client's
    /// history would have made it. Implies `--features`.
    #[arg(long = "feature", value_name = "NAME=VALUE")]
    feature_values: Vec<String>,
    /// The request-behaviour model; default: the policy's `scoring.model`
    /// when `scoring.enabled`.
    #[arg(long)]
    model: Option<String>,
}

/// The learned score explain computed, or why there is none.
struct Learned {
    names: Vec<&'static str>,
    values: Vec<f32>,
    outcome: Result<(String, Vec<Contribution>, Scored), String>,
}

/// Scores a client whose only request is `request` (plus `overrides`).
fn learn(
    policy: &Policy,
    args: &ExplainArgs,
    request: &Request,
    decision: &Decision,
    now: u64,
) -> Result<Option<Learned>, String> {
    // Without these, explain decides as a host does on a client's first
    // request: on rules alone, since a cached score applies from the next.
    if !(args.features || !args.feature_values.is_empty() || args.model.is_some()) {
        return Ok(None);
    }
    let path = match &args.model {
        Some(path) => path.clone(),
        None if policy.scoring().enabled => policy.scoring().model.clone(),
        None => {
            return Err("--features: `scoring.enabled` is false; give a model with --model".into())
        }
    };
    let observation = Observation::of(request, decision.login);
    let facts = policy.score_facts(request, Some(decision.client.class));
    let mut state = ClientState::new(1);
    state.observe(&observation, now);
    let mut values = Vector::of(&REQUEST, &state, &facts, now)
        .as_slice()
        .to_vec();
    let names: Vec<&'static str> = REQUEST.names().collect();
    for given in &args.feature_values {
        let (name, value) = given
            .split_once('=')
            .ok_or_else(|| format!("--feature `{given}`: expected NAME=VALUE"))?;
        let index = names
            .iter()
            .position(|n| *n == name.trim())
            .ok_or_else(|| {
                format!(
                    "--feature `{given}`: no feature `{name}` (features: {})",
                    names.join(", ")
                )
            })?;
        let value: f32 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f32| (0.0..=1.0).contains(v))
            .ok_or_else(|| {
                format!("--feature `{given}`: the value must be a number from 0 to 1")
            })?;
        values[index] = value;
    }
    let outcome = std::fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e}"))
        .and_then(|text| Model::from_json(&text, &REQUEST).map_err(|e| format!("{path}: {e}")))
        .map(|model| {
            let top = model.top_features(&values, 3);
            let scored = Scored {
                points: model.score(&values).round().clamp(0.0, 100.0) as u8,
                top: TopFeatures::of(top.iter().filter(|c| c.evidence > 0.0).map(|c| c.feature)),
            };
            (model.version(), top, scored)
        });
    Ok(Some(Learned {
        names,
        values,
        outcome,
    }))
}

pub fn run(args: ExplainArgs) -> Result<ExitCode, String> {
    let policy = load_policy(&args.config)?;
    let mut headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("--header `{h}`: expected `Name: value`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    headers.push((":scheme".to_string(), args.scheme.clone()));
    let request = Request::new(&args.method, &args.path, &args.host, &headers, args.ip);
    let now = now_ns();
    let rules_only = policy.decide(&request, &mut MemoryStore::new(1), now);
    let learned = learn(&policy, &args, &request, &rules_only, now)?;
    let scored = learned
        .as_ref()
        .and_then(|l| l.outcome.as_ref().ok())
        .map(|(_, _, s)| *s);
    let decision = policy.decide_scored(&request, &mut MemoryStore::new(1), now, scored);
    let status = decision.status(policy.challenge_config().status);
    let secure = policy.is_secure(&request);
    let anomalies = policy.header_anomalies(&request, decision.client.class);
    let origin = origin(&policy, &request);
    if args.json {
        let mut value = decision.to_json();
        value["status"] = status.into();
        value["client"]["secure"] = secure.into();
        if let Some(o) = &origin {
            value["client"]["country"] = o.place.country_str().into();
            value["client"]["continent"] = o.place.continent_str().into();
            value["client"]["asn"] = o.place.asn.into();
            value["client"]["as_org"] = Some(o.place.org).filter(|s| !s.is_empty()).into();
            value["client"]["hosting"] = o.hosting.into();
        }
        value["client"]["header_anomalies"] = anomalies.iter().map(|a| a.as_str()).collect();
        if let Some(l) = &learned {
            value["learned"] = learned_json(l);
        }
        print(&format!("{value}\n"))?;
    } else {
        let mut text = narrate(&decision, status, policy.thresholds());
        let names: Vec<&str> = anomalies.iter().map(|a| a.as_str()).collect();
        let headers = format!(
            "headers    {} request, {}\n",
            if secure { "secure" } else { "plain-http" },
            if names.is_empty() {
                "no anomalies".to_string()
            } else {
                format!("anomalies: {}", names.join(", "))
            }
        );
        let origin = origin.as_ref().map_or(String::new(), narrate_origin);
        // Right after the client line, which they qualify.
        let at = text.find('\n').map_or(text.len(), |i| i + 1);
        text.insert_str(at, &format!("{origin}{headers}"));
        if let Some(l) = &learned {
            text.push_str(&narrate_learned(
                l,
                args.features || !args.feature_values.is_empty(),
            ));
        }
        print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the client's address is, and whether it is a hosting network.
struct Origin {
    place: Place,
    hosting: Option<bool>,
}

fn origin(policy: &Policy, request: &Request) -> Option<Origin> {
    let ip = policy.client_ip(request)?;
    Some(Origin {
        place: policy.place(ip)?,
        hosting: policy.is_hosting(ip),
    })
}

fn narrate_origin(o: &Origin) -> String {
    let or_unknown = |v: Option<&str>| v.unwrap_or("unknown").to_string();
    let asn = match o.place.asn {
        Some(asn) if o.place.org.is_empty() => format!("AS{asn}"),
        Some(asn) => format!("AS{asn} ({})", o.place.org),
        None => "no AS".to_string(),
    };
    let hosting = match o.hosting {
        Some(true) => ", hosting network",
        Some(false) => ", not a hosting network",
        None => "",
    };
    format!(
        "origin     {} ({}), {asn}{hosting}\n",
        or_unknown(o.place.country_str()),
        or_unknown(o.place.continent_str()),
    )
}

fn learned_json(l: &Learned) -> serde_json::Value {
    let features: serde_json::Map<String, serde_json::Value> = l
        .names
        .iter()
        .zip(&l.values)
        .map(|(n, v)| (n.to_string(), json!(v)))
        .collect();
    match &l.outcome {
        Ok((model, top, scored)) => json!({
            "score": scored.points,
            "model": model,
            "features": features,
            "top_features": top,
        }),
        Err(reason) => json!({"score": null, "error": reason, "features": features}),
    }
}

fn narrate_learned(l: &Learned, all_features: bool) -> String {
    let mut out = match &l.outcome {
        Ok((model, top, scored)) => {
            let top: Vec<String> = top
                .iter()
                .map(|c| {
                    format!(
                        "{} {:+.1} ({:+.2} log-odds)",
                        c.feature, c.points, c.evidence
                    )
                })
                .collect();
            format!(
                "learned    {} from model {model}; top: {}\n",
                scored.points,
                top.join(", ")
            )
        }
        Err(reason) => format!("learned    absent, rules only ({reason})\n"),
    };
    if all_features {
        for (name, value) in l.names.iter().zip(&l.values) {
            out.push_str(&format!("  {name:<20} {value:.3}\n"));
        }
    }
    out
}

fn narrate(d: &Decision, status: Option<u16>, t: palisade::config::Thresholds) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let c = &d.client;
    line(format!(
        "client     {} (group {}), class {}{}{}",
        c.ip.map_or("unknown".into(), |ip| ip.to_string()),
        c.prefix.map_or("none".into(), |p| p.to_string()),
        c.class.as_str(),
        c.name.map_or(String::new(), |n| format!(" ({n})")),
        c.verification
            .map_or(String::new(), |v| format!(", crawler {v:?}").to_lowercase()),
    ));
    line(format!(
        "route      {} {}, action {}",
        d.route_index.map_or("default".into(), |i| format!("#{i}")),
        d.route,
        d.route_action
            .map_or("(none: the score decides)", action_name),
    ));
    if d.rules.is_empty() {
        line("rules      none fired".into());
    }
    for (i, r) in d.rules.iter().enumerate() {
        line(format!(
            "{}{:<24} weight {:+}{}",
            if i == 0 { "rules      " } else { "           " },
            r.name,
            r.weight,
            r.action
                .map_or(String::new(), |a| format!(", action {}", action_name(a))),
        ));
    }
    let parts = match d.model {
        Some(m) if m.enforced => format!(" (rules {}, learned {})", d.rule_score, m.scored.points),
        Some(m) => format!(" (learned {} in shadow mode: not counted)", m.scored.points),
        None => String::new(),
    };
    line(format!(
        "score      {}{parts} -> {} (thresholds: monitor {}, challenge {}, block {})",
        d.score,
        action_name(d.score_action),
        t.monitor,
        t.challenge,
        t.block
    ));
    line(format!(
        "token      {}",
        match d.token {
            TokenState::Absent => "none".to_string(),
            TokenState::Valid { passed, expires_at } => format!(
                "valid, {} level {}, expires at {expires_at}",
                passed.kind.as_str(),
                passed.difficulty
            ),
            TokenState::Rejected(e) => format!("rejected: {e}"),
        }
    ));
    if let Some(ch) = d.challenge {
        let served = if ch.kind.needs_companion() {
            // The filter's answer then depends on the companion's health,
            // which explain cannot see.
            ", on the companion's page (GET and HEAD: 303 to it; while it is down: companion.failure_mode)"
        } else {
            ""
        };
        line(format!(
            "challenge  {}, difficulty {}{served}",
            ch.kind.as_str(),
            ch.difficulty
        ));
    }
    match &d.rate_limit {
        Some(r) => line(format!(
            "rate limit {} burst {} per {}, key {}: {}",
            r.limit.rate,
            r.limit.burst,
            scope_name(r.scope),
            r.key_text(),
            if r.outcome.allowed {
                format!("{} remaining", r.outcome.remaining)
            } else {
                format!(
                    "exceeded, retry after {} ms",
                    r.outcome.retry_after_ns / 1_000_000
                )
            }
        )),
        None => line("rate limit none".into()),
    }
    let verdict = match (d.action, status) {
        (Action::Allow | Action::Monitor, _) => {
            format!("{} (forwarded upstream)", d.action.as_str())
        }
        (_, Some(s)) => format!("{} (answers {s})", d.action.as_str()),
        (_, None) => d.action.as_str().to_string(),
    };
    line(format!("decision   {verdict}: {}", d.reason_text()));
    out
}
