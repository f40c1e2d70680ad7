//! The `one_click` and `grid` challenges: find the pictures of a category.
//!
//! A [`PictureSet`] holds the categories of `datasets/images/` (nouns in
//! every [`Lang`] and decoded pictures), read once at startup. It makes a
//! [`Puzzle`] (which category to find, the tiles, which of them are right)
//! and renders each [`Tile`] as a JPEG of [`TILE_SIZE`]², transformed afresh
//! every time from the `rng` passed in. [`tiles_to_text`] and
//! [`answer_to_text`] (and their parsers) are the compact forms the service
//! stores.
//!
//! What a difficulty level means for the puzzle:
//!
//! | level | one_click | grid |
//! | --- | --- | --- |
//! | 1 | 3 choices | 3×3 |
//! | 2 | 4 choices | 3×3 |
//! | 3 | 5 choices | 4×4 |
//! | 4 | 6 choices | 4×4 |
//! | 5 | 8 choices | 4×4 |
//!
//! one_click has exactly one tile of the target category; grid has 2 to 4
//! (drawn evenly). The other tiles come from distinct other categories, and
//! the target's tiles show its different pictures where it has several.
//!
//! And for each tile's render (sizes as shares of the tile):
//!
//! | level | rotation | size | offset | hue | brightness | noise | shapes | fragments | lines over | JPEG quality |
//! | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
//! | 1 | ±10° | 0.70–0.80 | ±5% | ±10° | ±8% | ±6 | 4 | 1 | 0 | 80–92 |
//! | 2 | ±18° | 0.66–0.80 | ±7% | ±16° | ±11% | ±9 | 6 | 1 | 0 | 72–88 |
//! | 3 | ±26° | 0.62–0.80 | ±9% | ±22° | ±14% | ±12 | 8 | 2 | 1 | 64–84 |
//! | 4 | ±34° | 0.58–0.80 | ±11% | ±28° | ±17% | ±15 | 10 | 2 | 1 | 56–80 |
//! | 5 | ±42° | 0.54–0.80 | ±13% | ±34° | ±20% | ±18 | 12 | 3 | 2 | 48–76 |
//!
//! - Every render also mirrors the picture at random and lays it over a
//!   two-colour gradient in a random direction.
//! - *shapes* are translucent circles, turned rectangles and strokes behind
//!   the picture; *fragments* are faint (15–30% opacity), desaturated,
//!   hue-shifted pieces of other categories' pictures centred near the edge,
//!   so only part of each shows; *lines over* are thin translucent strokes
//!   across the picture.
//! - *noise* is uniform per channel, in grey levels, before the JPEG encode.

mod dataset;
mod puzzle;
mod render;

use std::path::Path;

use rand::Rng;

use crate::challenge::{DatasetError, Lang};

pub use puzzle::{
    answer_from_text, answer_to_text, tile_count, tiles_from_text, tiles_to_text, Puzzle, Tile,
    MAX_TILES,
};
pub use render::TILE_SIZE;

/// The picture categories, prepared once.
#[derive(Debug, Clone)]
pub struct PictureSet {
    categories: Vec<dataset::Category>,
    /// Each category's picture count, as puzzles are drawn from.
    picture_counts: Vec<u16>,
}

impl PictureSet {
    /// Reads `datasets_dir/images/`: `categories.tsv` and one directory of
    /// PNGs per category. The error names the file or directory that is
    /// missing, malformed or empty.
    pub fn load(datasets_dir: &Path) -> Result<PictureSet, DatasetError> {
        let categories = dataset::load(&datasets_dir.join("images"))?;
        // The loader caps both counts at u16::MAX.
        let picture_counts = categories.iter().map(|c| c.pictures.len() as u16).collect();
        Ok(PictureSet {
            categories,
            picture_counts,
        })
    }

    /// The number of categories.
    pub fn len(&self) -> usize {
        self.categories.len()
    }

    /// Always false: a loaded set has at least two categories.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    /// The category's noun in `lang` ("cat", "Katze"); `None` for a
    /// category the set does not have.
    pub fn noun(&self, category: u16, lang: Lang) -> Option<&str> {
        let nouns = &self.categories.get(usize::from(category))?.nouns;
        let index = Lang::ALL.iter().position(|&l| l == lang)?;
        Some(&nouns[index])
    }

