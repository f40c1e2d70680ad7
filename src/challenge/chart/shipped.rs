//! The shipped templates: `largest_bar`, `smallest_bar`, `line_peak`,
//! `largest_slice` and `compare_values`.
//!
//! Each picks rows at random and only keeps a draw whose answer a person
//! can see at a glance: the answer's value must stand apart from every
//! other shown by at least [`MARGIN`] of the largest (15% for pie slices,
//! whose angles are harder to compare than bar heights). Labels shown in
//! one chart are distinct.

use super::table::{Table, Tables};
use super::template::{self, fill_question, Registry, Template, TemplateError};
use super::{Challenge, Chart, ChartKind};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use serde::Deserialize;

/// How far apart, as a share of the largest value shown, the answer's
/// value must be from every other.
pub const MARGIN: f64 = 0.10;
const PIE_MARGIN: f64 = 0.15;
/// Draws tried before a template gives up on one challenge.
const DRAWS: usize = 64;
/// The longest label offered, in characters: a typed answer may be at
/// most 64 (`companion::input`).
pub const MAX_LABEL: usize = 64;

fn usable_label(label: &str) -> bool {
    !label.is_empty() && label.chars().count() <= MAX_LABEL
}

pub fn register(registry: &mut Registry) {
    registry
        .register::<ExtremeOf<LargestBar>>()
        .register::<ExtremeOf<SmallestBar>>()
        .register::<LinePeak>()
        .register::<ExtremeOf<LargestSlice>>()
        .register::<CompareValues>();
}

/// Parameters shared by the templates that show labelled values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesParams {
    /// The table's name in `challenge.chart.tables`.
    pub table: String,
    /// The column naming each bar, slice or point.
    pub label: String,
    /// The column of numbers drawn.
    pub value: String,
    /// The question; placeholders `{title}`, `{count}` (and `{a}`, `{b}`
    /// for `compare_values`). Each template has an English default.
    pub question: Option<String>,
    /// The chart's caption and what `{title}` says; default the value
    /// column's name.
    pub title: Option<String>,
    /// Bars, slices or points shown; default from the difficulty.
    pub count: Option<usize>,
}

/// A checked [`ValuesParams`].
#[derive(Debug, Clone)]
struct Values {
    table: String,
    label: usize,
    value: usize,
    question: String,
    title: String,
    count: Option<usize>,
}

impl Values {
    fn check(
        p: ValuesParams,
        tables: &Tables,
        default_question: &str,
        min: Option<f64>,
        counts: (usize, usize),
    ) -> Result<Values, TemplateError> {
        let table = template::table(tables, &p.table)?;
        let label = template::column(table, "label", &p.label)?;
        let value = template::number_column(table, "value", &p.value, min)?;
        if let Some(count) = p.count {
            if count < counts.0 || count > counts.1 {
                return Err(TemplateError::new(
                    "count",
                    format!("must be {} to {}", counts.0, counts.1),
                ));
            }
            if count > table.rows.len() {
                return Err(TemplateError::new(
                    "count",
                    format!(
                        "table \"{}\" has only {} rows",
                        table.name,
                        table.rows.len()
                    ),
                ));
            }
        }
        Ok(Values {
            table: p.table,
            label,
            value,
            question: p.question.unwrap_or_else(|| default_question.to_string()),
            title: p.title.unwrap_or(p.value),
            count: p.count,
        })
    }

    /// How many to show: the configured count, else `base + difficulty`
    /// within `counts`, and never more than the table has; `None` below
    /// two, which is no choice at all.
    fn count(
        &self,
        table: &Table,
        difficulty: u8,
        base: usize,
        counts: (usize, usize),
    ) -> Option<usize> {
        let count = self
            .count
            .unwrap_or_else(|| {
                (base + usize::from(difficulty.clamp(1, 5))).clamp(counts.0, counts.1)
            })
            .min(table.rows.len());
        (count >= 2).then_some(count)
    }

