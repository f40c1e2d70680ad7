//! The guard on online learning: what a candidate model is trained on,
//! and what it must show on a frozen held-out set before it is served.
//!
//! Labels come from whoever can post `/feedback` or solve a challenge, so
//! an attacker can give them too: solve challenges (or pay a farm to) from
//! a bot and each pass says "this behaviour is a person". The guard:
//!
//! 1. labels are capped per source and per client as they arrive
//!    ([`super::caps`]) and again here: at most `feedback.per_client` per
//!    client (the newest), and per class at most
//!    `training.max_label_share` of the base's weight of that class, so a
//!    flood of labels is scaled down to a minority beside the shipped
//!    training base;
//! 2. the candidate is evaluated on the frozen held-out set, beside the
//!    current model, and refused when it is worse by more than the
//!    tolerances: ROC-AUC, people challenged or blocked, bots let through,
//!    or the held-out bots' mean score falling by more than
//!    [`MAX_BOT_SHIFT`] points (what a poisoned candidate does to bots
//!    like the attacker's);
//! 3. a candidate that passes runs in shadow mode before it is served
//!    ([`super::Scoring::promote`]).

use super::records::Label;
use crate::config::{Thresholds, TrainingConfig};
use crate::scoring::eval::{evaluate_at, Report};
use crate::scoring::rows::Row;
use crate::scoring::train::Example;
use crate::scoring::Model;
use serde_json::{json, Value};
use std::collections::HashMap;

/// How far the held-out bots' mean score may fall, in score points.
pub const MAX_BOT_SHIFT: f64 = 3.0;

/// A candidate's training examples and how the labels went into them.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    pub examples: Vec<Example>,
    /// Labels trained on.
    pub labels_used: usize,
    /// Labels left out: over the per-client cap, or not a valid vector.
    pub labels_left_out: usize,
    /// What each class's label weights were multiplied by to stay within
    /// `max_label_share` (1 when they were within it): bots, people.
    pub scale: [f32; 2],
}

/// The base (weighted as `palisade train` weighs it) and the labels,
/// capped (see the module doc).
/// `labels` are newest first, as [`super::records::Records::labels_since`]
/// gives them.
pub fn training_set(
    base: &[Row],
    labels: &[Label],
    per_client: u32,
    max_label_share: f32,
    width: usize,
) -> TrainingSet {
    // As `palisade train` weighs rows: each client counts about the same
    // (`1/√n` for a client with `n` rows).
    let mut rows_of: HashMap<&str, usize> = HashMap::new();
    for r in base {
        *rows_of.entry(r.client.as_str()).or_default() += 1;
    }
    let examples: Vec<Example> = base
        .iter()
        .map(|r| Example {
            features: r.features.clone(),
            label: r.is_bot(),
            weight: 1.0 / (rows_of.get(r.client.as_str()).copied().unwrap_or(1) as f32).sqrt(),
        })
        .collect();
    let base_weight = |bot: bool| -> f32 {
        examples
            .iter()
            .filter(|e| e.label == bot)
            .map(|e| e.weight)
            .sum()
    };
    let mut per: HashMap<&str, u32> = HashMap::new();
    let mut chosen: Vec<&Label> = Vec::new();
    for label in labels {
        let n = per.entry(label.client.as_str()).or_default();
        let valid = label.features.len() == width
            && label.features.iter().all(|x| x.is_finite())
            && label.weight.is_finite()
            && label.weight > 0.0;
        if *n < per_client && valid {
            *n += 1;
            chosen.push(label);
        }
    }
    let mut scale = [1.0f32; 2];
    for (i, bot) in [true, false].into_iter().enumerate() {
        let total: f32 = chosen
            .iter()
            .filter(|l| l.bot == bot)
            .map(|l| l.weight)
            .sum();
        let cap = max_label_share * base_weight(bot);
        if total > cap && total > 0.0 {
            scale[i] = cap / total;
        }
    }
    let mut examples = examples;
    for label in &chosen {
        let weight = label.weight * scale[if label.bot { 0 } else { 1 }];
        if weight > 0.0 {
            examples.push(Example {
                features: label.features.clone(),
                label: label.bot,
                weight,
            });
        }
    }
    TrainingSet {
        examples,
        labels_used: chosen.len(),
        labels_left_out: labels.len() - chosen.len(),
        scale,
    }
}

