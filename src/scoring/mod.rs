//! Learned bot scores: what a client's behaviour looks like as numbers,
//! and the models that turn those numbers into a score from 0 (surely
//! human) to 100 (surely bot).
//!
//! - [`state`]: one client's decayed counters and path sketch, in fixed
//!   bytes any host can store (the filter's shared data, the companion's
//!   memory, a log replay).
//! - [`features`]: the named features, normalised to `[0, 1]`, and the
//!   schemas (request, access log) that order them for a model.
//! - [`interaction`]: what a challenge page records about how it was
//!   solved, and its additive baseline score.
//! - [`model`]: model files (MLP or logistic), checked at load, and
//!   inference.
//! - [`wire`]: the JSON of `POST /score`, shared by the filter and the companion.
//! - [`cache`]: a client's slot in a host's fixed table (state, cached
//!   score, last report), as the Envoy filter keeps them in shared data.
//! - [`local`]: a worker's bounded write-behind copies of slots, so that
//!   most requests of a busy client need no shared-data read or write.
//! - [`report`]: feature reports sent in batches to `/score`, and reading
//!   the answers back into slots.
//! - [`Scored`]: a score as hosts hand it to [`crate::policy::Policy`].
//!
//! Native only (the CLI and the companion; none of it is in the filter):
//!
//! - [`simulate`]: labelled traffic from actor models (`palisade simulate`).
//! - [`rows`]: feature files, the rows training and evaluation read.
//! - [`train`]: the trainer for both model kinds (`palisade train`).
//! - [`eval`]: metrics and the ROC curve (`palisade eval`).
//! - [`replay`]: access-log lines through the client state (`palisade score --log`).
//! - [`clock`]: the access logs' timestamps.
//!
//! The score feeds the same thresholds as rule weights; how the two
//! combine is in [`crate::policy`] and `docs/scoring.md`.

pub mod cache;
pub mod features;
pub mod interaction;
pub mod local;
pub mod model;
pub mod report;
mod scored;
pub mod state;
pub mod wire;

#[cfg(not(target_arch = "wasm32"))]
pub mod clock;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
#[cfg(not(target_arch = "wasm32"))]
pub mod replay;
#[cfg(not(target_arch = "wasm32"))]
pub mod rows;
#[cfg(not(target_arch = "wasm32"))]
pub mod simulate;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;

pub use features::{RequestFacts, Schema, Vector, ACCESS_LOG, REQUEST};
pub use interaction::{Interaction, INTERACTION};
pub use model::{Contribution, Model, ModelError, ModelFile};
pub use scored::{Scored, TopFeatures};
pub use state::{ClientState, Observation, Sighting, STATE_BYTES};