    fn question(&self, count: usize, extra: &[(&str, &str)]) -> String {
        let count = count.to_string();
        let mut values = vec![("title", self.title.as_str()), ("count", count.as_str())];
        values.extend_from_slice(extra);
        fill_question(&self.question, &values)
    }
}

/// `count` rows with distinct labels, at random.
fn pick_rows(
    table: &Table,
    values: &Values,
    count: usize,
    rng: &mut dyn RngCore,
) -> Option<Vec<usize>> {
    let mut rows: Vec<usize> = (0..table.rows.len()).collect();
    rows.shuffle(rng);
    let mut picked: Vec<usize> = Vec::with_capacity(count);
    for row in rows {
        let label = table.text(row, values.label);
        if !usable_label(label) || picked.iter().any(|&p| table.text(p, values.label) == label) {
            continue;
        }
        picked.push(row);
        if picked.len() == count {
            return Some(picked);
        }
    }
    None
}

/// The index (into `values`) of the largest (or smallest) value, when it
/// stands apart from every other by `margin` of the largest.
fn clear_extreme(values: &[f64], largest: bool, margin: f64) -> Option<usize> {
    let top = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Also refuses NaN: no value to compare against.
    if top.is_nan() || top <= 0.0 {
        return None;
    }
    let key = |v: f64| if largest { v } else { -v };
    let best = (0..values.len()).max_by(|&a, &b| key(values[a]).total_cmp(&key(values[b])))?;
    let apart = values
        .iter()
        .enumerate()
        .all(|(i, &v)| i == best || (values[best] - v).abs() >= margin * top);
    apart.then_some(best)
}

/// Draws rows until the extreme is clear; the labels, values and answer.
fn draw_extreme(
    tables: &Tables,
    values: &Values,
    count: usize,
    largest: bool,
    margin: f64,
    rng: &mut dyn RngCore,
) -> Option<(Vec<String>, Vec<f64>, String)> {
    let table = tables.get(&values.table)?;
    for _ in 0..DRAWS {
        let rows = pick_rows(table, values, count, rng)?;
        let numbers: Vec<f64> = rows
            .iter()
            .map(|&r| table.number(r, values.value))
            .collect::<Option<_>>()?;
        if let Some(best) = clear_extreme(&numbers, largest, margin) {
            let labels: Vec<String> = rows
                .iter()
                .map(|&r| table.text(r, values.label).to_string())
                .collect();
            let answer = labels[best].clone();
            return Some((labels, numbers, answer));
        }
    }
    None
}

fn shuffled(labels: &[String], rng: &mut dyn RngCore) -> Vec<String> {
    let mut choices = labels.to_vec();
    choices.shuffle(rng);
    choices
}

const BAR_COUNTS: (usize, usize) = (2, 8);

/// What tells apart the templates that ask which value is the extreme.
pub struct ExtremeSpec {
    pub config_name: &'static str,
    /// The default question.
    pub question: &'static str,
    pub kind: ChartKind,
    /// Whether the answer is the largest value (else the smallest).
    pub largest: bool,
    /// How far apart the answer must stand ([`MARGIN`], or more).
    pub margin: f64,
    /// The counts a policy may configure.
    pub counts: (usize, usize),
    /// The default count is `default_base` plus the difficulty, within
    /// `default_counts`.
    pub default_base: usize,
    pub default_counts: (usize, usize),
    /// Whether every value shown must be above zero.
    pub positive: bool,
}

/// A type naming an [`ExtremeSpec`], so that each is a template of its own.
pub trait Extreme: Send + Sync + 'static {
    const SPEC: ExtremeSpec;
}

/// A template asking which of the rows shown has the extreme value, as
/// [`Extreme`] `S` says.
pub struct ExtremeOf<S> {
    values: Values,
    spec: std::marker::PhantomData<S>,
}

