//! Inference speed of the shipped request models: predictions per second
//! on one core (target: at least 1,000,000 for the MLP).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use palisade::scoring::{Model, REQUEST};
use std::time::Instant;

fn model(name: &str) -> Model {
    let path = format!("{}/datasets/models/{name}", env!("CARGO_MANIFEST_DIR"));
    Model::from_json(&std::fs::read_to_string(&path).unwrap(), &REQUEST).unwrap()
}

/// A spread of feature vectors in `[0, 1]`.
fn inputs() -> Vec<Vec<f32>> {
    (0..256u32)
        .map(|i| {
            (0..REQUEST.len() as u32)
                .map(|j| ((i * 31 + j * 17) % 101) as f32 / 100.0)
                .collect()
        })
        .collect()
}

/// Times `n` predictions outside criterion, for a figure in the log.
fn per_second(model: &Model, xs: &[Vec<f32>]) -> f64 {
    let n = 2_000_000;
    let start = Instant::now();
    let mut sum = 0.0f32;
    for i in 0..n {
        sum += model.score(black_box(&xs[i % xs.len()]));
    }
    black_box(sum);
    n as f64 / start.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let xs = inputs();
    for (name, file) in [
        ("mlp", "request.json"),
        ("logistic", "request-logistic.json"),
    ] {
        let m = model(file);
        let mut i = 0;
        c.bench_function(&format!("score/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % xs.len();
                m.score(black_box(&xs[i]))
            })
        });
        println!(
            "{name}: {:.0} predictions per second (one core)",
            per_second(&m, &xs)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
