//! Evaluation: how well a model's scores separate bots from people on
//! labelled rows, at the thresholds the policy acts on. The library API
//! behind `palisade eval`, and what the companion uses to compare a
//! candidate model with the current one on a frozen held-out set.
//!
//! "Bot predicted" means challenged or blocked: a score at or above the
//! challenge threshold. The people challenged or blocked share is the
//! cost the score imposes on people; recall is what it catches.

pub mod plot;

use super::model::Model;
use super::rows::Row;
use crate::config::Thresholds;
use serde::Serialize;
use std::collections::HashMap;

/// ROC-AUC: the probability that a random bot scores above a random
/// person (ties count half). 0.5 when either class is missing.
pub fn auc(scores: &[f32], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut bots) = (0.0f64, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            if labels[k] {
                rank_sum += rank;
                bots += 1;
            }
        }
        i = j;
    }
    let people = idx.len() - bots;
    if bots == 0 || people == 0 {
        return 0.5;
    }
    (rank_sum - (bots * (bots + 1)) as f64 / 2.0) / (bots as f64 * people as f64)
}

/// ROC curve points `(false positive rate, true positive rate)`, from
/// `(0, 0)` to `(1, 1)`, one per distinct score (at most `max` points).
pub fn roc(scores: &[f32], labels: &[bool], max: usize) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let bots = idx.iter().filter(|&&i| labels[i]).count().max(1) as f64;
    let people = idx.iter().filter(|&&i| !labels[i]).count().max(1) as f64;
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let every = (idx.len() / max.max(1)).max(1);
    for (n, w) in idx.iter().enumerate() {
        if labels[*w] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = idx
            .get(n + 1)
            .is_none_or(|next| scores[*next] != scores[*w]);
        if last_of_tie && (n % every == 0 || n + 1 == idx.len()) {
            points.push((fp / people, tp / bots));
        }
    }
    points
}

/// What the thresholds do with a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Monitor,
    Challenge,
    Block,
}

impl Action {
    pub fn of(score: f32, t: Thresholds) -> Action {
        if score >= f32::from(t.block) {
            Action::Block
        } else if score >= f32::from(t.challenge) {
            Action::Challenge
        } else if score >= f32::from(t.monitor) {
            Action::Monitor
        } else {
            Action::Allow
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Monitor => "monitor",
            Action::Challenge => "challenge",
            Action::Block => "block",
        }
    }

    /// Challenged or blocked: the score's "bot" verdict.
    pub fn flags(self) -> bool {
        matches!(self, Action::Challenge | Action::Block)
    }
}

/// Rows per action, for one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Actions {
    pub allow: usize,
    pub monitor: usize,
    pub challenge: usize,
    pub block: usize,
}

impl Actions {
    fn add(&mut self, a: Action) {
        match a {
            Action::Allow => self.allow += 1,
            Action::Monitor => self.monitor += 1,
            Action::Challenge => self.challenge += 1,
            Action::Block => self.block += 1,
        }
    }
}

/// The confusion matrix with "bot predicted" = challenged or blocked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Confusion {
    /// Bots challenged or blocked.
    pub true_positives: usize,
    /// People challenged or blocked.
    pub false_positives: usize,
    /// People allowed or monitored.
    pub true_negatives: usize,
    /// Bots allowed or monitored.
    pub false_negatives: usize,
}

/// One band of scores `[from, to)` in the calibration table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    pub from: u8,
    pub to: u8,
    pub rows: usize,
    /// Mean score over 100: what the model predicted.
    pub mean_predicted: f64,
    /// Share of bots among the rows: what happened.
    pub observed_bots: f64,
}

/// One actor's rows (when the rows name actors).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorSummary {
    pub actor: String,
    pub rows: usize,
    pub mean_score: f64,
    /// Challenged or blocked.
    pub flagged_share: f64,
}

/// The AUC with one feature held at its training mean: how much the
/// model leans on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ablation {
    pub feature: String,
    pub auc_without: f64,
}

