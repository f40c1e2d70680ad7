//! The public listener: challenge pages, media and answers under the
//! challenge prefix. Each handler reads the request, makes one domain call
//! on a blocking thread (stores and renderers block), and writes the
//! answer; `docs/challenge-api.md` is the contract.

use super::input::{self, BadInput, MAX_BODY};
use super::providers;
use super::{headers_as_text, now_ns, Loaded, Shared, REAL_IP};
use crate::challenge::hints::PageHead;
use crate::challenge::pages::{self, Notice};
use crate::challenge::second_look::Judgement;
use crate::challenge::service::{
    AskAgain, ChallengeFailure, Challenges, Client, Issued, Media, Refused, Request as Ask,
    Verified,
};
use crate::challenge::urls::Urls;
use crate::challenge::{self, Lang};
use crate::config::{ChallengeKind, StoreUnavailable};
// The proxy sets it (the filter, or nginx's `$remote_addr`); the public
// listener is reached only through the proxy, so it is trusted. Without it,
// the policy's `client` settings apply to the connection.
use crate::policy::{Request, VerifyOutcome, CLIENT_IP_HEADER};
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

/// Seconds a client is asked to wait when the store is down.
const RETRY_AFTER_S: u64 = 5;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(shared)
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
}

/// What the handlers need from the HTTP request, as text.
struct Incoming {
    method: Method,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    peer: IpAddr,
}

impl Incoming {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn wants_json(&self) -> bool {
        self.header("accept").contains("application/json")
    }

    fn lang(&self, asked: Option<Lang>) -> Lang {
        asked.unwrap_or_else(|| Lang::from_accept_language(self.header("accept-language")))
    }

    /// The engine's view of the request, with `headers` and the given
    /// connection address.
    fn request<'a>(
        &'a self,
        connection_ip: Option<IpAddr>,
        headers: &'a [(String, String)],
    ) -> Request<'a> {
        Request {
            method: self.method.as_str(),
            path: &self.path,
            query: &self.query,
            host: self.header("host"),
            headers: headers.into(),
            connection_ip,
        }
    }

    /// The client's address: as the filter decided it
    /// ([`CLIENT_IP_HEADER`]); or decided here per `client`, from the
    /// connection nginx reports (`X-Real-IP`, from a trusted peer) or the
    /// companion's own peer.
    fn client(&self, loaded: &Loaded) -> Client {
        let from_proxy = self.header(CLIENT_IP_HEADER).trim().parse::<IpAddr>().ok();
        let ip = from_proxy.or_else(|| {
            let connection = Some(self.peer)
                .filter(|&peer| loaded.policy.is_trusted_peer(peer))
                .and_then(|_| self.header(REAL_IP).trim().parse::<IpAddr>().ok())
                .unwrap_or(self.peer);
            loaded
                .policy
                .client_ip(&self.request(Some(connection), &self.headers))
        });
        Client {
            ip,
            user_agent: self.header("user-agent").to_string(),
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let incoming = Incoming {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: headers_as_text(&parts.headers),
        peer: peer.ip(),
    };
    let loaded = shared.current();
    let prefix = loaded.policy.challenge_config().path_prefix.clone();
    let Some(rest) = incoming.path.strip_prefix(&prefix).map(str::to_string) else {
        return json_reply(404, json!({"error": "not_found"}));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let get = matches!(incoming.method, Method::GET | Method::HEAD);
    let post = incoming.method == Method::POST;
    match segments.as_slice() {
        ["challenge"] if get => {
            let hints = crawler_hints(&shared, &loaded, &incoming).await;
            blocking(move || issue(&shared, &loaded, &incoming, hints.as_deref())).await
        }
        [providers::ALTCHA_SCRIPT] if get => altcha_widget(&loaded),
        // GET carries the solution in the query (the pages use it: no body
        // needed, see Policy::handle_own); POST in a form or JSON body.
        ["verify"] if post || get => {
            let body = match read_body(body).await {
                Ok(b) => b,
                Err(e) => return bad_input(&e),
            };
            blocking(move || verify_pow(&shared, &loaded, &incoming, &body)).await
        }
        ["challenge", id, "verify"] if post => {
            let id = id.to_string();
            let body = match read_body(body).await {
                Ok(b) => b,
                Err(e) => return bad_input(&e),
            };
            blocking(move || verify(&shared, &loaded, &incoming, &id, &body)).await
        }
        ["challenge", id, what @ ..] if get => {
            let media = match what {
                ["image"] => Some(Media::Image),
                ["audio"] => Some(Media::Audio),
                ["tile", n] => n.parse::<usize>().ok().filter(|&n| n < 64).map(Media::Tile),
                _ => None,
            };
            let Some(media) = media else {
                return json_reply(404, json!({"error": "not_found"}));
            };
            let id = id.to_string();
            blocking(move || render(&shared, &loaded, &id, media)).await
        }
        ["challenge"] | ["verify"] | ["challenge", ..] => {
            let allow = match segments.as_slice() {
                ["challenge"] => "GET, HEAD",
                ["verify"] => "GET, POST",
                _ if segments.len() > 3 => "GET, HEAD",
                _ => "POST",
            };
            let mut r = json_reply(405, json!({"error": "method_not_allowed", "allow": allow}));
            if let Ok(v) = allow.parse() {
                r.headers_mut().insert("allow", v);
            }
            r
        }
        _ => json_reply(404, json!({"error": "not_found"})),
    }
}

async fn read_body(body: Body) -> Result<Vec<u8>, BadInput> {
    to_bytes(body, MAX_BODY)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| BadInput::TooLarge)
}

/// Runs domain work off the async threads.
async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|_| json_reply(500, json!({"error": "internal"})))
}

