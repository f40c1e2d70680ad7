//! Issuing, rendering and verifying companion challenges: the domain calls
//! the companion's HTTP handlers translate requests into.
//!
//! Lifecycle (see `docs/challenge-api.md`):
//! 1. [`Challenges::issue`] refuses locked-out clients, draws a random seed,
//!    makes the kind's answer and layout from it, and stores the sealed
//!    [`Context`] under a new id until `ttl` has passed.
//! 2. [`Challenges::media`] renders the picture, a tile or the clip afresh
//!    from the context; nothing rendered is kept or re-served to another
//!    challenge.
//! 3. [`Challenges::verify`] checks lockout, expiry, the client binding and
//!    the answer, and only then claims the id, so a wrong or garbage
//!    submission never burns a real user's challenge, and a second correct
//!    answer finds it used. Wrong answers count towards a lockout.

use super::audio::{self, VoiceSet};
use super::chart::{self, ChartKit};
use super::context::{self, Context};
use super::pictures::{self, PictureSet, Tile};
use super::providers::{self, Providers};
use super::store::{Store, StoreError};
use super::text::{self, TextRenderer};
use super::{DatasetError, Lang, Passed};
use crate::config::ChallengeKind;
use crate::policy::{ChallengeSpec, Policy};
use crate::token::Binding;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::Path;

/// The datasets the companion renders from, loaded once.
pub struct Assets {
    pub text: TextRenderer,
    pub pictures: PictureSet,
    pub voices: VoiceSet,
    /// The policy's chart tables and templates (`challenge.chart`),
    /// loaded with the policy; empty until then.
    pub charts: ChartKit,
}

impl Assets {
    /// Loads `fonts/`, `images/` and `audio/` under `dir`.
    pub fn load(dir: &Path) -> Result<Assets, DatasetError> {
        Ok(Assets {
            text: TextRenderer::load(dir)?,
            pictures: PictureSet::load(dir)?,
            voices: VoiceSet::load(dir)?,
            charts: ChartKit::empty(),
        })
    }
}

/// Who is asking: what binds a challenge and a pass token, and the key
/// failures and lockouts are counted under.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

/// What a client asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: ChallengeKind,
    pub difficulty: u8,
    pub lang: Lang,
    /// Already checked with [`super::safe_return_path`].
    pub return_path: String,
}

/// A challenge as issued.
#[derive(Debug, Clone)]
pub enum Issued {
    /// Proof of work: a sealed ticket, nothing stored.
    Pow {
        ticket: String,
        bits: u8,
        expires_at: u64,
    },
    /// A stored challenge.
    Stored {
        context: Context,
        /// The question, in the context's language.
        prompt: String,
        /// Tiles to choose from (grid and one_click), else 0.
        tiles: usize,
    },
}

/// A picture, tile or clip of a stored challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Image,
    Tile(usize),
    Audio,
}

/// Rendered media bytes and their content type.
pub struct Rendered {
    pub kind: ChallengeKind,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A submitted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Typed characters (text, audio) or one tile's index as text.
    Text(String),
    /// Chosen tile indexes (grid, one_click).
    Tiles(Vec<u8>),
    /// A provider widget's response: a siteverify token, or ALTCHA's payload.
    Token(String),
}

/// A passed challenge: the token to give the client.
#[derive(Debug, Clone)]
pub struct Verified {
    pub token: String,
    pub expires_at: u64,
    pub return_path: String,
    pub passed: Passed,
    pub lang: Lang,
    /// Seconds from issue to the right answer.
    pub solve_s: u64,
}

