use super::mix::RATE_STEP;
use super::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::fs;
use std::path::PathBuf;

fn datasets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

fn voices() -> VoiceSet {
    VoiceSet::load(&datasets_dir()).expect("the shipped dataset loads")
}

fn digits_of(answer: &str) -> Vec<usize> {
    answer.bytes().map(|b| usize::from(b - b'0')).collect()
}

/// The best normalised cross-correlation of `a` and `b` over lags of up to
/// `max_lag` samples either way: 1 for a copy at any gain.
fn max_ncc(a: &[f32], b: &[f32], max_lag: usize) -> f32 {
    let energy = |x: &[f32]| x.iter().map(|s| s * s).sum::<f32>();
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    let best = (0..=max_lag.min(a.len()))
        .flat_map(|lag| [dot(&a[lag..], b), dot(a, b.get(lag..).unwrap_or(&[]))])
        .fold(0.0f32, |m, c| m.max(c.abs()));
    best / (energy(a) * energy(b)).sqrt()
}

#[test]
fn answers_are_digits_as_many_as_the_level_asks() {
    let mut rng = SmallRng::seed_from_u64(1);
    // Out-of-range levels clamp to 1 and 5.
    for (difficulty, len) in [(0, 4), (1, 4), (2, 5), (3, 6), (4, 6), (5, 7), (9, 7)] {
        let answers: Vec<String> = (0..50).map(|_| new_answer(&mut rng, difficulty)).collect();
        for answer in &answers {
            assert_eq!(answer.len(), len, "{answer:?} at difficulty {difficulty}");
            assert!(answer.bytes().all(|b| b.is_ascii_digit()), "{answer:?}");
        }
        let distinct: std::collections::HashSet<&String> = answers.iter().collect();
        assert!(distinct.len() > 40, "answers repeat: {distinct:?}");
    }
}

#[test]
fn a_render_is_a_mono_16_bit_wav_at_the_sample_rate_and_of_plausible_length() {
    let voices = voices();
    let mut rng = SmallRng::seed_from_u64(2);
    for lang in Lang::ALL {
        for difficulty in 1..=5 {
            let answer = new_answer(&mut rng, difficulty);
            let wav = voices.render(&answer, lang, difficulty, &mut rng).unwrap();
            let mut reader = hound::WavReader::new(wav.as_slice()).unwrap();
            let spec = reader.spec();
            assert_eq!(spec.channels, 1);
            assert_eq!(spec.sample_rate, SAMPLE_RATE);
            assert_eq!(spec.bits_per_sample, 16);
            assert_eq!(spec.sample_format, hound::SampleFormat::Int);
            let seconds = reader.duration() as f32 / SAMPLE_RATE as f32;
            let n = answer.len() as f32;
            // Silences of 0.25-0.7 s around and between digits of 0.1-1 s.
            let (shortest, longest) = (0.5 + 0.25 * (n - 1.0) + 0.1 * n, 1.4 + 0.7 * (n - 1.0) + n);
            assert!(
                (shortest..longest).contains(&seconds),
                "{lang:?} {answer}: {seconds} s"
            );
            assert!(
                wav.len() < 180_000,
                "{lang:?} {answer}: {} bytes",
                wav.len()
            );
            let peak = reader
                .samples::<i16>()
                .map(|s| s.unwrap().unsigned_abs())
                .max()
                .unwrap();
            assert!(peak > 25_000, "{lang:?} {answer}: peak {peak}");
        }
    }
}

#[test]
fn renders_are_deterministic_given_the_rng_and_differ_between_challenges() {
    let voices = voices();
    let render = |seed| {
        let mut rng = SmallRng::seed_from_u64(seed);
        voices.render("4071", Lang::De, 3, &mut rng).unwrap()
    };
    assert_eq!(render(7), render(7));
    assert_ne!(render(7), render(8));
}

#[test]
fn no_digit_matches_its_dataset_clips_or_the_same_digit_of_another_render() {
    let voices = voices();
    let digits = [3, 7, 0, 9, 1, 5];
    // Both start at the digit's onset; 50 ms either way covers where the
    // best alignment of a stretched copy can be.
    let stretch_lag = SAMPLE_RATE as usize / 20;
    let mixes: Vec<Mix> = (0..3)
        .map(|seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            Mix::compose(&voices, &digits, Lang::En, level(5), &mut rng)
        })
        .collect();
    for (position, &digit) in digits.iter().enumerate() {
        // The templates a bot holding the dataset would try: every variant
        // of the digit at its own pitch and the output rate.
        let templates: Vec<Vec<f32>> = voices.en.by_digit[digit]
            .iter()
            .map(|clip| {
                voices
                    .resampler
                    .resample(&clip.samples, RATE_STEP, RATE_STEP)
            })
            .collect();
        // The measure sees through gain: a template at half level is a match.
        let halved: Vec<f32> = templates[0].iter().map(|s| s * 0.5).collect();
        assert!(max_ncc(&templates[0], &halved, stretch_lag) > 0.99);

        // The speech track, before any noise: the variation alone does it.
        let segments: Vec<&[f32]> = mixes
            .iter()
            .map(|mix| &mix.speech[mix.digit_spans[position].clone()])
            .collect();
        for segment in &segments {
            for template in &templates {
                let ncc = max_ncc(template, segment, stretch_lag);
                // At most 0.48 over 720 such pairs when this was written;
                // other variants of the same digit score 0.1-0.3.
                assert!(
                    ncc < 0.6,
                    "digit {digit} at {position}: {ncc} against its clip"
                );
            }
        }
        let ncc = max_ncc(segments[0], segments[1], stretch_lag);
        assert!(
            ncc < 0.9,
            "digit {digit} at {position}: {ncc} between renders"
        );
    }
}