impl<S: Extreme> Template for ExtremeOf<S> {
    const CONFIG_NAME: &'static str = S::SPEC.config_name;
    type Params = ValuesParams;

    fn new(params: ValuesParams, tables: &Tables) -> Result<Self, TemplateError> {
        let values = Values::check(params, tables, S::SPEC.question, Some(0.0), S::SPEC.counts)?;
        Ok(ExtremeOf {
            values,
            spec: std::marker::PhantomData,
        })
    }

    fn generate(
        &self,
        tables: &Tables,
        difficulty: u8,
        rng: &mut dyn RngCore,
    ) -> Option<(Challenge, String)> {
        let (values, spec) = (&self.values, &S::SPEC);
        let table = tables.get(&values.table)?;
        let count = values.count(table, difficulty, spec.default_base, spec.default_counts)?;
        let (labels, numbers, answer) =
            draw_extreme(tables, values, count, spec.largest, spec.margin, rng)?;
        if spec.positive && numbers.iter().any(|&v| v <= 0.0) {
            return None;
        }
        let choices = shuffled(&labels, rng);
        let chart = Chart {
            kind: spec.kind,
            title: values.title.clone(),
            labels,
            values: numbers,
        };
        Some((
            template::challenge(values.question(count, &[]), chart, choices),
            answer,
        ))
    }
}

/// "Which bar shows the highest …?": a bar chart of 3 to 7 rows (2 plus
/// the difficulty), the answer the tallest bar.
pub struct LargestBar;

impl Extreme for LargestBar {
    const SPEC: ExtremeSpec = ExtremeSpec {
        config_name: "largest_bar",
        question: "Which of these has the highest {title}?",
        kind: ChartKind::Bar,
        largest: true,
        margin: MARGIN,
        counts: BAR_COUNTS,
        default_base: 2,
        default_counts: BAR_COUNTS,
        positive: false,
    };
}

/// "Which bar shows the lowest …?": as [`LargestBar`], the shortest bar.
pub struct SmallestBar;

impl Extreme for SmallestBar {
    const SPEC: ExtremeSpec = ExtremeSpec {
        config_name: "smallest_bar",
        question: "Which of these has the lowest {title}?",
        largest: false,
        ..LargestBar::SPEC
    };
}

/// "Which slice of the pie is the largest?": a pie of 3 to 6 rows, every
/// one above zero (a slice of nothing cannot be seen, nor labelled where
/// it is).
pub struct LargestSlice;

impl Extreme for LargestSlice {
    const SPEC: ExtremeSpec = ExtremeSpec {
        config_name: "largest_slice",
        question: "Which slice of the pie is the largest?",
        kind: ChartKind::Pie,
        margin: PIE_MARGIN,
        counts: (2, 7),
        default_counts: (3, 6),
        positive: true,
        ..LargestBar::SPEC
    };
}

const LINE_COUNTS: (usize, usize) = (3, 12);

/// "At which point is … highest?": a line through consecutive rows (in
/// table order: years, months), 5 to 9 points; the choices are the
/// points' labels in order.
pub struct LinePeak(Values);

impl Template for LinePeak {
    const CONFIG_NAME: &'static str = "line_peak";
    type Params = ValuesParams;

    fn new(params: ValuesParams, tables: &Tables) -> Result<Self, TemplateError> {
        Values::check(
            params,
            tables,
            "At which point is the {title} highest?",
            None,
            LINE_COUNTS,
        )
        .map(LinePeak)
    }

