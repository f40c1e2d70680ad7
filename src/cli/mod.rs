//! Command-line parsing and the subcommands. Each subcommand only
//! translates between the shell and the library.

mod access_log;
mod classify;
mod datasets;
mod eval;
mod explain;
mod score;
mod secrets;
mod simulate;
mod token;
mod train;

use clap::{Parser, Subcommand};
use palisade::policy::{CompileEnv, Policy, ProcessEnv};
use std::io::Write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Bot and abuse defence that lives in the proxy"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a policy file: prints a one-line summary, or the error with its path.
    CheckConfig {
        /// Policy file (YAML or JSON).
        file: String,
        /// Check everything but the presence of secrets: environment
        /// variables the policy reads (token keys, provider secrets) may be
        /// unset; a set one is still checked. Lists the variables the
        /// policy needs at load time.
        #[arg(long)]
        no_secrets: bool,
    },
    /// Validate a policy file and print it as compact JSON, the form Envoy's
    /// plugin configuration takes.
    PolicyJson {
        /// Policy file (YAML or JSON).
        file: String,
    },
    /// Show what the policy decides for one request, step by step.
    Explain(explain::ExplainArgs),
    /// Refresh the downloadable datasets (the reputation lists).
    #[command(subcommand)]
    Datasets(datasets::DatasetsCommand),
    /// Issue or inspect pass tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Classify user agents read from stdin (one per line, or access-log lines).
    Classify(classify::ClassifyArgs),
    /// Generate labelled traffic from the actor models: feature files,
    /// Envoy and combined access logs, challenge-page interaction records.
    Simulate(simulate::SimulateArgs),
    /// Train a bot-score model (MLP or logistic) from a feature file.
    Train(train::TrainArgs),
    /// Evaluate a model on labelled rows: AUC, precision, recall, the
    /// thresholds' confusion matrix, calibration, and a ROC curve PNG.
    Eval(eval::EvalArgs),
    /// Replay an access log and print each client's score.
    Score(score::ScoreArgs),
    /// Run the companion service: challenge pages and answers (public
    /// listener), health, metrics and stats (internal listener).
    Serve {
        /// Policy file (YAML or JSON), the same one the filter uses.
        #[arg(long)]
        config: String,
    },
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::CheckConfig { file, no_secrets } => {
            let stand_ins = secrets::WithoutSecrets::default();
            let env: &dyn CompileEnv = if no_secrets { &stand_ins } else { &ProcessEnv };
            let policy = load_policy_with(&file, env)?;
            // The chart kind's tables are files the companion reads; check
            // them, and every template's columns, as it will.
            palisade::challenge::chart::ChartKit::load(
                policy.challenge_config(),
                std::path::Path::new(&policy.companion().datasets),
            )
            .map_err(|e| format!("{file}: {e}"))?;
            // So are the providers' settings and secrets.
            palisade::challenge::providers::Providers::load(
                &policy.companion().providers,
                &policy.tokens().keyring,
                env,
            )
            .map_err(|e| format!("{file}: {e}"))?;
            let s = policy.summary();
            let lists: Vec<String> = s
                .lists
                .iter()
                .map(|(name, ranges)| format!("{name}={ranges}"))
                .collect();
            print(&format!(
                "{file}: ok: {} routes, {} rules, {} lists ({}), {} crawler patterns, {} keys\n",
                s.routes,
                s.rules,
                s.lists.len(),
                if lists.is_empty() {
                    "none".to_string()
                } else {
                    lists.join(" ") + " ranges"
                },
                s.crawler_patterns,
                s.keys
            ))?;
            if no_secrets {
                print(&needed_variables(&file, &stand_ins.needed()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::PolicyJson { file } => {
            let policy = load_policy(&file)?;
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
            let mut json =
                palisade::config::yaml_to_json(&text).map_err(|e| format!("{file}: {e}"))?;
            // The geo conditions resolved into ranges, for the filter, which
            // has no geo table (written afresh: a stale copy was refused above).
            if let Some(document) = json.as_object_mut() {
                let ranges = policy.resolved_ranges();
                if ranges.is_empty() {
                    document.remove("resolved_ranges");
                } else {
                    let ranges = serde_json::to_value(ranges).map_err(|e| e.to_string())?;
                    document.insert("resolved_ranges".to_string(), ranges);
                }
            }
            print(&format!("{json}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain(a) => explain::run(a),
        Command::Datasets(d) => datasets::run(d),
        Command::Token(t) => token::run(t),
        Command::Classify(c) => classify::run(c),
        Command::Simulate(a) => simulate::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Score(a) => score::run(a),
        Command::Serve { config } => {
            palisade::companion::serve(std::path::Path::new(&config)).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads and compiles a policy file; the error names the file and the field.
fn load_policy(file: &str) -> Result<Policy, String> {
    load_policy_with(file, &ProcessEnv)
}

fn load_policy_with(file: &str, env: &dyn CompileEnv) -> Result<Policy, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    Policy::from_yaml(&text, env).map_err(|e| format!("{file}: {e}"))
}

/// `check-config --no-secrets`' second line: what the policy reads from
/// the environment when it loads, and which of those were not set here.
fn needed_variables(file: &str, needed: &[(String, bool)]) -> String {
    if needed.is_empty() {
        return format!("{file}: reads no environment variables\n");
    }
    let names: Vec<String> = needed
        .iter()
        .map(|(name, set)| {
            if *set {
                name.clone()
            } else {
                format!("{name} (unset here: a stand-in was used)")
            }
        })
        .collect();
    format!("{file}: needs at load time: {}\n", names.join(", "))
}

/// Writes `text` to stdout. A closed stdout (`| head`) quietly ends the
/// output, as in `classify`; any other write error is reported.
fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

/// Seconds and nanoseconds since the Unix epoch, now.
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
