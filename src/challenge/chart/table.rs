//! The operator's data tables: read once per policy load from a CSV file,
//! a JSON file or an SQLite query, and held in memory as rows of cells.
//!
//! Every cell is kept as text; [`Table::number`] reads one as a number
//! when a template asks. Errors name the table's field in the policy
//! (`challenge.chart.tables.cases.csv`) and, for a bad row, its line.

use crate::config::{ConfigError, TableSource};
use std::collections::BTreeMap;

/// The most rows a table may have: the kit keeps every table in memory
/// and templates pick rows at random, so a table this size is plenty.
pub const MAX_ROWS: usize = 100_000;

/// One table: its column names and rows (each as long as `columns`).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Every table of a policy, by name.
#[derive(Debug, Clone, Default)]
pub struct Tables(pub BTreeMap<String, Table>);

impl Tables {
    /// Reads every table of `challenge.chart.tables`.
    pub fn load(sources: &BTreeMap<String, TableSource>) -> Result<Tables, ConfigError> {
        let mut tables = BTreeMap::new();
        for (name, source) in sources {
            let at = format!("challenge.chart.tables.{name}");
            tables.insert(name.clone(), load_table(name, source, &at)?);
        }
        Ok(Tables(tables))
    }

    pub fn get(&self, name: &str) -> Option<&Table> {
        self.0.get(name)
    }
}

impl Table {
    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Cell `column` of `row` as a finite number (`1234`, `-0.5`, `1e3`;
    /// surrounding spaces ignored), if it is one.
    pub fn number(&self, row: usize, column: usize) -> Option<f64> {
        let text = self.rows.get(row)?.get(column)?.trim();
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// Cell `column` of `row` as text, trimmed.
    pub fn text(&self, row: usize, column: usize) -> &str {
        self.rows
            .get(row)
            .and_then(|r| r.get(column))
            .map_or("", |t| t.trim())
    }
}

fn load_table(name: &str, source: &TableSource, at: &str) -> Result<Table, ConfigError> {
    let given = [
        source.csv.is_some(),
        source.json.is_some(),
        source.sqlite.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(ConfigError::new(
            at,
            "give exactly one of `csv`, `json` or `sqlite` (with `query`)",
        ));
    }
    if source.sqlite.is_none() && source.query.is_some() {
        return Err(ConfigError::new(
            format!("{at}.query"),
            "`query` goes with `sqlite`",
        ));
    }
    let (columns, rows) = if let Some(path) = &source.csv {
        let here = format!("{at}.csv");
        parse_csv(&read(path, &here)?).map_err(|e| ConfigError::new(here, e))?
    } else if let Some(path) = &source.json {
        let here = format!("{at}.json");
        parse_json(&read(path, &here)?).map_err(|e| ConfigError::new(here, e))?
    } else {
        let path = source.sqlite.as_deref().unwrap_or_default();
        let query = source
            .query
            .as_deref()
            .ok_or_else(|| ConfigError::new(format!("{at}.query"), "`sqlite` needs a `query`"))?;
        query_sqlite(path, query).map_err(|e| ConfigError::new(format!("{at}.sqlite"), e))?
    };
    if rows.is_empty() {
        return Err(ConfigError::new(at, "the table has no rows"));
    }
    if rows.len() > MAX_ROWS {
        return Err(ConfigError::new(
            at,
            format!("the table has {} rows; at most {MAX_ROWS}", rows.len()),
        ));
    }
    Ok(Table {
        name: name.to_string(),
        columns,
        rows,
    })
}

fn read(path: &str, at: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(at, format!("cannot read `{path}`: {e}")))
}

type Parsed = (Vec<String>, Vec<Vec<String>>);

/// CSV as RFC 4180 writes it: a header row, commas, fields optionally in
/// double quotes (`""` for a quote inside), CRLF or LF line ends. Blank
/// lines are skipped; every row must have the header's number of fields.
pub fn parse_csv(text: &str) -> Result<Parsed, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records: Vec<(usize, Vec<String>)> = Vec::new();
    let mut field = String::new();
    let mut record = Vec::new();
    let mut quoted = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = text.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                let done = std::mem::take(&mut record);
                if !(done.len() == 1 && done[0].trim().is_empty()) {
                    records.push((record_line, done));
                }
                line += 1;
                record_line = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err(format!("line {record_line}: a quoted field is not closed"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((record_line, record));
    }
    let mut records = records.into_iter();
    let (_, header) = records.next().ok_or("the file is empty")?;
    let columns: Vec<String> = header.iter().map(|c| c.trim().to_string()).collect();
    check_columns(&columns)?;
    let mut rows = Vec::new();
    for (line, row) in records {
        if row.len() != columns.len() {
            return Err(format!(
                "line {line}: {} fields where the header has {}",
                row.len(),
                columns.len()
            ));
        }
        rows.push(row);
    }
    Ok((columns, rows))
}

/// JSON: an array of objects, one per row; the columns are the first
/// object's keys, and every object must have them (strings, numbers,
/// booleans or null, which reads as empty).
pub fn parse_json(text: &str) -> Result<Parsed, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = value
        .as_array()
        .ok_or("the file must hold an array of objects, one per row")?;
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let object = item
            .as_object()
            .ok_or_else(|| format!("row {i}: not an object"))?;
        if i == 0 {
            columns = object.keys().cloned().collect();
            check_columns(&columns)?;
        }
        let mut row = Vec::with_capacity(columns.len());
        for column in &columns {
            let cell = object
                .get(column)
                .ok_or_else(|| format!("row {i}: no \"{column}\""))?;
            row.push(json_cell(cell).ok_or_else(|| {
                format!("row {i}: \"{column}\" is an array or object, not a value")
            })?);
        }
        rows.push(row);
    }
    Ok((columns, rows))
}

