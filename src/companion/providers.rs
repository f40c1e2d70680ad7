//! The companion's half of provider kinds: the siteverify call (with its
//! timeout), and the vendored ALTCHA widget it serves. What a call sends
//! and how its answer is judged is [`crate::challenge::providers`].

use crate::challenge::context::Context;
use crate::challenge::providers::siteverify::{self, Verdict};
use crate::challenge::providers::{self as kinds, Providers, Siteverify};
use crate::challenge::service::{Answer, ChallengeFailure, Challenges, Client};
use crate::challenge::DatasetError;
use crate::config::ChallengeKind;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

pub use crate::challenge::providers::page::ALTCHA_SCRIPT;

/// The vendored widget under `companion.datasets`
/// (`scripts/vendor-altcha.sh` writes it, with its licence).
pub const ALTCHA_WIDGET: &str = "altcha/altcha.js";

/// Calls providers' siteverify endpoints; one per companion, across reloads.
pub struct SiteverifyClient {
    client: reqwest::Client,
}

impl Default for SiteverifyClient {
    fn default() -> Self {
        SiteverifyClient::new()
    }
}

impl SiteverifyClient {
    pub fn new() -> SiteverifyClient {
        let client = reqwest::Client::builder()
            // siteverify answers; it never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        SiteverifyClient { client }
    }

    /// What `provider` says of `response`, for a page served on `host` to
    /// `remote_ip`. A timeout or connection error is [`Verdict::Unusable`].
    pub async fn check(
        &self,
        provider: &Siteverify,
        response: &str,
        remote_ip: Option<&str>,
        host: &str,
    ) -> Verdict {
        let call = siteverify::call(provider, response, remote_ip);
        let timeout = Duration::from_millis(provider.config.timeout_ms);
        let mut request = self
            .client
            .post(&call.url)
            .timeout(timeout)
            .header("content-type", call.content_type)
            .body(call.body);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        let answer = async {
            let r = request.send().await?;
            let status = r.status().as_u16();
            // siteverify answers are a few hundred bytes; a huge one is
            // not siteverify.
            let body = r.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok((status, body))) if body.len() <= 64 * 1024 => {
                siteverify::judge(provider, status, &body, host)
            }
            Ok(Ok((status, _))) => {
                Verdict::Unusable(format!("siteverify answered {status} with too much"))
            }
            Ok(Err(e)) if e.is_timeout() => Verdict::Unusable("siteverify timed out".to_string()),
            Ok(Err(e)) => Verdict::Unusable(format!("siteverify unreachable: {e}")),
            Err(_) => Verdict::Unusable("siteverify timed out".to_string()),
        }
    }
}

/// The ALTCHA widget's script, when ALTCHA is configured.
pub fn load_altcha_widget(
    providers: &Providers,
    datasets: &Path,
) -> Result<Option<Vec<u8>>, DatasetError> {
    if !providers.kinds().any(|k| k == ChallengeKind::Altcha) {
        return Ok(None);
    }
    let path = datasets.join(ALTCHA_WIDGET);
    std::fs::read(&path).map(Some).map_err(|e| {
        DatasetError::new(
            path.display(),
            format!("{e} (run scripts/vendor-altcha.sh)"),
        )
    })
}

/// Judges `answer` to `ctx`: with the provider's siteverify for its kinds
/// (called from the handler's blocking thread), else as every other kind.
pub fn judge_answer(
    client_http: &SiteverifyClient,
    challenges: &Challenges,
    ctx: &Context,
    answer: &Answer,
    client: &Client,
    host: &str,
    now: u64,
) -> Result<bool, ChallengeFailure> {
    let kind = ctx.passed.kind;
    let Some(provider) = challenges.providers.siteverify(kind) else {
        return Ok(challenges.is_right(ctx, answer, now));
    };
    let Answer::Token(response) = answer else {
        return Ok(false);
    };
    let ip = client.ip.map(|ip| ip.to_string());
    let verdict = tokio::runtime::Handle::current().block_on(client_http.check(
        provider,
        response,
        ip.as_deref(),
        host,
    ));
    match verdict {
        Verdict::Passed => Ok(true),
        Verdict::Refused(codes) => {
            tracing::info!(event = "siteverify", kind = kind.as_str(), refused = ?codes);
            Ok(false)
        }
        Verdict::Unusable(reason) => {
            let fallback = provider.config.fallback;
            tracing::warn!(
                event = "siteverify",
                kind = kind.as_str(),
                fallback = fallback.as_str(),
                reason = %reason,
                "provider unavailable; serving the fallback kind"
            );
            Err(ChallengeFailure::ProviderUnavailable { fallback, reason })
        }
    }
}

/// What a JSON client needs to show a provider kind's widget itself.
pub fn describe(providers: &Providers, ctx: &Context, body: &mut Value) {
    let kind = ctx.passed.kind;
    if kind == ChallengeKind::Altcha {
        if let Ok(challenge) = serde_json::from_str::<Value>(&ctx.layout) {
            body["challenge"] = challenge;
            body["response_field"] = kinds::altcha::FIELD.into();
        }
        return;
    }
    if let (Some(provider), Some(widget)) = (providers.siteverify(kind), kinds::widget(kind)) {
        body["site_key"] = provider.config.site_key.clone().into();
        body["script"] = provider.script_url().into();
        body["response_field"] = widget.field.into();
    }
}
