//! The `text` challenge: distorted characters to type in.
//!
//! Answers are drawn from [`ALPHABET`], which leaves out glyphs a person
//! cannot tell apart once distorted. A [`TextRenderer`] holds the fonts'
//! outlines (from `datasets/fonts/`, read once) and renders an answer as a
//! grayscale PNG of [`WIDTH`]×[`HEIGHT`]. Everything random comes from the
//! `rng` passed in, so a challenge seeded the same way renders the same
//! picture, and differently seeded ones never look alike. [`matches`]
//! judges a typed answer.
//!
//! What a difficulty level means (distances in pixels of the 240×80 image):
//!
//! | level | characters | rotation | shear | spacing | warp | lines (widest) | specks | shading | faces |
//! | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
//! | 1 | 4 | ±6° | ±0.08 | 1.08 (apart) | 1.5 | 1 (1.5) | 60 | ±12 | one |
//! | 2 | 5 | ±10° | ±0.11 | 1.02 (touching) | 2.2 | 1 (1.8) | 90 | ±16 | one |
//! | 3 | 6 | ±14° | ±0.14 | 0.97 | 2.9 | 2 (2.1) | 120 | ±20 | mixed |
//! | 4 | 7 | ±18° | ±0.17 | 0.93 | 3.6 | 2 (2.4) | 150 | ±24 | mixed |
//! | 5 | 8 | ±22° | ±0.20 | 0.90 (overlapping) | 4.3 | 3 (2.6) | 180 | ±28 | mixed |
//!
//! - *rotation* and *shear* are per glyph; each glyph's size also varies (±5%
//!   at 1 to ±13% at 5) and its centre moves up or down (±2 to ±4.5 px).
//! - *spacing* is the distance between neighbouring glyphs' centres as a
//!   share of their turned ink widths; below 1 they overlap. A word too wide
//!   for the image is squeezed to fit (its height shrinks by the square root
//!   of the width's factor, so long answers stay tall enough to read).
//! - *warp* is the largest displacement, on each axis, of the sine wave that
//!   bends the whole picture (glyphs and lines alike).
//! - *lines* are wavy strokes in the ink colour across most of the width.
//! - *specks* are 1-2 px dots of ink or paper colour; *shading* is how far
//!   the paper's grey level drifts from the left edge to the right.
//! - *faces*: DejaVu Sans Bold or DejaVu Serif Bold, one for the whole image
//!   or chosen per glyph.
//!
//! Level 5 was tuned by eye to stay readable for a person. A render takes
//! well under 0.2 ms: the distortion is applied to the outlines, so there is
//! one coverage pass and one PNG encode per image (see `draw`).

mod answer;
mod draw;
mod glyphs;
mod raster;

use std::path::Path;

use rand::Rng;

use crate::challenge::DatasetError;

pub use answer::{default_tolerance, matches};

/// The characters answers are made of: capitals and digits without those
/// that distortion makes ambiguous. Left out: `0`/`O` and `Q` (all read as
/// O), `1`/`I` (and lowercase `l`, which upper-cases to `L` but is what a
/// person types for a bare stroke), `2` (Z), `5` (S), `6` (G) and `8` (B).
pub const ALPHABET: &str = "ABCDEFGHJKLMNPRSTUVWXYZ3479";

/// The image's size in pixels.
pub const WIDTH: u32 = 240;
pub const HEIGHT: u32 = 80;

/// The answer's length at `difficulty` (clamped to 1-5): 4 to 8.
pub fn answer_len(difficulty: u8) -> usize {
    3 + usize::from(difficulty.clamp(1, 5))
}

