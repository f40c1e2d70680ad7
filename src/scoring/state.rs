//! One client's behaviour, in [`STATE_BYTES`] plain bytes: decayed counters
//! and a path sketch, updated on each request and each response.
//!
//! Counters decay exponentially with time constant [`SHORT_WINDOW_S`] or
//! [`LONG_WINDOW_S`] rather than living in time buckets: one multiply per
//! counter per update, no per-request list, and a fixed size any host can
//! store (proxy-wasm shared data, process memory, a log replay). At a
//! steady rate `r`, a counter with time constant `τ` settles at `r × τ`,
//! so `counter / τ` is the rate over that window.

/// The short window's time constant, seconds.
pub const SHORT_WINDOW_S: f32 = 10.0;
/// The long window's time constant, seconds.
pub const LONG_WINDOW_S: f32 = 300.0;

/// Weight of the newest inter-arrival time in the timing averages: about
/// the last ten arrivals count.
const TIMING_WEIGHT: f32 = 0.2;
/// A host that pays to read an answer's status reads one in this many of
/// a client's answers while the client has no recent errors (see
/// [`ClientState::watches_status`]).
pub const STATUS_SAMPLE: u32 = 8;
/// The `errors` count above which every answer is read: one 4xx decays
/// below it in about 15 minutes (`LONG_WINDOW_S × ln 20`).
const ERRORS_WATCHED: f32 = 0.05;

/// Path-sketch buckets.
const SKETCH: usize = 16;

/// Size of a serialized [`ClientState`].
pub const STATE_BYTES: usize = 8 + 8 + 4 + 4 * COUNTERS + SKETCH;
const COUNTERS: usize = 15;

/// Extensions of what a browser fetches after a page.
const ASSET_EXTENSIONS: &[&str] = &[
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg", "wav",
];

/// Decayed counters (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counters {
    /// Requests, short window.
    pub short: f32,
    /// Requests, long window; the denominator of every share.
    pub long: f32,
    /// The highest `short` reached, decaying with the long window.
    pub peak: f32,
    pub assets: f32,
    pub errors: f32,
    pub failed_logins: f32,
    pub challenges_failed: f32,
    pub challenges_passed: f32,
    pub heads: f32,
    pub robots: f32,
    pub referrers: f32,
    pub logins: f32,
    /// Averages of inter-arrival time and its square, seconds.
    mean_gap: f32,
    mean_gap_sq: f32,
    /// Inter-arrival times seen, up to 255 (only "fewer than 3" matters).
    gaps: f32,
}

impl Counters {
    fn as_array(&self) -> [f32; COUNTERS] {
        [
            self.short,
            self.long,
            self.peak,
            self.assets,
            self.errors,
            self.failed_logins,
            self.challenges_failed,
            self.challenges_passed,
            self.heads,
            self.robots,
            self.referrers,
            self.logins,
            self.mean_gap,
            self.mean_gap_sq,
            self.gaps,
        ]
    }

    fn from_array(a: [f32; COUNTERS]) -> Counters {
        let [short, long, peak, assets, errors, failed_logins, challenges_failed, challenges_passed, heads, robots, referrers, logins, mean_gap, mean_gap_sq, gaps] =
            a;
        Counters {
            short,
            long,
            peak,
            assets,
            errors,
            failed_logins,
            challenges_failed,
            challenges_passed,
            heads,
            robots,
            referrers,
            logins,
            mean_gap,
            mean_gap_sq,
            gaps,
        }
    }

    /// Decays every windowed counter by `dt` seconds.
    fn decay(&mut self, dt: f32) {
        let short = (-dt / SHORT_WINDOW_S).exp();
        let long = (-dt / LONG_WINDOW_S).exp();
        self.short *= short;
        for c in [
            &mut self.long,
            &mut self.peak,
            &mut self.assets,
            &mut self.errors,
            &mut self.failed_logins,
            &mut self.challenges_failed,
            &mut self.challenges_passed,
            &mut self.heads,
            &mut self.robots,
            &mut self.referrers,
            &mut self.logins,
        ] {
            *c *= long;
        }
    }
}

