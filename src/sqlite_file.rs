//! SQLite files Palisade owns (the challenge store, the scoring records):
//! telling ours from another program's, and a file we can write from one
//! we cannot, before writing to one.

use rusqlite::{Connection, ErrorCode, MAIN_DB};

/// What marks a file as one of ours: its `application_id`, the newest
/// `user_version` this build reads, and what to call it in errors.
pub struct Ours {
    pub application_id: i64,
    pub schema_version: i64,
    /// `a Palisade challenge store`, `Palisade's scoring records`.
    pub name: &'static str,
}

/// Refuses a file that cannot be written (SQLite opens a read-only file, or
/// one on a read-only file system, read-only without a word), a file that
/// is not SQLite, an SQLite file of another program (another application
/// id, or tables without our id), or a newer schema. A new, empty file is
/// ours to create.
pub fn check_usable(connection: &Connection, ours: &Ours) -> Result<(), String> {
    if connection.is_readonly(MAIN_DB).unwrap_or(false) {
        return Err(
            "the file cannot be written (it, or its file system, is read-only): \
                    the companion needs `companion.data_dir` writable"
                .to_string(),
        );
    }
    let application_id: i64 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => format!("not an SQLite database ({e})"),
            _ => format!("cannot read the file: {e}"),
        })?;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    if application_id == ours.application_id {
        return if version <= ours.schema_version {
            Ok(())
        } else {
            Err(format!(
                "schema version {version} is newer than this build's {}",
                ours.schema_version
            ))
        };
    }
    if application_id != 0 {
        return Err(format!(
            "not {} (application_id {application_id:#x}, ours is {:#x})",
            ours.name, ours.application_id
        ));
    }
    let tables = connection
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| format!("cannot list its tables: {e}"))?;
    if tables.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not {} (it holds other tables: {})",
            ours.name,
            tables.join(", ")
        ))
    }
}
