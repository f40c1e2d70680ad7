//! The `chart` challenge, after OpenCaptcha's design: a chart drawn from
//! the site's own data, and a question about it with a closed set of
//! answers ("which of these three countries had the most active cases?").
//!
//! The operator names data tables (CSV, JSON, or an SQLite query:
//! [`table`]) and template configurations in `challenge.chart`. A
//! [`ChartKit`] holds both, loaded with the policy: every template checks
//! its parameters against the tables then ([`template::Template::new`]),
//! so a missing column is a load error with its path
//! (`challenge.chart.templates[2].value: table "cases" has no column
//! "active"`), never a failed challenge.
//!
//! Issuing picks a template at random and lets it pick rows
//! ([`template::Template::generate`]); the [`Challenge`] it returns (the
//! question, the chart's data and the choices) is the stored context's
//! layout, as JSON, and its answer the context's answer. The picture is
//! drawn afresh from the layout and the challenge's seed on each request
//! ([`render`]), with the jitter described there. An answer is one of the
//! choices, typed (within `companion.typo_tolerance`, and never nearer
//! another choice) or by its index.
//!
//! What a difficulty level means: the number of bars, slices or points
//! shown (and so the choices; each template documents its range, and a
//! template's `count` fixes it) and the amount of noise drawn over the
//! chart (60 specks and one stroke per level).

pub mod render;
pub mod shipped;
pub mod table;
pub mod template;

mod page;

pub use page::form_fields;
pub use render::{HEIGHT, WIDTH};

use crate::config::{ChallengeConfig, ChallengeKind, ConfigError};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::Path;
use table::Tables;
use template::{Generate, Registry};

/// What a template returns and the context keeps: the question, the
/// chart's data, and the choices offered (the answer is one of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    pub question: String,
    pub chart: Chart,
    pub choices: Vec<String>,
}

/// A chart's data, before jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub kind: ChartKind,
    /// The caption.
    pub title: String,
    /// One label per bar, slice or point.
    pub labels: Vec<String>,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    Bar,
    Line,
    Pie,
}

/// A challenge as issued: the context's layout and answer, and the
/// question to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    pub layout: String,
    pub answer: String,
    pub prompt: String,
}

/// A policy's tables and templates.
#[derive(Default)]
pub struct ChartKit {
    tables: Tables,
    templates: Vec<Generate>,
}

/// Seeds tried at load to show that each template can make a challenge.
const LOAD_TRIALS: u64 = 8;

impl ChartKit {
    /// No tables, no templates: every chart request falls back.
    pub fn empty() -> ChartKit {
        ChartKit::default()
    }

    /// Reads `challenge.chart` with the shipped templates; `datasets` is
    /// `companion.datasets` (for the font).
    pub fn load(challenge: &ChallengeConfig, datasets: &Path) -> Result<ChartKit, ConfigError> {
        ChartKit::load_with(challenge, datasets, &Registry::shipped())
    }

    /// Reads `challenge.chart` with the templates of `registry`.
    pub fn load_with(
        challenge: &ChallengeConfig,
        datasets: &Path,
        registry: &Registry,
    ) -> Result<ChartKit, ConfigError> {
        let config = &challenge.chart;
        if config.templates.is_empty() {
            if challenge.kind == ChallengeKind::Chart {
                return Err(ConfigError::new(
                    "challenge.chart.templates",
                    "`challenge.kind` is `chart`: give at least one template",
                ));
            }
            return Ok(ChartKit::empty());
        }
        render::register_font(datasets).map_err(|e| ConfigError::new("companion.datasets", e))?;
        let tables = Tables::load(&config.tables)?;
        let mut templates = Vec::with_capacity(config.templates.len());
        for (i, item) in config.templates.iter().enumerate() {
            let at = format!("challenge.chart.templates[{i}]");
            let template = registry.build(item, &tables, &at)?;
            let makes_one = (0..LOAD_TRIALS).any(|seed| {
                let mut rng = SmallRng::seed_from_u64(seed);
                template(&tables, 3, &mut rng).is_some()
            });
            if !makes_one {
                return Err(ConfigError::new(
                    at,
                    "the table has no rows this template can ask about (too few distinct labels, or no value that stands apart)",
                ));
            }
            templates.push(template);
        }
        Ok(ChartKit { tables, templates })
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// A new challenge at `difficulty` from a template picked at random;
    /// `None` without templates or when no template found rows this time.
    pub fn issue(&self, difficulty: u8, rng: &mut dyn RngCore) -> Option<Issued> {
        if self.templates.is_empty() {
            return None;
        }
        let first = rng.random_range(0..self.templates.len());
        // Every template once, from a random one on.
        (0..self.templates.len()).find_map(|k| {
            let template = &self.templates[(first + k) % self.templates.len()];
            let (challenge, answer) = template(&self.tables, difficulty, rng)?;
            if !challenge.choices.contains(&answer) {
                return None;
            }
            Some(Issued {
                layout: serde_json::to_string(&challenge).ok()?,
                prompt: challenge.question,
                answer,
            })
        })
    }
}

/// The challenge stored in a context's layout.
pub fn challenge_of(layout: &str) -> Option<Challenge> {
    serde_json::from_str(layout).ok()
}

/// The choices offered, in order.
pub fn choices(layout: &str) -> Vec<String> {
    challenge_of(layout).map(|c| c.choices).unwrap_or_default()
}

/// The picture of the challenge whose layout is `layout`.
pub fn render_layout(layout: &str, difficulty: u8, rng: &mut dyn RngCore) -> Option<Vec<u8>> {
    let challenge = challenge_of(layout)?;
    render::render(&challenge.chart, difficulty, rng).ok()
}

/// A given answer, typed or chosen by index.
#[derive(Debug, Clone, Copy)]
pub enum Given<'a> {
    Text(&'a str),
    Index(usize),
}

/// Whether `given` is `answer`: its index among the choices, or text
/// within `tolerance` edits of the answer ([`crate::challenge::text::matches`])
/// and farther from every other choice (a typo that could be either of two
/// answers is neither).
pub fn is_right(layout: &str, answer: &str, given: Given, tolerance: u8) -> bool {
    let choices = choices(layout);
    match given {
        Given::Index(i) => choices.get(i).is_some_and(|c| c == answer),
        Given::Text(text) => {
            use crate::challenge::text::matches;
            // The fewest edits that make it the answer; another choice as
            // near makes it ambiguous (months `2024-07` and `2024-08` are
            // one edit apart, yet typing either exactly is clear).
            let Some(edits) = (0..=tolerance).find(|&k| matches(answer, text, k)) else {
                return false;
            };
            !choices
                .iter()
                .filter(|c| *c != answer)
                .any(|other| matches(other, text, edits))
        }
    }
}

#[cfg(test)]
mod tests;
