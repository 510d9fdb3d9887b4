# ruff: noqa: E501 (CSS and JavaScript, kept one rule / statement per line)
"""The viewer page's CSS and JavaScript, inlined into every page (no network, works from ``file://``).

The script builds the DOM from the embedded JSON with ``textContent`` only: no trajectory text ever reaches
an HTML parser, so a tool output holding ``<script>`` shows as text. Tool calls and thinking are folded
``<details>`` whose bodies are built when first opened; long texts show a preview and a "show all".
"""

from __future__ import annotations

CSS = r"""
:root { --fg:#1d2329; --dim:#6a737d; --bg:#fff; --panel:#f6f8fa; --line:#d8dee4; --err:#b42318; --errbg:#fdecea;
  --ok:#1a7f37; --warn:#9a6700; --warnbg:#fff8c5; --accent:#0969da; --sub:#8250df; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; color:var(--fg); background:var(--bg); }
main { max-width:1100px; margin:0 auto; padding:16px 20px 60px; }
h1 { font-size:20px; margin:4px 0 10px; display:flex; gap:10px; align-items:center; flex-wrap:wrap; word-break:break-all; }
h2 { font-size:15px; margin:0 0 6px; display:flex; gap:8px; align-items:baseline; flex-wrap:wrap; }
pre { margin:0; white-space:pre-wrap; word-break:break-word; font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
.mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; word-break:break-all; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; margin:0 0 8px; }
.facts dt { color:var(--dim); } .facts dd { margin:0; }
.badge { font-size:11.5px; font-weight:600; padding:1px 7px; border-radius:10px; background:var(--panel); border:1px solid var(--line); }
.badge.completed { color:var(--ok); border-color:#aceebb; background:#dafbe1; }
.badge.failed,.badge.timeout,.badge.cancelled { color:var(--err); border-color:#ffc1ba; background:var(--errbg); }
.badge.rate_limited,.badge.pending,.badge.running { color:var(--warn); border-color:#f5e0a0; background:var(--warnbg); }
.badge.sub { color:var(--sub); border-color:#d8c8fa; background:#f5f0ff; }
.meta { color:var(--dim); font-size:12.5px; }
.errtext { color:var(--err); }
.note { background:var(--warnbg); padding:4px 8px; border-radius:4px; margin:4px 0; }
.toolbar { display:flex; gap:8px; align-items:center; margin:10px 0; flex-wrap:wrap; position:sticky; top:0;
  background:var(--bg); padding:6px 0; border-bottom:1px solid var(--line); z-index:2; }
button { font:inherit; font-size:12.5px; padding:2px 10px; border:1px solid var(--line); border-radius:5px;
  background:var(--panel); cursor:pointer; }
button:hover { border-color:var(--accent); }
.turn { border:1px solid var(--line); border-radius:8px; padding:10px 12px; margin:12px 0;
  content-visibility:auto; contain-intrinsic-size:auto 400px; }  /* off-screen turns skip layout and paint */
.turn.status-failed,.turn.status-timeout,.turn.status-cancelled { border-left:4px solid var(--err); }
.turn.status-rate_limited { border-left:4px solid var(--warn); }
.block { margin:6px 0; }
.label { font-size:11px; text-transform:uppercase; letter-spacing:.04em; color:var(--dim); margin-right:6px; }
.user { background:#eef6ff; border-radius:6px; padding:6px 8px; }
.text pre { font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; }
details { border:1px solid var(--line); border-radius:6px; background:var(--panel); }
details > summary { cursor:pointer; padding:4px 8px; list-style-position:outside; margin-left:14px; }
details > summary > * { margin-right:6px; }
details.thinking { background:#fafafa; } details.thinking pre { color:#555; font-style:italic; }
details.err { border-color:#ffc1ba; background:var(--errbg); }
.tname { font-weight:600; font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
.targ { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; color:#444; word-break:break-all; }
details .body { padding:6px 10px 8px; background:var(--bg); border-top:1px solid var(--line); border-radius:0 0 6px 6px; }
pre.args { color:#444; } pre.out { background:var(--panel); padding:6px; border-radius:4px; }
pre.err { background:var(--errbg); color:var(--err); }
.error { color:var(--err); background:var(--errbg); padding:4px 8px; border-radius:4px; margin:4px 0; white-space:pre-wrap; }
.limit { color:var(--warn); background:var(--warnbg); padding:4px 8px; border-radius:4px; margin:4px 0; }
.showall { margin-top:4px; }
.subagent { border-left:3px solid var(--sub); padding-left:12px; margin-top:8px; }
.subagent h1 { font-size:16px; }
figure.chart { margin:6px 0 4px; } figure.chart figcaption { color:var(--dim); font-size:12px; }
svg rect.bar { fill:#8cb4e8; } svg rect.bar:hover { fill:var(--accent); }
svg polyline.cost { fill:none; stroke:#d4a72c; stroke-width:2; } svg circle.cost { fill:#d4a72c; }
svg text { font-size:10px; fill:var(--dim); }
table.sessions { border-collapse:collapse; width:100%; font-size:13px; }
table.sessions th,table.sessions td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
table.sessions th { color:var(--dim); font-weight:600; position:sticky; top:46px; background:var(--bg); }
table.sessions td.num { text-align:right; font-variant-numeric:tabular-nums; }
table.sessions tr:hover td { background:var(--panel); }
.filters input,.filters select { font:inherit; font-size:13px; padding:2px 6px; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
.hidden { display:none; }
"""

