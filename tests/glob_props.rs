//! `glob::to_regex` against a reference matcher written here: a plain
//! backtracking matcher in which `*` matches any run of characters and every
//! other character matches only itself.
//!
//! Globs and texts are drawn from a small alphabet of regex and shell
//! metacharacters (`* / . ? [ ] \ ^ $ ( ) | + {`), a newline and a non-ASCII
//! letter, so escaping mistakes and anchoring mistakes both show up.

use palisade::glob::to_regex;
use palisade::policy::{canonical, CompileEnv, Headers, Policy, Request};
use palisade::ratelimit::MemoryStore;
use proptest::prelude::*;
use regex::Regex;
use std::collections::HashSet;

/// Backtracking reference: does `glob` match all of `text`?
/// Failed `(glob, text)` positions are remembered so runs of `*` stay cheap.
fn reference(glob: &[char], text: &[char]) -> bool {
    fn go(
        glob: &[char],
        text: &[char],
        g: usize,
        t: usize,
        failed: &mut HashSet<(usize, usize)>,
    ) -> bool {
        if failed.contains(&(g, t)) {
            return false;
        }
        let matched = match glob.get(g) {
            None => t == text.len(),
            Some('*') => (t..=text.len()).any(|rest| go(glob, text, g + 1, rest, failed)),
            Some(c) => text.get(t) == Some(c) && go(glob, text, g + 1, t + 1, failed),
        };
        if !matched {
            failed.insert((g, t));
        }
        matched
    }
    go(glob, text, 0, 0, &mut HashSet::new())
}

fn reference_str(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    reference(&g, &t)
}

fn compiled(glob: &str) -> Regex {
    match Regex::new(&to_regex(glob)) {
        Ok(re) => re,
        Err(e) => panic!("to_regex({glob:?}) is not a regex: {e}"),
    }
}

const ALPHABET: &[char] = &[
    'a', 'b', '*', '/', '.', '?', '[', ']', '\\', '^', '$', '(', ')', '|', '+', '{', '\n', 'é',
];

/// Texts: like globs, but `*` is rarer (it is just a character there).
const TEXT_ALPHABET: &[char] = &[
    'a', 'b', '/', '.', '?', '[', ']', '\\', '^', '$', '(', '|', '\n', 'é', '*',
];

fn string_of(alphabet: &'static [char], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max)
        .prop_map(|chars| chars.into_iter().collect())
}

/// A text that `glob` matches: each `*` replaced by some run of characters.
fn matching_text(glob: &str, fills: &[String]) -> String {
    let mut out = String::new();
    for (i, part) in glob.split('*').enumerate() {
        if i > 0 {
            out.push_str(&fills[(i - 1) % fills.len()]);
        }
        out.push_str(part);
    }
    out
}

