// Palisade: how this page is solved. Records pointer, key, focus and paste
// events and a few automation tells, and sends them with the answer in the
// `interaction` field. Nothing leaves the page before the answer does, and
// nothing identifies the person: counts, distances and intervals only.
// Without JavaScript the form posts without the field, which the companion
// treats as neutral. The automation tells are reimplemented in the manner
// of the MIT-licensed BotD and fpscanner checks (see docs/scoring.md).
(function () {
"use strict";
var form = document.querySelector("form[method=post]");
if (!form || !window.JSON) return;
var start = performance.now();
var r = {
  pointer_moves: 0, pointer_path_px: 0, pointer_span_px: 0, clicks: 0,
  jump_clicks: 0, focus_changes: 0, pastes: 0, key_intervals_ms: [],
  webdriver: navigator.webdriver === true, tells: []
};
var sinceClick = 0, last = null, origin = null, lastKey = null, untrusted = 0;
function touched() { if (r.first_interaction_ms === undefined) r.first_interaction_ms = Math.round(performance.now() - start); }
function trusted(e) { if (e.isTrusted === false) { untrusted++; return false; } return true; }
document.addEventListener("pointermove", function (e) {
  if (!trusted(e)) return;
  touched();
  var p = [e.clientX, e.clientY];
  if (!origin) origin = p;
  if (last) r.pointer_path_px += Math.hypot(p[0] - last[0], p[1] - last[1]);
  last = p;
  r.pointer_span_px = Math.hypot(p[0] - origin[0], p[1] - origin[1]);
  r.pointer_moves++;
  sinceClick++;
}, { passive: true });
document.addEventListener("pointerdown", function (e) {
  if (!trusted(e)) return;
  touched();
  // Only a mouse or pen travels to its target; a finger lands on it.
  if (e.pointerType !== "mouse" && e.pointerType !== "pen") return;
  r.clicks++;
  if (sinceClick < 3) r.jump_clicks++;
  sinceClick = 0;
}, { passive: true });
document.addEventListener("keydown", function (e) {
  if (!trusted(e)) return;
  touched();
  var now = performance.now();
  if (lastKey !== null && r.key_intervals_ms.length < 64) r.key_intervals_ms.push(Math.round(now - lastKey));
  lastKey = now;
}, { passive: true });
document.addEventListener("touchstart", touched, { passive: true });
document.addEventListener("paste", function () { r.pastes++; }, { passive: true });
window.addEventListener("blur", function () { r.focus_changes++; });
function tells() {
  var t = [], w = window, n = navigator, ua = n.userAgent || "";
  if (/HeadlessChrome/.test(ua)) t.push("headless_ua");
  if (w._phantom || w.callPhantom) t.push("phantom");
  if (w.__nightmare) t.push("nightmare");
  if (w.domAutomation || w.domAutomationController) t.push("dom_automation");
  if (w.__playwright__binding__ || w.__pwInitScripts) t.push("playwright");
  if (w.Cypress) t.push("cypress");
  for (var k in document) { if (/^\$?cdc_|^\$wdc_/.test(k)) { t.push("chromedriver"); break; } }
  if (!n.languages || n.languages.length === 0) t.push("no_languages");
  if (w.outerWidth === 0 && w.outerHeight === 0) t.push("no_window");
  if (/Chrome\//.test(ua) && !/Edg|OPR|Android/.test(ua) && !w.chrome) t.push("no_chrome_object");
  if (untrusted > 0) t.push("untrusted_events");
  return t;
}
form.addEventListener("submit", function () {
  r.solve_ms = Math.round(performance.now() - start);
  r.tells = tells();
  var field = form.querySelector("input[name=interaction]");
  if (!field) {
    field = document.createElement("input");
    field.type = "hidden";
    field.name = "interaction";
    form.appendChild(field);
  }
  field.value = JSON.stringify(r);
});
})();