/// Everything `palisade eval` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub model: String,
    pub schema: String,
    pub rows: usize,
    pub bots: usize,
    pub people: usize,
    pub auc: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub confusion: Confusion,
    pub people_actions: Actions,
    pub bot_actions: Actions,
    /// People challenged or blocked, over people.
    pub people_flagged_share: f64,
    pub calibration: Vec<Band>,
    /// AUC of the rows' `rules_score`, when every row has one.
    pub rules_auc: Option<f64>,
    pub actors: Vec<ActorSummary>,
    pub ablation: Vec<Ablation>,
    /// The ROC curve (not in the JSON; for the PNG).
    #[serde(skip)]
    pub roc: Vec<(f64, f64)>,
    #[serde(skip)]
    pub rules_roc: Option<Vec<(f64, f64)>>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// ROC points kept for plotting.
const ROC_POINTS: usize = 400;

/// Evaluates `model` on `rows` at the default thresholds.
pub fn evaluate(model: &Model, rows: &[Row]) -> Report {
    evaluate_at(model, rows, Thresholds::default())
}

/// Evaluates `model` on `rows` at thresholds `t`.
pub fn evaluate_at(model: &Model, rows: &[Row], t: Thresholds) -> Report {
    let labels: Vec<bool> = rows.iter().map(Row::is_bot).collect();
    let scores: Vec<f32> = rows.iter().map(|r| model.score(&r.features)).collect();
    let mut confusion = Confusion::default();
    let (mut people_actions, mut bot_actions) = (Actions::default(), Actions::default());
    for (s, bot) in scores.iter().zip(&labels) {
        let a = Action::of(*s, t);
        match (bot, a.flags()) {
            (true, true) => confusion.true_positives += 1,
            (false, true) => confusion.false_positives += 1,
            (false, false) => confusion.true_negatives += 1,
            (true, false) => confusion.false_negatives += 1,
        }
        if *bot {
            bot_actions.add(a);
        } else {
            people_actions.add(a);
        }
    }
    let c = confusion;
    let precision = ratio(c.true_positives, c.true_positives + c.false_positives);
    let recall = ratio(c.true_positives, c.true_positives + c.false_negatives);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let bots = labels.iter().filter(|b| **b).count();
    let people = labels.len() - bots;
    let rules: Option<Vec<f32>> = rows.iter().map(|r| r.rules_score).collect();
    Report {
        model: model.version(),
        schema: model.schema().name.to_string(),
        rows: rows.len(),
        bots,
        people,
        auc: auc(&scores, &labels),
        precision,
        recall,
        f1,
        confusion,
        people_actions,
        bot_actions,
        people_flagged_share: ratio(c.false_positives, people),
        calibration: calibration(&scores, &labels),
        rules_auc: rules.as_ref().map(|r| auc(r, &labels)),
        actors: actors(rows, &scores, t),
        ablation: ablation(model, rows, &labels),
        roc: roc(&scores, &labels, ROC_POINTS),
        rules_roc: rules.as_ref().map(|r| roc(r, &labels, ROC_POINTS)),
    }
}

fn calibration(scores: &[f32], labels: &[bool]) -> Vec<Band> {
    (0..10u8)
        .map(|d| {
            let (from, to) = (d * 10, d * 10 + 10);
            let inside: Vec<(f32, bool)> = scores
                .iter()
                .zip(labels)
                .filter(|(s, _)| **s >= f32::from(from) && (**s < f32::from(to) || d == 9))
                .map(|(s, l)| (*s, *l))
                .collect();
            let n = inside.len();
            Band {
                from,
                to,
                rows: n,
                mean_predicted: inside
                    .iter()
                    .map(|(s, _)| f64::from(*s) / 100.0)
                    .sum::<f64>()
                    / n.max(1) as f64,
                observed_bots: ratio(inside.iter().filter(|(_, l)| *l).count(), n),
            }
        })
        .collect()
}

