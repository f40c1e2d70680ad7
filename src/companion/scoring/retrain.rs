//! `POST /train`: one guarded retrain at a time, in the background, and
//! the last one's status for `GET /train`.
//!
//! A retrain reads the shipped training base and the frozen held-out set
//! (`scoring.training.base`, `.holdout`), the labels of the last
//! `records.labels_retention`, trains a candidate of the served model's
//! kind on the base plus the capped labels ([`super::guard`]), and judges
//! it against the served model on the held-out set. Every candidate is
//! kept as a checkpoint: `rejected`, or `shadow` until promoted.

use super::guard::{judge, training_set, Standing};
use super::records::Label;
use crate::config::{Thresholds, TrainingConfig};
use crate::scoring::rows::Row;
use crate::scoring::train::{train, ModelKind, TrainOptions};
use crate::scoring::{Model, ModelFile, REQUEST};
use serde_json::{json, Value};
use std::sync::Mutex;

/// What came of a retrain.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Fewer labels than `training.min_labels`: nothing trained.
    TooFewLabels,
    /// Training or its inputs failed.
    Failed,
    /// Worse on the held-out set.
    Rejected,
    /// Not worse: it goes into shadow mode.
    Passed,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::TooFewLabels => "too_few_labels",
            Verdict::Failed => "failed",
            Verdict::Rejected => "rejected",
            Verdict::Passed => "shadow",
        }
    }
}

/// A retrain's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reason: String,
    pub candidate: Option<ModelFile>,
    /// Both models' standing on the held-out set, and the labels used.
    pub evaluation: Value,
}

/// What a retrain works from.
pub struct Inputs<'a> {
    pub current: &'a Model,
    pub base: &'a [Row],
    pub holdout: &'a [Row],
    /// Newest first.
    pub labels: &'a [Label],
    pub config: &'a TrainingConfig,
    pub per_client: u32,
    pub thresholds: Thresholds,
    /// The candidate's version (metadata `version`).
    pub version: String,
}

fn failed(reason: String, evaluation: Value) -> Outcome {
    Outcome {
        verdict: Verdict::Failed,
        reason,
        candidate: None,
        evaluation,
    }
}

/// Trains and judges a candidate (see the module doc). Takes seconds.
pub fn retrain(inputs: &Inputs) -> Outcome {
    let set = training_set(
        inputs.base,
        inputs.labels,
        inputs.per_client,
        inputs.config.max_label_share,
        REQUEST.len(),
    );
    let mut evaluation = json!({
        "labels": inputs.labels.len(),
        "labels_used": set.labels_used,
        "labels_left_out": set.labels_left_out,
        "label_scale": {"bot": set.scale[0], "human": set.scale[1]},
        "base_rows": inputs.base.len(),
        "holdout_rows": inputs.holdout.len(),
    });
    if (set.labels_used as u64) < u64::from(inputs.config.min_labels) {
        return Outcome {
            verdict: Verdict::TooFewLabels,
            reason: format!(
                "{} usable labels; training.min_labels is {}",
                set.labels_used, inputs.config.min_labels
            ),
            candidate: None,
            evaluation,
        };
    }
    let kind = if inputs.current.file().kind == "logistic" {
        ModelKind::Logistic
    } else {
        ModelKind::Mlp
    };
    let options = TrainOptions {
        kind,
        ..TrainOptions::default()
    };
    let mut file = match train(&set.examples, &REQUEST, &options) {
        Ok(f) => f,
        Err(e) => return failed(format!("training failed: {e}"), evaluation),
    };
    file.metadata
        .insert("version".into(), inputs.version.clone().into());
    file.metadata
        .insert("trained_from".into(), inputs.current.version().into());
    let candidate = match Model::new(file.clone(), &REQUEST) {
        Ok(m) => m,
        Err(e) => return failed(format!("the trained model is refused: {e}"), evaluation),
    };
    let current = Standing::of(inputs.current, inputs.holdout, inputs.thresholds);
    let new = Standing::of(&candidate, inputs.holdout, inputs.thresholds);
    evaluation["current"] = current.to_json();
    evaluation["candidate"] = new.to_json();
    let (verdict, reason) = match judge(&new, &current, inputs.config) {
        Ok(()) => (
            Verdict::Passed,
            "not worse on the held-out set: in shadow mode".to_string(),
        ),
        Err(reason) => (Verdict::Rejected, reason),
    };
    Outcome {
        verdict,
        reason,
        candidate: Some(file),
        evaluation,
    }
}

/// The last retrain, for `GET /train`.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub started: u64,
    pub finished: Option<u64>,
    /// `running`, or the [`Verdict`]'s name.
    pub status: &'static str,
    pub reason: Option<String>,
    pub checkpoint: Option<i64>,
    pub evaluation: Value,
}

impl Job {
    pub fn to_json(&self) -> Value {
        json!({
            "job": self.id,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "reason": self.reason,
            "checkpoint": self.checkpoint,
            "evaluation": self.evaluation,
        })
    }
}

/// One retrain at a time, and the last one's status.
#[derive(Default)]
pub struct Jobs {
    last: Mutex<Option<Job>>,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Job>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a job at `now_s`; `Err` with the running one's id if any.
    pub fn start(&self, now_s: u64) -> Result<u64, u64> {
        let mut last = self.lock();
        if let Some(job) = last.as_ref().filter(|j| j.finished.is_none()) {
            return Err(job.id);
        }
        let id = last.as_ref().map_or(1, |j| j.id + 1);
        *last = Some(Job {
            id,
            started: now_s,
            finished: None,
            status: "running",
            reason: None,
            checkpoint: None,
            evaluation: Value::Null,
        });
        Ok(id)
    }

    /// Records job `id`'s end.
    pub fn finish(&self, id: u64, now_s: u64, outcome: &Outcome, checkpoint: Option<i64>) {
        if let Some(job) = self.lock().as_mut().filter(|j| j.id == id) {
            job.finished = Some(now_s);
            job.status = outcome.verdict.as_str();
            job.reason = Some(outcome.reason.clone());
            job.checkpoint = checkpoint;
            job.evaluation = outcome.evaluation.clone();
        }
    }

    pub fn last(&self) -> Option<Job> {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_job_runs_at_a_time() {
        let jobs = Jobs::default();
        assert_eq!(jobs.start(1), Ok(1));
        assert_eq!(jobs.start(2), Err(1));
        let outcome = Outcome {
            verdict: Verdict::TooFewLabels,
            reason: "none".into(),
            candidate: None,
            evaluation: Value::Null,
        };
        jobs.finish(1, 3, &outcome, None);
        let last = jobs.last().unwrap();
        assert_eq!((last.status, last.finished), ("too_few_labels", Some(3)));
        assert_eq!(jobs.start(4), Ok(2));
    }
}
