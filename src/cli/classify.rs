//! `palisade classify`: who is hitting you, from user agents or access logs.

use super::access_log::{self, LogFormat};
use clap::Args;
use palisade::crawlers::{Crawlers, Verification};
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

#[derive(Args)]
pub struct ClassifyArgs {
    /// Read access-log lines in this format instead of bare user agents.
    #[arg(long)]
    log: Option<LogFormat>,
    /// JSON output (one object per line); this is the only per-line format,
    /// accepted for symmetry with `explain --json`.
    #[arg(long, conflicts_with = "summary")]
    json: bool,
    /// Print a table of counts by class, name and verification instead of
    /// one line per input line.
    #[arg(long)]
    summary: bool,
    /// Classify with a policy's crawler settings instead of the built-ins.
    #[arg(long)]
    config: Option<String>,
}

/// One row of `--summary`: class, name and verification.
type SummaryKey = (&'static str, String, &'static str);

pub fn run(args: ClassifyArgs) -> Result<ExitCode, String> {
    let policy;
    let builtin;
    let crawlers: &Crawlers = match &args.config {
        Some(file) => {
            policy = super::load_policy(file)?;
            policy.crawlers()
        }
        None => {
            builtin = Crawlers::builtin().map_err(|e| format!("built-in datasets: {e}"))?;
            &builtin
        }
    };
    let mut summary: HashMap<SummaryKey, u64> = HashMap::new();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    // Lines are read as bytes: log files are not always UTF-8, and a user
    // agent with invalid bytes is itself worth classifying (as the Envoy
    // filter sees it, with U+FFFD in place of each invalid sequence).
    for (n, line) in stdin.lock().split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            continue;
        }
        let (user_agent, ip) = match args.log {
            None => (line.trim().to_string(), None),
            Some(format) => match access_log::user_agent_and_ip(line, format) {
                Some(parsed) => parsed,
                None => {
                    eprintln!(
                        "palisade: line {}: not a {} log line, skipped",
                        n + 1,
                        format.name()
                    );
                    continue;
                }
            },
        };
        let c = crawlers.classify(&user_agent, ip);
        if args.summary {
            let verification = c.verification.map_or("-", verification_name);
            let key = (
                c.class.as_str(),
                c.name.unwrap_or("-").to_string(),
                verification,
            );
            *summary.entry(key).or_default() += 1;
            continue;
        }
        let object = json!({
            "user_agent": user_agent,
            "ip": ip.map(|ip| ip.to_string()),
            "class": c.class.as_str(),
            "name": c.name,
            "pattern": c.pattern,
            "verified": c.verification.map(|v| v == Verification::Verified),
            "verification": c.verification,
        });
        if writeln!(out, "{object}").is_err() {
            return Ok(ExitCode::SUCCESS); // stdout closed (e.g. piped into `head`)
        }
    }
    if args.summary {
        // A closed stdout is not an error here either.
        let _ = out.write_all(summary_table(summary).as_bytes());
    }
    Ok(ExitCode::SUCCESS)
}

fn verification_name(v: Verification) -> &'static str {
    match v {
        Verification::Verified => "verified",
        Verification::Spoofed => "spoofed",
        Verification::Unverifiable => "unverifiable",
    }
}

/// The `--summary` table, most frequent first (ties by class and name).
fn summary_table(counts: HashMap<SummaryKey, u64>) -> String {
    let total: u64 = counts.values().sum();
    let mut rows: Vec<(SummaryKey, u64)> = counts.into_iter().collect();
    rows.sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    let mut out = format!(
        "{:>8}  {:>6}  {:<13}  {:<24}  {}\n",
        "count", "share", "class", "name", "verification"
    );
    for ((class, name, verification), count) in rows {
        let share = 100.0 * count as f64 / total.max(1) as f64;
        out.push_str(&format!(
            "{count:>8}  {share:>5.1}%  {class:<13}  {name:<24}  {verification}\n"
        ));
    }
    out.push_str(&format!("{total:>8}  total\n"));
    out
}
