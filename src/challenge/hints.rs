//! Crawler hints (after flask-Captchaify's `crawler_hints`): what a
//! challenge page shown to a crawler keeps of the real page's head, so
//! that link previews and search snippets stay right while the content
//! stays behind the challenge.
//!
//! [`PageHead::extract`] reads only the head of the upstream page: the
//! `<title>`, `<meta name="description">`, Open Graph (`og:*`) and Twitter
//! card (`twitter:*`) tags and the canonical link. It stops at `</head>` or
//! at the first tag that belongs in the body, so nothing of the body is
//! ever kept. [`PageHead::to_html`] writes them back from the values alone,
//! escaped: no markup of the upstream page reaches the challenge page.
//! The fetch, its limits and the cache are the companion's
//! (`src/companion/hints.rs`).

use crate::policy::escape_html;
use html5gum::{DefaultEmitter, Token, Tokenizer};

/// Meta tags kept, at most: a head needs a dozen; the cap bounds the page.
const MAX_METAS: usize = 32;
/// Characters kept of any one value.
const MAX_VALUE: usize = 1024;

/// What a challenge page shows a crawler of the page it stands in for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageHead {
    pub title: Option<String>,
    /// `(attribute, key, content)`: `name` for `description` and
    /// `twitter:*`, `property` for `og:*` (as the page gave it).
    pub metas: Vec<(MetaAttribute, String, String)>,
    pub canonical: Option<String>,
}

/// Which attribute names a meta tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaAttribute {
    Name,
    Property,
}

impl MetaAttribute {
    fn as_str(self) -> &'static str {
        match self {
            MetaAttribute::Name => "name",
            MetaAttribute::Property => "property",
        }
    }
}

/// Whether a meta key is one previews and snippets read.
fn kept(key: &str) -> bool {
    key == "description" || key.starts_with("og:") || key.starts_with("twitter:")
}

/// Tags that only appear in a body: the head is over when one starts
/// (a page may omit `</head>` and `<body>`).
fn starts_body(tag: &str) -> bool {
    matches!(
        tag,
        "body"
            | "div"
            | "p"
            | "main"
            | "article"
            | "section"
            | "header"
            | "nav"
            | "h1"
            | "h2"
            | "img"
            | "form"
            | "table"
            | "ul"
    )
}

fn text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let trimmed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    trimmed.chars().take(MAX_VALUE).collect()
}

impl PageHead {
    /// The hints in the start of an HTML document (as many bytes of it as
    /// were fetched); empty when it has none.
    pub fn extract(html: &[u8]) -> PageHead {
        let mut head = PageHead::default();
        let mut in_title = false;
        let mut title = Vec::new();
        // Script and style contents (and the title's) are text, not tags:
        // the tokenizer switches states the way a browser would for them.
        let mut emitter = DefaultEmitter::default();
        emitter.naively_switch_states(true);
        for token in Tokenizer::new_with_emitter(html, emitter).flatten() {
            match token {
                Token::StartTag(tag) => {
                    let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                    if starts_body(&name) {
                        break;
                    }
                    let attribute = |key: &str| {
                        tag.attributes
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(key.as_bytes()))
                            .map(|(_, v)| text(v))
                    };
                    match name.as_str() {
                        "title" if head.title.is_none() => in_title = true,
                        "meta" if head.metas.len() < MAX_METAS => {
                            let keyed = attribute("property")
                                .map(|k| (MetaAttribute::Property, k))
                                .or_else(|| attribute("name").map(|k| (MetaAttribute::Name, k)));
                            if let (Some((by, key)), Some(content)) = (keyed, attribute("content"))
                            {
                                let key = key.to_ascii_lowercase();
                                if kept(&key) {
                                    head.metas.push((by, key, content));
                                }
                            }
                        }
                        "link" if head.canonical.is_none() => {
                            let canonical = attribute("rel")
                                .is_some_and(|r| r.eq_ignore_ascii_case("canonical"));
                            if canonical {
                                head.canonical = attribute("href");
                            }
                        }
                        _ => {}
                    }
                }
                Token::String(s) if in_title => title.extend_from_slice(&s),
                Token::EndTag(tag) => {
                    let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                    if name == "title" && in_title {
                        in_title = false;
                        head.title = Some(text(&title)).filter(|t| !t.is_empty());
                    }
                    if name == "head" {
                        break;
                    }
                }
                _ => {}
            }
        }
        head
    }

    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.metas.is_empty() && self.canonical.is_none()
    }

    /// The head of a challenge page for a crawler: the page's title (or
    /// `fallback_title`) and its tags, each value escaped. No `noindex`:
    /// the snippet is what the page is for.
    pub fn to_html(&self, fallback_title: &str) -> String {
        let title = self.title.as_deref().unwrap_or(fallback_title);
        let mut out = format!("<title>{}</title>\n", escape_html(title));
        for (by, key, content) in &self.metas {
            out.push_str(&format!(
                "<meta {}=\"{}\" content=\"{}\">\n",
                by.as_str(),
                escape_html(key),
                escape_html(content)
            ));
        }
        if let Some(href) = &self.canonical {
            out.push_str(&format!(
                "<link rel=\"canonical\" href=\"{}\">\n",
                escape_html(href)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!doctype html><html><head>
<meta charset="utf-8">
<title>  Spring  sale &amp; more </title>
<meta name="description" content="Everything half price.">
<meta property="og:title" content="Spring sale">
<meta property="og:image" content="https://shop.example/sale.png">
<meta name="twitter:card" content="summary_large_image">
<meta name="viewport" content="width=device-width">
<link rel="canonical" href="https://shop.example/sale">
<script>var secret = "<meta name='description' content='from a script'>";</script>
</head><body><p>The members-only price list</p>
<meta name="description" content="in the body"></body></html>"#;

    #[test]
    fn the_head_is_kept_and_the_body_never() {
        let head = PageHead::extract(PAGE.as_bytes());
        assert_eq!(head.title.as_deref(), Some("Spring sale & more"));
        let keys: Vec<&str> = head.metas.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["description", "og:title", "og:image", "twitter:card"]
        );
        assert_eq!(head.metas[0].2, "Everything half price.");
        assert_eq!(head.canonical.as_deref(), Some("https://shop.example/sale"));
        let html = head.to_html("Checking");
        assert!(html.contains("<title>Spring sale &amp; more</title>"));
        assert!(html.contains(r#"<meta property="og:title" content="Spring sale">"#));
        assert!(!html.contains("members-only") && !html.contains("in the body"));
    }

    #[test]
    fn a_page_without_a_head_element_stops_at_its_first_body_tag() {
        let head = PageHead::extract(
            b"<title>T</title><div>secret</div><meta name=description content=late>",
        );
        assert_eq!(head.title.as_deref(), Some("T"));
        assert!(head.metas.is_empty());
    }

    #[test]
    fn values_are_escaped_on_the_way_out() {
        let head = PageHead::extract(
            br#"<head><meta property="og:title" content='"><script>alert(1)</script>'></head>"#,
        );
        let html = head.to_html("Checking");
        assert!(html.contains("<title>Checking</title>"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn nothing_usable_is_empty() {
        assert!(PageHead::extract(b"not html at all").is_empty());
        assert!(PageHead::extract(b"").is_empty());
    }
}
