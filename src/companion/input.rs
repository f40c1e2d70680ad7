//! Reading what clients send the companion: the challenge query and answer
//! bodies. Anything malformed is a [`BadInput`] that becomes a 4xx with a
//! JSON reason; nothing here panics on any input (property-tested in
//! `tests/companion_input.rs`).

use crate::challenge::providers;
use crate::challenge::service::Answer;
use crate::challenge::{safe_return_path, Lang};
use crate::config::ChallengeKind;
use crate::policy::form_pairs as pairs;
use crate::scoring::Interaction;

/// The largest answer body read, in bytes.
pub const MAX_BODY: usize = 8 * 1024;

/// The longest typed answer accepted, in characters.
const MAX_TEXT_ANSWER: usize = 64;

/// The longest provider response accepted, in bytes (Turnstile documents
/// up to 2048 characters).
const MAX_TOKEN: usize = 4096;

/// The most tiles an answer may name.
const MAX_TILES: usize = 64;

/// Why a request was refused before reaching the challenge logic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadInput {
    #[error("{0}")]
    Query(String),
    #[error("{0}")]
    Body(String),
    #[error("send application/json or application/x-www-form-urlencoded, not `{0}`")]
    ContentType(String),
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
}

impl BadInput {
    /// HTTP status and the `error` field of the JSON answer.
    pub fn status_and_label(&self) -> (u16, &'static str) {
        match self {
            BadInput::Query(_) | BadInput::Body(_) => (400, "bad_request"),
            BadInput::ContentType(_) => (415, "unsupported_media_type"),
            BadInput::TooLarge => (413, "too_large"),
        }
    }
}

/// What `GET <prefix>challenge?kind=&difficulty=&return=&lang=` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeQuery {
    pub kind: Option<ChallengeKind>,
    pub difficulty: Option<u8>,
    pub return_path: String,
    pub lang: Option<Lang>,
}

/// Parses the challenge query. Unknown parameters are ignored (caches and
/// analytics add their own); known ones must be valid.
pub fn challenge_query(query: &str) -> Result<ChallengeQuery, BadInput> {
    let mut q = ChallengeQuery {
        kind: None,
        difficulty: None,
        return_path: "/".to_string(),
        lang: None,
    };
    for (key, value) in pairs(query) {
        match key.as_str() {
            "kind" => {
                q.kind = Some(ChallengeKind::parse(&value).ok_or_else(|| {
                    BadInput::Query(format!(
                        "kind `{}`: use one of {}",
                        shorten(&value),
                        ChallengeKind::names()
                    ))
                })?);
            }
            "difficulty" => {
                q.difficulty = Some(
                    value
                        .parse::<u8>()
                        .ok()
                        .filter(|d| (1..=5).contains(d))
                        .ok_or_else(|| {
                            BadInput::Query(format!("difficulty `{}`: use 1 to 5", shorten(&value)))
                        })?,
                );
            }
            // A return path that could leave the site goes home instead,
            // as the filter's tickets do.
            "return" => q.return_path = safe_return_path(&value).unwrap_or("/").to_string(),
            "lang" => {
                q.lang = Some(Lang::from_code(&value).ok_or_else(|| {
                    BadInput::Query(format!("lang `{}`: use en, de, fr or es", shorten(&value)))
                })?);
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Parses an answer body of the given content type.
pub fn answer(content_type: &str, body: &[u8]) -> Result<Answer, BadInput> {
    if body.len() > MAX_BODY {
        return Err(BadInput::TooLarge);
    }
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" => json_answer(body),
        "application/x-www-form-urlencoded" => form_answer(body),
        other => Err(BadInput::ContentType(shorten(other))),
    }
}

/// The page's interaction record sent with an answer: the `interaction`
/// form field (JSON text) or JSON member. Anything unreadable reads as no
/// record, which is neutral: a client that sends garbage is judged like
/// one with JavaScript off, by its answer alone.
pub fn interaction(content_type: &str, body: &[u8]) -> Option<Interaction> {
    if body.len() > MAX_BODY {
        return None;
    }
    let mut record: Interaction = if content_type.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        serde_json::from_value(value.get("interaction")?.clone()).ok()?
    } else {
        let text = std::str::from_utf8(body).ok()?;
        let (_, json) = pairs(text).into_iter().find(|(k, _)| k == "interaction")?;
        serde_json::from_str(&json).ok()?
    };
    // The page sends at most these; more is not a person's record.
    record.key_intervals_ms.truncate(64);
    record.tells.truncate(16);
    Some(record)
}

fn json_answer(body: &[u8]) -> Result<Answer, BadInput> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| BadInput::Body(format!("the body is not JSON: {e}")))?;
    if let Some(response) = value.get("response") {
        return match response {
            serde_json::Value::String(s) => token_answer(s.clone()),
            _ => Err(BadInput::Body(
                "`response` is the widget's token, a string".into(),
            )),
        };
    }
    match value.get("answer") {
        Some(serde_json::Value::String(s)) => text_answer(s.clone()),
        Some(serde_json::Value::Array(items)) => {
            if items.len() > MAX_TILES {
                return Err(BadInput::Body(format!("more than {MAX_TILES} tiles")));
            }
            items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect::<Option<Vec<u8>>>()
                .map(Answer::Tiles)
                .ok_or_else(|| BadInput::Body("`answer` lists tile indexes 0-255".into()))
        }
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map(|n| Answer::Tiles(vec![n]))
            .ok_or_else(|| BadInput::Body("`answer` lists tile indexes 0-255".into())),
        _ => Err(BadInput::Body(
            "send {\"answer\": \"TEXT\"} or {\"answer\": [TILE, ...]}".into(),
        )),
    }
}

