//! What the companion keeps of its scoring: one SQLite file,
//! `<companion.data_dir>/scoring.sqlite3`, beside the challenge store.
//!
//! Same conventions as the challenge store: WAL mode (readers never block
//! the writer), `synchronous = NORMAL`, a busy timeout, and
//! `PRAGMA application_id` = 0x50414c53 ("PALS") with `user_version` = 1,
//! so a file of another program is refused. All times are unix seconds;
//! feature vectors are JSON arrays in the `request-v1` order.
//!
//! | table         | a row is                                   | removed by [`Records::sweep`] when |
//! |---------------|--------------------------------------------|------------------------------------|
//! | `samples`     | a sampled scored request: `at`, `client`, `model`, `score`, `shadow` (the candidate's score), `action`, `features` | older than `scoring.records.retention` |
//! | `reputation`  | one client: `first_seen`, `last_seen`, `challenges_failed`, `challenges_passed`, `blocks`, `bot_labels`, `human_labels` | `last_seen` older than `labels_retention` |
//! | `labels`      | a labelled example: `at`, `client`, `source`, `bot`, `weight`, `features` | older than `labels_retention` |
//! | `checkpoints` | a trained model: `at`, `version`, `state` (`shadow`, `promoted`, `rejected`, `retired`), `model` (the file), `evaluation`, `base` (hash of the model file it was trained against) | rejected and older than `labels_retention` |
//!
//! Indexes on client and time for each. Writes on the request path go
//! through a [`Writer`]: a bounded channel and one thread that commits
//! what has queued in one transaction, so a check never waits on the disk.

use crate::scoring::ModelFile;
use crate::sqlite_file::{check_usable, Ours};
use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The file under `companion.data_dir`.
pub const RECORDS_FILE: &str = "scoring.sqlite3";
/// "PALS": marks the file as Palisade's scoring records.
const APPLICATION_ID: i64 = 0x50414c53;
const SCHEMA_VERSION: i64 = 1;
const OURS: Ours = Ours {
    application_id: APPLICATION_ID,
    schema_version: SCHEMA_VERSION,
    name: "Palisade's scoring records",
};
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// The most records one transaction of the writer commits.
const WRITE_BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    client TEXT NOT NULL,
    model TEXT,
    score REAL,
    shadow REAL,
    action TEXT NOT NULL,
    features TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_client ON samples (client, at);
CREATE INDEX IF NOT EXISTS samples_at ON samples (at);
CREATE TABLE IF NOT EXISTS reputation (
    client TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    challenges_failed INTEGER NOT NULL DEFAULT 0,
    challenges_passed INTEGER NOT NULL DEFAULT 0,
    blocks INTEGER NOT NULL DEFAULT 0,
    bot_labels INTEGER NOT NULL DEFAULT 0,
    human_labels INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reputation_last_seen ON reputation (last_seen);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    client TEXT NOT NULL,
    source TEXT NOT NULL,
    bot INTEGER NOT NULL,
    weight REAL NOT NULL,
    features TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_client ON labels (client, at);
CREATE INDEX IF NOT EXISTS labels_at ON labels (at);
CREATE INDEX IF NOT EXISTS labels_source ON labels (source, at);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    model TEXT NOT NULL,
    evaluation TEXT NOT NULL,
    base TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_at ON checkpoints (at);
CREATE INDEX IF NOT EXISTS checkpoints_state ON checkpoints (state, at);
";

/// Why the records could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("scoring records {location}: {reason}")]
pub struct RecordsError {
    pub location: String,
    pub reason: String,
}

/// Something that happened to a client, for its reputation row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Blocked,
    ChallengeFailed,
    ChallengePassed,
}

impl Event {
    /// The reputation counter it adds one to.
    pub fn column(self) -> &'static str {
        match self {
            Event::Blocked => "blocks",
            Event::ChallengeFailed => "challenges_failed",
            Event::ChallengePassed => "challenges_passed",
        }
    }
}

/// A labelled example (also as JSON, in Redis: [`super::shared`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    pub at: u64,
    pub client: String,
    pub source: String,
    pub bot: bool,
    pub weight: f32,
    pub features: Vec<f32>,
}

impl Label {
    /// The reputation counter it adds one to.
    pub fn column(&self) -> &'static str {
        if self.bot {
            "bot_labels"
        } else {
            "human_labels"
        }
    }
}

/// A model checkpoint's place in the guarded retrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointState {
    /// Scored alongside the served model, not enforced.
    Shadow,
    /// Served.
    Promoted,
    /// Failed the held-out evaluation.
    Rejected,
    /// Served once, replaced since.
    Retired,
}

