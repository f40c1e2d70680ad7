//! A second look at a right answer: how the page was solved.
//!
//! A script can read a text challenge or pick tiles as well as a person;
//! it rarely moves a pointer, types and waits like one. After a right
//! answer the companion scores the page's interaction record (the additive
//! baseline in [`crate::scoring::interaction`], and the interaction model
//! when one is loaded: the higher of the two counts) and, at or above
//! `scoring.interaction.threshold`, asks again: a harder challenge
//! (`escalate`), or a new one of the same kind (`reject`, also what a
//! bot-like answer to the harder challenge gets). No record, or an empty
//! one, is neutral: JavaScript off, the audio path and keyboard-only use
//! must never count against anyone.

use super::Passed;
use crate::config::{ChallengeKind, InteractionConfig, OnBotInteraction};
use crate::policy::ChallengeSpec;
use crate::scoring::{Interaction, Model, INTERACTION};
use std::path::Path;

/// The interaction settings and model, loaded with the policy.
#[derive(Debug)]
pub struct SecondLook {
    config: InteractionConfig,
    model: Option<Model>,
}

/// What a right answer gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judgement {
    /// The token. `score` is `None` when the page sent nothing to judge.
    Pass { score: Option<f32> },
    /// Not yet: this challenge next.
    AskAgain { next: ChallengeSpec, score: f32 },
}

impl SecondLook {
    /// Loads the model named in `config`. A missing or unreadable model is
    /// not fatal: the baseline still judges, and the reason is returned
    /// for the log.
    pub fn load(config: &InteractionConfig) -> (SecondLook, Option<String>) {
        let path = Path::new(&config.model);
        let (model, problem) = match std::fs::read_to_string(path) {
            Ok(text) => match Model::from_json(&text, &INTERACTION) {
                Ok(model) => (Some(model), None),
                Err(e) => (None, Some(format!("{}: {e}", path.display()))),
            },
            Err(e) => (None, Some(format!("{}: {e}", path.display()))),
        };
        let look = SecondLook {
            config: config.clone(),
            model,
        };
        (look, problem)
    }

    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    /// The interaction score, 0–100, or `None` when there is nothing to judge.
    pub fn score(&self, interaction: &Interaction) -> Option<f32> {
        let baseline = interaction.score()?;
        let learned = self
            .model
            .as_ref()
            .map_or(0.0, |m| m.score(&interaction.features()));
        Some(baseline.max(learned))
    }

    /// What a right answer to a challenge of `passed` gets.
    pub fn judge(&self, passed: Passed, interaction: Option<&Interaction>) -> Judgement {
        let Some(score) = interaction.and_then(|i| self.score(i)) else {
            return Judgement::Pass { score: None };
        };
        if score < f32::from(self.config.threshold) {
            return Judgement::Pass { score: Some(score) };
        }
        let same = ChallengeSpec {
            kind: passed.kind,
            difficulty: passed.difficulty,
        };
        let harder = ChallengeSpec {
            kind: self.config.escalate_to.kind.unwrap_or(ChallengeKind::Grid),
            difficulty: self
                .config
                .escalate_to
                .difficulty
                .unwrap_or(4)
                .max(passed.difficulty),
        };
        let escalated_already =
            passed.kind == harder.kind && passed.difficulty >= harder.difficulty;
        let next = match self.config.on_bot {
            OnBotInteraction::Escalate if !escalated_already => harder,
            _ => same,
        };
        Judgement::AskAgain { next, score }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(on_bot: OnBotInteraction) -> SecondLook {
        SecondLook {
            config: InteractionConfig {
                on_bot,
                ..InteractionConfig::default()
            },
            model: None,
        }
    }

    fn script() -> Interaction {
        Interaction {
            clicks: 1,
            jump_clicks: 1,
            solve_ms: Some(250.0),
            webdriver: true,
            ..Interaction::default()
        }
    }

    #[test]
    fn bot_like_answers_are_escalated_once_then_rejected() {
        let l = look(OnBotInteraction::Escalate);
        let text = Passed::new(ChallengeKind::Text, 2);
        let Judgement::AskAgain { next, .. } = l.judge(text, Some(&script())) else {
            panic!("passed a script")
        };
        assert_eq!((next.kind, next.difficulty), (ChallengeKind::Grid, 4));
        let grid = Passed::new(ChallengeKind::Grid, 4);
        let Judgement::AskAgain { next, .. } = l.judge(grid, Some(&script())) else {
            panic!("passed a script")
        };
        assert_eq!((next.kind, next.difficulty), (ChallengeKind::Grid, 4));
        let Judgement::AskAgain { next, .. } =
            look(OnBotInteraction::Reject).judge(text, Some(&script()))
        else {
            panic!("passed a script")
        };
        assert_eq!((next.kind, next.difficulty), (ChallengeKind::Text, 2));
    }

    #[test]
    fn no_record_is_neutral() {
        let l = look(OnBotInteraction::Escalate);
        let text = Passed::new(ChallengeKind::Audio, 3);
        assert_eq!(l.judge(text, None), Judgement::Pass { score: None });
        assert_eq!(
            l.judge(text, Some(&Interaction::default())),
            Judgement::Pass { score: None }
        );
    }
}
