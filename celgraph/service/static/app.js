// celgraph's page: the server's job queue, one job's live events, its graph and its pictures.
// Plain JS, no build step. Everything comes from /api on the same origin (see celgraph/service/web.py).
"use strict";

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
const PORT_COLOURS = {Image: "#d9c36a", Mask: "#9aa0a8", LineArt: "#e8e8e8", Flow: "#5fb3d9", Labels: "#d97fb0",
                      Transforms: "#9c7fd9", Sprites: "#7fd9a0", FileRef: "#d98a5f"};
const STORE_LIMIT = 3000000;        // characters of events kept per job in sessionStorage

// What the page knows; window.cgState lets tests (and curious people) look.
const S = window.cgState = {
  job: null, record: null, events: [], lastSeq: 0, gaps: 0, resumedFrom: null, source: null,
  graph: null, nodeStats: {}, selectedNode: null, pictures: null, frame: null, token: false,
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

async function api(path, opts) {
  const r = await fetch("/api/" + path, Object.assign({credentials: "same-origin"}, opts || {}));
  if (r.status === 401) { showTokenForm(); throw new Error("token required"); }
  if (!r.ok) { let m = r.statusText; try { m = (await r.json()).message; } catch (e) {} throw new Error(m); }
  return r.json();
}

// ---- token ----
function showTokenForm() { $("token-form").hidden = false; }
$("token-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/login", {method: "POST", headers: {Authorization: "Bearer " + $("token").value}});
  if (r.ok) { $("token-form").hidden = true; $("token-error").textContent = ""; start(); }
  else $("token-error").textContent = "wrong token";
});

// ---- tabs ----
$("tab-jobs").onclick = () => showTab("jobs");
$("tab-nodes").onclick = () => { showTab("nodes"); loadCatalogue(); };
function showTab(name) {
  $("jobs-view").hidden = name !== "jobs"; $("nodes-view").hidden = name !== "nodes";
  $("tab-jobs").classList.toggle("active", name === "jobs"); $("tab-nodes").classList.toggle("active", name === "nodes");
}

// ---- the queue (polled: cheap, and the page stays right after the server restarts) ----
function jobName(j) { return j.label || j.targets.join(", ") || j.id.slice(0, 8); }
function pct(x) { return Math.round(100 * Math.max(0, Math.min(1, x))); }

async function refreshJobs() {
  let jobs;
  try { jobs = await api("jobs?limit=200"); } catch (e) { return; }
  const ul = $("jobs");
  ul.replaceChildren(...jobs.map((j) => {
    const bar = el("div", {class: j.state}); bar.style.width = pct(j.progress) + "%";
    return el("li", {"data-id": j.id, class: j.id === S.job ? "selected" : "", onclick: () => selectJob(j.id)},
      el("div", {class: "meta"}, el("span", {class: "name"}, jobName(j)), el("span", {class: "state " + j.state}, j.state)),
      el("div", {class: "meta"}, el("span", {}, j.id.slice(0, 8)),
         el("span", {}, new Date(j.created * 1000).toLocaleTimeString() + " · " + j.tasks_done + "/" + j.tasks_total)),
      el("div", {class: "mini"}, bar));
  }));
  $("no-jobs").hidden = jobs.length > 0;
  const count = (state) => jobs.filter((j) => j.state === state).length;
  $("server-info").dataset.jobs = `${count("running")} running, ${count("queued")} queued`;
  showInfo();
  const rec = jobs.find((j) => j.id === S.job);
  if (rec) showRecord(rec);
  if (!S.job && jobs.length && !location.hash) selectJob(jobs[0].id);
}

async function refreshInfo() {
  try {
    const i = await api("info");
    $("server-info").dataset.server = `v${i.version} · gRPC ${i.grpc_address}`;
    $("server-info").dataset.jobs = `${i.jobs_running} running, ${i.jobs_queued} queued`;
    showInfo();
  } catch (e) {}
}
function showInfo() {
  const d = $("server-info").dataset;
  $("server-info").textContent = [d.server, d.jobs].filter(Boolean).join(" · ");
}

