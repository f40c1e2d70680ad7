//! The companion's scoring records against a real SQLite file, and the
//! label caps through [`Scoring`] as `/feedback` and challenge outcomes
//! reach them.

use common::TempDir;
use palisade::companion::scoring::api::{ApiError, FeedbackRequest, LabelName};
use palisade::companion::scoring::records::{
    CheckpointState, Event, Label, Record, Records, Writer, WriterCounters, RECORDS_FILE,
};
use palisade::companion::scoring::Scoring;
use palisade::companion::Metrics;
use palisade::policy::{Policy, ProcessEnv};
use palisade::scoring::wire::FeatureValues;
use palisade::scoring::{ModelFile, REQUEST};
use std::time::{Duration, Instant};

// Only its TempDir: the Redis helpers are the store tests'.
#[allow(dead_code)]
mod common;

fn label(at: u64, client: &str, bot: bool) -> Label {
    Label {
        at,
        client: client.into(),
        source: "operator".into(),
        bot,
        weight: 1.0,
        features: vec![0.25; REQUEST.len()],
    }
}

fn sample(at: u64, client: &str) -> Record {
    Record::Sample {
        at,
        client: client.into(),
        model: Some("m".into()),
        score: Some(42.0),
        shadow: None,
        action: "allow",
        features: vec![0.5; REQUEST.len()],
    }
}

/// A logistic model over the request schema that weighs the user agent.
fn model_file() -> ModelFile {
    let mut weights = vec![0.0; REQUEST.len()];
    let ua = REQUEST.names().position(|f| f == "user_agent").unwrap();
    weights[ua] = 6.0;
    ModelFile::logistic(&REQUEST, weights, -3.0)
}

#[test]
fn the_file_is_ours_in_wal_mode_with_indexes_on_client_and_time() {
    let dir = TempDir::new("records-schema");
    let records = Records::open_in(&dir.path().join("data")).unwrap();
    assert_eq!(records.path(), dir.path().join("data").join(RECORDS_FILE));
    let db = rusqlite::Connection::open(records.path()).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut statement = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let indexes: Vec<String> = statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for wanted in [
        "samples_client",
        "samples_at",
        "labels_client",
        "labels_at",
        "reputation_last_seen",
        "checkpoints_at",
    ] {
        assert!(
            indexes.iter().any(|i| i == wanted),
            "{wanted} missing: {indexes:?}"
        );
    }
    // A second open of the same file is fine; another program's is refused.
    drop(Records::open_in(&dir.path().join("data")).unwrap());
    let foreign = dir.path().join("foreign.sqlite3");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let e = Records::open(&foreign).err().unwrap();
    assert!(
        e.to_string()
            .contains("not Palisade's scoring records (it holds other tables: t)"),
        "{e}"
    );
}

#[test]
fn records_count_into_reputation_and_sweep_by_retention() {
    let dir = TempDir::new("records-sweep");
    let records = Records::open_in(dir.path()).unwrap();
    let day = 86_400;
    let now = 400 * day;
    records
        .write(&[
            sample(now - 40 * day, "a/32"),
            sample(now - day, "a/32"),
            Record::Reputation {
                at: now - day,
                client: "a/32".into(),
                event: Event::Blocked,
            },
            Record::Reputation {
                at: now,
                client: "a/32".into(),
                event: Event::ChallengeFailed,
            },
            Record::Label(label(now - 200 * day, "old/32", true)),
            Record::Label(label(now - 2, "b/32", false)),
            Record::Label(label(now - 1, "b/32", true)),
        ])
        .unwrap();
    let a = records.reputation("a/32").unwrap().unwrap();
    assert_eq!((a.blocks, a.challenges_failed, a.last_seen), (1, 1, now));
    let b = records.reputation("b/32").unwrap().unwrap();
    assert_eq!((b.bot_labels, b.human_labels), (1, 1));
    let labels = records.labels_since(now - 10).unwrap();
    assert_eq!(labels.len(), 2);
    assert!(labels[0].bot && !labels[1].bot, "newest first");
    assert_eq!(labels[0].features, vec![0.25; REQUEST.len()]);
    let counts = records.counts().unwrap();
    assert_eq!(
        (counts.samples, counts.labels, counts.blocked_clients),
        (2, 3, 1)
    );

    let file = model_file();
    let rejected = records
        .save_checkpoint(
            now - 200 * day,
            &file,
            "v1",
            CheckpointState::Rejected,
            &serde_json::json!({}),
            "base1",
        )
        .unwrap();
    let shadow = records
        .save_checkpoint(
            now,
            &file,
            "v2",
            CheckpointState::Shadow,
            &serde_json::json!({"auc": 0.99}),
            "base1",
        )
        .unwrap();
    assert_eq!(records.promoted_for("base1").unwrap(), None);
    records
        .write(&[Record::Checkpoint {
            id: shadow,
            state: CheckpointState::Promoted,
        }])
        .unwrap();
    let promoted = records.promoted_for("base1").unwrap().unwrap();
    assert_eq!((promoted.id, promoted.version.as_str()), (shadow, "v2"));
    assert_eq!(promoted.evaluation["auc"], 0.99);
    assert_eq!(records.promoted_for("another").unwrap(), None);

    // Samples older than 30 days, labels, reputations and rejected
    // checkpoints older than 180 days go.
    let swept = records.sweep(now, 30 * day, 180 * day).unwrap();
    assert_eq!(
        (
            swept.samples,
            swept.labels,
            swept.clients,
            swept.checkpoints
        ),
        (1, 1, 1, 1)
    );
    let counts = records.counts().unwrap();
    assert_eq!((counts.samples, counts.labels), (1, 2));
    let left: Vec<i64> = records
        .checkpoints(10)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, vec![shadow]);
    assert!(!left.contains(&rejected));
}

