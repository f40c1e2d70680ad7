//! Caps on labels (`scoring.feedback`): per source and per client, counted
//! in fixed windows of `feedback.window`. Whoever can post `/feedback` or
//! solve challenges can give labels; the caps bound how many any one
//! source, and any one client, gives in a window, so that no flood of
//! them outweighs the rest. The retrain caps again what it trains on
//! (see [`super::guard`]): these counters are in memory and start afresh
//! with the companion.

use crate::config::FeedbackConfig;
use std::collections::HashMap;

/// Why a label was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("source {name:?} is not one of scoring.feedback.sources ({known})")]
    UnknownSource { name: String, known: String },
    #[error("source {name:?} has given its {cap} labels for this window of {window_s} s")]
    Source {
        name: String,
        cap: u32,
        window_s: u64,
    },
    #[error("client {client} has been labelled {cap} times in this window of {window_s} s")]
    Client {
        client: String,
        cap: u32,
        window_s: u64,
    },
}

/// The counters of the current window.
#[derive(Debug, Default)]
pub struct LabelCaps {
    window: u64,
    by_source: HashMap<String, u32>,
    by_client: HashMap<String, u32>,
}

impl LabelCaps {
    /// Counts a label from `source` about `client` at `now_s`, or says why
    /// it is over a cap (and then counts nothing).
    pub fn admit(
        &mut self,
        config: &FeedbackConfig,
        source: &str,
        client: &str,
        now_s: u64,
    ) -> Result<(), Refused> {
        let window_s = config.window.0.max(1);
        let window = now_s / window_s;
        if window != self.window {
            // The maps hold at most one window's labels: bounded by the caps.
            self.window = window;
            self.by_source.clear();
            self.by_client.clear();
        }
        let Some(&source_cap) = config.sources.get(source) else {
            return Err(Refused::UnknownSource {
                name: source.to_string(),
                known: config
                    .sources
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let from_source = self.by_source.get(source).copied().unwrap_or(0);
        if from_source >= source_cap {
            return Err(Refused::Source {
                name: source.to_string(),
                cap: source_cap,
                window_s,
            });
        }
        let about_client = self.by_client.get(client).copied().unwrap_or(0);
        if about_client >= config.per_client {
            return Err(Refused::Client {
                client: client.to_string(),
                cap: config.per_client,
                window_s,
            });
        }
        *self.by_source.entry(source.to_string()).or_default() += 1;
        *self.by_client.entry(client.to_string()).or_default() += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration;

    fn config() -> FeedbackConfig {
        FeedbackConfig {
            window: Duration(100),
            per_client: 2,
            sources: [("operator".to_string(), 3)].into_iter().collect(),
            challenge_labels: true,
        }
    }

    #[test]
    fn sources_and_clients_are_capped_per_window() {
        let c = config();
        let mut caps = LabelCaps::default();
        assert!(caps.admit(&c, "operator", "a", 0).is_ok());
        assert!(caps.admit(&c, "operator", "a", 1).is_ok());
        assert!(matches!(
            caps.admit(&c, "operator", "a", 2),
            Err(Refused::Client { cap: 2, .. })
        ));
        assert!(caps.admit(&c, "operator", "b", 3).is_ok());
        assert!(matches!(
            caps.admit(&c, "operator", "c", 4),
            Err(Refused::Source { cap: 3, .. })
        ));
        // The next window starts afresh.
        assert!(caps.admit(&c, "operator", "a", 100).is_ok());
        let e = caps.admit(&c, "spam", "a", 100).unwrap_err();
        assert!(e.to_string().contains("not one of"), "{e}");
    }
}
