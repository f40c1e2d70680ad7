//! Model files and inference.
//!
//! A model file is JSON (`datasets/models/*.json`):
//!
//! ```json
//! {"format": "palisade-model", "version": 1, "kind": "mlp",
//!  "schema": {"name": "request-v1", "hash": "…", "features": ["rate_short", …]},
//!  "scaling": {"mean": […], "std": […]},
//!  "layers": [{"inputs": 17, "outputs": 64, "weights": […], "bias": […], "activation": "relu"}, …],
//!  "calibration": {"a": 1.0, "b": 0.0},
//!  "metadata": {…}}
//! ```
//!
//! Inputs are standardised with `scaling`, run through the layers (weights
//! row-major, `outputs × inputs`; batch norm already folded in), and the
//! last layer's single output is a logit. The score is
//! `100 × sigmoid(a × logit + b)`: Platt calibration fitted on held-out
//! data, so a score of 80 means about 80% of such clients were bots.
//!
//! Everything is checked at load time, so inference cannot fail: the
//! schema hash against the schema the host feeds, every shape, and every
//! number being finite.

use super::features::Schema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The `format` every model file names.
pub const FORMAT: &str = "palisade-model";
/// The file version this build reads.
pub const VERSION: u32 = 1;
/// The widest layer inference supports (its scratch space is on the stack).
pub const MAX_WIDTH: usize = 256;

/// A model file, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub format: String,
    pub version: u32,
    /// `mlp` or `logistic` (one layer).
    pub kind: String,
    pub schema: SchemaRef,
    pub scaling: Scaling,
    pub layers: Vec<Layer>,
    pub calibration: Calibration,
    /// Free-form: when and from what it was trained, its evaluation.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRef {
    pub name: String,
    pub hash: String,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub inputs: usize,
    pub outputs: usize,
    /// Row-major, `outputs × inputs`.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub activation: Activation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    /// The last layer: its output is the logit.
    Linear,
}

/// `score = 100 × sigmoid(a × logit + b)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub a: f32,
    pub b: f32,
}

impl Default for Calibration {
    fn default() -> Calibration {
        Calibration { a: 1.0, b: 0.0 }
    }
}

impl ModelFile {
    /// A model file for `schema` with `layers` (the last giving the logit),
    /// `scaling` and `calibration`; no metadata.
    pub fn new(
        schema: &Schema,
        kind: &str,
        scaling: Scaling,
        layers: Vec<Layer>,
        calibration: Calibration,
    ) -> ModelFile {
        ModelFile {
            format: FORMAT.to_string(),
            version: VERSION,
            kind: kind.to_string(),
            schema: SchemaRef {
                name: schema.name.to_string(),
                hash: schema.hash(),
                features: schema.names().map(String::from).collect(),
            },
            scaling,
            layers,
            calibration,
            metadata: serde_json::Map::new(),
        }
    }

    /// A logistic model on raw (unscaled) features: the logit is
    /// `weights · x + bias`. Hand-made models for tests and examples.
    pub fn logistic(schema: &Schema, weights: Vec<f32>, bias: f32) -> ModelFile {
        let n = schema.len();
        let scaling = Scaling {
            mean: vec![0.0; n],
            std: vec![1.0; n],
        };
        let layer = Layer {
            inputs: n,
            outputs: 1,
            weights,
            bias: vec![bias],
            activation: Activation::Linear,
        };
        ModelFile::new(
            schema,
            "logistic",
            scaling,
            vec![layer],
            Calibration::default(),
        )
    }
}

/// Why a model file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

fn refuse<T>(reason: impl Into<String>) -> Result<T, ModelError> {
    Err(ModelError(reason.into()))
}

/// A loaded, checked model.
#[derive(Debug, Clone)]
pub struct Model {
    file: ModelFile,
    schema: &'static Schema,
    /// `1 / std`, so scaling is a multiply.
    inv_std: Vec<f32>,
    /// Each layer's weights input-major (`inputs × outputs`), for [`dense`].
    columns: Vec<Vec<f32>>,
}

/// A feature's share in a score: how far the score (and its log-odds)
/// falls when the feature is replaced by its training mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Contribution {
    pub feature: &'static str,
    pub value: f32,
    /// Score points (positive: it made the client look more like a bot).
    pub points: f32,
    /// The same in log-odds (the calibrated logit), which still separates
    /// features when the score is saturated: +1 is e times the odds of a bot.
    pub evidence: f32,
}

impl Model {
    /// Parses and checks a model file for `schema`.
    pub fn from_json(text: &str, schema: &'static Schema) -> Result<Model, ModelError> {
        let file: ModelFile =
            serde_json::from_str(text).map_err(|e| ModelError(format!("not a model file: {e}")))?;
        Model::new(file, schema)
    }