fn challenges(loaded: &Loaded) -> Challenges<'_> {
    Challenges {
        policy: &loaded.policy,
        assets: &loaded.assets,
        store: loaded.store.as_ref(),
        providers: &loaded.providers,
    }
}

fn urls(loaded: &Loaded) -> Urls<'_> {
    Urls {
        prefix: &loaded.policy.challenge_config().path_prefix,
    }
}

/// The head of the page a challenge stands in for, when the client is a
/// crawler that gets crawler hints (`crawlers.hints`) and it has any.
async fn crawler_hints(
    shared: &Shared,
    loaded: &Loaded,
    incoming: &Incoming,
) -> Option<Arc<PageHead>> {
    let settings = loaded.policy.crawler_hints()?;
    let return_path = input::challenge_query(&incoming.query).ok()?.return_path;
    let client = incoming.client(loaded);
    let request = incoming.request(client.ip, &incoming.headers);
    if incoming.wants_json() || !loaded.policy.gets_crawler_hints(&request, client.ip) {
        return None;
    }
    let host = incoming.header("host");
    shared
        .hints
        .head(settings, host, &return_path, &shared.metrics)
        .await
}

/// `GET <prefix>challenge`: a new challenge, as a page or JSON (a page
/// for a crawler with `hints`, the head of the page it stands in for).
fn issue(
    shared: &Shared,
    loaded: &Loaded,
    incoming: &Incoming,
    hints: Option<&PageHead>,
) -> Response {
    let q = match input::challenge_query(&incoming.query) {
        Ok(q) => q,
        Err(e) => return bad_input(&e),
    };
    let defaults = loaded.policy.challenge_config();
    // A provider kind that is not configured cannot be asked for; the
    // default kind can (checked at load).
    let kind = q
        .kind
        .filter(|&k| loaded.providers.can_issue(k))
        .unwrap_or(defaults.kind);
    let ask = Ask {
        kind,
        difficulty: q.difficulty.unwrap_or(defaults.difficulty),
        lang: incoming.lang(q.lang),
        return_path: q.return_path,
    };
    let client = incoming.client(loaded);
    let json = incoming.wants_json();
    match issue_or_fallback(shared, loaded, &ask, &client) {
        Ok(issued) => challenge_reply(loaded, &issued, json, 200, None, hints),
        Err(failure) => failure_reply(shared, loaded, &failure, ask.lang, json),
    }
}

