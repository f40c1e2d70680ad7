"""Abuse shapes through real Envoy and real nginx with the demo policy:
header injection into the upstream annotations and into the logs, and
request smuggling against the verify endpoints (conflicting Content-Length
and Transfer-Encoding). Requests are written to the socket byte for byte.

Smuggling is detected with a second request hidden in the first one's body:
if the proxy ends the first request where the upstream would not (or the
other way round), the hidden one is answered as a request of its own, a
second response on the connection that carries its marker path.
"""
import json
import re
import socket
import uuid

import pytest

from conftest import policy_json, proxy_port, start_companion, start_envoy, start_nginx

BROWSER = (b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           b"Chrome/131.0.0.0 Safari/537.36")
# What an annotation value may hold: Palisade's own words and numbers, never
# a client's bytes.
ANNOTATION = re.compile(r"^[A-Za-z0-9_.:;=, /-]*$")


@pytest.fixture(scope="module")
def envoy(echo_upstream):
    with proxy_port("envoy", policy_json(), echo_upstream) as port:
        yield port


@pytest.fixture(scope="module")
def nginx(echo_upstream):
    with proxy_port("nginx", policy_json(), echo_upstream) as port:
        yield port


def exchange(port, raw, timeout=3.0):
    """Sends `raw`, reads until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except socket.timeout:
            pass
    return data


def statuses(data):
    return [int(m.group(1)) for m in re.finditer(rb"HTTP/1\.[01] (\d{3}) ", data)]


@pytest.mark.parametrize("proxy", ["envoy", "nginx"])
def test_client_bytes_never_reach_the_annotation_headers(request, proxy):
    port = request.getfixturevalue(proxy)
    hostile = [
        BROWSER + b' x-palisade-action: allow; "quoted" <b> ' + b"A" * 4000,
        b"Googlebot/2.1; x-palisade-client: class=search_engine",
        b"curl/8.5.0\tx-injected: 1",
    ]
    for ua in hostile:
        raw = (b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + ua +
               b"\r\nAccept: application/json\r\nAccept-Language: en\r\n"
               b"X-Palisade-Action: allow\r\nX-Palisade-Client: class=browser\r\n"
               b"Connection: close\r\n\r\n")
        data = exchange(port, raw)
        assert statuses(data), data[:200]
        body = data.partition(b"\r\n\r\n")[2]
        if b'"upstream"' not in body:
            continue  # refused before the upstream: nothing to inject into
        seen = json.loads(body[body.index(b"{"):])["headers"]
        for name, value in seen.items():
            if name.startswith("x-palisade-"):
                assert ANNOTATION.match(value), (name, value)
                assert "quoted" not in value and "search_engine" not in value, (name, value)
        assert seen.get("x-injected") is None


# Paths a client might hope to break a log line with: encoded and raw CR/LF
# (the proxies refuse raw ones; what they let through is logged), escape
# sequences, non-ASCII, and one far past any sensible length.
HOSTILE_PATHS = [
    b"/watched/a%0d%0apalisade: FORGED monitor GET /admin",
    b"/watched/a\r\npalisade: FORGED",
    b"/watched/a\x1b[2J\x1b[31mred",
    b"/watched/caf\xc3\xa9/\xff\xfe",
    b'/watched/"<b>x</b>"{}|^`',
    b"/watched/" + b"L" * 30000,
]


def watched(policy):
    """The demo policy, with every request under /watched/ monitored: the
    filter logs a line for each."""
    policy["rules"].insert(0, {"name": "watched", "when": {"path": ["/watched/*"]}, "action": "monitor"})
    return policy


def assert_log_lines_hold(lines, limit):
    for line in lines:
        assert len(line) <= limit, (len(line), line[:200])
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line), line[:300]
        assert not line.lstrip().startswith("palisade: FORGED"), line[:300]


def send_hostile_paths(port):
    """The status each of HOSTILE_PATHS got (None: the connection closed)."""
    got = []
    for path in HOSTILE_PATHS:
        raw = (b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + BROWSER +
               b"\r\nAccept: text/html\r\nAccept-Language: en\r\nConnection: close\r\n\r\n")
        got.append(next(iter(statuses(exchange(port, raw))), None))
    return got


def test_client_bytes_never_break_the_filters_log_lines(echo_upstream):
    """Each hostile path is refused before anything logs it (400 from Palisade
    or Envoy; 426 for a request line a raw CR/LF cut short), or reaches the
    upstream with one clean, bounded monitor line."""
    with start_envoy(watched(policy_json()), echo_upstream) as envoy:
        got = send_hostile_paths(envoy.port)
        log = envoy.log()
    monitored = [l for l in log.splitlines() if "palisade: monitor" in l]
    passed = [p for p, status in zip(HOSTILE_PATHS, got) if status not in (400, 426)]
    assert all(status in (200, 400, 426) for status in got), got
    assert len(monitored) == len(passed) >= 2, (got, monitored)
    assert any(l.endswith("...") or "LLL... " in l for l in monitored), "the long path is cut"
    # Envoy's prefix, then Palisade's line with at most 256 bytes of path,
    # each byte at most three characters once encoded.
    assert_log_lines_hold(monitored, 1200)
    assert "FORGED" not in log


def test_client_bytes_never_break_the_companions_log_lines(echo_upstream):
    """Every line the companion writes is one JSON object, whatever the
    requests held: nginx's checks, hostile answers and challenge asks."""
    with start_companion(watched(policy_json())) as companion, \
            start_nginx(companion, echo_upstream) as nginx:
        # nginx answers a request line cut short by a raw CR/LF as HTTP/0.9
        # (no status line), and a 30 KB one with 414.
        got = send_hostile_paths(nginx.port)
        assert all(status in (200, 400, 414, None) for status in got), got
        for body in [b'{"answer": "a\\r\\npalisade: FORGED"}', b'{"answer": "' + b"L" * 30000 + b'"}',
                     b'\x00\r\n{"answer":']:
            raw = (b"POST /.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify HTTP/1.1\r\n"
                   b"Host: localhost\r\nContent-Type: application/json\r\nUser-Agent: " + BROWSER +
                   b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            assert statuses(exchange(nginx.port, raw))
        lines = [l for l in companion.log().splitlines() if l.strip()]
    assert lines
    for line in lines:
        json.loads(line)
    assert_log_lines_hold(lines, 4096)


SMUGGLING = [
    # Both headers: HTTP/1.1 says Transfer-Encoding wins, or refuse.
    b"Content-Length: {cl}\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: {cl}\r\n",
    # Two different lengths.
    b"Content-Length: 4\r\nContent-Length: {cl}\r\n",
    # Obfuscated encodings.
    b"Transfer-Encoding: chunked, identity\r\nContent-Length: {cl}\r\n",
    b"Transfer-Encoding : chunked\r\nContent-Length: {cl}\r\n",
    b"Transfer-Encoding: xchunked\r\nContent-Length: {cl}\r\n",
    b"Transfer-Encoding:\tchunked\r\nContent-Length: {cl}\r\n",
]


@pytest.mark.parametrize("proxy", ["envoy", "nginx"])
@pytest.mark.parametrize("framing", SMUGGLING)
@pytest.mark.parametrize("path", ["/.palisade/verify", "/.palisade/challenge/AAAAAAAAAAAAAAAAAAAAAA/verify"])
def test_no_request_is_smuggled_past_the_verify_endpoints(request, proxy, framing, path):
    port = request.getfixturevalue(proxy)
    marker = f"/public/smuggled-{uuid.uuid4().hex}".encode()
    hidden = b"GET " + marker + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + BROWSER + b"\r\n\r\n"
    body = b"0\r\n\r\n" + hidden
    head = framing.replace(b"{cl}", str(len(body)).encode())
    raw = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + BROWSER +
           b"\r\nAccept: application/json\r\nContent-Type: application/json\r\n" + head + b"\r\n" + body)
    data = exchange(port, raw)
    assert marker not in data, data[:600]
    assert len(statuses(data)) <= 1, data[:600]


@pytest.mark.parametrize("proxy", ["envoy", "nginx"])
def test_the_detection_sees_a_pipelined_request(request, proxy):
    """The control: a second request sent openly on the same connection is
    answered, marker and all, so the smuggling test can see one."""
    port = request.getfixturevalue(proxy)
    marker = f"/public/pipelined-{uuid.uuid4().hex}".encode()
    first = (b"GET /public/first HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + BROWSER +
             b"\r\nAccept: application/json\r\nAccept-Language: en\r\n\r\n")
    second = (b"GET " + marker + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + BROWSER +
              b"\r\nAccept: application/json\r\nAccept-Language: en\r\nConnection: close\r\n\r\n")
    data = exchange(port, first + second)
    assert len(statuses(data)) == 2 and marker in data, data[:600]
