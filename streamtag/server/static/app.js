// streamtag dashboard: one WebSocket to /ws (API v1), a card per source. No build step, no dependencies.
"use strict";
const HISTORY = 240;        // heat map columns (windows) kept
const HEAT_ROWS = 12;       // labels shown in the heat map
const MEL_WIDTH = 600;      // log-mel columns kept
const EVENTS_SHOWN = 12;
const params = new URLSearchParams(location.search);
const cards = new Map();
let melBands = 64;

function el(card, sel) { return card.root.querySelector(sel); }

function card(name) {
  if (cards.has(name)) return cards.get(name);
  const root = document.getElementById("source-card").content.firstElementChild.cloneNode(true);
  root.dataset.source = name;
  root.querySelector(".name").textContent = name;
  document.getElementById("sources").appendChild(root);
  const c = { root, history: [], counts: new Map(), rows: [], dirty: false, events: new Map(), columns: 0,
              melCtx: root.querySelector(".mel").getContext("2d"), heatCtx: root.querySelector(".heat").getContext("2d") };
  cards.set(name, c);
  return c;
}

function onWindow(m) {
  const c = card(m.source);
  const top = m.top || [];
  c.history.push({ index: m.index, run: m.run, scores: new Map(top) });
  for (const [label, s] of top) c.counts.set(label, (c.counts.get(label) || 0) + s);
  if (c.history.length > HISTORY) {
    const old = c.history.shift();
    for (const [label, s] of old.scores) {
      const v = (c.counts.get(label) || 0) - s;
      if (v <= 1e-9) c.counts.delete(label); else c.counts.set(label, v);
    }
  }
  const tags = el(c, ".tags");
  tags.replaceChildren(...top.map(([label, s]) => {
    const li = document.createElement("li");
    li.textContent = label;
    const span = document.createElement("span");
    span.textContent = s.toFixed(2);
    li.appendChild(span);
    return li;
  }));
  if (m.level_db !== null && m.level_db !== undefined) {
    const frac = Math.max(0, Math.min(1, (m.level_db + 80) / 80));
    el(c, ".meter .fill").style.height = (frac * 100).toFixed(1) + "%";
    el(c, ".meter .db").textContent = m.level_db.toFixed(0);
  }
  c.dirty = true;
}

function heatColor(v) {  // 0..1 -> dark blue .. yellow
  const t = Math.max(0, Math.min(1, v));
  return `rgb(${Math.round(255 * Math.min(1, t * 1.6))},${Math.round(220 * t)},${Math.round(90 + 80 * (1 - t) * t)})`;
}

function drawHeat(c) {
  const ctx = c.heatCtx, W = ctx.canvas.width, H = ctx.canvas.height;
  c.rows = [...c.counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, HEAT_ROWS).map(e => e[0]);
  ctx.fillStyle = "#0b0d10";
  ctx.fillRect(0, 0, W, H);
  const labelW = 150, cw = (W - labelW) / HISTORY, rh = H / HEAT_ROWS;
  const start = HISTORY - c.history.length;
  c.history.forEach((col, i) => {
    c.rows.forEach((label, r) => {
      const s = col.scores.get(label);
      if (s === undefined) return;
      ctx.fillStyle = heatColor(s);
      ctx.fillRect(labelW + (start + i) * cw, r * rh, Math.ceil(cw), rh - 1);
    });
  });
  ctx.fillStyle = "#dde3ea";
  ctx.font = "11px system-ui, sans-serif";
  c.rows.forEach((label, r) => ctx.fillText(label.slice(0, 24), 2, r * rh + rh * 0.7));
  c.columns = c.history.length;
  ctx.canvas.dataset.columns = String(c.columns);
  ctx.canvas.dataset.rows = c.rows.join("|");
}

