//! The template kit: what a chart template is, and the registry that
//! turns the policy's template configurations into templates.
//!
//! A template is a Rust type implementing [`Template`]: its name in the
//! policy ([`Template::CONFIG_NAME`]), its own parameters
//! ([`Template::Params`], read from the configuration item with unknown
//! fields refused), a constructor that checks the parameters against the
//! tables once, at load, and [`Template::generate`], which picks rows and
//! returns the challenge shown and its answer. `docs/chart-template.md`
//! walks through writing one; [`Registry::register`] adds it.

use super::table::{Table, Tables};
use super::{Challenge, Chart};
use crate::config::{ConfigError, TemplateConfig};
use rand::RngCore;
use serde::de::DeserializeOwned;

/// A chart challenge template.
pub trait Template: Sized + Send + Sync + 'static {
    /// The name the policy gives in `template:`.
    const CONFIG_NAME: &'static str;
    /// The template's own parameters: every field of the configuration
    /// item but `template`.
    type Params: DeserializeOwned;

    /// Checks `params` against `tables` (tables and columns exist, values
    /// are numbers) and prepares the template. Runs when the policy loads,
    /// so a mistake is a load error, never a failed challenge.
    fn new(params: Self::Params, tables: &Tables) -> Result<Self, TemplateError>;

    /// A new challenge from `tables` and its answer (one of the
    /// challenge's choices). `difficulty` is 1 to 5. Everything random
    /// comes from `rng`. `None` when this draw found no rows a person could
    /// tell apart on a chart; the kit then draws again.
    fn generate(
        &self,
        tables: &Tables,
        difficulty: u8,
        rng: &mut dyn RngCore,
    ) -> Option<(Challenge, String)>;
}

/// A parameter that does not fit the tables: which parameter, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The parameter's name (`value`), or empty for the item as a whole.
    pub field: String,
    pub reason: String,
}

impl TemplateError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> TemplateError {
        TemplateError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A built template's [`Template::generate`], its type erased, as the kit
/// holds it.
pub(super) type Generate =
    Box<dyn Fn(&Tables, u8, &mut dyn RngCore) -> Option<(Challenge, String)> + Send + Sync>;

type Build = fn(&TemplateConfig, &Tables, &str) -> Result<Generate, ConfigError>;

/// The templates a policy may name.
pub struct Registry {
    builders: Vec<(&'static str, Build)>,
}

impl Registry {
    /// No templates at all.
    pub fn empty() -> Registry {
        Registry {
            builders: Vec::new(),
        }
    }

    /// The shipped templates (`super::shipped`).
    pub fn shipped() -> Registry {
        let mut registry = Registry::empty();
        super::shipped::register(&mut registry);
        registry
    }

    /// Adds `T` under its [`Template::CONFIG_NAME`]; a later registration
    /// of the same name replaces an earlier one.
    pub fn register<T: Template>(&mut self) -> &mut Registry {
        self.builders.retain(|(name, _)| *name != T::CONFIG_NAME);
        self.builders.push((T::CONFIG_NAME, build::<T>));
        self
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.builders.iter().map(|(name, _)| *name).collect()
    }

    /// Builds the template of configuration item `at`.
    pub(super) fn build(
        &self,
        config: &TemplateConfig,
        tables: &Tables,
        at: &str,
    ) -> Result<Generate, ConfigError> {
        let (_, build) = self
            .builders
            .iter()
            .find(|(name, _)| *name == config.template)
            .ok_or_else(|| {
                ConfigError::new(
                    format!("{at}.template"),
                    format!(
                        "no chart template `{}` (there are: {})",
                        config.template,
                        self.names().join(", ")
                    ),
                )
            })?;
        build(config, tables, at)
    }
}

fn build<T: Template>(
    config: &TemplateConfig,
    tables: &Tables,
    at: &str,
) -> Result<Generate, ConfigError> {
    let params = serde_json::Value::Object(config.params.clone());
    let params: T::Params = serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let here = if path == "." {
            at.to_string()
        } else {
            format!("{at}.{path}")
        };
        ConfigError::new(here, e.into_inner().to_string())
    })?;
    let template = T::new(params, tables).map_err(|e| {
        let here = if e.field.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{}", e.field)
        };
        ConfigError::new(here, e.reason)
    })?;
    Ok(Box::new(move |tables, difficulty, rng| {
        template.generate(tables, difficulty, rng)
    }))
}

/// Helpers for templates' constructors: tables and columns by name, with
/// the errors a policy author can act on.
pub fn table<'a>(tables: &'a Tables, name: &str) -> Result<&'a Table, TemplateError> {
    tables.get(name).ok_or_else(|| {
        let names: Vec<&str> = tables.0.keys().map(String::as_str).collect();
        TemplateError::new(
            "table",
            if names.is_empty() {
                format!("no table \"{name}\" (`challenge.chart.tables` is empty)")
            } else {
                format!("no table \"{name}\" (there are: {})", names.join(", "))
            },
        )
    })
}

/// The index of column `name` of `table`; `field` is the parameter that
/// named it.
pub fn column(table: &Table, field: &str, name: &str) -> Result<usize, TemplateError> {
    table.column(name).ok_or_else(|| {
        TemplateError::new(
            field,
            format!("table \"{}\" has no column \"{name}\"", table.name),
        )
    })
}

/// Like [`column`], and every row's cell must be a number of at least
/// `min` (bars and slices grow from zero, so their values cannot be
/// negative).
pub fn number_column(
    table: &Table,
    field: &str,
    name: &str,
    min: Option<f64>,
) -> Result<usize, TemplateError> {
    let index = column(table, field, name)?;
    for row in 0..table.rows.len() {
        let bad = match table.number(row, index) {
            None => Some("is not a number"),
            Some(v) if min.is_some_and(|m| v < m) => Some("is negative"),
            Some(_) => None,
        };
        if let Some(why) = bad {
            return Err(TemplateError::new(
                field,
                format!(
                    "table \"{}\" column \"{name}\", row {}: \"{}\" {why}",
                    table.name,
                    row + 1,
                    table.text(row, index)
                ),
            ));
        }
    }
    Ok(index)
}

/// Fills `{name}` placeholders in a question.
pub fn fill_question(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// A chart and its question, with the choices offered.
pub fn challenge(question: String, chart: Chart, choices: Vec<String>) -> Challenge {
    Challenge {
        question,
        chart,
        choices,
    }
}