/// One request, as the features need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation<'a> {
    pub method: &'a str,
    /// The path, with or without its query.
    pub path: &'a str,
    pub has_referrer: bool,
    /// The request is on a route marked `login` (or, in an access log, on
    /// a path that looks like one; see [`looks_like_login`]).
    pub login: bool,
}

impl<'a> Observation<'a> {
    /// A `GET` of `path` without a referrer, off login routes: the plain
    /// request that tests and examples count.
    pub fn get(path: &'a str) -> Observation<'a> {
        Observation {
            method: "GET",
            path,
            has_referrer: false,
            login: false,
        }
    }

    /// `request`, on a route marked `login` or not.
    pub fn of(request: &crate::policy::Request<'a>, login: bool) -> Observation<'a> {
        Observation {
            method: request.method,
            path: request.path,
            has_referrer: request.header("referer").is_some(),
            login,
        }
    }
}

/// A request as [`ClientState::count`] counts it: what the state keeps of
/// an [`Observation`] (which of the counted kinds it is, and its path's
/// sketch bucket), in two owned bytes, so that a host can hold requests
/// and count them later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sighting {
    flags: u8,
    bucket: u8,
}

impl Sighting {
    const ASSET: u8 = 1;
    const HEAD: u8 = 2;
    const ROBOTS: u8 = 4;
    const REFERRER: u8 = 8;
    const LOGIN: u8 = 16;

    pub fn of(request: &Observation) -> Sighting {
        let path = request.path.split('?').next().unwrap_or(request.path);
        let flag = |b: bool, f: u8| if b { f } else { 0 };
        Sighting {
            flags: flag(is_asset(request.path), Sighting::ASSET)
                | flag(request.method.eq_ignore_ascii_case("HEAD"), Sighting::HEAD)
                | flag(path == "/robots.txt", Sighting::ROBOTS)
                | flag(request.has_referrer, Sighting::REFERRER)
                | flag(request.login, Sighting::LOGIN),
            bucket: (fnv1a(path.as_bytes()) % SKETCH as u64) as u8,
        }
    }
}

/// Whether a path looks like a login endpoint, for access logs, which
/// carry no route: a path segment naming login, sign-in, auth or session.
pub fn looks_like_login(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path).to_ascii_lowercase();
    path.split('/').any(|segment| {
        [
            "login",
            "log-in",
            "signin",
            "sign-in",
            "sign_in",
            "logon",
            "auth",
            "session",
            "sessions",
            "wp-login.php",
            "token",
            "oauth",
        ]
        .iter()
        .any(|w| segment == *w || segment.starts_with(&format!("{w}.")))
    })
}

/// Whether a path names an asset (by its extension).
pub fn is_asset(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let last = path.rsplit('/').next().unwrap_or(path);
    last.rsplit_once('.')
        .is_some_and(|(_, ext)| ASSET_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(ext)))
}

/// A client's behaviour so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClientState {
    /// Whose state this is (a hash of the client's prefix); 0 is empty.
    pub tag: u64,
    /// The last request, nanoseconds since the Unix epoch.
    last_ns: u64,
    /// Requests seen, saturating.
    seen: u32,
    counters: Counters,
    sketch: [u8; SKETCH],
}

impl ClientState {
    /// An empty state owned by `tag`.
    pub fn new(tag: u64) -> ClientState {
        ClientState {
            tag,
            ..ClientState::default()
        }
    }

    pub fn seen(&self) -> u32 {
        self.seen
    }

    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    fn seconds_since(&self, now_ns: u64) -> f32 {
        now_ns.saturating_sub(self.last_ns) as f32 / 1e9
    }

