#!/usr/bin/env python3
"""The demo upstream: echoes each request back as JSON (or a small page).

Usage: upstream.py [PORT]  (default 8080; binds 127.0.0.1)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        echo = {
            "upstream": "palisade-demo",
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        if "application/json" in (self.headers.get("accept") or ""):
            payload = json.dumps(echo, indent=2).encode()
            ctype = "application/json"
        else:
            rows = "".join(
                f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in echo["headers"].items()
                if k.startswith("x-palisade")
            )
            payload = (
                "<!doctype html><html lang=en><head><meta charset=utf-8>"
                "<title>Palisade demo upstream</title></head><body>"
                f"<h1 id=upstream>Hello from the upstream</h1><p>{self.command} {self.path}</p>"
                f"<table>{rows}</table></body></html>"
            ).encode()
            ctype = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = answer

    def log_message(self, fmt, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = ThreadingHTTPServer(("127.0.0.1", port), Echo)
    print(f"upstream: listening on 127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
