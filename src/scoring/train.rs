//! Training: labelled feature rows in, a model file out. The library API
//! behind `palisade train` and the companion's guarded `/train`.
//!
//! - Inputs are standardised with the training split's mean and standard
//!   deviation (floored, so a constant feature does not divide by zero);
//!   the scaling goes into the model file.
//! - An MLP (`inputs → 64 → 32 → 16 → 1` by default, ReLU, batch norm and
//!   dropout in training; see [`net`]) or logistic regression (no hidden
//!   layer) is fitted with Adam on weighted binary cross-entropy.
//! - The classes are weighted to equal total weight, whatever their
//!   counts: simulated and real traffic have far more bot rows than
//!   people rows, and the thresholds should not move with that mix.
//! - The epoch with the lowest validation loss is kept, and Platt
//!   calibration is fitted on the validation split (see [`platt`]).

mod adam;
mod net;
mod platt;

use super::eval;
use super::features::Schema;
use super::model::{ModelFile, Scaling};
use super::simulate::rng::Rng;
use net::Net;
use serde_json::json;
use std::fmt;

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// In the schema's order.
    pub features: Vec<f32>,
    /// `true` for a bot.
    pub label: bool,
    /// Relative weight (before class balancing); must be positive.
    pub weight: f32,
}

/// Which model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Mlp,
    Logistic,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Logistic => "logistic",
        }
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub kind: ModelKind,
    /// Hidden layer widths (MLP only).
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    /// Share of hidden units dropped in training (MLP only).
    pub dropout: f32,
    pub seed: u64,
    /// Share of the examples held out for early stopping and calibration.
    pub validation_share: f32,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            kind: ModelKind::Mlp,
            hidden: vec![64, 32, 16],
            epochs: 20,
            batch_size: 256,
            learning_rate: 2e-3,
            dropout: 0.1,
            seed: 1,
            validation_share: 0.2,
        }
    }
}

/// Why training refused to start or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainError {
    /// Too few examples to split into training and validation.
    TooFewExamples(usize),
    /// Only one class in the training or validation split.
    OneClass { bots: usize, people: usize },
    /// Example `index` has the wrong number of features.
    WrongLength {
        index: usize,
        got: usize,
        expected: usize,
    },
    /// Example `index` has a feature or weight that is not a finite number
    /// (or a weight that is not positive).
    NotFinite { index: usize },
    /// An option is out of range.
    BadOption(String),
    /// The loss stopped being a number (a learning rate far too high).
    Diverged { epoch: usize },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::TooFewExamples(n) => write!(f, "{n} examples are too few to train on (at least 10 are needed)"),
            TrainError::OneClass { bots, people } => write!(
                f,
                "training needs both bots and people in the training and validation splits (got {bots} bots, {people} people)"
            ),
            TrainError::WrongLength { index, got, expected } => {
                write!(f, "example {index} has {got} features, the schema has {expected}")
            }
            TrainError::NotFinite { index } => {
                write!(f, "example {index} has a feature or weight that is not a finite positive number")
            }
            TrainError::BadOption(reason) => f.write_str(reason),
            TrainError::Diverged { epoch } => {
                write!(f, "the loss diverged in epoch {epoch}; lower the learning rate")
            }
        }
    }
}

impl std::error::Error for TrainError {}

/// Standard deviations below this are taken as this: a (nearly) constant
/// feature must not blow up when it varies a little in other traffic.
const STD_FLOOR: f32 = 1e-3;

fn check(examples: &[Example], schema: &Schema, o: &TrainOptions) -> Result<(), TrainError> {
    let bad = |s: &str| Err(TrainError::BadOption(s.to_string()));
    if o.epochs == 0 || o.batch_size == 0 {
        return bad("epochs and batch_size must be at least 1");
    }
    if !(o.learning_rate > 0.0 && o.learning_rate.is_finite()) {
        return bad("learning_rate must be a positive number");
    }
    if !(0.0..0.9).contains(&o.dropout) {
        return bad("dropout must be in [0, 0.9)");
    }
    if !(o.validation_share > 0.0 && o.validation_share < 0.9) {
        return bad("validation_share must be in (0, 0.9)");
    }
    if o.kind == ModelKind::Mlp
        && (o.hidden.is_empty()
            || o.hidden
                .iter()
                .any(|&h| h == 0 || h > super::model::MAX_WIDTH))
    {
        return Err(TrainError::BadOption(format!(
            "an MLP needs hidden layer widths from 1 to {}",
            super::model::MAX_WIDTH
        )));
    }
    if examples.len() < 10 {
        return Err(TrainError::TooFewExamples(examples.len()));
    }
    for (index, e) in examples.iter().enumerate() {
        if e.features.len() != schema.len() {
            return Err(TrainError::WrongLength {
                index,
                got: e.features.len(),
                expected: schema.len(),
            });
        }
        if !(e.weight.is_finite() && e.weight > 0.0) || e.features.iter().any(|x| !x.is_finite()) {
            return Err(TrainError::NotFinite { index });
        }
    }
    Ok(())
}