fn actors(rows: &[Row], scores: &[f32], t: Thresholds) -> Vec<ActorSummary> {
    let mut by: HashMap<&str, (usize, f64, usize)> = HashMap::new();
    for (r, s) in rows.iter().zip(scores) {
        if r.actor.is_empty() {
            continue;
        }
        let e = by.entry(&r.actor).or_default();
        e.0 += 1;
        e.1 += f64::from(*s);
        e.2 += usize::from(Action::of(*s, t).flags());
    }
    let mut out: Vec<ActorSummary> = by
        .into_iter()
        .map(|(actor, (n, sum, flagged))| ActorSummary {
            actor: actor.to_string(),
            rows: n,
            mean_score: sum / n as f64,
            flagged_share: ratio(flagged, n),
        })
        .collect();
    out.sort_by(|a, b| a.actor.cmp(&b.actor));
    out
}

fn ablation(model: &Model, rows: &[Row], labels: &[bool]) -> Vec<Ablation> {
    let means = &model.file().scaling.mean;
    let mut probe = Vec::new();
    model
        .schema()
        .names()
        .enumerate()
        .map(|(i, feature)| {
            let scores: Vec<f32> = rows
                .iter()
                .map(|r| {
                    probe.clear();
                    probe.extend_from_slice(&r.features);
                    if let (Some(p), Some(m)) = (probe.get_mut(i), means.get(i)) {
                        *p = *m;
                    }
                    model.logit(&probe)
                })
                .collect();
            Ablation {
                feature: feature.to_string(),
                auc_without: auc(&scores, labels),
            }
        })
        .collect()
}

impl Report {
    /// The report as text for a terminal.
    pub fn text(&self) -> String {
        let mut s = format!(
            "model {} ({}) on {} rows: {} bots, {} people\n\
             ROC-AUC {:.4}{}\n\
             at the thresholds (bot predicted = challenge or block): precision {:.4}, recall {:.4}, F1 {:.4}\n\
             people challenged or blocked: {:.2}% ({} of {})\n",
            self.model,
            self.schema,
            self.rows,
            self.bots,
            self.people,
            self.auc,
            self.rules_auc.map_or(String::new(), |r| format!(" (rules alone {r:.4})")),
            self.precision,
            self.recall,
            self.f1,
            100.0 * self.people_flagged_share,
            self.confusion.false_positives,
            self.people,
        );
        s.push_str("\n            allow  monitor  challenge    block\n");
        for (name, a) in [("people", self.people_actions), ("bots", self.bot_actions)] {
            s.push_str(&format!(
                "{name:<8} {:>8} {:>8} {:>10} {:>8}\n",
                a.allow, a.monitor, a.challenge, a.block
            ));
        }
        s.push_str("\ncalibration   rows  predicted  observed\n");
        for b in self.calibration.iter().filter(|b| b.rows > 0) {
            s.push_str(&format!(
                "{:>3}-{:<3} {:>10} {:>10.3} {:>9.3}\n",
                b.from, b.to, b.rows, b.mean_predicted, b.observed_bots
            ));
        }
        if !self.actors.is_empty() {
            s.push_str("\nactor                    rows  mean score  flagged\n");
            for a in &self.actors {
                s.push_str(&format!(
                    "{:<20} {:>8} {:>11.1} {:>7.1}%\n",
                    a.actor,
                    a.rows,
                    a.mean_score,
                    100.0 * a.flagged_share
                ));
            }
        }
        s.push_str("\nAUC with one feature at its mean\n");
        for a in &self.ablation {
            s.push_str(&format!("{:<20} {:.4}\n", a.feature, a.auc_without));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_inverted_tied_and_one_class_scores() {
        let labels = [false, false, true, true];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        assert_eq!(auc(&[0.5; 4], &labels), 0.5);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), 0.5);
        assert!((auc(&[0.1, 0.6, 0.5, 0.9], &labels) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn roc_runs_from_origin_to_one_one() {
        let pts = roc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true], 100);
        assert_eq!(pts.first(), Some(&(0.0, 0.0)));
        assert_eq!(pts.last(), Some(&(1.0, 1.0)));
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
