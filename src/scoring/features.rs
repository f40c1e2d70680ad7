//! The named behaviour features, the schemas that order them, and how each
//! is normalised. `docs/scoring.md` has the same table for operators.
//!
//! Every feature is normalised to `[0, 1]` here, by a documented transform,
//! before any model sees it. Bounded, meaningful inputs are what lets a
//! model trained on one traffic mix say something about another: a request
//! rate of 400/s and one of 4,000/s are both "1.0, as fast as anything we
//! model", rather than an extrapolation the weights never saw.

use super::state::{ClientState, LONG_WINDOW_S, SHORT_WINDOW_S};
use crate::crawlers::ClientClass;
use sha2::{Digest, Sha256};

/// One behaviour feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Requests per second over the short window (10 s):
    /// `ln(1 + r) / ln(1 + 100)`, clamped.
    RateShort,
    /// Requests per second over the long window (5 min), normalised as
    /// [`Feature::RateShort`].
    RateLong,
    /// Peak short-window rate in the long window against the long window's
    /// mean rate: `ln(peak / mean) / ln(30)`, clamped; 0 for a steady client.
    Burstiness,
    /// Coefficient of variation of inter-arrival times over about the last
    /// ten arrivals: `min(cv, 3) / 3`. Machines keep time (near 0); people
    /// click, read and click again (above 1/3). With fewer than three
    /// arrivals it is 1/3, the CV of random (Poisson) arrivals.
    TimingCv,
    /// Shannon entropy of a 16-bucket sketch of the paths requested (query
    /// dropped), divided by `log2(16)`.
    PathEntropy,
    /// Share of asset requests (`.css`, `.js`, images, fonts, media) in the
    /// long window. Browsers fetch assets after each page; scrapers rarely do.
    AssetShare,
    /// Share of requests answered 4xx in the long window.
    ErrorShare,
    /// 401 and 403 answers on login routes in the long window:
    /// `ln(1 + n) / ln(1 + 20)`, clamped.
    FailedLogins,
    /// Challenges failed in the long window: `ln(1 + n) / ln(1 + 10)`, clamped.
    ChallengesFailed,
    /// Challenges passed in the long window, normalised as above.
    ChallengesPassed,
    /// Share of `HEAD` requests in the long window.
    HeadShare,
    /// Share of `/robots.txt` requests in the long window.
    RobotsShare,
    /// Share of requests with a `Referer` in the long window.
    ReferrerShare,
    /// Share of requests to login routes in the long window (the original
    /// design's "endpoint pattern").
    LoginShare,
    /// The user-agent class, as a score: browser 0, app 0.3, unknown 0.6,
    /// declared crawlers and monitors 0.8, tools, automation and generic
    /// bots 1.
    UserAgent,
    /// Failed header-consistency checks on this request, over 6.
    HeaderAnomalies,
    /// How much history the other features rest on:
    /// `ln(1 + requests seen) / ln(1 + 1000)`, clamped.
    History,
}

impl Feature {
    pub fn name(&self) -> &'static str {
        match self {
            Feature::RateShort => "rate_short",
            Feature::RateLong => "rate_long",
            Feature::Burstiness => "burstiness",
            Feature::TimingCv => "timing_cv",
            Feature::PathEntropy => "path_entropy",
            Feature::AssetShare => "asset_share",
            Feature::ErrorShare => "error_share",
            Feature::FailedLogins => "failed_logins",
            Feature::ChallengesFailed => "challenges_failed",
            Feature::ChallengesPassed => "challenges_passed",
            Feature::HeadShare => "head_share",
            Feature::RobotsShare => "robots_share",
            Feature::ReferrerShare => "referrer_share",
            Feature::LoginShare => "login_share",
            Feature::UserAgent => "user_agent",
            Feature::HeaderAnomalies => "header_anomalies",
            Feature::History => "history",
        }
    }
}

/// An ordered list of features: what a model's inputs are.
#[derive(Debug, PartialEq, Eq)]
pub struct Schema {
    pub name: &'static str,
    /// Behaviour features, computed from a [`ClientState`].
    pub features: &'static [Feature],
    /// Inputs computed elsewhere, after `features` (the interaction schema's).
    pub others: &'static [&'static str],
}

/// What Envoy and the nginx check see: every feature.
pub const REQUEST: Schema = Schema {
    name: "request-v1",
    features: &[
        Feature::RateShort,
        Feature::RateLong,
        Feature::Burstiness,
        Feature::TimingCv,
        Feature::PathEntropy,
        Feature::AssetShare,
        Feature::ErrorShare,
        Feature::FailedLogins,
        Feature::ChallengesFailed,
        Feature::ChallengesPassed,
        Feature::HeadShare,
        Feature::RobotsShare,
        Feature::ReferrerShare,
        Feature::LoginShare,
        Feature::UserAgent,
        Feature::HeaderAnomalies,
        Feature::History,
    ],
    others: &[],
};

/// What an access-log line can carry: no request headers beyond the user
/// agent and referrer, no challenge outcomes.
pub const ACCESS_LOG: Schema = Schema {
    name: "log-v1",
    features: &[
        Feature::RateShort,
        Feature::RateLong,
        Feature::Burstiness,
        Feature::TimingCv,
        Feature::PathEntropy,
        Feature::AssetShare,
        Feature::ErrorShare,
        Feature::FailedLogins,
        Feature::HeadShare,
        Feature::RobotsShare,
        Feature::ReferrerShare,
        Feature::LoginShare,
        Feature::UserAgent,
        Feature::History,
    ],
    others: &[],
};

