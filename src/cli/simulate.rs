//! `palisade simulate`: labelled traffic from the actor models, as
//! feature files, access logs and challenge-page interaction records.

use super::{load_policy, print};
use clap::{Args, ValueEnum};
use palisade::crawlers::Crawlers;
use palisade::scoring::rows;
use palisade::scoring::simulate::{self, interaction, logs, Actor, SimOptions, Variant};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

#[derive(Args)]
pub struct SimulateArgs {
    /// Seed of the random draws: the same seed gives the same traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `holdout` draws the actors' parameters from other ranges, for evaluation.
    #[arg(long, value_enum, default_value_t = VariantArg::Train)]
    variant: VariantArg,
    /// Number of clients (about half people, half bots).
    #[arg(long, default_value_t = 400)]
    clients: usize,
    /// Simulated time span: 1800, 30m, 2h.
    #[arg(long, default_value = "30m")]
    duration: String,
    /// The policy whose rules give each request its `rules_score`.
    #[arg(long, default_value = "envoy/demo-policy.yaml")]
    config: String,
    /// Directory to write into (created if missing).
    #[arg(long)]
    out: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum VariantArg {
    Train,
    Holdout,
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(args: SimulateArgs) -> Result<ExitCode, String> {
    let duration = palisade::config::Duration::parse(&args.duration)
        .map_err(|e| format!("--duration: {e}"))?;
    if args.clients == 0 || duration.0 == 0 {
        return Err("--clients and --duration must be more than 0".into());
    }
    let policy = load_policy(&args.config)?;
    let crawlers = Crawlers::builtin().map_err(|e| format!("built-in datasets: {e}"))?;
    let options = SimOptions {
        seed: args.seed,
        variant: match args.variant {
            VariantArg::Train => Variant::Train,
            VariantArg::Holdout => Variant::Holdout,
        },
        clients: args.clients,
        duration_s: duration.0 as f64,
    };
    let out = Path::new(&args.out);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let sim = simulate::simulate(&options);

    let request_rows = simulate::rows::request_rows(&sim, &policy);
    let rules: Vec<Option<f32>> = request_rows.iter().map(|r| r.rules_score).collect();
    let log_rows = simulate::rows::log_rows(&sim, &crawlers, &rules);
    rows::write(&out.join("features-request.jsonl"), &request_rows).map_err(|e| e.to_string())?;
    rows::write(&out.join("features-log.jsonl"), &log_rows).map_err(|e| e.to_string())?;
    write(
        &out.join("access-envoy.log"),
        &logs::log(&sim, logs::Format::Envoy),
    )?;
    write(
        &out.join("access-combined.log"),
        &logs::log(&sim, logs::Format::Combined),
    )?;
    let mut text = String::new();
    for (row, record) in interaction::records(&sim) {
        let mut value = serde_json::to_value(&row).map_err(|e| e.to_string())?;
        value["interaction"] = interaction::to_json(&record);
        text.push_str(&value.to_string());
        text.push('\n');
    }
    write(&out.join("interaction.jsonl"), &text)?;

    let mut by_actor: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for actor in Actor::ALL {
        by_actor.insert(actor.as_str(), (0, 0));
    }
    for c in &sim.clients {
        if let Some(e) = by_actor.get_mut(c.actor.as_str()) {
            e.0 += 1;
        }
    }
    for r in &sim.requests {
        if let Some(e) = by_actor.get_mut(sim.clients[r.client].actor.as_str()) {
            e.1 += 1;
        }
    }
    let mut summary = format!(
        "{} variant, seed {}: {} clients, {} requests over {} s, written to {}\n",
        options.variant.as_str(),
        options.seed,
        sim.clients.len(),
        sim.requests.len(),
        duration.0,
        out.display()
    );
    for (actor, (clients, requests)) in by_actor {
        summary.push_str(&format!(
            "  {actor:<20} {clients:>6} clients {requests:>9} requests\n"
        ));
    }
    print(&summary)?;
    Ok(ExitCode::SUCCESS)
}
