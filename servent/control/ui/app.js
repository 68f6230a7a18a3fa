// The servent's browser UI: plain JavaScript on the control API
// (docs/control-api.md). State comes from the event stream
// (GET /api/v1/events); actions are fetch calls with the session cookie.
"use strict";

// ---- small helpers ----

const $ = (sel) => document.querySelector(sel);

// el builds an element; text goes in as text, never as HTML (names come
// from other servents).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v; // through the CSSOM: the page's CSP refuses style attributes
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function humanSize(n) {
  if (n === undefined || n === null || isNaN(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + " " + units[i];
}

function humanDuration(s) {
  if (!isFinite(s) || s < 0) return "–";
  s = Math.round(s);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

function shortURN(urn) { return urn ? urn.replace(/^urn:sha1:/, "").slice(0, 12) + "…" : "–"; }
function fileType(name) { const m = /\.([A-Za-z0-9]{1,6})$/.exec(name || ""); return m ? m[1].toLowerCase() : ""; }

function toast(title, text, ok) {
  const t = el("div", { class: "toast" + (ok ? " ok" : "") }, el("b", {}, title), text);
  $("#toasts").append(t);
  setTimeout(() => t.remove(), ok ? 4000 : 12000);
}

// api calls the control API and returns the decoded answer; on failure it
// throws an Error whose message is the API's explanation, or says what to
// do when the servent cannot be reached.
async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new Error("the servent does not answer: is `gnutella serve` still running? (" + e.message + ")");
  }
  if (resp.status === 401) {
    loggedOut();
    throw new Error("this browser is no longer logged in: run `gnutella ui` and open the link it prints");
  }
  if (resp.status === 204) return null;
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((data && data.error) || resp.status + " " + resp.statusText);
  return data;
}

// sortable makes a table's headers sort it: state.sort = {key, dir}.
function sortable(table, state, render) {
  table.querySelectorAll("th[data-sort]").forEach((th) => {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : (key === "name" || key === "urn" || key === "type" ? 1 : -1) };
      render();
    });
  });
  return () => table.querySelectorAll("th[data-sort]").forEach((th) => {
    th.classList.toggle("asc", th.dataset.sort === state.sort.key && state.sort.dir > 0);
    th.classList.toggle("desc", th.dataset.sort === state.sort.key && state.sort.dir < 0);
  });
}

function compare(a, b, key, dir) {
  const x = a[key], y = b[key];
  if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
  return String(x ?? "").localeCompare(String(y ?? ""), undefined, { numeric: true, sensitivity: "base" }) * dir;
}

// ---- pages ----

const pages = ["search", "downloads", "library", "network", "testnet"];
function showPage() {
  const name = pages.includes(location.hash.slice(1)) ? location.hash.slice(1) : "search";
  for (const p of pages) $("#page-" + p).hidden = p !== name;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === name));
  if (name === "library") loadShares();
  if (name === "network") { drawGraph(); loadStatus(); }
  if (name === "testnet") loadTestnet();
}
window.addEventListener("hashchange", showPage);

// ---- search ----

const search = { id: null, hits: [], sort: { key: "sources", dir: -1 }, running: false, stats: null };
const pendingHits = {}; // hits of searches whose POST has not answered yet

function groupHits() {
  const groups = new Map();
  search.hits.forEach((h, n) => {
    if (!h) return;
    const key = h.urn || "name:" + h.name + ":" + h.size;
    let g = groups.get(key);
    if (!g) {
      g = { key, urn: h.urn || "", name: h.name, size: h.size, type: fileType(h.name), hosts: new Set(), first: n, names: new Map() };
      groups.set(key, g);
    }
    g.hosts.add(h.push ? "push:" + h.servent_id : h.host);
    g.names.set(h.name, (g.names.get(h.name) || 0) + 1);
  });
  for (const g of groups.values()) {
    g.sources = g.hosts.size;
    g.name = [...g.names.entries()].sort((a, b) => b[1] - a[1])[0][0]; // the name most sources give
  }
  return [...groups.values()];
}

