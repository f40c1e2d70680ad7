//! Replaying an access log through [`ClientState`]: what `palisade score
//! --log` does with an operator's log, and what the simulator does with
//! its own, so the log model is trained on exactly the features the
//! replay computes.
//!
//! A log line carries less than a live request: no headers beyond the
//! user agent (and, in the combined format, the referrer), no route, no
//! challenge outcomes. Hence the access-log schema ([`ACCESS_LOG`]), and
//! [`looks_like_login`] standing in for the `login` route mark.

use super::features::{RequestFacts, Vector, ACCESS_LOG};
use super::model::{Contribution, Model};
use super::state::{looks_like_login, ClientState, Observation};
use crate::crawlers::{ClientClass, Crawlers};
use std::net::IpAddr;

/// One access-log line, as far as scoring needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Whose line it is: the client address as the log gives it.
    pub client: String,
    pub ip: Option<IpAddr>,
    pub time_ns: u64,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub status: u16,
    /// Whether the line shows a `Referer` (never, in Envoy's default format,
    /// which does not log it).
    pub has_referrer: bool,
    pub user_agent: String,
}

/// How finely a log's timestamps resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Envoy's default format: milliseconds.
    Milliseconds,
    /// The combined format: whole seconds.
    Seconds,
}

/// Sorts one client's lines by time, keeping log order for equal times.
/// For a log in whole seconds, the lines of each second are then spread
/// evenly over it: otherwise a page and its assets read as gaps of zero
/// and a client polling every 1.5 s reads as alternating gaps of 1 and 2,
/// and the timing features would describe the log's clock, not the client.
pub fn order(lines: &mut [LogLine], resolution: Resolution) {
    lines.sort_by_key(|l| l.time_ns);
    if resolution == Resolution::Milliseconds {
        return;
    }
    let mut start = 0;
    while start < lines.len() {
        let second = lines[start].time_ns / 1_000_000_000;
        let end = start
            + lines[start..]
                .iter()
                .take_while(|l| l.time_ns / 1_000_000_000 == second)
                .count();
        let n = (end - start) as u64;
        for (i, line) in lines[start..end].iter_mut().enumerate() {
            line.time_ns = second * 1_000_000_000 + (2 * i as u64 + 1) * 500_000_000 / n;
        }
        start = end;
    }
}

/// Feeds one client's lines (already in [`order`]) through a fresh
/// [`ClientState`], calling `each` with every line and the access-log
/// feature vector after it.
pub fn replay(lines: &[LogLine], crawlers: &Crawlers, mut each: impl FnMut(&LogLine, &Vector)) {
    let mut state = ClientState::new(1);
    let mut last_agent: Option<(&str, ClientClass)> = None;
    for line in lines {
        let login = looks_like_login(&line.path);
        state.observe(
            &Observation {
                method: &line.method,
                path: &line.path,
                has_referrer: line.has_referrer,
                login,
            },
            line.time_ns,
        );
        state.observe_response(line.status, login);
        let class = match last_agent {
            Some((agent, class)) if agent == line.user_agent => class,
            _ => {
                let class = crawlers.classify(&line.user_agent, line.ip).class;
                last_agent = Some((&line.user_agent, class));
                class
            }
        };
        let facts = RequestFacts {
            class,
            anomalies: 0,
        };
        each(line, &Vector::of(&ACCESS_LOG, &state, &facts, line.time_ns));
    }
}

/// One client's score from a log.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientScore {
    pub requests: usize,
    pub score: f32,
    /// Every feature's share in the score, largest first: the mean over
    /// the client's requests of what [`Model::top_features`] gives each
    /// (`value` is the feature's mean).
    pub contributions: Vec<Contribution>,
}

/// Scores one client's lines (already in [`order`]): the mean of the
/// scores after each of its requests.
///
/// The mean rather than the score after the last request: it averages
/// out a person's moments of looking fast (a burst of clicks, the first
/// requests when there is little history) that the last state may land
/// on, while a bot looks like one on most of its requests. On the
/// holdout logs it separated better and flagged fewer people than the
/// last state or the maximum (figures in `docs/scoring.md`, "score
/// --log"). The cost: a client that behaves for a long time and then
/// turns is diluted; the filter, which scores live, is not.
pub fn score_client(lines: &[LogLine], crawlers: &Crawlers, model: &Model) -> Option<ClientScore> {
    let names: Vec<&'static str> = model.schema().names().collect();
    let mut sums = vec![(0f64, 0f64, 0f64); names.len()];
    let mut total = 0f64;
    let mut n = 0usize;
    replay(lines, crawlers, |_, v| {
        let x = v.as_slice();
        total += f64::from(model.score(x));
        for c in model.top_features(x, names.len()) {
            if let Some(i) = names.iter().position(|f| *f == c.feature) {
                sums[i].0 += f64::from(c.value);
                sums[i].1 += f64::from(c.points);
                sums[i].2 += f64::from(c.evidence);
            }
        }
        n += 1;
    });
    if n == 0 {
        return None;
    }
    let count = n as f64;
    let mut contributions: Vec<Contribution> = names
        .iter()
        .zip(&sums)
        .map(|(feature, (value, points, evidence))| Contribution {
            feature,
            value: (value / count) as f32,
            points: (points / count) as f32,
            evidence: (evidence / count) as f32,
        })
        .collect();
    contributions.sort_by(|a, b| b.evidence.abs().total_cmp(&a.evidence.abs()));
    Some(ClientScore {
        requests: n,
        score: (total / count) as f32,
        contributions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t_s: f64) -> LogLine {
        LogLine {
            client: "192.0.2.1".into(),
            ip: "192.0.2.1".parse().ok(),
            time_ns: (t_s * 1e9) as u64,
            method: "GET".into(),
            path: "/".into(),
            status: 200,
            has_referrer: false,
            user_agent: "curl/8.5.0".into(),
        }
    }

    #[test]
    fn lines_in_one_second_are_spread_over_it_in_log_order() {
        let mut lines = vec![line(11.0), line(10.0), line(10.0), line(10.0)];
        lines[1].path = "/a".into();
        lines[3].path = "/c".into();
        order(&mut lines, Resolution::Seconds);
        let times: Vec<u64> = lines.iter().map(|l| l.time_ns / 1_000_000).collect();
        assert_eq!(times, [10_166, 10_500, 10_833, 11_500]);
        assert_eq!(lines[0].path, "/a");
        assert_eq!(lines[2].path, "/c");
        let mut ms = vec![line(2.5), line(1.25)];
        order(&mut ms, Resolution::Milliseconds);
        assert_eq!(ms[0].time_ns, 1_250_000_000);
    }

    #[test]
    fn replay_gives_one_vector_per_line() {
        let crawlers = Crawlers::builtin().unwrap();
        let lines: Vec<LogLine> = (0..5).map(|i| line(f64::from(i))).collect();
        let mut n = 0;
        replay(&lines, &crawlers, |_, v| {
            n += 1;
            assert_eq!(v.as_slice().len(), ACCESS_LOG.len());
        });
        assert_eq!(n, 5);
    }
}
