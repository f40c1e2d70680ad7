//! `palisade datasets refresh` against a local HTTP server: a list that
//! parses is swapped in, a corrupt or truncated one leaves the old file.

use palisade::reputation::{self, refresh};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// Serves `routes` (path -> body) over HTTP/1.0 until the test ends.
fn serve(routes: Vec<(&'static str, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            // Drain the headers.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let mut stream = reader.into_inner();
            let reply = match routes.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
                None => "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    format!("http://{addr}")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-refresh-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Tor-style list: one address per line, as the bulk exit list is.
fn exit_list(n: u32) -> String {
    (0..n)
        .map(|i| format!("198.51.{}.{}\n", i / 200, i % 200 + 1))
        .collect()
}

#[test]
fn only_a_list_that_parses_is_swapped_in() {
    // The shipped cloud list stands in for a good firehol_level1 copy.
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/datasets/networks/aws.txt"
    ))
    .unwrap();
    let base = serve(vec![
        ("/tor", exit_list(400)),
        ("/level1", good.clone()),
        (
            "/corrupt",
            "<html><body>rate limited</body></html>\n".to_string(),
        ),
        ("/short", exit_list(5)),
    ]);
    let dir = temp_dir("swap");
    // Every list starts as its shipped file.
    for s in &reputation::SOURCES {
        std::fs::write(dir.join(format!("{}.txt", s.name)), s.embedded).unwrap();
    }
    let src = |name| reputation::source(name).unwrap();
    let outcomes = refresh::refresh(
        &dir,
        &[
            (src("tor"), format!("{base}/tor")),
            (src("firehol_level1"), format!("{base}/level1")),
            (src("vpn"), format!("{base}/corrupt")),
            (src("stopforumspam_toxic"), format!("{base}/short")),
        ],
        "2026-12-01",
        &refresh::curl,
    );
    let result = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.name == name)
            .unwrap()
            .result
            .clone()
    };
    assert_eq!(result("tor"), Ok(400));
    assert!(result("firehol_level1").unwrap() > 3000);
    let corrupt = result("vpn").unwrap_err();
    assert!(
        corrupt.contains("line 1") && corrupt.contains("not an IP address"),
        "{corrupt}"
    );
    assert!(result("stopforumspam_toxic")
        .unwrap_err()
        .contains("fewer than"));

    // Swapped: the new file parses, with its header.
    let tor = std::fs::read_to_string(dir.join("tor.txt")).unwrap();
    assert!(tor.contains("# Data as of: 2026-12-01"), "{tor}");
    assert!(tor.contains("# Source: http://127.0.0.1:"));
    assert_eq!(palisade::net::parse_cidr_list(&tor).unwrap().len(), 400);
    // Kept: the others are byte for byte what they were.
    for name in ["vpn", "stopforumspam_toxic"] {
        let now = std::fs::read_to_string(dir.join(format!("{name}.txt"))).unwrap();
        assert_eq!(now, src(name).embedded, "{name}");
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_command_reports_and_fails_on_a_bad_list() {
    let base = serve(vec![
        ("/tor", exit_list(350)),
        ("/corrupt", "1.2.3.4/99\n".repeat(50)),
    ]);
    let dir = temp_dir("cli");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["datasets", "refresh", "--dir", dir.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["tor", "--url", &format!("tor={base}/tor")]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("tor: 350 entries written"));

    let bad = run(&["tor", "--url", &format!("tor={base}/corrupt")]);
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("tor: kept the old file: line 1:"), "{out}");
    // The good copy from before is still there.
    let tor = std::fs::read_to_string(dir.join("tor.txt")).unwrap();
    assert_eq!(palisade::net::parse_cidr_list(&tor).unwrap().len(), 350);

    let missing = run(&["tor", "--url", &format!("tor={base}/nothing-here")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains("download failed"));

    let unknown = run(&["no-such-list"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no reputation list `no-such-list`"));
    let _ = std::fs::remove_dir_all(&dir);
}