    /// Whether the set has this tile's picture.
    pub fn contains(&self, tile: Tile) -> bool {
        self.picture_counts
            .get(usize::from(tile.category))
            .is_some_and(|&count| tile.picture < count)
    }

    /// [`tiles_from_text`], and every tile in this set.
    pub fn parse_tiles(&self, text: &str) -> Option<Vec<Tile>> {
        tiles_from_text(text).filter(|tiles| tiles.iter().all(|&t| self.contains(t)))
    }

    /// A new puzzle at `difficulty` (clamped to 1-5). `grid`: false makes a
    /// one_click puzzle.
    pub fn puzzle(&self, grid: bool, difficulty: u8, rng: &mut impl Rng) -> Puzzle {
        puzzle::generate(&self.picture_counts, grid, difficulty, rng)
    }

    /// One tile as a JPEG of [`TILE_SIZE`]², transformed afresh from
    /// `(tile, difficulty, rng)`; `None` for a tile the set does not have.
    pub fn render_tile(&self, tile: Tile, difficulty: u8, rng: &mut impl Rng) -> Option<Vec<u8>> {
        self.contains(tile)
            .then(|| render::render(&self.categories, tile, difficulty, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::path::PathBuf;

    fn datasets() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
    }

    fn shipped() -> PictureSet {
        PictureSet::load(&datasets()).unwrap()
    }

    /// A scratch datasets directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("palisade-pictures-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("images")).unwrap();
            Scratch(dir)
        }

        fn write(&self, path: &str, bytes: &[u8]) {
            let path = self.0.join("images").join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const TABLE: &str =
        "id\ten\tde\tfr\tes\ncat\tcat\tKatze\tchat\tgato\ndog\tdog\tHund\tchien\tperro\n";

    /// Files of a scratch dataset: path under `images/`, contents.
    type Files<'a> = &'a [(&'a str, &'a [u8])];

    const CAT_PNG: &[u8] = include_bytes!("../../../datasets/images/cat/cat.png");

    #[test]
    fn the_shipped_set_has_forty_categories_with_four_nouns_each() {
        let set = shipped();
        assert!(set.len() >= 40, "{}", set.len());
        for c in 0..set.len() as u16 {
            for lang in Lang::ALL {
                assert!(!set.noun(c, lang).unwrap().is_empty());
            }
            let pictures = set.picture_counts[usize::from(c)];
            assert!((1..=4).contains(&pictures), "category {c}: {pictures}");
        }
        let cat = (0..set.len() as u16)
            .find(|&c| set.noun(c, Lang::En) == Some("cat"))
            .unwrap();
        assert_eq!(set.noun(cat, Lang::De), Some("Katze"));
        assert_eq!(set.noun(cat, Lang::Fr), Some("chat"));
        assert_eq!(set.noun(cat, Lang::Es), Some("gato"));
        assert_eq!(set.noun(set.len() as u16, Lang::En), None);
    }

    /// Every file of the shipped set, as bytes.
    fn shipped_files() -> std::collections::HashSet<Vec<u8>> {
        let images = datasets().join("images");
        let mut files = std::collections::HashSet::new();
        for dir in std::fs::read_dir(&images).unwrap() {
            let dir = dir.unwrap().path();
            if dir.is_dir() {
                for file in std::fs::read_dir(&dir).unwrap() {
                    files.insert(std::fs::read(file.unwrap().path()).unwrap());
                }
            }
        }
        files
    }

    #[test]
    fn tiles_are_jpegs_of_the_tile_size_that_never_repeat_or_match_the_source() {
        let set = shipped();
        let sources = shipped_files();
        assert!(sources.len() > 40);
        let tile = Tile {
            category: 0,
            picture: 0,
        };
        let mut rng = SmallRng::seed_from_u64(1);
        for difficulty in 1..=5 {
            let a = set.render_tile(tile, difficulty, &mut rng).unwrap();
            let b = set.render_tile(tile, difficulty, &mut rng).unwrap();
            assert_ne!(a, b);
            assert!(!sources.contains(&a) && !sources.contains(&b));
            let image = image::load_from_memory_with_format(&a, image::ImageFormat::Jpeg).unwrap();
            assert_eq!(image.dimensions(), (TILE_SIZE, TILE_SIZE));
            // Not just the bytes: the pixels of two renders differ a lot.
            let other = image::load_from_memory(&b).unwrap().to_rgb8();
            let changed = image
                .to_rgb8()
                .pixels()
                .zip(other.pixels())
                .filter(|(p, q)| p.0.iter().zip(q.0).any(|(x, y)| x.abs_diff(y) > 24))
                .count();
            assert!(
                changed > 2000,
                "difficulty {difficulty}: {changed} pixels changed"
            );
        }
        // The same seed renders the same tile (a challenge re-renders alike).
        let render = |seed| set.render_tile(tile, 3, &mut SmallRng::seed_from_u64(seed));
        assert_eq!(render(9), render(9));
    }

    #[test]
    fn a_render_still_shows_its_picture() {
        // A crude perceptual check: the picture still dominates the middle
        // of the tile, so the average colour there is nearer to its own
        // picture's than to those of most other categories.
        let set = shipped();
        let mut rng = SmallRng::seed_from_u64(4);
        let mean_colour = |sprite: &dataset::Sprite| -> [f32; 3] {
            let mut sum = [0.0f32; 3];
            let mut weight = 0.0;
            for p in &sprite.pixels {
                for c in 0..3 {
                    sum[c] += f32::from(p[c]);
                }
                weight += f32::from(p[3]) / 255.0;
            }
            sum.map(|s| s / weight.max(1.0))
        };
        let trials = 40;
        for difficulty in [1, 5] {
            let mut closest = 0;
            for i in 0..trials {
                let category = (i * 7 % set.len()) as u16;
                let tile = Tile {
                    category,
                    picture: 0,
                };
                let jpeg = set.render_tile(tile, difficulty, &mut rng).unwrap();
                let image = image::load_from_memory(&jpeg).unwrap().to_rgb8();
                let mut centre = [0.0f32; 3];
                let mut n = 0.0;
                for y in 40..60 {
                    for x in 40..60 {
                        let p = image.get_pixel(x, y).0;
                        for c in 0..3 {
                            centre[c] += f32::from(p[c]);
                        }
                        n += 1.0;
                    }
                }
                let centre = centre.map(|c| c / n);
                let distance =
                    |m: [f32; 3]| (0..3).map(|c| (m[c] - centre[c]).powi(2)).sum::<f32>();
                let own = distance(mean_colour(
                    &set.categories[usize::from(category)].pictures[0],
                ));
                let nearer = set
                    .categories
                    .iter()
                    .filter(|c| distance(mean_colour(&c.pictures[0])) < own)
                    .count();
                if nearer < set.len() / 4 {
                    closest += 1;
                }
            }
            assert!(
                closest >= trials * 3 / 4,
                "difficulty {difficulty}: {closest} of {trials}"
            );
        }
    }

    #[test]
    fn unknown_tiles_are_not_rendered_or_parsed() {
        let set = shipped();
        let mut rng = SmallRng::seed_from_u64(2);
        let past_end = Tile {
            category: set.len() as u16,
            picture: 0,
        };
        assert!(!set.contains(past_end));
        assert_eq!(set.render_tile(past_end, 1, &mut rng), None);
        assert_eq!(
            set.render_tile(
                Tile {
                    category: 0,
                    picture: 99
                },
                1,
                &mut rng
            ),
            None
        );
        assert_eq!(
            set.parse_tiles("0.0,1.0"),
            Some(vec![
                Tile {
                    category: 0,
                    picture: 0
                },
                Tile {
                    category: 1,
                    picture: 0
                }
            ])
        );
        assert_eq!(set.parse_tiles(&format!("0.0,{}.0", set.len())), None);
        assert_eq!(set.parse_tiles("0.99"), None);
    }

    #[test]
    fn puzzles_from_the_set_render_every_tile() {
        let set = shipped();
        let mut rng = SmallRng::seed_from_u64(3);
        for grid in [false, true] {
            for difficulty in 1..=5 {
                let puzzle = set.puzzle(grid, difficulty, &mut rng);
                assert_eq!(
                    set.parse_tiles(&tiles_to_text(&puzzle.tiles)),
                    Some(puzzle.tiles.clone())
                );
                for &tile in &puzzle.tiles {
                    assert!(set.render_tile(tile, difficulty, &mut rng).is_some());
                }
            }
        }
    }

    #[test]
    fn a_small_set_loads_and_its_nouns_follow_the_header() {
        let scratch = Scratch::new("small");
        // Columns in another order: nouns are found by header.
        scratch.write(
            "categories.tsv",
            b"id\tfr\ten\tes\tde\ncat\tchat\tcat\tgato\tKatze\ndog\tchien\tdog\tperro\tHund\n",
        );
        scratch.write("cat/a.png", CAT_PNG);
        scratch.write("cat/notes.txt", b"ignored");
        scratch.write("dog/a.png", CAT_PNG);
        scratch.write("dog/b.png", CAT_PNG);
        let set = PictureSet::load(&scratch.0).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.noun(1, Lang::De), Some("Hund"));
        assert_eq!(set.noun(0, Lang::Fr), Some("chat"));
        assert_eq!(set.picture_counts, [1, 2]);
    }

    #[test]
    fn loading_errors_name_the_file_and_the_reason() {
        let missing = PictureSet::load(Path::new("/nonexistent/palisade")).unwrap_err();
        assert_eq!(missing.path, "/nonexistent/palisade/images/categories.tsv");
        assert!(missing.reason.starts_with("cannot read"), "{missing}");

        // (case, files written, the error's path ends with, its reason contains)
        let cases: [(&str, Files, &str, &str); 8] = [
            (
                "empty",
                &[("categories.tsv", b"")],
                "categories.tsv",
                "empty file",
            ),
            (
                "header",
                &[("categories.tsv", b"name\ten\tde\tfr\tes\n")],
                "categories.tsv",
                "line 1",
            ),
            (
                "lang",
                &[("categories.tsv", b"id\ten\tde\tfr\n")],
                "categories.tsv",
                "no column `es`",
            ),
            (
                "columns",
                &[("categories.tsv", b"id\ten\tde\tfr\tes\ncat\tcat\n")],
                "categories.tsv",
                "line 2: 2 columns",
            ),
            (
                "traversal",
                &[(
                    "categories.tsv",
                    b"id\ten\tde\tfr\tes\n../x\ta\tb\tc\td\ny\ta\tb\tc\td\n",
                )],
                "categories.tsv",
                "line 2: id",
            ),
            (
                "one",
                &[(
                    "categories.tsv",
                    b"id\ten\tde\tfr\tes\ncat\tcat\tKatze\tchat\tgato\n",
                )],
                "categories.tsv",
                "at least two",
            ),
            (
                "nodir",
                &[("categories.tsv", TABLE.as_bytes()), ("cat/a.png", CAT_PNG)],
                "images/dog",
                "cannot read",
            ),
            (
                "badpng",
                &[
                    ("categories.tsv", TABLE.as_bytes()),
                    ("cat/a.png", b"not a png"),
                    ("dog/a.png", CAT_PNG),
                ],
                "images/cat/a.png",
                "not a PNG",
            ),
        ];
        for (name, files, path, reason) in cases {
            let scratch = Scratch::new(name);
            for (file, bytes) in files {
                scratch.write(file, bytes);
            }
            let err = PictureSet::load(&scratch.0).unwrap_err();
            assert!(err.path.ends_with(path), "{name}: {err}");
            assert!(err.reason.contains(reason), "{name}: {err}");
        }

        let scratch = Scratch::new("nopictures");
        scratch.write("categories.tsv", TABLE.as_bytes());
        scratch.write("cat/readme.txt", b"");
        scratch.write("dog/a.png", CAT_PNG);
        let err = PictureSet::load(&scratch.0).unwrap_err();
        assert!(err.path.ends_with("images/cat"), "{err}");
        assert_eq!(err.reason, "no .png pictures");
    }
}
