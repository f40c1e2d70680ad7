//! `palisade score --log`: replay an access log and score each client,
//! to see what the score would do before turning it on.

use super::access_log::{self, LogFormat};
use super::print;
use clap::Args;
use palisade::config::Thresholds;
use palisade::crawlers::Crawlers;
use palisade::scoring::eval::Action;
use palisade::scoring::replay::{self, LogLine};
use palisade::scoring::{Model, ACCESS_LOG};
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::process::ExitCode;

#[derive(Args)]
pub struct ScoreArgs {
    /// The log's format.
    #[arg(long, value_enum)]
    log: LogFormat,
    /// An access-log model (schema log-v1).
    #[arg(long, default_value = "datasets/models/log.json")]
    model: String,
    /// Read the log from this file instead of stdin.
    #[arg(long)]
    input: Option<String>,
    /// How many contributing features to print per client.
    #[arg(long, default_value_t = 3)]
    top: usize,
}

pub fn run(args: ScoreArgs) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.model).map_err(|e| format!("{}: {e}", args.model))?;
    let model = Model::from_json(&text, &ACCESS_LOG).map_err(|e| format!("{}: {e}", args.model))?;
    let crawlers = Crawlers::builtin().map_err(|e| format!("built-in datasets: {e}"))?;
    let (source, reader): (String, Box<dyn Read>) = match &args.input {
        Some(path) => (
            path.clone(),
            Box::new(std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?),
        ),
        None => ("stdin".to_string(), Box::new(std::io::stdin())),
    };
    // Clients in the order they first appear; lines as bytes, since logs
    // are not always UTF-8.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut clients: Vec<Vec<LogLine>> = Vec::new();
    let mut skipped = 0usize;
    for (n, line) in std::io::BufReader::new(reader).split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("{source}: {e}"))?;
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            continue;
        }
        match access_log::parse(line, args.log) {
            Ok(parsed) => {
                let next = clients.len();
                let i = *index.entry(parsed.client.clone()).or_insert(next);
                if i == next {
                    clients.push(Vec::new());
                }
                clients[i].push(parsed);
            }
            Err(reason) => {
                skipped += 1;
                if skipped <= 10 {
                    eprintln!(
                        "palisade: {source}:{}: not a line of the {} log format ({reason}), skipped",
                        n + 1,
                        args.log.name()
                    );
                }
            }
        }
    }
    if skipped > 10 {
        eprintln!("palisade: {source}: {skipped} lines skipped in all");
    }
    let mut scored = Vec::with_capacity(clients.len());
    for mut lines in clients {
        replay::order(&mut lines, args.log.resolution());
        let Some(first) = lines.first() else { continue };
        let client = first.client.clone();
        if let Some(s) = replay::score_client(&lines, &crawlers, &model) {
            scored.push((client, s));
        }
    }
    scored.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then_with(|| a.0.cmp(&b.0)));
    let mut out = String::new();
    for (client, s) in &scored {
        let top: Vec<serde_json::Value> = s
            .contributions
            .iter()
            .take(args.top)
            .map(|c| json!({"feature": c.feature, "value": round(c.value, 3), "points": round(c.points, 1)}))
            .collect();
        let object = json!({
            "client": client,
            "requests": s.requests,
            "score": round(s.score, 1),
            "action": Action::of(s.score, Thresholds::default()).as_str(),
            "top_features": top,
        });
        out.push_str(&object.to_string());
        out.push('\n');
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn round(x: f32, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (f64::from(x) * scale).round() / scale
}