/// Issues `ask`, falling back to proof of work when the store is down and
/// the policy says so.
fn issue_or_fallback(
    shared: &Shared,
    loaded: &Loaded,
    ask: &Ask,
    client: &Client,
) -> Result<Issued, ChallengeFailure> {
    let c = challenges(loaded);
    let issued = match c.issue(ask, client, now_ns() / 1_000_000_000) {
        Err(ChallengeFailure::Store(e)) => {
            shared.metrics.store_error(loaded.store.name());
            tracing::warn!(error = %e, "store unavailable while issuing a challenge");
            match loaded.policy.companion().store_unavailable {
                StoreUnavailable::Pow => Ok(c.issue_pow(ask, client, now_ns() / 1_000_000_000)),
                StoreUnavailable::Unavailable => Err(ChallengeFailure::Store(e)),
            }
        }
        other => other,
    }?;
    let kind = match &issued {
        Issued::Pow { .. } => ChallengeKind::Pow,
        Issued::Stored { context, .. } => context.passed.kind,
    };
    shared.metrics.issued(kind);
    Ok(issued)
}

/// The proof-of-work page, with a crawler's hints in its head.
fn pow_page(ticket: &str, bits: u8, verify: &str, hints: Option<&PageHead>) -> String {
    match hints {
        Some(hints) => {
            let head = hints.to_html(challenge::pow::POW_TITLE);
            challenge::pow::page_with_head(ticket, bits, verify, &head)
        }
        None => challenge::page(ticket, bits, verify),
    }
}

/// A challenge as a page or as JSON (`docs/challenge-api.md`).
fn challenge_reply(
    loaded: &Loaded,
    issued: &Issued,
    json: bool,
    status: u16,
    notice: Option<Notice>,
    hints: Option<&PageHead>,
) -> Response {
    let urls = urls(loaded);
    match issued {
        Issued::Pow {
            ticket,
            bits,
            expires_at,
        } => {
            if !json {
                return reply(
                    status,
                    "text/html; charset=utf-8",
                    pow_page(ticket, *bits, &urls.pow_verify(), hints).into_bytes(),
                );
            }
            json_reply(
                status,
                json!({
                    "kind": "pow",
                    "prompt": "Find a nonce: SHA-256(data || nonce) with `difficulty` leading zero bits",
                    // The filter's Challenge API, unchanged.
                    "action": "challenge",
                    "challenge": {"kind": "pow", "algorithm": "sha256", "data": ticket, "difficulty": bits},
                    "verify": urls.pow_verify(),
                    "expires": expires_at,
                }),
            )
        }
        Issued::Stored {
            context,
            prompt,
            tiles,
        } => {
            if !json {
                let ttl = loaded.policy.companion().ttl.0;
                let page =
                    pages::challenge_page(issued, &loaded.providers, urls, ttl, notice, hints)
                        .unwrap_or_default();
                return reply(status, "text/html; charset=utf-8", page.into_bytes());
            }
            let id = &context.id;
            let kind = context.passed.kind;
            let mut media = serde_json::Map::new();
            match kind {
                ChallengeKind::Text | ChallengeKind::Chart => {
                    media.insert("image".into(), urls.image(id).into());
                }
                ChallengeKind::Audio => {
                    media.insert("audio".into(), urls.audio(id).into());
                }
                _ => {}
            }
            let mut body = json!({
                "id": id,
                "kind": kind,
                "difficulty": context.passed.difficulty,
                "lang": context.lang.code(),
                "prompt": prompt,
                "media": media,
                "verify": urls.verify(id),
                "expires": context.expires_at,
            });
            providers::describe(&loaded.providers, context, &mut body);
            if *tiles > 0 {
                body["choices"] = (0..*tiles)
                    .map(|n| json!({"index": n, "image": urls.tile(id, n)}))
                    .collect::<Vec<Value>>()
                    .into();
                body["multiple"] = (kind == ChallengeKind::Grid).into();
            }
            if kind == ChallengeKind::Chart {
                body["choices"] = challenge::chart::choices(&context.layout)
                    .into_iter()
                    .enumerate()
                    .map(|(n, text)| json!({"index": n, "text": text}))
                    .collect::<Vec<Value>>()
                    .into();
                body["multiple"] = false.into();
            }
            if kind != ChallengeKind::Audio {
                body["audio_alternative"] = urls
                    .challenge(
                        ChallengeKind::Audio,
                        context.passed.difficulty,
                        &context.return_path,
                    )
                    .into();
            }
            json_reply(status, body)
        }
    }
}