/// Why a challenge could not be issued or answered.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeFailure {
    #[error("wrong answer")]
    WrongAnswer,
    #[error("the challenge expired")]
    Expired,
    #[error("the challenge was already answered")]
    Used,
    #[error("no such challenge")]
    Unknown,
    /// Too many wrong answers; `locked_now` is set on the answer that
    /// caused the lockout (logged and counted once).
    #[error("locked out until {until}")]
    Locked { until: u64, locked_now: bool },
    #[error("the media does not exist for this challenge")]
    NoSuchMedia,
    #[error("the challenge store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("no randomness from the system: {0}")]
    Random(getrandom::Error),
    /// A right answer given the way a script gives it: ask `next`.
    #[error("the answer was right, but the page was solved like a script")]
    AskAgain(AskAgain),
    /// The provider could not say (down, slow, or refusing our keys):
    /// `fallback` is asked instead.
    #[error("the challenge provider is unavailable: {reason}")]
    ProviderUnavailable {
        fallback: ChallengeKind,
        reason: String,
    },
}

/// The challenge a second look asks for, and where the first one was going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskAgain {
    pub next: ChallengeSpec,
    pub lang: Lang,
    pub return_path: String,
}

impl ChallengeFailure {
    /// The `error` field of the JSON answer.
    pub fn label(&self) -> &'static str {
        match self {
            ChallengeFailure::WrongAnswer => "wrong_answer",
            ChallengeFailure::Expired => "expired",
            ChallengeFailure::Used => "used",
            ChallengeFailure::Unknown | ChallengeFailure::NoSuchMedia => "unknown",
            ChallengeFailure::Locked { .. } => "locked",
            ChallengeFailure::Store(_) | ChallengeFailure::Random(_) => "unavailable",
            ChallengeFailure::AskAgain(_) => "ask_again",
            ChallengeFailure::ProviderUnavailable { .. } => "provider_unavailable",
        }
    }
}

/// A refused answer, with the challenge it was for when that is known
/// (to count it by kind and offer a new one of the same sort).
#[derive(Debug)]
pub struct Refused {
    pub failure: ChallengeFailure,
    pub challenge: Option<Box<Context>>,
}

/// The companion's challenge logic over one policy, its assets and store.
pub struct Challenges<'a> {
    pub policy: &'a Policy,
    pub assets: &'a Assets,
    pub store: &'a dyn Store,
    pub providers: &'a Providers,
}