const markResultSort = sortable($("#results"), search, renderResults);
function renderResults() {
  markResultSort();
  const filter = $("#search-filter").value.trim().toLowerCase();
  let groups = groupHits();
  const total = groups.length;
  if (filter) groups = groups.filter((g) => g.name.toLowerCase().includes(filter) || g.urn.toLowerCase().includes(filter));
  groups.sort((a, b) => compare(a, b, search.sort.key, search.sort.dir) || compare(a, b, "name", 1));
  const body = el("tbody");
  for (const g of groups) {
    body.append(el("tr", { "data-urn": g.urn },
      el("td", { class: "name" }, g.name),
      el("td", { class: "num" }, humanSize(g.size)),
      el("td", { class: "num sources" }, g.sources),
      el("td", {}, g.type),
      el("td", { class: "urn", title: g.urn }, shortURN(g.urn)),
      el("td", { class: "num" }, el("button", { class: "download-btn", type: "button", onclick: (ev) => startDownload(g, ev.target) }, "Download"))));
  }
  $("#results tbody").replaceWith(body);
  const empty = $("#results-empty");
  empty.hidden = groups.length > 0 || !search.id;
  empty.textContent = total > 0 ? "No result matches the filter." :
    net.ready && net.links.size === 0 ? "No results: this servent has no links, so no other servent heard the search. See Network for why." :
      search.running ? "Searching… no results yet." :
        "No results. Try other or fewer words, or a strategy that reaches further (flood with a larger TTL, or expanding ring).";
  updateSearchStatus(total);
}

function updateSearchStatus(groups) {
  if (!search.id) return;
  const n = search.hits.filter(Boolean).length;
  const what = `${n} result${n === 1 ? "" : "s"} for ${groups} file${groups === 1 ? "" : "s"}`;
  $("#search-status").textContent = search.running ? "Searching… " + what : "Search finished: " + what + ".";
}

$("#search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("#search-q").value.trim();
  if (!q) { toast("Nothing to search for", "Type one or more words (or a urn:sha1:…) first."); return; }
  const req = { strategy: $("#search-strategy").value };
  if (/^urn:sha1:/i.test(q)) req.urn = q; else req.query = q;
  $("#search-go").disabled = true;
  try {
    const r = await api("POST", "/api/v1/searches", req);
    Object.assign(search, { id: r.id, hits: pendingHits[r.id] || [], running: true });
    delete pendingHits[r.id];
    $("#search-filter").value = "";
    renderResults();
    // the hits that came before this page listened
    const s = await api("GET", "/api/v1/searches/" + r.id);
    if (search.id === r.id) {
      (s.hits || []).forEach((h, n) => { search.hits[n] = search.hits[n] || h; });
      search.running = s.running;
      renderResults();
    }
  } catch (e) {
    toast("The search did not start", e.message);
  } finally {
    $("#search-go").disabled = false;
  }
});
$("#search-filter").addEventListener("input", renderResults);

async function startDownload(g, button) {
  button.disabled = true;
  const req = g.urn ? { search_id: search.id, urn: g.urn } : { search_id: search.id, hit: g.first };
  try {
    const d = await api("POST", "/api/v1/downloads", req);
    downloads.set(d.id, d);
    renderDownloads();
    button.textContent = "Queued";
    toast("Download started", `${d.name}: ${g.sources} source${g.sources === 1 ? "" : "s"}. See Downloads.`, true);
  } catch (e) {
    button.disabled = false;
    toast("The download did not start", e.message);
  }
}

// ---- downloads ----

const downloads = new Map();
const removing = new Set();