function onMel(m) {
  const c = card(m.source);
  const bytes = Uint8Array.from(atob(m.data), ch => ch.charCodeAt(0));
  const n = m.frames, bands = m.bands, ctx = c.melCtx;
  if (ctx.canvas.height !== bands) ctx.canvas.height = bands;
  const shift = Math.min(n, MEL_WIDTH);
  ctx.drawImage(ctx.canvas, -shift, 0);
  const img = ctx.createImageData(shift, bands);
  for (let x = 0; x < shift; x++) {
    const f = n - shift + x;
    for (let b = 0; b < bands; b++) {
      const v = bytes[f * bands + b], p = ((bands - 1 - b) * shift + x) * 4;
      img.data[p] = v; img.data[p + 1] = Math.round(v * 0.6); img.data[p + 2] = 255 - v; img.data[p + 3] = 255;
    }
  }
  ctx.putImageData(img, MEL_WIDTH - shift, 0);
  ctx.canvas.dataset.frames = String((+ctx.canvas.dataset.frames || 0) + n);
}

function onEvent(m) {
  const c = card(m.source);
  const key = `${m.run}:${m.label}:${m.onset_s}`;
  const body = el(c, ".events tbody");
  let row = c.events.get(key);
  if (!row) {
    row = document.createElement("tr");
    for (let i = 0; i < 5; i++) row.appendChild(document.createElement("td"));
    body.prepend(row);
    c.events.set(key, row);
    while (body.children.length > EVENTS_SHOWN) {
      const last = body.lastElementChild;
      for (const [k, r] of c.events) if (r === last) c.events.delete(k);
      last.remove();
    }
  }
  const cells = row.children;
  row.className = m.state;
  cells[0].textContent = m.label;
  cells[1].textContent = m.onset_s.toFixed(1) + " s";
  cells[2].textContent = m.state === "close" ? m.offset_s.toFixed(1) + " s" : "…";
  cells[3].textContent = m.state === "close" ? m.peak.toFixed(2) : "";
  if (m.clip_url && !cells[4].firstChild) {
    const audio = document.createElement("audio");
    audio.controls = true; audio.preload = "none"; audio.src = m.clip_url;
    cells[4].appendChild(audio);
  }
}

function onStatus(m) {
  const c = card(m.source || m.name);
  const state = el(c, ".state");
  state.textContent = m.state;
  state.className = "state " + m.state;
  const lat = m.latency_ms || {};
  el(c, ".health").textContent = `${m.windows} windows · lost ${m.lost_s} s · latency p50 ${lat.p50 ?? "–"} ms ` +
    `p95 ${lat.p95 ?? "–"} ms · reconnects ${m.reconnects}` + (m.error ? ` · ${m.error}` : "");
}

function frame() {
  for (const c of cards.values()) if (c.dirty) { c.dirty = false; drawHeat(c); }
  requestAnimationFrame(frame);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const q = new URLSearchParams({ mel: "1", scores: "top", top_k: "8" });
  if (params.get("token")) q.set("token", params.get("token"));
  if (params.get("sources")) q.set("sources", params.get("sources"));
  const ws = new WebSocket(`${proto}//${location.host}/ws?${q}`);
  const conn = document.getElementById("conn");
  ws.onopen = () => { conn.textContent = "live"; conn.className = "conn ok"; };
  ws.onclose = () => { conn.textContent = "disconnected, retrying…"; conn.className = "conn"; setTimeout(connect, 2000); };
  ws.onmessage = (e) => {
    if (typeof e.data !== "string") return;
    const m = JSON.parse(e.data);
    if (m.type === "hello") { melBands = m.mel_bands; m.sources.forEach(s => { card(s.name); onStatus({ ...s, windows: 0, lost_s: 0, reconnects: 0 }); }); }
    else if (m.type === "window") onWindow(m);
    else if (m.type === "mel") onMel(m);
    else if (m.type === "event") onEvent(m);
    else if (m.type === "status") onStatus(m);
  };
}

connect();
requestAnimationFrame(frame);