fn form_answer(body: &[u8]) -> Result<Answer, BadInput> {
    let text =
        std::str::from_utf8(body).map_err(|_| BadInput::Body("the form is not UTF-8".into()))?;
    let mut typed = None;
    let mut tiles = Vec::new();
    for (key, value) in pairs(text) {
        match key.as_str() {
            "answer" => typed = Some(value),
            // A provider widget's own field (`docs/providers.md`).
            key if providers::RESPONSE_FIELDS.contains(&key) => return token_answer(value),
            "tile" => {
                if tiles.len() == MAX_TILES {
                    return Err(BadInput::Body(format!("more than {MAX_TILES} tiles")));
                }
                tiles.push(value.parse::<u8>().map_err(|_| {
                    BadInput::Body(format!("tile `{}` is not an index 0-255", shorten(&value)))
                })?);
            }
            _ => {}
        }
    }
    match typed {
        Some(text) => text_answer(text),
        // An empty grid selection is an answer (a wrong one), not an error.
        None => Ok(Answer::Tiles(tiles)),
    }
}

fn token_answer(token: String) -> Result<Answer, BadInput> {
    if token.len() > MAX_TOKEN {
        return Err(BadInput::Body(format!(
            "the widget's response is longer than {MAX_TOKEN} bytes"
        )));
    }
    Ok(Answer::Token(token))
}

fn text_answer(text: String) -> Result<Answer, BadInput> {
    if text.chars().count() > MAX_TEXT_ANSWER {
        return Err(BadInput::Body(format!(
            "the answer is longer than {MAX_TEXT_ANSWER} characters"
        )));
    }
    Ok(Answer::Text(text))
}

/// At most 40 characters of client text, for error messages.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let q =
            challenge_query("kind=grid&difficulty=4&return=%2Fa%3Fb%3D1&lang=de&utm=x").unwrap();
        assert_eq!(q.kind, Some(ChallengeKind::Grid));
        assert_eq!(q.difficulty, Some(4));
        assert_eq!(q.return_path, "/a?b=1");
        assert_eq!(q.lang, Some(Lang::De));
        assert_eq!(
            challenge_query("return=//evil.example")
                .unwrap()
                .return_path,
            "/"
        );
        for bad in [
            "kind=image",
            "difficulty=0",
            "difficulty=6",
            "difficulty=99999999999",
            "lang=xx",
        ] {
            assert!(
                matches!(challenge_query(bad), Err(BadInput::Query(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn interaction_records_come_from_the_form_or_json_and_garbage_is_none() {
        let form = "application/x-www-form-urlencoded";
        let r = interaction(
            form,
            b"answer=AB&interaction=%7B%22solve_ms%22%3A900%2C%22webdriver%22%3Atrue%7D",
        )
        .unwrap();
        assert_eq!((r.solve_ms, r.webdriver), (Some(900.0), true));
        let json = "application/json";
        let r = interaction(
            json,
            br#"{"answer":"x","interaction":{"clicks":2,"new":1}}"#,
        );
        assert_eq!(r.unwrap().clicks, 2);
        assert_eq!(interaction(form, b"answer=AB"), None);
        assert_eq!(interaction(form, b"interaction=%7Bnot+json"), None);
        assert_eq!(interaction(json, br#"{"interaction":{"clicks":-1}}"#), None);
        let many = format!(
            r#"{{"interaction":{{"key_intervals_ms":[{}]}}}}"#,
            ["1"; 200].join(",")
        );
        assert_eq!(
            interaction(json, many.as_bytes())
                .unwrap()
                .key_intervals_ms
                .len(),
            64
        );
    }

    #[test]
    fn answers() {
        let form = "application/x-www-form-urlencoded";
        assert_eq!(
            answer(form, b"answer=AB+cd"),
            Ok(Answer::Text("AB cd".into()))
        );
        assert_eq!(
            answer(form, b"tile=0&tile=4"),
            Ok(Answer::Tiles(vec![0, 4]))
        );
        assert_eq!(answer(form, b""), Ok(Answer::Tiles(vec![])));
        assert!(answer(form, b"tile=x").is_err());
        assert!(answer(form, b"\xff").is_err());
        let json = "application/json; charset=utf-8";
        assert_eq!(
            answer(json, br#"{"answer":"x"}"#),
            Ok(Answer::Text("x".into()))
        );
        assert_eq!(
            answer(json, br#"{"answer":[1,2]}"#),
            Ok(Answer::Tiles(vec![1, 2]))
        );
        assert_eq!(answer(json, br#"{"answer":3}"#), Ok(Answer::Tiles(vec![3])));
        for bad in [
            &br#"{"answer":[256]}"#[..],
            br#"{"answer":null}"#,
            b"[",
            br#"{"answer":-1}"#,
        ] {
            assert!(matches!(answer(json, bad), Err(BadInput::Body(_))));
        }
        assert_eq!(
            answer("text/plain", b"x").unwrap_err().status_and_label(),
            (415, "unsupported_media_type")
        );
        assert_eq!(answer(json, &[b' '; MAX_BODY + 1]), Err(BadInput::TooLarge));
        let long = format!(r#"{{"answer":"{}"}}"#, "a".repeat(65));
        assert!(answer(json, long.as_bytes()).is_err());
    }
}