    /// Checks a model for `schema`.
    pub fn new(file: ModelFile, schema: &'static Schema) -> Result<Model, ModelError> {
        if file.format != FORMAT {
            return refuse(format!(
                "`format` is {:?}, expected {FORMAT:?}",
                file.format
            ));
        }
        if file.version != VERSION {
            return refuse(format!(
                "model file version {} is not supported (this build reads version {VERSION})",
                file.version
            ));
        }
        if file.kind != "mlp" && file.kind != "logistic" {
            return refuse(format!(
                "`kind` is {:?}, expected \"mlp\" or \"logistic\"",
                file.kind
            ));
        }
        let expected = schema.hash();
        if file.schema.name != schema.name || file.schema.hash != expected {
            return refuse(format!(
                "the model was trained on schema {:?} (hash {}), but this host feeds {:?} (hash {expected}); \
                 retrain it with `palisade train --schema {}`",
                file.schema.name, file.schema.hash, schema.name, schema.name
            ));
        }
        let names: Vec<&str> = schema.names().collect();
        if file.schema.features != names {
            return refuse("the model's feature list does not match its schema hash");
        }
        let n = schema.len();
        if file.scaling.mean.len() != n || file.scaling.std.len() != n {
            return refuse(format!("`scaling` must have {n} means and {n} deviations"));
        }
        if file
            .scaling
            .std
            .iter()
            .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return refuse("every `scaling.std` must be a positive number");
        }
        let mut width = n;
        for (i, layer) in file.layers.iter().enumerate() {
            if layer.inputs != width {
                return refuse(format!(
                    "layers[{i}] takes {} inputs, but the layer before gives {width}",
                    layer.inputs
                ));
            }
            if layer.outputs == 0 || layer.outputs > MAX_WIDTH {
                return refuse(format!(
                    "layers[{i}] has {} outputs; 1 to {MAX_WIDTH} are supported",
                    layer.outputs
                ));
            }
            if layer.weights.len() != layer.inputs * layer.outputs
                || layer.bias.len() != layer.outputs
            {
                return refuse(format!(
                    "layers[{i}] needs {}×{} weights and {} biases",
                    layer.outputs, layer.inputs, layer.outputs
                ));
            }
            let last = i + 1 == file.layers.len();
            if last != (layer.activation == Activation::Linear) {
                return refuse(format!(
                    "layers[{i}]: hidden layers are `relu` and the last is `linear`"
                ));
            }
            width = layer.outputs;
        }
        if file.layers.is_empty() || width != 1 {
            return refuse("the last layer must have one output (the logit)");
        }
        let numbers = file
            .layers
            .iter()
            .flat_map(|l| l.weights.iter().chain(&l.bias))
            .chain(&file.scaling.mean)
            .chain([&file.calibration.a, &file.calibration.b]);
        if numbers.into_iter().any(|x| !x.is_finite()) {
            return refuse("the model holds a number that is not finite");
        }
        let inv_std = file.scaling.std.iter().map(|s| 1.0 / s).collect();
        let columns = file
            .layers
            .iter()
            .map(|l| {
                (0..l.inputs)
                    .flat_map(|i| (0..l.outputs).map(move |o| l.weights[o * l.inputs + i]))
                    .collect()
            })
            .collect();
        Ok(Model {
            file,
            schema,
            inv_std,
            columns,
        })
    }

    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    pub fn schema(&self) -> &'static Schema {
        self.schema
    }

    /// A short name for logs and answers: kind, schema, and the version
    /// recorded in the metadata when there is one.
    pub fn version(&self) -> String {
        match self.file.metadata.get("version").and_then(|v| v.as_str()) {
            Some(v) => v.to_string(),
            None => format!("{}-{}", self.file.kind, self.file.schema.name),
        }
    }

    /// The logit for `x` (in schema order; missing trailing values read as 0).
    pub fn logit(&self, x: &[f32]) -> f32 {
        let mut a = [0f32; MAX_WIDTH];
        let mut b = [0f32; MAX_WIDTH];
        for (i, ((out, mean), inv)) in a
            .iter_mut()
            .zip(&self.file.scaling.mean)
            .zip(&self.inv_std)
            .enumerate()
        {
            *out = (x.get(i).copied().unwrap_or(0.0) - mean) * inv;
        }
        let (mut input, mut output) = (&mut a, &mut b);
        for (layer, columns) in self.file.layers.iter().zip(&self.columns) {
            dense(layer, columns, input, output);
            std::mem::swap(&mut input, &mut output);
        }
        input[0]
    }

    /// The calibrated score, 0–100.
    pub fn score(&self, x: &[f32]) -> f32 {
        self.calibrate(self.logit(x))
    }

    fn calibrate(&self, logit: f32) -> f32 {
        let c = self.file.calibration;
        100.0 * sigmoid(c.a * logit + c.b)
    }

    /// The `k` features that moved the score most, largest first.
    pub fn top_features(&self, x: &[f32], k: usize) -> Vec<Contribution> {
        let logit = self.logit(x);
        let mut probe = [0f32; MAX_WIDTH];
        let n = self.schema.len();
        for (p, v) in probe.iter_mut().zip(x) {
            *p = *v;
        }
        let mut out: Vec<Contribution> = (0..n)
            .map(|i| {
                let value = x.get(i).copied().unwrap_or(0.0);
                probe[i] = self.file.scaling.mean[i];
                let without = self.logit(&probe[..n]);
                probe[i] = value;
                Contribution {
                    feature: self.schema.names().nth(i).unwrap_or(""),
                    value,
                    points: self.calibrate(logit) - self.calibrate(without),
                    evidence: self.file.calibration.a * (logit - without),
                }
            })
            .collect();
        // By evidence, not points: near 0 or 100 the score saturates and
        // no single feature moves it, but the logit still tells them apart.
        out.sort_by(|a, b| b.evidence.abs().total_cmp(&a.evidence.abs()));
        out.truncate(k);
        out
    }
}

