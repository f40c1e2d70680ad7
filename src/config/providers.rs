//! `companion.providers`: the third-party CAPTCHA widgets and ALTCHA, as
//! users write them. Secrets are never in the file: each names the
//! environment variable that holds it (`secret_env`), which the companion
//! reads when it loads the policy.

use super::ChallengeKind;
use serde::Deserialize;

/// One block per provider kind; a kind without its block cannot be issued.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    pub turnstile: Option<SiteverifyConfig>,
    pub hcaptcha: Option<SiteverifyConfig>,
    pub recaptcha_v2: Option<SiteverifyConfig>,
    pub recaptcha_v3: Option<SiteverifyConfig>,
    pub friendly_captcha: Option<SiteverifyConfig>,
    pub altcha: Option<AltchaConfig>,
}

impl ProvidersConfig {
    /// The siteverify settings of `kind`, when it is a siteverify provider
    /// and configured.
    pub fn siteverify(&self, kind: ChallengeKind) -> Option<&SiteverifyConfig> {
        match kind {
            ChallengeKind::Turnstile => self.turnstile.as_ref(),
            ChallengeKind::Hcaptcha => self.hcaptcha.as_ref(),
            ChallengeKind::RecaptchaV2 => self.recaptcha_v2.as_ref(),
            ChallengeKind::RecaptchaV3 => self.recaptcha_v3.as_ref(),
            ChallengeKind::FriendlyCaptcha => self.friendly_captcha.as_ref(),
            _ => None,
        }
    }

    /// Whether `kind` is a provider kind with its block here.
    pub fn configures(&self, kind: ChallengeKind) -> bool {
        match kind {
            ChallengeKind::Altcha => self.altcha.is_some(),
            kind => self.siteverify(kind).is_some(),
        }
    }
}

/// A provider whose widget hands the page a response token that the
/// companion checks with the provider's siteverify API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteverifyConfig {
    /// The public site key the widget is rendered with.
    pub site_key: String,
    /// The environment variable holding the secret (Friendly Captcha: the
    /// API key).
    pub secret_env: String,
    /// The siteverify endpoint; unset: the provider's own.
    #[serde(default)]
    pub verify_url: Option<String>,
    /// The widget's script; unset: the provider's own.
    #[serde(default)]
    pub script_url: Option<String>,
    /// How long the companion waits for siteverify.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The kind served instead when the provider cannot be reached (a
    /// timeout, a connection error, a 5xx or an unreadable answer).
    #[serde(default = "default_fallback")]
    pub fallback: ChallengeKind,
    /// reCAPTCHA v3 only: the lowest score that passes (0.0 to 1.0).
    #[serde(default)]
    pub min_score: Option<f64>,
    /// reCAPTCHA v3 only: the action the page executes and siteverify
    /// must report back.
    #[serde(default)]
    pub action: Option<String>,
}

fn default_fallback() -> ChallengeKind {
    ChallengeKind::Pow
}

fn default_timeout_ms() -> u64 {
    3000
}

/// ALTCHA: proof of work with ALTCHA's widget, issued and verified by the
/// companion itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AltchaConfig {
    /// The environment variable holding the HMAC key challenges are signed
    /// with; unset: a key derived from the token keys (`tokens`).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The largest secret number: the work is about half of it in SHA-256s.
    #[serde(default = "default_max_number")]
    pub max_number: u64,
}

fn default_max_number() -> u64 {
    50_000
}
