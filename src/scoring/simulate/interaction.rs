//! Simulated challenge-page interaction records, one per client.
//!
//! People: a mouse with curved paths and human reaction and solve times,
//! touch (taps with hardly any pointer movement), keyboard-only (no
//! pointer, variable key intervals, tabbing), audio (listening, then
//! typing digits). Some have no record at all (JavaScript off), as some
//! bots do: missing data must say nothing.
//!
//! Bots: webdriver flags, clicks that teleport (no movement before
//! them), answers faster than reading, clockwork typing, and stealthy
//! scripts whose only tells are subtle (near-straight synthetic curves,
//! slightly too regular typing, sometimes one automation tell).

use super::actors::Input;
use super::rng::Rng;
use super::{Simulation, Variant};
use crate::scoring::interaction::Interaction;
use crate::scoring::rows::Row;
use serde_json::json;

/// Between `lo` and `hi` key intervals around `mean_ms`.
fn keys(rng: &mut Rng, (lo, hi): (u64, u64), mean_ms: f64, cv: f64) -> Vec<f32> {
    let n = rng.int(lo, hi);
    (0..n).map(|_| rng.jittered(mean_ms, cv) as f32).collect()
}

/// A pointer that travels `path` pixels with straightness `straight`.
fn pointer(i: &mut Interaction, rng: &mut Rng, moves: (f64, f64), straight: (f64, f64)) {
    i.pointer_moves = rng.range(moves) as u32;
    i.pointer_path_px = rng.range((200.0, 3000.0)) as f32;
    i.pointer_span_px = i.pointer_path_px * rng.range(straight) as f32;
}

/// A person's record for a challenge page used with `input`.
pub fn person(rng: &mut Rng, v: Variant, input: Input) -> Interaction {
    let mut i = Interaction::default();
    if rng.chance(0.05) {
        return i; // no JavaScript: nothing recorded
    }
    let slow = v.pick(1.0, rng.range((0.6, 2.0)));
    i.first_interaction_ms = Some((rng.lognormal(1200.0, 0.6) * slow) as f32);
    i.solve_ms = Some((rng.lognormal(7000.0, 0.6) * slow).max(1500.0) as f32);
    let typing = rng.range(v.pick((120.0, 350.0), (90.0, 500.0)));
    let key_cv = rng.range(v.pick((0.3, 0.9), (0.2, 1.2)));
    match input {
        Input::Mouse => {
            pointer(
                &mut i,
                rng,
                v.pick((30.0, 400.0), (12.0, 800.0)),
                v.pick((0.3, 0.9), (0.2, 0.97)),
            );
            i.clicks = rng.int(1, 4) as u32;
            i.jump_clicks = u32::from(rng.chance(0.05));
            if rng.chance(0.6) {
                i.key_intervals_ms = keys(rng, (4, 10), typing, key_cv);
            }
        }
        Input::Touch => {
            i.pointer_moves = rng.int(0, 12) as u32;
            i.pointer_path_px = (f64::from(i.pointer_moves) * rng.range((5.0, 40.0))) as f32;
            i.pointer_span_px = i.pointer_path_px * rng.range((0.2, 0.9)) as f32;
            // The page counts no taps: a finger lands without travelling.
            i.clicks = 0;
            i.jump_clicks = 0;
            if rng.chance(0.5) {
                i.key_intervals_ms = keys(rng, (4, 8), typing * 1.4, key_cv);
            }
        }
        Input::Keyboard => {
            i.key_intervals_ms = keys(rng, (5, 30), typing, key_cv);
            i.focus_changes = rng.int(2, 10) as u32;
        }
        Input::Audio => {
            i.solve_ms = i.solve_ms.map(|s| s + rng.range((5000.0, 20000.0)) as f32);
            i.key_intervals_ms = keys(rng, (3, 8), typing * 1.3, key_cv);
            i.focus_changes = rng.int(0, 3) as u32;
        }
    }
    i.focus_changes += u32::from(rng.chance(0.2)) * rng.int(1, 3) as u32;
    i.pastes = u32::from(rng.chance(0.03));
    if rng.chance(v.pick(0.01, 0.03)) {
        i.tells.push("plugins_empty".into()); // privacy browsers trip this
    }
    i
}

