// doppel studio: the page. No framework, no build step. All state lives in the server's workspace; this file
// only draws it and sends edits (JSON POSTs; the session cookie and the page's own Origin authorise them).
"use strict";

const S = {
  shot: null, frame: 0, info: null, timeline: null, view: "merged", mask: false, wipe: 0.5,
  inPoint: null, outPoint: null, playing: 0, images: new Map(), version: new Map(), anchors: null,
  dragging: -1, firstFrameAt: null, playStats: {shown: 0, dropped: 0, late: []}, lastShown: -1,
  poly: null, occlusion: false, maskEpoch: 0, zoomFace: false,
};
window.studio = S;
const $ = (id) => document.getElementById(id);
const screen = $("screen"), ctx = screen.getContext("2d", {willReadFrequently: true});

async function api(path, body) {
  const init = body === undefined ? {} : {method: "POST", headers: {"content-type": "application/json"},
                                          body: JSON.stringify(body)};
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) { status(data.error || r.statusText); throw new Error(data.error || r.statusText); }
  return data;
}
function status(text) { $("status").textContent = text || ""; }

// -- images: a small cache of decoded proxies keyed by kind, frame and render version -------------------------
function imageVersion(kind, i) { return `${S.version.get(i) || 0}${kind === "occlusion" ? "." + S.maskEpoch : ""}`; }
function imageKey(kind, i) { return `${kind}:${i}:${imageVersion(kind, i)}`; }
function loadImage(kind, i) {
  const key = imageKey(kind, i);
  let entry = S.images.get(key);
  if (!entry) {
    const img = new Image();
    img.src = `/img/${kind}/${i}.${kind === "occlusion" ? "png" : "jpg"}?v=${imageVersion(kind, i)}`;
    entry = {img, ready: img.decode().then(() => img)};
    entry.ready.then(() => { entry.done = true; }, () => { S.images.delete(key); });
    S.images.set(key, entry);
    if (S.images.size > 600) S.images.delete(S.images.keys().next().value);
  }
  return entry;
}
function kindsFor() {
  const kinds = S.view === "plate" ? ["plate"] : S.view === "merged" ? ["merged"] : ["merged", "plate"];
  if (S.mask) kinds.push("mask");
  if (S.occlusion) kinds.push("occlusion");
  return kinds;
}
function prefetch(from, count, step) {
  for (let k = 1; k <= count; k++) {
    const i = from + k * step;
    if (i < 0 || i >= S.shot.frames) break;
    for (const kind of kindsFor()) loadImage(kind, i);
  }
}

// -- drawing ---------------------------------------------------------------------------------------------------
function draw(i) {
  const entries = kindsFor().map((k) => loadImage(k, i));
  if (!entries.every((e) => e.done)) return false;
  const [a, b] = entries.map((e) => e.img);
  const w = S.shot.width, h = S.shot.height;
  if (S.view === "merged" || S.view === "plate") ctx.drawImage(a, 0, 0);
  else if (S.view === "wipe") {
    const x = Math.round(S.wipe * w);
    ctx.drawImage(a, 0, 0);
    ctx.drawImage(b, x, 0, w - x, h, x, 0, w - x, h);
    ctx.fillStyle = "#fff"; ctx.fillRect(x, 0, 1, h);
  } else {
    ctx.drawImage(a, 0, 0);
    const da = ctx.getImageData(0, 0, w, h);
    ctx.drawImage(b, 0, 0);
    const db = ctx.getImageData(0, 0, w, h);
    for (let p = 0; p < da.data.length; p += 4)
      for (let c = 0; c < 3; c++) da.data[p + c] = Math.min(255, 4 * Math.abs(da.data[p + c] - db.data[p + c]));
    ctx.putImageData(da, 0, 0);
  }
  const kinds = kindsFor();
  if (S.mask) tint(entries[kinds.indexOf("mask")].img, [255, 40, 40], false);
  if (S.occlusion) tint(entries[kinds.indexOf("occlusion")].img, [255, 0, 255], true);
  drawLabel(i);
  if (S.anchors) {
    ctx.fillStyle = "#3f9"; ctx.strokeStyle = "#000";
    for (const [x, y] of S.anchors) { ctx.beginPath(); ctx.arc(x, y, 4, 0, 7); ctx.fill(); ctx.stroke(); }
  }
  drawZoom();
  S.lastShown = i;
  if (S.firstFrameAt === null) S.firstFrameAt = performance.now();
  return true;
}
function drawZoom() {
  const z = $("zoom"), zc = z.getContext("2d");
  zc.fillStyle = "#000"; zc.fillRect(0, 0, z.width, z.height);
  const face = S.info && S.info.frame === S.frame && S.info.face;
  if (!face) return;
  const [x0, y0, x1, y1] = face.box, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const side = Math.max(x1 - x0, y1 - y0) * 1.6;
  zc.imageSmoothingEnabled = true;
  zc.drawImage(screen, cx - side / 2, cy - side / 2, side, side, 0, 0, z.width, z.height);
}
function show(i) {
  if (!draw(i)) loadImage(kindsFor()[0], i).ready.then(() => Promise.all(kindsFor().map((k) => loadImage(k, i).ready)))
    .then(() => { if (S.frame === i) draw(i); }).catch(() => {});
}