/// One model on the held-out set, as far as the gate looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub auc: f64,
    /// People challenged or blocked, over people.
    pub people_flagged: f64,
    /// Bots below the challenge threshold, over bots.
    pub bots_missed: f64,
    /// The bots' mean score.
    pub bots_mean: f64,
}

impl Standing {
    pub fn of(model: &Model, holdout: &[Row], thresholds: Thresholds) -> Standing {
        let report: Report = evaluate_at(model, holdout, thresholds);
        let bots: Vec<f64> = holdout
            .iter()
            .filter(|r| r.is_bot())
            .map(|r| f64::from(model.score(&r.features)))
            .collect();
        Standing {
            auc: report.auc,
            people_flagged: report.people_flagged_share,
            bots_missed: 1.0 - report.recall,
            bots_mean: bots.iter().sum::<f64>() / bots.len().max(1) as f64,
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "auc": self.auc,
            "people_flagged": self.people_flagged,
            "bots_missed": self.bots_missed,
            "bots_mean_score": self.bots_mean,
        })
    }
}

/// `Ok` when `candidate` is not worse than `current` by more than the
/// tolerances; else the first reason it is.
pub fn judge(
    candidate: &Standing,
    current: &Standing,
    config: &TrainingConfig,
) -> Result<(), String> {
    if candidate.auc < current.auc - f64::from(config.max_auc_drop) {
        return Err(format!(
            "held-out ROC-AUC would fall from {:.4} to {:.4}",
            current.auc, candidate.auc
        ));
    }
    if candidate.people_flagged > current.people_flagged + f64::from(config.max_challenged_rise) {
        return Err(format!(
            "held-out people challenged or blocked would rise from {:.4} to {:.4}",
            current.people_flagged, candidate.people_flagged
        ));
    }
    if candidate.bots_missed > current.bots_missed + f64::from(config.max_missed_rise) {
        return Err(format!(
            "held-out bots let through would rise from {:.4} to {:.4}",
            current.bots_missed, candidate.bots_missed
        ));
    }
    if candidate.bots_mean < current.bots_mean - MAX_BOT_SHIFT {
        return Err(format!(
            "held-out bots' mean score would fall from {:.1} to {:.1} (at most {MAX_BOT_SHIFT} points)",
            current.bots_mean, candidate.bots_mean
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bot: bool) -> Row {
        Row {
            client: "c".into(),
            actor: String::new(),
            label: u8::from(bot),
            t: 0.0,
            features: vec![0.5; 2],
            rules_score: None,
        }
    }

    fn label(client: &str, bot: bool) -> Label {
        Label {
            at: 0,
            client: client.into(),
            source: "challenge".into(),
            bot,
            weight: 1.0,
            features: vec![0.9; 2],
        }
    }

    #[test]
    fn labels_are_capped_per_client_and_scaled_to_a_share_of_their_class() {
        let base: Vec<Row> = (0..100).map(|i| row(i % 2 == 0)).collect();
        // 40 human labels from 20 clients, 2 each; one client sends 5.
        let mut labels: Vec<Label> = (0..40)
            .map(|i| label(&format!("c{}", i / 2), false))
            .collect();
        labels.extend((0..5).map(|_| label("flood", false)));
        labels.push(Label {
            features: vec![0.1],
            ..label("short", true)
        });
        let set = training_set(&base, &labels, 2, 0.1, 2);
        assert_eq!(set.labels_used, 42);
        assert_eq!(set.labels_left_out, 4);
        // One client's 100 rows weigh 1/10 each: people weigh 5 in the
        // base, so labels of people may weigh 0.5.
        let human_labels: f32 = set.examples[100..].iter().map(|e| e.weight).sum();
        assert!((human_labels - 0.5).abs() < 1e-3, "{human_labels}");
        assert_eq!(set.scale[0], 1.0);
    }

    #[test]
    fn a_candidate_worse_on_any_count_is_refused() {
        let config = TrainingConfig::default();
        let current = Standing {
            auc: 0.98,
            people_flagged: 0.01,
            bots_missed: 0.05,
            bots_mean: 80.0,
        };
        assert!(judge(&current, &current, &config).is_ok());
        let worse = [
            Standing {
                auc: 0.97,
                ..current
            },
            Standing {
                people_flagged: 0.02,
                ..current
            },
            Standing {
                bots_missed: 0.1,
                ..current
            },
            Standing {
                bots_mean: 70.0,
                ..current
            },
        ];
        for w in worse {
            assert!(judge(&w, &current, &config).is_err(), "{w:?}");
        }
    }
}
