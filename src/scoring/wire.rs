//! The JSON the filter and the companion exchange on `POST /score`
//! (`docs/scoring.md`). One client or a batch: the filter sends batches
//! from its root context; operators and tests send single clients.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Features for one client: in schema order, or by name (names not given
/// are taken as the model's training mean, i.e. "nothing unusual").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureValues {
    Ordered(Vec<f32>),
    Named(BTreeMap<String, f32>),
}

/// One client to score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreQuery {
    /// Who (the client's prefix, `203.0.113.0/24`); echoed in the answer
    /// and used for per-client records.
    #[serde(default)]
    pub client: Option<String>,
    /// The features' schema; `request-v1` when absent.
    #[serde(default)]
    pub schema: Option<String>,
    pub features: FeatureValues,
}

/// A batch of clients (the filter's reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBatch {
    pub batch: Vec<ScoreQuery>,
}

/// One feature's share in a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopFeature {
    pub feature: String,
    pub value: f32,
    pub points: f32,
}

/// The answer for one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// 0–100; absent (never 0) when no model could score.
    pub score: Option<f32>,
    /// What the thresholds make of the score alone.
    pub action: Option<String>,
    /// The model's version.
    pub model: Option<String>,
    #[serde(default)]
    pub top_features: Vec<TopFeature>,
}

/// The answer to a [`ScoreBatch`], in the batch's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreBatchAnswer {
    pub scores: Vec<ScoreAnswer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_may_be_ordered_or_named() {
        let q: ScoreQuery = serde_json::from_str(r#"{"features":[0.5,1]}"#).unwrap();
        assert_eq!(q.features, FeatureValues::Ordered(vec![0.5, 1.0]));
        let q: ScoreQuery =
            serde_json::from_str(r#"{"client":"a","features":{"rate_short":0.5}}"#).unwrap();
        assert!(matches!(q.features, FeatureValues::Named(m) if m["rate_short"] == 0.5));
        assert!(serde_json::from_str::<ScoreQuery>(r#"{"features":[],"x":1}"#).is_err());
    }
}
