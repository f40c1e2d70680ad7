//! (stub until helper-a's module lands)
use super::DatasetError;
use rand::Rng;
use std::path::Path;
pub struct TextRenderer;
impl TextRenderer {
    pub fn load(_dir: &Path) -> Result<TextRenderer, DatasetError> {
        Ok(TextRenderer)
    }
    pub fn render(&self, _answer: &str, _difficulty: u8, _rng: &mut impl Rng) -> Vec<u8> {
        Vec::new()
    }
}
pub fn new_answer(_rng: &mut impl Rng, _difficulty: u8) -> String {
    "ABCD".into()
}
pub const WIDTH: u32 = 200;
pub const HEIGHT: u32 = 70;
pub fn matches(answer: &str, given: &str, _tolerance: u8) -> bool {
    answer.eq_ignore_ascii_case(given)
}
pub fn default_tolerance(answer_len: usize) -> u8 {
    u8::from(answer_len >= 6)
}