// -- navigation ------------------------------------------------------------------------------------------------
function readout() {
  $("frameno").textContent = S.frame;
  $("timecode").textContent = timecode(S.frame);
  $("inout").textContent = `in ${S.inPoint ?? "–"} · out ${S.outPoint ?? "–"}`;
}
function timecode(i) {
  const rate = Math.max(1, Math.round(S.shot.fps)), sec = Math.floor(i / rate), ff = i % rate;
  const p = (n) => String(n).padStart(2, "0");
  return `${p(Math.floor(sec / 3600))}:${p(Math.floor(sec / 60) % 60)}:${p(sec % 60)}:${p(ff)}`;
}
let infoTimer = null;
function go(i, {fetchInfo = true} = {}) {
  S.frame = Math.max(0, Math.min(S.shot.frames - 1, i));
  S.anchors = null; $("saveAnchors").disabled = true;
  if (S.poly) cancelPolygon();
  S.stroke = null;
  readout(); show(S.frame); drawTimeline();
  prefetch(S.frame, 3, 1); prefetch(S.frame, 3, -1);
  if (fetchInfo) { clearTimeout(infoTimer); infoTimer = setTimeout(loadInfo, 60); }
}
async function loadInfo() {
  const i = S.frame;
  const info = await api(`/api/frame/${i}`);
  if (S.frame !== i) return;
  S.info = info; renderInspector(); drawZoom(); applyZoom();
  api("/api/playhead", {frame: i}).catch(() => {});
}

// -- playback: a frame clock at the shot's rate; a frame not decoded when its time comes counts as dropped ----
function play(speed) {
  S.playing = speed;
  if (!speed) { loadInfo(); return; }
  S.playStats = {shown: 0, dropped: 0, late: []};
  const start = S.frame;
  let last = start, t0 = null;
  const tick = (now) => {
    if (S.playing !== speed) return;
    if (t0 === null) t0 = now;  // the clock starts at the first animation frame (its time may precede the key press)
    const i = start + Math.floor((now - t0) / 1000 * S.shot.fps * speed);
    if (i < 0 || i >= S.shot.frames) { S.playing = 0; go(Math.max(0, Math.min(S.shot.frames - 1, i))); return; }
    if (i !== last) {
      S.playStats.dropped += Math.max(0, Math.abs(i - last) - 1);  // frames the clock skipped
      last = i;
      S.frame = i; readout();
      if (draw(i)) S.playStats.shown++; else { S.playStats.dropped++; S.playStats.late.push(i); }
      prefetch(i, AHEAD, Math.sign(speed));
      if (i % 8 === 0) drawTimeline();
    }
    requestAnimationFrame(tick);
  };
  // Fill a buffer first (as any player does): up to a second of frames decoded, or half a second of waiting.
  prefetch(start, AHEAD, Math.sign(speed));
  const buffer = [];
  for (let k = 1; k <= Math.round(S.shot.fps); k++) {
    const i = start + k * Math.sign(speed);
    if (i >= 0 && i < S.shot.frames) buffer.push(...kindsFor().map((kind) => loadImage(kind, i).ready));
  }
  Promise.race([Promise.allSettled(buffer), new Promise((r) => setTimeout(r, 500))])
    .then(() => requestAnimationFrame(tick));
}
const AHEAD = 60;  // frames decoded ahead of the playhead during playback

