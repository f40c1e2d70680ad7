//! The built-in datasets (embedded at compile time) and the crawler line
//! format parser.
//!
//! Crawler files (`datasets/crawlers/<class>.txt`) hold one entry per line:
//!
//! ```text
//! # comment
//! name   regex   [networks-name]
//! ```
//!
//! Columns are separated by whitespace, so a regex cannot contain a space
//! (write `\s` or `\x20`). A column starting with `#` starts a comment that
//! runs to the end of the line (write `\x23` for a regex that must start
//! with `#`). `name` is a short lowercase id; the optional `networks-name`
//! names a list in `datasets/networks/` (without `.txt`).
//!
//! Network files hold one CIDR per line with `#` comments, the format of
//! [`crate::net::parse_cidr_list`].

use super::{BrowserTokens, ClientClass, CrawlerSpec, DatasetError};
use crate::net::{parse_cidr_list, IpSet};

/// The built-in dataset files every build carries, by their paths under
/// `datasets/` (see [`builtin_datasets`] for all of them).
static BUILTIN_DATASETS: &[(&str, &str)] = &[
    (
        "crawlers/search_engine.txt",
        include_str!("../../datasets/crawlers/search_engine.txt"),
    ),
    (
        "crawlers/ai_crawler.txt",
        include_str!("../../datasets/crawlers/ai_crawler.txt"),
    ),
    (
        "crawlers/ai_assistant.txt",
        include_str!("../../datasets/crawlers/ai_assistant.txt"),
    ),
    (
        "crawlers/seo.txt",
        include_str!("../../datasets/crawlers/seo.txt"),
    ),
    (
        "crawlers/monitoring.txt",
        include_str!("../../datasets/crawlers/monitoring.txt"),
    ),
    (
        "crawlers/automation.txt",
        include_str!("../../datasets/crawlers/automation.txt"),
    ),
    (
        "crawlers/tool.txt",
        include_str!("../../datasets/crawlers/tool.txt"),
    ),
    (
        "crawlers/bot.txt",
        include_str!("../../datasets/crawlers/bot.txt"),
    ),
    (
        "crawlers/browser.txt",
        include_str!("../../datasets/crawlers/browser.txt"),
    ),
    (
        "crawlers/browser_tokens.txt",
        include_str!("../../datasets/crawlers/browser_tokens.txt"),
    ),
    (
        "crawlers/app.txt",
        include_str!("../../datasets/crawlers/app.txt"),
    ),
    (
        "networks/ahrefs.txt",
        include_str!("../../datasets/networks/ahrefs.txt"),
    ),
    (
        "networks/applebot.txt",
        include_str!("../../datasets/networks/applebot.txt"),
    ),
    (
        "networks/bingbot.txt",
        include_str!("../../datasets/networks/bingbot.txt"),
    ),
    (
        "networks/cloudflare.txt",
        include_str!("../../datasets/networks/cloudflare.txt"),
    ),
    (
        "networks/commoncrawl.txt",
        include_str!("../../datasets/networks/commoncrawl.txt"),
    ),
    (
        "networks/duckduckbot.txt",
        include_str!("../../datasets/networks/duckduckbot.txt"),
    ),
    (
        "networks/google-crawlers.txt",
        include_str!("../../datasets/networks/google-crawlers.txt"),
    ),
    (
        "networks/google-special-crawlers.txt",
        include_str!("../../datasets/networks/google-special-crawlers.txt"),
    ),
    (
        "networks/google-user-triggered.txt",
        include_str!("../../datasets/networks/google-user-triggered.txt"),
    ),
    (
        "networks/openai-chatgpt-user.txt",
        include_str!("../../datasets/networks/openai-chatgpt-user.txt"),
    ),
    (
        "networks/openai-gptbot.txt",
        include_str!("../../datasets/networks/openai-gptbot.txt"),
    ),
    (
        "networks/openai-searchbot.txt",
        include_str!("../../datasets/networks/openai-searchbot.txt"),
    ),
    (
        "networks/oracle.txt",
        include_str!("../../datasets/networks/oracle.txt"),
    ),
    (
        "networks/perplexity-user.txt",
        include_str!("../../datasets/networks/perplexity-user.txt"),
    ),
    (
        "networks/perplexitybot.txt",
        include_str!("../../datasets/networks/perplexitybot.txt"),
    ),
    (
        "networks/pingdom.txt",
        include_str!("../../datasets/networks/pingdom.txt"),
    ),
    (
        "networks/uptimerobot.txt",
        include_str!("../../datasets/networks/uptimerobot.txt"),
    ),
];

