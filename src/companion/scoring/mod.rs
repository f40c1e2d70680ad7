//! Learned scores in the companion: the model it serves, the per-client
//! behaviour it keeps for the checks it answers (nginx's `/auth`,
//! `/check`), what it records, and the labels it learns from.
//!
//! - [`clients`]: the bounded per-client table.
//! - [`api`]: the JSON of `/score`, `/check` and `/feedback`, checked.
//! - [`records`]: the SQLite file and its writer thread.
//! - [`caps`]: caps on labels per source and per client.
//! - [`guard`]: what a candidate model trains on and must show to be served.
//! - [`retrain`]: the background retrain behind `/train`.
//!
//! [`Scoring`] outlives policy reloads; [`Scoring::configure`] applies a
//! (re)loaded policy: the model file is read again, and one that cannot
//! be read or does not match the schema is logged, counted
//! (`palisade_companion_model_loads_total{outcome="failed"}`) and leaves
//! the companion on rules only, with the score reported as absent, never 0.

pub mod api;
pub mod caps;
pub mod clients;
pub mod guard;
pub mod records;
pub mod retrain;

use super::metrics::Metrics;
use crate::net::Cidr;
use crate::policy::{action_name, Decision, Policy, Request};
use crate::scoring::model::Contribution;
use crate::scoring::wire::{ScoreAnswer, ScoreQuery, TopFeature};
use crate::scoring::{Model, Observation, Scored, TopFeatures, Vector, REQUEST};
use api::{ApiError, FeedbackRequest, LabelName};
use caps::LabelCaps;
use clients::{tag_of, Clients};
use records::{Event, Label, Record, Records, Writer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Features named in answers and headers.
const TOP_FEATURES: usize = 3;
/// The weight of a passed challenge's human label: solving one is weak
/// evidence (people solve them, and so do solver farms).
const PASSED_WEIGHT: f32 = 0.5;

/// The models in force.
#[derive(Clone, Default)]
pub struct Active {
    /// `None`: rules only.
    pub model: Option<Arc<Model>>,
    /// Why there is no model, with scoring enabled.
    pub error: Option<String>,
    /// The first 16 hex digits of SHA-256 over the model file's text:
    /// promoted checkpoints are tied to the file they were trained against.
    pub base: String,
    /// The promoted checkpoint served instead of the file, if any.
    pub checkpoint: Option<i64>,
    /// A candidate scored alongside, not enforced.
    pub shadow: Option<Arc<Shadow>>,
}

/// A candidate in shadow mode.
pub struct Shadow {
    pub model: Arc<Model>,
    pub checkpoint: i64,
    pub since_s: u64,
    pub scores: AtomicU64,
}

/// The records file, open: a writer for the request path, a connection
/// for reads and checkpoints.
pub struct RecordStore {
    data_dir: String,
    pub reader: Records,
    writer: Writer,
}

/// One client's features and score, from one request or report.
#[derive(Debug, Clone)]
pub struct Assessed {
    pub client: Option<Cidr>,
    tag: u64,
    pub features: Vec<f32>,
    /// 0–100; `None` without a model.
    pub score: Option<f32>,
    pub top: Vec<Contribution>,
    pub model: Option<String>,
    /// The shadow candidate's score, when one runs.
    pub shadow: Option<f32>,
    /// The score the client's previous check left, still fresh: what a
    /// check on a `cached` route applies.
    pub cached: Option<Scored>,
}

impl Assessed {
    /// The score as the policy takes it.
    pub fn scored(&self) -> Option<Scored> {
        self.score.map(|s| Scored {
            points: s.round().clamp(0.0, 100.0) as u8,
            top: TopFeatures::of(self.top.iter().map(|c| c.feature)),
        })
    }

    pub fn top_features(&self) -> Vec<TopFeature> {
        self.top
            .iter()
            .map(|c| TopFeature {
                feature: c.feature.to_string(),
                value: c.value,
                points: c.points,
            })
            .collect()
    }
}

/// Everything scoring keeps across reloads (see the module doc).
pub struct Scoring {
    clients: RwLock<Arc<Clients>>,
    active: RwLock<Arc<Active>>,
    store: RwLock<Option<Arc<RecordStore>>>,
    caps: Mutex<LabelCaps>,
    jobs: retrain::Jobs,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring::new()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(|p| p.into_inner()) = value;
}

/// The model file at `path`, checked for the request schema, and its hash.
pub fn load_model(path: &str) -> Result<(Model, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("scoring.model: cannot read {path}: {e}"))?;
    let model =
        Model::from_json(&text, &REQUEST).map_err(|e| format!("scoring.model: {path}: {e}"))?;
    Ok((model, hash(&text)))
}

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Scoring {
    pub fn new() -> Scoring {
        Scoring {
            clients: RwLock::new(Arc::new(Clients::new(1))),
            active: RwLock::new(Arc::new(Active::default())),
            store: RwLock::new(None),
            caps: Mutex::new(LabelCaps::default()),
            jobs: retrain::Jobs::default(),
        }
    }

    pub fn clients(&self) -> Arc<Clients> {
        read(&self.clients)
    }

    pub fn active(&self) -> Arc<Active> {
        read(&self.active)
    }

    pub fn store(&self) -> Option<Arc<RecordStore>> {
        read(&self.store)
    }

    /// Applies a (re)loaded policy: the table's size, the records file,
    /// and the model (see the module doc). Blocks on file I/O.
    pub fn configure(&self, policy: &Policy, metrics: &Metrics) {
        let s = policy.scoring();
        if self.clients().len() != s.slots as usize {
            write(&self.clients, Arc::new(Clients::new(s.slots as usize)));
        }
        if !s.enabled {
            write(&self.active, Arc::new(Active::default()));
            write(&self.store, None);
            return;
        }
        let data_dir = &policy.companion().data_dir;
        if self.store().is_none_or(|st| &st.data_dir != data_dir) {
            write(&self.store, open_store(data_dir, s.records.queue, metrics));
        }
        let active = match load_model(&s.model) {
            Ok((model, base)) => {
                metrics.model_load(true);
                let old = self.active();
                let (model, checkpoint) = self.promoted_for(&base).unwrap_or((model, None));
                tracing::info!(
                    event = "model_loaded",
                    model = %model.version(),
                    path = %s.model,
                    checkpoint,
                    "scoring model loaded"
                );
                Active {
                    model: Some(Arc::new(model)),
                    error: None,
                    // A candidate trained against this very file stays in shadow.
                    shadow: old.shadow.clone().filter(|_| old.base == base),
                    base,
                    checkpoint,
                }
            }
            Err(error) => {
                metrics.model_load(false);
                tracing::error!(
                    event = "model_refused",
                    error = %error,
                    "the scoring model cannot be served: deciding on rules only"
                );
                Active {
                    error: Some(error),
                    ..Active::default()
                }
            }
        };
        write(&self.active, Arc::new(active));
    }

    /// The newest promoted checkpoint for the model file hashed `base`.
    fn promoted_for(&self, base: &str) -> Option<(Model, Option<i64>)> {
        let store = self.store()?;
        let checkpoint = match store.reader.promoted_for(base) {
            Ok(c) => c?,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read promoted checkpoints");
                return None;
            }
        };
        match Model::from_json(&checkpoint.model, &REQUEST) {
            Ok(model) => Some((model, Some(checkpoint.id))),
            Err(e) => {
                tracing::warn!(checkpoint = checkpoint.id, error = %e, "a promoted checkpoint is refused");
                None
            }
        }
    }

    /// Scores `x` with the served model (and the shadow candidate).
    fn score(&self, client: Option<Cidr>, tag: u64, x: Vec<f32>, metrics: &Metrics) -> Assessed {
        let active = self.active();
        let (score, top, model) = match &active.model {
            Some(m) => (
                Some(m.score(&x)),
                m.top_features(&x, TOP_FEATURES),
                Some(m.version()),
            ),
            None => (None, Vec::new(), None),
        };
        let shadow = active.shadow.as_ref().map(|s| {
            s.scores.fetch_add(1, Ordering::Relaxed);
            let score = s.model.score(&x);
            metrics.shadow_scored(score);
            score
        });
        Assessed {
            client,
            tag,
            features: x,
            score,
            top,
            model,
            shadow,
            cached: None,
        }
    }

    /// Counts `request` in its client's behaviour and scores the client;
    /// `None` with scoring disabled or without a client address.
    pub fn assess(
        &self,
        policy: &Policy,
        request: &Request,
        metrics: &Metrics,
        now_ns: u64,
    ) -> Option<Assessed> {
        if !policy.scoring().enabled {
            return None;
        }
        let ip = policy.client_ip(request)?;
        let prefix = policy.client_prefix(ip);
        let tag = tag_of(&prefix);
        let facts = policy.score_facts(request, None);
        let observation = Observation::of(request, policy.score_route(request).1);
        let vector = self.clients().observe(tag, &observation, now_ns, |state| {
            Vector::of(&REQUEST, state, &facts, now_ns)
        })?;
        let mut assessed = self.score(Some(prefix), tag, vector.as_slice().to_vec(), metrics);
        let ttl_ns = policy.scoring().cache_ttl.0.saturating_mul(1_000_000_000);
        assessed.cached = self.clients().exchange_score(
            tag,
            assessed.scored(),
            now_ns,
            now_ns.saturating_add(ttl_ns),
        );
        Some(assessed)
    }

    /// After a check's decision: its own answer's status goes into the
    /// client's behaviour (the only status the nginx check ever sees), and
    /// the score into metrics and records.
    pub fn settle(
        &self,
        policy: &Policy,
        assessed: &Assessed,
        decision: &Decision,
        metrics: &Metrics,
        now_ns: u64,
    ) {
        if let Some(status) = decision.status(policy.challenge_config().status) {
            self.clients().update(assessed.tag, |s| {
                s.observe_response(status, decision.login);
            });
        }
        let action = decision.action.as_str();
        self.count(policy, assessed, action, metrics, now_ns);
        if decision.action == crate::policy::Action::Block {
            if let (Some(store), Some(client)) = (self.store(), assessed.client) {
                store.writer.send(Record::Reputation {
                    at: now_ns / 1_000_000_000,
                    client: client.to_string(),
                    event: Event::Blocked,
                });
            }
        }
    }

    /// Metrics, the sampled record and the shadow's progress for one score.
    fn count(
        &self,
        policy: &Policy,
        assessed: &Assessed,
        action: &'static str,
        metrics: &Metrics,
        now_ns: u64,
    ) {
        let Some(score) = assessed.score else {
            metrics.unscored();
            return;
        };
        let flagged = score >= f32::from(policy.thresholds().challenge);
        metrics.scored(action, score, flagged);
        let s = policy.scoring();
        if let Some(store) = self.store() {
            if rand::random::<f64>() < s.records.sample {
                store.writer.send(Record::Sample {
                    at: now_ns / 1_000_000_000,
                    client: assessed
                        .client
                        .map_or_else(|| "unknown".to_string(), |c| c.to_string()),
                    model: assessed.model.clone(),
                    score: Some(score),
                    shadow: assessed.shadow,
                    action,
                    features: assessed.features.clone(),
                });
            }
        }
        self.promote_when_due(policy, metrics, now_ns / 1_000_000_000);
    }

    /// `/score`: the filter's reports (or an operator's query), each
    /// checked before any is scored.
    pub fn score_queries(
        &self,
        policy: &Policy,
        queries: &[ScoreQuery],
        metrics: &Metrics,
        now_ns: u64,
    ) -> Result<Vec<ScoreAnswer>, ApiError> {
        let active = self.active();
        let vectors = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                api::check_schema(q)
                    .and_then(|()| api::vector(&q.features, &REQUEST, active.model.as_deref()))
                    .map_err(|e| match (e, queries.len()) {
                        (e, 1) => e,
                        (e, _) => ApiError::BadInput(format!("batch[{i}].{e}")),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let clients = self.clients();
        Ok(queries
            .iter()
            .zip(vectors)
            .map(|(q, x)| {
                let prefix = q.client.as_deref().and_then(|c| c.parse::<Cidr>().ok());
                let tag = prefix.as_ref().map_or(0, tag_of);
                if let (Some(_), Some(v)) = (prefix, Vector::from_values(&x)) {
                    clients.report(tag, v);
                }
                let assessed = self.score(prefix, tag, x, metrics);
                let action = assessed
                    .score
                    .map(|s| action_name(policy.score_action(s.round().clamp(0.0, 100.0) as u8)));
                if policy.scoring().enabled {
                    self.count(
                        policy,
                        &assessed,
                        action.unwrap_or("allow"),
                        metrics,
                        now_ns,
                    );
                }
                ScoreAnswer {
                    client: q.client.clone(),
                    score: assessed.score,
                    action: action.map(str::to_string),
                    model: assessed.model.clone(),
                    top_features: assessed.top_features(),
                }
            })
            .collect())
    }

    /// `/feedback`: a label, capped, stored with the features given or the
    /// client's last ones.
    pub fn feedback(
        &self,
        policy: &Policy,
        request: &FeedbackRequest,
        metrics: &Metrics,
        now_ns: u64,
    ) -> Result<Value, ApiError> {
        if !policy.scoring().enabled {
            return Err(ApiError::Disabled);
        }
        let prefix = match (&request.client, request.ip) {
            (Some(c), None) => c.parse::<Cidr>().map_err(|e| {
                ApiError::BadInput(format!(
                    "client: {c:?} is not a prefix such as 203.0.113.0/24: {e}"
                ))
            })?,
            (None, Some(ip)) => policy.client_prefix(ip),
            _ => return Err(ApiError::BadInput("give one of `client` or `ip`".into())),
        };
        let active = self.active();
        let features = match &request.features {
            Some(values) => api::vector(values, &REQUEST, active.model.as_deref())?,
            None => self
                .clients()
                .last(tag_of(&prefix))
                .map(|v| v.as_slice().to_vec())
                .ok_or_else(|| {
                    ApiError::UnknownClient(format!(
                        "client {prefix} has no recent behaviour here; give its `features`"
                    ))
                })?,
        };
        let bot = request.label == LabelName::Bot;
        self.label(
            policy,
            &prefix,
            &request.source,
            bot,
            1.0,
            features,
            metrics,
            now_ns,
        )?;
        Ok(json!({
            "accepted": true,
            "client": prefix.to_string(),
            "label": if bot { "bot" } else { "human" },
            "source": request.source,
        }))
    }

    /// Stores a label within the caps.
    #[allow(clippy::too_many_arguments)]
    fn label(
        &self,
        policy: &Policy,
        client: &Cidr,
        source: &str,
        bot: bool,
        weight: f32,
        features: Vec<f32>,
        metrics: &Metrics,
        now_ns: u64,
    ) -> Result<(), ApiError> {
        let now_s = now_ns / 1_000_000_000;
        let client = client.to_string();
        let admitted = self.caps.lock().unwrap_or_else(|p| p.into_inner()).admit(
            &policy.scoring().feedback,
            source,
            &client,
            now_s,
        );
        if let Err(refused) = admitted {
            return Err(match refused {
                caps::Refused::UnknownSource { .. } => {
                    ApiError::BadInput(format!("source: {refused}"))
                }
                _ => {
                    metrics.feedback(source, "capped");
                    ApiError::Capped(refused.to_string())
                }
            });
        }
        let Some(store) = self.store() else {
            return Err(ApiError::Unavailable(
                "the scoring records cannot be opened (see the log)".into(),
            ));
        };
        store.writer.send(Record::Label(Label {
            at: now_s,
            client,
            source: source.to_string(),
            bot,
            weight,
            features,
        }));
        metrics.feedback(source, "accepted");
        Ok(())
    }

    /// A challenge answered: counted in the client's behaviour and
    /// reputation, and (with `feedback.challenge_labels`) a capped label
    /// of the client's last features: failed, a bot; passed, a human of
    /// half weight.
    pub fn challenge_outcome(
        &self,
        policy: &Policy,
        ip: Option<IpAddr>,
        passed: bool,
        metrics: &Metrics,
        now_ns: u64,
    ) {
        let (true, Some(ip)) = (policy.scoring().enabled, ip) else {
            return;
        };
        let prefix = policy.client_prefix(ip);
        let tag = tag_of(&prefix);
        let clients = self.clients();
        clients.update(tag, |s| s.observe_challenge(passed));
        if let Some(store) = self.store() {
            store.writer.send(Record::Reputation {
                at: now_ns / 1_000_000_000,
                client: prefix.to_string(),
                event: if passed {
                    Event::ChallengePassed
                } else {
                    Event::ChallengeFailed
                },
            });
        }
        if !policy.scoring().feedback.challenge_labels {
            return;
        }
        let Some(features) = clients.last(tag) else {
            metrics.feedback("challenge", "no_features");
            return;
        };
        let weight = if passed { PASSED_WEIGHT } else { 1.0 };
        let features = features.as_slice().to_vec();
        // Over a cap it is counted and dropped: the answer stands either way.
        let _ = self.label(
            policy,
            &prefix,
            "challenge",
            !passed,
            weight,
            features,
            metrics,
            now_ns,
        );
    }

    /// Promotes the shadow candidate once it has run for
    /// `training.shadow_scores` scores and `training.shadow_period`.
    fn promote_when_due(&self, policy: &Policy, metrics: &Metrics, now_s: u64) {
        let active = self.active();
        let Some(shadow) = &active.shadow else { return };
        let t = &policy.scoring().training;
        if shadow.scores.load(Ordering::Relaxed) < t.shadow_scores
            || now_s < shadow.since_s.saturating_add(t.shadow_period.0)
        {
            return;
        }
        self.promote(shadow, metrics);
    }

    /// Serves `shadow` instead of the current model, unless another change
    /// came first.
    pub fn promote(&self, shadow: &Arc<Shadow>, metrics: &Metrics) {
        let mut guard = self.active.write().unwrap_or_else(|p| p.into_inner());
        let current = guard.clone();
        if !current
            .shadow
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, shadow))
        {
            return;
        }
        *guard = Arc::new(Active {
            model: Some(shadow.model.clone()),
            error: None,
            base: current.base.clone(),
            checkpoint: Some(shadow.checkpoint),
            shadow: None,
        });
        drop(guard);
        if let Some(store) = self.store() {
            if let Some(old) = current.checkpoint {
                store.writer.send(Record::Checkpoint {
                    id: old,
                    state: records::CheckpointState::Retired,
                });
            }
            store.writer.send(Record::Checkpoint {
                id: shadow.checkpoint,
                state: records::CheckpointState::Promoted,
            });
        }
        metrics.training_run("promoted");
        tracing::info!(
            event = "model_promoted",
            checkpoint = shadow.checkpoint,
            model = %shadow.model.version(),
            shadow_scores = shadow.scores.load(Ordering::Relaxed),
            "the shadow candidate is served now"
        );
    }

    /// Starts a retrain job: its id, or why not.
    pub fn start_training(&self, policy: &Policy, now_s: u64) -> Result<u64, ApiError> {
        if !policy.scoring().enabled {
            return Err(ApiError::Disabled);
        }
        self.jobs
            .start(now_s)
            .map_err(|id| ApiError::Conflict(format!("retrain {id} is still running")))
    }

    /// Runs retrain job `id` (see [`retrain`]). Blocks for seconds.
    pub fn run_training(&self, policy: &Policy, metrics: &Metrics, id: u64, now_s: u64) {
        let (outcome, checkpoint) = self.train_candidate(policy, metrics, now_s);
        metrics.training_run(outcome.verdict.as_str());
        tracing::info!(
            event = "retrain",
            job = id,
            outcome = outcome.verdict.as_str(),
            reason = %outcome.reason,
            checkpoint,
            evaluation = %outcome.evaluation,
        );
        self.jobs.finish(id, super::now_s(), &outcome, checkpoint);
    }

    /// Trains and judges a candidate; one that passes goes into shadow mode
    /// (or is served at once when the shadow period and count are both 0).
    fn train_candidate(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        now_s: u64,
    ) -> (retrain::Outcome, Option<i64>) {
        let s = policy.scoring();
        let t = &s.training;
        let fail = |reason: String| {
            let outcome = retrain::Outcome {
                verdict: retrain::Verdict::Failed,
                reason,
                candidate: None,
                evaluation: Value::Null,
            };
            (outcome, None)
        };
        let active = self.active();
        let Some(current) = active.model.clone() else {
            return fail(
                "no model is served, so there is none to judge a candidate against".into(),
            );
        };
        let Some(store) = self.store() else {
            return fail("the scoring records are not open".into());
        };
        let read_rows = |field: &str, path: &str| {
            crate::scoring::rows::read(std::path::Path::new(path), &REQUEST)
                .map_err(|e| format!("scoring.training.{field}: {e}"))
        };
        let (base, holdout) = match (read_rows("base", &t.base), read_rows("holdout", &t.holdout)) {
            (Ok(b), Ok(h)) => (b, h),
            (Err(e), _) | (_, Err(e)) => return fail(e),
        };
        let since = now_s.saturating_sub(s.records.labels_retention.0);
        let labels = match store.reader.labels_since(since) {
            Ok(l) => l,
            Err(e) => return fail(e.to_string()),
        };
        let version = format!("{}-retrain-{now_s}", current.file().kind);
        let outcome = retrain::retrain(&retrain::Inputs {
            current: &current,
            base: &base,
            holdout: &holdout,
            labels: &labels,
            config: t,
            per_client: s.feedback.per_client,
            thresholds: policy.thresholds(),
            version: version.clone(),
        });
        let Some(file) = &outcome.candidate else {
            return (outcome, None);
        };
        let passed = outcome.verdict == retrain::Verdict::Passed;
        let state = if passed {
            records::CheckpointState::Shadow
        } else {
            records::CheckpointState::Rejected
        };
        let checkpoint = match store.reader.save_checkpoint(
            now_s,
            file,
            &version,
            state,
            &outcome.evaluation,
            &active.base,
        ) {
            Ok(id) => id,
            Err(e) => return fail(e.to_string()),
        };
        if passed {
            if let Ok(model) = Model::new(file.clone(), &REQUEST) {
                self.start_shadow(model, checkpoint, &active.base, now_s, t, metrics);
            }
        }
        (outcome, Some(checkpoint))
    }

    /// Puts a candidate in shadow mode beside the model trained against
    /// the same file.
    fn start_shadow(
        &self,
        model: Model,
        checkpoint: i64,
        base: &str,
        now_s: u64,
        t: &crate::config::TrainingConfig,
        metrics: &Metrics,
    ) {
        let shadow = Arc::new(Shadow {
            model: Arc::new(model),
            checkpoint,
            since_s: now_s,
            scores: AtomicU64::new(0),
        });
        {
            let mut guard = self.active.write().unwrap_or_else(|p| p.into_inner());
            if guard.base != base {
                // The model file changed while training: this candidate is stale.
                return;
            }
            let mut next = (**guard).clone();
            next.shadow = Some(shadow.clone());
            *guard = Arc::new(next);
        }
        if t.shadow_scores == 0 && t.shadow_period.0 == 0 {
            self.promote(&shadow, metrics);
        }
    }

    /// The last retrain, for `GET /train`.
    pub fn training_status(&self) -> Option<Value> {
        self.jobs.last().map(|j| j.to_json())
    }

    /// The `scoring` part of `/stats`. Blocks on the records file.
    pub fn stats(&self, metrics: &Metrics) -> Value {
        let mut stats = metrics.scoring_stats();
        let active = self.active();
        let clients = self.clients();
        stats["model"] = active.model.as_ref().map(|m| m.version()).into();
        stats["model_error"] = active.error.clone().into();
        stats["checkpoint"] = active.checkpoint.into();
        stats["shadow_candidate"] = active.shadow.as_ref().map_or(Value::Null, |s| {
            json!({
                "checkpoint": s.checkpoint,
                "model": s.model.version(),
                "since": s.since_s,
                "scores": s.scores.load(Ordering::Relaxed),
            })
        });
        stats["last_retrain"] = self.training_status().into();
        stats["unique_clients"] = clients.arrivals().into();
        stats["clients_tracked"] = clients.tracked().into();
        if let Some(store) = self.store() {
            match store.reader.counts() {
                Ok(c) => {
                    stats["training_examples"] = c.labels.into();
                    stats["blocked_clients"] = c.blocked_clients.into();
                    stats["clients_with_reputation"] = c.clients.into();
                    stats["samples"] = c.samples.into();
                }
                Err(e) => stats["records_error"] = e.to_string().into(),
            }
        }
        stats
    }

    /// Removes records past retention. Blocks on the records file.
    pub fn sweep(&self, policy: &Policy, now_s: u64) {
        let Some(store) = self.store() else { return };
        let r = &policy.scoring().records;
        match store
            .reader
            .sweep(now_s, r.retention.0, r.labels_retention.0)
        {
            Ok(swept) if swept != records::Swept::default() => {
                tracing::info!(
                    event = "records_swept",
                    samples = swept.samples,
                    labels = swept.labels,
                    clients = swept.clients,
                    checkpoints = swept.checkpoints,
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping scoring records failed"),
        }
    }
}

/// Opens the records file twice (the writer's connection and the reader's).
fn open_store(data_dir: &str, queue: u32, metrics: &Metrics) -> Option<Arc<RecordStore>> {
    let dir = std::path::Path::new(data_dir);
    let opened = Records::open_in(dir).and_then(|w| Ok((w, Records::open_in(dir)?)));
    match opened {
        Ok((writer, reader)) => Some(Arc::new(RecordStore {
            data_dir: data_dir.to_string(),
            reader,
            writer: Writer::start(writer, queue as usize, metrics.records()),
        })),
        Err(e) => {
            tracing::error!(error = %e, "scoring records are off: labels and samples are not kept");
            None
        }
    }
}
