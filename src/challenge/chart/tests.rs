//! Every shipped template renders, verifies (with typos) and expires; and
//! what the policy can get wrong fails at load with its path.

use super::template::{Template, TemplateError};
use super::*;
use crate::challenge::providers::Providers;
use crate::challenge::service::{
    Answer, Assets, ChallengeFailure, Challenges, Client, Issued, Request,
};
use crate::challenge::store::SqliteStore;
use crate::challenge::Lang;
use crate::policy::{Policy, ProcessEnv};
use image::GenericImageView;

const TEMPLATES: [&str; 5] = [
    "largest_bar",
    "smallest_bar",
    "line_peak",
    "largest_slice",
    "compare_values",
];

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn datasets() -> std::path::PathBuf {
    root().join("datasets")
}

/// `challenge.chart` over the demo tables, with `templates` (YAML flow
/// items) as given.
fn chart_yaml(templates: &[String]) -> String {
    let charts = datasets().join("charts");
    format!(
        "chart:\n  tables:\n    fruit: {{csv: {}}}\n    visitors: {{csv: {}}}\n  templates:\n{}",
        charts.join("fruit.csv").display(),
        charts.join("visitors.csv").display(),
        templates
            .iter()
            .map(|t| format!("    - {t}\n"))
            .collect::<String>()
    )
}

/// The demo's configuration of a shipped template.
fn demo_template(name: &str) -> String {
    match name {
        "line_peak" => {
            "{template: line_peak, table: visitors, label: month, value: visitors}".into()
        }
        other => format!("{{template: {other}, table: fruit, label: fruit, value: crates_sold}}"),
    }
}

fn challenge_config(yaml: &str) -> Result<ChallengeConfig, ConfigError> {
    let value = crate::config::yaml_to_json(yaml)?;
    serde_path_to_error::deserialize(value).map_err(ConfigError::from_parse)
}

fn kit(templates: &[String]) -> Result<ChartKit, ConfigError> {
    ChartKit::load(&challenge_config(&chart_yaml(templates))?, &datasets())
}

/// One wrong character, inside the answer and not making it another
/// choice.
fn with_typos(answer: &str, typos: usize) -> String {
    let mut chars: Vec<char> = answer.chars().collect();
    for i in 0..typos {
        let at = (1 + 2 * i) % chars.len();
        chars[at] = if chars[at] == 'q' { 'z' } else { 'q' };
    }
    chars.into_iter().collect()
}