#[test]
fn every_digit_keeps_at_least_the_levels_speech_to_noise_ratio() {
    let voices = voices();
    let mut rng = SmallRng::seed_from_u64(3);
    for difficulty in 1..=5u8 {
        let floor = level(difficulty).min_snr_db;
        for lang in Lang::ALL {
            for _ in 0..3 {
                let answer = new_answer(&mut rng, difficulty);
                let mix = Mix::compose(
                    &voices,
                    &digits_of(&answer),
                    lang,
                    level(difficulty),
                    &mut rng,
                );
                let worst = mix
                    .digit_spans
                    .iter()
                    .map(|span| {
                        let ratio = rms(&mix.speech[span.clone()]) / rms(&mix.noise[span.clone()]);
                        20.0 * ratio.log10()
                    })
                    .fold(f32::INFINITY, f32::min);
                // At least the floor, and the noise is really there: at most
                // the floor plus the jitter.
                assert!(
                    (floor - 0.01..=floor + 2.01).contains(&worst),
                    "difficulty {difficulty} {lang:?} {answer}: worst digit at {worst} dB"
                );
            }
        }
    }
    assert!(LEVELS.iter().all(|l| l.min_snr_db >= 6.0));
}

#[test]
fn render_refuses_what_it_cannot_speak() {
    let voices = voices();
    let mut rng = SmallRng::seed_from_u64(4);
    let mut render = |digits: &str| voices.render(digits, Lang::En, 1, &mut rng).unwrap_err();
    assert!(matches!(render(""), RenderError::Empty));
    assert!(matches!(
        render("12a4"),
        RenderError::NotADigit {
            position: 2,
            found: 'a'
        }
    ));
    // Non-ASCII digits are not spoken either.
    assert!(matches!(
        render("1٣"),
        RenderError::NotADigit { position: 1, .. }
    ));
    assert!(matches!(
        render(&"1".repeat(MAX_DIGITS + 1)),
        RenderError::TooLong(11)
    ));
}

/// A copy of the shipped dataset that a test can break, removed on drop.
struct ScratchDatasets(PathBuf);

impl ScratchDatasets {
    fn new(name: &str) -> ScratchDatasets {
        let root =
            std::env::temp_dir().join(format!("palisade-audio-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for lang in Lang::ALL {
            let from = datasets_dir().join("audio").join(lang.code());
            let to = root.join("audio").join(lang.code());
            fs::create_dir_all(&to).unwrap();
            for entry in fs::read_dir(&from).unwrap() {
                let path = entry.unwrap().path();
                fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
        }
        ScratchDatasets(root)
    }

    fn clip(&self, lang: &str, name: &str) -> PathBuf {
        self.0.join("audio").join(lang).join(name)
    }

    fn load_error(&self) -> DatasetError {
        VoiceSet::load(&self.0)
            .err()
            .expect("the broken dataset is refused")
    }
}

impl Drop for ScratchDatasets {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_missing_dataset_directory_is_named() {
    let missing = std::env::temp_dir().join("palisade-audio-no-such-datasets");
    let err = VoiceSet::load(&missing).err().unwrap();
    assert_eq!(
        err.path,
        missing.join("audio").join("en").display().to_string()
    );
    assert!(err.reason.contains("cannot read directory"), "{err}");
}

#[test]
fn a_missing_digit_is_named() {
    let scratch = ScratchDatasets::new("missing-digit");
    for entry in fs::read_dir(scratch.0.join("audio/fr")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("7-")
        {
            fs::remove_file(path).unwrap();
        }
    }
    let err = scratch.load_error();
    assert_eq!(
        err.path,
        scratch.clip("fr", "7-*.wav").display().to_string()
    );
    assert!(err.reason.contains("no clip for digit 7"), "{err}");
}

#[test]
fn a_bad_clip_is_named_with_the_reason() {
    let scratch = ScratchDatasets::new("bad-clip");
    let garbage = scratch.clip("de", "3-m1.wav");
    fs::write(&garbage, b"not a wav file").unwrap();
    let err = scratch.load_error();
    assert_eq!(err.path, garbage.display().to_string());
    assert!(err.reason.contains("not a readable WAV"), "{err}");

    fs::copy(datasets_dir().join("audio/de/3-m1.wav"), &garbage).unwrap();
    let stereo = scratch.clip("es", "2-f2.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: clips::CLIP_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&stereo, spec).unwrap();
    for i in 0..2000i16 {
        writer.write_sample(i).unwrap();
    }
    writer.finalize().unwrap();
    let err = scratch.load_error();
    assert_eq!(err.path, stereo.display().to_string());
    assert!(
        err.reason.contains("wrong format") && err.reason.contains("2 channel"),
        "{err}"
    );

    fs::remove_file(&stereo).unwrap();
    let misnamed = scratch.clip("es", "2-.wav");
    fs::copy(datasets_dir().join("audio/es/2-f2.wav"), &misnamed).unwrap();
    let err = scratch.load_error();
    assert_eq!(err.path, misnamed.display().to_string());
    assert!(err.reason.contains("<digit>-<variant>.wav"), "{err}");
}