// -- timeline --------------------------------------------------------------------------------------------------
const STATE_COLORS = {none: "#444", rendered: "#3a7", stale: "#d80"};
function drawTimeline() {
  const c = $("timeline"), t = c.getContext("2d");
  const W = c.width = c.clientWidth || 1200, H = c.height, n = S.shot.frames, tl = S.timeline;
  t.fillStyle = "#15171a"; t.fillRect(0, 0, W, H);
  if (!tl) return;
  const x = (i) => Math.floor(i / n * W), wd = Math.max(1, Math.ceil(W / n));
  if (S.inPoint !== null || S.outPoint !== null) {
    const a = S.inPoint ?? 0, b = S.outPoint ?? n - 1;
    t.fillStyle = "#2c3a55"; t.fillRect(x(a), 0, x(b + 1) - x(a), H);
  }
  for (let i = 0; i < n; i++) {
    t.fillStyle = STATE_COLORS[tl.states[i]]; t.fillRect(x(i), 4, wd, 14);
    if (tl.review[i]) { t.fillStyle = tl.review[i] === "approved" ? "#48f" : "#e44"; t.fillRect(x(i), 22, wd, 10); }
  }
  t.fillStyle = "#f44";
  for (const i of Object.keys(tl.problems)) t.fillRect(x(+i), 36, Math.max(2, wd), 10);
  t.fillStyle = "#fd4";
  for (const note of tl.notes) if (!note.resolved) t.fillRect(x(note.first), 50, Math.max(2, x(note.last + 1) - x(note.first)), 6);
  for (const keys of Object.values(tl.keyframes)) for (const k of keys) {
    t.beginPath(); t.moveTo(x(k.frame), 58); t.lineTo(x(k.frame) + 4, 64); t.lineTo(x(k.frame), 70); t.lineTo(x(k.frame) - 4, 64); t.fill();
  }
  const LABEL_COLORS = {drawn: "#3af", confirmed: "#3af", suggested: "#fd4"};
  for (let i = 0; i < n; i++) {
    const kind = tl.labels && tl.labels[i];
    if (!kind) continue;
    t.fillStyle = LABEL_COLORS[kind];
    if (kind === "suggested") t.fillRect(x(i), 78, wd, 4); else t.fillRect(x(i), 74, wd, 10);
  }
  t.fillStyle = "#fff"; t.fillRect(x(S.frame), 0, 2, H);
  t.font = "10px sans-serif"; t.fillStyle = "#999";
  t.fillText("state", 2, 14); t.fillText("review", 2, 31); t.fillText("problems", 2, 45); t.fillText("masks", 2, 84);
}
async function loadTimeline() {
  S.timeline = await api("/api/timeline");
  drawTimeline(); renderSummary();
  const h = S.timeline.history;
  $("history").textContent = (h.undo.length ? `undo: ${h.undo[0]}` : "nothing to undo") + (h.redo.length ? ` · redo: ${h.redo[0]}` : "");
}
async function renderSummary() {
  const s = await api("/api/summary");
  $("summary").textContent = `approved ${s.approved_pct}% · ${s.open_notes.length} open notes · ${s.problem_frames_left.length} problem frames left`;
}
function nextProblem() {
  const frames = Object.keys(S.timeline.problems).map(Number).sort((a, b) => a - b);
  const next = frames.find((i) => i > S.frame) ?? frames[0];
  if (next === undefined) { $("problemText").textContent = "no problems found"; return; }
  go(next); $("problemText").textContent = `frame ${next}: ${S.timeline.problems[next].join("; ")}`;
}