// ---- one job ----
function storeKey(id) { return "celgraph.events." + id; }

function selectJob(id) {
  if (S.job === id) return;
  if (S.source) S.source.close();
  Object.assign(S, {job: id, record: null, events: [], lastSeq: 0, gaps: 0, resumedFrom: null, source: null,
                    graph: null, nodeStats: {}, selectedNode: null, pictures: null, frame: null});
  if (location.hash.slice(1) !== id) history.replaceState(null, "", "#" + id);
  for (const li of $("jobs").children) li.classList.toggle("selected", li.dataset.id === id);
  $("job").hidden = false;
  $("job-error").hidden = true; $("cancel").hidden = true;             // nothing of the last job stays
  $("job-state").textContent = ""; $("job-state").className = "state";
  $("graph").replaceChildren(); $("frame").value = 0; $("frame-label").textContent = "";
  $("events").tBodies[0].replaceChildren();
  $("pictures").replaceChildren();
  $("node-panel").replaceChildren(el("p", {class: "muted"}, "Click a node to see its params and outputs."));
  $("job-title").textContent = id.slice(0, 8);
  // events seen before a reload: keep them, ask the server only for what follows
  try {
    const kept = JSON.parse(sessionStorage.getItem(storeKey(id)) || "[]");
    for (const ev of kept) addEvent(ev);
  } catch (e) { S.events = []; S.lastSeq = 0; }
  S.resumedFrom = S.lastSeq;
  renderEvents();
  api("jobs/" + id).then(showRecord).catch(() => {});
  api("jobs/" + id + "/graph").then((g) => { if (S.job === id) { S.graph = g; drawGraph(); } }).catch(() => {});
  refreshPictures();
  openStream(id);
}

function openStream(id) {
  // EventSource reconnects by itself and sends Last-Event-ID (= the last seq): the server resumes there
  const src = new EventSource(`/api/jobs/${id}/events?from=${S.lastSeq}`);
  S.source = src;
  src.onmessage = (m) => { if (S.job === id) { addEvent(JSON.parse(m.data)); scheduleUpdate(); } };
  src.addEventListener("end", () => { src.close(); if (S.source === src) S.source = null; });
}

function addEvent(ev) {
  if (ev.seq <= S.lastSeq) return;                         // already seen (a reconnect may repeat none, but be safe)
  if (ev.seq !== S.lastSeq + 1) S.gaps += 1;               // never expected: counted so tests can see
  S.events.push(ev); S.lastSeq = ev.seq;
  if (ev.node) {
    const st = S.nodeStats[ev.node] || (S.nodeStats[ev.node] = {cached: 0, started: 0, finished: 0, failed: 0});
    if (ev.kind === "task_cached") st.cached++;
    else if (ev.kind === "task_started") st.started++;
    else if (ev.kind === "task_finished") st.finished++;
    else if (ev.kind === "task_failed") st.failed++;
  }
}

let updateTimer = null;
function scheduleUpdate() {
  if (updateTimer) return;
  updateTimer = setTimeout(() => {
    updateTimer = null;
    renderEvents(); styleNodes(); persist();
    const last = S.events[S.events.length - 1];
    if (last && (last.kind === "task_finished" || last.kind === "task_cached" || last.kind === "job_finished")) refreshPictures();
    if (last && last.kind === "job_finished") api("jobs/" + S.job).then(showRecord).catch(() => {});
  }, 150);
}

function persist() {
  const text = JSON.stringify(S.events);
  try {
    if (text.length < STORE_LIMIT) sessionStorage.setItem(storeKey(S.job), text);
    else sessionStorage.removeItem(storeKey(S.job));      // too many: a reload replays the log instead
  } catch (e) {}
}

function progress() {
  let total = 0, done = 0, state = S.record ? S.record.state : "queued";
  for (const ev of S.events) {
    if (ev.kind === "run_started") { total = (ev.data || {}).compute || 0; done = 0; }
    else if (ev.kind === "task_finished") done++;
    else if (ev.kind === "job_finished") state = ev.data.state;
  }
  const frac = state === "succeeded" ? 1 : total ? done / total : 0;
  return {frac, done, total, state};
}