COMMON_JS = r"""
"use strict";
function readJSON(id) { var n = document.getElementById(id); return n ? JSON.parse(n.textContent) : null; }
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function add(parent, child) { parent.appendChild(child); return child; }
function num(n) { return (n || 0).toLocaleString("en-US"); }
function money(c) { return c === null || c === undefined ? "–" : "$" + Number(c).toFixed(4); }
function pad2(n) { return (n < 10 ? "0" : "") + n; }
function dur(ms) {
  if (ms === null || ms === undefined) return "–";
  var s = ms / 1000;
  if (s < 60) return s.toFixed(1) + "s";
  var m = Math.floor(s / 60), sec = Math.round(s % 60);
  if (m < 60) return m + "m " + pad2(sec) + "s";
  return Math.floor(m / 60) + "h " + pad2(m % 60) + "m";
}
function when(iso) {
  if (!iso) return "–";
  var d = new Date(iso);
  return isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}
"""

REPORT_JS = r"""
(function () {
  var cfg = readJSON("caw-config") || {};
  var data = readJSON("caw-data");
  var FOLD_LINES = 30;
  var fillers = new WeakMap();

  function tokens(u) {
    var parts = [num(u.input_tokens) + " in", num(u.output_tokens) + " out"];
    if (u.cache_read_tokens) parts.push(num(u.cache_read_tokens) + " cache read");
    if (u.cache_write_tokens) parts.push(num(u.cache_write_tokens) + " cache write");
    if (u.reasoning_tokens) parts.push(num(u.reasoning_tokens) + " reasoning");
    return parts.join(" · ");
  }

  function fullText(obj, done) {
    if (obj.f === undefined || obj.f === null) { done(obj.t); return; }
    if (cfg.full) {
      fetch(cfg.full + obj.f, {cache: "no-store"})
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(done, function (e) { done(obj.t + "\n[caw: the full text could not be loaded: " + e.message + "]"); });
      return;
    }
    var node = document.getElementById("caw-full-" + obj.f);
    done(node ? JSON.parse(node.textContent) : obj.t);
  }

  function textView(obj, cls) {
    var box = el("div", "textview");
    var pre = add(box, el("pre", cls));
    var lines = obj.t.split("\n");
    var cut = obj.f !== undefined && obj.f !== null;
    if (lines.length > FOLD_LINES) { pre.textContent = lines.slice(0, FOLD_LINES).join("\n") + "\n…"; cut = true; }
    else pre.textContent = obj.t + (cut ? "…" : "");
    if (cut) {
      var size = obj.n ? num(obj.n) + " characters" : num(lines.length) + " lines";
      var btn = add(box, el("button", "showall", "show all (" + size + ")"));
      btn.type = "button";
      btn.addEventListener("click", function () {
        btn.disabled = true; btn.textContent = "loading…";
        fullText(obj, function (t) { btn.remove(); showChunked(box, pre, t); });
      });
    }
    return box;
  }

  // a giant output (tens of MB) is shown SHOW_CHARS at a time: one pre with 50 MB of text stalls the page
  var SHOW_CHARS = 2000000;
  function showChunked(box, pre, text) {
    var shown = Math.min(text.length, SHOW_CHARS);
    pre.textContent = text.slice(0, shown);
    if (shown >= text.length) return;
    var more = add(box, el("button", "showall"));
    more.type = "button";
    function label() { more.textContent = "show more (" + num(shown) + " of " + num(text.length) + " characters shown)"; }
    label();
    more.addEventListener("click", function () {
      var next = Math.min(text.length, shown + SHOW_CHARS);
      pre.appendChild(document.createTextNode(text.slice(shown, next)));
      shown = next;
      if (shown >= text.length) more.remove(); else label();
    });
  }

  function folded(cls, key, summaryNodes, fill) {
    var d = el("details", cls);
    d.dataset.key = key;
    var s = add(d, el("summary"));
    summaryNodes.forEach(function (n) { s.appendChild(n); });
    fillers.set(d, fill);
    return d;
  }
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (d.open && fillers.has(d)) { var fill = fillers.get(d); fillers.delete(d); fill(d); }
  }, true);

  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function chart(t) {
    var turns = t.turns, n = turns.length, per = Math.ceil(n / 240), buckets = [];
    for (var i = 0; i < n; i += per) {
      var tok = 0, cost = null, last = Math.min(n, i + per);
      for (var j = i; j < last; j++) {
        tok += turns[j].usage.total_tokens || 0;
        if (turns[j].usage.cost_usd !== null && turns[j].usage.cost_usd !== undefined) cost = (cost || 0) + turns[j].usage.cost_usd;
      }
      buckets.push({from: i + 1, to: last, tok: tok, cost: cost});
    }
    var W = 720, H = 96, top = 8, bottom = 16, left = 4, right = 4;
    var maxTok = Math.max.apply(null, buckets.map(function (b) { return b.tok; }).concat([1]));
    var costs = buckets.filter(function (b) { return b.cost !== null; });
    var maxCost = Math.max.apply(null, costs.map(function (b) { return b.cost; }).concat([0]));
    var fig = el("figure", "chart");
    var s = svg("svg", {viewBox: "0 0 " + W + " " + H, width: "100%", height: H, role: "img",
                        "aria-label": "tokens and cost per turn"});
    var bw = (W - left - right) / buckets.length, ph = H - top - bottom, points = [];
    buckets.forEach(function (b, k) {
      var h = Math.max(1, ph * b.tok / maxTok), x = left + k * bw;
      var w = Math.max(1, Math.min(48, bw * 0.8));
      var r = add(s, svg("rect", {"class": "bar", x: x + (bw - w) / 2, y: top + ph - h, width: w, height: h}));
      var name = b.from === b.to ? "turn " + b.from : "turns " + b.from + "–" + b.to;
      add(r, svg("title", {}, name + ": " + num(b.tok) + " tokens, " + money(b.cost)));
      if (b.cost !== null && maxCost > 0) points.push([x + bw / 2, top + ph - ph * b.cost / maxCost]);
    });
    if (points.length > 1) add(s, svg("polyline", {"class": "cost", points: points.map(function (p) { return p.join(","); }).join(" ")}));
    points.forEach(function (p) { add(s, svg("circle", {"class": "cost", cx: p[0], cy: p[1], r: 2.5})); });
    add(s, svg("text", {x: left, y: H - 3}, "turn 1"));
    add(s, svg("text", {x: W - right, y: H - 3, "text-anchor": "end"}, "turn " + n));
    fig.appendChild(s);
    add(fig, el("figcaption", null, "tokens per turn (bars, max " + num(maxTok) + ")" +
        (costs.length ? " · cost per turn (line, max " + money(maxCost) + ")" : " · no cost reported")));
    return fig;
  }

  function renderHeader(t, nested) {
    var h = t.header, box = el("div", "header");
    var title = add(box, el("h1", null, (nested ? "subagent " : "trajectory ") + (t.session_id || t.label || "")));
    add(title, el("span", "badge " + h.outcome, h.outcome));
    var dl = add(box, el("dl", "facts"));
    function fact(k, v, cls) { add(dl, el("dt", null, k)); add(dl, el("dd", cls || null, v)); }
    fact("provider", h.provider || "–");
    fact("model", h.model || "–");
    if (h.reasoning) fact("effort", h.reasoning);
    fact("turns", num(h.turns));
    fact("tool calls", num(h.tool_calls) + (h.tool_errors ? " (" + num(h.tool_errors) + " failed)" : ""), h.tool_errors ? "errtext" : null);
    fact("duration", dur(h.duration_ms) + " working" + (h.wall_ms !== null ? " · " + dur(h.wall_ms) + " wall clock" : ""));
    fact("tokens", tokens(h.usage) + " · " + num(h.usage.total_tokens) + " total");
    fact("cost", money(h.usage.cost_usd));
    if (h.subagent_usage) fact("subagents", tokens(h.subagent_usage) + " · " + money(h.subagent_usage.cost_usd) + " (not in the totals above)");
    fact("created", when(h.created_at) + (h.completed_at ? " · ended " + when(h.completed_at) : ""));
    if (h.cwd) fact("cwd", h.cwd, "mono");
    fact("attempts", t.attempts.length ? t.attempts.map(function (a) {
      return a.provider + ": " + a.reason + (a.error ? " (" + a.error + ")" : "");
    }).join(" → ") : "–");
    fact("limit waits", t.waits.length ? t.waits.map(function (w) {
      return "turn " + w.turn + ": " + w.kind + " limit" + (w.waited_ms !== null ? ", waited " + dur(w.waited_ms) : ", not resumed") +
        (w.resets_at ? ", reset " + when(w.resets_at) : "");
    }).join("; ") : "none", t.waits.length ? "errtext" : null);
    if (h.denied_tool_uses) fact("refused", num(h.denied_tool_uses) + " tool use(s) refused by the CLI", "errtext");
    if (h.pending_message) fact("pending", h.pending_message + " (not answered yet)");
    if (h.resume_handle) fact("resume", "caw resume " + h.resume_handle, "mono");
    var meta = Object.keys(h.metadata || {});
    if (meta.length) fact("metadata", meta.map(function (k) { return k + "=" + JSON.stringify(h.metadata[k]); }).join(" · "), "mono");
    t.notes.forEach(function (n) { add(box, el("div", "note", n)); });
    if (h.system_prompt) {
      box.appendChild(folded("block system", (nested || "") + "system", [el("span", "label", "system prompt")],
        function (d) { add(d, el("div", "body")).appendChild(textView(h.system_prompt, "")); }));
    }
    return box;
  }

  function renderBlock(b, key) {
    if (b.k === "text") {
      var d = el("div", "block text");
      d.appendChild(textView(b, ""));
      return d;
    }
    if (b.k === "thinking") {
      return folded("block thinking", key, [el("span", "label", "thinking"), el("span", "meta", num(b.n || b.t.length) + " characters")],
        function (d) { add(d, el("div", "body")).appendChild(textView(b, "")); });
    }
    var nodes = [el("span", "label", "tool"), el("span", "tname", b.name), el("span", "targ", b.summary)];
    if (b.err) nodes.push(el("span", "badge failed", "error"));
    else if (b.output === null) nodes.push(el("span", "badge running", "no result"));
    if (b.sub) nodes.push(el("span", "badge sub", "subagent · " + (b.sub.header.provider || "?") + " · " + num(b.sub.header.turns) + " turn(s) · " + money(b.sub.header.usage.cost_usd)));
    var tool = folded("block tool" + (b.err ? " err" : ""), key, nodes, function (d) {
      var body = add(d, el("div", "body"));
      if (b.args.t) { add(body, el("div", "label", "arguments")); body.appendChild(textView(b.args, "args")); }
      add(body, el("div", "label", b.err ? "error" : "output"));
      body.appendChild(b.output === null ? el("div", "meta", "no result arrived") : textView(b.output, b.err ? "out err" : "out"));
      if (b.sub_error) add(body, el("div", "error", b.sub_error));
      if (b.sub) { var nest = add(body, el("div", "subagent")); renderTrajectory(b.sub, key + "/", nest); }
    });
    tool.dataset.tool = b.id;
    if (b.sub) tool.open = true;
    return tool;
  }

  function renderTurn(turn, i, prefix) {
    var sec = el("section", "turn status-" + turn.status);
    sec.dataset.turn = String(i + 1);
    if (!prefix) sec.id = "turn-" + (i + 1);
    var h = add(sec, el("h2"));
    add(h, el("span", null, "turn " + (i + 1)));
    add(h, el("span", "badge " + turn.status, turn.status));
    var who = (turn.provider || "–") + (turn.model ? " (" + turn.model + ")" : "");
    add(h, el("span", "meta", [who, tokens(turn.usage), money(turn.usage.cost_usd), dur(turn.duration_ms), when(turn.started_at)].join(" · ")));
    if (turn.error) add(sec, el("div", "error", "error: " + turn.error.type + " (" + turn.error.reason + "): " + turn.error.message));
    if (turn.limit) add(sec, el("div", "limit", "usage limit: " + turn.limit.kind + (turn.limit.resets_at ? ", resets " + when(turn.limit.resets_at) : "") +
      (turn.limit.waitable ? "" : ", not waitable") + (turn.limit.message ? " — " + turn.limit.message : "")));
    if (turn.retries) add(sec, el("div", "meta", "the CLI retried " + turn.retries + " time(s) on its own"));
    if (turn.denied_tools.length) add(sec, el("div", "error", "refused tool uses: " + turn.denied_tools.join(", ")));
    var user = add(sec, el("div", "block user"));
    add(user, el("span", "label", "user"));
    user.appendChild(textView(turn.input, ""));
    turn.blocks.forEach(function (b, j) { sec.appendChild(renderBlock(b, prefix + (i + 1) + "." + (j + 1))); });
    return sec;
  }

  function renderTrajectory(t, prefix, container) {
    container.appendChild(renderHeader(t, prefix));
    if (t.turns.length > 1) container.appendChild(chart(t));  // one bar says nothing
    var list = add(container, el("div", "turns"));
    var frag = document.createDocumentFragment();
    t.turns.forEach(function (turn, i) { frag.appendChild(renderTurn(turn, i, prefix)); });
    list.appendChild(frag);
  }

  function toolbar(root) {
    var bar = add(root, el("div", "toolbar"));
    if (cfg.index) { var back = add(bar, el("a", null, "← sessions")); back.href = cfg.index; }
    var open = add(bar, el("button", null, "open all tool calls")); open.type = "button";
    var close = add(bar, el("button", null, "fold all")); close.type = "button";
    var errs = add(bar, el("label", "meta")); var box = add(errs, el("input")); box.type = "checkbox"; box.id = "only-errors";
    errs.appendChild(document.createTextNode(" failed tool calls only"));
    var state = add(bar, el("span", "meta", cfg.live ? "live: checks for changes every " + (cfg.interval / 1000) + "s" : ""));
    state.id = "live-state";
    open.addEventListener("click", function () { document.querySelectorAll("#app details.tool").forEach(function (d) { d.open = true; }); });
    close.addEventListener("click", function () { document.querySelectorAll("#app details").forEach(function (d) { d.open = false; }); });
    box.addEventListener("change", function () {
      document.querySelectorAll("#app details.tool:not(.err)").forEach(function (d) { d.classList.toggle("hidden", box.checked); });
    });
  }

  function render() {
    // a live redraw keeps what the reader had: the open folds and the scroll position
    var old = document.getElementById("app"), y = window.scrollY;
    var keep = old ? Array.prototype.map.call(old.querySelectorAll("details[open]"), function (d) { return d.dataset.key; }) : [];
    var app = el("div");
    app.id = "app";
    renderTrajectory(data, "", app);
    if (old) old.replaceWith(app); else root.appendChild(app);
    keep.forEach(function (k) {
      var d = app.querySelector('details[data-key="' + CSS.escape(k) + '"]');
      if (d) d.open = true;
    });
    window.scrollTo(0, y);
    requestAnimationFrame(function () { window.scrollTo(0, y); });  // after the reopened folds filled in
  }

  function poll() {
    fetch(cfg.live + "?v=" + encodeURIComponent(data.version || ""), {cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (next) {
        if (next && !next.unchanged && next.version !== data.version) {
          data = next; render();
          document.getElementById("live-state").textContent = "live: updated " + new Date().toLocaleTimeString();
        }
      }, function () { document.getElementById("live-state").textContent = "live: the server is not answering"; });
  }

  var root = document.getElementById("root");
  toolbar(root);
  render();
  if (cfg.live) setInterval(poll, cfg.interval || 2000);
  window.cawReady = performance.now();
  document.body.dataset.ready = "1";
})();
"""