    /// The counters as they stand at `now_ns` (decayed since the last request).
    pub fn decayed(&self, now_ns: u64) -> Counters {
        let mut c = self.counters;
        if self.seen > 0 {
            c.decay(self.seconds_since(now_ns));
        }
        c
    }

    /// Counts a request at `now_ns`.
    pub fn observe(&mut self, request: &Observation, now_ns: u64) {
        self.count(Sighting::of(request), now_ns);
    }

    /// Counts a request at `now_ns`, as [`Sighting::of`] kept it.
    ///
    /// A time before the last request's is possible where requests counted
    /// apart are merged (the Envoy filter's workers, each folding its own
    /// requests into the shared slot: see [`super::local`]). Such a request
    /// is counted as of the last request, with nothing decayed and no
    /// inter-arrival time: its gap to the request before it is unknown, and
    /// counting it as 0 would make a steady client look irregular.
    pub fn count(&mut self, request: Sighting, now_ns: u64) {
        let c = &mut self.counters;
        if let Some(gap_ns) = now_ns.checked_sub(self.last_ns).filter(|_| self.seen > 0) {
            let dt = gap_ns as f32 / 1e9;
            c.decay(dt);
            if c.gaps == 0.0 {
                c.mean_gap = dt;
                c.mean_gap_sq = dt * dt;
            } else {
                c.mean_gap += TIMING_WEIGHT * (dt - c.mean_gap);
                c.mean_gap_sq += TIMING_WEIGHT * (dt * dt - c.mean_gap_sq);
            }
            c.gaps = (c.gaps + 1.0).min(255.0);
        }
        c.short += 1.0;
        c.long += 1.0;
        c.peak = c.peak.max(c.short);
        let flag = |f: u8| if request.flags & f != 0 { 1.0 } else { 0.0 };
        c.assets += flag(Sighting::ASSET);
        c.heads += flag(Sighting::HEAD);
        c.robots += flag(Sighting::ROBOTS);
        c.referrers += flag(Sighting::REFERRER);
        c.logins += flag(Sighting::LOGIN);
        self.add_to_sketch(request.bucket);
        self.seen = self.seen.saturating_add(1);
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Whether a host for which reading an answer's status costs something
    /// (the Envoy filter: a host call, about 1 µs) should read the answer
    /// to the request just observed: on a login route, and for a client
    /// with a recent 4xx, always; otherwise one answer in [`STATUS_SAMPLE`],
    /// the client's first among them. So a client that starts failing is
    /// watched from its next sampled answer on: at most
    /// `STATUS_SAMPLE - 1` of its first errors go uncounted, and no error
    /// is ever counted that did not happen, while a client without errors
    /// costs one read in eight.
    pub fn watches_status(&self, login: bool) -> bool {
        login || self.counters.errors > ERRORS_WATCHED || self.seen % STATUS_SAMPLE == 1
    }

    /// Counts the answer to a request on a login route or not. Only 4xx
    /// answers change anything (errors, and failed logins: 401 or 403 on a
    /// login route); the return says whether this one did, so a host can
    /// skip storing the state again for the ordinary answer.
    pub fn observe_response(&mut self, status: u16, login: bool) -> bool {
        if !(400..500).contains(&status) {
            return false;
        }
        let c = &mut self.counters;
        c.errors += 1.0;
        if login && (status == 401 || status == 403) {
            c.failed_logins += 1.0;
        }
        true
    }

    /// Counts a challenge outcome.
    pub fn observe_challenge(&mut self, passed: bool) {
        if passed {
            self.counters.challenges_passed += 1.0;
        } else {
            self.counters.challenges_failed += 1.0;
        }
    }

    /// The coefficient of variation of recent inter-arrival times; `None`
    /// before three gaps.
    pub fn timing_cv(&self) -> Option<f32> {
        let c = &self.counters;
        if c.gaps < 3.0 {
            return None;
        }
        if c.mean_gap <= 1e-6 {
            return Some(0.0);
        }
        let variance = (c.mean_gap_sq - c.mean_gap * c.mean_gap).max(0.0);
        Some(variance.sqrt() / c.mean_gap)
    }

    /// The sketch's entropy over `log2(16)`, in `[0, 1]`.
    pub fn path_entropy(&self) -> f32 {
        let total: f32 = self.sketch.iter().map(|&n| f32::from(n)).sum();
        if total == 0.0 {
            return 0.0;
        }
        let h: f32 = self
            .sketch
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| {
                let p = f32::from(n) / total;
                -p * p.log2()
            })
            .sum();
        (h / (SKETCH as f32).log2()).clamp(0.0, 1.0)
    }