    fn generate(
        &self,
        tables: &Tables,
        difficulty: u8,
        rng: &mut dyn RngCore,
    ) -> Option<(Challenge, String)> {
        let values = &self.0;
        let table = tables.get(&values.table)?;
        let count = values.count(table, difficulty, 4, (5, 9))?;
        let starts = table.rows.len().checked_sub(count)? + 1;
        for _ in 0..DRAWS {
            let start = rng.random_range(0..starts);
            let rows: Vec<usize> = (start..start + count).collect();
            let labels: Vec<String> = rows
                .iter()
                .map(|&r| table.text(r, values.label).to_string())
                .collect();
            if labels
                .iter()
                .enumerate()
                .any(|(i, l)| !usable_label(l) || labels[..i].contains(l))
            {
                continue;
            }
            let numbers: Vec<f64> = rows
                .iter()
                .map(|&r| table.number(r, values.value))
                .collect::<Option<_>>()?;
            // Measured against the line's own range, so a line far above
            // zero still has a peak to see.
            let low = numbers.iter().copied().fold(f64::INFINITY, f64::min);
            let lifted: Vec<f64> = numbers.iter().map(|v| v - low).collect();
            if let Some(best) = clear_extreme(&lifted, true, MARGIN) {
                let answer = labels[best].clone();
                let chart = Chart {
                    kind: ChartKind::Line,
                    title: values.title.clone(),
                    labels: labels.clone(),
                    values: numbers,
                };
                return Some((
                    template::challenge(values.question(count, &[]), chart, labels),
                    answer,
                ));
            }
        }
        None
    }
}

/// Parameters of `compare_values`: as [`ValuesParams`], and `fewer` to ask
/// which is lower.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    pub table: String,
    pub label: String,
    pub value: String,
    pub question: Option<String>,
    pub title: Option<String>,
    pub count: Option<usize>,
    /// Ask for the lower of the two instead of the higher.
    #[serde(default)]
    pub fewer: bool,
}

/// "Which is higher: A or B?": a bar chart of 2 to 6 rows (1 plus the
/// difficulty, at least 2), two of them named in the question; the
/// choices are those two.
pub struct CompareValues {
    values: Values,
    fewer: bool,
}

impl Template for CompareValues {
    const CONFIG_NAME: &'static str = "compare_values";
    type Params = CompareParams;

    fn new(p: CompareParams, tables: &Tables) -> Result<Self, TemplateError> {
        let default = if p.fewer {
            "Which has the lower {title}: {a} or {b}?"
        } else {
            "Which has the higher {title}: {a} or {b}?"
        };
        let values = Values::check(
            ValuesParams {
                table: p.table,
                label: p.label,
                value: p.value,
                question: p.question,
                title: p.title,
                count: p.count,
            },
            tables,
            default,
            Some(0.0),
            BAR_COUNTS,
        )?;
        Ok(CompareValues {
            values,
            fewer: p.fewer,
        })
    }

    fn generate(
        &self,
        tables: &Tables,
        difficulty: u8,
        rng: &mut dyn RngCore,
    ) -> Option<(Challenge, String)> {
        let values = &self.values;
        let table = tables.get(&values.table)?;
        let count = values.count(table, difficulty, 1, (2, 6))?;
        for _ in 0..DRAWS {
            let rows = pick_rows(table, values, count, rng)?;
            let numbers: Vec<f64> = rows
                .iter()
                .map(|&r| table.number(r, values.value))
                .collect::<Option<_>>()?;
            let a = rng.random_range(0..count);
            let b = (a + rng.random_range(1..count)) % count;
            let pair = [numbers[a], numbers[b]];
            let Some(best) = clear_extreme(&pair, !self.fewer, MARGIN) else {
                continue;
            };
            let labels: Vec<String> = rows
                .iter()
                .map(|&r| table.text(r, values.label).to_string())
                .collect();
            let (name_a, name_b) = (labels[a].clone(), labels[b].clone());
            let answer = if best == 0 {
                name_a.clone()
            } else {
                name_b.clone()
            };
            let question = values.question(count, &[("a", &name_a), ("b", &name_b)]);
            let chart = Chart {
                kind: ChartKind::Bar,
                title: values.title.clone(),
                labels,
                values: numbers,
            };
            return Some((
                template::challenge(question, chart, vec![name_a, name_b]),
                answer,
            ));
        }
        None
    }
}
