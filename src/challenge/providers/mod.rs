//! Third-party CAPTCHA widgets and ALTCHA as challenge kinds
//! (`companion.providers`, `docs/providers.md`).
//!
//! The companion renders a page with the provider's widget, receives the
//! widget's response token with the form, checks it (siteverify providers:
//! with the provider's API, in [`siteverify`]; ALTCHA: itself, in
//! [`altcha`]) and on success issues Palisade's own pass token, like every
//! other kind, so the filter keeps verifying locally.
//!
//! This module holds what needs no network: the widgets, the secrets read
//! from the environment, the siteverify request and the judgement of its
//! answer. The HTTP call is the companion's (`src/companion/providers.rs`).

pub mod altcha;
pub mod page;
pub mod siteverify;

use crate::config::{ChallengeKind, ConfigError, ProvidersConfig, SiteverifyConfig};
use crate::policy::CompileEnv;
use crate::token::{self, Keyring, Purpose};

const AT: &str = "companion.providers";

/// How a siteverify provider's widget is put on a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widget {
    /// The provider's script.
    pub script_url: &'static str,
    /// The class of the element the script turns into the widget.
    pub class: &'static str,
    /// The form field the widget fills with its response token.
    pub field: &'static str,
}

/// The widget of a siteverify kind (`None` for the others).
pub fn widget(kind: ChallengeKind) -> Option<Widget> {
    let (script_url, class, field) = match kind {
        ChallengeKind::Turnstile => (
            "https://challenges.cloudflare.com/turnstile/v0/api.js",
            "cf-turnstile",
            "cf-turnstile-response",
        ),
        ChallengeKind::Hcaptcha => (
            "https://js.hcaptcha.com/1/api.js",
            "h-captcha",
            "h-captcha-response",
        ),
        // v3 renders no widget: the page runs `grecaptcha.execute` on
        // submit (the script is loaded with `?render=SITE_KEY`).
        ChallengeKind::RecaptchaV2 | ChallengeKind::RecaptchaV3 => (
            "https://www.google.com/recaptcha/api.js",
            "g-recaptcha",
            "g-recaptcha-response",
        ),
        // Pinned, as Friendly Captcha's install guide asks; `script_url`
        // overrides it (or self-hosts it).
        ChallengeKind::FriendlyCaptcha => (
            "https://cdn.jsdelivr.net/npm/@friendlycaptcha/sdk@0.1.36/site.min.js",
            "frc-captcha",
            "frc-captcha-response",
        ),
        _ => return None,
    };
    Some(Widget {
        script_url,
        class,
        field,
    })
}

/// Every form field a provider widget posts its response in (ALTCHA's
/// widget posts `altcha`).
pub const RESPONSE_FIELDS: [&str; 5] = [
    "cf-turnstile-response",
    "h-captcha-response",
    "g-recaptcha-response",
    "frc-captcha-response",
    altcha::FIELD,
];

/// A siteverify provider, ready to use: its settings and its secret.
#[derive(Clone)]
pub struct Siteverify {
    pub kind: ChallengeKind,
    pub config: SiteverifyConfig,
    pub secret: String,
}

impl Siteverify {
    pub fn verify_url(&self) -> &str {
        self.config
            .verify_url
            .as_deref()
            .unwrap_or_else(|| siteverify::default_url(self.kind))
    }

    pub fn script_url(&self) -> String {
        let base = self
            .config
            .script_url
            .clone()
            .or_else(|| widget(self.kind).map(|w| w.script_url.to_string()))
            .unwrap_or_default();
        if self.kind == ChallengeKind::RecaptchaV3 {
            let sep = if base.contains('?') { '&' } else { '?' };
            return format!("{base}{sep}render={}", self.config.site_key);
        }
        base
    }
}

/// The configured providers with their secrets, loaded with the policy.
#[derive(Clone, Default)]
pub struct Providers {
    siteverify: Vec<Siteverify>,
    altcha: Option<altcha::Altcha>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        let kinds: Vec<&str> = self.kinds().map(ChallengeKind::as_str).collect();
        f.debug_struct("Providers").field("kinds", &kinds).finish()
    }
}

