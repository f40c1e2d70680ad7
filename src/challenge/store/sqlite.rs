//! The embedded store: one SQLite file for a single companion.
//!
//! The file is `<companion.data_dir>/challenges.sqlite3`, in WAL mode (so
//! readers such as the end-to-end tests never block the companion) with
//! `synchronous = NORMAL` (no fsync per commit) and a busy timeout (so
//! another process writing the same file waits rather than fails). It is
//! marked as ours with `PRAGMA application_id` = 0x50414c49 ("PALI") and
//! `PRAGMA user_version` = 1, so a file of another program is refused
//! instead of written into.
//!
//! The schema (stable: the end-to-end tests read `SELECT context FROM
//! challenges WHERE id = ?` straight from the file). All times are unix
//! seconds.
//!
//! | table        | columns                                             | a row is removed by `sweep` when |
//! |--------------|-----------------------------------------------------|----------------------------------|
//! | `challenges` | `id TEXT PRIMARY KEY`, `context BLOB`, `expires_at INTEGER` | `expires_at` + retention ≤ now |
//! | `claims`     | `id TEXT PRIMARY KEY`, `expires_at INTEGER`         | `expires_at` + retention ≤ now  |
//! | `failures`   | `client TEXT PRIMARY KEY`, `count INTEGER`, `window_ends INTEGER` | `window_ends` ≤ now |
//! | `lockouts`   | `client TEXT PRIMARY KEY`, `until INTEGER`          | `until` ≤ now                   |
//!
//! `expires_at` is the challenge's own expiry; retention is
//! [`RETAIN_AFTER_EXPIRY_S`]. A claim is a row in `claims`: the primary key
//! makes the insert single-use, also across processes sharing the file.

use super::{Store, StoreError, RETAIN_AFTER_EXPIRY_S, SQLITE_FILE};
use crate::sqlite_file::{check_usable, Ours};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const NAME: &str = "sqlite";
/// "PALI": marks the file as a Palisade challenge store.
const APPLICATION_ID: i64 = 0x50414c49;
const SCHEMA_VERSION: i64 = 1;
const OURS: Ours = Ours {
    application_id: APPLICATION_ID,
    schema_version: SCHEMA_VERSION,
    name: "a Palisade challenge store",
};
/// How long a write waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS challenges (
    id TEXT PRIMARY KEY,
    context BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS challenges_expires_at ON challenges (expires_at);
CREATE TABLE IF NOT EXISTS claims (
    id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_expires_at ON claims (expires_at);
CREATE TABLE IF NOT EXISTS failures (
    client TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    window_ends INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lockouts (
    client TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
";

/// The challenge state in one SQLite file. One connection behind a mutex:
/// every operation is a statement or two, far shorter than a request.
pub struct SqliteStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating it and `data_dir` if needed) the store file
    /// [`SQLITE_FILE`] under `data_dir`.
    pub fn open_in(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Unavailable {
            store: NAME,
            location: data_dir.display().to_string(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        SqliteStore::open(&data_dir.join(SQLITE_FILE))
    }

    /// Opens (creating it if needed) the store file at `path`: sets WAL mode
    /// and creates the schema, or refuses a file that is not ours.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let unavailable = |reason: String| StoreError::Unavailable {
            store: NAME,
            location: path.display().to_string(),
            reason,
        };
        let connection = Connection::open(path)
            .map_err(|e| unavailable(format!("cannot open the file: {e}")))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| unavailable(format!("cannot set the busy timeout: {e}")))?;
        check_usable(&connection, &OURS).map_err(unavailable)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| unavailable(format!("cannot switch to WAL mode: {e}")))?;
        // In WAL mode, NORMAL syncs at checkpoints rather than at every
        // commit: a power cut may lose the last few seconds of challenges,
        // never corrupt the file, and writes take microseconds, not an fsync.
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| unavailable(format!("cannot set synchronous mode: {e}")))?;
        create_schema(&connection)
            .map_err(|e| unavailable(format!("cannot create the schema: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the lock leaves no half-done
        // statement behind (transactions roll back on drop), so the
        // connection is still good.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The error for a failed operation: busy, I/O and permission failures
    /// mean the file cannot be used now; anything else is this operation's.
    fn error(&self, doing: &str, e: rusqlite::Error) -> StoreError {
        let location = self.path.display().to_string();
        let reason = format!("{doing}: {e}");
        let unavailable = matches!(
            e.sqlite_error_code(),
            Some(
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::NotADatabase
                    | ErrorCode::DatabaseCorrupt
            )
        );
        StoreError::classified(unavailable, NAME, location, reason)
    }
}

/// Creates the tables if missing and marks the file as ours, in one write
/// transaction so that two companions opening a new file at once agree.
fn create_schema(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         {SCHEMA}
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {SCHEMA_VERSION};
         COMMIT;"
    ))
}