function renderDownloads() {
  const list = [...downloads.values()];
  const box = el("div", { id: "downloads" });
  let active = 0;
  for (const d of list) {
    if (!["done", "failed", "cancelled"].includes(d.state)) active++;
    const pct = d.size > 0 ? Math.min(100, (d.have / d.size) * 100) : (d.state === "done" ? 100 : 0);
    const eta = d.speed > 0 && d.size > d.have ? humanDuration((d.size - d.have) / d.speed) : null;
    const act = (label, verb, cls) => el("button", { type: "button", class: cls, "data-action": verb, onclick: () => downloadAction(d, verb) }, label);
    const actions = [];
    if (["queued", "connecting", "downloading", "waiting", "verifying"].includes(d.state)) actions.push(act("Pause", "pause"));
    if (d.state === "paused" || d.state === "failed" || d.state === "cancelled") actions.push(act(d.state === "paused" ? "Resume" : "Retry", "resume"));
    if (!["done", "cancelled"].includes(d.state)) actions.push(act("Cancel", "cancel", "danger"));
    if (["done", "failed", "cancelled"].includes(d.state)) actions.push(act("Remove", "remove"));
    const sources = d.source_states || [];
    box.append(el("div", { class: "download", "data-id": d.id, "data-state": d.state },
      el("div", { class: "row" },
        el("span", { class: "title" }, d.name),
        el("span", { class: "badge state " + d.state }, d.state),
        el("div", { class: "actions" }, actions)),
      el("div", { class: "progress" }, el("div", { class: "bar " + d.state, style: `width:${pct.toFixed(1)}%` })),
      el("div", { class: "meta" },
        el("span", { class: "have" }, `${humanSize(d.have)} of ${humanSize(d.size)} (${pct.toFixed(pct < 10 ? 1 : 0)}%)`),
        d.state === "downloading" ? el("span", {}, humanSize(d.speed) + "/s") : null,
        eta && d.state === "downloading" ? el("span", {}, "about " + eta + " left") : null,
        d.state !== "done" ? el("span", {}, `${d.active_sources || 0} of ${d.sources} source${d.sources === 1 ? "" : "s"} sending`) : null,
        d.state === "waiting" && d.retry_at ? el("span", {}, "trying again at " + new Date(d.retry_at).toLocaleTimeString()) : null,
        d.state === "done" && d.path ? el("span", { class: "mono" }, d.path) : null),
      d.error && d.state !== "done" ? el("div", { class: "error" }, explainDownloadError(d)) : null,
      sources.length ? el("details", {}, el("summary", {}, `${sources.length} source${sources.length === 1 ? "" : "s"}`),
        el("table", { class: "sources" }, el("tbody", {}, sources.map((s) => el("tr", {},
          el("td", { class: "mono" }, s.addr), el("td", {}, el("span", { class: "badge " + s.state }, s.state)),
          el("td", { class: "num" }, humanSize(s.have)), el("td", { class: "num" }, s.speed ? humanSize(s.speed) + "/s" : ""),
          el("td", { class: "muted" }, s.queue ? "queue place " + s.queue + ". " : "", s.reason || s.error || "")))))) : null));
  }
  $("#downloads").replaceWith(box);
  $("#downloads-empty").hidden = list.length > 0;
  $("#dl-count").hidden = active === 0;
  $("#dl-count").textContent = active;
  $("#dl-summary").textContent = list.length ? `${active} going, ${list.length - active} finished or stopped` : "";
}

function explainDownloadError(d) {
  if (d.state === "failed") return "Failed: " + d.error + ". Press Retry to try the sources again, or search again for more sources.";
  if (d.state === "cancelled") return "Cancelled: the partial file was deleted. Retry starts it again from nothing.";
  return "Last problem: " + d.error;
}

async function downloadAction(d, verb) {
  try {
    if (verb === "remove") {
      removing.add(d.id);
      await api("DELETE", "/api/v1/downloads/" + encodeURIComponent(d.id));
      downloads.delete(d.id);
    } else {
      const st = await api("POST", `/api/v1/downloads/${encodeURIComponent(d.id)}/${verb}`);
      downloads.set(st.id, st);
    }
    renderDownloads();
  } catch (e) {
    removing.delete(d.id);
    toast(`Could not ${verb} ${d.name}`, e.message);
  }
}

// ---- library ----

const library = { files: [], sort: { key: "name", dir: 1 }, info: null, loaded: false, shares: false };
const markShareSort = sortable($("#shares"), library, renderShares);

async function loadShares() {
  try {
    library.files = await api("GET", "/api/v1/shares");
    library.loaded = true;
    renderShares();
  } catch (e) {
    toast("Could not list the shared files", e.message);
  }
}

function renderLibraryInfo() {
  const p = library.info;
  if (!p) return;
  $("#lib-files").textContent = p.files;
  $("#lib-bytes").textContent = humanSize(p.bytes);
  const pct = p.bytes > 0 ? (p.hashed_bytes / p.bytes) * 100 : 100;
  $("#lib-bar").style.width = pct.toFixed(1) + "%";
  $("#lib-bar").className = "bar" + (p.hashed_files === p.files ? " done" : "");
  $("#lib-hashing").textContent = p.hashing
    ? `${p.hashed_files} of ${p.files} files hashed (${pct.toFixed(0)}%), now ${p.hashing}`
    : `${p.hashed_files} of ${p.files} files hashed` + (p.hashed_files < p.files ? " (waiting)" : ": every file can be found by its SHA-1");
}

