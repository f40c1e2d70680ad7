//! The answer to an nginx `auth_request` check: the same decision as the
//! filter's, in the only shapes `auth_request` allows (2xx, 401, 403) and
//! with an empty body, so nginx keeps its connection to the companion.
//! `nginx/palisade.conf` maps them back to what the filter would send.
//!
//! | decision | status | headers |
//! | --- | --- | --- |
//! | allow, monitor | 204 | `x-palisade-action`, `-score`, `-client` (for `auth_request_set`) |
//! | challenge | 401 | `x-palisade-action: challenge`, `x-palisade-challenge`: the companion's page for it |
//! | block | 403 | `x-palisade-action: block`, `x-palisade-status`: the block status |
//! | rate limited | 403 | `x-palisade-action: rate_limited`, `retry-after` |

use super::{Action, Decision, Policy, Request};

/// A check's answer: status and headers, never a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthAnswer {
    pub status: u16,
    /// The decision's action (`allow`, `block`, ...), for metrics.
    pub action: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl Policy {
    /// What the check endpoint answers for `decision` on `request`.
    pub fn auth_answer(&self, decision: &Decision, request: &Request) -> AuthAnswer {
        let name = decision.action.as_str();
        let action = ("x-palisade-action", name.to_string());
        match decision.action {
            Action::Allow | Action::Monitor => AuthAnswer {
                status: 204,
                action: name,
                headers: self.upstream_headers(decision),
            },
            Action::Challenge => {
                let spec = decision.challenge.unwrap_or(super::ChallengeSpec {
                    kind: self.challenge.kind,
                    difficulty: self.challenge.difficulty,
                });
                let return_path = if request.query.is_empty() {
                    request.path.to_string()
                } else {
                    format!("{}?{}", request.path, request.query)
                };
                AuthAnswer {
                    status: 401,
                    action: name,
                    headers: vec![
                        action,
                        (
                            "x-palisade-challenge",
                            self.companion_challenge_url(spec, &return_path),
                        ),
                    ],
                }
            }
            Action::Block => AuthAnswer {
                status: 403,
                action: name,
                headers: vec![
                    action,
                    (
                        "x-palisade-status",
                        decision.block.map_or(403, |(s, _)| s).to_string(),
                    ),
                ],
            },
            Action::RateLimited => {
                let retry = decision
                    .rate_limit
                    .as_ref()
                    .map_or(1, |r| r.retry_after_s());
                AuthAnswer {
                    status: 403,
                    action: name,
                    headers: vec![action, ("retry-after", retry.to_string())],
                }
            }
        }
    }
}