/// Locked out or store down, as a page or JSON.
fn failure_reply(
    shared: &Shared,
    loaded: &Loaded,
    failure: &ChallengeFailure,
    lang: Lang,
    json: bool,
) -> Response {
    match failure {
        ChallengeFailure::Locked { until, .. } => {
            shared.metrics.locked_request();
            let (status, message) = loaded.policy.default_block();
            if json {
                json_reply(
                    status,
                    json!({"error": "locked", "until": until, "message": message}),
                )
            } else {
                reply(
                    status,
                    "text/html; charset=utf-8",
                    pages::message_page(lang, true).into_bytes(),
                )
            }
        }
        _ => {
            let mut r = if json {
                json_reply(
                    503,
                    json!({"error": "unavailable", "message": failure.to_string()}),
                )
            } else {
                reply(
                    503,
                    "text/html; charset=utf-8",
                    pages::message_page(lang, false).into_bytes(),
                )
            };
            if let Ok(v) = RETRY_AFTER_S.to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            r
        }
    }
}

/// `GET <prefix>challenge/ID/{image,audio,tile/N}`: rendered afresh.
fn render(shared: &Shared, loaded: &Loaded, id: &str, media: Media) -> Response {
    let started = Instant::now();
    match challenges(loaded).media(id, media, now_ns() / 1_000_000_000) {
        Ok(rendered) => {
            shared
                .metrics
                .rendered(rendered.kind, started.elapsed().as_secs_f64());
            let mut r = reply(200, rendered.content_type, rendered.bytes);
            if let Ok(v) = "nosniff".parse() {
                r.headers_mut().insert("x-content-type-options", v);
            }
            r
        }
        Err(ChallengeFailure::Expired) => json_reply(410, json!({"error": "expired"})),
        Err(ChallengeFailure::Store(e)) => {
            shared.metrics.store_error(loaded.store.name());
            json_reply(
                503,
                json!({"error": "unavailable", "message": e.to_string()}),
            )
        }
        Err(e) => json_reply(404, json!({"error": e.label()})),
    }
}