    fn add_to_sketch(&mut self, bucket: u8) {
        let bucket = usize::from(bucket);
        // Halving keeps the sketch about the last few hundred paths.
        if self.sketch.get(bucket) == Some(&u8::MAX) {
            for n in &mut self.sketch {
                *n /= 2;
            }
        }
        if let Some(n) = self.sketch.get_mut(bucket) {
            *n += 1;
        }
    }

    /// Little-endian: tag, last_ns, seen, the counters, the sketch.
    pub fn to_bytes(&self) -> [u8; STATE_BYTES] {
        let mut out = [0u8; STATE_BYTES];
        let mut w = Writer(&mut out, 0);
        w.put(&self.tag.to_le_bytes());
        w.put(&self.last_ns.to_le_bytes());
        w.put(&self.seen.to_le_bytes());
        for c in self.counters.as_array() {
            w.put(&c.to_le_bytes());
        }
        w.put(&self.sketch);
        out
    }

    /// The inverse of [`ClientState::to_bytes`]; `None` for another size.
    pub fn from_bytes(bytes: &[u8]) -> Option<ClientState> {
        if bytes.len() != STATE_BYTES {
            return None;
        }
        let mut r = Reader(bytes);
        let tag = u64::from_le_bytes(r.take()?);
        let last_ns = u64::from_le_bytes(r.take()?);
        let seen = u32::from_le_bytes(r.take()?);
        let mut counters = [0f32; COUNTERS];
        for c in &mut counters {
            *c = f32::from_le_bytes(r.take()?);
            if !c.is_finite() {
                return None;
            }
        }
        Some(ClientState {
            tag,
            last_ns,
            seen,
            counters: Counters::from_array(counters),
            sketch: r.take()?,
        })
    }
}

struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.0.get_mut(self.1..self.1 + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.1 += bytes.len();
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
}

