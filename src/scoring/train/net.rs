//! The trainable network: dense layers, each hidden one followed by batch
//! norm, ReLU and (in training only) inverted dropout; one logit out.
//! Batch-major plain loops: the networks are small (a few thousand
//! weights) and the data a few hundred thousand rows, so this trains in
//! seconds without a linear-algebra dependency.
//!
//! [`Net::export`] folds each batch norm's running statistics into the
//! dense layer before it, so the model file holds plain dense layers and
//! inference pays nothing for batch norm.

use super::adam::Adam;
use crate::scoring::model::{Activation, Layer};
use crate::scoring::simulate::rng::Rng;

const BN_EPS: f32 = 1e-5;
/// How fast batch norm's running statistics follow the batches.
const BN_MOMENTUM: f32 = 0.1;
/// AdamW's decoupled weight decay on the dense weights.
const WEIGHT_DECAY: f32 = 1e-4;

#[derive(Debug, Clone)]
struct Dense {
    inputs: usize,
    outputs: usize,
    /// Row-major, `outputs × inputs`, as in the model file.
    w: Vec<f32>,
    b: Vec<f32>,
    gw: Vec<f32>,
    gb: Vec<f32>,
    aw: Adam,
    ab: Adam,
}

impl Dense {
    /// He initialisation (for the ReLU that follows).
    fn new(inputs: usize, outputs: usize, rng: &mut Rng) -> Dense {
        let scale = (2.0 / inputs as f64).sqrt();
        Dense {
            inputs,
            outputs,
            w: (0..inputs * outputs)
                .map(|_| (rng.normal() * scale) as f32)
                .collect(),
            b: vec![0.0; outputs],
            gw: vec![0.0; inputs * outputs],
            gb: vec![0.0; outputs],
            aw: Adam::new(inputs * outputs),
            ab: Adam::new(outputs),
        }
    }

    /// `out = x Wᵀ + b` for a batch of `n` rows.
    fn forward(&self, x: &[f32], n: usize, out: &mut Vec<f32>) {
        out.clear();
        out.resize(n * self.outputs, 0.0);
        for (xi, oi) in x
            .chunks_exact(self.inputs)
            .zip(out.chunks_exact_mut(self.outputs))
        {
            for ((o, row), b) in oi
                .iter_mut()
                .zip(self.w.chunks_exact(self.inputs))
                .zip(&self.b)
            {
                *o = b + row.iter().zip(xi).map(|(w, x)| w * x).sum::<f32>();
            }
        }
    }

    /// Accumulates the gradients for upstream gradient `dz` and returns
    /// the gradient with respect to `x`.
    fn backward(&mut self, x: &[f32], dz: &[f32], dx: &mut Vec<f32>) {
        self.gw.iter_mut().for_each(|g| *g = 0.0);
        self.gb.iter_mut().for_each(|g| *g = 0.0);
        dx.clear();
        dx.resize(x.len(), 0.0);
        for ((xi, di), dxi) in x
            .chunks_exact(self.inputs)
            .zip(dz.chunks_exact(self.outputs))
            .zip(dx.chunks_exact_mut(self.inputs))
        {
            for (j, &d) in di.iter().enumerate() {
                if d == 0.0 {
                    continue;
                }
                self.gb[j] += d;
                let row = j * self.inputs;
                for k in 0..self.inputs {
                    self.gw[row + k] += d * xi[k];
                    dxi[k] += d * self.w[row + k];
                }
            }
        }
    }

    fn step(&mut self, lr: f32, t: i32) {
        self.aw.step(&mut self.w, &self.gw, lr, WEIGHT_DECAY, t);
        self.ab.step(&mut self.b, &self.gb, lr, 0.0, t);
    }
}

/// Batch norm over one hidden layer's outputs, with what the backward
/// pass needs from the forward one.
#[derive(Debug, Clone)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    ag: Adam,
    ab: Adam,
    /// Forward cache: normalised pre-activations, `1/σ` per unit, the
    /// post-BN values (for ReLU's mask) and the dropout mask.
    zhat: Vec<f32>,
    inv_std: Vec<f32>,
    y: Vec<f32>,
    mask: Vec<f32>,
}

