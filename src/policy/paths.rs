//! Which routes' path patterns match a path, without trying every pattern.
//!
//! A policy may have a thousand routes, and one `RegexSet` over all their
//! patterns costs microseconds per request. But nearly every path pattern
//! starts with a literal (`/api/*`, `^/v[0-9]+/`), so each pattern is filed
//! under its literal prefix in a byte trie. Walking the trie once along the
//! path yields the few patterns that can match, and only those are
//! confirmed with their own regex — or not at all, for the common `/prefix*`
//! glob, which the prefix alone decides. Globs without `*` are looked up
//! exactly. A pattern with no usable prefix (`*/dev/*`, an unanchored
//! regex) is filed at the root and so tried for every path.

use crate::glob;
use regex::Regex;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::Look;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct PathIndex {
    /// Trie nodes; node 0 is the root (the empty prefix).
    nodes: Vec<Node>,
    exact: HashMap<Box<str>, Vec<u32>>,
    entries: Vec<Entry>,
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by byte.
    edges: Vec<(u8, u32)>,
    entries: Vec<u32>,
}

#[derive(Debug)]
struct Entry {
    owner: usize,
    /// `None` when reaching the entry's trie node already proves a match.
    confirm: Option<Regex>,
}

impl PathIndex {
    pub fn new() -> PathIndex {
        PathIndex {
            nodes: vec![Node::default()],
            ..PathIndex::default()
        }
    }

    /// Files a glob for `owner`.
    pub fn add_glob(&mut self, owner: usize, pattern: &str) -> Result<(), regex::Error> {
        let Some((prefix, rest)) = pattern.split_once('*') else {
            let entry = self.push(owner, None);
            self.exact.entry(pattern.into()).or_default().push(entry);
            return Ok(());
        };
        let confirm = if rest.is_empty() {
            None
        } else {
            Some(Regex::new(&glob::to_regex(pattern))?)
        };
        let entry = self.push(owner, confirm);
        self.file(prefix.as_bytes(), entry);
        Ok(())
    }

    /// Files a (valid) regex for `owner`, under its literal prefixes when it
    /// is anchored at the start, else at the root.
    pub fn add_regex(&mut self, owner: usize, pattern: &str) -> Result<(), regex::Error> {
        let regex = Regex::new(pattern)?;
        let prefixes = literal_prefixes(pattern);
        let entry = self.push(owner, Some(regex));
        match prefixes {
            Some(prefixes) => {
                for prefix in prefixes {
                    self.file(&prefix, entry);
                }
            }
            None => self.file(b"", entry),
        }
        Ok(())
    }

    /// Every owner with a pattern matching `path`, ascending and unique,
    /// into `out` (cleared first).
    pub fn owners_matching(&self, path: &str, out: &mut Vec<usize>) {
        out.clear();
        let mut accept = |entry: u32| {
            if let Some(e) = self.entries.get(entry as usize) {
                if e.confirm.as_ref().is_none_or(|r| r.is_match(path)) {
                    out.push(e.owner);
                }
            }
        };
        if let Some(entries) = self.exact.get(path) {
            entries.iter().copied().for_each(&mut accept);
        }
        // Walk the trie along the path, collecting every prefix's entries.
        let mut bytes = path.bytes();
        let mut node = self.nodes.first();
        while let Some(n) = node {
            n.entries.iter().copied().for_each(&mut accept);
            node = bytes.next().and_then(|b| {
                let i = n.edges.binary_search_by_key(&b, |&(byte, _)| byte).ok()?;
                self.nodes.get(n.edges[i].1 as usize)
            });
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Whether no pattern is filed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push(&mut self, owner: usize, confirm: Option<Regex>) -> u32 {
        self.entries.push(Entry { owner, confirm });
        (self.entries.len() - 1) as u32
    }

    fn file(&mut self, prefix: &[u8], entry: u32) {
        let mut node = 0usize;
        for &b in prefix {
            node = match self.nodes[node]
                .edges
                .binary_search_by_key(&b, |&(byte, _)| byte)
            {
                Ok(i) => self.nodes[node].edges[i].1 as usize,
                Err(i) => {
                    self.nodes.push(Node::default());
                    let child = (self.nodes.len() - 1) as u32;
                    self.nodes[node].edges.insert(i, (b, child));
                    child as usize
                }
            };
        }
        self.nodes[node].entries.push(entry);
    }
}

/// The literals every match of `pattern` starts with, when the pattern is
/// anchored at the start of the text and has a finite set of non-empty
/// literal prefixes; `None` otherwise (the pattern is tried everywhere).
fn literal_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(globs: &[&str], regexes: &[&str]) -> PathIndex {
        let mut ix = PathIndex::new();
        for (i, g) in globs.iter().enumerate() {
            ix.add_glob(i, g).unwrap();
        }
        for (i, r) in regexes.iter().enumerate() {
            ix.add_regex(globs.len() + i, r).unwrap();
        }
        ix
    }

    fn owners(ix: &PathIndex, path: &str) -> Vec<usize> {
        let mut out = Vec::new();
        ix.owners_matching(path, &mut out);
        out
    }

    #[test]
    fn globs_exact_prefix_and_inner_stars() {
        let ix = index(
            &[
                "/healthz", "/api/*", "/login*", "*/dev/*", "/a/*/b", "/api/*",
            ],
            &[],
        );
        assert_eq!(owners(&ix, "/healthz"), [0]);
        assert_eq!(owners(&ix, "/api/x"), [1, 5]);
        assert_eq!(owners(&ix, "/api"), [] as [usize; 0]);
        assert_eq!(owners(&ix, "/login"), [2]);
        assert_eq!(owners(&ix, "/x/dev/y"), [3]);
        assert_eq!(owners(&ix, "/a/x/b"), [4]);
        assert_eq!(owners(&ix, "/a/x/c"), [] as [usize; 0]);
        assert_eq!(owners(&ix, "/healthz/"), [] as [usize; 0]);
    }

    #[test]
    fn exact_globs_match_whole_paths_only() {
        let ix = index(&["/healthz"], &[]);
        assert_eq!(owners(&ix, "/healthz"), [0]);
        assert_eq!(owners(&ix, "/healthzz"), [] as [usize; 0]);
    }

    #[test]
    fn regexes_anchored_or_not() {
        let ix = index(
            &[],
            &[
                "^/api/v[0-9]+/x$",
                "^/search(/|$)",
                "\\.php$",
                "^(/a|/b)c",
                "^/s?x",
                "(?i)^/ADMIN",
            ],
        );
        assert_eq!(owners(&ix, "/api/v12/x"), [0]);
        assert_eq!(owners(&ix, "/api/vx/x"), [] as [usize; 0]);
        assert_eq!(owners(&ix, "/search"), [1]);
        assert_eq!(owners(&ix, "/y/index.php"), [2]);
        assert_eq!(owners(&ix, "/bc"), [3]);
        assert_eq!(owners(&ix, "/x"), [4]);
        assert_eq!(owners(&ix, "/sx"), [4]);
        assert_eq!(owners(&ix, "/admin/users"), [5]);
    }

    #[test]
    fn prefixes_are_found_only_for_anchored_regexes() {
        let api = literal_prefixes("^/api/v[0-9]").unwrap();
        assert!(!api.is_empty() && api.iter().all(|p| p.starts_with(b"/api/v")));
        assert_eq!(literal_prefixes("/api"), None);
        assert_eq!(literal_prefixes("^/a|/b"), None);
        assert_eq!(literal_prefixes("^.*x"), None);
    }
}
