//! Property tests for what the companion reads from clients: the challenge
//! query and answer bodies. Any bytes give a value or a 4xx reason, never a
//! panic, and what the parsers accept stays within their documented bounds.

use palisade::challenge::safe_return_path;
use palisade::challenge::service::Answer;
use palisade::companion::{parse_answer, parse_challenge_query, BadInput};
use proptest::prelude::*;

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
    "multipart/form-data; boundary=x",
];

fn check_answer(content_type: &str, body: &[u8]) {
    match parse_answer(content_type, body) {
        Ok(Answer::Text(text)) => assert!(text.chars().count() <= 64),
        Ok(Answer::Tiles(tiles)) => assert!(tiles.len() <= 64),
        Ok(Answer::Token(token)) => assert!(token.len() <= 4096),
        Err(e) => {
            let (status, label) = e.status_and_label();
            assert!((400..500).contains(&status) && !label.is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_body_is_an_answer_or_a_4xx(
        ct in prop::sample::select(CONTENT_TYPES),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        check_answer(ct, &body);
    }

    #[test]
    fn form_like_bodies(body in "(answer|tile|altcha|cf-turnstile-response|x|%[0-9A-Fa-f]{0,2}|[=&+]|[a-z0-9]{1,5}|\u{e9}){0,24}") {
        check_answer("application/x-www-form-urlencoded", body.as_bytes());
    }

    #[test]
    fn json_like_bodies(
        answer in prop_oneof![
            "[a-zA-Z0-9 ]{0,80}".prop_map(|s| serde_json::json!(s)),
            prop::collection::vec(-5i64..300, 0..80).prop_map(|v| serde_json::json!(v)),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            Just(serde_json::Value::Null),
        ],
    ) {
        let body = serde_json::json!({"answer": answer}).to_string();
        check_answer("application/json", body.as_bytes());
    }

    #[test]
    fn any_query_is_a_request_or_a_400(query in "(kind|difficulty|return|lang|[a-z]{1,4}|=|&|%[0-9A-F]{2}|[0-9]{1,25}|/{1,2}|pow|grid|text|de|\\\\){0,20}") {
        match parse_challenge_query(&query) {
            Ok(q) => {
                assert!(q.difficulty.is_none_or(|d| (1..=5).contains(&d)));
                // Whatever comes back is a path that stays on the site.
                assert_eq!(safe_return_path(&q.return_path), Some(q.return_path.as_str()));
            }
            Err(e) => assert!(matches!(e, BadInput::Query(_))),
        }
    }
}