/// The cloud providers' network lists. Policies name them (`hosting`,
/// `lists: {x: {builtin: [aws]}}`); no crawler spec does, and they are most
/// of the built-in data (about 180 KB). Native hosts carry them; the Envoy
/// filter does not, and takes a policy's use of them from
/// `resolved_ranges`, as `palisade policy-json` writes it, like the
/// reputation lists.
pub const CLOUD_LISTS: [&str; 6] = ["aws", "azure", "digitalocean", "gcp", "hetzner", "ovh"];

#[cfg(not(target_arch = "wasm32"))]
static CLOUD_DATASETS: [(&str, &str); 6] = [
    (
        "networks/aws.txt",
        include_str!("../../datasets/networks/aws.txt"),
    ),
    (
        "networks/azure.txt",
        include_str!("../../datasets/networks/azure.txt"),
    ),
    (
        "networks/digitalocean.txt",
        include_str!("../../datasets/networks/digitalocean.txt"),
    ),
    (
        "networks/gcp.txt",
        include_str!("../../datasets/networks/gcp.txt"),
    ),
    (
        "networks/hetzner.txt",
        include_str!("../../datasets/networks/hetzner.txt"),
    ),
    (
        "networks/ovh.txt",
        include_str!("../../datasets/networks/ovh.txt"),
    ),
];

/// Every built-in dataset file this build carries, by its path under
/// `datasets/` (the filter leaves out [`CLOUD_LISTS`]).
pub fn builtin_datasets() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    let all = BUILTIN_DATASETS.iter();
    #[cfg(not(target_arch = "wasm32"))]
    let all = all.chain(CLOUD_DATASETS.iter());
    all
}

/// The crawler files in precedence order, with the class of their entries
/// (file stem under `datasets/crawlers/`).
pub static BUILTIN_CRAWLER_FILES: [(ClientClass, &str); 10] = [
    (ClientClass::SearchEngine, "search_engine"),
    (ClientClass::AiCrawler, "ai_crawler"),
    (ClientClass::AiAssistant, "ai_assistant"),
    (ClientClass::Seo, "seo"),
    (ClientClass::Monitoring, "monitoring"),
    (ClientClass::Automation, "automation"),
    (ClientClass::Tool, "tool"),
    (ClientClass::Bot, "bot"),
    (ClientClass::Browser, "browser"),
    (ClientClass::App, "app"),
];

/// The first file of the second tier (see [`builtin_spec_tiers`]).
const FIRST_GENERIC_FILE: &str = "bot";

fn dataset(path: &str) -> Option<&'static str> {
    builtin_datasets()
        .find(|(name, _)| *name == path)
        .map(|&(_, text)| text)
}

/// Names of the built-in network lists (`google-crawlers`, `aws`, ...),
/// the [`CLOUD_LISTS`] included in every build.
pub fn builtin_network_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = BUILTIN_DATASETS
        .iter()
        .filter_map(|(path, _)| path.strip_prefix("networks/")?.strip_suffix(".txt"))
        .chain(CLOUD_LISTS)
        .collect();
    names.sort_unstable();
    names
}

/// The text of a built-in network list, by name (`None` in the filter for
/// the [`CLOUD_LISTS`]).
pub fn builtin_network(name: &str) -> Option<&'static str> {
    builtin_datasets().find_map(|&(path, text)| {
        let stem = path.strip_prefix("networks/")?.strip_suffix(".txt")?;
        (stem == name).then_some(text)
    })
}

