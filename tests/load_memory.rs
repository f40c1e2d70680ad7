//! How much heap loading the benchmark policy takes: its peak, and what
//! the compiled policy keeps.
//!
//! The peak matters more than it looks: a wasm VM's linear memory never
//! shrinks, so the filter keeps its load-time peak for as long as the VM
//! lives, once per Envoy worker. This binary counts every allocation (a
//! counting global allocator; one test, so nothing else allocates at the
//! same time) while `Policy::from_json` loads the benchmark policy
//! (`benches/support/policy.rs`: 1,000 routes, 100 rules, 200,000 CIDRs),
//! and prints the figures (`cargo test --test load_memory -- --nocapture`).
//! Native pointers are twice as wide as wasm32's, so these figures are an
//! upper bound on the filter's heap for the same policy.

#[path = "../benches/support/policy.rs"]
#[allow(dead_code)] // the benchmark's landmarks are not used here
mod bench_policy;

use palisade::config::Config;
use palisade::policy::{Policy, ProcessEnv};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live now and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        q
    }
}

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap figures of one step, relative to the heap live before it.
struct Step {
    peak: usize,
    kept: usize,
}

/// Runs `f`, returning its result and how much heap it peaked at and kept
/// (while the result is alive).
fn measure<T>(f: impl FnOnce() -> T) -> (T, Step) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    let step = Step {
        peak: PEAK.load(Ordering::Relaxed) - before,
        kept: LIVE.load(Ordering::Relaxed).saturating_sub(before),
    };
    (out, step)
}

const MIB: f64 = 1024.0 * 1024.0;

/// Generous bounds (native figures), so that a change that brings back an
/// intermediate copy of the lists or the document fails here rather than
/// in an Envoy benchmark.
const MAX_PEAK: usize = 16 << 20;
const MAX_KEPT: usize = 12 << 20;

#[test]
fn loading_the_benchmark_policy_peaks_within_bounds() {
    let text = bench_policy::policy().to_string();
    let (config, parse) = measure(|| Config::from_json(&text).expect("benchmark policy parses"));
    drop(config);
    let (policy, load) =
        measure(|| Policy::from_json(&text, &ProcessEnv).expect("benchmark policy compiles"));
    println!(
        "benchmark policy, {:.1} MiB of JSON: Config::from_json peaks at {:.1} MiB and keeps {:.1} MiB; \
         Policy::from_json peaks at {:.1} MiB and keeps {:.1} MiB",
        text.len() as f64 / MIB,
        parse.peak as f64 / MIB,
        parse.kept as f64 / MIB,
        load.peak as f64 / MIB,
        load.kept as f64 / MIB,
    );
    assert!(policy.summary().routes >= bench_policy::ROUTES);
    assert!(load.peak <= MAX_PEAK, "peak {} bytes", load.peak);
    assert!(load.kept <= MAX_KEPT, "kept {} bytes", load.kept);
}
