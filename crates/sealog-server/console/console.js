// sealog console: explore, live tail, and proofs checked in this browser.
//
// Plain ES module, no build step and no dependency: what the server sends is
// what runs, and `sealog serve` embeds it. The token lives in
// sessionStorage and goes only into the Authorization header, never into a
// URL. Proofs are checked here with WebCrypto (SHA-256 per RFC 9162, the
// checkpoint's Ed25519 signature against the key the user pinned), so the
// person looking need not trust the server.

const TOKEN = "sealog.token";
const PAGE = 100;
const TAIL_KEEP = 1000;
const TAIL_FRAME = 100;

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

// ---- the session -----------------------------------------------------------

const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  set token(t) {
    if (t) sessionStorage.setItem(TOKEN, t);
    else sessionStorage.removeItem(TOKEN);
  },
  realm: null,
  size: 0,
};

function banner(text) {
  const b = $("#banner");
  b.textContent = text || "";
  b.hidden = !text;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// A request with the token; errors carry the server's own message.
async function api(path, opts = {}) {
  let r;
  try {
    r = await fetch(path, {
      ...opts,
      headers: { authorization: `Bearer ${session.token}`, ...(opts.headers || {}) },
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "the server cannot be reached");
  }
  if (!r.ok) {
    let msg = `HTTP ${r.status}`;
    try {
      const j = await r.json();
      if (j && j.error) msg = j.error;
    } catch (_) {
      // not JSON: keep the status
    }
    throw new ApiError(r.status, msg);
  }
  return r;
}

// ---- bytes, hashes, notes ----------------------------------------------------

const enc = new TextEncoder();

function b64decode(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function b64encode(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const leafHash = (line) => sha256(concat(new Uint8Array([0]), enc.encode(line)));
const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

// RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or an error.
async function rootFromInclusion(index, size, leaf, proof) {
  if (index >= size) throw new Error(`seq ${index} is not below the tree size ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error("the proof is longer than the tree allows");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is shorter than the tree needs");
  return r;
}

// Exact for any safe integer (bitwise operators would cut it to 32 bits).
function isPowerOfTwo(n) {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}

// RFC 9162 §2.1.4.2: whether the tree (first, firstRoot) is a prefix of
// (second, secondRoot); an error names the failed step.
async function checkConsistency(first, second, firstRoot, secondRoot, proof) {
  if (first > second) throw new Error("the older size is larger than the newer");
  if (first === second) {
    if (proof.length !== 0) throw new Error("a proof between equal sizes must be empty");
    if (!same(firstRoot, secondRoot)) throw new Error("same size, different roots");
    return;
  }
  if (first === 0) return;
  let path = proof.slice();
  if (isPowerOfTwo(first)) path = [firstRoot, ...path];
  if (path.length === 0) throw new Error("empty consistency proof");
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new Error("the proof is longer than the trees allow");
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is shorter than the trees need");
  if (!same(fr, firstRoot)) throw new Error("the proof does not lead to the older root");
  if (!same(sr, secondRoot)) throw new Error("the proof does not lead to the newer root");
}

// A verifier key `<name>+<hex key id>+<base64(0x01 ‖ key)>`.
async function parseKey(text) {
  const t = text.trim();
  // A key name has no "+"; the base64 key may.
  const a = t.indexOf("+");
  const b = a < 0 ? -1 : t.indexOf("+", a + 1);
  if (a <= 0 || b < 0) throw new Error("a key is <name>+<key id>+<base64 key>");
  const name = t.slice(0, a);
  const id = t.slice(a + 1, b);
  let raw;
  try {
    raw = b64decode(t.slice(b + 1));
  } catch (_) {
    throw new Error("the key is not base64");
  }
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 key (0x01 and 32 bytes)");
  const pub = raw.slice(1);
  const want = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
  if (hex(want) !== id.toLowerCase()) throw new Error("the key id does not match the key");
  const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  return { name, id: want, key, text: t };
}

// A signed checkpoint: its size and root once its signature by `k` holds.
async function openCheckpoint(text, k) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Error("checkpoint: no signature block");
  const body = text.slice(0, split + 1);
  const lines = body.split("\n");
  if (lines.length < 4) throw new Error("checkpoint: the body is not origin, size, root");
  const [origin, sizeText, rootText] = lines;
  if (!/^[0-9]+$/.test(sizeText)) throw new Error("checkpoint: the size is not a number");
  const root = b64decode(rootText);
  if (root.length !== 32) throw new Error("checkpoint: the root is not 32 bytes");
  if (origin !== k.name) throw new Error(`checkpoint: origin ${origin} is not the pinned key's ${k.name}`);
  let sig = null;
  for (const line of text.slice(split + 2).split("\n")) {
    if (!line.startsWith("\u2014 ")) continue;
    const [name, b64] = line.slice(2).split(" ");
    if (name !== k.name) continue;
    const raw = b64decode(b64 || "");
    if (raw.length === 68 && same(raw.slice(0, 4), k.id)) sig = raw.slice(4);
  }
  if (!sig) throw new Error("signature: no signature by the pinned key");
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, k.key, sig, enc.encode(body));
  if (!ok) throw new Error("signature: the checkpoint's Ed25519 signature does not verify");
  return { origin, size: Number(sizeText), root };
}

function pinnedKey(realm) {
  return localStorage.getItem(`sealog.key.${realm}`);
}

// The tree this browser saw last of the realm (size and root), kept only
// after its signature and consistency were checked here.
function seenTree(realm) {
  try {
    return JSON.parse(localStorage.getItem(`sealog.seen.${realm}`) || "null");
  } catch (_) {
    return null;
  }
}

// Checks that the signed tree `cp` extends the one this browser saw last
// (a consistency proof from the server, checked here), then remembers it.
// Returns what was checked; throws naming the failed check.
async function extendsSeen(realm, cp) {
  const seen = seenTree(realm);
  let said;
  if (!seen) {
    said = "first checkpoint this browser has seen of the realm: later ones must extend it";
  } else if (seen.size > cp.size) {
    throw new Error(`consistency: the tree shrank from ${seen.size} to ${cp.size} records since this browser last looked`);
  } else {
    const pr = await (await api(`/v1/proof/consistency?from=${seen.size}&to=${cp.size}`)).json();
    try {
      await checkConsistency(seen.size, cp.size, b64decode(seen.root), cp.root, pr.hashes.map(b64decode));
    } catch (e) {
      throw new Error(`consistency: ${e.message}`);
    }
    said = `consistent with the tree of ${seen.size} records this browser saw before`;
  }
  localStorage.setItem(`sealog.seen.${realm}`, JSON.stringify({ size: cp.size, root: b64encode(cp.root) }));
  return said;
}

// ---- pages ----------------------------------------------------------------

function signIn(message) {
  if (tailing) tailing.abort();
  session.token = null;
  session.realm = null;
  $("#who").textContent = "";
  $("#signout").hidden = true;
  const err = el("p", { class: "error", id: "signin-error", role: "alert", text: message || "" });
  err.hidden = !message;
  const form = el(
    "form",
    { class: "signin", onsubmit: (e) => (e.preventDefault(), submit()) },
    el("h1", { text: "Sign in" }),
    el("p", { text: "A realm's query token reads its records; it stays in this tab only." }),
    el("label", { for: "token" }, "Token"),
    el("input", {
      id: "token",
      name: "token",
      type: "password",
      autocomplete: "off",
      required: true,
      spellcheck: "false",
    }),
    el("button", { type: "submit", text: "Sign in" }),
    err,
  );
  async function submit() {
    session.token = $("input[name=token]", form).value.trim();
    try {
      await whoAmI();
      route();
    } catch (e) {
      const why =
        e.status === 401
          ? "That token is unknown or revoked."
          : e.status === 403
            ? `That token cannot read: ${e.message}`
            : `Cannot sign in: ${e.message}`;
      signIn(why);
    }
  }
  show(form);
  $("input[name=token]").focus();
}

// Checks the token and learns its realm and size (an empty page of the
// query API names both, and is not an error for an empty realm).
async function whoAmI() {
  const r = await api("/v1/query?limit=0");
  session.realm = r.headers.get("x-sealog-realm") || "";
  session.size = Number(r.headers.get("x-sealog-tree-size") || 0);
  $("#who").textContent = session.size > 0 ? `realm ${session.realm}` : `realm ${session.realm} (no records yet)`;
  const seen = seenTree(session.realm);
  if (seen && seen.size > session.size) {
    banner(`Warning: the server reports ${session.size} records, fewer than the ${seen.size} of the signed tree this browser saw before.`);
  }
  $("#signout").hidden = false;
}

function show(node) {
  const app = $("#app");
  app.replaceChildren(node);
  const h = location.hash;
  const page = /^#\/explore.*where=kind(%3A|:)audit/.test(h) ? "audit" : h.match(/^#\/(\w+)/)?.[1] || "explore";
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.dataset.page === page);
  }
}

const RANGES = [
  ["15m", "Last 15 minutes", 15 * 60],
  ["1h", "Last hour", 3600],
  ["24h", "Last 24 hours", 86400],
  ["7d", "Last 7 days", 7 * 86400],
  ["30d", "Last 30 days", 30 * 86400],
  ["all", "All time", 0],
  ["custom", "Between…", 0],
];

function viewParams() {
  const i = location.hash.indexOf("?");
  return new URLSearchParams(i < 0 ? "" : location.hash.slice(i + 1));
}

// The `field:value` terms in the filter box; a value with spaces is
// written in double quotes (`host:"web 1"`).
function whereTerms(text) {
  return (text.match(/[^\s:]+:"[^"]*"|\S+/g) || []).map((t) => t.replace(/:"(.*)"$/, ":$1"));
}

function termText(field, value) {
  return /[\s"]/.test(value) ? `${field}:"${value.replaceAll('"', "")}"` : `${field}:${value}`;
}

// The query API's parameters for what the view shows.
function queryParams(v) {
  const p = new URLSearchParams();
  if (v.get("q")) p.set("q", v.get("q"));
  for (const w of v.getAll("where")) p.append("where", w);
  const range = v.get("range") || "24h";
  const secs = RANGES.find((r) => r[0] === range)?.[2];
  if (secs) p.set("from", new Date(Date.now() - secs * 1000).toISOString());
  if (range === "custom") {
    if (v.get("from")) p.set("from", new Date(v.get("from")).toISOString());
    if (v.get("to")) p.set("to", new Date(v.get("to")).toISOString());
  }
  return p;
}

// An ISO time as a datetime-local input shows it (local time, seconds).
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 19);
}

const DEFAULT_FACETS = ["app", "level", "host"];

function facetFields(v) {
  const extra = (v.get("facets") || "").split(",").filter(Boolean);
  return [...new Set([...DEFAULT_FACETS, ...extra])].slice(0, 8);
}

function goExplore(v) {
  const hash = `#/explore?${v}`;
  // The same query again (a refresh of a relative range, a retry) runs
  // again, though no hashchange fires.
  if (location.hash === hash) route();
  else location.hash = hash;
}

function summary(line) {
  try {
    const j = JSON.parse(line);
    const t = j.time || j.timestamp || j.ts || j.received_at || "";
    const msg = j.message ?? j.msg ?? "";
    return { t: String(t), level: j.level ?? j.pri ?? "", app: j.app ?? "", msg: String(msg), json: j };
  } catch (_) {
    return { t: "", level: "", app: "", msg: line, json: null };
  }
}

function rowFor(seq, line) {
  const s = summary(line);
  const detail = el("div", { class: "detail", hidden: true });
  // The detail is built on first opening: a live tail makes thousands of
  // rows a second, few of which are ever opened.
  const fill = () => {
    const verdict = el("div", { class: "verdict", "aria-live": "polite" });
    detail.append(
      el("pre", { class: "json", text: s.json ? JSON.stringify(s.json, null, 2) : line }),
      el("details", { class: "raw" }, el("summary", { text: "Stored line (the bytes Verify hashes)" }), el("pre", { class: "line", text: line })),
      el("button", { type: "button", class: "verify", onclick: () => verify(seq, line, verdict) }, "Verify"),
      verdict,
    );
  };
  return el(
    "li",
    { class: "row", "data-seq": String(seq) },
    el(
      "button",
      {
        type: "button",
        class: "expand",
        "aria-expanded": "false",
        onclick: (e) => {
          const open = detail.hidden;
          if (open && !detail.firstChild) fill();
          detail.hidden = !open;
          e.currentTarget.setAttribute("aria-expanded", String(open));
        },
      },
      el("span", { class: "seq", text: `#${seq}` }),
      el("span", { class: "time", text: s.t }),
      el("span", { class: `level level-${String(s.level).toLowerCase()}`, text: String(s.level) }),
      el("span", { class: "app", text: String(s.app) }),
      el("span", { class: "msg", text: s.msg }),
    ),
    detail,
  );
}

async function verify(seq, line, out) {
  out.replaceChildren(el("p", { text: "Checking…" }));
  const steps = [];
  const step = (ok, text) => steps.push(el("li", { class: ok ? "ok" : "bad", text }));
  const finish = (ok, why) => {
    out.replaceChildren(
      el("p", { class: `result ${ok ? "verified" : "failed"}`, text: ok ? "Verified" : `Failed: ${why}` }),
      el("ol", { class: "steps" }, ...steps),
    );
  };
  const realm = session.realm;
  const pinned = realm && pinnedKey(realm);
  if (!pinned) {
    finish(false, "no pinned key for this realm; pin it on the Realm page");
    return;
  }
  try {
    const k = await parseKey(pinned);
    const cpText = await (await api("/v1/checkpoint")).text();
    let cp;
    try {
      cp = await openCheckpoint(cpText, k);
    } catch (e) {
      step(false, e.message);
      throw e;
    }
    step(true, `checkpoint signed by ${k.name} (key id ${hex(k.id)}): size ${cp.size}, root ${hex(cp.root)}`);
    try {
      step(true, await extendsSeen(realm, cp));
    } catch (e) {
      step(false, e.message);
      throw e;
    }
    const proof = await (await api(`/v1/proof/inclusion?seq=${seq}&size=${cp.size}`)).json();
    const path = proof.hashes.map(b64decode);
    const leaf = await leafHash(line);
    step(true, `leaf hash SHA-256(0x00 ‖ record) = ${hex(leaf)}`);
    path.forEach((h, i) => step(true, `path ${i + 1}: ${hex(h)}`));
    let root;
    try {
      root = await rootFromInclusion(seq, cp.size, leaf, path);
    } catch (e) {
      step(false, `inclusion: ${e.message}`);
      throw new Error(`inclusion: ${e.message}`);
    }
    if (!same(root, cp.root)) {
      step(false, `inclusion: the path leads to ${hex(root)}, not the checkpoint's root`);
      throw new Error("inclusion: the proof does not lead to the signed root");
    }
    step(true, `the path leads to the signed root ${hex(root)}`);
    finish(true);
  } catch (e) {
    finish(false, e.message);
  }
}

function explore() {
  const v = viewParams();
  const range = v.get("range") || "24h";
  const rangeSel = el(
    "select",
    { name: "range", "aria-label": "Time range" },
    ...RANGES.map(([id, label]) => el("option", { value: id, selected: id === range }, label)),
  );
  const from = el("input", { type: "datetime-local", step: "1", name: "from", "aria-label": "From", value: localInput(v.get("from")) });
  const to = el("input", { type: "datetime-local", step: "1", name: "to", "aria-label": "To", value: localInput(v.get("to")) });
  const custom = el("span", { class: "custom" }, from, " – ", to);
  custom.hidden = range !== "custom";
  rangeSel.addEventListener("change", () => (custom.hidden = rangeSel.value !== "custom"));
  const q = el("input", { name: "q", type: "search", placeholder: "text to find", value: v.get("q") || "", "aria-label": "Text" });
  const where = el("input", {
    name: "where",
    type: "text",
    placeholder: "field:value …",
    value: v.getAll("where").map((t) => { const i = t.search(/[:=]/); return i > 0 ? termText(t.slice(0, i), t.slice(i + 1)) : t; }).join(" "),
    "aria-label": "Field filters",
  });
  const form = el(
    "form",
    {
      class: "search",
      role: "search",
      onsubmit: (e) => {
        e.preventDefault();
        const p = new URLSearchParams();
        if (q.value) p.set("q", q.value);
        for (const t of whereTerms(where.value)) p.append("where", t);
        p.set("range", rangeSel.value);
        if (rangeSel.value === "custom") {
          if (from.value) p.set("from", new Date(from.value).toISOString());
          if (to.value) p.set("to", new Date(to.value).toISOString());
        }
        if (v.get("facets")) p.set("facets", v.get("facets"));
        goExplore(p);
      },
    },
    q,
    where,
    rangeSel,
    custom,
    el("button", { type: "submit" }, "Search"),
  );
  const status = el("p", { class: "status", id: "status", "aria-live": "polite" });
  const list = el("ol", { class: "rows", id: "rows" });
  const more = el("div", { class: "more", id: "more" });
  const tailBtn = el("button", { type: "button", id: "tail", "aria-pressed": "false" }, "Live tail");
  const pauseBtn = el("button", { type: "button", id: "pause", hidden: true, "aria-pressed": "false" }, "Pause");
  const rate = el("span", { class: "rate", id: "rate" });
  const hist = el("figure", { class: "histogram", id: "histogram" });
  const facets = el("aside", { class: "facets", id: "facets", "aria-label": "Facets" });
  show(
    el(
      "section",
      { class: "explore" },
      form,
      el(
        "div",
        { class: "layout" },
        facets,
        el("div", { class: "results" }, hist, el("div", { class: "bar" }, status, tailBtn, pauseBtn, rate), list, more),
      ),
    ),
  );

  const params = queryParams(v);
  let cursor = null;
  let loading = false;
  let shown = 0;
  let size = null;
  let done = false;
  async function page() {
    if (loading || done) return;
    loading = true;
    const p = new URLSearchParams(params);
    p.set("order", "newest");
    p.set("limit", String(PAGE));
    if (cursor !== null) p.set("cursor", String(cursor));
    try {
      const r = await api(`/v1/query?${p}`);
      size = size ?? r.headers.get("x-sealog-tree-size");
      const next = r.headers.get("x-sealog-next-cursor");
      const text = await r.text();
      const lines = text.split("\n").filter((l) => l.length > 0);
      const frag = document.createDocumentFragment();
      for (const line of lines) frag.append(rowFor(seqOf(line), line));
      list.append(frag);
      shown += lines.length;
      cursor = next === null ? null : Number(next);
      done = next === null;
      // For the speed bench (bench/console.py): rows painted.
      requestAnimationFrame(() => {
        performance.mark("sealog:rows");
        // A page that leaves the end in view gets the next one now (the
        // observer only fires when the end comes into view).
        if (!done && more.isConnected && more.getBoundingClientRect().top < window.innerHeight) page();
      });
      status.textContent =
        shown === 0
          ? size === "0"
            ? "This realm has no records yet."
            : "No records match."
          : `${shown} record${shown === 1 ? "" : "s"} shown, newest first${done ? "" : "; scroll for more"} (tree size ${size})`;
    } catch (e) {
      if (e.status === 401) return signIn("The token is no longer valid.");
      if (e.status === 0) banner(`The server cannot be reached (${location.host}); retry when it is back.`);
      status.textContent = `Search failed: ${e.message}`;
      done = true;
    } finally {
      loading = false;
    }
  }
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) page();
  }).observe(more);
  page().then(() => stats(v, params, hist, facets));
  tailBtn.addEventListener("click", () => tail(params, list, tailBtn, pauseBtn, rate, size));
}

