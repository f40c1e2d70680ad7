//! Companion benchmarks (criterion): `cargo bench --bench companion`.
//! `scripts/bench-companion.sh` runs it beside Python's `captcha` and a
//! live `palisade serve`, and prints the ratios.
//!
//! - `render_text/palisade_dN`: a new answer and its PNG at difficulty N,
//!   at [`text::WIDTH`]×[`text::HEIGHT`];
//! - `render_text/captcha_crate`: the Rust `captcha` crate's PNG of five
//!   characters at the same size, with its own noise and wave filters (its
//!   "medium" look);
//! - `render_tile/one_click` and `render_tile/grid`: one JPEG tile of a
//!   fresh puzzle at difficulty 3;
//! - `render_audio/dN`: one clip of fresh digits in English;
//! - `render_chart/d3`: a chart challenge from the demo policy's tables
//!   and templates (`challenge.chart`): a template picked and its rows
//!   drawn, then the PNG, at difficulty 3;
//! - `verify/sqlite`: [`Challenges::verify`] of a right answer against the
//!   SQLite store on disk (the challenge is issued outside the timing).
//!
//! `--print-size` prints the text image size and exits.

use criterion::{BatchSize, Criterion};
use palisade::challenge::chart::{self, ChartKit};
use palisade::challenge::providers::Providers;
use palisade::challenge::service::{Answer, Assets, Challenges, Client, Issued, Request};
use palisade::challenge::store::SqliteStore;
use palisade::challenge::{audio, text, Lang};
use palisade::config::ChallengeKind;
use palisade::policy::{Policy, ProcessEnv};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn assets() -> Assets {
    Assets::load(&Path::new(ROOT).join("datasets")).expect("datasets load")
}

fn bench_text(c: &mut Criterion, assets: &Assets) {
    let mut g = c.benchmark_group("render_text");
    let mut rng = SmallRng::seed_from_u64(7);
    for d in [1u8, 2, 3, 5] {
        g.bench_function(format!("palisade_d{d}"), |b| {
            b.iter(|| {
                let answer = text::new_answer(&mut rng, d);
                black_box(assets.text.render(&answer, d, &mut rng))
            })
        });
    }
    g.bench_function("captcha_crate", |b| {
        use captcha::filters::{Noise, Wave};
        b.iter(|| {
            let png = captcha::Captcha::new()
                .add_chars(5)
                .apply_filter(Noise::new(0.2))
                .apply_filter(Wave::new(2.0, 20.0).horizontal())
                .view(text::WIDTH, text::HEIGHT)
                .as_png();
            black_box(png)
        })
    });
    g.finish();
}

fn bench_tiles(c: &mut Criterion, assets: &Assets) {
    let mut g = c.benchmark_group("render_tile");
    let mut rng = SmallRng::seed_from_u64(11);
    for (name, grid) in [("one_click", false), ("grid", true)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let puzzle = assets.pictures.puzzle(grid, 3, &mut rng);
                let tile = puzzle.tiles[0];
                black_box(assets.pictures.render_tile(tile, 3, &mut rng).unwrap())
            })
        });
    }
    g.finish();
}

fn bench_audio(c: &mut Criterion, assets: &Assets) {
    let mut g = c.benchmark_group("render_audio");
    g.sample_size(20);
    let mut rng = SmallRng::seed_from_u64(13);
    for d in [1u8, 5] {
        g.bench_function(format!("d{d}"), |b| {
            b.iter(|| {
                let digits = audio::new_answer(&mut rng, d);
                black_box(
                    assets
                        .voices
                        .render(&digits, Lang::En, d, &mut rng)
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

fn demo_policy() -> Policy {
    let text = std::fs::read_to_string(Path::new(ROOT).join("envoy/demo-policy.yaml")).unwrap();
    Policy::from_yaml(&text, &ProcessEnv).expect("demo policy")
}

fn bench_chart(c: &mut Criterion) {
    let policy = demo_policy();
    let kit = ChartKit::load(policy.challenge_config(), &Path::new(ROOT).join("datasets"))
        .expect("the demo policy's chart tables load");
    let mut rng = SmallRng::seed_from_u64(17);
    c.bench_function("render_chart/d3", |b| {
        b.iter(|| {
            let issued = kit.issue(3, &mut rng).expect("a chart challenge");
            black_box(chart::render_layout(&issued.layout, 3, &mut rng).expect("a PNG"))
        })
    });
}

fn bench_verify(c: &mut Criterion, assets: &Assets) {
    let policy = demo_policy();
    let dir = std::env::temp_dir().join(format!("palisade-bench-verify-{}", std::process::id()));
    let store = SqliteStore::open_in(&dir).expect("sqlite store");
    let providers = Providers::default();
    let challenges = Challenges {
        policy: &policy,
        assets,
        store: &store,
        providers: &providers,
    };
    let client = Client {
        ip: Some("192.0.2.9".parse().unwrap()),
        user_agent: "bench".into(),
    };
    let ask = Request {
        kind: ChallengeKind::Text,
        difficulty: 2,
        lang: Lang::En,
        return_path: "/".into(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    c.bench_function("verify/sqlite", |b| {
        b.iter_batched(
            || match challenges.issue(&ask, &client, now).unwrap() {
                Issued::Stored { context, .. } => (context.id, context.answer),
                Issued::Pow { .. } => unreachable!("a text challenge is stored"),
            },
            |(id, answer)| black_box(challenges.verify(&id, &Answer::Text(answer), &client, now)),
            BatchSize::SmallInput,
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if std::env::args().any(|a| a == "--print-size") {
        println!("{} {}", text::WIDTH, text::HEIGHT);
        return;
    }
    let assets = assets();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_text(&mut c, &assets);
    bench_tiles(&mut c, &assets);
    bench_audio(&mut c, &assets);
    bench_chart(&mut c);
    bench_verify(&mut c, &assets);
    c.final_summary();
}
