//! Choosing a puzzle's tiles: the target category, where its pictures go,
//! and which other categories fill the rest.

use rand::seq::SliceRandom;
use rand::Rng;

/// A picture in the set: its category and its index within the category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    pub category: u16,
    pub picture: u16,
}

/// One puzzle: the category to find, the tiles in display order, and the
/// (sorted) indexes of the tiles showing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Puzzle {
    pub target: u16,
    pub tiles: Vec<Tile>,
    pub answer: Vec<u8>,
}

/// The most tiles a puzzle has (a 4×4 grid); indexes in answers are below.
pub const MAX_TILES: usize = 16;

/// How many tiles a puzzle has at `difficulty` (clamped to 1-5): one_click
/// offers 3, 4, 5, 6 or 8 choices, grid is 3×3 at 1-2 and 4×4 from 3.
pub fn tile_count(grid: bool, difficulty: u8) -> usize {
    let level = usize::from(difficulty.clamp(1, 5));
    match (grid, level) {
        (false, 5) => 8,
        (false, _) => level + 2,
        (true, 1 | 2) => 9,
        (true, _) => 16,
    }
}

/// A new puzzle over categories with these picture counts (each at least
/// one, at least two categories; the loader guarantees both).
pub fn generate(picture_counts: &[u16], grid: bool, difficulty: u8, rng: &mut impl Rng) -> Puzzle {
    let count = tile_count(grid, difficulty);
    let targets: u32 = if grid { rng.random_range(2..=4) } else { 1 };
    let target = rng.random_range(0..picture_counts.len());

    let mut tiles: Vec<Tile> = Vec::with_capacity(count);
    // The target's tiles show its pictures in turn from a random one, so a
    // category with several pictures shows different ones.
    let pictures = u32::from(picture_counts[target]);
    let first = rng.random_range(0..pictures);
    for i in 0..targets {
        tiles.push(tile(target, ((first + i) % pictures) as u16));
    }
    // Distractors come from distinct categories while there are enough.
    let others: Vec<usize> = (0..picture_counts.len()).filter(|&c| c != target).collect();
    let mut pool = others.clone();
    pool.shuffle(rng);
    while tiles.len() < count {
        let category = pool
            .pop()
            .unwrap_or_else(|| others[rng.random_range(0..others.len())]);
        tiles.push(tile(
            category,
            rng.random_range(0..picture_counts[category]),
        ));
    }
    tiles.shuffle(rng);
    let answer = (0..tiles.len())
        .filter(|&i| usize::from(tiles[i].category) == target)
        .map(|i| i as u8)
        .collect();
    Puzzle {
        target: target as u16,
        tiles,
        answer,
    }
}

fn tile(category: usize, picture: u16) -> Tile {
    Tile {
        category: category as u16,
        picture,
    }
}

/// Tiles as the service stores them: `category.picture`, comma-separated
/// (`3.1,7.0`).
pub fn tiles_to_text(tiles: &[Tile]) -> String {
    let parts: Vec<String> = tiles
        .iter()
        .map(|t| format!("{}.{}", t.category, t.picture))
        .collect();
    parts.join(",")
}

/// Reads [`tiles_to_text`]'s form: 1 to [`MAX_TILES`] tiles of plain
/// decimal numbers; `None` for anything else. Whether the tiles exist in a
/// set is the set's question (`PictureSet::parse_tiles`).
pub fn tiles_from_text(text: &str) -> Option<Vec<Tile>> {
    let tiles: Vec<Tile> = text
        .split(',')
        .map(|part| {
            let (category, picture) = part.split_once('.')?;
            Some(Tile {
                category: number(category)?,
                picture: number(picture)?,
            })
        })
        .collect::<Option<_>>()?;
    (tiles.len() <= MAX_TILES).then_some(tiles)
}

/// Tile indexes as the service stores them: comma-separated (`0,4,7`).
pub fn answer_to_text(answer: &[u8]) -> String {
    let parts: Vec<String> = answer.iter().map(u8::to_string).collect();
    parts.join(",")
}

/// Reads tile indexes in any order and returns them sorted; the empty text
/// is the empty selection. `None` for anything malformed, an index of
/// [`MAX_TILES`] or more, or an index given twice.
pub fn answer_from_text(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut indexes: Vec<u8> = text
        .split(',')
        .map(|part| number::<u8>(part).filter(|&i| usize::from(i) < MAX_TILES))
        .collect::<Option<_>>()?;
    indexes.sort_unstable();
    let before = indexes.len();
    indexes.dedup();
    (indexes.len() == before).then_some(indexes)
}