impl CheckpointState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointState::Shadow => "shadow",
            CheckpointState::Promoted => "promoted",
            CheckpointState::Rejected => "rejected",
            CheckpointState::Retired => "retired",
        }
    }
}

/// One stored checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub id: i64,
    pub at: u64,
    pub version: String,
    pub state: String,
    /// The model file, as JSON.
    pub model: String,
    pub evaluation: serde_json::Value,
    pub base: String,
}

/// What the writer stores.
#[derive(Debug, Clone)]
pub enum Record {
    Sample {
        at: u64,
        client: String,
        model: Option<String>,
        score: Option<f32>,
        /// The shadow candidate's score alongside, when one runs.
        shadow: Option<f32>,
        action: &'static str,
        features: Vec<f32>,
    },
    Reputation {
        at: u64,
        client: String,
        event: Event,
    },
    /// Also counted in the client's reputation.
    Label(Label),
    Checkpoint {
        id: i64,
        state: CheckpointState,
    },
    /// Not a record: answered once everything queued before it is in the
    /// file (see [`Writer::flush`]).
    Flushed(std::sync::mpsc::Sender<()>),
}

/// Totals for `/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub samples: u64,
    pub labels: u64,
    pub clients: u64,
    pub blocked_clients: u64,
}

/// Rows [`Records::sweep`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    pub samples: usize,
    pub labels: usize,
    pub clients: usize,
    pub checkpoints: usize,
}

/// One client's reputation row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reputation {
    pub first_seen: u64,
    pub last_seen: u64,
    pub challenges_failed: u64,
    pub challenges_passed: u64,
    pub blocks: u64,
    pub bot_labels: u64,
    pub human_labels: u64,
}

