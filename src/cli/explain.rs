//! `palisade explain`: one request through the engine, narrated.

use super::{load_policy, now_ns, print};
use clap::Args;
use palisade::policy::{action_name, scope_name, Action, Decision, Request, TokenState};
use palisade::ratelimit::MemoryStore;
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
    let mut store = MemoryStore::new(1);
    let decision = policy.decide(&request, &mut store, now_ns());
    let status = decision.status(policy.challenge_config().status);
    let secure = policy.is_secure(&request);
    let anomalies = policy.header_anomalies(&request, decision.client.class);
    if args.json {
        let mut value = decision.to_json();
        value["status"] = status.into();
        value["client"]["secure"] = secure.into();
        value["client"]["header_anomalies"] = anomalies.iter().map(|a| a.as_str()).collect();
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
        // Right after the client line, which it qualifies.
        let at = text.find('\n').map_or(text.len(), |i| i + 1);
        text.insert_str(at, &headers);
        print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
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
    line(format!(
        "score      {} -> {} (thresholds: monitor {}, challenge {}, block {})",
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
