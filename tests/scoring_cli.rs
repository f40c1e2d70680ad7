//! `palisade simulate | train | eval | score --log` end to end through the
//! built binary, on a tiny simulated set.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_palisade");
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/demo-policy.yaml");

/// A scratch directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "palisade-scoring-cli-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "palisade {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn simulate(dir: &Dir, name: &str, variant: &str, seed: &str) -> String {
    let out = dir.file(name);
    run(&[
        "simulate",
        "--seed",
        seed,
        "--variant",
        variant,
        "--clients",
        "40",
        "--duration",
        "5m",
        "--config",
        DEMO,
        "--out",
        &out,
    ]);
    out
}

#[test]
fn simulate_train_eval_and_score_a_log() {
    let dir = Dir::new("e2e");
    let train = simulate(&dir, "train", "train", "5");
    let holdout = simulate(&dir, "holdout", "holdout", "6");
    for file in [
        "features-request.jsonl",
        "features-log.jsonl",
        "access-envoy.log",
        "access-combined.log",
        "interaction.jsonl",
    ] {
        let len = std::fs::metadata(Path::new(&train).join(file))
            .unwrap()
            .len();
        assert!(len > 0, "{file} is empty");
    }
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(Path::new(&train).join("features-request.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for key in ["client", "actor", "label", "t", "features", "rules_score"] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }

    let model = dir.file("log.json");
    let baseline = dir.file("log-logistic.json");
    let input = format!("{train}/features-log.jsonl");
    run(&[
        "train", "--schema", "log-v1", "--kind", "mlp", "--hidden", "16,8", "--epochs", "4",
        "--input", &input, "--out", &model,
    ]);
    run(&[
        "train", "--schema", "log-v1", "--kind", "logistic", "--epochs", "4", "--input", &input,
        "--out", &baseline,
    ]);

    let png = dir.file("roc.png");
    let holdout_rows = format!("{holdout}/features-log.jsonl");
    let out = run(&[
        "eval",
        "--model",
        &model,
        "--baseline",
        &baseline,
        "--input",
        &holdout_rows,
        "--roc",
        &png,
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let auc = report["model"]["auc"].as_f64().unwrap();
    assert!(auc > 0.8, "{auc}");
    assert!(report["baseline"]["auc"].as_f64().is_some());
    assert!(report["model"]["calibration"].as_array().unwrap().len() == 10);
    assert!(report["model"]["rules_auc"].as_f64().is_some());
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

    for format in ["envoy", "combined"] {
        let log = format!("{holdout}/access-{format}.log");
        let out = run(&["score", "--log", format, "--model", &model, "--input", &log]);
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= 30, "{format}: {} clients", lines.len());
        for l in &lines {
            assert!(l["client"].is_string() && l["requests"].as_u64().unwrap() > 0);
            let score = l["score"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&score));
            assert!(
                ["allow", "monitor", "challenge", "block"].contains(&l["action"].as_str().unwrap())
            );
            assert_eq!(l["top_features"].as_array().unwrap().len(), 3);
        }
    }
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = Dir::new("errors");
    let rows = dir.file("rows.jsonl");
    std::fs::write(
        &rows,
        "{\"client\":\"a\",\"label\":1,\"features\":[0.1,0.2]}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "train",
            "--schema",
            "log-v1",
            "--input",
            &rows,
            "--out",
            &dir.file("m.json"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rows.jsonl:1: 2 features, but schema log-v1 has 14"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args([
            "train",
            "--schema",
            "nope-v9",
            "--input",
            &rows,
            "--out",
            &dir.file("m.json"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown schema `nope-v9`"));

    // A request model is refused by `score --log`, which feeds log-v1.
    let request_model = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/models/request.json");
    let out = Command::new(BIN)
        .args([
            "score",
            "--log",
            "envoy",
            "--model",
            request_model,
            "--input",
            &rows,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("trained on schema \"request-v1\""));

    // Lines that are not log lines are skipped with their number.
    let log = dir.file("access.log");
    std::fs::write(
        &log,
        "garbage\n[2026-11-21T10:00:00.000Z] \"GET / HTTP/1.1\" 200 - 0 5 1 1 \"203.0.113.9\" \"curl/8.5.0\" \"id\" \"h\" \"u\"\n",
    )
    .unwrap();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/models/log.json");
    let out = run(&["score", "--log", "envoy", "--model", model, "--input", &log]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("access.log:1: not a line of the envoy log format (no [time])"));
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (line["client"].as_str(), line["requests"].as_u64()),
        (Some("203.0.113.9"), Some(1))
    );
}