function renderShares() {
  markShareSort();
  const filter = $("#lib-filter").value.trim().toLowerCase();
  let files = library.files;
  if (filter) files = files.filter((f) => f.name.toLowerCase().includes(filter) || (f.urn || "").toLowerCase().includes(filter));
  files = [...files].sort((a, b) => compare(a, b, library.sort.key, library.sort.dir));
  const body = el("tbody");
  for (const f of files.slice(0, 2000)) {
    body.append(el("tr", {}, el("td", { class: "num" }, f.index), el("td", { class: "name" }, f.name),
      el("td", { class: "num" }, humanSize(f.size)),
      el("td", { class: "urn", title: f.urn || "" }, f.urn ? shortURN(f.urn) : el("span", { class: "badge waiting" }, "hashing"))));
  }
  $("#shares tbody").replaceWith(body);
  const empty = $("#shares-empty");
  empty.hidden = files.length > 0 || !library.loaded;
  empty.textContent = library.files.length ? "No file matches the filter." :
    library.shares ? "The shared folders hold no files yet: put some there and press Rescan." :
      "This servent shares nothing: restart it with --share DIR to share a folder.";
  $("#rescan").disabled = !library.shares;
}
$("#lib-filter").addEventListener("input", renderShares);
$("#rescan").addEventListener("click", async () => {
  $("#rescan").disabled = true;
  try {
    library.info = await api("POST", "/api/v1/shares/rescan");
    renderLibraryInfo();
    await loadShares();
    toast("Rescanned", `${library.info.files} files shared; new ones are hashed in the background.`, true);
  } catch (e) {
    toast("The rescan failed", e.message);
  } finally {
    $("#rescan").disabled = !library.shares;
  }
});

let sharesReload = null;
function libraryChanged(p) {
  const before = library.info;
  library.info = p;
  library.shares = true;
  renderLibraryInfo();
  // new files or new hashes: list them again, at most once a second
  if (!before || before.files !== p.files || before.hashed_files !== p.hashed_files) {
    if (!sharesReload && !$("#page-library").hidden) sharesReload = setTimeout(() => { sharesReload = null; loadShares(); }, 1000);
  }
}

// ---- network ----

const net = { links: new Map(), sort: { key: "id", dir: 1 }, samples: [], last: null, status: null };
const markLinkSort = sortable($("#links"), net, renderLinks);

async function loadStatus() {
  try {
    net.status = await api("GET", "/api/v1/status");
    net.statusAt = Date.now();
    $("#servent-addr").textContent = net.status.addr;
    if (net.status.library) libraryChanged(net.status.library);
    renderCards();
  } catch (e) {
    toast("Could not read the servent's status", e.message);
  }
}

