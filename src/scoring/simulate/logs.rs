//! The simulated traffic as access logs: Envoy's default format and the
//! combined format (nginx, Apache), and as the [`LogLine`]s a replay of
//! either log would read.

use super::{SimRequest, Simulation};
use crate::scoring::clock;
use crate::scoring::replay::{LogLine, Resolution};
use std::fmt::Write;

/// Which log a client's log features are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Envoy,
    Combined,
}

impl Format {
    /// The log the access-log rows of client `index` are read from: every
    /// other client's from each, so the log model learns from both what
    /// Envoy's log lacks (referrers) and what the combined log lacks
    /// (sub-second times), and does not lean on either.
    pub fn of_client(index: usize) -> Format {
        if index.is_multiple_of(2) {
            Format::Combined
        } else {
            Format::Envoy
        }
    }

    pub fn resolution(self) -> Resolution {
        match self {
            Format::Envoy => Resolution::Milliseconds,
            Format::Combined => Resolution::Seconds,
        }
    }
}

fn quoted(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.replace('\\', "\\\\").replace('"', "\\\"")
    }
}

fn bytes_sent(r: &SimRequest) -> u64 {
    match r.hit.status {
        200 => 512 + (r.t_ns % 40_000),
        304 => 0,
        _ => 153,
    }
}

/// One line in Envoy's default format:
/// `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"`.
pub fn envoy_line(sim: &Simulation, r: &SimRequest, n: usize) -> String {
    let ms = 1 + r.t_ns % 37;
    format!(
        "[{}] \"{} {} HTTP/1.1\" {} - 0 {} {ms} {ms} \"{}\" \"{}\" \"{:08x}-sim\" \"www.example.com\" \"10.0.0.2:8080\"\n",
        clock::format_rfc3339(r.t_ns),
        r.hit.method,
        r.hit.path,
        r.hit.status,
        bytes_sent(r),
        sim.clients[r.client].id,
        quoted(r.user_agent()),
        n,
    )
}

/// One line in the combined format:
/// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`.
pub fn combined_line(sim: &Simulation, r: &SimRequest) -> String {
    format!(
        "{} - - [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\"\n",
        sim.clients[r.client].id,
        clock::format_clf(r.t_ns),
        r.hit.method,
        r.hit.path,
        r.hit.status,
        bytes_sent(r),
        quoted(r.hit.referrer.as_deref().unwrap_or("")),
        quoted(r.user_agent()),
    )
}

/// The whole simulation as one log.
pub fn log(sim: &Simulation, format: Format) -> String {
    let mut out = String::with_capacity(sim.requests.len() * 200);
    for (n, r) in sim.requests.iter().enumerate() {
        let line = match format {
            Format::Envoy => envoy_line(sim, r, n),
            Format::Combined => combined_line(sim, r),
        };
        let _ = out.write_str(&line);
    }
    out
}

/// What a replay of the `format` log reads for `r`: whole seconds and the
/// referrer from the combined log, milliseconds and no referrer from Envoy's.
pub fn line_as_logged(sim: &Simulation, r: &SimRequest, format: Format) -> LogLine {
    let client = &sim.clients[r.client];
    let time_ns = match format {
        Format::Envoy => r.t_ns / 1_000_000 * 1_000_000,
        Format::Combined => r.t_ns / 1_000_000_000 * 1_000_000_000,
    };
    LogLine {
        client: client.id.clone(),
        ip: Some(client.ip),
        time_ns,
        method: r.hit.method.to_string(),
        path: r.hit.path.clone(),
        status: r.hit.status,
        has_referrer: format == Format::Combined && r.hit.referrer.is_some(),
        user_agent: r.user_agent().to_string(),
    }
}