// -- inspector and edits ---------------------------------------------------------------------------------------
function range() {
  const useRange = document.querySelector("input[name=scope]:checked").value === "range";
  if (useRange && S.inPoint !== null && S.outPoint !== null) return [Math.min(S.inPoint, S.outPoint), Math.max(S.inPoint, S.outPoint)];
  return [S.frame, S.frame];
}
function reviewRange() {
  return S.inPoint !== null && S.outPoint !== null ? [Math.min(S.inPoint, S.outPoint), Math.max(S.inPoint, S.outPoint)] : [S.frame, S.frame];
}
async function edit(path, body) {
  status("…");
  const t0 = performance.now();
  const res = await api(path, {...body, frame: S.frame});
  S.version.set(S.frame, (S.version.get(S.frame) || 0) + 1);
  if (res.frame) { S.info = res.frame; renderInspector(); }
  const i = S.frame;
  await Promise.all(kindsFor().map((k) => loadImage(k, i).ready));
  if (S.frame === i) draw(i);
  S.lastEditMs = performance.now() - t0;  // from the click to the new render on screen
  S.edits = (S.edits || 0) + 1;
  status("");
  await loadInfo();
  loadTimeline();
  return res;
}
function renderInspector() {
  const info = S.info, table = $("settings");
  table.innerHTML = "";
  for (const spec of S.shot.settings) {
    const cur = info.settings[spec.key], tr = table.insertRow();
    tr.insertCell().textContent = spec.key; tr.title = spec.help;
    const cell = tr.insertCell();
    let input;
    if (spec.choices) {
      input = document.createElement("select");
      for (const c of spec.choices) input.add(new Option(c, c, false, c === cur.value));
    } else if (spec.type === "bool") {
      input = document.createElement("input"); input.type = "checkbox"; input.checked = cur.value;
    } else if (spec.type === "str") {
      input = document.createElement("input"); input.type = "text"; input.value = cur.value; input.size = 8;
    } else {
      input = document.createElement("input"); input.type = "number"; input.value = cur.value;
      input.step = spec.type === "int" ? "1" : "0.5";
      if (spec.bounds) { input.min = spec.bounds[0]; input.max = spec.bounds[1]; }
    }
    input.id = `set-${spec.key}`;
    input.addEventListener("change", () => {
      const value = spec.type === "bool" ? input.checked : spec.choices ? input.value :
        spec.type === "int" ? parseInt(input.value, 10) : parseFloat(input.value);
      // A setting that has keyframes is animated: a new value becomes a keyframe on this frame.
      if (spec.keyframe && cur.keyframes) { edit("/api/keyframe", {key: spec.key, value}).catch(() => {}); return; }
      const [first, last] = range();
      edit("/api/override", {first, last, key: spec.key, value}).catch(() => {});
    });
    cell.appendChild(input);
    const kf = tr.insertCell();
    if (spec.keyframe) {
      const b = document.createElement("button"); b.textContent = "◆"; b.id = `key-${spec.key}`;
      const here = cur.keyframes && cur.keyframes.includes(S.frame);
      b.title = here ? "Remove the keyframe on this frame" : "Keyframe this value on this frame";
      if (here) b.className = "active";
      b.onclick = () => edit(here ? "/api/keyframe/delete" : "/api/keyframe", here ? {key: spec.key} :
                             {key: spec.key, value: parseFloat(input.value)}).catch(() => {});
      kf.appendChild(b);
    }
    const origin = tr.insertCell(); origin.className = "origin"; origin.textContent = cur.origin;
    origin.id = `origin-${spec.key}`;
  }
  $("landmarkState").textContent = info.face ? (info.landmark_edit ? `manual edit (${info.landmark_edit})` : `extracted (detector ${info.face.score})`) : "no face on this frame";
  $("reviewState").textContent = info.review ? info.review.replace("_", " ") : "not reviewed";
  const ul = $("notes"); ul.innerHTML = "";
  for (const n of info.notes) {
    const li = document.createElement("li"); li.className = n.resolved ? "resolved" : "";
    li.textContent = `${n.first}${n.last !== n.first ? "–" + n.last : ""}: ${n.text} `;
    const b = document.createElement("button"); b.textContent = n.resolved ? "reopen" : "resolve";
    b.onclick = () => edit("/api/note/resolve", {id: n.id, resolved: !n.resolved}).catch(() => {});
    li.appendChild(b); ul.appendChild(li);
  }
  for (const b of document.querySelectorAll("#views button")) b.classList.toggle("active", b.dataset.view === S.view);
  renderMaskState();
}
function undo() { maskEdit("/api/undo", {}); }  // (any edit: labels too, so the mask overlay is reloaded)
function redo() { maskEdit("/api/redo", {}); }
function setReview(statusName) { const [first, last] = reviewRange(); edit("/api/review", {first, last, status: statusName}).catch(() => {}); }