function renderCards() {
  const s = net.status;
  if (!s) return;
  const card = (label, value, title) => el("div", { class: "card stat", title }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
  const ups = [...net.links.values()].filter((l) => l.kind !== "leaf").length;
  $("#net-cards").replaceChildren(
    card("Address", s.addr, "where other servents reach this one"), card("Mode", s.mode), card("Firewalled", s.firewalled ? "yes" : "no", "firewalled servents are reached by Push"),
    card("Links", ups), card("Leaves", net.links.size - ups), card("Known hosts", s.known_hosts),
    card("Up for", humanDuration(s.uptime_seconds + (Date.now() - net.statusAt) / 1000)), card("Version", s.version));
}

function renderLinks() {
  markLinkSort();
  const now = Date.now();
  const rows = [...net.links.values()].map((l) => ({ ...l, rx: l.stats.RxMessages, bytes: l.stats.RxBytes + l.stats.TxBytes, since: l.since }));
  rows.sort((a, b) => compare(a, b, net.sort.key, net.sort.dir));
  const body = el("tbody");
  for (const l of rows) {
    body.append(el("tr", { "data-remote": l.remote },
      el("td", { class: "num" }, l.id), el("td", {}, el("span", { class: "badge up" }, l.kind)),
      el("td", {}, l.inbound ? "in" : "out"), el("td", { class: "mono" }, l.listen && l.listen !== l.remote ? `${l.remote} (listens on ${l.listen})` : l.remote),
      el("td", {}, l.user_agent || "–"),
      el("td", {}, (l.deflate_in ? "in" : "") + (l.deflate_in && l.deflate_out ? " + " : "") + (l.deflate_out ? "out" : "") || "no"),
      el("td", { class: "num" }, `${l.stats.RxMessages} / ${l.stats.TxMessages}`),
      el("td", { class: "num" }, `${humanSize(l.stats.RxBytes)} / ${humanSize(l.stats.TxBytes)}`),
      el("td", {}, humanDuration((now - Date.parse(l.since)) / 1000))));
  }
  $("#links tbody").replaceWith(body);
  $("#links-empty").hidden = rows.length > 0;
  const ups = rows.filter((l) => l.kind !== "leaf").length;
  $("#link-count").textContent = rows.length;
  $("#link-count").title = `${ups} links, ${rows.length - ups} leaves`;
}

function statsArrived(s) {
  const t = Date.parse(s.at) / 1000;
  if (net.last) {
    const dt = t - net.last.t;
    if (dt > 0) {
      const rate = (now, before) => Math.max(0, (now - before) / dt);
      net.samples.push({ t, rx: rate(s.routing.Received, net.last.received), tx: rate(s.tx_messages, net.last.tx), routed: rate(s.routing.Routed, net.last.routed) });
      if (net.samples.length > 180) net.samples.shift();
    }
  }
  net.last = { t, received: s.routing.Received, tx: s.tx_messages, routed: s.routing.Routed };
  if (s.links && s.links.length >= 0 && net.ready) {
    for (const l of s.links) net.links.set(l.id, l);
  }
  if (!$("#page-network").hidden) { drawGraph(); renderLinks(); renderCards(); }
}

function drawGraph() {
  const c = $("#graph");
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = 180;
  if (!w) return;
  c.width = w * dpr; c.height = h * dpr;
  const g = c.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const pad = { l: 44, r: 10, t: 10, b: 22 };
  const pts = net.samples;
  const max = Math.max(5, ...pts.map((p) => Math.max(p.rx, p.tx, p.routed)));
  // four steps of 1, 2 or 5 times a power of ten
  const raw = max / 4, p10 = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * p10).find((s) => s >= raw);
  const top = step * 4;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = css.getPropertyValue("--muted");
  g.strokeStyle = css.getPropertyValue("--line");
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ((h - pad.t - pad.b) * i) / 4;
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(w - pad.r, y); g.stroke();
    g.fillText(String(Math.round(top - (top * i) / 4)), 4, y + 4);
  }
  const tEnd = pts.length ? pts[pts.length - 1].t : 0;
  const span = Math.min(180, Math.max(30, tEnd - (pts.length ? pts[0].t : 0))); // seconds shown
  const x = (t) => pad.l + (w - pad.l - pad.r) * (1 - (tEnd - t) / span);
  const y = (v) => pad.t + (h - pad.t - pad.b) * (1 - v / top);
  g.fillText(humanDuration(span) + " ago", pad.l, h - 6);
  g.fillText("now", w - pad.r - 22, h - 6);
  if (pts.length < 2) {
    g.fillText("waiting for traffic…", w / 2 - 50, h / 2);
    return;
  }
  for (const [key, color] of [["routed", "--routed"], ["tx", "--tx"], ["rx", "--rx"]]) {
    g.strokeStyle = css.getPropertyValue(color);
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p[key])) : g.moveTo(x(p.t), y(p[key]))));
    g.stroke();
  }
}
window.addEventListener("resize", drawGraph);

// ---- the testnet: how one query spreads, strategy by strategy ----

const tn = { graph: null, pos: null, step: 0, timer: null };

// findTestnet shows the Testnet page when this servent is the demo's leaf.
async function findTestnet() {
  const r = await fetch("/api/v1/testnet").catch(() => null);
  $("#nav-testnet").hidden = !(r && r.ok);
}

