"""A local stand-in for the CAPTCHA providers' siteverify APIs, implementing
each provider's documented request and answering with the docs' own example
responses. The live providers are not reachable from the test machines;
this is their contract as documented (links below), not their behaviour.

- Turnstile: https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
- hCaptcha: https://docs.hcaptcha.com/#verify-the-user-response-server-side
- reCAPTCHA: https://developers.google.com/recaptcha/docs/verify (v3:
  https://developers.google.com/recaptcha/docs/v3)
- Friendly Captcha v2: https://developer.friendlycaptcha.com/docs/v2/api/siteverify

A test chooses the answer through the response token it posts: the token
`ok` gets the documented success, `ok-host:NAME` a success for hostname
NAME, `score:0.3` a v3 success with that score, `err:CODE` the documented
failure with error code CODE, `slow` an answer after `SLOW_S` seconds,
`500` an internal error. Every request is recorded (path, headers, body).

`GET /widget.js` is a stand-in for the widgets' scripts (for browser tests,
with `script_url` pointing at it): it does what a widget does once the
visitor has passed, and nothing of what it shows.
"""
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "contract-secret"
SITE_KEY = "contract-site-key"
HOST = "127.0.0.1"
SLOW_S = 3.0

# Every documented error code, by provider.
TURNSTILE_ERRORS = ["missing-input-secret", "invalid-input-secret", "missing-input-response",
                    "invalid-input-response", "bad-request", "timeout-or-duplicate",
                    "internal-error"]
HCAPTCHA_ERRORS = ["missing-input-secret", "invalid-input-secret", "missing-input-response",
                   "invalid-input-response", "expired-input-response", "already-seen-response",
                   "bad-request", "missing-remoteip", "invalid-remoteip",
                   "not-using-dummy-passcode", "sitekey-secret-mismatch"]
RECAPTCHA_ERRORS = ["missing-input-secret", "invalid-input-secret", "missing-input-response",
                    "invalid-input-response", "bad-request", "timeout-or-duplicate"]
# Friendly Captcha v2: code → HTTP status.
FRIENDLY_ERRORS = {"auth_required": 401, "auth_invalid": 401, "sitekey_invalid": 400,
                   "response_missing": 400, "response_invalid": 200, "response_timeout": 200,
                   "response_duplicate": 200, "bad_request": 400}
# Codes that are not the visitor's doing (the site's own secret or key is
# wrong, or the provider failed): the companion serves its fallback kind.
NOT_THE_VISITOR = {"missing-input-secret", "invalid-input-secret", "sitekey-secret-mismatch",
                   "auth_required", "auth_invalid", "sitekey_invalid", "internal-error"}

PATHS = {
    "turnstile": "/turnstile/v0/siteverify",
    "hcaptcha": "/hcaptcha/siteverify",
    "recaptcha_v2": "/recaptcha/api/siteverify",
    # One endpoint for both at Google, which tells v3 keys by the secret;
    # here by the path.
    "recaptcha_v3": "/recaptcha-v3/api/siteverify",
    "friendly_captcha": "/frc/api/v2/captcha/siteverify",
}
# Fills every widget element's response field with `ok`, and answers
# reCAPTCHA v3's `grecaptcha.execute` with `ok`.
WIDGET_JS = b"""(function () {
  var fields = {"cf-turnstile": "cf-turnstile-response", "h-captcha": "h-captcha-response",
                "g-recaptcha": "g-recaptcha-response", "frc-captcha": "frc-captcha-response"};
  window.grecaptcha = {ready: function (f) { f(); },
                       execute: function () { return Promise.resolve("ok"); }};
  function fill() {
    Object.keys(fields).forEach(function (cls) {
      document.querySelectorAll("." + cls).forEach(function (el) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = fields[cls]; input.value = "ok";
        el.appendChild(input);
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fill);
  else fill();
})();
"""
WIDGET_PATH = "/widget.js"
ERRORS = {"turnstile": TURNSTILE_ERRORS, "hcaptcha": HCAPTCHA_ERRORS,
          "recaptcha_v2": RECAPTCHA_ERRORS, "recaptcha_v3": RECAPTCHA_ERRORS,
          "friendly_captcha": list(FRIENDLY_ERRORS)}


