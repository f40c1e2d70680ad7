//! Training and evaluation on simulated traffic: a small training set
//! reaches the target AUC on the holdout variant (other actor parameters,
//! not only other seeds), model files round-trip, and the metrics are
//! right on crafted scores.

use palisade::crawlers::Crawlers;
use palisade::scoring::eval;
use palisade::scoring::rows::Row;
use palisade::scoring::simulate::{self, SimOptions, Variant};
use palisade::scoring::train::{self, Example, ModelKind, TrainOptions};
use palisade::scoring::{Model, ACCESS_LOG};

fn log_rows(seed: u64, variant: Variant, clients: usize) -> Vec<Row> {
    let sim = simulate::simulate(&SimOptions {
        seed,
        variant,
        clients,
        duration_s: 900.0,
    });
    let crawlers = Crawlers::builtin().unwrap();
    simulate::rows::log_rows(&sim, &crawlers, &[])
}

/// Every `step`-th row, each client's rows weighted as `palisade train` does.
fn examples(rows: &[Row], step: usize) -> Vec<Example> {
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for r in rows {
        *counts.entry(&r.client).or_default() += 1;
    }
    rows.iter()
        .step_by(step)
        .map(|r| Example {
            features: r.features.clone(),
            label: r.is_bot(),
            weight: 1.0 / (counts[r.client.as_str()] as f32).sqrt(),
        })
        .collect()
}

fn options() -> TrainOptions {
    TrainOptions {
        hidden: vec![16, 8],
        epochs: 12,
        batch_size: 64,
        ..TrainOptions::default()
    }
}

#[test]
fn a_small_simulated_set_trains_to_the_target_auc_on_the_holdout_variant() {
    let train_rows = log_rows(11, Variant::Train, 120);
    let data = examples(&train_rows, (train_rows.len() / 5000).max(1));
    let file = train::train(&data, &ACCESS_LOG, &options()).unwrap();
    let model = Model::new(file, &ACCESS_LOG).unwrap();
    let holdout = log_rows(12, Variant::Holdout, 80);
    let report = eval::evaluate(&model, &holdout);
    assert!(report.auc >= 0.97, "holdout AUC {:.4}", report.auc);
    assert!(report.bots > 0 && report.people > 0);
}

#[test]
fn a_trained_model_round_trips_through_json_and_scores_the_same() {
    let rows = log_rows(13, Variant::Train, 40);
    let data = examples(&rows, (rows.len() / 1500).max(1));
    for kind in [ModelKind::Mlp, ModelKind::Logistic] {
        let file = train::train(&data, &ACCESS_LOG, &TrainOptions { kind, ..options() }).unwrap();
        assert_eq!(file.kind, kind.as_str());
        assert_eq!(
            file.layers.len(),
            if kind == ModelKind::Mlp { 3 } else { 1 }
        );
        for key in [
            "version",
            "trained_at",
            "examples",
            "seed",
            "validation_auc",
        ] {
            assert!(file.metadata.contains_key(key), "{key}");
        }
        let text = serde_json::to_string(&file).unwrap();
        let loaded = Model::from_json(&text, &ACCESS_LOG).unwrap();
        let direct = Model::new(file, &ACCESS_LOG).unwrap();
        for r in rows.iter().step_by(97) {
            assert_eq!(loaded.score(&r.features), direct.score(&r.features));
        }
        let err = Model::from_json(&text, &palisade::scoring::REQUEST).unwrap_err();
        assert!(err.to_string().contains("log-v1"), "{err}");
    }
}

#[test]
fn the_same_seed_trains_the_same_model() {
    let rows = log_rows(14, Variant::Train, 30);
    let data = examples(&rows, (rows.len() / 800).max(1));
    let a = train::train(&data, &ACCESS_LOG, &options()).unwrap();
    let b = train::train(&data, &ACCESS_LOG, &options()).unwrap();
    assert_eq!(a.layers, b.layers);
    assert_eq!(a.calibration, b.calibration);
}

#[test]
fn auc_of_perfect_inverted_and_random_scores() {
    let labels: Vec<bool> = (0..10_000).map(|i| i % 2 == 0).collect();
    let perfect: Vec<f32> = labels.iter().map(|&b| if b { 0.9 } else { 0.1 }).collect();
    let inverted: Vec<f32> = perfect.iter().map(|s| 1.0 - s).collect();
    // A fixed pseudo-random sequence, independent of the labels.
    let random: Vec<f32> = (0..10_000u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as f32)
        .collect();
    assert_eq!(eval::auc(&perfect, &labels), 1.0);
    assert_eq!(eval::auc(&inverted, &labels), 0.0);
    let r = eval::auc(&random, &labels);
    assert!((r - 0.5).abs() < 0.03, "{r}");
}

/// A logistic model whose score is `100 × sigmoid(first feature)`.
fn first_feature_model() -> Model {
    use palisade::scoring::model::ModelFile;
    let mut weights = vec![0.0; ACCESS_LOG.len()];
    weights[0] = 1.0;
    Model::new(ModelFile::logistic(&ACCESS_LOG, weights, 0.0), &ACCESS_LOG).unwrap()
}

#[test]
fn the_thresholds_decide_the_confusion_matrix_and_calibration_bands() {
    let model = first_feature_model();
    let row = |score: f32, bot: bool| {
        let p = score / 100.0;
        let mut features = vec![0.0; ACCESS_LOG.len()];
        features[0] = (p / (1.0 - p)).ln();
        Row {
            client: format!("{score}"),
            actor: if bot { "bot".into() } else { "person".into() },
            label: u8::from(bot),
            t: 0.0,
            features,
            rules_score: Some(if bot { 100.0 } else { 0.0 }),
        }
    };
    // People at 30 (allow) and 80 (challenge), bots at 60 (monitor) and 95 (block).
    let rows = [
        row(30.0, false),
        row(80.0, false),
        row(60.0, true),
        row(95.0, true),
    ];
    let r = eval::evaluate(&model, &rows);
    assert_eq!(
        (
            r.confusion.true_positives,
            r.confusion.false_positives,
            r.confusion.true_negatives,
            r.confusion.false_negatives
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        (r.precision, r.recall, r.people_flagged_share),
        (0.5, 0.5, 0.5)
    );
    assert_eq!(
        (
            r.people_actions.allow,
            r.people_actions.challenge,
            r.bot_actions.monitor,
            r.bot_actions.block
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(r.auc, 0.75);
    assert_eq!(r.rules_auc, Some(1.0));
    let band = &r.calibration[8];
    assert_eq!((band.from, band.rows, band.observed_bots), (80, 1, 0.0));
    assert!((band.mean_predicted - 0.8).abs() < 1e-4);
    assert_eq!(r.ablation[0].auc_without, 0.5);
}
