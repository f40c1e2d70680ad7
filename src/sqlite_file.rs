//! SQLite files Palisade owns (the challenge store, the scoring records):
//! telling ours from another program's before writing to one.

use rusqlite::Connection;

/// What marks a file as one of ours: its `application_id`, the newest
/// `user_version` this build reads, and what to call it in errors.
pub struct Ours {
    pub application_id: i64,
    pub schema_version: i64,
    /// `a Palisade challenge store`, `Palisade's scoring records`.
    pub name: &'static str,
}

/// Refuses a file that is not SQLite, or an SQLite file of another program
/// (another application id, or tables without our id), or a newer schema.
/// A new, empty file is ours to create.
pub fn check_is_ours(connection: &Connection, ours: &Ours) -> Result<(), String> {
    let application_id: i64 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| format!("not an SQLite database ({e})"))?;
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
