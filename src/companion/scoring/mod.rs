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
//! - [`shared`]: what replicas share through Redis (`companion.redis_url`).
//!
//! [`Scoring`] outlives policy reloads; [`Scoring::configure`] applies a
//! (re)loaded policy: the model file is read again, and one that cannot
//! be read or does not match the schema is logged, counted
//! (`palisade_companion_model_loads_total{outcome="failed"}`) and leaves
//! the companion on rules only, with the score reported as absent, never 0.
//!
//! With `companion.redis_url`, the clients' behaviour, the caps, the labels,
//! reputation and the promoted checkpoint are shared ([`shared`]); a call
//! to Redis that fails falls back to this replica's own table, caps and
//! records for that call, counted in
//! `palisade_companion_scoring_fallbacks_total{part}`, and never fails the
//! request.

pub mod api;
pub mod caps;
pub mod clients;
pub mod guard;
pub mod records;
pub mod retrain;
pub mod shared;

use super::metrics::Metrics;
use crate::net::Cidr;
use crate::policy::{action_name, Decision, Policy, Request};
use crate::scoring::model::Contribution;
use crate::scoring::wire::{ScoreAnswer, ScoreQuery, TopFeature};
use crate::scoring::{Model, Observation, Scored, TopFeatures, Vector, REQUEST};
use api::{ApiError, FeedbackRequest, LabelName};
use caps::LabelCaps;
use clients::{tag_of, ClientSlot, Clients};
use records::{Event, Label, Record, Records, Writer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::{Part, SharedError, SharedScoring};
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
    /// The hash of that checkpoint's model file text: what tells a replica
    /// whether the checkpoint promoted in Redis is the one it serves.
    pub digest: Option<String>,
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

/// How long a retrain waits for the writer to commit what is queued.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl RecordStore {
    /// The store, once what was queued before now is in the file (or the
    /// writer took too long: logged, and the reads see what is there).
    fn flushed(&self) -> &RecordStore {
        if !self.writer.flush(FLUSH_TIMEOUT) {
            tracing::warn!("the records writer did not catch up: reading what is written");
        }
        self
    }
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
        scored_of(self.score, &self.top)
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

/// A score as the policy takes it.
fn scored_of(score: Option<f32>, top: &[Contribution]) -> Option<Scored> {
    score.map(|s| Scored {
        points: s.round().clamp(0.0, 100.0) as u8,
        top: TopFeatures::of(top.iter().map(|c| c.feature)),
    })
}

/// What the served model makes of one feature vector.
struct Judged {
    /// `None` without a model.
    score: Option<f32>,
    top: Vec<Contribution>,
    model: Option<String>,
}

impl Judged {
    fn of(active: &Active, x: &[f32]) -> Judged {
        match &active.model {
            Some(m) => Judged {
                score: Some(m.score(x)),
                top: m.top_features(x, TOP_FEATURES),
                model: Some(m.version()),
            },
            None => Judged {
                score: None,
                top: Vec::new(),
                model: None,
            },
        }
    }
}

/// A promoted checkpoint to serve instead of the model file.
struct Promoted {
    model: Model,
    /// Its id in this replica's records, if they are open.
    checkpoint: Option<i64>,
    digest: String,
}

/// Everything scoring keeps across reloads (see the module doc).
pub struct Scoring {
    clients: RwLock<Arc<Clients>>,
    active: RwLock<Arc<Active>>,
    store: RwLock<Option<Arc<RecordStore>>>,
    caps: Mutex<LabelCaps>,
    /// The state replicas share, with `companion.redis_url` (kept across
    /// reloads while the URL is unchanged).
    shared: RwLock<Option<Arc<SharedScoring>>>,
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
            shared: RwLock::new(None),
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

    fn shared(&self) -> Option<Arc<SharedScoring>> {
        read(&self.shared)
    }

    /// Whether scoring calls may wait on the network (Redis): the caller
    /// then runs them where blocking is allowed.
    pub fn waits_on_network(&self) -> bool {
        self.shared().is_some()
    }

    /// Runs `call` on the shared state, if replicas share it; `None` when
    /// they do not, or when it failed or Redis was just seen failing
    /// (logged, and counted by `part`): the caller then does it locally.
    fn remote<T>(
        &self,
        part: Part,
        metrics: &Metrics,
        call: impl FnOnce(&SharedScoring) -> Result<T, SharedError>,
    ) -> Option<T> {
        let shared = self.shared()?;
        if shared.backing_off() {
            metrics.scoring_fallback(part.as_str());
            return None;
        }
        match call(&shared) {
            Ok(value) => {
                shared.succeeded();
                Some(value)
            }
            Err(e) => {
                metrics.scoring_fallback(part.as_str());
                shared.failed(part, &e);
                None
            }
        }
    }

    /// Opens (or keeps) the shared state `policy` asks for.
    fn configure_shared(&self, policy: &Policy) {
        let url = match (&policy.companion().redis_url, policy.scoring().enabled) {
            (Some(url), true) => url,
            _ => return write(&self.shared, None),
        };
        if self.shared().is_some_and(|s| s.url() == url) {
            return;
        }
        let opened = SharedScoring::open(url)
            .map_err(|e| {
                tracing::error!(error = %e, "scoring state is not shared: each replica keeps its own");
            })
            .ok();
        write(&self.shared, opened.map(Arc::new));
    }

    /// Runs `update` on the client's slot: in Redis when replicas share it
    /// (the table keeps the copy), else, or when that fails, in the table.
    /// `update` may run more than once, each time on a fresh copy.
    fn update_client<R>(
        &self,
        tag: u64,
        metrics: &Metrics,
        mut update: impl FnMut(&mut ClientSlot) -> R,
    ) -> Option<R> {
        let clients = self.clients();
        if self.waits_on_network() {
            let guess = clients.get(tag);
            let done = self.remote(Part::Clients, metrics, |s| {
                s.update_client(tag, guess.as_ref(), &mut update)
            });
            if let Some((slot, result)) = done {
                clients.put(tag, slot);
                return Some(result);
            }
        }
        clients.update(tag, update)
    }

    /// The client's last feature vector: the shared one, else this
    /// replica's.
    fn last(&self, tag: u64, metrics: &Metrics) -> Option<Vector> {
        self.remote(Part::Clients, metrics, |s| s.last(tag))
            .flatten()
            .or_else(|| self.clients().last(tag))
    }

    /// Counts `event` in the client's reputation: in the records file, and
    /// in Redis when replicas share.
    fn reputation(&self, policy: &Policy, client: &Cidr, event: Event, metrics: &Metrics, at: u64) {
        let client = client.to_string();
        let retention = policy.scoring().records.labels_retention.0;
        self.remote(Part::Reputation, metrics, |s| {
            s.reputation(&client, at, event, retention)
        });
        if let Some(store) = self.store() {
            store.writer.send(Record::Reputation { at, client, event });
        }
    }

    /// Applies a (re)loaded policy: the table's size, the records file,
    /// and the model (see the module doc). Blocks on file I/O.
    pub fn configure(&self, policy: &Policy, metrics: &Metrics) {
        let s = policy.scoring();
        if self.clients().len() != s.slots as usize {
            write(&self.clients, Arc::new(Clients::new(s.slots as usize)));
        }
        self.configure_shared(policy);
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
                let (model, checkpoint, digest) =
                    match self.promoted_for(&base, metrics, super::now_s()) {
                        Some(p) => (p.model, p.checkpoint, Some(p.digest)),
                        None => (model, None, None),
                    };
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
                    digest,
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

    /// The checkpoint to serve for the model file hashed `base`: the one
    /// promoted on any replica (in Redis), else the newest promoted here.
    fn promoted_for(&self, base: &str, metrics: &Metrics, now_s: u64) -> Option<Promoted> {
        if let Some(text) = self
            .remote(Part::Checkpoints, metrics, |s| s.promoted(base))
            .flatten()
        {
            if let Some(promoted) = self.import(base, &text, now_s) {
                return Some(promoted);
            }
        }
        let store = self.store()?;
        let checkpoint = match store.reader.promoted_for(base) {
            Ok(c) => c?,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read promoted checkpoints");
                return None;
            }
        };
        match Model::from_json(&checkpoint.model, &REQUEST) {
            Ok(model) => Some(Promoted {
                model,
                checkpoint: Some(checkpoint.id),
                digest: hash(&checkpoint.model),
            }),
            Err(e) => {
                tracing::warn!(checkpoint = checkpoint.id, error = %e, "a promoted checkpoint is refused");
                None
            }
        }
    }

    /// A checkpoint another replica promoted (`text`, its model file), kept
    /// in this replica's records as promoted (once: the one promoted here
    /// already is reused) so that a restart serves it without Redis too.
    fn import(&self, base: &str, text: &str, now_s: u64) -> Option<Promoted> {
        let model = match Model::from_json(text, &REQUEST) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "the checkpoint promoted in Redis is refused");
                return None;
            }
        };
        let digest = hash(text);
        let checkpoint = self.store().and_then(|store| {
            let local = match store.reader.promoted_for(base) {
                Ok(local) => local,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read promoted checkpoints");
                    return None;
                }
            };
            if let Some(local) = local {
                if hash(&local.model) == digest {
                    return Some(local.id);
                }
                let retired = Record::Checkpoint {
                    id: local.id,
                    state: records::CheckpointState::Retired,
                };
                if let Err(e) = store.reader.write(&[retired]) {
                    tracing::warn!(error = %e, "cannot retire a checkpoint");
                }
            }
            let evaluation = json!({"from": "redis"});
            store
                .reader
                .save_checkpoint(
                    now_s,
                    model.file(),
                    &model.version(),
                    records::CheckpointState::Promoted,
                    &evaluation,
                    base,
                )
                .map_err(|e| tracing::warn!(error = %e, "cannot keep the promoted checkpoint"))
                .ok()
        });
        Some(Promoted {
            model,
            checkpoint,
            digest,
        })
    }

    /// With replicas sharing: serves the checkpoint another replica
    /// promoted for the served model file, if it is not the one served.
    /// Blocks on Redis and the records file.
    pub fn follow(&self, policy: &Policy, metrics: &Metrics, now_s: u64) {
        let active = self.active();
        if !policy.scoring().enabled || active.model.is_none() {
            return;
        }
        let Some(text) = self
            .remote(Part::Checkpoints, metrics, |s| s.promoted(&active.base))
            .flatten()
        else {
            return;
        };
        if active.digest.as_deref() == Some(hash(&text).as_str()) {
            return;
        }
        let Some(promoted) = self.import(&active.base, &text, now_s) else {
            return;
        };
        let mut guard = self.active.write().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&guard, &active) {
            // Another change came first; the next look tries again.
            return;
        }
        let version = promoted.model.version();
        *guard = Arc::new(Active {
            model: Some(Arc::new(promoted.model)),
            error: None,
            base: active.base.clone(),
            checkpoint: promoted.checkpoint,
            digest: Some(promoted.digest),
            shadow: active.shadow.clone(),
        });
        drop(guard);
        tracing::info!(
            event = "model_followed",
            model = %version,
            checkpoint = promoted.checkpoint,
            "serving the checkpoint another replica promoted"
        );
    }

    /// Scores `x` with the served model (and the shadow candidate).
    fn score(&self, client: Option<Cidr>, tag: u64, x: Vec<f32>, metrics: &Metrics) -> Assessed {
        let active = self.active();
        let judged = Judged::of(&active, &x);
        Scoring::assessed(&active, client, tag, x, judged, metrics)
    }

    /// `x` as the served model judged it, with the shadow candidate's score.
    fn assessed(
        active: &Active,
        client: Option<Cidr>,
        tag: u64,
        x: Vec<f32>,
        judged: Judged,
        metrics: &Metrics,
    ) -> Assessed {
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
            score: judged.score,
            top: judged.top,
            model: judged.model,
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
        let active = self.active();
        let expires_ns =
            now_ns.saturating_add(policy.scoring().cache_ttl.0.saturating_mul(1_000_000_000));
        // One read-modify-write of the client: count, score, swap the cache.
        let (vector, judged, cached) = self.update_client(tag, metrics, |slot| {
            let vector = slot.observe(&observation, now_ns, |state| {
                Vector::of(&REQUEST, state, &facts, now_ns)
            });
            let judged = Judged::of(&active, vector.as_slice());
            let cached =
                slot.exchange_score(scored_of(judged.score, &judged.top), now_ns, expires_ns);
            (vector, judged, cached)
        })?;
        let x = vector.as_slice().to_vec();
        let mut assessed = Scoring::assessed(&active, Some(prefix), tag, x, judged, metrics);
        assessed.cached = cached;
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
            self.update_client(assessed.tag, metrics, |slot| {
                slot.state.observe_response(status, decision.login);
            });
        }
        let action = decision.action.as_str();
        self.count(policy, assessed, action, metrics, now_ns);
        if decision.action == crate::policy::Action::Block {
            if let Some(client) = &assessed.client {
                let at = now_ns / 1_000_000_000;
                self.reputation(policy, client, Event::Blocked, metrics, at);
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
        let mut reports = Vec::new();
        let answers = queries
            .iter()
            .zip(vectors)
            .map(|(q, x)| {
                let prefix = q.client.as_deref().and_then(|c| c.parse::<Cidr>().ok());
                let tag = prefix.as_ref().map_or(0, tag_of);
                if let (Some(_), Some(v)) = (prefix, Vector::from_values(&x)) {
                    clients.report(tag, v);
                    reports.push((tag, v));
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
            .collect();
        if policy.scoring().enabled {
            self.remote(Part::Clients, metrics, |s| s.report(&reports));
        }
        Ok(answers)
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
                .last(tag_of(&prefix), metrics)
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
        let s = policy.scoring();
        let admitted = self
            .remote(Part::Caps, metrics, |shared| {
                shared.admit(&s.feedback, source, &client, now_s)
            })
            .unwrap_or_else(|| {
                self.caps.lock().unwrap_or_else(|p| p.into_inner()).admit(
                    &s.feedback,
                    source,
                    &client,
                    now_s,
                )
            });
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
        let label = Label {
            at: now_s,
            client,
            source: source.to_string(),
            bot,
            weight,
            features,
        };
        let retention = s.records.labels_retention.0;
        let shared = self
            .remote(Part::Labels, metrics, |shared| {
                shared.add_label(&label, s.records.shared_labels, retention)
            })
            .is_some();
        // Kept here too: what a retrain reads while Redis cannot answer.
        let local = self
            .store()
            .map(|store| store.writer.send(Record::Label(label)));
        if !shared && local.is_none() {
            return Err(ApiError::Unavailable(
                "the scoring records cannot be opened (see the log)".into(),
            ));
        }
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
        self.update_client(tag, metrics, |slot| slot.state.observe_challenge(passed));
        let event = if passed {
            Event::ChallengePassed
        } else {
            Event::ChallengeFailed
        };
        self.reputation(policy, &prefix, event, metrics, now_ns / 1_000_000_000);
        if !policy.scoring().feedback.challenge_labels {
            return;
        }
        let Some(features) = self.last(tag, metrics) else {
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
        self.promote(policy, shadow, metrics);
    }

    /// Serves `shadow` instead of the current model, unless another change
    /// came first, and with replicas sharing, publishes it for the others.
    pub fn promote(&self, policy: &Policy, shadow: &Arc<Shadow>, metrics: &Metrics) {
        // What other replicas serve, and how this one knows it serves it.
        let text = serde_json::to_string(shadow.model.file()).ok();
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
            digest: text.as_deref().map(hash),
            shadow: None,
        });
        drop(guard);
        let retention = policy.scoring().records.labels_retention.0;
        if let Some(text) = &text {
            self.remote(Part::Checkpoints, metrics, |s| {
                s.publish(&current.base, text, retention)
            });
        }
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
        // Every replica's labels, from Redis; this replica's while it fails.
        let (labels, labels_from) =
            match self.remote(Part::Labels, metrics, |shared| shared.labels_since(since)) {
                Some(l) => (l, "redis"),
                None => match store.flushed().reader.labels_since(since) {
                    Ok(l) => (l, "local"),
                    Err(e) => return fail(e.to_string()),
                },
            };
        let version = format!("{}-retrain-{now_s}", current.file().kind);
        let mut outcome = retrain::retrain(&retrain::Inputs {
            current: &current,
            base: &base,
            holdout: &holdout,
            labels: &labels,
            config: t,
            per_client: s.feedback.per_client,
            thresholds: policy.thresholds(),
            version: version.clone(),
        });
        outcome.evaluation["labels_from"] = labels_from.into();
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
                self.start_shadow(policy, model, checkpoint, &active.base, now_s, t, metrics);
            }
        }
        (outcome, Some(checkpoint))
    }

    /// Puts a candidate in shadow mode beside the model trained against
    /// the same file.
    #[allow(clippy::too_many_arguments)]
    fn start_shadow(
        &self,
        policy: &Policy,
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
            self.promote(policy, &shadow, metrics);
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
                    stats["counts_from"] = "local".into();
                }
                Err(e) => stats["records_error"] = e.to_string().into(),
            }
        }
        // With replicas sharing, every replica's labels and reputation.
        if let Some(c) = self.remote(Part::Labels, metrics, |s| s.counts()) {
            stats["training_examples"] = c.labels.into();
            stats["blocked_clients"] = c.blocked_clients.into();
            stats["clients_with_reputation"] = c.clients.into();
            stats["counts_from"] = "redis".into();
        }
        stats
    }

    /// Removes records past retention, here and in Redis. Blocks on the
    /// records file and Redis.
    pub fn sweep(&self, policy: &Policy, metrics: &Metrics, now_s: u64) {
        let r = &policy.scoring().records;
        let swept = self.remote(Part::Labels, metrics, |s| {
            s.sweep(now_s, r.labels_retention.0)
        });
        if let Some(swept) = swept.filter(|s| *s != shared::SharedSwept::default()) {
            tracing::info!(
                event = "shared_records_swept",
                labels = swept.labels,
                clients = swept.clients,
            );
        }
        let Some(store) = self.store() else { return };
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