/// The ways a script solves a challenge page.
#[derive(Debug, Clone, Copy)]
enum Script {
    Webdriver,
    Teleport,
    Fast,
    Clockwork,
    Stealthy,
}

/// A bot's record.
pub fn bot(rng: &mut Rng, v: Variant) -> Interaction {
    let mut i = Interaction::default();
    if rng.chance(0.05) {
        return i; // an HTTP client that never ran the page's script
    }
    let script = *rng.pick(&[
        Script::Webdriver,
        Script::Teleport,
        Script::Fast,
        Script::Clockwork,
        Script::Stealthy,
    ]);
    i.first_interaction_ms = Some(rng.range((20.0, 600.0)) as f32);
    i.solve_ms = Some(rng.range((300.0, 4000.0)) as f32);
    match script {
        Script::Webdriver => {
            i.webdriver = true;
            pointer(&mut i, rng, (0.0, 60.0), (0.8, 1.0));
            i.clicks = 1;
        }
        Script::Teleport => {
            i.clicks = rng.int(1, 3) as u32;
            i.jump_clicks = i.clicks;
            i.solve_ms = Some(rng.range((100.0, 1500.0)) as f32);
        }
        Script::Fast => {
            pointer(&mut i, rng, (2.0, 20.0), (0.97, 1.0));
            i.clicks = 1;
            i.first_interaction_ms = Some(rng.range((5.0, 150.0)) as f32);
            i.solve_ms = Some(rng.range((150.0, 900.0)) as f32);
        }
        Script::Clockwork => {
            let (mean, cv) = (rng.range((30.0, 150.0)), rng.range((0.0, 0.06)));
            i.key_intervals_ms = keys(rng, (5, 20), mean, cv);
            i.solve_ms = Some(rng.range((800.0, 3000.0)) as f32);
        }
        Script::Stealthy => {
            pointer(
                &mut i,
                rng,
                v.pick((20.0, 200.0), (30.0, 300.0)),
                v.pick((0.75, 0.98), (0.6, 0.95)),
            );
            i.clicks = rng.int(1, 2) as u32;
            i.first_interaction_ms =
                Some(rng.range(v.pick((200.0, 1200.0), (300.0, 2500.0))) as f32);
            i.solve_ms = Some(rng.range(v.pick((1500.0, 6000.0), (2000.0, 9000.0))) as f32);
            let cv = rng.range(v.pick((0.08, 0.25), (0.12, 0.35)));
            let mean = rng.range((80.0, 200.0));
            i.key_intervals_ms = keys(rng, (4, 10), mean, cv);
            if rng.chance(v.pick(0.5, 0.3)) {
                i.tells.push(
                    rng.pick(&["cdp_runtime", "playwright_binding", "headless_renderer"])
                        .to_string(),
                );
            }
        }
    }
    i
}

/// The record as the page would send it (JSON).
pub fn to_json(i: &Interaction) -> serde_json::Value {
    json!({
        "pointer_moves": i.pointer_moves,
        "pointer_path_px": i.pointer_path_px,
        "pointer_span_px": i.pointer_span_px,
        "clicks": i.clicks,
        "jump_clicks": i.jump_clicks,
        "first_interaction_ms": i.first_interaction_ms,
        "solve_ms": i.solve_ms,
        "key_intervals_ms": i.key_intervals_ms,
        "focus_changes": i.focus_changes,
        "pastes": i.pastes,
        "webdriver": i.webdriver,
        "tells": i.tells,
    })
}

/// One record per client, as rows of the interaction schema (the
/// additive baseline's score as `rules_score`, absent when it says
/// nothing) with the raw records beside them.
pub fn records(sim: &Simulation) -> Vec<(Row, Interaction)> {
    let root = Rng::new(sim.options.seed ^ 0x696e_7465_7261);
    sim.clients
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let mut rng = root.fork(n as u64);
            let record = match c.input {
                Some(input) => person(&mut rng, sim.options.variant, input),
                None => bot(&mut rng, sim.options.variant),
            };
            let row = Row {
                client: c.id.clone(),
                actor: c.actor.as_str().to_string(),
                label: u8::from(c.actor.is_bot()),
                t: 0.0,
                features: record.features().to_vec(),
                rules_score: record.score(),
            };
            (row, record)
        })
        .collect()
}
