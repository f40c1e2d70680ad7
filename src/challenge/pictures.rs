//! (stub until helper-a's module lands)
use super::{DatasetError, Lang};
use rand::Rng;
use std::path::Path;
pub struct PictureSet;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub category: u16,
    pub picture: u16,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Puzzle {
    pub target: u16,
    pub tiles: Vec<Tile>,
    pub answer: Vec<u8>,
}
impl PictureSet {
    pub fn load(_dir: &Path) -> Result<PictureSet, DatasetError> {
        Ok(PictureSet)
    }
    pub fn noun(&self, _category: u16, _lang: Lang) -> &str {
        "cat"
    }
    pub fn puzzle(&self, _grid: bool, _difficulty: u8, _rng: &mut impl Rng) -> Puzzle {
        Puzzle {
            target: 0,
            tiles: vec![Tile {
                category: 0,
                picture: 0,
            }],
            answer: vec![0],
        }
    }
    pub fn render_tile(&self, _tile: Tile, _difficulty: u8, _rng: &mut impl Rng) -> Vec<u8> {
        Vec::new()
    }
}
pub fn tiles_to_text(_t: &[Tile]) -> String {
    String::new()
}
pub fn tiles_from_text(_t: &str) -> Option<Vec<Tile>> {
    None
}
pub fn answer_to_text(_a: &[u8]) -> String {
    String::new()
}
pub fn answer_from_text(_t: &str) -> Option<Vec<u8>> {
    None
}
pub const TILE_SIZE: u32 = 96;