/// A built-in network list compiled into an [`IpSet`]. Errors name the
/// list's file (and line, for a bad CIDR); an unknown name or a list without
/// any network is an error too.
pub fn builtin_network_set(name: &str) -> Result<IpSet, DatasetError> {
    let file = format!("datasets/networks/{name}.txt");
    let Some(text) = builtin_network(name) else {
        return Err(DatasetError {
            file,
            line: 0,
            reason: format!(
                "no built-in network list `{name}` (there are: {})",
                builtin_network_names().join(", ")
            ),
        });
    };
    let cidrs = parse_cidr_list(text).map_err(|(line, e)| DatasetError {
        file: file.clone(),
        line,
        reason: e.to_string(),
    })?;
    if cidrs.is_empty() {
        return Err(DatasetError {
            file,
            line: 0,
            reason: "the list has no networks".to_string(),
        });
    }
    Ok(IpSet::from_cidrs(cidrs))
}

/// The built-in browser product tokens (`crawlers/browser_tokens.txt`).
pub fn builtin_browser_tokens() -> Result<BrowserTokens, DatasetError> {
    let file = "datasets/crawlers/browser_tokens.txt";
    let text = dataset("crawlers/browser_tokens.txt").ok_or_else(|| DatasetError {
        file: file.to_string(),
        line: 0,
        reason: "missing from the built-in dataset table".to_string(),
    })?;
    BrowserTokens::parse(file, text)
}

/// The built-in crawler and client specs, in precedence order.
pub fn builtin_specs() -> Result<Vec<CrawlerSpec>, DatasetError> {
    Ok(builtin_specs_located()?
        .0
        .into_iter()
        .map(|(spec, _)| spec)
        .collect())
}

/// The built-in specs in their two tiers (see [`super::Crawlers::compile_tiers`]):
/// the named ones (search_engine ... tool), then the generic rules, browsers
/// and apps (bot, browser, app).
pub fn builtin_spec_tiers() -> Result<(Vec<CrawlerSpec>, Vec<CrawlerSpec>), DatasetError> {
    let (located, named) = builtin_specs_located()?;
    let mut specs: Vec<CrawlerSpec> = located.into_iter().map(|(spec, _)| spec).collect();
    let generic = specs.split_off(named);
    Ok((specs, generic))
}