async function loadTestnet() {
  try {
    tn.graph = await api("GET", "/api/v1/testnet");
  } catch (e) {
    toast("Could not read the testnet", e.message);
    return;
  }
  tn.pos = layout(tn.graph);
  const box = $("#spreads");
  box.replaceChildren(...tn.graph.spreads.map((sp, i) => el("div", { class: "card spread", "data-strategy": sp.strategy },
    el("h3", {}, sp.strategy), el("div", { class: "facts", id: "spread-facts-" + i }), el("canvas", { id: "spread-" + i }))));
  $("#spreads-empty").hidden = tn.graph.spreads.length > 0;
  tn.step = Math.max(...tn.graph.spreads.map((s) => s.copies.length), 0); // the whole spread, until Play
  drawSpreads();
}

// layout puts the ultrapeers on an inner circle and each leaf on an outer
// one, beside its ultrapeers.
function layout(g) {
  const ups = g.nodes.map((n, i) => i).filter((i) => g.nodes[i].role === "ultrapeer");
  const angle = {};
  ups.forEach((u, k) => { angle[u] = (2 * Math.PI * k) / ups.length; });
  const nbrs = g.nodes.map(() => []);
  for (const [a, b] of g.edges) { nbrs[a].push(b); nbrs[b].push(a); }
  const leaves = g.nodes.map((n, i) => i).filter((i) => g.nodes[i].role !== "ultrapeer");
  const leafAngle = (i) => {
    const us = nbrs[i].filter((j) => j in angle);
    if (!us.length) return i;
    let x = 0, y = 0;
    for (const u of us) { x += Math.cos(angle[u]); y += Math.sin(angle[u]); }
    return Math.atan2(y, x);
  };
  leaves.sort((a, b) => leafAngle(a) - leafAngle(b));
  const pos = [];
  for (const u of ups) pos[u] = { r: 0.42, a: angle[u] };
  leaves.forEach((l, k) => { pos[l] = { r: 0.9, a: leafAngle(leaves[0]) + (2 * Math.PI * k) / leaves.length }; });
  return pos;
}

function drawSpreads() {
  if (!tn.graph) return;
  const css = getComputedStyle(document.documentElement);
  tn.graph.spreads.forEach((sp, i) => {
    const c = $("#spread-" + i);
    if (!c) return;
    const dpr = window.devicePixelRatio || 1, w = c.clientWidth, h = 340;
    if (!w) return;
    c.width = w * dpr; c.height = h * dpr;
    const g = c.getContext("2d");
    g.scale(dpr, dpr);
    const R = Math.min(w, h) / 2 - 10;
    const xy = (n) => [w / 2 + R * tn.pos[n].r * Math.cos(tn.pos[n].a), h / 2 + R * tn.pos[n].r * Math.sin(tn.pos[n].a)];
    g.strokeStyle = "#e3e7ee"; g.lineWidth = 1;
    for (const [a, b] of tn.graph.edges) {
      const [x1, y1] = xy(a), [x2, y2] = xy(b);
      g.beginPath(); g.moveTo(x1, y1); g.lineTo(x2, y2); g.stroke();
    }
    const shown = sp.copies.slice(0, tn.step);
    const reached = new Set([sp.origin]);
    let dups = 0;
    for (const cp of shown) { if (cp.dup) dups++; else reached.add(cp.node); }
    // the last few messages, as arrows fading out
    shown.slice(-12).forEach((cp, k, arr) => {
      if (cp.from < 0) return;
      const [x1, y1] = xy(cp.from), [x2, y2] = xy(cp.node);
      g.globalAlpha = (k + 1) / arr.length;
      g.strokeStyle = cp.dup ? css.getPropertyValue("--bad") : css.getPropertyValue("--routed");
      g.lineWidth = 2.5;
      g.beginPath(); g.moveTo(x1, y1); g.lineTo(x2, y2); g.stroke();
    });
    g.globalAlpha = 1;
    tn.graph.nodes.forEach((n, j) => {
      const [x, y] = xy(j);
      const up = n.role === "ultrapeer";
      g.beginPath(); g.arc(x, y, up ? 7 : 4, 0, 2 * Math.PI);
      g.fillStyle = j === sp.origin ? css.getPropertyValue("--accent") : reached.has(j) ? css.getPropertyValue("--ok") : up ? "#8792a8" : "#c5ccd8";
      g.fill();
      if (n.firewalled) { g.setLineDash([2, 2]); g.strokeStyle = "#6b7385"; g.lineWidth = 1; g.beginPath(); g.arc(x, y, 7, 0, 2 * Math.PI); g.stroke(); g.setLineDash([]); }
    });
    $("#spread-facts-" + i).textContent = `${Math.min(tn.step, sp.copies.length)} of ${sp.copies.length} query messages, ` +
      `${reached.size} of ${tn.graph.nodes.length} servents reached, ${dups} duplicates, ${sp.results} results`;
  });
}

