//! The guard on online learning against a poisoning attempt: an attacker
//! who solves challenges (or posts `/feedback`) to label bot behaviour as
//! human must not get a candidate served. With simulated traffic, the real
//! trainer and the real held-out evaluation.

use palisade::companion::scoring::guard::{Standing, MAX_BOT_SHIFT};
use palisade::companion::scoring::records::Label;
use palisade::companion::scoring::retrain::{retrain, Inputs, Verdict};
use palisade::config::TrainingConfig;
use palisade::policy::{Policy, ProcessEnv};
use palisade::scoring::rows::Row;
use palisade::scoring::simulate::{self, SimOptions, Variant};
use palisade::scoring::train::{train, Example, ModelKind, TrainOptions};
use palisade::scoring::{Model, REQUEST};

fn policy() -> Policy {
    let text = std::fs::read_to_string("envoy/demo-policy.yaml").unwrap();
    Policy::from_yaml(&text, &ProcessEnv).unwrap()
}

/// Every `n`-th row of a simulation, so that debug builds train quickly.
fn rows(policy: &Policy, seed: u64, variant: Variant, clients: usize, keep: usize) -> Vec<Row> {
    let sim = simulate::simulate(&SimOptions {
        seed,
        variant,
        clients,
        duration_s: 900.0,
    });
    let all = simulate::rows::request_rows(&sim, policy);
    let step = (all.len() / keep).max(1);
    all.into_iter().step_by(step).collect()
}

fn logistic(base: &[Row]) -> Model {
    let examples: Vec<Example> = base
        .iter()
        .map(|r| Example {
            features: r.features.clone(),
            label: r.is_bot(),
            weight: 1.0,
        })
        .collect();
    let options = TrainOptions {
        kind: ModelKind::Logistic,
        ..TrainOptions::default()
    };
    Model::new(train(&examples, &REQUEST, &options).unwrap(), &REQUEST).unwrap()
}

fn label(row: &Row, client: String, bot: bool, source: &str, weight: f32) -> Label {
    Label {
        at: 0,
        client,
        source: source.into(),
        bot,
        weight,
        features: row.features.clone(),
    }
}

struct World {
    policy: Policy,
    base: Vec<Row>,
    holdout: Vec<Row>,
    current: Model,
    /// Rows of other traffic, for labels.
    other: Vec<Row>,
}

fn world() -> World {
    let policy = policy();
    let base = rows(&policy, 11, Variant::Train, 160, 4000);
    let holdout = rows(&policy, 12, Variant::Holdout, 160, 3000);
    let other = rows(&policy, 13, Variant::Train, 160, 4000);
    let current = logistic(&base);
    World {
        policy,
        base,
        holdout,
        current,
        other,
    }
}

fn run(
    w: &World,
    labels: &[Label],
    config: &TrainingConfig,
) -> palisade::companion::scoring::retrain::Outcome {
    retrain(&Inputs {
        current: &w.current,
        base: &w.base,
        holdout: &w.holdout,
        labels,
        config,
        per_client: 5,
        thresholds: w.policy.thresholds(),
        version: "test".into(),
    })
}

fn mean_score(model: &Model, rows: &[&Row]) -> f64 {
    rows.iter()
        .map(|r| f64::from(model.score(&r.features)))
        .sum::<f64>()
        / rows.len().max(1) as f64
}

#[test]
fn poisoning_with_human_labels_on_bot_behaviour_is_refused_and_honest_labels_pass() {
    let w = world();
    // Looser on the operating point than the defaults: a small logistic
    // model retrained on a debug-sized base moves its thresholds' crossing
    // by a few percent however honest the labels. AUC and the bots' mean
    // score keep their defaults.
    let config = TrainingConfig {
        min_labels: 10,
        max_challenged_rise: 0.1,
        max_missed_rise: 0.1,
        ..TrainingConfig::default()
    };
    let bots: Vec<&Row> = w.other.iter().filter(|r| r.is_bot()).collect();
    let people: Vec<&Row> = w.other.iter().filter(|r| !r.is_bot()).collect();
    assert!(
        bots.len() > 500 && people.len() > 100,
        "{} bots, {} people",
        bots.len(),
        people.len()
    );

    // The attacker: 2,000 "passed challenge" labels on its bots' behaviour,
    // from 400 addresses (5 each, the per-client cap), as many as the
    // challenge source's cap lets through in a day.
    let poison: Vec<Label> = bots
        .iter()
        .take(2000)
        .enumerate()
        .map(|(i, r)| {
            label(
                r,
                format!("198.51.100.{}/32", i / 5),
                false,
                "challenge",
                0.5,
            )
        })
        .collect();
    let before = mean_score(&w.current, &bots);
    let outcome = run(&w, &poison, &config);
    assert_eq!(
        outcome.verdict,
        Verdict::Rejected,
        "{}: {}",
        outcome.reason,
        outcome.evaluation
    );
    // What it would have done had it been served: the guard refused it for
    // moving held-out bots, and the labels were scaled to a minority.
    let candidate = Model::new(outcome.candidate.clone().unwrap(), &REQUEST).unwrap();
    let scale = outcome.evaluation["label_scale"]["human"].as_f64().unwrap();
    assert!(scale < 1.0, "the labels were not scaled down: {scale}");
    let current = Standing::of(&w.current, &w.holdout, w.policy.thresholds());
    let poisoned = Standing::of(&candidate, &w.holdout, w.policy.thresholds());
    assert!(
        poisoned.bots_mean < current.bots_mean - MAX_BOT_SHIFT
            || poisoned.bots_missed > current.bots_missed + f64::from(config.max_missed_rise)
            || poisoned.auc < current.auc - f64::from(config.max_auc_drop),
        "refused for another reason: {}",
        outcome.reason
    );
    eprintln!(
        "poisoned: attacker's bots {before:.1} -> {:.1}; {}",
        mean_score(&candidate, &bots),
        outcome.reason
    );

    // Honest labels: the same number, each the truth.
    let honest: Vec<Label> = people
        .iter()
        .take(100)
        .map(|r| (r, false))
        .chain(bots.iter().take(100).map(|r| (r, true)))
        .enumerate()
        .map(|(i, (r, bot))| label(r, format!("203.0.113.{}/32", i / 5), bot, "operator", 1.0))
        .collect();
    let outcome = run(&w, &honest, &config);
    assert_eq!(
        outcome.verdict,
        Verdict::Passed,
        "{}: {}",
        outcome.reason,
        outcome.evaluation
    );
}

#[test]
fn too_few_labels_train_nothing() {
    let w = world();
    let config = TrainingConfig {
        min_labels: 50,
        ..TrainingConfig::default()
    };
    let labels: Vec<Label> = w
        .other
        .iter()
        .take(10)
        .map(|r| label(r, "a/32".into(), true, "operator", 1.0))
        .collect();
    let outcome = run(&w, &labels, &config);
    assert_eq!(outcome.verdict, Verdict::TooFewLabels);
    assert!(outcome.candidate.is_none());
}
