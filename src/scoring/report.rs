//! Feature reports from a host to the companion's `POST /score`, and what
//! comes back: the pure half of the Envoy filter's asynchronous scoring.
//!
//! A request that finds its client's score missing or half stale queues a
//! [`Report`] (its [`Vector`] and the slot to answer into, as
//! [`Report::to_bytes`]); a root context later sends up to
//! `scoring.report_batch` of them as one `ScoreBatch` ([`batch_body`])
//! and stores each score it gets back ([`read_answer`]) in the slot the
//! report came from.

use super::cache::SlotKey;
use super::features::{Vector, MAX_FEATURES, REQUEST};
use super::wire::{ScoreAnswer, ScoreBatchAnswer};
use super::{Scored, TopFeatures};

/// One client's features, waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Where the answer goes.
    pub key: SlotKey,
    /// The client's prefix as text (`203.0.113.7/32`), for the companion's
    /// per-client records and the echo that ties each answer to its query.
    pub client: String,
    pub features: Vector,
}

impl Report {
    /// Little-endian: slot index (u32), tag (u64), the feature count (u8),
    /// the features (f32 each), then the client text.
    pub fn to_bytes(&self) -> Vec<u8> {
        let features = self.features.as_slice();
        let mut out = Vec::with_capacity(13 + 4 * features.len() + self.client.len());
        out.extend_from_slice(
            &u32::try_from(self.key.index)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&self.key.tag.to_le_bytes());
        out.push(features.len() as u8);
        for f in features {
            out.extend_from_slice(&f.to_le_bytes());
        }
        out.extend_from_slice(self.client.as_bytes());
        out
    }

    /// The inverse of [`Report::to_bytes`]; `None` for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Report> {
        let (index, rest) = bytes.split_at_checked(4)?;
        let (tag, rest) = rest.split_at_checked(8)?;
        let (&count, rest) = rest.split_first()?;
        let count = usize::from(count);
        if count > MAX_FEATURES {
            return None;
        }
        let (features, client) = rest.split_at_checked(4 * count)?;
        let mut values = [0f32; MAX_FEATURES];
        for (value, chunk) in values.iter_mut().zip(features.chunks_exact(4)) {
            *value = f32::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(Report {
            key: SlotKey {
                index: usize::try_from(u32::from_le_bytes(index.try_into().ok()?)).ok()?,
                tag: u64::from_le_bytes(tag.try_into().ok()?),
            },
            client: String::from_utf8(client.to_vec()).ok()?,
            features: Vector::from_values(values.get(..count)?)?,
        })
    }
}

/// The JSON body of `POST /score` for `reports`: a `ScoreBatch` with
/// schema `request-v1` and the features in schema order. Written by hand
/// rather than through `serde_json`'s serializer, which the filter would
/// otherwise carry for this alone (the module has a size budget); the
/// tests read it back as a `ScoreBatch`. Client texts are address groups
/// (`203.0.113.7/32`, `2001:db8::/64`), which need no escaping; anything
/// else is dropped from them rather than trusted.
pub fn batch_body(reports: &[Report]) -> Vec<u8> {
    use std::fmt::Write;
    let mut out = String::with_capacity(64 + reports.len() * 160);
    out.push_str("{\"batch\":[");
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"client\":\"");
        for c in r.client.chars() {
            if c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/') {
                out.push(c);
            }
        }
        let _ = write!(out, "\",\"schema\":\"{}\",\"features\":[", REQUEST.name);
        for (j, f) in r.features.as_slice().iter().enumerate() {
            let f = if f.is_finite() { *f } else { 0.0 };
            let _ = write!(out, "{}{f}", if j > 0 { "," } else { "" });
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out.into_bytes()
}

/// Why an answer from `/score` was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAnswer {
    /// Not a [`ScoreBatchAnswer`].
    NotJson,
    /// A different number of scores than clients asked about.
    WrongCount,
    /// A score echoing another client than the one asked about in its place.
    WrongClient,
    /// A score outside 0–100.
    OutOfRange,
}

impl BadAnswer {
    pub fn label(&self) -> &'static str {
        match self {
            BadAnswer::NotJson => "not_json",
            BadAnswer::WrongCount => "wrong_count",
            BadAnswer::WrongClient => "wrong_client",
            BadAnswer::OutOfRange => "out_of_range",
        }
    }
}