/// The largest number of features any schema has.
pub const MAX_FEATURES: usize = 17;

impl Schema {
    /// The schema a name refers to.
    pub fn named(name: &str) -> Option<&'static Schema> {
        [&REQUEST, &ACCESS_LOG, &super::interaction::INTERACTION]
            .into_iter()
            .find(|s| s.name == name)
    }

    pub fn len(&self) -> usize {
        self.features.len() + self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.features
            .iter()
            .map(Feature::name)
            .chain(self.others.iter().copied())
    }

    /// The first 16 hex digits of SHA-256 over the schema's name and its
    /// feature names, one per line: a model file carries it, so a model
    /// trained on other inputs (or the same inputs in another order) is
    /// refused rather than fed the wrong numbers.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        for name in self.names() {
            h.update(b"\n");
            h.update(name.as_bytes());
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// What the current request says about the client beyond its history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestFacts {
    pub class: ClientClass,
    /// How many header-consistency checks failed (0–6).
    pub anomalies: u8,
}

/// The [`Feature::UserAgent`] score of a class.
pub fn user_agent_score(class: ClientClass) -> f32 {
    use ClientClass::*;
    match class {
        Browser => 0.0,
        App => 0.3,
        Unknown => 0.6,
        SearchEngine | AiCrawler | AiAssistant | Seo | Monitoring => 0.8,
        Tool | Automation | Bot => 1.0,
    }
}

fn log_scale(x: f32, full: f32) -> f32 {
    ((1.0 + x.max(0.0)).ln() / (1.0 + full).ln()).clamp(0.0, 1.0)
}

fn share(part: f32, whole: f32) -> f32 {
    if whole <= f32::EPSILON {
        0.0
    } else {
        (part / whole).clamp(0.0, 1.0)
    }
}

impl Feature {
    /// This feature's normalised value for a client at `now_ns`.
    pub fn value(&self, state: &ClientState, facts: &RequestFacts, now_ns: u64) -> f32 {
        let c = state.decayed(now_ns);
        match self {
            Feature::RateShort => log_scale(c.short / SHORT_WINDOW_S, 100.0),
            Feature::RateLong => log_scale(c.long / LONG_WINDOW_S, 100.0),
            Feature::Burstiness => {
                let mean = c.long / LONG_WINDOW_S;
                let peak = c.peak / SHORT_WINDOW_S;
                if mean <= f32::EPSILON || peak <= mean {
                    0.0
                } else {
                    ((peak / mean).ln() / 30f32.ln()).clamp(0.0, 1.0)
                }
            }
            Feature::TimingCv => state.timing_cv().map_or(1.0 / 3.0, |cv| cv.min(3.0) / 3.0),
            Feature::PathEntropy => state.path_entropy(),
            Feature::AssetShare => share(c.assets, c.long),
            Feature::ErrorShare => share(c.errors, c.long),
            Feature::FailedLogins => log_scale(c.failed_logins, 20.0),
            Feature::ChallengesFailed => log_scale(c.challenges_failed, 10.0),
            Feature::ChallengesPassed => log_scale(c.challenges_passed, 10.0),
            Feature::HeadShare => share(c.heads, c.long),
            Feature::RobotsShare => share(c.robots, c.long),
            Feature::ReferrerShare => share(c.referrers, c.long),
            Feature::LoginShare => share(c.logins, c.long),
            Feature::UserAgent => user_agent_score(facts.class),
            Feature::HeaderAnomalies => (f32::from(facts.anomalies) / 6.0).clamp(0.0, 1.0),
            Feature::History => log_scale(state.seen() as f32, 1000.0),
        }
    }
}

/// A schema's features for a client, in the schema's order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vector {
    values: [f32; MAX_FEATURES],
    len: usize,
}

impl Vector {
    pub fn of(schema: &Schema, state: &ClientState, facts: &RequestFacts, now_ns: u64) -> Vector {
        let mut values = [0.0; MAX_FEATURES];
        for (slot, feature) in values.iter_mut().zip(schema.features) {
            *slot = feature.value(state, facts, now_ns);
        }
        Vector {
            values,
            len: schema.len(),
        }
    }

    /// A vector from values given in schema order (a feature file, `/score`);
    /// `None` when there are more than [`MAX_FEATURES`].
    pub fn from_values(values: &[f32]) -> Option<Vector> {
        let mut v = Vector {
            values: [0.0; MAX_FEATURES],
            len: values.len(),
        };
        v.values.get_mut(..values.len())?.copy_from_slice(values);
        Some(v)
    }

    pub fn as_slice(&self) -> &[f32] {
        self.values.get(..self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_has_a_distinct_name_and_the_access_log_schema_is_a_subset() {
        let mut names: Vec<&str> = REQUEST.names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REQUEST.len());
        assert!(ACCESS_LOG
            .features
            .iter()
            .all(|f| REQUEST.features.contains(f)));
        assert!(REQUEST.len() <= MAX_FEATURES);
    }

    #[test]
    fn schema_hashes_differ_by_name_and_by_order() {
        assert_ne!(REQUEST.hash(), ACCESS_LOG.hash());
        let swapped = Schema {
            name: "request-v1",
            features: &[Feature::RateLong, Feature::RateShort],
            others: &[],
        };
        let ordered = Schema {
            name: "request-v1",
            features: &[Feature::RateShort, Feature::RateLong],
            others: &[],
        };
        assert_ne!(swapped.hash(), ordered.hash());
        assert_eq!(REQUEST.hash().len(), 16);
    }
}