/// A split of the examples: standardised features (row-major), labels,
/// class-balanced weights.
struct Split {
    x: Vec<f32>,
    y: Vec<bool>,
    w: Vec<f32>,
}

impl Split {
    fn new(examples: &[&Example], scaling: &Scaling) -> Result<Split, TrainError> {
        let (bots, people) = examples.iter().fold((0.0f64, 0.0f64), |(b, p), e| {
            if e.label {
                (b + f64::from(e.weight), p)
            } else {
                (b, p + f64::from(e.weight))
            }
        });
        if bots == 0.0 || people == 0.0 {
            return Err(TrainError::OneClass {
                bots: examples.iter().filter(|e| e.label).count(),
                people: examples.iter().filter(|e| !e.label).count(),
            });
        }
        let half = examples.len() as f64 / 2.0;
        let mut x = Vec::with_capacity(examples.len() * scaling.mean.len());
        for e in examples {
            x.extend(
                e.features
                    .iter()
                    .zip(&scaling.mean)
                    .zip(&scaling.std)
                    .map(|((v, m), s)| (v - m) / s),
            );
        }
        Ok(Split {
            x,
            y: examples.iter().map(|e| e.label).collect(),
            w: examples
                .iter()
                .map(|e| (f64::from(e.weight) * half / if e.label { bots } else { people }) as f32)
                .collect(),
        })
    }

    fn len(&self) -> usize {
        self.y.len()
    }
}

fn scaling(examples: &[&Example], n: usize) -> Scaling {
    let count = examples.len().max(1) as f64;
    let mut mean = vec![0f64; n];
    for e in examples {
        mean.iter_mut()
            .zip(&e.features)
            .for_each(|(m, v)| *m += f64::from(*v));
    }
    mean.iter_mut().for_each(|m| *m /= count);
    let mut var = vec![0f64; n];
    for e in examples {
        for ((s, v), m) in var.iter_mut().zip(&e.features).zip(&mean) {
            *s += (f64::from(*v) - m).powi(2);
        }
    }
    Scaling {
        mean: mean.iter().map(|m| *m as f32).collect(),
        std: var
            .iter()
            .map(|s| ((s / count).sqrt() as f32).max(STD_FLOOR))
            .collect(),
    }
}

/// Weighted binary cross-entropy of logits, per unit weight.
fn loss(logits: &[f32], split: &Split) -> f64 {
    let mut total = 0.0f64;
    let mut weight = 0.0f64;
    for ((z, y), w) in logits.iter().zip(&split.y).zip(&split.w) {
        let z = f64::from(*z);
        // softplus(z) − y·z, computed stably.
        let l = z.max(0.0) + (-z.abs()).exp().ln_1p() - if *y { z } else { 0.0 };
        total += f64::from(*w) * l;
        weight += f64::from(*w);
    }
    total / weight.max(f64::MIN_POSITIVE)
}