// The histogram and the facets: one request, after the first page.
async function stats(v, params, hist, facets) {
  const p = new URLSearchParams(params);
  p.set("buckets", "60");
  for (const f of facetFields(v)) p.append("facet", f);
  p.set("top", "8");
  hist.replaceChildren(el("p", { class: "status", text: "Counting…" }));
  let s;
  try {
    s = await (await api(`/v1/stats?${p}`)).json();
  } catch (e) {
    hist.replaceChildren(el("p", { class: "status", text: `Counts unavailable: ${e.message}` }));
    return;
  }
  drawHistogram(v, s, hist);
  drawFacets(v, s, facets);
  requestAnimationFrame(() => performance.mark("sealog:stats"));
}

function fmtTime(ns) {
  return new Date(ns / 1e6).toISOString().replace(".000Z", "Z");
}

function drawHistogram(v, s, hist) {
  const W = 600;
  const H = 80;
  const n = s.counts.length;
  const max = Math.max(1, ...s.counts);
  const bw = W / n;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Records over time, ${s.matched} in all; drag to zoom`);
  const zoomTo = (t0, t1) => {
    const p = new URLSearchParams(v);
    p.set("range", "custom");
    p.set("from", new Date(t0 / 1e6).toISOString());
    p.set("to", new Date(Math.max(t1, t0 + 1e6) / 1e6).toISOString());
    goExplore(p);
  };
  s.counts.forEach((c, i) => {
    const h = c === 0 ? 0 : Math.max(1, (c / max) * (H - 4));
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    r.setAttribute("x", String(i * bw + 0.5));
    r.setAttribute("y", String(H - h));
    r.setAttribute("width", String(Math.max(0.5, bw - 1)));
    r.setAttribute("height", String(h));
    r.setAttribute("class", "bucket");
    r.setAttribute("tabindex", "0");
    r.dataset.count = String(c);
    const t0 = s.from_ns + i * s.bucket_ns;
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = `${c} from ${fmtTime(t0)}`;
    r.append(title);
    r.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        zoomTo(t0, t0 + s.bucket_ns);
      }
    });
    svg.append(r);
  });
  const sel = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  sel.setAttribute("class", "selection");
  sel.setAttribute("y", "0");
  sel.setAttribute("height", String(H));
  sel.setAttribute("width", "0");
  svg.append(sel);
  let x0 = null;
  const xOf = (e) => {
    const b = svg.getBoundingClientRect();
    return Math.min(W, Math.max(0, ((e.clientX - b.left) / b.width) * W));
  };
  svg.addEventListener("pointerdown", (e) => {
    x0 = xOf(e);
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener("pointermove", (e) => {
    if (x0 === null) return;
    const x = xOf(e);
    sel.setAttribute("x", String(Math.min(x0, x)));
    sel.setAttribute("width", String(Math.abs(x - x0)));
  });
  svg.addEventListener("pointerup", (e) => {
    if (x0 === null) return;
    const x1 = xOf(e);
    const [a, b] = [Math.min(x0, x1), Math.max(x0, x1)];
    x0 = null;
    const span = s.bucket_ns * n;
    if (b - a < 2) {
      // A click zooms into its bucket.
      const i = Math.min(n - 1, Math.floor(a / bw));
      zoomTo(s.from_ns + i * s.bucket_ns, s.from_ns + (i + 1) * s.bucket_ns);
    } else {
      zoomTo(s.from_ns + (a / W) * span, s.from_ns + (b / W) * span);
    }
  });
  const caption = el(
    "figcaption",
    {},
    el("span", { text: fmtTime(s.from_ns) }),
    el("span", {
      class: "count",
      id: "histogram-count",
      text: `${s.matched} record${s.matched === 1 ? "" : "s"}${s.sampled ? ` (the newest ${s.matched}; older ones not counted)` : ""}`,
    }),
    el("span", { text: fmtTime(s.from_ns + s.bucket_ns * n) }),
  );
  hist.replaceChildren(svg, caption);
}

function drawFacets(v, s, aside) {
  const parts = [el("h2", { text: "Fields" })];
  for (const [field, f] of Object.entries(s.facets)) {
    // `app=x` and `app:x` are the same filter.
    const have = new Set(v.getAll("where").map((t) => t.replace(/^([^:=]+)=/, "$1:")));
    const items = f.top.map(({ value, count }) =>
      // A value cut at 200 characters would filter nothing: shown, not a button.
      value.length > 200 && value.endsWith("…")
        ? el(
            "li",
            { class: "cut", title: "Cut at 200 characters; type the whole value in the filter box to filter by it" },
            el("span", { class: "value", text: value }),
            el("span", { class: "n", text: String(count) }),
          )
        : el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "facet",
            "data-field": field,
            "data-value": value,
            "aria-pressed": String(have.has(`${field}:${value}`)),
            onclick: () => {
              performance.mark("sealog:click");
              const p = new URLSearchParams(v);
              const term = `${field}:${value}`;
              const all = p.getAll("where").filter((t) => t.replace(/^([^:=]+)=/, "$1:") !== term);
              p.delete("where");
              for (const t of all) p.append("where", t);
              if (!have.has(term)) p.append("where", term);
              goExplore(p);
            },
          },
          el("span", { class: "value", text: value }),
          el("span", { class: "n", text: String(count) }),
        ),
      ),
    );
    const rest = f.other > 0 ? el("li", { class: "other", text: `${f.other} other` }) : null;
    parts.push(
      el(
        "section",
        { class: "facet-field", "data-field": field },
        el("h3", { text: field }),
        items.length ? el("ul", {}, ...items, rest) : el("p", { class: "status", text: "no values" }),
      ),
    );
  }
  const add = el("input", { name: "facet", type: "text", placeholder: "another field", "aria-label": "Another field" });
  parts.push(
    el(
      "form",
      {
        class: "add-facet",
        onsubmit: (e) => {
          e.preventDefault();
          const name = add.value.trim();
          if (!name) return;
          const p = new URLSearchParams(v);
          const list = (p.get("facets") || "").split(",").filter(Boolean);
          if (!list.includes(name)) list.push(name);
          p.set("facets", list.join(","));
          goExplore(p);
        },
      },
      add,
      el("button", { type: "submit" }, "Add"),
    ),
  );
  aside.replaceChildren(...parts);
}

// A record's seq, which the server put in it (SPEC: the record).
function seqOf(line) {
  try {
    const seq = JSON.parse(line).seq;
    return Number.isSafeInteger(seq) ? seq : null;
  } catch (_) {
    return null;
  }
}

let tailing = null;

// Live tail over fetch (EventSource cannot send the Authorization header).
async function tail(params, list, btn, pauseBtn, rate, since) {
  if (tailing) {
    tailing.abort();
    return;
  }
  const ctl = new AbortController();
  tailing = ctl;
  btn.setAttribute("aria-pressed", "true");
  btn.textContent = "Stop tail";
  pauseBtn.hidden = false;
  let paused = false;
  pauseBtn.onclick = () => {
    paused = !paused;
    pauseBtn.setAttribute("aria-pressed", String(paused));
    pauseBtn.textContent = paused ? "Resume" : "Pause";
  };
  let pending = [];
  let count = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (paused || pending.length === 0) return;
    // At most TAIL_FRAME rows a frame, oldest first, so a burst is drawn
    // over several frames instead of one long task; what would scroll out
    // before it is drawn is not drawn.
    if (pending.length > TAIL_KEEP) pending = pending.slice(-TAIL_KEEP);
    const now = pending.slice(0, TAIL_FRAME);
    pending = pending.slice(TAIL_FRAME);
    const frag = document.createDocumentFragment();
    for (const [seq, line] of now.reverse()) frag.append(rowFor(seq, line));
    if (pending.length > 0) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
    list.prepend(frag);
    if (list.children.length > TAIL_KEEP) {
      // The oldest rows go in one removal, not one at a time.
      const r = document.createRange();
      r.setStartBefore(list.children[TAIL_KEEP]);
      r.setEndAfter(list.lastElementChild);
      r.deleteContents();
    }
  };
  const timer = setInterval(() => {
    rate.textContent = `${count} records/s${paused ? " (paused)" : ""}`;
    count = 0;
  }, 1000);
  try {
    const p = new URLSearchParams(params);
    p.delete("from");
    p.delete("to");
    // From the size the list was read at: nothing falls between the two.
    if (since !== null && since !== undefined) p.set("since_seq", String(since));
    const r = await api(`/v1/tail?${p}`, { signal: ctl.signal });
    btn.dataset.live = "1";
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let id = null;
    let event = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("id:")) id = Number(line.slice(3).trim());
        else if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) {
          const data = line.slice(5).replace(/^ /, "");
          if (event === "error") banner(`Tail closed: ${data}`);
          else {
            count++;
            if (!paused) pending.push([id, data]);
            if (pending.length > TAIL_KEEP * 4) pending = pending.slice(-TAIL_KEEP);
          }
          id = null;
          event = null;
        }
      }
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") banner(`Tail stopped: ${e.message}`);
  } finally {
    clearInterval(timer);
    delete btn.dataset.live;
    tailing = null;
    btn.setAttribute("aria-pressed", "false");
    btn.textContent = "Live tail";
    pauseBtn.hidden = true;
    rate.textContent = "";
  }
}

async function realmPage() {
  const realm = session.realm;
  const out = el("section", { class: "realm" }, el("h1", { text: realm ? `Realm ${realm}` : "Realm" }));
  show(out);
  const keyInput = el("input", {
    name: "key",
    type: "text",
    spellcheck: "false",
    placeholder: "sealog/<realm>+<key id>+<base64 key>",
    value: (realm && pinnedKey(realm)) || "",
    "aria-label": "Realm public key",
  });
  const keyMsg = el("p", { class: "keymsg", "aria-live": "polite" });
  out.append(
    el(
      "form",
      {
        class: "pin",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const k = await parseKey(keyInput.value);
            if (realm && k.name !== `sealog/${realm}`) throw new Error(`the key is for ${k.name}`);
            localStorage.setItem(`sealog.key.${realm}`, k.text);
            keyMsg.textContent = `Pinned ${k.name}, key id ${hex(k.id)}.`;
            realmPage();
          } catch (err) {
            keyMsg.textContent = `Not pinned: ${err.message}`;
          }
        },
      },
      el("label", { for: "key", text: "Pinned key (from `sealog realm key`, kept outside the server)" }),
      keyInput,
      el("button", { type: "submit" }, "Pin"),
      keyMsg,
    ),
  );
  keyInput.id = "key";
  let text;
  try {
    await whoAmI();
    if (session.size === 0) {
      const seen = seenTree(realm);
      out.append(
        seen && seen.size > 0
          ? el("p", { class: "consistency failed", text: `Failed: the server says the realm is empty, but this browser saw a signed tree of ${seen.size} records.` })
          : el("p", { class: "status", text: "This realm has no records yet." }),
      );
      return;
    }
    text = await (await api("/v1/checkpoint")).text();
  } catch (e) {
    out.append(el("p", { class: "status", text: `Checkpoint: ${e.message}` }));
    return;
  }
  out.append(el("h2", { text: "Latest checkpoint" }), el("pre", { class: "checkpoint", text }));
  const pinned = realm && pinnedKey(realm);
  const consistency = el("p", { class: "consistency", "aria-live": "polite" });
  out.append(consistency);
  if (!pinned) {
    consistency.textContent = "Pin the realm's key to check the checkpoint here.";
    return;
  }
  try {
    const k = await parseKey(pinned);
    const cp = await openCheckpoint(text, k);
    out.append(el("p", { class: "size", text: `Tree size ${cp.size}; signature verified with the pinned key.` }));
    consistency.textContent = `${(await extendsSeen(realm, cp)).replace(/^./, (c) => c.toUpperCase())}.`;
  } catch (e) {
    consistency.className = "consistency failed";
    consistency.textContent = `Failed: ${e.message}`;
  }
}

// ---- drains and digests: these need the realm's write token -------------

const WRITE = "sealog.write";

function writeTokenForm(why, then) {
  const input = el("input", { name: "write-token", type: "password", autocomplete: "off", "aria-label": "Write token" });
  return el(
    "form",
    {
      class: "write-token",
      onsubmit: (e) => {
        e.preventDefault();
        sessionStorage.setItem(WRITE, input.value.trim());
        then();
      },
    },
    el("p", { text: why }),
    input,
    el("button", { type: "submit" }, "Use"),
  );
}

async function writeApi(path, opts = {}) {
  return api(path, { ...opts, headers: { authorization: `Bearer ${sessionStorage.getItem(WRITE)}`, ...(opts.headers || {}) } });
}

async function drainsPage() {
  const out = el("section", { class: "drains" }, el("h1", { text: "Drains" }));
  show(out);
  if (!sessionStorage.getItem(WRITE)) {
    out.append(writeTokenForm("Drains are managed with the realm's write token; it stays in this tab only.", drainsPage));
    return;
  }
  const msg = el("p", { class: "status", id: "drains-status", "aria-live": "polite" });
  const url = el("input", { name: "url", type: "text", required: true, placeholder: "syslog+tls://logs.example.com:6514, or an HTTPS URL", "aria-label": "Destination" });
  const where = el("input", { name: "drain-where", type: "text", placeholder: "field:value …", "aria-label": "Only records with" });
  const q = el("input", { name: "drain-q", type: "text", placeholder: "text", "aria-label": "Only records containing" });
  const framing = el(
    "select",
    { name: "framing", "aria-label": "Framing" },
    el("option", { value: "newline" }, "newline"),
    el("option", { value: "octet-counting" }, "octet-counting"),
  );
  const list = el("table", { class: "drain-list", id: "drain-list" });
  out.append(
    el(
      "form",
      {
        class: "add-drain",
        onsubmit: async (e) => {
          e.preventDefault();
          const body = { url: url.value.trim(), where: whereTerms(where.value), framing: framing.value };
          if (q.value) body.q = q.value;
          try {
            await writeApi("/v1/drains", { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
            msg.textContent = "Drain added.";
            load();
          } catch (err) {
            msg.textContent = `Not added: ${err.message}`;
          }
        },
      },
      url,
      where,
      q,
      framing,
      el("button", { type: "submit" }, "Add drain"),
    ),
    msg,
    list,
  );
  async function load() {
    let drains;
    try {
      drains = await (await writeApi("/v1/drains")).json();
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        sessionStorage.removeItem(WRITE);
        msg.textContent = `The write token was refused: ${err.message}`;
        out.append(writeTokenForm("Enter the realm's write token.", drainsPage));
        return;
      }
      msg.textContent = `Drains unavailable: ${err.message}`;
      return;
    }
    const head = el("tr", {}, ...["Destination", "Selects", "State", "Delivered", "Lag", "Last error", ""].map((h) => el("th", { text: h })));
    const rows = drains.map((d) => {
      const st = d.status || {};
      const sel = d.select.kind === "filter" ? [...(d.select.where || []), d.select.q ? `"${d.select.q}"` : ""].join(" ") : d.token;
      return el(
        "tr",
        { "data-drain": d.id },
        el("td", { class: "url", text: d.url }),
        el("td", { text: sel || "everything" }),
        el("td", { class: `state state-${st.state || "unknown"}`, text: st.state || "—" }),
        el("td", { text: String(st.delivered ?? "—") }),
        el("td", { text: String(st.lag ?? "—") }),
        el("td", { class: "error", text: st.last_error || "" }),
        el(
          "td",
          {},
          el(
            "button",
            {
              type: "button",
              class: "remove",
              onclick: async () => {
                try {
                  await writeApi(`/v1/drains/${encodeURIComponent(d.id)}`, { method: "DELETE" });
                  msg.textContent = "Drain removed.";
                  load();
                } catch (err) {
                  msg.textContent = `Not removed: ${err.message}`;
                }
              },
            },
            "Remove",
          ),
        ),
      );
    });
    list.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    if (!msg.textContent) msg.textContent = drains.length ? `${drains.length} drain${drains.length === 1 ? "" : "s"}` : "No drains yet.";
  }
  load();
}

async function digestsPage() {
  const out = el("section", { class: "digests" }, el("h1", { text: "Digests" }));
  show(out);
  const now = new Date();
  const start = el("input", { type: "datetime-local", step: "1", name: "start", "aria-label": "Start", value: localInput(new Date(now - 3600e3).toISOString()) });
  const stop = el("input", { type: "datetime-local", step: "1", name: "stop", "aria-label": "Stop", value: localInput(now.toISOString()) });
  const result = el("div", { class: "digest", id: "digest", "aria-live": "polite" });
  const qs = () => new URLSearchParams({ start: new Date(start.value).toISOString(), stop: new Date(stop.value).toISOString() });
  const showAnswer = async (r) => {
    const text = await r.text();
    let body = text;
    try {
      body = JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      // not JSON: as it came
    }
    result.replaceChildren(el("p", { class: "status", text: `HTTP ${r.status}` }), el("pre", { class: "json", text: body }));
  };
  out.append(
    el(
      "form",
      {
        class: "digest-window",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await showAnswer(await api(`/v1/digests?${qs()}`));
          } catch (err) {
            result.replaceChildren(el("p", { class: "status", text: `No digest: ${err.message}` }));
          }
        },
      },
      el("label", { text: "Window of VPC flow logs" }),
      start,
      " – ",
      stop,
      el("button", { type: "submit" }, "Show digest"),
      el(
        "button",
        {
          type: "button",
          onclick: async () => {
            if (!sessionStorage.getItem(WRITE)) {
              result.replaceChildren(writeTokenForm("Requesting a digest needs the realm's write token.", () => result.replaceChildren()));
              return;
            }
            try {
              await showAnswer(await writeApi(`/v1/digests?${qs()}`, { method: "POST" }));
            } catch (err) {
              result.replaceChildren(el("p", { class: "status", text: `Not requested: ${err.message}` }));
            }
          },
        },
        "Request digest",
      ),
    ),
    result,
  );
}

async function route() {
  banner("");
  if (tailing) tailing.abort();
  if (!session.token) return signIn();
  // Every page starts from the realm's size now (one empty query page).
  try {
    await whoAmI();
  } catch (e) {
    if (e.status === 0) {
      banner(`The server cannot be reached (${location.host}); retry when it is back.`);
      return show(el("p", { class: "status", text: "The server cannot be reached." }));
    }
    if (e.status === 401 || e.status === 403) return signIn(e.status === 401 ? "The token is no longer valid." : e.message);
    banner(`The server answered: ${e.message}; retry in a moment.`);
    return show(el("p", { class: "status", text: `Not available now: ${e.message}` }));
  }
  if (location.hash.startsWith("#/realm")) return realmPage();
  if (location.hash.startsWith("#/drains")) return drainsPage();
  if (location.hash.startsWith("#/digests")) return digestsPage();
  return explore();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  $("#signout").addEventListener("click", () => {
    sessionStorage.removeItem(WRITE);
    signIn();
  });
  route();
});
