//! Tempo change without pitch change (WSOLA), so a digit's speed varies
//! independently of the pitch the resampler sets.
//!
//! Waveform-similarity overlap-add (Verhelst and Roelands, 1993): the input
//! is cut into Hann-windowed frames read at `tempo` times the output hop,
//! and each frame's read position is nudged (within ±[`TOLERANCE`]) to where
//! the waveform best continues the previous frame, so pitch periods line up
//! and the voice does not warble.

use std::f32::consts::PI;

/// 23 ms at the dataset's 11025 Hz: a few pitch periods of any voice.
const FRAME: usize = 256;
/// Output hop: half a frame, where periodic Hann windows sum to one.
const HOP: usize = FRAME / 2;
/// How far (in samples) a frame may move to match the previous one: at
/// least half the longest pitch period of the dataset's voices (the deepest
/// go down to about 60 Hz, 184 samples), so a matching period is in reach.
const TOLERANCE: usize = 96;
/// The coarse search's stride, a small fraction of any pitch period.
const COARSE_STEP: usize = 4;

pub(super) struct Stretcher {
    window: [f32; FRAME],
}

impl Stretcher {
    pub fn new() -> Stretcher {
        let mut window = [0.0; FRAME];
        for (n, w) in window.iter_mut().enumerate() {
            *w = 0.5 - 0.5 * (2.0 * PI * n as f32 / FRAME as f32).cos();
        }
        Stretcher { window }
    }

    /// `input` played `tempo` times as fast (2.0 is half as long) at the same
    /// pitch.
    pub fn change_tempo(&self, input: &[f32], tempo: f32) -> Vec<f32> {
        if input.is_empty() || !tempo.is_finite() || tempo <= 0.0 {
            return Vec::new();
        }
        let out_len = (input.len() as f32 / tempo) as usize;
        let frames = out_len / HOP + 2;
        let analysis_hop = HOP as f32 * tempo;
        // Silence around the input, so every candidate frame is in range:
        // frame k is nominally centred on input sample k * analysis_hop.
        let lead = HOP + TOLERANCE;
        let tail = FRAME + TOLERANCE + (frames as f32 * analysis_hop) as usize;
        let mut padded = vec![0.0; lead + input.len().max(tail)];
        padded[lead..lead + input.len()].copy_from_slice(input);

        let mut out = vec![0.0; frames * HOP + FRAME];
        let mut previous: Option<usize> = None;
        for k in 0..frames {
            let nominal = TOLERANCE + (k as f32 * analysis_hop).round() as usize;
            let start = match previous {
                None => nominal,
                Some(p) => best_match(&padded, p + HOP, nominal),
            };
            let frame = &padded[start..start + FRAME];
            for ((o, &x), &w) in out[k * HOP..].iter_mut().zip(frame).zip(&self.window) {
                *o += x * w;
            }
            previous = Some(start);
        }
        // Output sample HOP is input time 0 (frame 0 is centred there).
        out.drain(..HOP);
        out.truncate(out_len);
        out
    }
}

/// The frame start within ±TOLERANCE of `nominal` whose first half best
/// matches `padded[natural..]`, the previous frame's natural continuation:
/// a coarse search every [`COARSE_STEP`] samples, then every sample around
/// the best coarse match (a quarter of the work of trying every offset).
fn best_match(padded: &[f32], natural: usize, nominal: usize) -> usize {
    let target = &padded[natural..natural + HOP];
    let score = |start: usize| -> f32 {
        target
            .iter()
            .zip(&padded[start..start + HOP])
            .map(|(a, b)| a * b)
            .sum()
    };
    let best_of = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates
            .map(|start| (score(start), start))
            .fold((f32::NEG_INFINITY, nominal), |best, c| {
                if c.0 > best.0 {
                    c
                } else {
                    best
                }
            })
            .1
    };
    let coarse = best_of(&mut (nominal - TOLERANCE..=nominal + TOLERANCE).step_by(COARSE_STEP));
    let low = coarse
        .saturating_sub(COARSE_STEP - 1)
        .max(nominal - TOLERANCE);
    let high = (coarse + COARSE_STEP - 1).min(nominal + TOLERANCE);
    best_of(&mut (low..=high))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 150 Hz voiced-like tone (three harmonics) at 11025 Hz.
    fn buzz(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let t = 2.0 * PI * 150.0 * i as f32 / 11025.0;
                t.sin() + 0.5 * (2.0 * t).sin() + 0.25 * (3.0 * t).sin()
            })
            .collect()
    }

    /// Zero crossings per sample, upwards: the fundamental's frequency.
    fn crossings_per_sample(x: &[f32]) -> f32 {
        let ups = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        ups as f32 / x.len() as f32
    }

    #[test]
    fn tempo_changes_the_length_but_not_the_pitch() {
        let input = buzz(11025);
        let stretcher = Stretcher::new();
        for tempo in [0.8f32, 1.0, 1.25] {
            let out = stretcher.change_tempo(&input, tempo);
            let expected_len = (input.len() as f32 / tempo) as usize;
            assert_eq!(out.len(), expected_len);
            let inner = &out[FRAME..out.len() - FRAME];
            let ratio = crossings_per_sample(inner) / crossings_per_sample(&input);
            assert!(
                (ratio - 1.0).abs() < 0.03,
                "tempo {tempo}: pitch ratio {ratio}"
            );
            let level = super::super::rms(inner) / super::super::rms(&input);
            assert!(
                (level - 1.0).abs() < 0.1,
                "tempo {tempo}: level ratio {level}"
            );
        }
    }
}
