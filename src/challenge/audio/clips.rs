//! The spoken-digit clips of `datasets/audio/`, decoded once at startup.
//!
//! Layout: `audio/<lang>/<digit>-<variant>.wav`, 16-bit mono at
//! [`CLIP_RATE`], one file per digit and voice variant (see
//! `datasets/audio/README.md`). Every language needs at least one clip for
//! every digit; a half-built dataset is refused at load rather than failing a
//! challenge later.

use crate::challenge::{DatasetError, Lang};
use std::path::Path;

/// The dataset's sample rate, as `datasets/scripts/build-audio.sh` writes it.
pub(super) const CLIP_RATE: u32 = 11025;

/// A single word is well under this; a longer file is not a digit clip, and
/// would make every challenge that uses it long.
const MAX_CLIP_SECONDS: u32 = 2;

/// One language's clips: for each digit, its voice variants in file-name
/// order (so a seeded render picks the same one on every machine).
pub(super) struct LangClips {
    pub by_digit: [Vec<Clip>; 10],
}

/// A decoded clip, scaled to unit RMS so that levels in the mix are relative
/// to the speech whatever voice spoke it.
pub(super) struct Clip {
    pub samples: Vec<f32>,
}

impl LangClips {
    /// Reads `audio_dir/<lang>/*.wav`.
    pub fn load(audio_dir: &Path, lang: Lang) -> Result<LangClips, DatasetError> {
        let dir = audio_dir.join(lang.code());
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| DatasetError::new(dir.display(), format!("cannot read directory: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| DatasetError::new(dir.display(), format!("cannot list: {e}")))?;
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "wav") {
                files.push(path);
            }
        }
        files.sort();

        let mut by_digit: [Vec<Clip>; 10] = Default::default();
        for path in &files {
            let digit = digit_of(path).ok_or_else(|| {
                DatasetError::new(path.display(), "name is not <digit>-<variant>.wav")
            })?;
            by_digit[digit].push(Clip::load(path)?);
        }
        if let Some(digit) = by_digit.iter().position(Vec::is_empty) {
            return Err(DatasetError::new(
                dir.join(format!("{digit}-*.wav")).display(),
                format!("missing: no clip for digit {digit}"),
            ));
        }
        Ok(LangClips { by_digit })
    }
}

impl Clip {
    fn load(path: &Path) -> Result<Clip, DatasetError> {
        let fail = |reason: String| DatasetError::new(path.display(), reason);
        let mut reader = hound::WavReader::open(path)
            .map_err(|e| fail(format!("not a readable WAV file: {e}")))?;
        let spec = reader.spec();
        if spec.channels != 1
            || spec.sample_format != hound::SampleFormat::Int
            || spec.bits_per_sample != 16
            || spec.sample_rate != CLIP_RATE
        {
            return Err(fail(format!(
                "wrong format: expected 16-bit integer mono at {CLIP_RATE} Hz, found \
                 {}-bit {:?} with {} channel(s) at {} Hz",
                spec.bits_per_sample, spec.sample_format, spec.channels, spec.sample_rate
            )));
        }
        if reader.duration() > MAX_CLIP_SECONDS * CLIP_RATE {
            return Err(fail(format!(
                "longer than {MAX_CLIP_SECONDS} s: not a single spoken digit"
            )));
        }
        let samples = reader
            .samples::<i16>()
            .map(|s| s.map(|s| f32::from(s) / 32768.0))
            .collect::<Result<Vec<f32>, _>>()
            .map_err(|e| fail(format!("corrupt samples: {e}")))?;
        let rms = super::rms(&samples);
        if rms < 1e-4 {
            return Err(fail("silent: no speech in the clip".to_string()));
        }
        Ok(Clip {
            samples: samples.iter().map(|s| s / rms).collect(),
        })
    }
}

/// The digit a clip file speaks, from its name `<digit>-<variant>.wav`.
fn digit_of(path: &Path) -> Option<usize> {
    let stem = path.file_stem()?.to_str()?;
    let (digit, variant) = stem.split_once('-')?;
    let digit = match digit.as_bytes() {
        [d @ b'0'..=b'9'] => usize::from(d - b'0'),
        _ => return None,
    };
    (!variant.is_empty()).then_some(digit)
}