/// FNV-1a: stable across builds and hosts, which shared state needs.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn bytes_round_trip_and_refuse_other_sizes_and_non_finite_counters() {
        let mut s = ClientState::new(7);
        for i in 0..20 {
            s.observe(&Observation::get(&format!("/p/{i}.css")), i * S / 3);
            s.observe_response(if i % 4 == 0 { 404 } else { 200 }, false);
        }
        s.observe_challenge(false);
        let bytes = s.to_bytes();
        assert_eq!(ClientState::from_bytes(&bytes), Some(s));
        assert_eq!(ClientState::from_bytes(&bytes[1..]), None);
        let mut broken = bytes;
        broken[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(ClientState::from_bytes(&broken), None);
    }

    #[test]
    fn a_steady_rate_settles_at_rate_times_window() {
        let mut s = ClientState::new(1);
        for i in 0..3000 {
            s.observe(&Observation::get("/"), i * S / 2); // 2 per second for 25 minutes
        }
        let c = s.decayed(2999 * S / 2);
        assert!((c.short / SHORT_WINDOW_S - 2.0).abs() < 0.15, "{}", c.short);
        assert!((c.long / LONG_WINDOW_S - 2.0).abs() < 0.15, "{}", c.long);
    }

    #[test]
    fn a_clockwork_client_has_a_lower_timing_cv_than_an_irregular_one() {
        let mut clockwork = ClientState::new(1);
        let mut person = ClientState::new(2);
        let gaps = [
            0.2, 9.0, 0.1, 0.1, 25.0, 3.0, 0.3, 14.0, 0.2, 6.0, 40.0, 0.1,
        ];
        let mut t = 0.0f64;
        for (i, gap) in gaps.iter().enumerate() {
            clockwork.observe(&Observation::get("/"), i as u64 * 2 * S);
            t += gap;
            person.observe(&Observation::get("/"), (t * 1e9) as u64);
        }
        assert!(clockwork.timing_cv().unwrap() < 0.01);
        assert!(person.timing_cv().unwrap() > 1.0);
        assert_eq!(ClientState::new(3).timing_cv(), None);
    }

    #[test]
    fn a_request_out_of_time_order_is_counted_without_a_gap_or_a_decay() {
        let mut s = ClientState::new(1);
        for i in 0..10 {
            s.observe(&Observation::get("/"), 10 * S + i * S / 10); // clockwork, 10 per second
        }
        let before = s;
        // Another worker's request from 50 ms before the last one, merged late.
        s.observe(&Observation::get("/"), 10 * S + 9 * S / 10 - S / 20);
        assert_eq!(s.last_ns(), before.last_ns());
        assert_eq!(s.seen(), before.seen() + 1);
        assert_eq!(s.timing_cv(), before.timing_cv(), "no gap counted");
        let (now, after) = (before.last_ns(), s.decayed(before.last_ns()));
        assert_eq!(after.short, before.decayed(now).short + 1.0);
        assert_eq!(after.long, before.decayed(now).long + 1.0);
        // Even one from before the epoch of the state (time 0) is harmless.
        s.observe(&Observation::get("/"), 0);
        assert!(s.timing_cv().unwrap() < 0.01);
    }

    #[test]
    fn many_distinct_paths_have_more_entropy_than_one() {
        let mut crawler = ClientState::new(1);
        let mut poller = ClientState::new(2);
        for i in 0..200u64 {
            crawler.observe(&Observation::get(&format!("/item/{i}")), i * S);
            poller.observe(&Observation::get("/status"), i * S);
        }
        assert!(crawler.path_entropy() > 0.9);
        assert_eq!(poller.path_entropy(), 0.0);
    }

    #[test]
    fn assets_and_login_paths_are_recognised() {
        assert!(is_asset("/static/app.min.JS?v=3"));
        assert!(is_asset("/img/logo.png"));
        assert!(!is_asset("/products/42"));
        assert!(!is_asset("/css/"));
        assert!(looks_like_login("/account/login"));
        assert!(looks_like_login("/wp-login.php"));
        assert!(looks_like_login("/api/v1/auth?x=1"));
        assert!(!looks_like_login("/blog/logins-explained"));
    }

    #[test]
    fn failed_logins_count_only_401_and_403_on_login_routes() {
        let mut s = ClientState::new(1);
        assert!(s.observe_response(401, true));
        assert!(s.observe_response(403, true));
        assert!(s.observe_response(401, false));
        assert!(!s.observe_response(200, true));
        let c = s.decayed(0);
        assert_eq!(c.failed_logins, 2.0);
        assert_eq!(c.errors, 3.0);
    }

    #[test]
    fn statuses_are_sampled_until_a_client_errs_then_all_are_read() {
        let mut s = ClientState::new(1);
        let watched = |s: &mut ClientState, from: u64, n: u64| {
            (from..from + n)
                .filter(|i| {
                    s.observe(&Observation::get("/a"), i * S / 10);
                    s.watches_status(false)
                })
                .count()
        };
        // Clean: the first answer and one in eight after it; a login route always.
        assert_eq!(watched(&mut s, 0, 16), 2);
        assert!(s.watches_status(true));
        // One 4xx: every answer is read from then on, until it decays.
        assert!(s.observe_response(404, false));
        assert_eq!(watched(&mut s, 16, 16), 16);
        let much_later = 3_600 * 10;
        assert_eq!(watched(&mut s, much_later, 16), 2);
    }
}