impl Providers {
    /// Reads each configured provider's secret from the environment; a
    /// missing or empty variable is an error at its `secret_env` path.
    pub fn load(
        config: &ProvidersConfig,
        keys: &Keyring,
        env: &dyn CompileEnv,
    ) -> Result<Providers, ConfigError> {
        let secret = |name: &str, env_name: &str| {
            env.var(env_name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        format!("{AT}.{name}.secret_env"),
                        format!("the environment variable `{env_name}` is not set"),
                    )
                })
        };
        let mut siteverify = Vec::new();
        for kind in ChallengeKind::ALL {
            let Some(c) = config.siteverify(kind) else {
                continue;
            };
            let at = format!("{AT}.{}", kind.as_str());
            if c.site_key.trim().is_empty() {
                return Err(ConfigError::new(format!("{at}.site_key"), "is empty"));
            }
            if c.fallback.is_provider() {
                return Err(ConfigError::new(
                    format!("{at}.fallback"),
                    "must be one of Palisade's own kinds (pow, text, one_click, grid, audio, chart)",
                ));
            }
            if c.timeout_ms == 0 || c.timeout_ms > 30_000 {
                return Err(ConfigError::new(
                    format!("{at}.timeout_ms"),
                    "must be 1 to 30000",
                ));
            }
            let v3 = kind == ChallengeKind::RecaptchaV3;
            match c.min_score {
                Some(_) if !v3 => {
                    return Err(ConfigError::new(
                        format!("{at}.min_score"),
                        "only reCAPTCHA v3 gives a score",
                    ));
                }
                Some(s) if !(0.0..=1.0).contains(&s) => {
                    return Err(ConfigError::new(
                        format!("{at}.min_score"),
                        "must be 0.0 to 1.0",
                    ));
                }
                _ => {}
            }
            if c.action.is_some() && !v3 {
                return Err(ConfigError::new(
                    format!("{at}.action"),
                    "only reCAPTCHA v3 has actions",
                ));
            }
            siteverify.push(Siteverify {
                kind,
                config: c.clone(),
                secret: secret(kind.as_str(), &c.secret_env)?,
            });
        }
        let altcha = match &config.altcha {
            Some(c) => {
                if !(1_000..=10_000_000).contains(&c.max_number) {
                    return Err(ConfigError::new(
                        format!("{AT}.altcha.max_number"),
                        "must be 1000 to 10000000",
                    ));
                }
                let key = match &c.secret_env {
                    Some(name) => secret("altcha", name)?,
                    // An HMAC of a fixed text under the signing key: secret
                    // as the key is, and no other sealed value has it.
                    None => token::seal(keys, Purpose::ChallengeContext, b"altcha-hmac-key"),
                };
                Some(altcha::Altcha::new(key.as_bytes(), c.max_number))
            }
            None => None,
        };
        Ok(Providers { siteverify, altcha })
    }

    /// The configured provider kinds.
    pub fn kinds(&self) -> impl Iterator<Item = ChallengeKind> + '_ {
        self.siteverify
            .iter()
            .map(|s| s.kind)
            .chain(self.altcha.as_ref().map(|_| ChallengeKind::Altcha))
    }

    /// Whether `kind` can be issued: Palisade's own kinds always, provider
    /// kinds when configured.
    pub fn can_issue(&self, kind: ChallengeKind) -> bool {
        !kind.is_provider() || self.kinds().any(|k| k == kind)
    }

    pub fn siteverify(&self, kind: ChallengeKind) -> Option<&Siteverify> {
        self.siteverify.iter().find(|s| s.kind == kind)
    }

    pub fn altcha(&self) -> Option<&altcha::Altcha> {
        self.altcha.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Env(&'static [(&'static str, &'static str)]);
    impl CompileEnv for Env {
        fn var(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
        fn read_file(&self, path: &str) -> Result<String, String> {
            Err(path.to_string())
        }
    }

    fn keys() -> Keyring {
        Keyring::parse_list("1:a-test-key-of-enough-length-0123456789").unwrap()
    }

    fn config(yaml: &str) -> ProvidersConfig {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn an_unset_secret_fails_at_its_path() {
        let c = config("turnstile: {site_key: k, secret_env: TS_SECRET}");
        let e = Providers::load(&c, &keys(), &Env(&[])).unwrap_err();
        assert_eq!(e.path, "companion.providers.turnstile.secret_env");
        assert!(e.reason.contains("TS_SECRET"), "{e}");
        let p = Providers::load(&c, &keys(), &Env(&[("TS_SECRET", "hunter2")])).unwrap();
        assert!(p.can_issue(ChallengeKind::Turnstile));
        assert!(!p.can_issue(ChallengeKind::Hcaptcha));
        assert!(p.can_issue(ChallengeKind::Text));
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn bad_settings_fail_at_their_paths() {
        let env = Env(&[("S", "s")]);
        for (yaml, path) in [
            (
                "hcaptcha: {site_key: k, secret_env: S, min_score: 0.5}",
                "companion.providers.hcaptcha.min_score",
            ),
            (
                "recaptcha_v3: {site_key: k, secret_env: S, min_score: 1.5}",
                "companion.providers.recaptcha_v3.min_score",
            ),
            (
                "turnstile: {site_key: k, secret_env: S, fallback: altcha}",
                "companion.providers.turnstile.fallback",
            ),
            (
                "turnstile: {site_key: ' ', secret_env: S}",
                "companion.providers.turnstile.site_key",
            ),
            (
                "altcha: {secret_env: S, max_number: 5}",
                "companion.providers.altcha.max_number",
            ),
            (
                "altcha: {secret_env: NOPE}",
                "companion.providers.altcha.secret_env",
            ),
        ] {
            let e = Providers::load(&config(yaml), &keys(), &env).unwrap_err();
            assert_eq!(e.path, path, "{yaml}");
        }
    }

    #[test]
    fn recaptcha_v3_loads_its_script_with_the_site_key() {
        let c = config("recaptcha_v3: {site_key: abc, secret_env: S, min_score: 0.7}");
        let p = Providers::load(&c, &keys(), &Env(&[("S", "s")])).unwrap();
        let v3 = p.siteverify(ChallengeKind::RecaptchaV3).unwrap();
        assert_eq!(
            v3.script_url(),
            "https://www.google.com/recaptcha/api.js?render=abc"
        );
        assert_eq!(
            v3.verify_url(),
            "https://www.google.com/recaptcha/api/siteverify"
        );
    }
}