/// Trains a model for `schema` on `examples`.
pub fn train(
    examples: &[Example],
    schema: &'static Schema,
    options: &TrainOptions,
) -> Result<ModelFile, TrainError> {
    check(examples, schema, options)?;
    let mut rng = Rng::new(options.seed);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    shuffle(&mut order, &mut rng);
    let n_val = ((examples.len() as f32 * options.validation_share).round() as usize)
        .clamp(1, examples.len() - 1);
    let (val_idx, train_idx) = order.split_at(n_val);
    let train_ex: Vec<&Example> = train_idx.iter().map(|&i| &examples[i]).collect();
    let val_ex: Vec<&Example> = val_idx.iter().map(|&i| &examples[i]).collect();
    let scaling = scaling(&train_ex, schema.len());
    let train_set = Split::new(&train_ex, &scaling)?;
    let val_set = Split::new(&val_ex, &scaling)?;

    let (hidden, dropout) = match options.kind {
        ModelKind::Mlp => (options.hidden.clone(), options.dropout),
        ModelKind::Logistic => (Vec::new(), 0.0),
    };
    let width = schema.len();
    let mut net = Net::new(width, &hidden, dropout, &mut rng);
    let mut best: Option<(f64, Net)> = None;
    let mut batch_order: Vec<usize> = (0..train_set.len()).collect();
    let mut xb = Vec::with_capacity(options.batch_size * width);
    for epoch in 1..=options.epochs {
        shuffle(&mut batch_order, &mut rng);
        for batch in batch_order.chunks(options.batch_size) {
            // Batch norm needs two rows to have a variance.
            if batch.len() < 2 {
                continue;
            }
            xb.clear();
            for &i in batch {
                xb.extend_from_slice(&train_set.x[i * width..(i + 1) * width]);
            }
            let logits = net.forward(&xb, batch.len(), true, &mut rng);
            let total: f32 = batch.iter().map(|&i| train_set.w[i]).sum();
            let dlogit: Vec<f32> = logits
                .iter()
                .zip(batch)
                .map(|(z, &i)| {
                    let y = if train_set.y[i] { 1.0 } else { 0.0 };
                    train_set.w[i] * (super::model::sigmoid(*z) - y) / total
                })
                .collect();
            net.backward(&dlogit, options.learning_rate);
        }
        let logits = net.forward(&val_set.x, val_set.len(), false, &mut rng);
        let val_loss = loss(&logits, &val_set);
        if !val_loss.is_finite() {
            return Err(TrainError::Diverged { epoch });
        }
        if best.as_ref().is_none_or(|(l, _)| val_loss < *l) {
            best = Some((val_loss, net.clone()));
        }
    }
    let (val_loss, mut net) = best.ok_or(TrainError::Diverged { epoch: 0 })?;
    let logits = net.forward(&val_set.x, val_set.len(), false, &mut rng);
    let points: Vec<(f32, bool, f32)> = logits
        .iter()
        .zip(&val_set.y)
        .zip(&val_set.w)
        .map(|((z, y), w)| (*z, *y, *w))
        .collect();
    let calibration = platt::fit(&points);
    let validation_auc = eval::auc(&logits, &val_set.y);
    let trained_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let kind = options.kind.as_str();
    let metadata = json!({
        "version": format!("{kind}-{}-{trained_at}", schema.name),
        "trained_at": trained_at,
        "examples": examples.len(),
        "training_examples": train_set.len(),
        "validation_examples": val_set.len(),
        "seed": options.seed,
        "hidden": hidden,
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "dropout": dropout,
        "validation_loss": val_loss,
        "validation_auc": validation_auc,
    });
    let mut file = ModelFile::new(schema, kind, scaling, net.export(), calibration);
    if let serde_json::Value::Object(map) = metadata {
        file.metadata = map;
    }
    Ok(file)
}

/// Fisher–Yates with the trainer's seeded generator.
fn shuffle(items: &mut [usize], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.int(0, i as u64) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::features::ACCESS_LOG;
    use crate::scoring::model::Model;

    /// Bots have a high first feature, people a low one, with noise.
    fn examples(n: usize) -> Vec<Example> {
        let mut rng = Rng::new(9);
        (0..n)
            .map(|i| {
                let label = i % 3 == 0;
                let mut features: Vec<f32> =
                    (0..ACCESS_LOG.len()).map(|_| rng.unit() as f32).collect();
                features[0] = if label { 0.7 } else { 0.3 } + 0.1 * rng.normal() as f32;
                Example {
                    features,
                    label,
                    weight: 1.0,
                }
            })
            .collect()
    }

    #[test]
    fn both_kinds_learn_a_separable_signal_and_load_back() {
        let data = examples(600);
        for kind in [ModelKind::Mlp, ModelKind::Logistic] {
            let options = TrainOptions {
                kind,
                hidden: vec![8, 4],
                epochs: 20,
                batch_size: 32,
                ..TrainOptions::default()
            };
            let file = train(&data, &ACCESS_LOG, &options).unwrap();
            let auc = file.metadata["validation_auc"].as_f64().unwrap();
            assert!(auc > 0.95, "{kind:?}: {auc}");
            let model = Model::new(file, &ACCESS_LOG).unwrap();
            let mut bot = vec![0.5; ACCESS_LOG.len()];
            bot[0] = 0.9;
            let mut person = bot.clone();
            person[0] = 0.1;
            assert!(
                model.score(&bot) > 70.0 && model.score(&person) < 30.0,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        let mut data = examples(50);
        data[7].features.pop();
        let err = train(&data, &ACCESS_LOG, &TrainOptions::default()).unwrap_err();
        assert_eq!(
            err,
            TrainError::WrongLength {
                index: 7,
                got: 13,
                expected: 14
            }
        );
        let mut data = examples(50);
        data[3].weight = f32::NAN;
        assert_eq!(
            train(&data, &ACCESS_LOG, &TrainOptions::default()).unwrap_err(),
            TrainError::NotFinite { index: 3 }
        );
        let people: Vec<Example> = examples(50).into_iter().filter(|e| !e.label).collect();
        assert!(matches!(
            train(&people, &ACCESS_LOG, &TrainOptions::default()),
            Err(TrainError::OneClass { .. })
        ));
        assert_eq!(
            train(&examples(5), &ACCESS_LOG, &TrainOptions::default()).unwrap_err(),
            TrainError::TooFewExamples(5)
        );
        let options = TrainOptions {
            hidden: vec![],
            ..TrainOptions::default()
        };
        assert!(train(&examples(50), &ACCESS_LOG, &options)
            .unwrap_err()
            .to_string()
            .contains("hidden"));
    }
}