/// `POST <prefix>challenge/ID/verify`.
fn verify(
    shared: &Shared,
    loaded: &Loaded,
    incoming: &Incoming,
    id: &str,
    body: &[u8],
) -> Response {
    let content_type = incoming.header("content-type");
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let json = !form || incoming.wants_json();
    let answer = match input::answer(content_type, body) {
        Ok(a) => a,
        Err(e) => return bad_input(&e),
    };
    let client = incoming.client(loaded);
    let now = now_ns() / 1_000_000_000;
    let c = challenges(loaded);
    let client_key = c.client_key(&client);
    let policy = &loaded.policy;
    let host = incoming.header("host");
    let verified = c
        .verify_by(id, &client, now, |ctx| {
            providers::judge_answer(&shared.siteverify, &c, ctx, &answer, &client, host, now)
        })
        .and_then(|v| second_look(shared, loaded, &v, content_type, body, &client_key).map(|()| v));
    match verified {
        Ok(v) => {
            shared.metrics.solved(v.passed.kind, v.solve_s);
            challenge_outcome(shared, loaded, client.ip, true);
            tracing::info!(
                event = "verify",
                outcome = "solved",
                kind = v.passed.kind.as_str(),
                difficulty = v.passed.difficulty,
                solve_s = v.solve_s,
                client = %client_key,
            );
            let cookie = policy.pass_cookie(&v.token);
            let mut r = if json {
                json_reply(
                    200,
                    json!({"token": v.token, "expires": v.expires_at, "return": v.return_path}),
                )
            } else {
                let mut r = reply(303, "text/plain; charset=utf-8", Vec::new());
                if let Ok(loc) = v.return_path.parse() {
                    r.headers_mut().insert("location", loc);
                }
                r
            };
            if let Ok(cookie) = cookie.parse() {
                r.headers_mut().insert("set-cookie", cookie);
            }
            r
        }
        Err(Refused { failure, challenge }) => {
            let kind = challenge.as_ref().map(|c| c.passed.kind);
            // A second look counts and logs its own verdict.
            if !matches!(failure, ChallengeFailure::AskAgain(_)) {
                record_refusal(shared, loaded, &failure, kind, &client_key);
            }
            // Answers a person would not give count against the client.
            if matches!(
                failure,
                ChallengeFailure::WrongAnswer | ChallengeFailure::AskAgain(_)
            ) {
                challenge_outcome(shared, loaded, client.ip, false);
            }
            if matches!(
                failure,
                ChallengeFailure::Locked { .. } | ChallengeFailure::Store(_)
            ) {
                let lang = challenge.map_or_else(|| incoming.lang(None), |c| c.lang);
                return failure_reply(shared, loaded, &failure, lang, json);
            }
            // Offer another of the same sort (or the defaults, for an id
            // that is not ours; or the provider's fallback).
            let ask = match &challenge {
                Some(c) => Ask {
                    kind: c.passed.kind,
                    difficulty: c.passed.difficulty,
                    lang: c.lang,
                    return_path: c.return_path.clone(),
                },
                None => Ask {
                    kind: policy.challenge_config().kind,
                    difficulty: policy.challenge_config().difficulty,
                    lang: incoming.lang(None),
                    return_path: "/".to_string(),
                },
            };
            let ask = match &failure {
                ChallengeFailure::ProviderUnavailable { fallback, .. } => Ask {
                    kind: *fallback,
                    ..ask
                },
                _ => ask,
            };
            if json {
                return json_reply(
                    403,
                    json!({
                        "error": failure.label(),
                        "retry": urls(loaded).challenge(ask.kind, ask.difficulty, &ask.return_path),
                    }),
                );
            }
            let ask = match &failure {
                ChallengeFailure::AskAgain(again) => Ask {
                    kind: again.next.kind,
                    difficulty: again.next.difficulty,
                    lang: again.lang,
                    return_path: again.return_path.clone(),
                },
                _ => ask,
            };
            let notice = match failure {
                ChallengeFailure::AskAgain(_) => Some(Notice::AskAgain),
                ChallengeFailure::Expired => Some(Notice::Expired),
                ChallengeFailure::Used => Some(Notice::Used),
                ChallengeFailure::WrongAnswer => Some(Notice::WrongAnswer),
                // Not the visitor's doing: just the other challenge.
                ChallengeFailure::ProviderUnavailable { .. } => None,
                _ => Some(Notice::Unknown),
            };
            match issue_or_fallback(shared, loaded, &ask, &client) {
                Ok(issued) => challenge_reply(loaded, &issued, false, 403, notice, None),
                Err(e) => failure_reply(shared, loaded, &e, ask.lang, false),
            }
        }
    }
}

/// The second look at a right answer (see
/// [`crate::challenge::second_look`]): `Err` with
/// the challenge to ask next when the page was solved like a script.
fn second_look(
    shared: &Shared,
    loaded: &Loaded,
    verified: &Verified,
    content_type: &str,
    body: &[u8],
    client: &str,
) -> Result<(), Refused> {
    if !loaded.policy.scoring().enabled {
        return Ok(());
    }
    let record = input::interaction(content_type, body);
    match loaded.second_look.judge(verified.passed, record.as_ref()) {
        Judgement::Pass { score } => {
            shared
                .metrics
                .interaction(if score.is_some() { "person" } else { "none" });
            Ok(())
        }
        Judgement::AskAgain { next, score } => {
            shared.metrics.interaction("bot");
            tracing::info!(
                event = "interaction",
                outcome = "ask_again",
                score,
                kind = verified.passed.kind.as_str(),
                next = next.kind.as_str(),
                difficulty = next.difficulty,
                client,
            );
            Err(Refused {
                failure: ChallengeFailure::AskAgain(AskAgain {
                    next,
                    lang: verified.lang,
                    return_path: verified.return_path.clone(),
                }),
                challenge: None,
            })
        }
    }
}