function renderEvents() {
  const p = progress();
  const bar = $("job-progress");
  bar.style.width = pct(p.frac) + "%"; bar.dataset.value = pct(p.frac); bar.className = "bar " + p.state;
  $("job-progress-text").textContent = pct(p.frac) + " %";
  const first = S.events.length ? S.events[0].seq : 0;
  $("event-count").textContent = `${S.events.length} (seq ${first}–${S.lastSeq})`;
  $("event-count").dataset.last = S.lastSeq;
  const body = $("events").tBodies[0];
  const shown = S.events.slice(-300);                       // the DOM keeps the latest 300 rows
  body.replaceChildren(...shown.map((ev) => el("tr", {class: ev.kind + " " + (ev.data && ev.data.state || ""), "data-seq": ev.seq},
    el("td", {}, String(ev.seq)), el("td", {}, new Date(ev.time * 1000).toLocaleTimeString()), el("td", {}, ev.kind),
    el("td", {}, ev.node || ""), el("td", {}, ev.frame === undefined || ev.frame === null ? "" : "f" + ev.frame),
    el("td", {}, ev.progress !== undefined ? pct(ev.progress) + " %" : ev.seconds !== undefined ? ev.seconds.toFixed(3) + " s" : ""),
    el("td", {}, ev.message || (ev.kind === "job_finished" ? ev.data.state : "")))));
  const box = body.closest(".events-box"); box.scrollTop = box.scrollHeight;
}

function showRecord(rec) {
  if (rec.id !== S.job) return;
  S.record = rec;
  $("job-title").textContent = jobName(rec) + " · " + rec.id.slice(0, 8);
  $("job-state").textContent = rec.state; $("job-state").className = "state " + rec.state;
  $("cancel").hidden = TERMINAL.has(rec.state);
  const err = $("job-error");
  if (rec.error && rec.state !== "succeeded") {
    const e = rec.error, where = [];
    if (e.node) where.push("node " + e.node);
    if (e.node_type) where.push("type " + e.node_type);
    if (e.frame !== null && e.frame !== undefined) where.push("frame " + e.frame);
    err.textContent = `${e.code}${where.length ? " — " + where.join(", ") : ""}${e.exception ? " (" + e.exception + ")" : ""}\n${e.message}`;
    err.hidden = false;
  } else err.hidden = true;
  renderEvents();
}

$("cancel").onclick = async () => {
  $("cancel").disabled = true;
  try { showRecord(await api("jobs/" + S.job + "/cancel", {method: "POST"})); } finally { $("cancel").disabled = false; }
};

// ---- the graph ----
const NODE_W = 170, HEAD = 22, PORT = 15, COL_W = 240, GAP = 28;