impl Norm {
    fn new(width: usize) -> Norm {
        Norm {
            gamma: vec![1.0; width],
            beta: vec![0.0; width],
            running_mean: vec![0.0; width],
            running_var: vec![1.0; width],
            ag: Adam::new(width),
            ab: Adam::new(width),
            zhat: Vec::new(),
            inv_std: vec![0.0; width],
            y: Vec::new(),
            mask: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Hidden {
    dense: Dense,
    norm: Norm,
    /// This layer's input in the last forward pass.
    input: Vec<f32>,
}

/// The network.
#[derive(Debug, Clone)]
pub struct Net {
    hidden: Vec<Hidden>,
    out: Dense,
    out_input: Vec<f32>,
    dropout: f32,
    steps: i32,
}

impl Net {
    /// `inputs → hidden… → 1`; no hidden layers is logistic regression.
    pub fn new(inputs: usize, hidden: &[usize], dropout: f32, rng: &mut Rng) -> Net {
        let mut width = inputs;
        let hidden = hidden
            .iter()
            .map(|&h| {
                let layer = Hidden {
                    dense: Dense::new(width, h, rng),
                    norm: Norm::new(h),
                    input: Vec::new(),
                };
                width = h;
                layer
            })
            .collect();
        let mut out = Dense::new(width, 1, rng);
        // A small last layer starts every logit near 0 (p ≈ 0.5).
        out.w.iter_mut().for_each(|w| *w *= 0.1);
        Net {
            hidden,
            out,
            out_input: Vec::new(),
            dropout,
            steps: 0,
        }
    }

    /// Logits for `n` rows. `train` uses batch statistics, updates the
    /// running ones and drops units; otherwise the running statistics are
    /// used and nothing is dropped (what the exported model computes).
    pub fn forward(&mut self, x: &[f32], n: usize, train: bool, rng: &mut Rng) -> Vec<f32> {
        let mut a = x.to_vec();
        let mut z = Vec::new();
        let keep = 1.0 - self.dropout;
        for layer in &mut self.hidden {
            layer.dense.forward(&a, n, &mut z);
            let width = layer.dense.outputs;
            let norm = &mut layer.norm;
            let (mean, var) = if train {
                let mut mean = vec![0.0f32; width];
                let mut var = vec![0.0f32; width];
                for row in z.chunks_exact(width) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                }
                mean.iter_mut().for_each(|m| *m /= n as f32);
                for row in z.chunks_exact(width) {
                    for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                        *s += (v - m) * (v - m);
                    }
                }
                var.iter_mut().for_each(|s| *s /= n as f32);
                for j in 0..width {
                    norm.running_mean[j] += BN_MOMENTUM * (mean[j] - norm.running_mean[j]);
                    norm.running_var[j] += BN_MOMENTUM * (var[j] - norm.running_var[j]);
                }
                (mean, var)
            } else {
                (norm.running_mean.clone(), norm.running_var.clone())
            };
            for (inv, v) in norm.inv_std.iter_mut().zip(&var) {
                *inv = 1.0 / (v + BN_EPS).sqrt();
            }
            norm.zhat.clear();
            norm.y.clear();
            norm.mask.clear();
            layer.input = std::mem::take(&mut a);
            a.reserve(z.len());
            for row in z.chunks_exact(width) {
                for j in 0..width {
                    let zhat = (row[j] - mean[j]) * norm.inv_std[j];
                    let y = norm.gamma[j] * zhat + norm.beta[j];
                    let m = if train && self.dropout > 0.0 {
                        if rng.chance(f64::from(self.dropout)) {
                            0.0
                        } else {
                            1.0 / keep
                        }
                    } else {
                        1.0
                    };
                    norm.zhat.push(zhat);
                    norm.y.push(y);
                    norm.mask.push(m);
                    a.push(y.max(0.0) * m);
                }
            }
        }
        self.out.forward(&a, n, &mut z);
        self.out_input = a;
        z
    }

    /// Backpropagates `dlogit` (the loss gradient per row, from the last
    /// training [`Net::forward`]) and takes one Adam step.
    pub fn backward(&mut self, dlogit: &[f32], lr: f32) {
        self.steps += 1;
        let t = self.steps;
        let mut dx = Vec::new();
        let input = std::mem::take(&mut self.out_input);
        self.out.backward(&input, dlogit, &mut dx);
        self.out.step(lr, t);
        let n = dlogit.len();
        for layer in self.hidden.iter_mut().rev() {
            let width = layer.dense.outputs;
            let norm = &mut layer.norm;
            // Through dropout and ReLU.
            let dy: Vec<f32> = dx
                .iter()
                .zip(&norm.mask)
                .zip(&norm.y)
                .map(|((d, m), y)| if *y > 0.0 { d * m } else { 0.0 })
                .collect();
            // Through batch norm.
            let mut dgamma = vec![0.0f32; width];
            let mut dbeta = vec![0.0f32; width];
            let mut sum_dzhat = vec![0.0f32; width];
            let mut sum_dzhat_zhat = vec![0.0f32; width];
            for (row, zrow) in dy.chunks_exact(width).zip(norm.zhat.chunks_exact(width)) {
                for j in 0..width {
                    dgamma[j] += row[j] * zrow[j];
                    dbeta[j] += row[j];
                    let dzhat = row[j] * norm.gamma[j];
                    sum_dzhat[j] += dzhat;
                    sum_dzhat_zhat[j] += dzhat * zrow[j];
                }
            }
            let nf = n as f32;
            let mut dz = vec![0.0f32; dy.len()];
            for ((drow, zrow), out) in dy
                .chunks_exact(width)
                .zip(norm.zhat.chunks_exact(width))
                .zip(dz.chunks_exact_mut(width))
            {
                for j in 0..width {
                    let dzhat = drow[j] * norm.gamma[j];
                    out[j] = norm.inv_std[j] / nf
                        * (nf * dzhat - sum_dzhat[j] - zrow[j] * sum_dzhat_zhat[j]);
                }
            }
            norm.ag.step(&mut norm.gamma, &dgamma, lr, 0.0, t);
            norm.ab.step(&mut norm.beta, &dbeta, lr, 0.0, t);
            let input = std::mem::take(&mut layer.input);
            layer.dense.backward(&input, &dz, &mut dx);
            layer.dense.step(lr, t);
        }
    }

    /// The network as model-file layers, batch norm folded in:
    /// `γ (Wx + b − μ) / σ + β = (γ/σ · W) x + (γ/σ · (b − μ) + β)`.
    pub fn export(&self) -> Vec<Layer> {
        let mut layers: Vec<Layer> = self
            .hidden
            .iter()
            .map(|h| {
                let d = &h.dense;
                let norm = &h.norm;
                let mut weights = d.w.clone();
                let mut bias = d.b.clone();
                for j in 0..d.outputs {
                    let s = norm.gamma[j] / (norm.running_var[j] + BN_EPS).sqrt();
                    weights[j * d.inputs..(j + 1) * d.inputs]
                        .iter_mut()
                        .for_each(|w| *w *= s);
                    bias[j] = s * (bias[j] - norm.running_mean[j]) + norm.beta[j];
                }
                Layer {
                    inputs: d.inputs,
                    outputs: d.outputs,
                    weights,
                    bias,
                    activation: Activation::Relu,
                }
            })
            .collect();
        layers.push(Layer {
            inputs: self.out.inputs,
            outputs: 1,
            weights: self.out.w.clone(),
            bias: self.out.b.clone(),
            activation: Activation::Linear,
        });
        layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numerical gradient check of one weight through batch norm, ReLU and
    /// the output layer (no dropout), on loss = Σ logit².
    #[test]
    fn backward_matches_a_numerical_gradient() {
        let mut rng = Rng::new(5);
        let n = 8;
        let x: Vec<f32> = (0..n * 3).map(|_| rng.normal() as f32).collect();
        let net = Net::new(3, &[4], 0.0, &mut rng);
        let loss = |net: &Net| {
            let mut net = net.clone();
            let z = net.forward(&x, n, true, &mut Rng::new(1));
            z.iter().map(|z| z * z).sum::<f32>()
        };
        // The hidden layer's gradient as backward computes it (a zero
        // learning rate leaves the weights as they are).
        let mut stepped = net.clone();
        let z = stepped.forward(&x, n, true, &mut Rng::new(1));
        let dlogit: Vec<f32> = z.iter().map(|z| 2.0 * z).collect();
        stepped.backward(&dlogit, 0.0);
        let analytic = stepped.hidden[0].dense.gw[5];
        let mut plus = net.clone();
        plus.hidden[0].dense.w[5] += 1e-3;
        let mut minus = net.clone();
        minus.hidden[0].dense.w[5] -= 1e-3;
        let numeric = (loss(&plus) - loss(&minus)) / 2e-3;
        assert!(
            (analytic - numeric).abs() < 1e-2 * (1.0 + numeric.abs()),
            "{analytic} vs {numeric}"
        );
    }

    #[test]
    fn the_exported_layers_compute_what_inference_mode_does() {
        let mut rng = Rng::new(2);
        let n = 16;
        let x: Vec<f32> = (0..n * 3).map(|_| rng.normal() as f32).collect();
        let mut net = Net::new(3, &[5, 4], 0.0, &mut rng);
        for _ in 0..20 {
            let z = net.forward(&x, n, true, &mut rng);
            net.backward(&z, 0.01);
        }
        let expected = net.forward(&x, n, false, &mut rng);
        let layers = net.export();
        for (row, want) in x.chunks_exact(3).zip(expected) {
            let mut a = row.to_vec();
            for l in &layers {
                a = l
                    .weights
                    .chunks_exact(l.inputs)
                    .zip(&l.bias)
                    .map(|(w, b)| {
                        let s = b + w.iter().zip(&a).map(|(w, x)| w * x).sum::<f32>();
                        if l.activation == Activation::Relu {
                            s.max(0.0)
                        } else {
                            s
                        }
                    })
                    .collect();
            }
            assert!((a[0] - want).abs() < 1e-4, "{} vs {want}", a[0]);
        }
    }
}