impl Store for SqliteStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn put(&self, id: &str, context: &[u8], expires_at: u64) -> Result<(), StoreError> {
        let inserted = self
            .connection()
            .execute(
                "INSERT INTO challenges (id, context, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO NOTHING",
                params![id, context, expires_at],
            )
            .map_err(|e| self.error("storing a challenge", e))?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(StoreError::Failed {
                store: NAME,
                location: self.path.display().to_string(),
                reason: format!("challenge id {id} is already stored"),
            })
        }
    }

    fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.connection()
            .query_row(
                "SELECT context FROM challenges WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.error("reading a challenge", e))
    }

    fn claim(&self, id: &str, expires_at: u64) -> Result<bool, StoreError> {
        let inserted = self
            .connection()
            .execute(
                "INSERT INTO claims (id, expires_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, expires_at],
            )
            .map_err(|e| self.error("claiming a challenge", e))?;
        Ok(inserted == 1)
    }

    fn add_failure(&self, client: &str, now: u64, window_s: u64) -> Result<u32, StoreError> {
        // One statement, so concurrent writers (threads or processes) each
        // see the count the other left. SET expressions read the old row.
        self.connection()
            .query_row(
                "INSERT INTO failures (client, count, window_ends) VALUES (?1, 1, ?3)
                 ON CONFLICT (client) DO UPDATE SET
                     count = CASE WHEN window_ends <= ?2 THEN 1 ELSE count + 1 END,
                     window_ends = CASE WHEN window_ends <= ?2 THEN ?3 ELSE window_ends END
                 RETURNING count",
                params![client, now, now.saturating_add(window_s)],
                |row| row.get(0),
            )
            .map_err(|e| self.error("counting a failure", e))
    }

    fn lock_out(&self, client: &str, until: u64) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let locked = || -> rusqlite::Result<()> {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction.execute(
                "INSERT INTO lockouts (client, until) VALUES (?1, ?2)
                 ON CONFLICT (client) DO UPDATE SET until = excluded.until",
                params![client, until],
            )?;
            transaction.execute("DELETE FROM failures WHERE client = ?1", [client])?;
            transaction.commit()
        }();
        locked.map_err(|e| self.error("locking a client out", e))
    }

    fn locked_until(&self, client: &str, now: u64) -> Result<Option<u64>, StoreError> {
        self.connection()
            .query_row(
                "SELECT until FROM lockouts WHERE client = ?1 AND until > ?2",
                params![client, now],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.error("reading a lockout", e))
    }

    fn sweep(&self, now: u64) -> Result<u64, StoreError> {
        let retained_since = now.saturating_sub(RETAIN_AFTER_EXPIRY_S);
        let mut connection = self.connection();
        let removed = || -> rusqlite::Result<usize> {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let removed = transaction.execute(
                "DELETE FROM challenges WHERE expires_at <= ?1",
                [retained_since],
            )? + transaction.execute(
                "DELETE FROM claims WHERE expires_at <= ?1",
                [retained_since],
            )? + transaction
                .execute("DELETE FROM failures WHERE window_ends <= ?1", [now])?
                + transaction.execute("DELETE FROM lockouts WHERE until <= ?1", [now])?;
            transaction.commit()?;
            Ok(removed)
        }();
        removed
            .map(|n| n as u64)
            .map_err(|e| self.error("sweeping expired rows", e))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.connection()
            .pragma_query_value(None, "schema_version", |_| Ok(()))
            .map_err(|e| self.error("checking the file", e))
    }
}
