//! One challenge's sound: each digit varied and placed with random gaps (the
//! speech track), reversed babble and coloured noise under the whole clip
//! (the noise track), and the noise scaled so that every digit keeps at
//! least the level's speech-to-noise ratio.

use super::clips::{Clip, LangClips, CLIP_RATE};
use super::{noise, rms, Level, VoiceSet, SAMPLE_RATE};
use crate::challenge::Lang;
use rand::Rng;
use std::ops::Range;

/// Dataset samples per output sample for a clip played at its own pitch.
pub(super) const RATE_STEP: f64 = CLIP_RATE as f64 / SAMPLE_RATE as f64;

/// Per digit: a pitch factor (which also speeds it up by the same factor)
/// from one of two bands, never near 1, since a clip at its own pitch keeps
/// its waveform whatever the tempo does; how far the pitch glides from the
/// digit's start to its end (as a fraction, either way); a tempo factor at
/// constant pitch; and a gain in dB.
const PITCH_LOW: Range<f64> = 0.86..0.94;
const PITCH_HIGH: Range<f64> = 1.06..1.18;
const GLIDE: Range<f64> = -0.06..0.06;
const TEMPO: Range<f32> = 0.85..1.2;
const GAIN_DB: Range<f32> = -4.0..0.0;

/// Silence (under the noise) before the first digit, between digits and
/// after the last, in seconds.
const LEAD: Range<f32> = 0.25..0.7;
const GAP: Range<f32> = 0.25..0.7;
const TAIL: Range<f32> = 0.25..0.7;

/// Babble clips: pitch factor and gain relative to one another (the track
/// as a whole is then scaled to its share of the noise).
const BABBLE_PITCH: Range<f64> = 0.7..1.4;
const BABBLE_GAIN: Range<f32> = 0.3..1.0;

/// The ratio actually used is the level's floor plus up to this much.
const SNR_JITTER_DB: f32 = 2.0;

/// The finished clip peaks here (-1 dBFS), whatever the noise added.
const PEAK: f32 = 0.89;

/// The two tracks before they are summed, kept apart so the ratio can be
/// set (and tested) per digit.
pub(super) struct Mix {
    pub speech: Vec<f32>,
    pub noise: Vec<f32>,
    /// Where each digit lies, in samples at [`SAMPLE_RATE`].
    pub digit_spans: Vec<Range<usize>>,
}

impl Mix {
    /// `digits` (each 0–9) spoken in `lang` over `level`'s noise.
    pub fn compose<R: Rng + ?Sized>(
        voices: &VoiceSet,
        digits: &[usize],
        lang: Lang,
        level: &Level,
        rng: &mut R,
    ) -> Mix {
        let clips = voices.clips(lang);
        let mut speech = silence(LEAD, rng);
        let mut digit_spans = Vec::with_capacity(digits.len());
        for (i, &digit) in digits.iter().enumerate() {
            if i > 0 {
                speech.extend(silence(GAP, rng));
            }
            let spoken = voices.vary(pick(&clips.by_digit[digit], rng), rng);
            let start = speech.len();
            speech.extend(spoken);
            digit_spans.push(start..speech.len());
        }
        speech.extend(silence(TAIL, rng));

        let noise = voices.background(lang, speech.len(), level, rng);
        let mut mix = Mix {
            speech,
            noise,
            digit_spans,
        };
        mix.set_noise_level(level.min_snr_db + rng.random_range(0.0..SNR_JITTER_DB));
        mix
    }

    /// Scales the noise so that the digit with the least speech over noise
    /// (RMS over its span) sits at exactly `snr_db`.
    fn set_noise_level(&mut self, snr_db: f32) {
        let worst_ratio = self
            .digit_spans
            .iter()
            .map(|span| rms(&self.speech[span.clone()]) / rms(&self.noise[span.clone()]).max(1e-9))
            .fold(f32::INFINITY, f32::min);
        let noise_gain = worst_ratio / 10f32.powf(snr_db / 20.0);
        self.noise.iter_mut().for_each(|s| *s *= noise_gain);
    }

