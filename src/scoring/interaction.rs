//! How a person solved a challenge page: what the page's script records
//! (pointer, keys, focus, timing, automation tells), its features, and the
//! documented additive baseline that scores them.
//!
//! Missing data is neutral, never a penalty: no script (JavaScript off),
//! the audio path and keyboard-only use all produce no pointer data, and
//! [`Interaction::score`] then says nothing rather than something bad.

use super::features::Schema;
use serde::Deserialize;

/// What the page sends with an answer (the `interaction` form field, as
/// JSON). Every field is optional; unknown fields are ignored, since the
/// script may run a newer page than this companion.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Interaction {
    /// Pointer-move events before the answer.
    pub pointer_moves: u32,
    /// Distance the pointer travelled, CSS pixels.
    pub pointer_path_px: f32,
    /// Straight-line distance from the first to the last pointer position.
    pub pointer_span_px: f32,
    /// Mouse or pen clicks on the page (touch taps are not clicks: a
    /// finger arrives without moving across the page).
    pub clicks: u32,
    /// Clicks with fewer than three pointer moves before them: the pointer
    /// jumped to its target, as a script's pointer does.
    pub jump_clicks: u32,
    /// From page load to the first pointer, key or touch event.
    pub first_interaction_ms: Option<f32>,
    /// From page load to submitting the answer.
    pub solve_ms: Option<f32>,
    /// Intervals between key presses, milliseconds (at most 64 are sent).
    pub key_intervals_ms: Vec<f32>,
    pub focus_changes: u32,
    pub pastes: u32,
    /// `navigator.webdriver` was true.
    pub webdriver: bool,
    /// Names of the automation tells the page found (see `docs/scoring.md`).
    pub tells: Vec<String>,
}

/// The interaction model's inputs, in order.
pub const INTERACTION: Schema = Schema {
    name: "interaction-v1",
    features: &[],
    others: &INTERACTION_FEATURES,
};

/// The named interaction features. (Kept apart from the request features:
/// they describe one page visit, not a client over time.)
pub const INTERACTION_FEATURES: [&str; 10] = [
    "pointer_moves",
    "pointer_straightness",
    "jump_clicks",
    "first_interaction",
    "solve_time",
    "key_regularity",
    "focus_changes",
    "pastes",
    "webdriver",
    "tells",
];

fn log_scale(x: f32, full: f32) -> f32 {
    ((1.0 + x.max(0.0)).ln() / (1.0 + full).ln()).clamp(0.0, 1.0)
}

impl Interaction {
    /// Whether the page's script ran and saw the person do anything.
    pub fn is_present(&self) -> bool {
        self.solve_ms.is_some()
    }

    /// Coefficient of variation of the key intervals; `None` below 4 keys.
    pub fn key_cv(&self) -> Option<f32> {
        let k = &self.key_intervals_ms;
        if k.len() < 4 {
            return None;
        }
        let mean = k.iter().sum::<f32>() / k.len() as f32;
        if mean <= 0.0 {
            return Some(0.0);
        }
        let var = k.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / k.len() as f32;
        Some(var.sqrt() / mean)
    }

    /// The features, normalised to `[0, 1]` (documented in `docs/scoring.md`).
    /// Neutral values stand in where there is nothing to measure.
    pub fn features(&self) -> [f32; INTERACTION_FEATURES.len()] {
        let straightness = if self.pointer_moves >= 3 && self.pointer_path_px > 0.0 {
            (self.pointer_span_px / self.pointer_path_px).clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jumps = if self.clicks == 0 {
            0.0
        } else {
            (self.jump_clicks as f32 / self.clicks as f32).clamp(0.0, 1.0)
        };
        [
            log_scale(self.pointer_moves as f32, 500.0),
            straightness,
            jumps,
            log_scale(self.first_interaction_ms.unwrap_or(2000.0) / 1000.0, 60.0),
            log_scale(self.solve_ms.unwrap_or(10_000.0) / 1000.0, 300.0),
            // 1 is machine-regular typing; 1/3 when there is too little to say.
            1.0 - self.key_cv().map_or(2.0 / 3.0, |cv| cv.min(1.5) / 1.5),
            log_scale(self.focus_changes as f32, 10.0),
            log_scale(self.pastes as f32, 3.0),
            if self.webdriver { 1.0 } else { 0.0 },
            (self.tells.len() as f32 / 3.0).clamp(0.0, 1.0),
        ]
    }

    /// The additive baseline, 0–100; `None` when the page sent nothing.
    /// Each term is a tell no person produces by accident.
    pub fn score(&self) -> Option<f32> {
        if !self.is_present() {
            return None;
        }
        let mut score = 0.0;
        if self.webdriver {
            score += 60.0;
        }
        score += 25.0 * (self.tells.len().min(2) as f32);
        // Every click arrived with the pointer jumping to it: scripts put
        // the pointer on their target; a hand moves it there.
        if self.clicks > 0 && self.jump_clicks == self.clicks {
            score += 35.0;
        }
        // Answered faster than a person can read the question.
        if self.solve_ms.is_some_and(|ms| ms < 800.0) {
            score += 40.0;
        }
        // Typing with clockwork intervals.
        if self.key_cv().is_some_and(|cv| cv < 0.08) {
            score += 25.0;
        }
        // A perfectly straight pointer path over a real distance.
        if self.pointer_moves >= 3 && self.pointer_path_px > 50.0 {
            let straightness = self.pointer_span_px / self.pointer_path_px;
            if straightness > 0.995 {
                score += 15.0;
            }
        }
        Some(f32::min(score, 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Interaction {
        Interaction {
            pointer_moves: 140,
            pointer_path_px: 900.0,
            pointer_span_px: 420.0,
            clicks: 2,
            first_interaction_ms: Some(700.0),
            solve_ms: Some(6400.0),
            key_intervals_ms: vec![180.0, 95.0, 240.0, 130.0, 310.0],
            ..Interaction::default()
        }
    }

    #[test]
    fn missing_data_says_nothing_and_a_keyboard_only_person_scores_low() {
        assert_eq!(Interaction::default().score(), None);
        let keyboard = Interaction {
            solve_ms: Some(9000.0),
            first_interaction_ms: Some(1500.0),
            key_intervals_ms: vec![210.0, 160.0, 330.0, 120.0, 280.0, 190.0],
            focus_changes: 3,
            ..Interaction::default()
        };
        assert!(keyboard.score().unwrap() < 20.0);
        assert!(person().score().unwrap() < 20.0);
    }

    #[test]
    fn a_pointer_that_jumps_to_the_answer_and_a_fast_solve_score_high() {
        let script = Interaction {
            clicks: 1,
            jump_clicks: 1,
            solve_ms: Some(300.0),
            ..Interaction::default()
        };
        assert!(script.score().unwrap() >= 50.0);
        let driver = Interaction {
            webdriver: true,
            ..person()
        };
        assert!(driver.score().unwrap() >= 50.0);
    }

    #[test]
    fn features_are_bounded() {
        for f in person()
            .features()
            .iter()
            .chain(&Interaction::default().features())
        {
            assert!((0.0..=1.0).contains(f), "{f}");
        }
    }
}