/// One layer: `output = activation(W × input + bias)`, accumulated input
/// by input into all outputs at once: the inner loop runs over contiguous
/// outputs (64, 32, 16 wide in the shipped models), which the compiler
/// vectorises, and the inputs a ReLU zeroed are skipped.
fn dense(layer: &Layer, columns: &[f32], input: &[f32; MAX_WIDTH], output: &mut [f32; MAX_WIDTH]) {
    let out = &mut output[..layer.outputs];
    out.copy_from_slice(&layer.bias);
    for (x, column) in input[..layer.inputs]
        .iter()
        .zip(columns.chunks_exact(layer.outputs))
    {
        if *x == 0.0 {
            continue;
        }
        for (o, w) in out.iter_mut().zip(column) {
            *o += x * w;
        }
    }
    if layer.activation == Activation::Relu {
        for o in out {
            *o = o.max(0.0);
        }
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::features::ACCESS_LOG;

    /// A logistic model over the access-log schema that weighs only the
    /// user-agent feature.
    pub(crate) fn user_agent_model() -> ModelFile {
        let mut weights = vec![0.0; ACCESS_LOG.len()];
        let ua = ACCESS_LOG.names().position(|f| f == "user_agent").unwrap();
        weights[ua] = 4.0;
        ModelFile::logistic(&ACCESS_LOG, weights, -2.0)
    }

    #[test]
    fn a_model_file_round_trips_and_scores_as_written() {
        let file = user_agent_model();
        let text = serde_json::to_string(&file).unwrap();
        let model = Model::from_json(&text, &ACCESS_LOG).unwrap();
        assert_eq!(model.file(), &file);
        let mut x = vec![0.0; ACCESS_LOG.len()];
        assert!((model.score(&x) - 100.0 * sigmoid(-2.0)).abs() < 1e-4);
        let ua = ACCESS_LOG.names().position(|f| f == "user_agent").unwrap();
        x[ua] = 1.0;
        assert!((model.score(&x) - 100.0 * sigmoid(2.0)).abs() < 1e-4);
        let top = model.top_features(&x, 2);
        assert_eq!(top[0].feature, "user_agent");
        assert!(top[0].points > 70.0);
    }

    #[test]
    fn a_model_for_another_schema_is_refused_with_the_reason() {
        let text = serde_json::to_string(&user_agent_model()).unwrap();
        let err = Model::from_json(&text, &crate::scoring::features::REQUEST).unwrap_err();
        assert!(err.0.contains("trained on schema \"log-v1\""), "{err}");
        assert!(err.0.contains("request-v1"), "{err}");
    }

    #[test]
    fn bad_shapes_and_numbers_are_refused() {
        let mut f = user_agent_model();
        f.layers[0].weights.pop();
        assert!(Model::new(f, &ACCESS_LOG)
            .unwrap_err()
            .0
            .contains("weights"));
        let mut f = user_agent_model();
        f.scaling.std[0] = 0.0;
        assert!(Model::new(f, &ACCESS_LOG).unwrap_err().0.contains("std"));
        let mut f = user_agent_model();
        f.layers[0].bias[0] = f32::NAN;
        assert!(Model::new(f, &ACCESS_LOG).unwrap_err().0.contains("finite"));
        let mut f = user_agent_model();
        f.version = 2;
        assert!(Model::new(f, &ACCESS_LOG)
            .unwrap_err()
            .0
            .contains("version 2"));
        assert!(Model::from_json("{}", &ACCESS_LOG)
            .unwrap_err()
            .0
            .contains("not a model file"));
    }
}
