//! Feature files: one JSON object per line, what `palisade simulate`
//! writes and `palisade train` and `eval` read:
//!
//! ```json
//! {"client":"203.0.113.9","actor":"person","label":0,"t":12.5,"features":[…],"rules_score":0}
//! ```
//!
//! `label` is 1 for a bot and 0 for a person; `features` are in the
//! schema's order; `rules_score` (optional) is what the rules alone gave
//! the request, for comparison. Other fields are ignored, so a file can
//! carry more (the interaction file carries the raw record).

use super::features::Schema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// One labelled feature row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub client: String,
    #[serde(default)]
    pub actor: String,
    /// 1 bot, 0 person.
    pub label: u8,
    /// Seconds since the simulation started (the row's request time).
    #[serde(default)]
    pub t: f64,
    pub features: Vec<f32>,
    #[serde(default)]
    pub rules_score: Option<f32>,
}

impl Row {
    pub fn is_bot(&self) -> bool {
        self.label == 1
    }
}

/// Why a feature file could not be read.
#[derive(Debug)]
pub struct RowsError {
    pub path: PathBuf,
    /// 1-based; 0 when the file itself could not be read.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for RowsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.reason)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
        }
    }
}

impl std::error::Error for RowsError {}

/// Checks one row against `schema`: its length, its label, finite values.
pub fn check(row: &Row, schema: &Schema) -> Result<(), String> {
    if row.features.len() != schema.len() {
        return Err(format!(
            "{} features, but schema {} has {} ({})",
            row.features.len(),
            schema.name,
            schema.len(),
            schema.names().collect::<Vec<_>>().join(", ")
        ));
    }
    if row.label > 1 {
        return Err(format!(
            "label is {}, expected 0 (person) or 1 (bot)",
            row.label
        ));
    }
    if let Some(i) = row.features.iter().position(|x| !x.is_finite()) {
        return Err(format!("feature {i} is not a finite number"));
    }
    Ok(())
}

/// Reads a feature file for `schema`; blank lines are skipped.
pub fn read(path: &Path, schema: &Schema) -> Result<Vec<Row>, RowsError> {
    let error = |line, reason: String| RowsError {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| error(0, e.to_string()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| error(i + 1, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line)
            .map_err(|e| error(i + 1, format!("not a feature row: {e}")))?;
        check(&row, schema).map_err(|reason| error(i + 1, reason))?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(error(0, "no feature rows".into()));
    }
    Ok(rows)
}

/// Writes rows as JSON lines.
pub fn write(path: &Path, rows: &[Row]) -> Result<(), RowsError> {
    let error = |reason: String| RowsError {
        path: path.to_path_buf(),
        line: 0,
        reason,
    };
    let mut text = String::with_capacity(rows.len() * 160);
    for row in rows {
        text.push_str(&serde_json::to_string(row).map_err(|e| error(e.to_string()))?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::ACCESS_LOG;

    #[test]
    fn rows_of_the_wrong_length_or_label_are_refused_with_the_line() {
        let dir = std::env::temp_dir().join(format!("palisade-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.jsonl");
        let good = Row {
            client: "a".into(),
            actor: "person".into(),
            label: 0,
            t: 0.0,
            features: vec![0.5; ACCESS_LOG.len()],
            rules_score: Some(0.0),
        };
        write(&path, &[good.clone(), good.clone()]).unwrap();
        assert_eq!(
            read(&path, &ACCESS_LOG).unwrap(),
            vec![good.clone(), good.clone()]
        );
        let short = Row {
            features: vec![0.5; 3],
            ..good.clone()
        };
        write(&path, &[good.clone(), short]).unwrap();
        let err = read(&path, &ACCESS_LOG).unwrap_err().to_string();
        assert!(
            err.contains("rows.jsonl:2: 3 features, but schema log-v1 has 14"),
            "{err}"
        );
        std::fs::write(&path, "{\"client\":\"a\",\"label\":2,\"features\":[]}\n").unwrap();
        assert!(read(&path, &crate::scoring::INTERACTION)
            .unwrap_err()
            .to_string()
            .contains("features"));
        std::fs::write(&path, "nonsense\n").unwrap();
        assert!(read(&path, &ACCESS_LOG)
            .unwrap_err()
            .to_string()
            .contains(":1: not a feature row"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read(&path, &ACCESS_LOG).unwrap_err().line == 0);
    }
}
