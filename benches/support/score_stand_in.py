#!/usr/bin/env python3
"""A stand-in for the companion's internal listener in the Envoy benchmark:
`GET /healthz` answers 200 and `POST /score` gives every client SCORE, in
the wire format of src/scoring/wire.rs. What the benchmark measures is the
filter's cached path, so the model behind the score does not matter.

Usage: score_stand_in.py PORT SCORE   (binds 127.0.0.1)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler(score):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.reply(200 if self.path == "/healthz" else 404, b"ok")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path != "/score":
                return self.reply(404, b"{}")
            clients = [q.get("client") for q in json.loads(body)["batch"]]
            answer = {"scores": [{"client": c, "score": score, "action": None, "model": "bench",
                                  "top_features": []} for c in clients]}
            self.reply(200, json.dumps(answer).encode())

        def reply(self, status, payload):
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, fmt, *args):
            pass

    return Handler


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler(float(sys.argv[2]))).serve_forever()