/// The score for each of `reports`, in order, from the companion's answer
/// `body`: `None` where the companion had no score for a client (no model
/// loaded; the score is absent, never 0). The whole answer is refused if
/// any part of it does not fit the question: a host must not apply one
/// client's score to another.
pub fn read_answer(body: &[u8], reports: &[Report]) -> Result<Vec<Option<Scored>>, BadAnswer> {
    // From text, not bytes: the policy is parsed from text too, and sharing
    // serde_json's reader keeps the filter smaller.
    let text = std::str::from_utf8(body).map_err(|_| BadAnswer::NotJson)?;
    let answer: ScoreBatchAnswer = serde_json::from_str(text).map_err(|_| BadAnswer::NotJson)?;
    if answer.scores.len() != reports.len() {
        return Err(BadAnswer::WrongCount);
    }
    answer
        .scores
        .iter()
        .zip(reports)
        .map(|(answer, report)| {
            if answer.client.as_ref().is_some_and(|c| *c != report.client) {
                return Err(BadAnswer::WrongClient);
            }
            scored(answer)
        })
        .collect()
}

fn scored(answer: &ScoreAnswer) -> Result<Option<Scored>, BadAnswer> {
    let Some(score) = answer.score else {
        return Ok(None);
    };
    if !(0.0..=100.0).contains(&score) {
        return Err(BadAnswer::OutOfRange);
    }
    Ok(Some(Scored {
        points: score.round() as u8,
        top: TopFeatures::of(answer.top_features.iter().map(|f| f.feature.as_str())),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crawlers::ClientClass;
    use crate::scoring::wire::{FeatureValues, ScoreBatch};
    use crate::scoring::{ClientState, RequestFacts};

    fn report(index: usize, tag: u64, client: &str) -> Report {
        let facts = RequestFacts {
            class: ClientClass::Tool,
            anomalies: 2,
        };
        Report {
            key: SlotKey { index, tag },
            client: client.to_string(),
            features: Vector::of(&REQUEST, &ClientState::new(tag), &facts, 0),
        }
    }

    #[test]
    fn reports_round_trip_and_refuse_broken_bytes() {
        let r = report(3, 99, "203.0.113.7/32");
        let bytes = r.to_bytes();
        assert_eq!(Report::from_bytes(&bytes), Some(r));
        assert_eq!(Report::from_bytes(&bytes[..10]), None);
        let mut too_many = bytes.clone();
        too_many[12] = 200;
        assert_eq!(Report::from_bytes(&too_many), None);
        let mut not_text = bytes;
        *not_text.last_mut().unwrap() = 0xff;
        assert_eq!(Report::from_bytes(&not_text), None);
    }

    #[test]
    fn the_batch_is_the_wire_format_with_ordered_request_features() {
        let reports = [report(1, 11, "10.0.0.1/32"), report(2, 22, "10.0.0.2/32")];
        let batch: ScoreBatch = serde_json::from_slice(&batch_body(&reports)).unwrap();
        assert_eq!(batch.batch.len(), 2);
        let first = &batch.batch[0];
        assert_eq!(first.client.as_deref(), Some("10.0.0.1/32"));
        assert_eq!(first.schema.as_deref(), Some("request-v1"));
        let FeatureValues::Ordered(values) = &first.features else {
            panic!("features by name");
        };
        assert_eq!(values.as_slice(), reports[0].features.as_slice());
    }

    #[test]
    fn answers_are_read_in_order_and_refused_when_they_do_not_fit() {
        let reports = [report(1, 11, "a"), report(2, 22, "b")];
        let body = br#"{"scores":[
            {"client":"a","score":94.6,"action":"block","model":"m1",
             "top_features":[{"feature":"rate_short","value":1,"points":30}]},
            {"score":null,"action":null,"model":null}]}"#;
        let scores = read_answer(body, &reports).unwrap();
        assert_eq!(scores[0].map(|s| s.points), Some(95));
        assert_eq!(
            scores[0].unwrap().top.names().collect::<Vec<_>>(),
            ["rate_short"]
        );
        assert_eq!(scores[1], None);

        let one = br#"{"scores":[{"score":1,"action":null,"model":null}]}"#;
        assert_eq!(read_answer(one, &reports), Err(BadAnswer::WrongCount));
        let swapped = br#"{"scores":[{"client":"b","score":1,"action":null,"model":null},
                                     {"client":"a","score":1,"action":null,"model":null}]}"#;
        assert_eq!(read_answer(swapped, &reports), Err(BadAnswer::WrongClient));
        let big = br#"{"scores":[{"score":101,"action":null,"model":null},
                                 {"score":-1,"action":null,"model":null}]}"#;
        assert_eq!(read_answer(big, &reports), Err(BadAnswer::OutOfRange));
        assert_eq!(read_answer(b"<html>", &reports), Err(BadAnswer::NotJson));
    }
}
