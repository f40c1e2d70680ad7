// Tests for the proof-of-work challenge page (src/challenge/pages/pow.html).
// Run: node --test tests/js/   (Node.js >= 20, no npm packages)
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const PAGE_PATH = new URL("../../src/challenge/pages/pow.html", import.meta.url);
const PAGE = readFileSync(PAGE_PATH, "utf8");

function between(src, begin, end) {
  const i = src.indexOf(begin);
  const j = src.indexOf(end, i + begin.length);
  assert.ok(i >= 0 && j > i, `markers ${begin} / ${end} present in pow.html`);
  return src.slice(i + begin.length, j);
}

// The page's SHA-256 block, evaluated on its own (proves it is self-contained).
function loadSha() {
  const src = between(PAGE, "// BEGIN sha256", "// END sha256");
  // Wrapped in a function: top-level vars of a vm context are slow global-object properties.
  return vm.runInNewContext(`(function () {\n${src}\nreturn { sha256, hex, utf8 };\n})()`);
}

// The whole palisadePow() factory (SHA-256 + solver), as the worker gets it.
function loadPow() {
  const src = between(PAGE, "// BEGIN pow", "// END pow");
  return vm.runInNewContext(`${src}\n;palisadePow()`);
}

// The head `pow::page` gives the page (the companion gives crawlers their
// hints instead; src/challenge/pow.rs tests both).
const HEAD = '<meta name="robots" content="noindex">\n<title>Checking your browser</title>';

// Substitute placeholders the way the Rust side does: plain string replace,
// the head last.
function render(data, bits, verify = "/.palisade/verify") {
  return PAGE.replaceAll("{{DATA}}", data).replaceAll("{{BITS}}", String(bits))
    .replaceAll("{{VERIFY}}", verify).replaceAll("{{HEAD}}", HEAD);
}

const nodeHex = (x) => createHash("sha256").update(typeof x === "string" ? Buffer.from(x, "utf8") : x).digest("hex");

function leadingZeroBits(buf) {
  let n = 0;
  for (const byte of buf) {
    if (byte === 0) { n += 8; continue; }
    return n + Math.clz32(byte) - 24;
  }
  return n;
}

const powDigest = (data, nonce) => createHash("sha256").update(Buffer.from(data + nonce, "utf8")).digest();

// ---------------------------------------------------------------- SHA-256