/// A challenge outcome into the client's behaviour, reputation and (capped)
/// labels: see [`super::scoring::Scoring::challenge_outcome`].
fn challenge_outcome(shared: &Shared, loaded: &Loaded, ip: Option<IpAddr>, passed: bool) {
    shared
        .scoring
        .challenge_outcome(&loaded.policy, ip, passed, &shared.metrics, now_ns());
}

/// Counts and logs a refused answer.
fn record_refusal(
    shared: &Shared,
    loaded: &Loaded,
    failure: &ChallengeFailure,
    kind: Option<ChallengeKind>,
    client: &str,
) {
    let m = &shared.metrics;
    let kind_label = kind.map_or("unknown", ChallengeKind::as_str);
    match failure {
        ChallengeFailure::Expired => m.expired(kind.unwrap_or(ChallengeKind::Pow)),
        ChallengeFailure::Locked { until, locked_now } => {
            if *locked_now {
                m.lockout();
                tracing::warn!(event = "lockout", client, until, kind = kind_label);
            } else {
                m.locked_request();
            }
        }
        ChallengeFailure::Store(_) => m.store_error(loaded.store.name()),
        // A refusal for an id that is not ours has no kind; it counts
        // under `pow`, as expired ones do.
        other => m.failed(kind.unwrap_or(ChallengeKind::Pow), other.label()),
    }
    tracing::info!(
        event = "verify",
        outcome = failure.label(),
        kind = kind_label,
        client
    );
}

/// `GET`/`POST <prefix>verify`: proof of work, exactly as the filter verifies it.
fn verify_pow(shared: &Shared, loaded: &Loaded, incoming: &Incoming, body: &[u8]) -> Response {
    let client = incoming.client(loaded);
    // The client address is decided; the engine must not re-read it from
    // forwarding headers.
    let headers: Vec<(String, String)> = incoming
        .headers
        .iter()
        .filter(|(n, _)| n != "x-forwarded-for")
        .cloned()
        .collect();
    let req = incoming.request(client.ip, &headers);
    let (response, outcome) = loaded.policy.handle_own(&req, body, now_ns());
    match outcome {
        VerifyOutcome::Passed => {
            shared.metrics.solved(ChallengeKind::Pow, 0);
            challenge_outcome(shared, loaded, client.ip, true);
            tracing::info!(event = "verify", outcome = "solved", kind = "pow");
        }
        VerifyOutcome::Failed(e) => {
            shared.metrics.failed(ChallengeKind::Pow, e.label());
            challenge_outcome(shared, loaded, client.ip, false);
            tracing::info!(event = "verify", outcome = e.label(), kind = "pow");
        }
        VerifyOutcome::BadRequest => {}
    }
    let mut r = reply(
        response.status,
        "application/octet-stream",
        response.body.into_bytes(),
    );
    for (name, value) in &response.headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::try_from(name.as_str()),
            axum::http::HeaderValue::try_from(value.as_str()),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}

/// `GET <prefix>altcha.js`: the vendored ALTCHA widget.
fn altcha_widget(loaded: &Loaded) -> Response {
    match &loaded.altcha_widget {
        Some(script) => {
            let mut r = reply(200, "text/javascript; charset=utf-8", script.to_vec());
            if let Ok(v) = "public, max-age=3600".parse() {
                r.headers_mut().insert("cache-control", v);
            }
            r
        }
        None => json_reply(404, json!({"error": "not_found"})),
    }
}

fn bad_input(e: &BadInput) -> Response {
    let (status, label) = e.status_and_label();
    json_reply(status, json!({"error": label, "message": e.to_string()}))
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert("content-type", v);
    }
    if let Ok(v) = "no-store".parse() {
        r.headers_mut().insert("cache-control", v);
    }
    r
}

fn json_reply(status: u16, value: Value) -> Response {
    reply(status, "application/json", value.to_string().into_bytes())
}