#[test]
fn each_template_renders_a_png_and_its_answer_verifies_with_typos() {
    for name in TEMPLATES {
        let kit = kit(&[demo_template(name)]).unwrap_or_else(|e| panic!("{name}: {e}"));
        for difficulty in 1..=5 {
            for seed in 0..6 {
                let mut rng = SmallRng::seed_from_u64(seed * 31 + u64::from(difficulty));
                let issued = kit.issue(difficulty, &mut rng).expect(name);
                let challenge = challenge_of(&issued.layout).expect("the layout is a challenge");
                assert_eq!(issued.prompt, challenge.question);
                assert!(
                    challenge.choices.contains(&issued.answer),
                    "{name}: {challenge:?}"
                );
                assert!(challenge.choices.len() >= 2, "{name}");
                if name != "compare_values" {
                    assert_eq!(
                        challenge.choices.len(),
                        challenge.chart.labels.len(),
                        "{name}"
                    );
                }

                let png = render_layout(&issued.layout, difficulty, &mut rng).expect(name);
                let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                    .expect("a PNG that decodes");
                assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
                // Something was drawn in colour: not a blank page.
                let coloured = image
                    .to_rgb8()
                    .pixels()
                    .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 60)
                    .count();
                let least = if name == "line_peak" { 600 } else { 2000 };
                assert!(coloured > least, "{name}: {coloured} coloured pixels");
                if let Some(dir) = std::env::var_os("PALISADE_CHART_SAMPLES") {
                    let path = Path::new(&dir).join(format!("{name}-d{difficulty}-{seed}.png"));
                    std::fs::write(path, &png).unwrap();
                }

                let (layout, answer) = (&issued.layout, &issued.answer);
                // Typed as is, in another case, with spaces, or by index.
                assert!(is_right(layout, answer, Given::Text(answer), 0), "{name}");
                let lower = answer.to_lowercase();
                assert!(is_right(layout, answer, Given::Text(&lower), 0));
                let index = challenge.choices.iter().position(|c| c == answer).unwrap();
                assert!(is_right(layout, answer, Given::Index(index), 0));
                // Every other choice is wrong, typed or by index.
                for (i, other) in challenge.choices.iter().enumerate() {
                    if other != answer {
                        assert!(!is_right(layout, answer, Given::Text(other), 1), "{name}");
                        assert!(!is_right(layout, answer, Given::Index(i), 1));
                    }
                }
                assert!(!is_right(layout, answer, Given::Index(99), 3));
                // One typo passes with a tolerance of one, not of none;
                // two do not pass with one.
                let one = with_typos(answer, 1);
                let near_other = challenge
                    .choices
                    .iter()
                    .any(|c| c != answer && crate::challenge::text::matches(c, &one, 1));
                if !near_other {
                    assert!(
                        is_right(layout, answer, Given::Text(&one), 1),
                        "{name}: {one}"
                    );
                }
                assert!(
                    !is_right(layout, answer, Given::Text(&one), 0),
                    "{name}: {one}"
                );
                if answer.chars().count() >= 4 {
                    let two = with_typos(answer, 2);
                    assert!(
                        !is_right(layout, answer, Given::Text(&two), 1),
                        "{name}: {two}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_answer_is_what_the_chart_shows() {
    let mut rng = SmallRng::seed_from_u64(5);
    for name in TEMPLATES {
        let kit = kit(&[demo_template(name)]).unwrap();
        for _ in 0..50 {
            let issued = kit.issue(3, &mut rng).unwrap();
            let c = challenge_of(&issued.layout).unwrap();
            let at = |label: &str| c.chart.labels.iter().position(|l| l == label).unwrap();
            let value = c.chart.values[at(&issued.answer)];
            let (max, min) = c
                .chart
                .values
                .iter()
                .fold((f64::MIN, f64::MAX), |(a, b), &v| (a.max(v), b.min(v)));
            match name {
                "smallest_bar" => assert_eq!(value, min),
                "compare_values" => {
                    let other = c.choices.iter().find(|x| **x != issued.answer).unwrap();
                    assert!(value > c.chart.values[at(other)], "{c:?}");
                    assert!(
                        c.question.contains(&c.choices[0]) && c.question.contains(&c.choices[1])
                    );
                }
                _ => assert_eq!(value, max, "{name}: {c:?}"),
            }
        }
    }
}

#[test]
fn renders_are_jittered_per_seed_and_stable_for_one() {
    let kit = kit(&[demo_template("largest_bar")]).unwrap();
    let issued = kit.issue(2, &mut SmallRng::seed_from_u64(1)).unwrap();
    let draw = |seed| render_layout(&issued.layout, 2, &mut SmallRng::seed_from_u64(seed)).unwrap();
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}

#[test]
fn a_missing_column_fails_at_load_with_its_path() {
    let templates = [
        demo_template("largest_bar"),
        demo_template("line_peak"),
        "{template: largest_slice, table: fruit, label: fruit, value: active}".to_string(),
    ];
    let err = kit(&templates).err().expect("no column `active`");
    assert_eq!(
        err.to_string(),
        "challenge.chart.templates[2].value: table \"fruit\" has no column \"active\""
    );
    let cases = [
        (
            "{template: largest_bar, table: nope, label: fruit, value: crates_sold}",
            "challenge.chart.templates[0].table: no table \"nope\" (there are: fruit, visitors)",
        ),
        (
            "{template: largest_bar, table: fruit, label: colour, value: crates_sold}",
            "challenge.chart.templates[0].label: table \"fruit\" has no column \"colour\"",
        ),
        (
            "{template: largest_bar, table: fruit, label: crates_sold, value: fruit}",
            "challenge.chart.templates[0].value: table \"fruit\" column \"fruit\", row 1: \"Apples\" is not a number",
        ),
        (
            "{template: tallest_tower, table: fruit}",
            "challenge.chart.templates[0].template: no chart template `tallest_tower` (there are: largest_bar, smallest_bar, line_peak, largest_slice, compare_values)",
        ),
        (
            "{template: largest_bar, table: fruit, label: fruit, value: crates_sold, colour: red}",
            "challenge.chart.templates[0].colour: unknown field `colour`, expected one of `table`, `label`, `value`, `question`, `title`, `count`",
        ),
        (
            "{template: largest_bar, table: fruit, label: fruit, value: crates_sold, count: 9}",
            "challenge.chart.templates[0].count: must be 2 to 8",
        ),
    ];
    for (template, want) in cases {
        let err = kit(&[template.to_string()]).err().expect(template);
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn a_table_no_template_can_ask_about_fails_at_load() {
    let dir = std::env::temp_dir().join(format!("palisade-chart-flat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flat = dir.join("flat.json");
    std::fs::write(
        &flat,
        r#"[{"k": "a", "v": 5}, {"k": "b", "v": 5}, {"k": "c", "v": 5}]"#,
    )
    .unwrap();
    let yaml = format!(
        "chart:\n  tables:\n    flat: {{json: {}}}\n  templates:\n    - {{template: largest_bar, table: flat, label: k, value: v, count: 3}}\n",
        flat.display()
    );
    let err = ChartKit::load(&challenge_config(&yaml).unwrap(), &datasets())
        .err()
        .expect("all values equal");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(err.path, "challenge.chart.templates[0]");
    assert!(
        err.reason.contains("no rows this template can ask about"),
        "{err}"
    );
}

#[test]
fn the_chart_kind_needs_templates() {
    let config = challenge_config("kind: chart").unwrap();
    let err = ChartKit::load(&config, &datasets()).err().unwrap();
    assert_eq!(err.path, "challenge.chart.templates");
    // Without the kind as default, no templates is no kit.
    let config = challenge_config("kind: text").unwrap();
    assert!(ChartKit::load(&config, &datasets()).unwrap().is_empty());
}

/// A template of one's own, as `docs/chart-template.md` shows.
struct SecondLargest {
    table: String,
    label: usize,
    value: usize,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecondLargestParams {
    table: String,
    label: String,
    value: String,
}

impl Template for SecondLargest {
    const CONFIG_NAME: &'static str = "second_largest";
    type Params = SecondLargestParams;

    fn new(p: SecondLargestParams, tables: &Tables) -> Result<Self, TemplateError> {
        let table = template::table(tables, &p.table)?;
        Ok(SecondLargest {
            label: template::column(table, "label", &p.label)?,
            value: template::number_column(table, "value", &p.value, Some(0.0))?,
            table: p.table,
        })
    }

    fn generate(
        &self,
        tables: &Tables,
        _difficulty: u8,
        rng: &mut dyn RngCore,
    ) -> Option<(Challenge, String)> {
        let table = tables.get(&self.table)?;
        let start = rng.random_range(0..table.rows.len().checked_sub(3)?);
        let rows = [start, start + 1, start + 2];
        let mut by_value = rows;
        let value = |r: usize| table.number(r, self.value).unwrap_or(0.0);
        by_value.sort_by(|&a, &b| value(b).total_cmp(&value(a)));
        let labels: Vec<String> = rows
            .iter()
            .map(|&r| table.text(r, self.label).to_string())
            .collect();
        let answer = table.text(by_value[1], self.label).to_string();
        let chart = Chart {
            kind: ChartKind::Bar,
            title: "second".into(),
            values: rows
                .iter()
                .map(|&r| table.number(r, self.value))
                .collect::<Option<_>>()?,
            labels: labels.clone(),
        };
        Some((
            template::challenge("Which bar is the second tallest?".into(), chart, labels),
            answer,
        ))
    }
}

#[test]
fn a_registered_template_of_ones_own_is_used() {
    let mut registry = Registry::shipped();
    registry.register::<SecondLargest>();
    let yaml = chart_yaml(&[
        "{template: second_largest, table: fruit, label: fruit, value: crates_sold}".into(),
    ]);
    let kit =
        ChartKit::load_with(&challenge_config(&yaml).unwrap(), &datasets(), &registry).unwrap();
    let issued = kit.issue(2, &mut SmallRng::seed_from_u64(3)).unwrap();
    assert_eq!(issued.prompt, "Which bar is the second tallest?");
    // The shipped kit does not know it.
    let err = ChartKit::load(&challenge_config(&yaml).unwrap(), &datasets())
        .err()
        .unwrap();
    assert_eq!(err.path, "challenge.chart.templates[0].template");
}

/// The service around a kit: issue, render, verify, single use, expiry.
#[test]
fn chart_challenges_pass_once_and_only_before_they_expire() {
    let templates: Vec<String> = TEMPLATES.iter().map(|t| demo_template(t)).collect();
    let chart = chart_yaml(&templates).replace('\n', "\n  ");
    let yaml = format!(
        "tokens: {{keys: [\"1:chart test secret 0123456789abcdef\"]}}\ncompanion: {{ttl: 60s, retries: 100, typo_tolerance: 1}}\nchallenge:\n  {chart}"
    );
    let policy = Policy::from_yaml(&yaml, &ProcessEnv).unwrap();
    let mut assets = Assets::load(&datasets()).unwrap();
    assets.charts = ChartKit::load(policy.challenge_config(), &datasets()).unwrap();
    let dir = std::env::temp_dir().join(format!("palisade-chart-service-{}", std::process::id()));
    let store = SqliteStore::open_in(&dir).unwrap();
    let providers = Providers::default();
    let challenges = Challenges {
        policy: &policy,
        assets: &assets,
        store: &store,
        providers: &providers,
    };
    let client = Client {
        ip: Some("192.0.2.7".parse().unwrap()),
        user_agent: "chart test".into(),
    };
    let ask = Request {
        kind: ChallengeKind::Chart,
        difficulty: 3,
        lang: Lang::En,
        return_path: "/after".into(),
    };
    let now = 1_800_000_000;
    let issue = || match challenges.issue(&ask, &client, now).unwrap() {
        Issued::Stored {
            context, prompt, ..
        } => (context, prompt),
        Issued::Pow { .. } => panic!("a chart is stored"),
    };
    for _ in 0..10 {
        let (context, prompt) = issue();
        assert_eq!(context.passed.kind, ChallengeKind::Chart);
        assert_eq!(prompt, challenge_of(&context.layout).unwrap().question);
        let png = challenges
            .media(&context.id, crate::challenge::service::Media::Image, now)
            .unwrap();
        assert_eq!(png.content_type, "image/png");
        assert!(image::load_from_memory(&png.bytes).is_ok());

        // Wrong first (another choice), then a typo within tolerance.
        let other = challenge_of(&context.layout)
            .unwrap()
            .choices
            .into_iter()
            .find(|c| *c != context.answer)
            .unwrap();
        let refused = challenges
            .verify(&context.id, &Answer::Text(other), &client, now)
            .unwrap_err();
        assert!(matches!(refused.failure, ChallengeFailure::WrongAnswer));
        let typed = format!(" {}x", context.answer.to_uppercase());
        let verified = challenges.verify(&context.id, &Answer::Text(typed.clone()), &client, now);
        // A typo that lands within one edit of another choice is refused.
        let ambiguous = challenge_of(&context.layout)
            .unwrap()
            .choices
            .iter()
            .any(|c| *c != context.answer && crate::challenge::text::matches(c, &typed, 1));
        if ambiguous {
            continue;
        }
        let verified = verified.unwrap();
        assert_eq!(verified.passed.kind, ChallengeKind::Chart);
        assert_eq!(verified.return_path, "/after");
        let again = challenges
            .verify(
                &context.id,
                &Answer::Text(context.answer.clone()),
                &client,
                now,
            )
            .unwrap_err();
        assert!(
            matches!(again.failure, ChallengeFailure::Used),
            "{:?}",
            again.failure
        );
    }
    // Right, but after the challenge's timeout.
    let (context, _) = issue();
    let late = challenges
        .verify(
            &context.id,
            &Answer::Text(context.answer.clone()),
            &client,
            now + 60,
        )
        .unwrap_err();
    assert!(matches!(late.failure, ChallengeFailure::Expired));
    assert!(challenges
        .verify(
            &context.id,
            &Answer::Text(context.answer.clone()),
            &client,
            now + 59
        )
        .is_ok());
    // By index, as `{"answer": 2}` sends it.
    let (context, _) = issue();
    let index = challenge_of(&context.layout)
        .unwrap()
        .choices
        .iter()
        .position(|c| *c == context.answer)
        .unwrap();
    let by_index = Answer::Tiles(vec![u8::try_from(index).unwrap()]);
    assert!(challenges
        .verify(&context.id, &by_index, &client, now)
        .is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_templates_a_chart_request_is_asked_as_text() {
    let policy = Policy::from_yaml(
        "tokens: {keys: [\"1:chart test secret 0123456789abcdef\"]}",
        &ProcessEnv,
    )
    .unwrap();
    let assets = Assets::load(&datasets()).unwrap();
    let dir = std::env::temp_dir().join(format!("palisade-chart-fallback-{}", std::process::id()));
    let store = SqliteStore::open_in(&dir).unwrap();
    let providers = Providers::default();
    let challenges = Challenges {
        policy: &policy,
        assets: &assets,
        store: &store,
        providers: &providers,
    };
    let client = Client {
        ip: None,
        user_agent: "t".into(),
    };
    let ask = Request {
        kind: ChallengeKind::Chart,
        difficulty: 2,
        lang: Lang::En,
        return_path: "/".into(),
    };
    match challenges.issue(&ask, &client, 1_800_000_000).unwrap() {
        Issued::Stored { context, .. } => assert_eq!(context.passed.kind, ChallengeKind::Text),
        Issued::Pow { .. } => panic!("stored"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_page_asks_the_question_as_text_with_one_radio_per_choice() {
    let kit = kit(&[demo_template("largest_bar")]).unwrap();
    let issued = kit.issue(2, &mut SmallRng::seed_from_u64(9)).unwrap();
    let html = form_fields(
        &issued.layout,
        &issued.prompt,
        "/.palisade/challenge/x/image",
        Lang::De,
    );
    assert!(html.contains(&format!("<legend>{}</legend>", issued.prompt)));
    assert!(html.contains("alt=\"Ein Diagramm"));
    assert_eq!(
        html.matches("type=\"radio\" name=\"answer\"").count(),
        choices(&issued.layout).len()
    );
    assert_eq!(html.matches(" required").count(), 1);
}