/// A built-in spec with the file and line it came from.
pub(super) type Located = (CrawlerSpec, (&'static str, usize));

/// The built-in specs with the file and line each came from, and how many
/// of them are named (come before [`FIRST_GENERIC_FILE`]).
pub(super) fn builtin_specs_located() -> Result<(Vec<Located>, usize), DatasetError> {
    // Several specs share a list (google-crawlers): compile each list once.
    let mut cache: Vec<(String, IpSet)> = Vec::new();
    let mut out = Vec::new();
    let mut named = 0;
    for (class, stem) in BUILTIN_CRAWLER_FILES {
        if stem == FIRST_GENERIC_FILE {
            named = out.len();
        }
        let file = crawler_file_path(stem);
        let text = dataset(&format!("crawlers/{stem}.txt")).ok_or_else(|| DatasetError {
            file: file.to_string(),
            line: 0,
            reason: "missing from the built-in dataset table".to_string(),
        })?;
        let specs = parse_located(file, text, class, &mut |name| {
            if builtin_network(name).is_none() {
                return Ok(None);
            }
            if let Some((_, set)) = cache.iter().find(|(n, _)| n == name) {
                return Ok(Some(set.clone()));
            }
            let set = builtin_network_set(name)?;
            cache.push((name.to_string(), set.clone()));
            Ok(Some(set))
        })?;
        out.extend(specs.into_iter().map(|(spec, line)| (spec, (file, line))));
    }
    Ok((out, named))
}

/// The path shown in errors for a built-in crawler file.
fn crawler_file_path(stem: &str) -> &'static str {
    match stem {
        "search_engine" => "datasets/crawlers/search_engine.txt",
        "ai_crawler" => "datasets/crawlers/ai_crawler.txt",
        "ai_assistant" => "datasets/crawlers/ai_assistant.txt",
        "seo" => "datasets/crawlers/seo.txt",
        "monitoring" => "datasets/crawlers/monitoring.txt",
        "automation" => "datasets/crawlers/automation.txt",
        "tool" => "datasets/crawlers/tool.txt",
        "bot" => "datasets/crawlers/bot.txt",
        "browser" => "datasets/crawlers/browser.txt",
        "app" => "datasets/crawlers/app.txt",
        _ => "datasets/crawlers",
    }
}

/// Parses one crawler file (the format in the module docs) into specs of
/// `class`. `file` is only used in error messages.
///
/// `networks` resolves a networks-name column: `Ok(Some(set))` for a known
/// list, `Ok(None)` for an unknown name (reported at this file and line),
/// or an error of the list's own (passed through unchanged).
pub fn parse_specs<F>(
    file: &str,
    text: &str,
    class: ClientClass,
    mut networks: F,
) -> Result<Vec<CrawlerSpec>, DatasetError>
where
    F: FnMut(&str) -> Result<Option<IpSet>, DatasetError>,
{
    Ok(parse_located(file, text, class, &mut networks)?
        .into_iter()
        .map(|(spec, _)| spec)
        .collect())
}

type Resolver<'a> = dyn FnMut(&str) -> Result<Option<IpSet>, DatasetError> + 'a;

fn parse_located(
    file: &str,
    text: &str,
    class: ClientClass,
    networks: &mut Resolver<'_>,
) -> Result<Vec<(CrawlerSpec, usize)>, DatasetError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index.saturating_add(1);
        let error = |reason: String| DatasetError {
            file: file.to_string(),
            line,
            reason,
        };
        let columns: Vec<&str> = raw
            .split_whitespace()
            .take_while(|column| !column.starts_with('#'))
            .collect();
        let (name, pattern, list) = match columns.as_slice() {
            [] => continue,
            [name] => {
                return Err(error(format!(
                    "`{}` has no regex column (expected `name  regex  [networks-name]`)",
                    shorten(name)
                )))
            }
            [name, pattern] => (*name, *pattern, None),
            [name, pattern, list] => (*name, *pattern, Some(*list)),
            [_, _, _, extra, ..] => {
                return Err(error(format!(
                    "too many columns (from `{}`): expected `name  regex  [networks-name]`; \
                     a regex cannot contain spaces, write \\s or \\x20",
                    shorten(extra)
                )))
            }
        };
        if !is_id(name) {
            return Err(error(format!(
                "name `{}` is not a lowercase id (a-z, 0-9, '.', '_', '-'; at most 64 characters)",
                shorten(name)
            )));
        }
        let networks = match list {
            None => None,
            Some(list) => match networks(list)? {
                Some(set) => Some(set),
                None => {
                    return Err(error(format!(
                        "unknown network list `{}` (there are: {})",
                        shorten(list),
                        builtin_network_names().join(", ")
                    )))
                }
            },
        };
        out.push((
            CrawlerSpec {
                name: name.to_string(),
                class,
                pattern: pattern.to_string(),
                networks,
            },
            line,
        ));
    }
    Ok(out)
}

