//! The schema of `challenge.chart`: the operator's data tables and the
//! chart templates that ask questions about them
//! (`docs/configuration.md#challengechart`).
//!
//! Only the shape is checked here (the filter parses it too, and has no
//! file system): the companion reads the tables and checks each
//! template's columns when it loads the policy
//! (`crate::challenge::chart::ChartKit::load`).

use serde::Deserialize;
use std::collections::BTreeMap;

/// Tables by name, and the templates drawn from them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChartConfig {
    pub tables: BTreeMap<String, TableSource>,
    pub templates: Vec<TemplateConfig>,
}

/// Where one table's rows come from: give exactly one of `csv`, `json` or
/// `sqlite` (with `query`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSource {
    /// A CSV file with a header row.
    pub csv: Option<String>,
    /// A JSON file: an array of objects, one per row.
    pub json: Option<String>,
    /// An SQLite database file, opened read-only, and the `query` whose
    /// result is the table.
    pub sqlite: Option<String>,
    pub query: Option<String>,
}

/// One template configuration: which template (`template`), and its own
/// parameters, which the template reads and checks itself.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateConfig {
    pub template: String,
    #[serde(flatten)]
    pub params: serde_json::Map<String, serde_json::Value>,
}