#[test]
fn the_writer_commits_everything_it_queued_and_counts_what_it_dropped() {
    let dir = TempDir::new("records-writer");
    let counters = WriterCounters::default();
    let writer = Writer::start(Records::open_in(dir.path()).unwrap(), 64, counters.clone());
    let mut queued = 0;
    for i in 0..5_000 {
        if writer.send(sample(i, "w/32")) {
            queued += 1;
        }
    }
    writer.close();
    let counts = Records::open_in(dir.path()).unwrap().counts().unwrap();
    assert_eq!(counts.samples, queued);
    assert_eq!(counters.dropped.get(), 5_000 - queued);
    assert_eq!(counters.failed.get(), 0);
}

#[test]
fn a_flush_returns_once_what_was_queued_before_it_is_in_the_file() {
    let dir = TempDir::new("records-flush");
    let writer = Writer::start(
        Records::open_in(dir.path()).unwrap(),
        4096,
        WriterCounters::default(),
    );
    let reader = Records::open_in(dir.path()).unwrap();
    for i in 0..1_000 {
        assert!(writer.send(Record::Label(label(100 + i, "f/32", i % 2 == 0))));
    }
    assert!(writer.flush(std::time::Duration::from_secs(10)));
    assert_eq!(reader.labels_since(0).unwrap().len(), 1_000);
    writer.close();
}

fn scoring_policy(dir: &TempDir, model: &str) -> Policy {
    let yaml = format!(
        "tokens: {{keys: ['1:test-secret-0123456789abcdef']}}
companion: {{data_dir: '{}'}}
scoring:
  enabled: true
  model: '{model}'
  feedback: {{per_client: 2, sources: {{operator: 3}}, challenge_labels: true}}
",
        dir.path().join("data").display()
    );
    Policy::from_yaml(&yaml, &ProcessEnv).unwrap()
}

fn feedback(client: &str, bot: bool) -> FeedbackRequest {
    FeedbackRequest {
        client: Some(client.into()),
        ip: None,
        features: Some(FeatureValues::Ordered(vec![0.5; REQUEST.len()])),
        label: if bot {
            LabelName::Bot
        } else {
            LabelName::Human
        },
        source: "operator".into(),
    }
}

/// Waits until the records file holds `n` labels.
fn wait_for_labels(dir: &TempDir, n: u64) {
    let records = Records::open_in(&dir.path().join("data")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while records.counts().unwrap().labels < n {
        assert!(Instant::now() < deadline, "labels not written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn feedback_is_capped_per_client_and_per_source() {
    let dir = TempDir::new("records-caps");
    let path = dir.path().join("model.json");
    std::fs::write(&path, serde_json::to_string(&model_file()).unwrap()).unwrap();
    let policy = scoring_policy(&dir, &path.display().to_string());
    let metrics = Metrics::new();
    let scoring = Scoring::new();
    scoring.configure(&policy, &metrics);
    assert!(scoring.active().model.is_some());
    let now = 1_000 * 1_000_000_000;
    let ok = |client: &str| scoring.feedback(&policy, &feedback(client, true), &metrics, now);
    ok("192.0.2.1/32").unwrap();
    ok("192.0.2.1/32").unwrap();
    let e = ok("192.0.2.1/32").unwrap_err();
    assert!(matches!(e, ApiError::Capped(_)) && e.status() == 429, "{e}");
    ok("192.0.2.2/32").unwrap();
    let e = ok("192.0.2.3/32").unwrap_err();
    assert!(
        e.to_string()
            .contains("source \"operator\" has given its 3 labels"),
        "{e}"
    );
    let spam = FeedbackRequest {
        source: "spam".into(),
        ..feedback("192.0.2.4/32", false)
    };
    let e = scoring.feedback(&policy, &spam, &metrics, now).unwrap_err();
    assert_eq!(e.status(), 400);
    wait_for_labels(&dir, 3);
    let stats = scoring.stats(&metrics);
    assert_eq!(stats["feedback_accepted"], 3);
    assert_eq!(stats["feedback_capped"], 2);
    assert_eq!(stats["training_examples"], 3);
}

#[test]
fn a_model_that_fails_to_load_leaves_rules_only_with_the_reason() {
    let dir = TempDir::new("records-no-model");
    let path = dir.path().join("model.json");
    let mut file = model_file();
    file.schema.name = "log-v1".into();
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let policy = scoring_policy(&dir, &path.display().to_string());
    let metrics = Metrics::new();
    let scoring = Scoring::new();
    scoring.configure(&policy, &metrics);
    let active = scoring.active();
    assert!(active.model.is_none());
    let error = active.error.clone().unwrap();
    assert!(error.contains("trained on schema \"log-v1\""), "{error}");
    assert!(metrics
        .encode()
        .contains("palisade_companion_model_loads_total{outcome=\"failed\"} 1"));
    let missing = scoring_policy(&dir, "/nonexistent/model.json");
    scoring.configure(&missing, &metrics);
    assert!(scoring
        .active()
        .error
        .clone()
        .unwrap()
        .contains("cannot read /nonexistent/model.json"));
    assert_eq!(scoring.stats(&metrics)["model"], serde_json::Value::Null);
}