def form_success(provider, token):
    """The documented success body of a form provider for `token`."""
    host = token.split(":", 1)[1] if token.startswith("ok-host:") else HOST
    if provider == "turnstile":
        return {"success": True, "challenge_ts": "2022-02-28T15:14:30.096Z", "hostname": host,
                "error-codes": [], "action": "login", "cdata": "sessionid-123456789",
                "metadata": {"ephemeral_id": "x:9f78b0ed0fc94a2c"}}
    if provider == "hcaptcha":
        return {"success": True, "challenge_ts": "2024-01-01T00:00:00Z", "hostname": host,
                "credit": False, "error-codes": []}
    body = {"success": True, "challenge_ts": "2024-01-01T00:00:00Z", "hostname": host}
    if token.startswith("score:"):
        body.update(score=float(token.split(":", 1)[1]), action="palisade")
    elif provider == "recaptcha_v3" or token == "ok-v3":
        body.update(score=0.9, action="palisade")
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        # reCAPTCHA v3's script comes with `?render=SITE_KEY`.
        if urllib.parse.urlsplit(self.path).path != WIDGET_PATH:
            return self.reply(404, {"error": "not found"})
        self.send_response(200)
        self.send_header("content-type", "text/javascript")
        # Friendly Captcha's is a module script, fetched with CORS.
        self.send_header("access-control-allow-origin", "*")
        self.send_header("content-length", str(len(WIDGET_JS)))
        self.end_headers()
        self.wfile.write(WIDGET_JS)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                  "body": raw.decode(errors="replace")}
        self.server.requests.append(record)
        if self.path == PATHS["friendly_captcha"]:
            return self.friendly(raw)
        provider = next((p for p, path in PATHS.items() if path == self.path), None)
        if provider is None:
            return self.reply(404, {"error": "not found"})
        fields = dict(urllib.parse.parse_qsl(raw.decode()))
        record["fields"] = fields
        if fields.get("secret") != SECRET:
            code = "missing-input-secret" if "secret" not in fields else "invalid-input-secret"
            return self.reply(200, {"success": False, "error-codes": [code]})
        token = fields.get("response", "")
        if not token:
            return self.reply(200, {"success": False, "error-codes": ["missing-input-response"]})
        if provider == "hcaptcha" and fields.get("sitekey") not in (None, SITE_KEY):
            return self.reply(200, {"success": False, "error-codes": ["sitekey-secret-mismatch"]})
        self.answer(provider, token)

    def answer(self, provider, token):
        if token == "slow":
            time.sleep(SLOW_S)
            return self.reply(200, form_success(provider, "ok"))
        if token == "500":
            return self.reply(500, {"success": False, "error-codes": ["internal-error"]})
        if token.startswith("err:"):
            return self.reply(200, {"success": False, "error-codes": [token[4:]]})
        return self.reply(200, form_success(provider, token))

    def friendly(self, raw):
        record = self.server.requests[-1]
        key = self.headers.get("x-api-key")
        if key is None:
            return self.friendly_error("auth_required")
        if key != SECRET:
            return self.friendly_error("auth_invalid")
        try:
            body = json.loads(raw)
        except ValueError:
            return self.friendly_error("bad_request")
        record["json"] = body
        if body.get("sitekey") not in (None, SITE_KEY):
            return self.friendly_error("sitekey_invalid")
        token = body.get("response") or ""
        if not token:
            return self.friendly_error("response_missing")
        if token == "slow":
            time.sleep(SLOW_S)
        if token == "500":
            return self.reply(500, {"success": False})
        if token.startswith("err:"):
            return self.friendly_error(token[4:])
        host = token.split(":", 1)[1] if token.startswith("ok-host:") else HOST
        # The documented example, with our origin.
        return self.reply(200, {"success": True, "data": {
            "event_id": "ev_abc123",
            "challenge": {"timestamp": "2023-08-04T13:01:25Z", "origin": f"http://{host}"},
        }})

    def friendly_error(self, code):
        status = FRIENDLY_ERRORS.get(code, 400)
        return self.reply(status, {"success": False, "error": {
            "error_code": code, "detail": f"documented error {code}"}})


class ContractServer:
    """The stand-in on a free 127.0.0.1 port, in a thread."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.requests = []
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, provider):
        return f"http://127.0.0.1:{self.port}{PATHS[provider]}"

    def widget_url(self):
        return f"http://127.0.0.1:{self.port}{WIDGET_PATH}"

    @property
    def requests(self):
        return self.server.requests

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
