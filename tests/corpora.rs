//! The classifier on the public user-agent corpora in `tests/data/`
//! (sources and licences in `tests/data/README.md`).
//!
//! A browser counts as flagged when it comes out as anything but
//! `browser`, `app` or `unknown`; a bot counts as recognised when it comes
//! out as anything else. The corpora were gathered to test against, not
//! written to fit: the rules they exercise are the generic ones in
//! `datasets/crawlers/`.

use palisade::crawlers::{ClientClass, Crawlers};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

fn builtin() -> &'static Crawlers {
    static CRAWLERS: OnceLock<Arc<Crawlers>> = OnceLock::new();
    CRAWLERS.get_or_init(|| match Crawlers::builtin() {
        Ok(c) => c,
        Err(e) => panic!("built-in datasets: {e}"),
    })
}

fn lines(name: &str) -> Vec<String> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data/user-agents", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(str::to_string).collect()
}

fn flagged(class: ClientClass) -> bool {
    !matches!(
        class,
        ClientClass::Browser | ClientClass::App | ClientClass::Unknown
    )
}

/// Each flagged browser, as `class name: user agent`.
fn flagged_browsers<'a>(uas: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    uas.into_iter()
        .filter_map(|ua| {
            let c = builtin().classify(ua, None);
            flagged(c.class).then(|| format!("{} {:?}: {ua}", c.class, c.name))
        })
        .collect()
}

#[test]
fn no_browser_is_flagged() {
    for file in ["browsers.txt", "browsers-inapp.txt"] {
        let uas = lines(file);
        assert!(uas.len() > 500, "{file}: {} lines", uas.len());
        let bad = flagged_browsers(uas.iter().map(String::as_str));
        assert!(
            bad.is_empty(),
            "{file}: {} flagged:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }
}

#[test]
fn no_browser_is_flagged_weighted_by_traffic() {
    let rows = lines("browsers-weighted.tsv");
    let parsed: Vec<(f64, &str)> = rows
        .iter()
        .map(|row| {
            let (weight, ua) = row.split_once('\t').expect("WEIGHT<TAB>USER_AGENT");
            (weight.parse().expect("a weight"), ua)
        })
        .collect();
    let total: f64 = parsed.iter().map(|(w, _)| w).sum();
    let bad = flagged_browsers(parsed.iter().map(|(_, ua)| *ua));
    let bad_weight: f64 = parsed
        .iter()
        .filter(|(_, ua)| flagged(builtin().classify(ua, None).class))
        .map(|(w, _)| w)
        .sum();
    eprintln!(
        "browsers-weighted.tsv: {} of {} flagged, {:.4}% of traffic",
        bad.len(),
        parsed.len(),
        100.0 * bad_weight.max(0.0) / total
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn recall(file: &str) -> f64 {
    let uas = lines(file);
    let missed: Vec<&String> = uas
        .iter()
        .filter(|ua| !flagged(builtin().classify(ua, None).class))
        .collect();
    let recall = 1.0 - missed.len() as f64 / uas.len() as f64;
    eprintln!(
        "{file}: recall {recall:.4} ({} of {} missed)",
        missed.len(),
        uas.len()
    );
    recall
}

#[test]
fn bots_are_recognised() {
    for file in ["bots-crawlerdetect.txt", "bots-crawler-user-agents.txt"] {
        let r = recall(file);
        assert!(r >= 0.98, "{file}: recall {r:.4} < 0.98");
    }
}

#[test]
fn the_corpora_are_big_enough() {
    let browsers = lines("browsers.txt").len()
        + lines("browsers-inapp.txt").len()
        + lines("browsers-weighted.tsv").len();
    assert!(browsers >= 2000, "{browsers} browser user agents");
    for file in ["bots-crawlerdetect.txt", "bots-crawler-user-agents.txt"] {
        assert!(lines(file).len() >= 1000, "{file}");
    }
}