fn json_cell(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => Some(String::new()),
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Runs `query` on the SQLite file at `path`, opened read-only (so a
/// query cannot change the site's data), and reads its result set.
fn query_sqlite(path: &str, query: &str) -> Result<Parsed, String> {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open `{path}`: {e}"))?;
    let mut statement = db
        .prepare(query)
        .map_err(|e| format!("the query does not prepare: {e}"))?;
    let columns: Vec<String> = statement
        .column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    check_columns(&columns)?;
    let width = columns.len();
    let mut result = statement
        .query([])
        .map_err(|e| format!("the query fails: {e}"))?;
    let mut rows = Vec::new();
    while let Some(row) = result.next().map_err(|e| format!("the query fails: {e}"))? {
        if rows.len() > MAX_ROWS {
            break;
        }
        let mut cells = Vec::with_capacity(width);
        for (i, column) in columns.iter().enumerate() {
            let cell = match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => String::new(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(x) => x.to_string(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Blob(_) => return Err(format!("column \"{column}\" is a blob")),
            };
            cells.push(cell);
        }
        rows.push(cells);
    }
    Ok((columns, rows))
}

fn check_columns(columns: &[String]) -> Result<(), String> {
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            return Err(format!("column {} has no name", i + 1));
        }
        if columns[..i].contains(c) {
            return Err(format!("column \"{c}\" appears twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_crlf_and_blank_lines() {
        let (columns, rows) =
            parse_csv("\u{feff}name,count\r\n\"Smith, J\",3\r\n\r\n\"say \"\"hi\"\"\",4\nlast,5")
                .unwrap();
        assert_eq!(columns, ["name", "count"]);
        assert_eq!(
            rows,
            [
                vec!["Smith, J".to_string(), "3".into()],
                vec!["say \"hi\"".into(), "4".into()],
                vec!["last".into(), "5".into()],
            ]
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        assert_eq!(
            parse_csv("a,b\n1,2\n3\n").unwrap_err(),
            "line 3: 1 fields where the header has 2"
        );
        assert_eq!(
            parse_csv("a,b\n\"open,2\n").unwrap_err(),
            "line 2: a quoted field is not closed"
        );
        assert_eq!(parse_csv("").unwrap_err(), "the file is empty");
        assert_eq!(
            parse_csv("a,a\n1,2").unwrap_err(),
            "column \"a\" appears twice"
        );
    }

    #[test]
    fn json_rows_are_objects_with_the_first_rows_keys() {
        let (columns, rows) =
            parse_json(r#"[{"c": "X", "n": 3, "ok": true}, {"c": "Y", "n": 4.5, "ok": null}]"#)
                .unwrap();
        assert_eq!(columns, ["c", "n", "ok"]);
        assert_eq!(rows[1], ["Y", "4.5", ""]);
        assert_eq!(
            parse_json(r#"[{"c": "X"}, {"d": 1}]"#).unwrap_err(),
            "row 1: no \"c\""
        );
        assert!(parse_json("{}").unwrap_err().contains("array of objects"));
        assert!(parse_json(r#"[{"c": [1]}]"#)
            .unwrap_err()
            .contains("not a value"));
    }

    #[test]
    fn sqlite_queries_are_read_only_tables() {
        let dir =
            std::env::temp_dir().join(format!("palisade-chart-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("site.db");
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE sales(region TEXT, total REAL, n INTEGER);
             INSERT INTO sales VALUES ('north', 12.5, 3), ('south', 7, NULL);",
        )
        .unwrap();
        drop(db);
        let path = path.to_string_lossy().to_string();
        let (columns, rows) = query_sqlite(&path, "SELECT region, total, n FROM sales").unwrap();
        assert_eq!(columns, ["region", "total", "n"]);
        assert_eq!(rows, [vec!["north", "12.5", "3"], vec!["south", "7", ""]]);
        let err = query_sqlite(&path, "DELETE FROM sales").unwrap_err();
        assert!(
            err.contains("readonly") || err.contains("read-only"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_source_gives_exactly_one_file() {
        let none = TableSource::default();
        let err = load_table("t", &none, "challenge.chart.tables.t").unwrap_err();
        assert_eq!(err.path, "challenge.chart.tables.t");
        let missing = TableSource {
            csv: Some("/nonexistent/palisade.csv".into()),
            ..TableSource::default()
        };
        let err = load_table("t", &missing, "challenge.chart.tables.t").unwrap_err();
        assert_eq!(err.path, "challenge.chart.tables.t.csv");
        assert!(err.reason.starts_with("cannot read"), "{err}");
    }
}