/// A plain decimal number: digits only (no sign, no spaces), in range.
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn puzzles_have_their_difficulty_s_size_and_an_exact_answer() {
        let counts = [
            3u16, 1, 2, 4, 1, 1, 2, 1, 1, 1, 3, 1, 1, 1, 1, 1, 2, 1, 1, 1,
        ];
        let mut rng = SmallRng::seed_from_u64(1);
        for grid in [false, true] {
            for difficulty in 0..=6 {
                for _ in 0..200 {
                    let p = generate(&counts, grid, difficulty, &mut rng);
                    assert_eq!(p.tiles.len(), tile_count(grid, difficulty));
                    let expected: Vec<u8> = (0..p.tiles.len() as u8)
                        .filter(|&i| p.tiles[usize::from(i)].category == p.target)
                        .collect();
                    assert_eq!(p.answer, expected);
                    if grid {
                        assert!((2..=4).contains(&p.answer.len()), "{p:?}");
                    } else {
                        assert_eq!(p.answer.len(), 1, "{p:?}");
                    }
                    for t in &p.tiles {
                        assert!(t.picture < counts[usize::from(t.category)], "{t:?}");
                    }
                    // Enough categories here: no distractor category twice.
                    let mut others: Vec<u16> = p
                        .tiles
                        .iter()
                        .map(|t| t.category)
                        .filter(|&c| c != p.target)
                        .collect();
                    let n = others.len();
                    others.sort_unstable();
                    others.dedup();
                    assert_eq!(others.len(), n, "{p:?}");
                }
            }
        }
        let sizes: Vec<usize> = (1..=5).map(|d| tile_count(false, d)).collect();
        assert_eq!(sizes, [3, 4, 5, 6, 8]);
        let sizes: Vec<usize> = (1..=5).map(|d| tile_count(true, d)).collect();
        assert_eq!(sizes, [9, 9, 16, 16, 16]);
    }

    #[test]
    fn few_categories_repeat_distractors_and_targets_vary_their_picture() {
        let mut rng = SmallRng::seed_from_u64(2);
        let p = generate(&[4, 1], true, 5, &mut rng);
        assert_eq!(p.tiles.len(), 16);
        let shown: Vec<u16> = p
            .tiles
            .iter()
            .filter(|t| t.category == p.target)
            .map(|t| t.picture)
            .collect();
        if p.target == 0 {
            let mut distinct = shown.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), shown.len(), "{shown:?}");
        }
    }

    #[test]
    fn every_category_is_drawn_as_a_target() {
        let counts = [1u16; 12];
        let mut rng = SmallRng::seed_from_u64(3);
        let mut seen = [false; 12];
        for _ in 0..500 {
            seen[usize::from(generate(&counts, false, 3, &mut rng).target)] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn text_forms_round_trip() {
        let tiles = vec![
            Tile {
                category: 3,
                picture: 1,
            },
            Tile {
                category: 65535,
                picture: 0,
            },
        ];
        assert_eq!(tiles_to_text(&tiles), "3.1,65535.0");
        assert_eq!(tiles_from_text(&tiles_to_text(&tiles)), Some(tiles));
        assert_eq!(answer_to_text(&[0, 4, 7]), "0,4,7");
        assert_eq!(answer_from_text("0,4,7"), Some(vec![0, 4, 7]));
        assert_eq!(answer_from_text("7,0,4"), Some(vec![0, 4, 7]));
        assert_eq!(answer_from_text(""), Some(vec![]));
        assert_eq!(answer_from_text("15"), Some(vec![15]));
    }

    #[test]
    fn malformed_or_out_of_range_text_is_rejected() {
        for bad in [
            "", ",", "3", "3.", ".1", "3.1,", "3.1,,4.0", "3.1.2", "-3.1", "+3.1", " 3.1", "3.1 ",
            "65536.0", "3.99999", "0x3.1", "३.1", "3.1;4.0",
        ] {
            assert_eq!(tiles_from_text(bad), None, "{bad:?}");
        }
        let seventeen = vec!["1.0"; 17].join(",");
        assert_eq!(tiles_from_text(&seventeen), None);
        assert!(tiles_from_text(&vec!["1.0"; 16].join(",")).is_some());
        for bad in [
            ",", "1,", ",1", "1,,2", "16", "256", "-1", "+1", "1 ", "a", "1,1", "0,3,0",
        ] {
            assert_eq!(answer_from_text(bad), None, "{bad:?}");
        }
    }
}