    /// The two tracks summed and scaled to peak at [`PEAK`].
    pub fn into_samples(self) -> Vec<f32> {
        let mut mixed: Vec<f32> = self
            .speech
            .iter()
            .zip(&self.noise)
            .map(|(s, n)| s + n)
            .collect();
        let peak = mixed.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        if peak > 0.0 {
            mixed.iter_mut().for_each(|s| *s *= PEAK / peak);
        }
        mixed
    }
}

impl VoiceSet {
    /// One digit, at its own random pitch, pitch glide, tempo and gain, at
    /// [`SAMPLE_RATE`].
    fn vary<R: Rng + ?Sized>(&self, clip: &Clip, rng: &mut R) -> Vec<f32> {
        let band = if rng.random_bool(0.5) {
            PITCH_LOW
        } else {
            PITCH_HIGH
        };
        let pitch = rng.random_range(band);
        let glide = rng.random_range(GLIDE);
        let tempo = rng.random_range(TEMPO);
        let gain = 10f32.powf(rng.random_range(GAIN_DB) / 20.0);
        let stretched = self.stretcher.change_tempo(&clip.samples, tempo);
        let from_step = RATE_STEP * pitch * (1.0 - glide / 2.0);
        let to_step = RATE_STEP * pitch * (1.0 + glide / 2.0);
        let mut spoken = self.resampler.resample(&stretched, from_step, to_step);
        spoken.iter_mut().for_each(|s| *s *= gain);
        spoken
    }

    /// `len` samples of noise at unit RMS: coloured noise and babble in
    /// `level`'s proportions.
    fn background<R: Rng + ?Sized>(
        &self,
        lang: Lang,
        len: usize,
        level: &Level,
        rng: &mut R,
    ) -> Vec<f32> {
        let coloured = noise::coloured(len, SAMPLE_RATE, rng);
        let babble = self.babble(lang, len, level.babble_per_second, rng);
        let babble_rms = rms(&babble);
        let (coloured_gain, babble_gain) = if babble_rms > 0.0 {
            let share = level.babble_share;
            ((1.0 - share).sqrt(), share.sqrt() / babble_rms)
        } else {
            (1.0, 0.0)
        };
        coloured
            .iter()
            .zip(&babble)
            .map(|(c, b)| coloured_gain * c + babble_gain * b)
            .collect()
    }

    /// Digits of the other languages, reversed (so no babble can be heard as
    /// a digit of the answer) and resampled, scattered over `len` samples.
    fn babble<R: Rng + ?Sized>(
        &self,
        lang: Lang,
        len: usize,
        per_second: f32,
        rng: &mut R,
    ) -> Vec<f32> {
        let mut track = vec![0.0; len];
        let others: Vec<&LangClips> = Lang::ALL
            .into_iter()
            .filter(|&other| other != lang)
            .map(|other| self.clips(other))
            .collect();
        let count = (per_second * len as f32 / SAMPLE_RATE as f32).round() as usize;
        for _ in 0..count {
            let lang_clips = others[rng.random_range(0..others.len())];
            let clip = pick(&lang_clips.by_digit[rng.random_range(0..10)], rng);
            let step = RATE_STEP * rng.random_range(BABBLE_PITCH);
            let mut sound = self.resampler.resample(&clip.samples, step, step);
            sound.reverse();
            let gain = rng.random_range(BABBLE_GAIN);
            let start = rng.random_range(0..len);
            for (t, s) in track[start..].iter_mut().zip(&sound) {
                *t += gain * s;
            }
        }
        track
    }
}

/// One of a digit's voice variants (the loader guarantees there is one).
fn pick<'a, R: Rng + ?Sized>(variants: &'a [Clip], rng: &mut R) -> &'a Clip {
    &variants[rng.random_range(0..variants.len())]
}

/// Zeros for a random duration in `seconds`.
fn silence<R: Rng + ?Sized>(seconds: Range<f32>, rng: &mut R) -> Vec<f32> {
    vec![0.0; (rng.random_range(seconds) * SAMPLE_RATE as f32) as usize]
}
