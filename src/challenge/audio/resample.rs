//! Band-limited resampling by any ratio: changes a clip's pitch and speed
//! together, and converts the dataset's rate to the output rate in the same
//! pass.
//!
//! A windowed-sinc interpolator (Blackman window, 6 zero crossings each
//! side). The kernel is tabulated once, so a render costs table look-ups, not
//! trigonometry. Reading faster than one input sample per output sample
//! lowers the cutoff by the same factor, so pitching up does not alias.

use std::f64::consts::PI;

/// Zero crossings of the sinc on each side of the centre.
const HALF_ZEROS: usize = 6;
/// Table entries per zero crossing, read at the nearest entry: the error
/// that leaves is below -50 dB, under any challenge's noise.
const STEPS_PER_ZERO: usize = 1024;
/// The cutoff sits this far below the output's Nyquist frequency, so the
/// window's transition band ends before it.
const CUTOFF: f64 = 0.9;

pub(super) struct Resampler {
    /// The windowed sinc at `i / STEPS_PER_ZERO` zero crossings from the
    /// centre, `i` from 0 to `HALF_ZEROS * STEPS_PER_ZERO` inclusive (the
    /// last entry is 0).
    kernel: Vec<f32>,
}

impl Resampler {
    pub fn new() -> Resampler {
        let len = HALF_ZEROS * STEPS_PER_ZERO;
        let kernel = (0..=len)
            .map(|i| {
                let u = i as f64 / STEPS_PER_ZERO as f64;
                let sinc = if i == 0 {
                    1.0
                } else {
                    (PI * u).sin() / (PI * u)
                };
                let w = PI * u / HALF_ZEROS as f64;
                let blackman = 0.42 + 0.5 * w.cos() + 0.08 * (2.0 * w).cos();
                (sinc * blackman) as f32
            })
            .collect();
        Resampler { kernel }
    }

    /// `input` read at `from_step` input samples per output sample at its
    /// start, changing linearly to `to_step` at its end: the output is about
    /// `1 / step` times as long, with every frequency multiplied by
    /// `output_rate * step / input_rate` (a pitch glide when the two differ).
    pub fn resample(&self, input: &[f32], from_step: f64, to_step: f64) -> Vec<f32> {
        let valid = |step: f64| step.is_finite() && step > 0.0;
        if input.is_empty() || !valid(from_step) || !valid(to_step) {
            return Vec::new();
        }
        let last = input.len() - 1;
        let glide = (to_step - from_step) / input.len() as f64;
        let mut out =
            Vec::with_capacity((input.len() as f64 / from_step.min(to_step)) as usize + 1);
        let mut x = 0.0f64;
        while x <= last as f64 {
            let step = from_step + glide * x;
            // Cutoff relative to the input's Nyquist frequency.
            let cutoff = CUTOFF * (1.0 / step).min(1.0);
            let reach = HALF_ZEROS as f64 / cutoff;
            let first = (x - reach).ceil().max(0.0) as usize;
            let end = ((x + reach).floor() as usize).min(last);
            // Table position of input sample `first`, and the distance in
            // table steps between neighbouring input samples.
            let scale = (cutoff * STEPS_PER_ZERO as f64) as f32;
            let mut position = (x - first as f64) as f32 * scale;
            let mut sum = 0.0f32;
            for &sample in &input[first..=end] {
                let entry = (position.abs() + 0.5) as usize;
                sum += sample * self.kernel.get(entry).copied().unwrap_or(0.0);
                position -= scale;
            }
            out.push(sum * cutoff as f32);
            x += step;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: f64, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (2.0 * PI * freq * i as f64 / rate).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn a_tone_in_the_passband_keeps_its_level_and_moves_by_the_ratio() {
        // 1 kHz at 11025 Hz, read at 11025/8000 input samples per output
        // sample and a pitch factor of 1.2: 1.2 kHz at 8 kHz.
        let step = 11025.0 / 8000.0 * 1.2;
        let out = Resampler::new().resample(&tone(1000.0, 11025.0, 11025), step, step);
        let expected = tone(1200.0, 8000.0, out.len());
        let middle = 200..out.len() - 200;
        let error: Vec<f32> = middle.clone().map(|i| out[i] - expected[i]).collect();
        assert!(rms(&error) < 0.01, "error rms {}", rms(&error));
        assert!((rms(&out[middle]) - rms(&expected)).abs() < 0.01);
    }

    #[test]
    fn a_tone_above_the_new_nyquist_is_filtered_not_aliased() {
        // 5 kHz cannot exist at 8 kHz; without the filter it would fold to 3 kHz.
        let out = Resampler::new().resample(
            &tone(5000.0, 11025.0, 11025),
            11025.0 / 8000.0,
            11025.0 / 8000.0,
        );
        assert!(rms(&out[200..out.len() - 200]) < 0.01);
    }
}