INDEX_JS = r"""
(function () {
  var cfg = readJSON("caw-config") || {};
  var rows = [];
  var root = document.getElementById("root");
  add(root, el("h1", null, "caw sessions"));
  add(root, el("div", "meta", cfg.data_dir || ""));
  var bar = add(root, el("div", "toolbar filters"));
  var provider = add(bar, el("select")); provider.id = "f-provider";
  var outcome = add(bar, el("select")); outcome.id = "f-outcome";
  var text = add(bar, el("input")); text.id = "f-text"; text.type = "search"; text.placeholder = "filter: id, prompt, model";
  var count = add(bar, el("span", "meta"));
  var table = add(root, el("table", "sessions"));
  var head = add(add(table, el("thead")), el("tr"));
  ["created", "provider", "model", "outcome", "turns", "tools", "cost", "duration", "first prompt"].forEach(function (c) {
    add(head, el("th", null, c));
  });
  var body = add(table, el("tbody"));
  body.id = "sessions";

  function options(select, label, values) {
    var current = select.value;
    select.textContent = "";
    add(select, el("option", null, "any " + label)).value = "";
    values.forEach(function (v) { add(select, el("option", null, v)).value = v; });
    select.value = values.indexOf(current) >= 0 ? current : "";
  }
  function distinct(key) {
    var seen = {};
    rows.forEach(function (r) { if (r[key]) seen[r[key]] = 1; });
    return Object.keys(seen).sort();
  }
  function draw() {
    var p = provider.value, o = outcome.value, q = text.value.trim().toLowerCase(), shown = 0;
    body.textContent = "";
    rows.forEach(function (r) {
      if (p && r.provider !== p) return;
      if (o && r.outcome !== o) return;
      if (q && (r.session_id + " " + r.first_prompt + " " + (r.model || "")).toLowerCase().indexOf(q) < 0) return;
      shown++;
      var tr = add(body, el("tr"));
      tr.dataset.session = r.session_id;
      add(tr, el("td", null, when(r.created_at)));
      add(tr, el("td", null, r.provider || "–"));
      add(tr, el("td", null, r.model || "–"));
      var oc = add(tr, el("td")); add(oc, el("span", "badge " + r.outcome, r.outcome));
      if (r.damaged) add(oc, el("div", "errtext", "damaged: " + r.damaged));
      add(tr, el("td", "num", num(r.turns)));
      add(tr, el("td", "num", num(r.tool_calls)));
      add(tr, el("td", "num", money(r.cost_usd)));
      add(tr, el("td", "num", dur(r.duration_ms)));
      var cell = add(tr, el("td"));
      var a = add(cell, el("a", null, r.first_prompt.slice(0, 160) || "(no prompt)"));
      a.href = cfg.session + encodeURIComponent(r.session_id);
    });
    count.textContent = shown + " of " + rows.length + " session(s)";
  }
  function load() {
    fetch(cfg.api, {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (list) {
      rows = list;
      options(provider, "provider", distinct("provider"));
      options(outcome, "outcome", distinct("outcome"));
      draw();
      document.body.dataset.ready = "1";
    });
  }
  [provider, outcome].forEach(function (s) { s.addEventListener("change", draw); });
  text.addEventListener("input", draw);
  load();
  setInterval(load, cfg.interval || 3000);
})();
"""
