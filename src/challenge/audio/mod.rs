//! The `audio` challenge: spoken digits over noise, for people who cannot
//! see the visual kinds.
//!
//! The digits come from `datasets/audio/` (espeak-ng, four voice variants in
//! each of English, German, French and Spanish; [`VoiceSet::load`] decodes
//! them once at startup). Every render varies them so that clips are never
//! byte-identical and a per-digit template does not match:
//!
//! - each digit gets a random voice variant; a random pitch factor
//!   (0.86–0.94 or 1.06–1.18, which also changes its speed; never within 6 %
//!   of the clip's own pitch, where the waveform would still line up with
//!   the dataset's) that glides by up to 6 % across the digit; a separate
//!   tempo factor at constant pitch (0.85–1.2, WSOLA); and a random gain
//!   (−4 to 0 dB). Against its dataset clips, a rendered digit's normalised
//!   cross-correlation stays below 0.5 (a copy at any gain scores 1);
//! - random silences before (0.25–0.7 s), between (0.25–0.7 s) and after
//!   (0.25–0.7 s) the digits;
//! - background noise over the whole clip: band noise of a random colour
//!   with a slow swell, plus babble (digits of the other three languages,
//!   reversed so none can be heard as part of the answer, resampled by
//!   0.7–1.4, at random places and gains).
//!
//! Difficulty (clamped to 1–5):
//!
//! | level | digits | speech-to-noise floor | babble clips per second | babble share of the noise power |
//! |-------|--------|-----------------------|-------------------------|---------------------------------|
//! | 1     | 4      | +18 dB                | 0.5                     | 30 %                            |
//! | 2     | 5      | +15 dB                | 1.0                     | 40 %                            |
//! | 3     | 6      | +12 dB                | 1.5                     | 50 %                            |
//! | 4     | 6      | +9 dB                 | 2.0                     | 55 %                            |
//! | 5     | 7      | +6 dB                 | 2.5                     | 60 %                            |
//!
//! The speech-to-noise ratio is RMS over RMS within each digit's span, and
//! the noise is scaled so that the *worst* digit sits between the floor and
//! 2 dB above it: no digit is ever buried deeper than the table says. A
//! person could not be asked to listen when this was built, so +6 dB at
//! level 5 is the margin kept for intelligibility (digits-in-noise hearing
//! tests put normal listeners' threshold around −10 dB).
//!
//! What this does not stop: a bot holding the dataset that also searches
//! resampling factors undoes the pitch change (on clean speech that brings
//! the correlation back to about 0.75–0.95; the glide, the tempo change and
//! the noise are what is left), and against speech recognition the noise is
//! the only defence, which +6 dB does not make a strong one.
//!
//! Output: WAV, 16-bit mono at [`SAMPLE_RATE`] (8 kHz: telephone band, enough
//! for digits, and a level-5 clip stays near 100 KB).

mod clips;
mod mix;
mod noise;
mod resample;
mod stretch;

use crate::challenge::{DatasetError, Lang};
use clips::LangClips;
use mix::Mix;
use rand::Rng;
use resample::Resampler;
use std::path::Path;
use stretch::Stretcher;

/// The output's sample rate in Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// The longest answer [`VoiceSet::render`] speaks: more than any level asks,
/// and a bound on the clip's size for anything else passed in.
pub const MAX_DIGITS: usize = 10;

/// What a difficulty level means (the table in the module docs).
struct Level {
    digits: usize,
    min_snr_db: f32,
    babble_per_second: f32,
    /// The fraction of the noise's power that is babble; the rest is
    /// coloured noise.
    babble_share: f32,
}

const LEVELS: [Level; 5] = [
    Level {
        digits: 4,
        min_snr_db: 18.0,
        babble_per_second: 0.5,
        babble_share: 0.30,
    },
    Level {
        digits: 5,
        min_snr_db: 15.0,
        babble_per_second: 1.0,
        babble_share: 0.40,
    },
    Level {
        digits: 6,
        min_snr_db: 12.0,
        babble_per_second: 1.5,
        babble_share: 0.50,
    },
    Level {
        digits: 6,
        min_snr_db: 9.0,
        babble_per_second: 2.0,
        babble_share: 0.55,
    },
    Level {
        digits: 7,
        min_snr_db: 6.0,
        babble_per_second: 2.5,
        babble_share: 0.60,
    },
];