test("sha256: known vectors", () => {
  const { sha256, hex } = loadSha();
  assert.equal(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(hex(sha256("a".repeat(1000000))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
});

test("sha256: matches node:crypto on every length 0..300 (ASCII) and block boundaries", () => {
  const { sha256, hex } = loadSha();
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (let len = 0; len <= 300; len++) {
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[(i * 7 + len) % 64];
    assert.equal(hex(sha256(s)), nodeHex(s), `length ${len}`);
  }
  for (const len of [55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 100003]) {
    const b = randomBytes(len);
    assert.equal(hex(sha256(b)), nodeHex(b), `random bytes, length ${len}`);
  }
});

test("sha256: random byte arrays", () => {
  const { sha256, hex } = loadSha();
  for (let k = 0; k < 500; k++) {
    const b = randomBytes(Math.floor(Math.random() * 400));
    assert.equal(hex(sha256(b)), nodeHex(b));
  }
});

test("sha256: non-ASCII UTF-8 strings (2-, 3-, 4-byte sequences, lone surrogates)", () => {
  const { sha256, hex, utf8 } = loadSha();
  const samples = [
    "é", "héllo wörld", "Ωμέγα", "日本語のテキスト", "😀", "a😀b🎉c", "\u0080\u07ff\u0800\uffff",
    "\u{10000}\u{10ffff}", "\ud800", "a\udc00b", "\udbff\ud800x", "x\ud83d", "€".repeat(100),
    "ünïcödé ".repeat(20) + "🚀".repeat(17),
  ];
  // Random strings over the full UTF-16 code-unit range (includes unpaired surrogates).
  for (let k = 0; k < 300; k++) {
    let s = "";
    const len = Math.floor(Math.random() * 90);
    for (let i = 0; i < len; i++) {
      const r = Math.random();
      s += String.fromCharCode(r < 0.3 ? Math.random() * 0x80 : r < 0.6 ? Math.random() * 0x800 : Math.random() * 0x10000);
    }
    samples.push(s);
  }
  for (const s of samples) {
    assert.deepEqual(Buffer.from(utf8(s)), Buffer.from(s, "utf8"), `utf8(${JSON.stringify(s)})`);
    assert.equal(hex(sha256(s)), nodeHex(s), `sha256(${JSON.stringify(s)})`);
  }
});

test("sha256: hash rate of the page's JS implementation", (t) => {
  // Main-realm evaluation, as in a browser (vm-context globals are slower).
  const src = between(PAGE, "// BEGIN pow", "// END pow");
  const pow = new Function(`${src}\nreturn palisadePow();`)();
  const data = randomBytes(48).toString("base64url");
  const s = pow.solver(data, 32); // 32 bits: effectively never solved in this run
  s.step(50000); // warm up the JIT
  const n = 400000;
  const t0 = process.hrtime.bigint();
  s.step(n);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = Math.round(n / secs);
  t.diagnostic(`solver: ${rate.toLocaleString("en")} hashes/s (${data.length}-char data + nonce)`);

  const { sha256 } = pow;
  const msg = data + "123456";
  for (let i = 0; i < 20000; i++) sha256(msg);
  const t1 = process.hrtime.bigint();
  const m = 200000;
  for (let i = 0; i < m; i++) sha256(msg);
  const secs2 = Number(process.hrtime.bigint() - t1) / 1e9;
  t.diagnostic(`sha256(string): ${Math.round(m / secs2).toLocaleString("en")} hashes/s`);
  assert.ok(rate > 10000, "solver is not pathologically slow");
});

// ---------------------------------------------------------------- solver

test("solver: BITS=12 on a real base64url challenge string", () => {
  const pow = loadPow();
  const data = randomBytes(64).toString("base64url"); // 86 chars: exercises the precomputed midstate
  assert.match(data, /^[A-Za-z0-9_-]+$/);
  const nonce = pow.solve(data, 12);
  assert.match(nonce, /^(0|[1-9][0-9]*)$/, "decimal nonce");
  assert.ok(leadingZeroBits(powDigest(data, nonce)) >= 12, "node:crypto confirms >= 12 leading zero bits");
  // And it is the first such nonce: the search really tried 0, 1, 2, ...
  for (let i = 0; i < Number(nonce); i++) {
    assert.ok(leadingZeroBits(powDigest(data, String(i))) < 12, `nonce ${i} should not qualify`);
  }
});

test("solver: every data length 0..140 finds the first valid nonce (BITS=7)", () => {
  const pow = loadPow();
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (let len = 0; len <= 140; len++) {
    let data = "";
    for (let i = 0; i < len; i++) data += alphabet[(i * 13 + len * 5) % 64];
    const nonce = pow.solve(data, 7);
    let first = 0;
    while (leadingZeroBits(powDigest(data, String(first))) < 7) first++;
    assert.equal(nonce, String(first), `data length ${len}`);
  }
});

test("solver: long nonces (many digits) are hashed correctly", () => {
  const pow = loadPow();
  // Walk the solver past 10^k boundaries by comparing its zero test with node:crypto.
  const data = randomBytes(40).toString("base64url");
  const s = pow.solver(data, 1);
  const seen = [];
  while (s.tried() < 3000) seen.push(s.step(1e9));
  for (const nonce of seen) assert.ok(leadingZeroBits(powDigest(data, nonce)) >= 1);
  // Every nonce not returned in that range must fail the 1-bit test.
  const found = new Set(seen);
  for (let i = 0; i < s.tried(); i++) {
    if (!found.has(String(i))) assert.equal(powDigest(data, String(i))[0] >> 7, 1, `nonce ${i}`);
  }
});

test("solver: zero-bit test at word boundaries (bits up to 32 and beyond)", () => {
  const { zeros } = loadPow();
  const H = (a, b = 0) => new Int32Array([a, b, 0, 0, 0, 0, 0, 0]);
  assert.equal(zeros(H(0x0fffffff), 4), true);
  assert.equal(zeros(H(0x0fffffff), 5), false);
  assert.equal(zeros(H(0x00000001), 31), true);
  assert.equal(zeros(H(0x00000001), 32), false);
  assert.equal(zeros(H(0, -1), 32), true);
  assert.equal(zeros(H(0, -1), 33), false);
  assert.equal(zeros(H(-1), 1), false);
  assert.equal(zeros(H(0x7fffffff), 1), true);
});

// ---------------------------------------------------------------- page text

test("page: self-contained, placeholders only in attribute values", () => {
  assert.ok(Buffer.byteLength(PAGE) < 12 * 1024, `page is ${Buffer.byteLength(PAGE)} bytes`);
  assert.doesNotMatch(PAGE, /https?:\/\//i, "no http(s) URLs");
  assert.doesNotMatch(PAGE, /\bsrc\s*=/i, "no src= attributes");
  assert.doesNotMatch(PAGE, /\bhref\s*=|@import|\burl\(|<link\b|<img\b|<iframe\b|importScripts|fetch\(|XMLHttpRequest/i);
  assert.doesNotMatch(PAGE, /crypto\.subtle/, "must work outside secure contexts");
  for (const [ph, attr] of [["{{DATA}}", "value"], ["{{BITS}}", "data-bits"], ["{{VERIFY}}", "action"]]) {
    assert.ok(PAGE.includes(ph), `${ph} present`);
    assert.equal(PAGE.split(ph).length - 1, 1, `${ph} appears once`);
    assert.ok(PAGE.includes(`${attr}="${ph}"`), `${ph} is inside a quoted ${attr} attribute`);
  }
  const scripts = [...PAGE.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join("\n");
  assert.ok(!scripts.includes("{{"), "no placeholders spliced into script source");
});

test("page: form, accessibility and metadata", () => {
  const form = PAGE.match(/<form\b[^>]*>[\s\S]*?<\/form>/)[0];
  const open = form.match(/<form\b[^>]*>/)[0];
  // A GET: the solution travels in the query, so no request body is needed
  // (the filter cannot read one under Istio's WasmPlugin).
  assert.match(open, /method="GET"/);
  assert.match(open, /action="\{\{VERIFY\}\}"/);
  assert.doesNotMatch(open, /enctype=/);
  const names = [...form.matchAll(/\bname="([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(names, ["data", "nonce"], "exactly the fields data and nonce");
  assert.equal([...form.matchAll(/<(input|select|textarea|button)\b/g)].length, 2);
  assert.match(PAGE, /<html lang="en">/);
  assert.match(PAGE, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  assert.match(PAGE, /<head>[\s\S]*\{\{HEAD\}\}[\s\S]*<\/head>/, "the head's title and robots are filled in");
  const page = render("abc", 8);
  assert.match(page, /<meta name="robots" content="noindex">/);
  assert.match(page, /<title>Checking your browser<\/title>/);
  assert.match(PAGE, /role="status"/);
  assert.match(PAGE, /aria-live="polite"/);
  assert.match(PAGE, /prefers-color-scheme:\s*dark/);
  const noscript = PAGE.match(/<noscript>([\s\S]*?)<\/noscript>/)[1];
  assert.match(noscript, /JavaScript/);
  assert.match(noscript, /automated abuser/);
  assert.match(noscript, /contact/);
  assert.match(PAGE, /needs JavaScript/);
});

// ---------------------------------------------------------------- page script end to end

// Run the page's inline script against a minimal DOM built from the rendered page.
function runPage(html, { worker = "none" } = {}) {
  const script = html.match(/<script>([\s\S]*?)<\/script>/)[1];
  const attr = (re) => (html.match(re) || [])[1];
  const els = {
    js: { hidden: true },
    bar: { value: 0 },
    msg: { textContent: "" },
    det: { textContent: "" },
  };
  const log = { progress: [], messages: [], worker: null, fallback: false };
  let resolveSubmit;
  const submitted = new Promise((r) => { resolveSubmit = r; });
  els.pv = {
    action: attr(/<form\b[^>]*\baction="([^"]*)"/),
    method: attr(/<form\b[^>]*\bmethod="([^"]*)"/),
    elements: {
      data: { value: attr(/name="data" value="([^"]*)"/) },
      nonce: { value: attr(/name="nonce" value="([^"]*)"/) },
    },
    getAttribute: (n) => attr(new RegExp(`<form\\b[^>]*\\b${n}="([^"]*)"`)) ?? null,
    submit() {
      resolveSubmit({ action: this.action, method: this.method, data: this.elements.data.value, nonce: this.elements.nonce.value });
    },
  };
  const timers = new Set();
  const ctx = {
    document: { getElementById: (id) => els[id] ?? null },
    location: { reload() {} },
    addEventListener() {},
    setTimeout: (f, ms) => { const h = setTimeout(() => { timers.delete(h); f(); }, ms); timers.add(h); return h; },
    clearTimeout: (h) => { timers.delete(h); clearTimeout(h); },
  };
  ctx.window = ctx;
  if (worker !== "none") {
    const blobs = new Map();
    ctx.Blob = class { constructor(parts, opts) { this.text = parts.join(""); this.type = opts.type; } };
    ctx.URL = {
      createObjectURL: (b) => { const u = `blob:test/${blobs.size}`; blobs.set(u, b.text); return u; },
      revokeObjectURL: (u) => blobs.delete(u),
    };
    ctx.Worker = class {
      constructor(url) {
        log.worker = this;
        this.terminated = false;
        if (worker === "broken") { setTimeout(() => this.onerror && this.onerror({ message: "blocked" }), 5); return; }
        // Evaluate the blob's source in a fresh global, like a dedicated worker.
        const g = vm.createContext({});
        g.self = g;
        g.postMessage = (m) => setImmediate(() => {
          const copy = structuredClone(m);
          log.messages.push(copy);
          if (!this.terminated && this.onmessage) this.onmessage({ data: copy });
        });
        vm.runInContext(blobs.get(url), g);
        this.g = g;
      }
      postMessage(m) { if (this.g) setImmediate(() => this.g.onmessage({ data: structuredClone(m) })); }
      terminate() { this.terminated = true; }
    };
  }
  vm.runInNewContext(script, ctx);
  return { els, log, submitted, stop: () => timers.forEach((h) => clearTimeout(h)) };
}

test("page script: Web Worker path solves and submits data + nonce", async () => {
  const data = randomBytes(48).toString("base64url");
  const run = runPage(render(data, 12), { worker: "ok" });
  assert.equal(run.els.js.hidden, false, "progress UI shown when JS runs");
  const sub = await run.submitted;
  run.stop();
  assert.equal(sub.action, "/.palisade/verify");
  assert.equal(sub.method, "GET");
  assert.equal(sub.data, data);
  assert.ok(leadingZeroBits(powDigest(data, sub.nonce)) >= 12);
  assert.ok(run.log.worker.terminated, "worker terminated after solving");
  assert.ok(run.log.messages.length >= 2, "worker posted progress then result");
  assert.equal(run.els.bar.value, 1);
  assert.match(run.els.msg.textContent, /Continuing/);
  assert.match(run.els.det.textContent, /hashes tried/);
});

test("page script: falls back to the main thread without Worker/Blob", async () => {
  const data = randomBytes(48).toString("base64url");
  const run = runPage(render(data, 12), { worker: "none" });
  const sub = await run.submitted;
  run.stop();
  assert.equal(sub.data, data);
  assert.ok(leadingZeroBits(powDigest(data, sub.nonce)) >= 12);
});

test("page script: falls back to the main thread when the worker errors", async () => {
  const data = randomBytes(30).toString("base64url");
  const run = runPage(render(data, 10), { worker: "broken" });
  const sub = await run.submitted;
  run.stop();
  assert.ok(run.log.worker.terminated);
  assert.ok(leadingZeroBits(powDigest(data, sub.nonce)) >= 10);
});

test("page script: unsubstituted template reports an error instead of working", async () => {
  const run = runPage(PAGE, { worker: "ok" });
  let submitted = false;
  run.submitted.then(() => { submitted = true; });
  await new Promise((r) => setTimeout(r, 50));
  run.stop();
  assert.equal(submitted, false);
  assert.match(run.els.msg.textContent, /could not start/);
});
