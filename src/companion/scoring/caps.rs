//! Caps on labels (`scoring.feedback`): per source and per client, counted
//! in fixed windows of `feedback.window`. Whoever can post `/feedback` or
//! solve challenges can give labels; the caps bound how many any one
//! source, and any one client, gives in a window, so that no flood of
//! them outweighs the rest. The retrain caps again what it trains on
//! (see [`super::guard`]). [`LabelCaps`] counts in memory and starts
//! afresh with the companion; with `companion.redis_url` the counters are
//! Redis's ([`super::shared`]), shared by every replica, and these are the
//! fallback while Redis cannot be reached.

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

impl Refused {
    fn source(name: &str, cap: u32, window_s: u64) -> Refused {
        Refused::Source {
            name: name.to_string(),
            cap,
            window_s,
        }
    }

    fn client(client: &str, cap: u32, window_s: u64) -> Refused {
        Refused::Client {
            client: client.to_string(),
            cap,
            window_s,
        }
    }
}

/// The caps that apply to one label, and the window it counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub source: u32,
    pub client: u32,
    pub window_s: u64,
    /// The window's number: `now_s / window_s`.
    pub window: u64,
}

impl Caps {
    /// The caps on a label from `source` at `now_s`, or why `source` may
    /// give none.
    pub fn of(config: &FeedbackConfig, source: &str, now_s: u64) -> Result<Caps, Refused> {
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
        let window_s = config.window.0.max(1);
        Ok(Caps {
            source: source_cap,
            client: config.per_client,
            window_s,
            window: now_s / window_s,
        })
    }

    /// Seconds from `now_s` to the end of the window.
    pub fn left_s(&self, now_s: u64) -> u64 {
        (self.window + 1)
            .saturating_mul(self.window_s)
            .saturating_sub(now_s)
    }

    /// Whether one more label fits beside `from_source` and `about_client`
    /// counted in this window; the source's cap is checked first.
    pub fn check(
        &self,
        source: &str,
        client: &str,
        from_source: u32,
        about_client: u32,
    ) -> Result<(), Refused> {
        if from_source >= self.source {
            return Err(Refused::source(source, self.source, self.window_s));
        }
        if about_client >= self.client {
            return Err(Refused::client(client, self.client, self.window_s));
        }
        Ok(())
    }

    /// The refusal a shared counter reported ([`Over`]).
    pub fn refused(&self, over: Over, source: &str, client: &str) -> Refused {
        match over {
            Over::Source => Refused::source(source, self.source, self.window_s),
            Over::Client => Refused::client(client, self.client, self.window_s),
        }
    }
}

/// Which cap a label is over, as a shared counter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Source,
    Client,
}

/// The counters of the current window, in memory.
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
        let caps = Caps::of(config, source, now_s)?;
        if caps.window != self.window {
            // The maps hold at most one window's labels: bounded by the caps.
            self.window = caps.window;
            self.by_source.clear();
            self.by_client.clear();
        }
        caps.check(
            source,
            client,
            self.by_source.get(source).copied().unwrap_or(0),
            self.by_client.get(client).copied().unwrap_or(0),
        )?;
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

    #[test]
    fn a_window_ends_where_the_next_begins() {
        let caps = Caps::of(&config(), "operator", 250).unwrap();
        assert_eq!(
            (caps.window, caps.left_s(250), caps.left_s(299)),
            (2, 50, 1)
        );
        let over = caps.refused(Over::Client, "operator", "a");
        assert_eq!(over, Refused::client("a", 2, 100));
        assert_eq!(
            caps.check("operator", "a", 3, 0),
            Err(Refused::source("operator", 3, 100))
        );
    }
}
