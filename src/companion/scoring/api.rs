//! The scoring API's JSON (`docs/scoring.md`, "Companion API"): what
//! `/score`, `/check` and `/feedback` accept, checked into domain values
//! with a reason for anything refused, and the errors' HTTP statuses.
//! `/score` speaks [`crate::scoring::wire`], the filter's contract.

use crate::scoring::wire::{FeatureValues, ScoreBatch, ScoreQuery};
use crate::scoring::{Model, Schema, REQUEST};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The most clients one `/score` batch may carry (the filter sends at most
/// `scoring.report_batch`, itself at most 1024).
pub const MAX_BATCH: usize = 1024;

/// Why a scoring request was refused; [`ApiError::status`] is its HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    UnknownClient(String),
    #[error("{0}")]
    Capped(String),
    #[error("scoring is disabled (scoring.enabled is false)")]
    Disabled,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadInput(_) => 400,
            ApiError::UnknownClient(_) => 404,
            ApiError::Disabled | ApiError::Conflict(_) => 409,
            ApiError::Capped(_) => 429,
            ApiError::Unavailable(_) => 503,
        }
    }
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::BadInput(reason.into())
}

/// Parses a JSON body, naming the field that is wrong.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            bad(format!("invalid JSON body: {inner}"))
        } else {
            bad(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// A `/score` body: one client, or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreBody {
    One(ScoreQuery),
    Batch(ScoreBatch),
}

/// Reads a `/score` body (a batch when it has a `batch` field).
pub fn score_body(body: &[u8]) -> Result<ScoreBody, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    let is_batch = value.get("batch").is_some();
    let text = value.to_string();
    if is_batch {
        let batch: ScoreBatch = parse(text.as_bytes())?;
        if batch.batch.len() > MAX_BATCH {
            return Err(bad(format!(
                "batch: {} clients; at most {MAX_BATCH} per request",
                batch.batch.len()
            )));
        }
        Ok(ScoreBody::Batch(batch))
    } else {
        Ok(ScoreBody::One(parse(text.as_bytes())?))
    }
}

/// Checks a query's schema against the one the companion serves.
pub fn check_schema(query: &ScoreQuery) -> Result<(), ApiError> {
    match query.schema.as_deref() {
        None => Ok(()),
        Some(name) if name == REQUEST.name => Ok(()),
        Some(other) => Err(bad(format!(
            "schema: {other:?} is not served here; the companion scores {:?}",
            REQUEST.name
        ))),
    }
}

/// The feature vector `values` describe, in `schema` order: ordered values
/// must be exactly the schema's length; named values must be the schema's
/// names, and those not given are the model's training mean ("nothing
/// unusual"), or 0 without a model. Every value is a normalised feature,
/// finite and within 0–1.
pub fn vector(
    values: &FeatureValues,
    schema: &Schema,
    model: Option<&Model>,
) -> Result<Vec<f32>, ApiError> {
    let x = match values {
        FeatureValues::Ordered(v) => {
            if v.len() != schema.len() {
                return Err(bad(format!(
                    "features: {} values given; {} expects {} in this order: {}",
                    v.len(),
                    schema.name,
                    schema.len(),
                    schema.names().collect::<Vec<_>>().join(", ")
                )));
            }
            v.clone()
        }
        FeatureValues::Named(named) => {
            let mut x: Vec<f32> = match model {
                Some(m) => m.file().scaling.mean.clone(),
                None => vec![0.0; schema.len()],
            };
            for (name, value) in named {
                let Some(i) = schema.names().position(|n| n == name) else {
                    return Err(bad(format!(
                        "features.{name}: unknown feature; {} has: {}",
                        schema.name,
                        schema.names().collect::<Vec<_>>().join(", ")
                    )));
                };
                x[i] = *value;
            }
            x
        }
    };
    for (name, v) in schema.names().zip(&x) {
        if !(v.is_finite() && (0.0..=1.0).contains(v)) {
            return Err(bad(format!(
                "features.{name}: {v} is outside 0–1 (features are normalised; docs/scoring.md)"
            )));
        }
    }
    Ok(x)
}

/// A `/check` body: the request to decide, as a host describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The client's address (forwarding headers are not read: this is it).
    pub ip: IpAddr,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Path, with an optional query.
    pub path: String,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default)]
    pub host: Option<String>,
    /// `https` or `http` (Envoy's `:scheme`).
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn get() -> String {
    "GET".to_string()
}

