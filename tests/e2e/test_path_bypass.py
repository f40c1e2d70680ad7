"""Known ways of spelling a blocked path so that the proxy and the server
behind it read it differently, tried in real Envoy and in real nginx (with
the companion's check) against the demo policy's blocked `/admin/*`, with
`paths.case_insensitive` on (the setting for case-insensitive upstreams).

Each request is written to the socket byte for byte (no HTTP library
normalises it first). None may reach the upstream: whatever answers, the
proxy's 400, Palisade's 403 or 400, the echo upstream never sees it. A
redirect from the proxy itself (Envoy's `UNESCAPE_AND_REDIRECT` for `%2F`
and `%5C`) is followed once, as a client would, and must not reach it
either.
The canonical form these are matched on is src/policy/canonical.rs.
"""
import socket

import pytest

from conftest import policy_json, proxy_port

SHAPES = [
    "/admin/x",
    "/admin/",
    "/admin/x;",
    "/admin;/x",
    "/admin;foo=bar/x",
    "/admin;jsessionid=0123/x",
    "/admin..;/x",
    "/x/..;/admin/x",
    "/admin/..;/admin/x",
    "//admin/x",
    "///admin/x",
    "/admin//x",
    "/./admin/x",
    "/admin/./x",
    "/x/../admin/x",
    "/x/y/../../admin/x",
    "/%61dmin/x",
    "/%61%64%6d%69%6e/x",
    "/%2fadmin/x",
    "/admin%2fx",
    "/admin%2Fx",
    "/%2e/admin/x",
    "/x/%2e%2e/admin/x",
    "/x/%2E%2E/admin/x",
    "/x/..%2fadmin/x",
    "/x/..%5cadmin/x",
    "/admin%252fx",
    "/%2561dmin/x",
    "/x/%252e%252e/admin/x",
    "/admin%25252fx",
    "/%c0%afadmin/x",
    "/x/%c0%ae%c0%ae/admin/x",
    "/%e0%80%afadmin/x",
    "/ADMIN/x",
    "/Admin/x",
    "/aDmIn/x",
    "/%41dmin/x",
    "/adm%c4%b1n/x",
    "/adm%C4%B1n/x",
    "/admin./x",
    "/admin../x",
    "/admin%2e/x",
    "/admin%20/x",
    "/admin%20%20/x",
    "/admin%5cx",
    "/admin%5Cx",
    "/admin\\x",
    "/x\\..\\admin\\x",
    "/admin%00/x",
    "/admin%09/x",
    "/admin%0d%0a/x",
    "/admin\xa0/x",
    "/adm\xedn/x",
    "/admin/?next=/",
]


def policy():
    p = policy_json()
    p["paths"] = {"case_insensitive": True}
    return p


def raw_get(port, path):
    """One request, written as is; the status, the body and the head. Reads
    by Content-Length (or to the close), not waiting for the server to
    close (Envoy delays that by a second)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + path.encode("latin-1") + b" HTTP/1.1\r\nHost: localhost\r\n"
                  b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  b"Chrome/131.0.0.0 Safari/537.36\r\nAccept: application/json\r\nAccept-Language: en\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data and (chunk := s.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), None)
        while (length is None or len(body) < length) and (chunk := s.recv(65536)):
            body += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body, head


def location(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"location":
            return value.strip().decode("latin-1")
    return None


@pytest.fixture(scope="module")
def envoy(echo_upstream):
    with proxy_port("envoy", policy(), echo_upstream) as port:
        yield port


@pytest.fixture(scope="module")
def nginx(echo_upstream):
    with proxy_port("nginx", policy(), echo_upstream) as port:
        yield port


def test_the_table_is_long_enough():
    assert len(set(SHAPES)) == len(SHAPES) >= 40


@pytest.mark.parametrize("proxy", ["envoy", "nginx"])
def test_an_open_path_still_reaches_the_upstream(request, proxy):
    """The control: the same requests do reach the upstream elsewhere."""
    port = request.getfixturevalue(proxy)
    for path in ["/public/x", "/public;v=1/x", "/x/../public/x", "/%70ublic/x"]:
        status, body, _ = raw_get(port, path)
        assert status == 200 and b"palisade-demo" in body, (path, status, body[:200])


@pytest.mark.parametrize("proxy", ["envoy", "nginx"])
@pytest.mark.parametrize("path", SHAPES)
def test_no_spelling_of_a_blocked_path_reaches_the_upstream(request, proxy, path):
    port = request.getfixturevalue(proxy)
    status, body, head = raw_get(port, path)
    if status in (301, 302, 307, 308):
        target = location(head)
        assert target and target.startswith("/"), head
        status, body, _ = raw_get(port, target)
    assert b"palisade-demo" not in body, (status, body[:300])
    assert status in (400, 403, 404), (status, body[:300])