// -- anchors: drag the five points on the image -----------------------------------------------------------------
function canvasPoint(ev) {
  const r = screen.getBoundingClientRect();
  return [(ev.clientX - r.left) / r.width * S.shot.width, (ev.clientY - r.top) / r.height * S.shot.height];
}
screen.addEventListener("mousedown", (ev) => {
  const [x, y] = canvasPoint(ev);
  if (S.poly) { polygonPoint(ev); return; }
  if (S.brush) { brushDown(ev); return; }
  if (S.anchors) {
    S.dragging = S.anchors.findIndex(([ax, ay]) => Math.hypot(ax - x, ay - y) < 8);
  } else if (S.view === "wipe") { S.wipe = x / S.shot.width; S.dragging = -2; show(S.frame); }
});
screen.addEventListener("mousemove", (ev) => {
  const [x, y] = canvasPoint(ev);
  if (S.brush) { brushMove(ev); return; }
  if (S.dragging >= 0) { S.anchors[S.dragging] = [x, y]; show(S.frame); }
  else if (S.dragging === -2) { S.wipe = x / S.shot.width; show(S.frame); }
});
window.addEventListener("mouseup", () => { S.dragging = -1; if (S.brush) brushUp(); });

// -- keys ------------------------------------------------------------------------------------------------------
function shuttle(dir) { const s = S.playing; play(Math.sign(s) === dir ? Math.min(8, Math.abs(s) * 2) * dir : dir); }
const KEYS = {
  ArrowRight: (e) => go(S.frame + (e.shiftKey ? 10 : 1)), ArrowLeft: (e) => go(S.frame - (e.shiftKey ? 10 : 1)),
  " ": () => play(S.playing ? 0 : 1), j: () => shuttle(-1), k: () => play(0), l: () => shuttle(1),
  Home: () => go(0), End: () => go(S.shot.frames - 1),
  "[": () => { S.inPoint = S.frame; readout(); drawTimeline(); }, "]": () => { S.outPoint = S.frame; readout(); drawTimeline(); },
  g: () => { $("goto").hidden = false; $("gotoInput").value = S.frame; $("gotoInput").focus(); $("gotoInput").select(); },
  p: () => nextProblem(), "?": () => { $("help").hidden = false; },
  m: () => { S.mask = !S.mask; $("maskToggle").checked = S.mask; show(S.frame); },
  "1": () => setView("merged"), "2": () => setView("plate"), "3": () => setView("wipe"), "4": () => setView("diff"),
  a: () => setReview("approved"), n: () => setReview("needs_work"),
  q: () => startPolygon("include"), w: () => startPolygon("exclude"), c: () => confirmSuggestion(),
  z: () => toggleZoom(), b: () => toggleBrush("exclude"), B: () => toggleBrush("include"),
  "-": () => resizeBrush(1 / 1.25), "=": () => resizeBrush(1.25),
  o: () => { S.occlusion = !S.occlusion; $("occlusionToggle").checked = S.occlusion; show(S.frame); },
};
function setView(v) { S.view = v; renderInspectorViews(); show(S.frame); }
function renderInspectorViews() { for (const b of document.querySelectorAll("#views button")) b.classList.toggle("active", b.dataset.view === S.view); }
document.addEventListener("keydown", (e) => {
  if (!$("help").hidden) { $("help").hidden = true; e.preventDefault(); return; }
  if (e.target === $("gotoInput")) {
    if (e.key === "Enter") { $("goto").hidden = true; go(parseInt($("gotoInput").value, 10) || 0); e.preventDefault(); }
    if (e.key === "Escape") $("goto").hidden = true;
    return;
  }
  if (e.target.tagName === "TEXTAREA" || (e.target.tagName === "INPUT" && e.target.type !== "checkbox" && e.target.type !== "radio")
      || e.target.tagName === "SELECT") return;
  if (S.poly) {  // drawing a polygon: Enter finishes, Esc cancels, Ctrl+Z takes back the last point
    if (e.key === "Enter") { finishPolygon(); e.preventDefault(); return; }
    if (e.key === "Escape") { cancelPolygon(); e.preventDefault(); return; }
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
      if (S.poly.points.length) { S.poly.points.pop(); show(S.frame); } else cancelPolygon();
      e.preventDefault(); return;
    }
  }
  if (S.brush && e.key === "Escape") { leaveBrush(); e.preventDefault(); return; }
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") { e.shiftKey ? redo() : undo(); e.preventDefault(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const fn = KEYS[e.key] || KEYS[e.key.toLowerCase()];
  if (fn) { fn(e); e.preventDefault(); }
});

