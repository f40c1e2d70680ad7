//! `palisade train`: a feature file in, a model file out.

use super::print;
use clap::{Args, ValueEnum};
use palisade::scoring::rows::{self, Row};
use palisade::scoring::train::{self, Example, ModelKind, TrainOptions};
use palisade::scoring::Schema;
use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

#[derive(Args)]
pub struct TrainArgs {
    /// The feature schema the rows follow: request-v1, log-v1 or interaction-v1.
    #[arg(long)]
    schema: String,
    #[arg(long, value_enum, default_value_t = KindArg::Mlp)]
    kind: KindArg,
    /// Feature rows (JSON lines, as `palisade simulate` writes them).
    #[arg(long)]
    input: String,
    /// Model file to write.
    #[arg(long)]
    out: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    epochs: usize,
    /// Hidden layer widths, comma-separated (MLP only).
    #[arg(long, default_value = "64,32,16")]
    hidden: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Mlp,
    Logistic,
}

/// Examples weighted so that each client counts about the same: a row's
/// weight is `1/√n` for a client with `n` rows. A fast scraper's thousand
/// rows would otherwise teach the model that bots are fast and little else,
/// while a bot of a few requests is the hard case.
pub fn examples(rows: &[Row]) -> Vec<Example> {
    let mut per_client: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        *per_client.entry(&r.client).or_default() += 1;
    }
    rows.iter()
        .map(|r| Example {
            features: r.features.clone(),
            label: r.is_bot(),
            weight: 1.0 / (per_client.get(r.client.as_str()).copied().unwrap_or(1) as f32).sqrt(),
        })
        .collect()
}

/// The schema a `--schema` names, or the list of the known ones.
pub fn schema(name: &str) -> Result<&'static Schema, String> {
    Schema::named(name).ok_or_else(|| {
        format!("unknown schema `{name}` (known: request-v1, log-v1, interaction-v1)")
    })
}

pub fn run(args: TrainArgs) -> Result<ExitCode, String> {
    let schema = schema(&args.schema)?;
    let hidden = args
        .hidden
        .split(',')
        .map(|h| {
            h.trim()
                .parse::<usize>()
                .map_err(|_| format!("--hidden `{}`: expected widths like 64,32,16", args.hidden))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rows = rows::read(Path::new(&args.input), schema).map_err(|e| e.to_string())?;
    let options = TrainOptions {
        kind: match args.kind {
            KindArg::Mlp => ModelKind::Mlp,
            KindArg::Logistic => ModelKind::Logistic,
        },
        hidden,
        epochs: args.epochs,
        seed: args.seed,
        ..TrainOptions::default()
    };
    let model = train::train(&examples(&rows), schema, &options)
        .map_err(|e| format!("{}: {e}", args.input))?;
    let text = serde_json::to_string(&model).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, text + "\n").map_err(|e| format!("{}: {e}", args.out))?;
    print(&format!(
        "{}: {} {} model from {} rows, validation AUC {:.4}\n",
        args.out,
        model.kind,
        schema.name,
        rows.len(),
        model
            .metadata
            .get("validation_auc")
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    ))?;
    Ok(ExitCode::SUCCESS)
}