/// The most headers a `/check` may describe.
const MAX_HEADERS: usize = 128;

impl CheckRequest {
    /// Checks the fields the engine relies on.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !self.path.starts_with('/') {
            return Err(bad(format!("path: {:?} must start with /", self.path)));
        }
        if self.method.is_empty() || !self.method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad(format!(
                "method: {:?} is not an HTTP method",
                self.method
            )));
        }
        if let Some(s) = &self.scheme {
            if s != "http" && s != "https" {
                return Err(bad(format!("scheme: {s:?} must be http or https")));
            }
        }
        if self.headers.len() > MAX_HEADERS {
            return Err(bad(format!("headers: at most {MAX_HEADERS}")));
        }
        if let Some(name) = self.headers.keys().find(|n| {
            n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            return Err(bad(format!("headers: {name:?} is not a header name")));
        }
        Ok(())
    }

    /// The headers as the engine takes them: lower-case names, the user
    /// agent and scheme added, forwarding headers dropped (`ip` is the client).
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| n != "x-forwarded-for" && n != "x-forwarded-proto")
            .collect();
        if let Some(ua) = &self.user_agent {
            headers.retain(|(n, _)| n != "user-agent");
            headers.push(("user-agent".to_string(), ua.clone()));
        }
        headers.push((
            ":scheme".to_string(),
            self.scheme.clone().unwrap_or_else(|| "http".to_string()),
        ));
        headers
    }
}

/// A label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelName {
    Bot,
    Human,
}

/// A `/feedback` body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// The client's prefix (`203.0.113.0/24`), as `/score` and the records name it.
    #[serde(default)]
    pub client: Option<String>,
    /// Or its address, grouped per `client.prefix`.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// The features labelled; the client's current ones when absent.
    #[serde(default)]
    pub features: Option<FeatureValues>,
    pub label: LabelName,
    /// Who says so: one of `scoring.feedback.sources`.
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_features_must_have_the_schemas_length_and_range() {
        let e = vector(&FeatureValues::Ordered(vec![0.5; 3]), &REQUEST, None).unwrap_err();
        assert!(e.to_string().contains("3 values given"), "{e}");
        let mut v = vec![0.5; REQUEST.len()];
        assert_eq!(
            vector(&FeatureValues::Ordered(v.clone()), &REQUEST, None).unwrap(),
            v
        );
        v[2] = 1.5;
        let e = vector(&FeatureValues::Ordered(v), &REQUEST, None).unwrap_err();
        assert!(e.to_string().contains("features.burstiness"), "{e}");
    }

    #[test]
    fn named_features_must_be_known() {
        let named: BTreeMap<String, f32> = [("rate_shrt".to_string(), 0.1)].into();
        let e = vector(&FeatureValues::Named(named), &REQUEST, None).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e
            .to_string()
            .contains("features.rate_shrt: unknown feature"));
    }

    #[test]
    fn a_batch_is_capped_and_fields_are_named_in_errors() {
        let one = r#"{"features":[0.1]}"#;
        let big = format!(r#"{{"batch":[{}]}}"#, vec![one; MAX_BATCH + 1].join(","));
        let e = score_body(big.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("at most 1024"), "{e}");
        let e = score_body(br#"{"batch":[{"features":"x"}]}"#).unwrap_err();
        assert!(e.to_string().starts_with("batch[0].features"), "{e}");
        let e = score_body(b"{").unwrap_err();
        assert!(e.to_string().contains("invalid JSON"), "{e}");
    }

    #[test]
    fn a_check_needs_a_path_and_a_plain_method() {
        let r: CheckRequest = parse(br#"{"ip":"192.0.2.1","path":"x"}"#).unwrap();
        assert!(r.validate().unwrap_err().to_string().contains("path"));
        let e = parse::<CheckRequest>(br#"{"ip":"nope","path":"/"}"#).unwrap_err();
        assert!(e.to_string().starts_with("ip:"), "{e}");
        let r: CheckRequest = parse(
            br#"{"ip":"192.0.2.1","path":"/","user_agent":"x","headers":{"X-Forwarded-For":"1.1.1.1","Accept":"*/*"}}"#,
        )
        .unwrap();
        r.validate().unwrap();
        let h = r.headers();
        assert!(h.iter().all(|(n, _)| n != "x-forwarded-for"));
        assert!(h.contains(&("accept".into(), "*/*".into())));
        assert!(h.contains(&("user-agent".into(), "x".into())));
    }
}