$("#spread-play").addEventListener("click", () => {
  if (!tn.graph) return;
  clearInterval(tn.timer);
  tn.step = 0;
  const end = Math.max(...tn.graph.spreads.map((s) => s.copies.length), 0);
  tn.timer = setInterval(() => {
    tn.step++;
    drawSpreads();
    if (tn.step >= end) clearInterval(tn.timer);
  }, Number($("#spread-speed").value));
});
window.addEventListener("resize", drawSpreads);

// ---- the event stream ----

let events = null;
let loggedOutShown = false;

function setConn(state, text) {
  $("#conn").className = "conn " + state;
  $("#conn-text").textContent = text;
}

function banner(text, bad) {
  const b = $("#banner");
  b.hidden = !text;
  b.className = "banner" + (bad ? " bad" : "");
  b.replaceChildren(...(text ? [text] : []));
}

function loggedOut() {
  if (loggedOutShown) return;
  loggedOutShown = true;
  if (events) events.close();
  setConn("bad", "logged out");
  banner(el("span", {}, "This browser is no longer logged in (the servent restarted, or the session ended). In a terminal run ",
    el("code", {}, "gnutella ui"), " and open the link it prints."), true);
}

function connect() {
  events = new EventSource("/api/v1/events");
  events.addEventListener("ready", () => { net.ready = true; setConn("ok", "live"); banner(""); renderLinks(); });
  events.addEventListener("link", (m) => {
    const e = JSON.parse(m.data);
    if (e.state === "up") net.links.set(e.link.id, e.link); else net.links.delete(e.link.id);
    renderLinks(); renderCards();
  });
  events.addEventListener("hit", (m) => {
    const e = JSON.parse(m.data);
    if (e.search_id === search.id) { search.hits[e.n] = e.hit; scheduleResults(); }
    else (pendingHits[e.search_id] = pendingHits[e.search_id] || [])[e.n] = e.hit;
  });
  events.addEventListener("search", (m) => {
    const e = JSON.parse(m.data);
    if (e.id === search.id) { search.running = e.running; search.stats = e.stats; scheduleResults(); }
  });
  events.addEventListener("download", (m) => {
    const d = JSON.parse(m.data);
    if (removing.has(d.id)) return;
    downloads.set(d.id, d); scheduleDownloads();
  });
  events.addEventListener("download_removed", (m) => { downloads.delete(JSON.parse(m.data).id); scheduleDownloads(); });
  events.addEventListener("library", (m) => libraryChanged(JSON.parse(m.data)));
  events.addEventListener("stats", (m) => statsArrived(JSON.parse(m.data)));
  events.addEventListener("dropped", () => banner("This page fell behind the servent's events and is catching up…"));
  events.onerror = async () => {
    setConn("bad", "reconnecting…");
    // EventSource does not say why: ask the API.
    try {
      const r = await fetch("/api/v1/status");
      if (r.status === 401) { loggedOut(); return; }
      if (r.ok) return; // a passing hiccup: EventSource reconnects
    } catch (e) { /* not running */ }
    banner(el("span", {}, "Lost the connection to the servent: is ", el("code", {}, "gnutella serve"),
      " still running? This page keeps trying; if you restarted it, open the link it printed (or run ",
      el("code", {}, "gnutella ui"), ")."), true);
  };
}

// Renders at most once per animation frame, however many events arrive.
let resultsQueued = false, downloadsQueued = false;
function scheduleResults() { if (!resultsQueued) { resultsQueued = true; requestAnimationFrame(() => { resultsQueued = false; renderResults(); }); } }
function scheduleDownloads() { if (!downloadsQueued) { downloadsQueued = true; requestAnimationFrame(() => { downloadsQueued = false; renderDownloads(); }); } }

showPage();
findTestnet();
renderResults();
renderDownloads();
loadStatus();
connect();