#[test]
fn reference_sanity() {
    // The reference itself, on the documented examples.
    assert!(reference_str("/api/*", "/api/"));
    assert!(reference_str("/api/*", "/api/v1/users"));
    assert!(!reference_str("/api/*", "/api"));
    assert!(reference_str("*/dev/*", "/x/y/dev/z"));
    assert!(reference_str("/login*", "/login.php"));
    assert!(!reference_str("/login*", "/x/login"));
    assert!(reference_str("", ""));
    assert!(!reference_str("", "a"));
    assert!(reference_str("**", ""));
    assert!(reference_str("a*a*a", "aaa"));
    assert!(!reference_str("a*a*a", "aa"));
    assert!(reference_str("?", "?"));
    assert!(!reference_str("?", "a"));
    assert!(!reference_str("[ab]", "a"));
    // Many stars over a long non-matching text: memoised, so quick.
    let stars = "*a".repeat(20) + "b";
    assert!(!reference_str(&stars, &"a".repeat(60)));
    assert!(!compiled(&stars).is_match(&"a".repeat(60)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn to_regex_agrees_with_the_reference(
        glob in string_of(ALPHABET, 10),
        text in string_of(TEXT_ALPHABET, 14),
    ) {
        let re = compiled(&glob);
        prop_assert_eq!(re.is_match(&text), reference_str(&glob, &text), "glob {:?} text {:?}", glob, text);
    }

    #[test]
    fn a_glob_matches_its_expansions(
        glob in string_of(ALPHABET, 10),
        fills in prop::collection::vec(string_of(TEXT_ALPHABET, 6), 1..4),
        extra in string_of(TEXT_ALPHABET, 3),
    ) {
        let re = compiled(&glob);
        let text = matching_text(&glob, &fills);
        prop_assert!(reference_str(&glob, &text));
        prop_assert!(re.is_match(&text), "glob {:?} text {:?}", glob, text);
        // Anchored at both ends: extra text around a star-free glob never matches.
        if !glob.contains('*') && !extra.is_empty() {
            let after = format!("{text}{extra}");
            let before = format!("{extra}{text}");
            prop_assert!(!re.is_match(&after), "glob {:?} text {:?}", glob, after);
            prop_assert!(!re.is_match(&before), "glob {:?} text {:?}", glob, before);
        }
    }

    #[test]
    fn star_free_globs_match_only_themselves(
        glob in string_of(&ALPHABET[3..], 10),
        text in string_of(&ALPHABET[3..], 10),
    ) {
        let re = compiled(&glob);
        prop_assert!(re.is_match(&glob));
        prop_assert_eq!(re.is_match(&text), text == glob);
    }
}

// ---------------------------------------------------------------------------
// The same property through a compiled policy: route `path` and `host` globs
// (paths case-sensitive; hosts case-insensitive with the port ignored).

struct NoEnv;

impl CompileEnv for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn read_file(&self, path: &str) -> Result<String, String> {
        Err(format!("cannot read `{path}`"))
    }
}

fn route_policy(path_globs: &[String], host_globs: &[String]) -> Policy {
    let mut routes = Vec::new();
    for (i, g) in path_globs.iter().enumerate() {
        routes.push(serde_json::json!({"name": format!("p{i}"), "match": {"path": g}}));
    }
    for (i, g) in host_globs.iter().enumerate() {
        routes.push(serde_json::json!({"name": format!("h{i}"), "match": {"host": g}}));
    }
    let config = serde_json::json!({
        "tokens": {"keys": ["1:glob-props-secret-0123456789"]},
        "crawlers": {"builtin": false},
        "routes": routes,
    });
    match Policy::from_json(&config.to_string(), &NoEnv) {
        Ok(p) => p,
        Err(e) => panic!("{e}: {config}"),
    }
}

/// The route the policy picks for `path` on `host`.
fn route_for(p: &Policy, path: &str, host: &str) -> String {
    let request = Request {
        method: "GET",
        path,
        query: "",
        host,
        headers: Headers::Borrowed(&[]),
        connection_ip: None,
    };
    p.decide(&request, &mut MemoryStore::new(1), 0)
        .route
        .to_string()
}

/// Path and host globs: no `:` in hosts (a port separator).
const HOST_ALPHABET: &[char] = &['a', 'B', '*', '.', '-', '?', '[', 'é', '\\'];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn route_globs_pick_the_first_matching_route(
        paths in prop::collection::vec(string_of(ALPHABET, 8).prop_filter("non-empty", |g| !g.is_empty()), 1..4),
        hosts in prop::collection::vec(
            string_of(HOST_ALPHABET, 8).prop_filter("non-empty", |g| !g.is_empty()),
            0..3
        ),
        texts in prop::collection::vec((string_of(TEXT_ALPHABET, 10), string_of(HOST_ALPHABET, 8), prop::option::of(0u16..65535)), 8),
    ) {
        let p = route_policy(&paths, &hosts);
        for (path, host, port) in &texts {
            // Routes match the path's canonical form (`//` is `/`); a path
            // no valid request holds is refused before any route.
            let Ok(matched_path) = canonical(path) else { continue };
            let host_header = match port {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            };
            // An unclosed `[` opens an IPv6 literal that never ends, so the
            // engine keeps the whole header (port and all) as the name.
            let host_name = match port {
                Some(_) if host.starts_with('[') => host_header.clone(),
                _ => host.clone(),
            };
            let expected = paths
                .iter()
                .position(|g| reference_str(g, &matched_path))
                .map(|i| format!("p{i}"))
                .or_else(|| {
                    hosts
                        .iter()
                        .position(|g| reference_str(&g.to_lowercase(), &host_name.to_lowercase()))
                        .map(|i| format!("h{i}"))
                })
                .unwrap_or_else(|| "default".to_string());
            prop_assert_eq!(
                route_for(&p, path, &host_header),
                expected,
                "path {:?} host {:?} paths {:?} hosts {:?}",
                path, host_header, paths, hosts
            );
        }
    }
}