/// A short lowercase id: starts with a letter or digit, then letters,
/// digits, `.`, `_` or `-`.
fn is_id(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Echoes input in messages without letting a huge column through.
fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Cidr;

    fn no_lists(_: &str) -> Result<Option<IpSet>, DatasetError> {
        Ok(None)
    }

    fn one_list(name: &str) -> Result<Option<IpSet>, DatasetError> {
        Ok((name == "office").then(|| {
            let cidr: Cidr = "192.0.2.0/24".parse().unwrap();
            IpSet::from_cidrs([cidr])
        }))
    }

    #[test]
    fn parses_columns_comments_and_blank_lines() {
        let text = "\u{feff}# header comment\n\n  \t\nfoo   Foo/\\d   # trailing comment\nbar-1.x_y  Bar\\sBaz  office\n   # indented comment\n";
        let specs = parse_specs("t.txt", text, ClientClass::Seo, one_list).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "foo");
        assert_eq!(specs[0].pattern, "Foo/\\d");
        assert_eq!(specs[0].class, ClientClass::Seo);
        assert!(specs[0].networks.is_none());
        assert_eq!(specs[1].name, "bar-1.x_y");
        assert_eq!(specs[1].pattern, "Bar\\sBaz");
        let set = specs[1].networks.as_ref().unwrap();
        assert!(set.contains("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn windows_line_endings_are_fine() {
        let specs = parse_specs("t.txt", "a x\r\nb y\r\n", ClientClass::Tool, no_lists).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].pattern, "y");
    }

    #[test]
    fn missing_regex_column_names_file_and_line() {
        let e = parse_specs(
            "datasets/crawlers/x.txt",
            "# c\nok  ok\nlonely\n",
            ClientClass::Tool,
            no_lists,
        )
        .unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("datasets/crawlers/x.txt", 3));
        assert!(e.reason.contains("no regex column"), "{e}");
        assert!(
            e.to_string().starts_with("datasets/crawlers/x.txt:3: "),
            "{e}"
        );
        // A comment right after the name leaves the regex missing too.
        let e = parse_specs("x.txt", "lonely # Foo\n", ClientClass::Tool, no_lists).unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn spaces_in_a_regex_are_too_many_columns() {
        let e = parse_specs(
            "x.txt",
            "a Screaming Frog SEO\n",
            ClientClass::Seo,
            no_lists,
        )
        .unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("too many columns"), "{e}");
        assert!(e.reason.contains("\\s"), "{e}");
    }

    #[test]
    fn unknown_network_name_names_file_and_line() {
        let e = parse_specs(
            "datasets/crawlers/y.txt",
            "\n\nbot  Bot  nowhere\n",
            ClientClass::SearchEngine,
            one_list,
        )
        .unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("datasets/crawlers/y.txt", 3));
        assert!(e.reason.contains("unknown network list `nowhere`"), "{e}");
        assert!(
            e.to_string().starts_with("datasets/crawlers/y.txt:3: "),
            "{e}"
        );
    }

    #[test]
    fn resolver_errors_pass_through() {
        let failing = |_: &str| -> Result<Option<IpSet>, DatasetError> {
            Err(DatasetError {
                file: "datasets/networks/bad.txt".into(),
                line: 7,
                reason: "broken".into(),
            })
        };
        let e = parse_specs("x.txt", "bot Bot bad\n", ClientClass::Seo, failing).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("datasets/networks/bad.txt", 7));
    }

    #[test]
    fn names_must_be_lowercase_ids() {
        for bad in ["Bot", "-bot", "bot!", "b\u{e9}t"] {
            let e = parse_specs("x.txt", &format!("{bad} x\n"), ClientClass::Tool, no_lists)
                .unwrap_err();
            assert!(e.reason.contains("lowercase id"), "{bad}: {e}");
        }
        let long = "a".repeat(65);
        assert!(parse_specs("x.txt", &format!("{long} x\n"), ClientClass::Tool, no_lists).is_err());
        assert!(parse_specs("x.txt", "0day.x_y-z x\n", ClientClass::Tool, no_lists).is_ok());
    }

    #[test]
    fn network_table_lookups() {
        let names = builtin_network_names();
        assert!(names.contains(&"google-crawlers"), "{names:?}");
        assert!(builtin_network("google-crawlers").is_some());
        assert!(builtin_network("crawlers/tool").is_none());
        assert!(builtin_network("nope").is_none());
        let e = builtin_network_set("nope").unwrap_err();
        assert!(e.reason.contains("google-crawlers"), "{e}");
    }

    #[test]
    fn every_builtin_crawler_file_is_in_the_table() {
        for (_, stem) in BUILTIN_CRAWLER_FILES {
            assert!(dataset(&format!("crawlers/{stem}.txt")).is_some(), "{stem}");
            assert_eq!(
                crawler_file_path(stem),
                format!("datasets/crawlers/{stem}.txt")
            );
        }
    }
}