function drawGraph() {
  const g = S.graph, root = $("graph");
  const h = (n) => HEAD + Math.max(n.inputs.length, n.outputs.length, 1) * PORT + 8;
  const colY = {}, pos = {};
  const byRow = [...g.nodes].sort((a, b) => a.col - b.col || a.row - b.row);
  for (const n of byRow) {
    const y = colY[n.col] || 10;
    pos[n.name] = {x: 10 + n.col * COL_W, y, h: h(n), n};
    colY[n.col] = y + h(n) + GAP;
  }
  const width = 20 + (Math.max(0, ...g.nodes.map((n) => n.col)) + 1) * COL_W - (COL_W - NODE_W);
  const height = Math.max(60, ...Object.values(colY));
  root.setAttribute("width", width); root.setAttribute("height", height);
  const links = g.links.filter((l) => pos[l.from] && pos[l.to]).map((l) => {
    const a = pos[l.from], b = pos[l.to];
    const ai = Math.max(0, a.n.outputs.findIndex((o) => o.name === l.output));
    const bi = Math.max(0, b.n.inputs.findIndex((i) => i.name === l.input));
    const x1 = a.x + NODE_W, y1 = a.y + HEAD + ai * PORT + 9, x2 = b.x, y2 = b.y + HEAD + bi * PORT + 9;
    const dx = Math.max(40, (x2 - x1) / 2);
    return svg("path", {class: "link", d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`,
                        stroke: PORT_COLOURS[l.type] || "#aaa"},
               svg("title", {}, `${l.from}.${l.output} → ${l.to}.${l.input} (${l.type})`));
  });
  const nodes = g.nodes.map((n) => {
    const p = pos[n.name];
    const grp = svg("g", {class: "node", "data-node": n.name, transform: `translate(${p.x},${p.y})`},
      svg("rect", {class: "body", width: NODE_W, height: p.h, rx: 5}),
      svg("rect", {class: "head", width: NODE_W, height: HEAD, rx: 5}),
      svg("text", {class: "title", x: 7, y: 15}, n.name),
      svg("text", {class: "count", x: NODE_W - 6, y: 15, "text-anchor": "end"}, ""),
      svg("title", {}, `${n.name}: ${n.type}`));
    n.inputs.forEach((i, k) => grp.append(
      svg("circle", {cx: 0, cy: HEAD + k * PORT + 9, r: 3.5, fill: PORT_COLOURS[i.type] || "#aaa"}),
      svg("text", {class: "port", x: 7, y: HEAD + k * PORT + 12}, i.name)));
    n.outputs.forEach((o, k) => grp.append(
      svg("circle", {cx: NODE_W, cy: HEAD + k * PORT + 9, r: 3.5, fill: PORT_COLOURS[o.type] || "#aaa"}),
      svg("text", {class: "port", x: NODE_W - 7, y: HEAD + k * PORT + 12, "text-anchor": "end"}, o.name)));
    grp.addEventListener("click", () => selectNode(n.name));
    return grp;
  });
  root.replaceChildren(...links, ...nodes);
  styleNodes();
}

function nodeState(st) {
  if (!st) return "";
  if (st.failed) return "failed";
  if (st.started > st.finished) return "running";
  if (st.finished) return "done";
  if (st.cached) return "cached";
  return "";
}

function styleNodes() {
  for (const grp of $("graph").querySelectorAll("g.node")) {
    const st = S.nodeStats[grp.dataset.node], state = nodeState(st);
    grp.setAttribute("class", "node " + state + (grp.dataset.node === S.selectedNode ? " selected" : ""));
    grp.dataset.state = state;
    const c = grp.querySelector("text.count");
    c.textContent = st ? [st.finished && st.finished + " done", st.cached && st.cached + " cached",
                          st.failed && st.failed + " failed"].filter(Boolean).join(" · ") : "";
  }
}

function selectNode(name) {
  S.selectedNode = name; styleNodes(); renderNodePanel();
}

function thumbSrc(node, output, frame) {
  return `/api/jobs/${S.job}/thumb?node=${encodeURIComponent(node)}&output=${encodeURIComponent(output)}` +
         (frame === null || frame === undefined ? "" : `&frame=${frame}`) + `&size=300&v=${S.lastSeq}`;
}

function renderNodePanel() {
  const n = S.graph && S.graph.nodes.find((x) => x.name === S.selectedNode);
  if (!n) return;
  const st = S.nodeStats[n.name] || {};
  const rows = n.params.map((p) => el("tr", {}, el("td", {}, p.name),
    el("td", {class: p.set ? "" : "default"}, JSON.stringify(p.value))));
  const inputs = S.graph.links.filter((l) => l.to === n.name).map((l) => el("li", {}, `${l.input} ← ${l.from}.${l.output} (${l.type})`));
  const outs = n.outputs.map((o) => {
    const li = el("li", {}, `${o.name} (${o.type})`);
    if (n.image_outputs.includes(o.name) && (st.finished || st.cached)) {
      const img = el("img", {alt: `${n.name}.${o.name}`, src: thumbSrc(n.name, o.name, S.frame)});
      img.onerror = () => img.remove();
      li.append(img);
    }
    return li;
  });
  $("node-panel").replaceChildren(
    el("h3", {}, n.name), el("p", {class: "muted"}, `${n.type} · ${n.category} · ${n.scope} scope · ${nodeState(st) || "waiting"}`),
    el("table", {}, el("tbody", {}, ...rows)),
    el("h3", {}, "Inputs"), el("ul", {}, ...inputs),
    el("h3", {}, "Outputs" + (S.frame !== null ? ` at frame ${S.frame}` : "")), el("ul", {}, ...outs));
}

// ---- pictures ----
let picturesBusy = false, picturesAgain = false;
async function refreshPictures() {
  if (picturesBusy) { picturesAgain = true; return; }
  picturesBusy = true;
  const id = S.job;
  try {
    const p = await api("jobs/" + id + "/pictures");
    if (S.job !== id) return;
    S.pictures = p;
    const slider = $("frame");
    slider.max = Math.max(0, p.frames.length - 1);
    if (S.frame === null && p.frames.length) { S.frame = p.frames[0]; slider.value = 0; }
    renderPictures();
  } catch (e) {
  } finally {
    picturesBusy = false;
    if (picturesAgain) { picturesAgain = false; setTimeout(refreshPictures, 200); }
  }
}

function renderPictures() {
  const p = S.pictures; if (!p) return;
  $("frame-label").textContent = S.frame === null ? "" : `frame ${S.frame} (${p.frames.indexOf(S.frame) + 1} of ${p.frames.length})`;
  const items = p.items.filter((i) => i.frame === null || i.frame === S.frame);
  const box = $("pictures");
  const have = new Map([...box.children].map((f) => [f.dataset.key, f]));
  const figs = items.map((i) => {
    const key = `${i.node}.${i.output}@${i.frame}:${i.kind}`;
    if (have.has(key)) return have.get(key);                 // keep loaded images: no flicker
    const img = el("img", {src: i.src + "&size=192", alt: key, loading: "eager"});
    const fig = el("figure", {class: "thumb", "data-key": key, "data-kind": i.kind},
                   img, el("figcaption", {title: i.path || ""}, `${i.node}.${i.output} · ${i.kind}`));
    img.onerror = () => fig.classList.add("broken");
    return fig;
  });
  box.replaceChildren(...figs);
}

$("frame").addEventListener("input", () => {
  if (!S.pictures || !S.pictures.frames.length) return;
  S.frame = S.pictures.frames[Number($("frame").value)];
  renderPictures(); renderNodePanel();
});

// ---- node catalogue ----
let catalogueLoaded = false;
async function loadCatalogue() {
  if (catalogueLoaded) return;
  const types = await api("nodes");
  catalogueLoaded = true;
  types.sort((a, b) => a.category.localeCompare(b.category) || a.name.localeCompare(b.name));
  $("catalogue").replaceChildren(...types.map((t) => el("details", {"data-type": t.id},
    el("summary", {}, t.name + " ", el("span", {class: "cat"}, `${t.category} · ${t.scope} · v${t.version}`)),
    el("p", {}, t.doc),
    el("b", {}, "inputs"), el("ul", {}, ...t.inputs.map((i) => el("li", {}, `${i.name}: ${i.type}${i.optional ? " (optional)" : ""}`))),
    el("b", {}, "outputs"), el("ul", {}, ...t.outputs.map((o) => el("li", {}, `${o.name}: ${o.type}`))),
    el("b", {}, "params"), el("ul", {}, ...t.params.map((p) => el("li", {},
      `${p.name} (${p.kind}) = ${JSON.stringify(p.default)}` + (p.help ? " — " + p.help : "")))))));
}

// ---- start ----
let timers = [];
async function start() {
  timers.forEach(clearInterval);
  await refreshInfo();
  await refreshJobs();
  const want = location.hash.slice(1);
  if (/^[0-9a-f]{32}$/.test(want)) selectJob(want);
  timers = [setInterval(refreshJobs, 1000), setInterval(refreshInfo, 10000)];
}
window.addEventListener("hashchange", () => {
  const want = location.hash.slice(1);
  if (/^[0-9a-f]{32}$/.test(want)) selectJob(want);
});
start();
