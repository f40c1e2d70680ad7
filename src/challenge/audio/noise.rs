//! Coloured background noise: a random colour per challenge, shaped like
//! speech's band, with a slow swell, so neither a fixed filter nor spectral
//! subtraction of a steady noise floor removes it.

use rand::Rng;
use std::f32::consts::PI;

/// `len` samples at `rate` Hz of band noise, scaled to unit RMS: white noise
/// through a one-pole low-pass (corner 600–2800 Hz) and a one-pole high-pass
/// (corner 80–300 Hz), the corners drawn per call, times a sine swell of
/// 0.2–1.2 Hz and 20–50 % depth.
pub(super) fn coloured<R: Rng + ?Sized>(len: usize, rate: u32, rng: &mut R) -> Vec<f32> {
    let low_pass = one_pole(rng.random_range(600.0..2800.0), rate);
    let high_pass = one_pole(rng.random_range(80.0..300.0), rate);
    let swell_step = 2.0 * PI * rng.random_range(0.2..1.2) / rate as f32;
    let swell_phase = rng.random_range(0.0..2.0 * PI);
    let swell_depth = rng.random_range(0.2..0.5);

    let mut low = 0.0f32;
    let mut slow = 0.0f32;
    let mut noise: Vec<f32> = (0..len)
        .map(|i| {
            let white: f32 = rng.random_range(-1.0..1.0);
            low += low_pass * (white - low);
            // High-pass: the signal minus its own slow average.
            slow += high_pass * (low - slow);
            let swell = 1.0 + swell_depth * (swell_phase + swell_step * i as f32).sin();
            (low - slow) * swell
        })
        .collect();
    let level = super::rms(&noise);
    if level > 0.0 {
        noise.iter_mut().for_each(|s| *s /= level);
    }
    noise
}

/// The smoothing coefficient of a one-pole filter with its corner at
/// `corner` Hz.
fn one_pole(corner: f32, rate: u32) -> f32 {
    1.0 - (-2.0 * PI * corner / rate as f32).exp()
}