// -- wiring ----------------------------------------------------------------------------------------------------
for (const b of document.querySelectorAll("#views button")) b.onclick = () => setView(b.dataset.view);
$("maskToggle").onchange = () => { S.mask = $("maskToggle").checked; show(S.frame); };
$("helpButton").onclick = () => { $("help").hidden = false; };
$("nextProblem").onclick = nextProblem;
$("undo").onclick = undo; $("redo").onclick = redo;
$("approve").onclick = () => setReview("approved");
$("needsWork").onclick = () => setReview("needs_work");
$("addNote").onclick = () => {
  const text = $("noteText").value; if (!text.trim()) return;
  const [first, last] = reviewRange();
  edit("/api/note", {first, last, text}).then(() => { $("noteText").value = ""; }).catch(() => {});
};
$("editAnchors").onclick = () => {
  if (!S.info || !S.info.face) { status("no face on this frame"); return; }
  S.anchors = S.info.face.anchors.map((p) => p.slice()); $("saveAnchors").disabled = false; show(S.frame);
};
$("saveAnchors").onclick = () => { const anchors = S.anchors; S.anchors = null; $("saveAnchors").disabled = true; edit("/api/landmarks", {anchors}).catch(() => {}); };
wireMasks();
$("interpolate").onclick = () => edit("/api/landmarks", {interpolate: true}).catch(() => {});
$("timeline").addEventListener("mousedown", (ev) => {
  const r = $("timeline").getBoundingClientRect();
  go(Math.floor((ev.clientX - r.left) / r.width * S.shot.frames));
});
// The canvas keeps the plate's pixels; its displayed size fills the viewer at the plate's aspect ratio.
function fit() {
  if (!S.shot) return;
  const box = $("viewer").getBoundingClientRect(), scale = Math.min(box.width / S.shot.width, (box.height - 24) / S.shot.height);
  screen.style.width = `${Math.floor(S.shot.width * scale)}px`; screen.style.height = `${Math.floor(S.shot.height * scale)}px`;
  applyZoom();
}
window.addEventListener("resize", () => { fit(); drawTimeline(); });
function listen() {
  const es = new EventSource("/api/events");
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "progress") $("progress").textContent = ev.total ? `rendering ${ev.done}/${ev.total}` : "all rendered";
    if (ev.type === "error") status(ev.message);
    if (ev.type === "plan") loadTimeline();
    if (ev.type === "rendered") {
      for (const i of ev.frames) S.version.set(i, (S.version.get(i) || 0) + 1);
      if (ev.frames.includes(S.frame) && !S.playing) show(S.frame);
      clearTimeout(S.tlTimer); S.tlTimer = setTimeout(loadTimeline, 300);
    }
  };
}

(async function start() {
  S.shot = await api("/api/shot");
  $("shot").textContent = S.shot.name; $("framecount").textContent = S.shot.frames - 1;
  screen.width = S.shot.width; screen.height = S.shot.height; fit();
  renderInspectorViews();
  go(0);
  await loadTimeline();
  listen();
  S.ready = true;
})();