/// One connection to the records file.
pub struct Records {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl Records {
    /// Opens (creating it and `data_dir` if needed) [`RECORDS_FILE`] under `data_dir`.
    pub fn open_in(data_dir: &Path) -> Result<Records, RecordsError> {
        std::fs::create_dir_all(data_dir).map_err(|e| RecordsError {
            location: data_dir.display().to_string(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        Records::open(&data_dir.join(RECORDS_FILE))
    }

    /// Opens (creating it if needed) the records file at `path`.
    pub fn open(path: &Path) -> Result<Records, RecordsError> {
        let fail = |reason: String| RecordsError {
            location: path.display().to_string(),
            reason,
        };
        let connection =
            Connection::open(path).map_err(|e| fail(format!("cannot open the file: {e}")))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| fail(format!("cannot set the busy timeout: {e}")))?;
        check_usable(&connection, &OURS).map_err(fail)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(format!("cannot switch to WAL mode: {e}")))?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| fail(format!("cannot set synchronous mode: {e}")))?;
        connection
            .execute_batch(SCHEMA)
            .and_then(|()| connection.pragma_update(None, "application_id", APPLICATION_ID))
            .and_then(|()| connection.pragma_update(None, "user_version", SCHEMA_VERSION))
            .map_err(|e| fail(format!("cannot create the schema: {e}")))?;
        Ok(Records {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, doing: &str, e: impl std::fmt::Display) -> RecordsError {
        RecordsError {
            location: self.path.display().to_string(),
            reason: format!("{doing}: {e}"),
        }
    }

    /// Stores `records` in one transaction.
    pub fn write(&self, records: &[Record]) -> Result<(), RecordsError> {
        let mut connection = self.connection();
        let tx = connection
            .transaction()
            .map_err(|e| self.error("cannot start a transaction", e))?;
        for record in records {
            write_one(&tx, record).map_err(|e| self.error("cannot write a record", e))?;
        }
        tx.commit().map_err(|e| self.error("cannot commit", e))
    }

    /// Labels from `since` on, newest first.
    pub fn labels_since(&self, since: u64) -> Result<Vec<Label>, RecordsError> {
        let connection = self.connection();
        let read = || -> rusqlite::Result<Vec<Label>> {
            let mut statement = connection.prepare(
                "SELECT at, client, source, bot, weight, features FROM labels
                 WHERE at >= ?1 ORDER BY at DESC, id DESC",
            )?;
            let rows = statement.query_map(params![since as i64], |row| {
                let features: String = row.get(5)?;
                Ok(Label {
                    at: row.get::<_, i64>(0)? as u64,
                    client: row.get(1)?,
                    source: row.get(2)?,
                    bot: row.get::<_, i64>(3)? != 0,
                    weight: row.get::<_, f64>(4)? as f32,
                    features: serde_json::from_str(&features).unwrap_or_default(),
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| self.error("cannot read labels", e))
    }

    /// One client's reputation, if it has a row.
    pub fn reputation(&self, client: &str) -> Result<Option<Reputation>, RecordsError> {
        self.connection()
            .query_row(
                "SELECT first_seen, last_seen, challenges_failed, challenges_passed, blocks,
                        bot_labels, human_labels FROM reputation WHERE client = ?1",
                params![client],
                |row| {
                    let n = |i: usize| row.get::<_, i64>(i).map(|v| v as u64);
                    Ok(Reputation {
                        first_seen: n(0)?,
                        last_seen: n(1)?,
                        challenges_failed: n(2)?,
                        challenges_passed: n(3)?,
                        blocks: n(4)?,
                        bot_labels: n(5)?,
                        human_labels: n(6)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.error("cannot read a reputation", e))
    }

    /// Row counts for `/stats`.
    pub fn counts(&self) -> Result<Counts, RecordsError> {
        let connection = self.connection();
        let count = |sql: &str| -> rusqlite::Result<u64> {
            connection
                .query_row(sql, [], |row| row.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        let read = || -> rusqlite::Result<Counts> {
            Ok(Counts {
                samples: count("SELECT COUNT(*) FROM samples")?,
                labels: count("SELECT COUNT(*) FROM labels")?,
                clients: count("SELECT COUNT(*) FROM reputation")?,
                blocked_clients: count("SELECT COUNT(*) FROM reputation WHERE blocks > 0")?,
            })
        };
        read().map_err(|e| self.error("cannot count rows", e))
    }

    /// Stores a trained model; returns its id.
    pub fn save_checkpoint(
        &self,
        at: u64,
        model: &ModelFile,
        version: &str,
        state: CheckpointState,
        evaluation: &serde_json::Value,
        base: &str,
    ) -> Result<i64, RecordsError> {
        let text = serde_json::to_string(model).map_err(|e| self.error("cannot encode", e))?;
        let connection = self.connection();
        connection
            .execute(
                "INSERT INTO checkpoints (at, version, state, model, evaluation, base)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    at as i64,
                    version,
                    state.as_str(),
                    text,
                    evaluation.to_string(),
                    base
                ],
            )
            .map_err(|e| self.error("cannot store a checkpoint", e))?;
        Ok(connection.last_insert_rowid())
    }

    /// Checkpoints, newest first, at most `limit`.
    pub fn checkpoints(&self, limit: usize) -> Result<Vec<Checkpoint>, RecordsError> {
        self.select_checkpoints(
            "SELECT id, at, version, state, model, evaluation, base FROM checkpoints
             ORDER BY at DESC, id DESC LIMIT ?1",
            params![limit as i64],
        )
    }

    /// The newest promoted checkpoint trained against the model file whose
    /// hash is `base`: what a restart serves instead of that file.
    pub fn promoted_for(&self, base: &str) -> Result<Option<Checkpoint>, RecordsError> {
        Ok(self
            .select_checkpoints(
                "SELECT id, at, version, state, model, evaluation, base FROM checkpoints
                 WHERE state = 'promoted' AND base = ?1 ORDER BY at DESC, id DESC LIMIT 1",
                params![base],
            )?
            .into_iter()
            .next())
    }

    fn select_checkpoints(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Checkpoint>, RecordsError> {
        let connection = self.connection();
        let read = || -> rusqlite::Result<Vec<Checkpoint>> {
            let mut statement = connection.prepare(sql)?;
            let rows = statement.query_map(args, |row| {
                let evaluation: String = row.get(5)?;
                Ok(Checkpoint {
                    id: row.get(0)?,
                    at: row.get::<_, i64>(1)? as u64,
                    version: row.get(2)?,
                    state: row.get(3)?,
                    model: row.get(4)?,
                    evaluation: serde_json::from_str(&evaluation).unwrap_or_default(),
                    base: row.get(6)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| self.error("cannot read checkpoints", e))
    }

    /// Removes what is past retention at `now` (see the module doc).
    pub fn sweep(
        &self,
        now: u64,
        retention_s: u64,
        labels_retention_s: u64,
    ) -> Result<Swept, RecordsError> {
        let samples_before = now.saturating_sub(retention_s) as i64;
        let labels_before = now.saturating_sub(labels_retention_s) as i64;
        let connection = self.connection();
        let run = || -> rusqlite::Result<Swept> {
            Ok(Swept {
                samples: connection
                    .execute("DELETE FROM samples WHERE at < ?1", [samples_before])?,
                labels: connection.execute("DELETE FROM labels WHERE at < ?1", [labels_before])?,
                clients: connection.execute(
                    "DELETE FROM reputation WHERE last_seen < ?1",
                    [labels_before],
                )?,
                checkpoints: connection.execute(
                    "DELETE FROM checkpoints WHERE state = 'rejected' AND at < ?1",
                    [labels_before],
                )?,
            })
        };
        run().map_err(|e| self.error("cannot sweep", e))
    }
}

fn write_one(tx: &rusqlite::Transaction, record: &Record) -> rusqlite::Result<()> {
    let json = |v: &[f32]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    match record {
        Record::Sample {
            at,
            client,
            model,
            score,
            shadow,
            action,
            features,
        } => {
            tx.execute(
                "INSERT INTO samples (at, client, model, score, shadow, action, features)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    *at as i64,
                    client,
                    model,
                    score.map(f64::from),
                    shadow.map(f64::from),
                    action,
                    json(features)
                ],
            )?;
        }
        Record::Reputation { at, client, event } => {
            bump(tx, client, *at, event.column())?;
        }
        Record::Label(label) => {
            tx.execute(
                "INSERT INTO labels (at, client, source, bot, weight, features)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    label.at as i64,
                    label.client,
                    label.source,
                    i64::from(label.bot),
                    f64::from(label.weight),
                    json(&label.features)
                ],
            )?;
            bump(tx, &label.client, label.at, label.column())?;
        }
        Record::Checkpoint { id, state } => {
            tx.execute(
                "UPDATE checkpoints SET state = ?1 WHERE id = ?2",
                params![state.as_str(), id],
            )?;
        }
        Record::Flushed(_) => {}
    }
    Ok(())
}

/// Adds one to a reputation counter (`column` is one of ours, never input).
fn bump(tx: &rusqlite::Transaction, client: &str, at: u64, column: &str) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO reputation (client, first_seen, last_seen, {column}) VALUES (?1, ?2, ?2, 1)
             ON CONFLICT (client) DO UPDATE SET last_seen = MAX(last_seen, ?2), {column} = {column} + 1"
        ),
        params![client, at as i64],
    )?;
    Ok(())
}

/// Counters the writer reports to (the companion's metrics).
#[derive(Clone, Default)]
pub struct WriterCounters {
    /// Records dropped because the queue was full.
    pub dropped: Counter,
    /// Batches the file refused.
    pub failed: Counter,
}

/// The request path's way into [`Records`]: a bounded queue and one thread
/// that drains it (see the module doc). Dropping it lets the thread commit
/// what is queued and stop; [`Writer::close`] also waits for that.
pub struct Writer {
    sender: Option<SyncSender<Record>>,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: WriterCounters,
}

impl Writer {
    /// Starts the writer thread on `records`, with room for `queue` records.
    pub fn start(records: Records, queue: usize, counters: WriterCounters) -> Writer {
        let (sender, receiver) = sync_channel(queue.max(1));
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("palisade-records".into())
            .spawn(move || drain(&records, &receiver, &thread_counters))
            .map_err(|e| tracing::error!(error = %e, "cannot start the records writer"))
            .ok();
        Writer {
            sender: thread.as_ref().map(|_| sender),
            thread,
            counters,
        }
    }

    /// Queues `record`; `false` (and counted) when the queue is full.
    pub fn send(&self, record: Record) -> bool {
        let Some(sender) = &self.sender else {
            self.counters.dropped.inc();
            return false;
        };
        match sender.try_send(record) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.inc();
                false
            }
        }
    }

    /// Waits, up to `timeout`, until everything queued so far is in the
    /// file: what a retrain reads must include the labels `/feedback`
    /// accepted just before. `false` if the writer is gone or too slow.
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        let Some(sender) = &self.sender else {
            return false;
        };
        let (done, written) = std::sync::mpsc::channel();
        // Blocking: the barrier waits for room in a full queue.
        sender.send(Record::Flushed(done)).is_ok() && written.recv_timeout(timeout).is_ok()
    }

    /// Commits what is queued and stops the thread.
    pub fn close(mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn drain(records: &Records, receiver: &Receiver<Record>, counters: &WriterCounters) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        if let Err(e) = records.write(&batch) {
            counters.failed.inc();
            tracing::warn!(error = %e, records = batch.len(), "scoring records were not written");
        }
        for record in &batch {
            if let Record::Flushed(done) = record {
                let _ = done.send(());
            }
        }
    }
}
