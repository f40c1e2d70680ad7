//! `palisade eval`: a model against labelled rows, with the ROC curve.

use super::print;
use clap::Args;
use palisade::scoring::eval::{self, plot, Report};
use palisade::scoring::rows;
use palisade::scoring::Model;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

#[derive(Args)]
pub struct EvalArgs {
    /// Model file.
    #[arg(long)]
    model: String,
    /// Labelled feature rows for the model's schema.
    #[arg(long)]
    input: String,
    /// Draw the ROC curve (model, baseline, rules) into this PNG.
    #[arg(long)]
    roc: Option<String>,
    /// A second model to compare with (the logistic baseline, or the
    /// model in production).
    #[arg(long)]
    baseline: Option<String>,
    /// Print the report(s) as JSON.
    #[arg(long)]
    json: bool,
}

/// Reads a model file, for whatever schema it names.
pub fn load_model(path: &str) -> Result<Model, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let name = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["schema"]["name"].as_str().map(String::from))
        .ok_or_else(|| format!("{path}: not a model file (no schema.name)"))?;
    let schema = super::train::schema(&name).map_err(|e| format!("{path}: {e}"))?;
    Model::from_json(&text, schema).map_err(|e| format!("{path}: {e}"))
}

pub fn run(args: EvalArgs) -> Result<ExitCode, String> {
    let model = load_model(&args.model)?;
    let rows = rows::read(Path::new(&args.input), model.schema()).map_err(|e| e.to_string())?;
    let report = eval::evaluate(&model, &rows);
    // The baseline's kind (for the legend) and its report.
    let baseline: Option<(String, Report)> = match &args.baseline {
        Some(path) => {
            let other = load_model(path)?;
            if other.schema() != model.schema() {
                return Err(format!(
                    "{path}: schema {} differs from the model's {}",
                    other.schema().name,
                    model.schema().name
                ));
            }
            Some((other.file().kind.clone(), eval::evaluate(&other, &rows)))
        }
        None => None,
    };
    if let Some(png) = &args.roc {
        let mut curves = vec![plot::Curve {
            label: format!("{} (AUC {:.3})", model.file().kind, report.auc),
            points: &report.roc,
        }];
        if let Some((kind, b)) = &baseline {
            curves.push(plot::Curve {
                label: format!("{kind} (AUC {:.3})", b.auc),
                points: &b.roc,
            });
        }
        if let (Some(points), Some(auc)) = (&report.rules_roc, report.rules_auc) {
            curves.push(plot::Curve {
                label: format!("rules only (AUC {auc:.3})"),
                points,
            });
        }
        let title = format!("ROC: {} model on {} rows", report.schema, report.rows);
        plot::roc_png(Path::new(png), &title, &curves).map_err(|e| e.to_string())?;
    }
    if args.json {
        let value = json!({"model": report, "baseline": baseline.as_ref().map(|(_, b)| b)});
        print(&format!("{value}\n"))?;
    } else {
        let mut text = report.text();
        if let Some((_, b)) = &baseline {
            text.push_str(&format!("\nbaseline\n{}", b.text()));
        }
        print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