fn level(difficulty: u8) -> &'static Level {
    &LEVELS[usize::from(difficulty.clamp(1, 5) - 1)]
}

/// A fresh answer for `difficulty`: ASCII digits, as many as the level asks.
pub fn new_answer<R: Rng + ?Sized>(rng: &mut R, difficulty: u8) -> String {
    (0..level(difficulty).digits)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// Why an answer could not be spoken.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("nothing to speak: the answer is empty")]
    Empty,
    #[error("the answer has {0} digits; at most {MAX_DIGITS} are spoken")]
    TooLong(usize),
    #[error("{found:?} at position {position} is not a digit 0-9")]
    NotADigit { position: usize, found: char },
    #[error("encoding the WAV: {0}")]
    Encode(#[from] hound::Error),
}

/// The decoded digit clips of every language, and the filters that vary
/// them: loaded once, shared by every render (it is `Send + Sync`).
pub struct VoiceSet {
    en: LangClips,
    de: LangClips,
    fr: LangClips,
    es: LangClips,
    resampler: Resampler,
    stretcher: Stretcher,
}

impl VoiceSet {
    /// Loads `datasets_dir/audio/<lang>/<digit>-<variant>.wav`. The error
    /// names the file or directory and why: unreadable, not a WAV, not
    /// 16-bit mono at the dataset's rate, or a digit with no clip.
    pub fn load(datasets_dir: &Path) -> Result<VoiceSet, DatasetError> {
        let audio_dir = datasets_dir.join("audio");
        Ok(VoiceSet {
            en: LangClips::load(&audio_dir, Lang::En)?,
            de: LangClips::load(&audio_dir, Lang::De)?,
            fr: LangClips::load(&audio_dir, Lang::Fr)?,
            es: LangClips::load(&audio_dir, Lang::Es)?,
            resampler: Resampler::new(),
            stretcher: Stretcher::new(),
        })
    }

    /// A WAV file (16-bit mono at [`SAMPLE_RATE`]) of `digits` spoken in
    /// `lang` over the noise of `difficulty`; deterministic given `rng`.
    pub fn render<R: Rng + ?Sized>(
        &self,
        digits: &str,
        lang: Lang,
        difficulty: u8,
        rng: &mut R,
    ) -> Result<Vec<u8>, RenderError> {
        let digits = parse_digits(digits)?;
        let mix = Mix::compose(self, &digits, lang, level(difficulty), rng);
        Ok(encode_wav(&mix.into_samples())?)
    }

    fn clips(&self, lang: Lang) -> &LangClips {
        match lang {
            Lang::En => &self.en,
            Lang::De => &self.de,
            Lang::Fr => &self.fr,
            Lang::Es => &self.es,
        }
    }
}

/// Each character's digit value.
fn parse_digits(text: &str) -> Result<Vec<usize>, RenderError> {
    let digits = text
        .chars()
        .enumerate()
        .map(|(position, found)| match found.to_digit(10) {
            Some(d) => Ok(d as usize),
            None => Err(RenderError::NotADigit { position, found }),
        })
        .collect::<Result<Vec<usize>, _>>()?;
    match digits.len() {
        0 => Err(RenderError::Empty),
        n if n > MAX_DIGITS => Err(RenderError::TooLong(n)),
        _ => Ok(digits),
    }
}

/// Samples in -1..1 as a 16-bit mono WAV file.
fn encode_wav(samples: &[f32]) -> Result<Vec<u8>, hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Vec::with_capacity(44 + 2 * samples.len());
    let mut writer = hound::WavWriter::new(std::io::Cursor::new(&mut bytes), spec)?;
    for &s in samples {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
    }
    writer.finalize()?;
    Ok(bytes)
}

/// Root mean square; 0 for no samples.
fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

#[cfg(test)]
mod tests;
