//! Adam, with decoupled weight decay (AdamW): a per-parameter step size
//! from running averages of the gradient and its square, which trains the
//! small networks here without tuning a schedule.

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// The optimiser state for one parameter tensor.
#[derive(Debug, Clone)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    pub fn new(len: usize) -> Adam {
        Adam {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    /// One step on `params` with gradient `grad`; `t` counts steps from 1.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32, decay: f32, t: i32) {
        let c1 = 1.0 - BETA1.powi(t);
        let c2 = 1.0 - BETA2.powi(t);
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *p -= lr * ((*m / c1) / ((*v / c2).sqrt() + EPS) + decay * *p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_finds_the_minimum_of_a_quadratic() {
        let mut x = [5.0f32, -3.0];
        let mut adam = Adam::new(2);
        for t in 1..=2000 {
            let grad = [2.0 * (x[0] - 1.0), 2.0 * (x[1] + 2.0)];
            adam.step(&mut x, &grad, 0.05, 0.0, t);
        }
        assert!(
            (x[0] - 1.0).abs() < 1e-2 && (x[1] + 2.0).abs() < 1e-2,
            "{x:?}"
        );
    }
}