/// A fresh answer for `difficulty`: [`answer_len`] characters of
/// [`ALPHABET`], each drawn uniformly.
pub fn new_answer(rng: &mut impl Rng, difficulty: u8) -> String {
    let alphabet = ALPHABET.as_bytes();
    (0..answer_len(difficulty))
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// The fonts' outlines for every character of [`ALPHABET`], prepared once.
#[derive(Debug, Clone)]
pub struct TextRenderer {
    /// `glyphs[i][face]`: the `i`-th character of `ALPHABET` in each face.
    glyphs: Vec<Vec<glyphs::GlyphShape>>,
}

impl TextRenderer {
    /// Reads the faces in `datasets_dir/fonts/`; the error names the file
    /// that is missing, unreadable or lacks a character.
    pub fn load(datasets_dir: &Path) -> Result<TextRenderer, DatasetError> {
        let glyphs = glyphs::load_faces(&datasets_dir.join("fonts"), ALPHABET)?;
        Ok(TextRenderer { glyphs })
    }

    /// `answer` drawn at `difficulty` as a PNG of [`WIDTH`]×[`HEIGHT`].
    /// Lowercase letters are drawn as capitals; characters outside
    /// [`ALPHABET`] are left out (answers come from [`new_answer`]).
    pub fn render(&self, answer: &str, difficulty: u8, rng: &mut impl Rng) -> Vec<u8> {
        let glyphs: Vec<&[glyphs::GlyphShape]> = answer
            .chars()
            .flat_map(char::to_uppercase)
            .filter_map(|c| ALPHABET.find(c))
            .map(|i| self.glyphs[i].as_slice())
            .collect();
        draw::render(&glyphs, difficulty, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn datasets() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
    }

    #[test]
    fn answers_have_the_length_of_their_difficulty_and_use_the_alphabet() {
        let mut rng = SmallRng::seed_from_u64(1);
        for (difficulty, len) in [(0, 4), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8), (9, 8)] {
            for _ in 0..200 {
                let answer = new_answer(&mut rng, difficulty);
                assert_eq!(answer.len(), len, "{answer}");
                assert!(answer.chars().all(|c| ALPHABET.contains(c)), "{answer}");
            }
        }
    }

    #[test]
    fn the_alphabet_has_no_ambiguous_glyphs_and_no_repeats() {
        for c in "0O1IlQ2568".chars() {
            assert!(!ALPHABET.contains(c), "{c}");
        }
        let mut sorted: Vec<char> = ALPHABET.chars().collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALPHABET.len());
        assert!(ALPHABET
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    }

    #[test]
    fn renders_are_pngs_of_the_fixed_size_at_every_difficulty() {
        let renderer = TextRenderer::load(&datasets()).unwrap();
        let mut rng = SmallRng::seed_from_u64(2);
        for difficulty in 1..=5 {
            let answer = new_answer(&mut rng, difficulty);
            let png = renderer.render(&answer, difficulty, &mut rng);
            let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
            assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
            assert_eq!(image.color(), image::ColorType::L8);
            // Ink was drawn: a good share of the pixels is dark.
            let dark = image.to_luma8().pixels().filter(|p| p.0[0] < 110).count();
            assert!(dark > 600, "difficulty {difficulty}: {dark} dark pixels");
        }
    }

    #[test]
    fn the_same_seed_renders_the_same_image_and_others_differ() {
        let renderer = TextRenderer::load(&datasets()).unwrap();
        let render = |seed| renderer.render("KXR7", 3, &mut SmallRng::seed_from_u64(seed));
        assert_eq!(render(7), render(7));
        assert_ne!(render(7), render(8));
        // Another answer with the same seed is another picture too.
        let other = renderer.render("KXR9", 3, &mut SmallRng::seed_from_u64(7));
        assert_ne!(render(7), other);
    }

    #[test]
    fn lowercase_is_drawn_as_capitals_and_unknown_characters_are_left_out() {
        let renderer = TextRenderer::load(&datasets()).unwrap();
        let render = |answer| renderer.render(answer, 2, &mut SmallRng::seed_from_u64(3));
        assert_eq!(render("kxr7"), render("KXR7"));
        assert_eq!(render("K0X!R7"), render("KXR7"));
    }

    #[test]
    fn loading_a_missing_or_empty_dataset_names_the_file() {
        let missing = Path::new("/nonexistent/palisade-datasets");
        let err = TextRenderer::load(missing).unwrap_err();
        assert_eq!(
            err.path,
            "/nonexistent/palisade-datasets/fonts/DejaVuSans-Bold.ttf"
        );
        assert!(err.reason.starts_with("cannot read"), "{err}");

        let dir = std::env::temp_dir().join(format!("palisade-text-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("fonts")).unwrap();
        std::fs::write(dir.join("fonts/DejaVuSans-Bold.ttf"), b"not a font").unwrap();
        let err = TextRenderer::load(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.path.ends_with("fonts/DejaVuSans-Bold.ttf"), "{err}");
        assert!(err.reason.contains("not a TrueType"), "{err}");
    }
}