impl Challenges<'_> {
    fn binding(&self, client: &Client) -> Binding {
        self.policy.binding(client.ip, &client.user_agent)
    }

    /// The key failures and lockouts count under: the client's prefix and
    /// user agent, hashed as tokens bind them (a client that changes its
    /// user agent is a new client either way).
    pub fn client_key(&self, client: &Client) -> String {
        let prefix = client
            .ip
            .map(|ip| self.policy.client_prefix(ip).to_string());
        let digest = Sha256::new()
            .chain_update(prefix.unwrap_or_default())
            .chain_update([0])
            .chain_update(&client.user_agent)
            .finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn check_lockout(&self, client: &Client, now: u64) -> Result<(), ChallengeFailure> {
        match self.store.locked_until(&self.client_key(client), now)? {
            Some(until) => Err(ChallengeFailure::Locked {
                until,
                locked_now: false,
            }),
            None => Ok(()),
        }
    }

    /// A new challenge for `client`.
    pub fn issue(
        &self,
        request: &Request,
        client: &Client,
        now: u64,
    ) -> Result<Issued, ChallengeFailure> {
        self.check_lockout(client, now)?;
        let difficulty = request.difficulty.clamp(1, 5);
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(ChallengeFailure::Random)?;
        let seed = u64::from_be_bytes(seed);
        let mut rng = SmallRng::seed_from_u64(seed);
        let strings = super::strings::Strings::of(request.lang);
        // A chart request the policy's templates cannot serve (none given,
        // or no rows found this time) is asked as text instead.
        let chart = match request.kind {
            ChallengeKind::Chart => self.assets.charts.issue(difficulty, &mut rng),
            _ => None,
        };
        let kind = match (request.kind, &chart) {
            (ChallengeKind::Chart, None) => {
                tracing::warn!(
                    event = "chart_fallback",
                    "no chart challenge could be made (see `challenge.chart`); asking text instead"
                );
                ChallengeKind::Text
            }
            (kind, _) => kind,
        };
        let (layout, answer, prompt, tiles) = match (kind, chart) {
            (_, Some(issued)) => (issued.layout, issued.answer, issued.prompt, 0),
            // `kind` is never `Chart` without a chart (above).
            (ChallengeKind::Text | ChallengeKind::Chart, None) => {
                let answer = text::new_answer(&mut rng, difficulty);
                (answer.clone(), answer, strings.text_label.to_string(), 0)
            }
            (ChallengeKind::Audio, None) => {
                let answer = audio::new_answer(&mut rng, difficulty);
                (answer.clone(), answer, strings.audio_label.to_string(), 0)
            }
            (ChallengeKind::OneClick | ChallengeKind::Grid, None) => {
                let grid = kind == ChallengeKind::Grid;
                let puzzle = self.assets.pictures.puzzle(grid, difficulty, &mut rng);
                // A puzzle's target is one of the set's own categories.
                let noun = self
                    .assets
                    .pictures
                    .noun(puzzle.target, request.lang)
                    .unwrap_or_default();
                let legend = if grid {
                    strings.grid_legend
                } else {
                    strings.one_click_legend
                };
                (
                    pictures::tiles_to_text(&puzzle.tiles),
                    pictures::answer_to_text(&puzzle.answer),
                    super::strings::fill(legend, &[noun]),
                    puzzle.tiles.len(),
                )
            }
            (ChallengeKind::Pow, None) => return Ok(self.issue_pow(request, client, now)),
            (ChallengeKind::Altcha, None) => {
                let altcha = self.providers.altcha().ok_or(ChallengeFailure::Unknown)?;
                let mut random = [0u8; 20];
                getrandom::fill(&mut random).map_err(ChallengeFailure::Random)?;
                let expires_at = now.saturating_add(self.policy.companion().ttl.0);
                let issue = altcha.issue(expires_at, random);
                (issue.json, issue.number.to_string(), String::new(), 0)
            }
            // The widget is the whole challenge; siteverify has the answer.
            (kind, None) if self.providers.siteverify(kind).is_some() => {
                (String::new(), String::new(), String::new(), 0)
            }
            _ => return Err(ChallengeFailure::Unknown),
        };
        let ttl = self.policy.companion().ttl.0;
        let context = Context {
            id: context::new_id().map_err(ChallengeFailure::Random)?,
            passed: Passed::new(kind, difficulty),
            lang: request.lang,
            seed,
            issued_at: now,
            expires_at: now.saturating_add(ttl),
            binding: self.binding(client),
            layout,
            answer,
            return_path: request.return_path.clone(),
        };
        let sealed = context.seal(&self.policy.tokens().keyring);
        self.store
            .put(&context.id, sealed.as_bytes(), context.expires_at)?;
        Ok(Issued::Stored {
            context,
            prompt,
            tiles,
        })
    }

    /// A proof of work, which needs no store: what the filter issues, and
    /// the fallback when the store is unreachable (`store_unavailable: pow`).
    pub fn issue_pow(&self, request: &Request, client: &Client, now: u64) -> Issued {
        let difficulty = request.difficulty.clamp(1, 5);
        let ttl = self.policy.challenge_config().ticket_ttl.0;
        let ticket = super::issue_ticket(
            &self.policy.tokens().keyring,
            now,
            ttl,
            difficulty,
            self.binding(client),
            &request.return_path,
        );
        Issued::Pow {
            ticket,
            bits: super::difficulty_bits(difficulty),
            expires_at: now.saturating_add(ttl),
        }
    }

    /// The stored context of `id`, if it is one of ours.
    fn load(&self, id: &str) -> Result<Context, ChallengeFailure> {
        if !context::is_id(id) {
            return Err(ChallengeFailure::Unknown);
        }
        let sealed = self.store.get(id)?.ok_or(ChallengeFailure::Unknown)?;
        Context::open(&self.policy.tokens().keyring, id, &sealed)
            .map_err(|_| ChallengeFailure::Unknown)
    }

    /// Renders one medium of challenge `id`.
    pub fn media(&self, id: &str, media: Media, now: u64) -> Result<Rendered, ChallengeFailure> {
        let ctx = self.load(id)?;
        if now >= ctx.expires_at {
            return Err(ChallengeFailure::Expired);
        }
        let difficulty = ctx.passed.difficulty;
        // Each medium has its own stream, so a tile never repeats another's
        // transformation.
        let salt = match media {
            Media::Image => 1,
            Media::Audio => 2,
            Media::Tile(n) => 16 + n as u64,
        };
        let mut rng = SmallRng::seed_from_u64(ctx.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        match (ctx.passed.kind, media) {
            (ChallengeKind::Text, Media::Image) => Ok(Rendered {
                kind: ChallengeKind::Text,
                content_type: "image/png",
                bytes: self.assets.text.render(&ctx.answer, difficulty, &mut rng),
            }),
            (ChallengeKind::Chart, Media::Image) => Ok(Rendered {
                kind: ChallengeKind::Chart,
                content_type: "image/png",
                bytes: chart::render_layout(&ctx.layout, difficulty, &mut rng)
                    // Our sealed layouts are charts; anything else is not ours.
                    .ok_or(ChallengeFailure::Unknown)?,
            }),
            (ChallengeKind::Audio, Media::Audio) => Ok(Rendered {
                kind: ChallengeKind::Audio,
                content_type: "audio/wav",
                bytes: self
                    .assets
                    .voices
                    .render(&ctx.answer, ctx.lang, difficulty, &mut rng)
                    // Our sealed answers are digits; anything else is not ours.
                    .map_err(|_| ChallengeFailure::Unknown)?,
            }),
            (ChallengeKind::OneClick | ChallengeKind::Grid, Media::Tile(n)) => {
                let tiles =
                    pictures::tiles_from_text(&ctx.layout).ok_or(ChallengeFailure::Unknown)?;
                let tile: Tile = tiles.get(n).copied().ok_or(ChallengeFailure::NoSuchMedia)?;
                Ok(Rendered {
                    kind: ctx.passed.kind,
                    content_type: "image/jpeg",
                    bytes: self
                        .assets
                        .pictures
                        .render_tile(tile, difficulty, &mut rng)
                        .ok_or(ChallengeFailure::NoSuchMedia)?,
                })
            }
            _ => Err(ChallengeFailure::NoSuchMedia),
        }
    }

    /// Checks an answer to challenge `id`.
    pub fn verify(
        &self,
        id: &str,
        answer: &Answer,
        client: &Client,
        now: u64,
    ) -> Result<Verified, Refused> {
        self.verify_by(id, client, now, |ctx| Ok(self.is_right(ctx, answer, now)))
    }

    /// Like [`Challenges::verify`], with the answer judged by `check`
    /// (siteverify kinds: a call to the provider). An `Err` from `check`
    /// refuses without counting towards a lockout.
    pub fn verify_by(
        &self,
        id: &str,
        client: &Client,
        now: u64,
        check: impl FnOnce(&Context) -> Result<bool, ChallengeFailure>,
    ) -> Result<Verified, Refused> {
        let refuse = |failure, challenge: Option<&Context>| Refused {
            failure,
            challenge: challenge.cloned().map(Box::new),
        };
        self.check_lockout(client, now)
            .map_err(|f| refuse(f, None))?;
        let ctx = match self.load(id) {
            Ok(ctx) => ctx,
            Err(ChallengeFailure::Unknown) => {
                let failure = self.fail(client, now, ChallengeFailure::Unknown);
                return Err(refuse(failure.unwrap_or_else(|e| e), None));
            }
            Err(e) => return Err(refuse(e, None)),
        };
        if now >= ctx.expires_at {
            return Err(refuse(ChallengeFailure::Expired, Some(&ctx)));
        }
        // Another client's challenge is not theirs to answer; say no more
        // than that it is unknown.
        let failure = if ctx.binding != self.binding(client) {
            Some(ChallengeFailure::Unknown)
        } else {
            match check(&ctx) {
                Ok(true) => None,
                Ok(false) => Some(ChallengeFailure::WrongAnswer),
                Err(e) => return Err(refuse(e, Some(&ctx))),
            }
        };
        if let Some(failure) = failure {
            let failure = self.fail(client, now, failure).unwrap_or_else(|e| e);
            return Err(refuse(failure, Some(&ctx)));
        }
        match self.store.claim(id, ctx.expires_at) {
            Ok(true) => {}
            Ok(false) => return Err(refuse(ChallengeFailure::Used, Some(&ctx))),
            Err(e) => return Err(refuse(e.into(), Some(&ctx))),
        }
        let token = self
            .policy
            .issue_token(client.ip, &client.user_agent, ctx.passed, now);
        Ok(Verified {
            token,
            expires_at: now.saturating_add(self.policy.tokens().ttl_s),
            return_path: ctx.return_path,
            passed: ctx.passed,
            lang: ctx.lang,
            solve_s: now.saturating_sub(ctx.issued_at),
        })
    }

    /// Counts a failure; the one that reaches `retries` locks the client
    /// out and is reported as the lockout.
    fn fail(
        &self,
        client: &Client,
        now: u64,
        failure: ChallengeFailure,
    ) -> Result<ChallengeFailure, ChallengeFailure> {
        let companion = self.policy.companion();
        let key = self.client_key(client);
        let count = self.store.add_failure(&key, now, companion.lockout.0)?;
        if count >= companion.retries {
            let until = now.saturating_add(companion.lockout.0);
            self.store.lock_out(&key, until)?;
            return Ok(ChallengeFailure::Locked {
                until,
                locked_now: true,
            });
        }
        Ok(failure)
    }

    /// The edits a typed `answer` may be off by: `companion.typo_tolerance`,
    /// else the text kind's default for its length.
    fn typo_tolerance(&self, answer: &str) -> u8 {
        self.policy
            .companion()
            .typo_tolerance
            .unwrap_or_else(|| text::default_tolerance(answer.chars().count()))
    }

    /// Whether `answer` is right for `ctx`; siteverify kinds are never
    /// right here (their check is the provider's).
    pub fn is_right(&self, ctx: &Context, answer: &Answer, now: u64) -> bool {
        match (ctx.passed.kind, answer) {
            (ChallengeKind::Text | ChallengeKind::Audio, Answer::Text(given)) => {
                text::matches(&ctx.answer, given, self.typo_tolerance(&ctx.answer))
            }
            (ChallengeKind::Chart, given) => {
                let given = match given {
                    Answer::Text(text) => chart::Given::Text(text),
                    Answer::Tiles(tiles) => match tiles.as_slice() {
                        [index] => chart::Given::Index(usize::from(*index)),
                        _ => return false,
                    },
                    Answer::Token(_) => return false,
                };
                let tolerance = self.typo_tolerance(&ctx.answer);
                chart::is_right(&ctx.layout, &ctx.answer, given, tolerance)
            }
            (ChallengeKind::OneClick | ChallengeKind::Grid, given) => {
                let given = match given {
                    Answer::Tiles(tiles) => Some(tiles.clone()),
                    Answer::Text(text) => pictures::answer_from_text(text.trim()),
                    Answer::Token(_) => None,
                };
                let Some(mut given) = given else {
                    return false;
                };
                given.sort_unstable();
                given.dedup();
                pictures::answer_from_text(&ctx.answer).is_some_and(|want| want == given)
            }
            (ChallengeKind::Altcha, Answer::Token(payload)) => {
                let (Some(altcha), Some(salt), Ok(number)) = (
                    self.providers.altcha(),
                    providers::altcha::salt_of(&ctx.layout),
                    ctx.answer.parse::<u64>(),
                ) else {
                    return false;
                };
                altcha
                    .verify(payload, &salt, number, now)
                    .inspect_err(|e| tracing::info!(event = "altcha", refused = %e))
                    .is_ok()
            }
            _ => false,
        }
    }
}
