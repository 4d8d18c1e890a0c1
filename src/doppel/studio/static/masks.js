// doppel studio: the mask editor (occlusion labels) and the zoom to the face. Loaded before studio.js, whose
// globals (S, $, ctx, screen, show, edit, status, canvasPoint, reviewRange) these functions use when called.
"use strict";

// A grey mask image over the frame in a colour: where it is white (or, with `outside`, where it is black).
function tint(m, [r, g, b], outside) {
  const w = S.shot.width, h = S.shot.height;
  const off = new OffscreenCanvas(w, h), octx = off.getContext("2d");
  octx.drawImage(m, 0, 0);
  const md = octx.getImageData(0, 0, w, h);
  for (let p = 0; p < md.data.length; p += 4) {
    const v = outside ? 255 - md.data[p] : md.data[p];
    md.data[p + 3] = v * 0.45; md.data[p] = r; md.data[p + 1] = g; md.data[p + 2] = b;
  }
  octx.putImageData(md, 0, 0);
  ctx.drawImage(off, 0, 0);
}
// The face's label as outlines (include green, exclude red; a suggestion dashed), and the polygon being drawn.
function drawLabel(i) {
  const m = S.info && S.info.frame === i && S.info.mask;
  const px = S.shot.width / (screen.getBoundingClientRect().width || S.shot.width);  // frame pixels per screen pixel
  const outline = (pts, color, dash, closed) => {
    if (!pts.length) return;
    ctx.beginPath(); ctx.moveTo(pts[0][0], pts[0][1]);
    for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
    if (closed) ctx.closePath();
    ctx.setLineDash([]); ctx.strokeStyle = "#000"; ctx.lineWidth = 3.5 * px; ctx.stroke();  // contrast on any picture
    ctx.setLineDash(dash.map((d) => d * px)); ctx.strokeStyle = color; ctx.lineWidth = 1.5 * px; ctx.stroke();
    ctx.setLineDash([]);
  };
  if (m && m.label) {
    const suggested = m.kind === "suggested";
    for (const shape of m.label.shapes)
      outline(shape.points, shape.mode === "include" ? "#3f9" : "#f55", suggested ? [5, 4] : [], true);
  }
  const st = S.stroke && S.stroke.frame === i ? S.stroke : null;
  if (st) {  // the brush stroke being painted: a thick line with round ends, translucent
    ctx.save(); ctx.globalAlpha = 0.5; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.strokeStyle = st.mode === "include" ? "#3f9" : "#f55"; ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 2 * st.radius; ctx.beginPath(); ctx.moveTo(st.points[0][0], st.points[0][1]);
    for (const [x, y] of st.points.slice(1)) ctx.lineTo(x, y);
    if (st.points.length === 1) { ctx.arc(st.points[0][0], st.points[0][1], st.radius, 0, 7); ctx.fill(); } else ctx.stroke();
    ctx.restore();
  }
  if (S.brush && S.brushAt && !st) {  // the brush's outline under the pointer
    ctx.beginPath(); ctx.arc(S.brushAt[0], S.brushAt[1], S.brush.radius, 0, 7);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2.5 * px; ctx.stroke();
    ctx.strokeStyle = S.brush.mode === "include" ? "#3f9" : "#f55"; ctx.lineWidth = 1.2 * px; ctx.stroke();
  }
  if (S.poly && S.poly.frame === i) {
    const color = S.poly.mode === "include" ? "#3f9" : "#f55";
    outline(S.poly.points, color, [], false);
    ctx.fillStyle = color;
    for (const [x, y] of S.poly.points) { ctx.beginPath(); ctx.arc(x, y, 3 * px, 0, 7); ctx.fill(); }
  }
}
function renderMaskState() {
  const m = S.info && S.info.mask;
  let text = "no face on this frame";
  if (m && !m.kind) text = `no label (face #${m.face}; ${m.net_mask ? "the mask network's mask" : "the mask mode alone"})`;
  else if (m) {
    const n = m.label.shapes.length;
    text = `${m.kind} v${m.version} · ${n} shape${n === 1 ? "" : "s"}` +
      (m.kind === "suggested" ? " · a suggestion: not trained on nor merged until confirmed" : "");
  }
  $("maskState").textContent = text;
  $("maskConfirm").disabled = !(m && m.kind === "suggested") && reviewRange()[0] === reviewRange()[1];
  $("maskRemove").disabled = !(m && m.kind);
}
// -- mask labels: Q / W start a polygon, clicks add points, Enter or a click on the first point finishes ----------
function canLabel() {  // the frame shown has a face whose mask info has arrived; else say so
  if (S.info && S.info.frame === S.frame && S.info.mask) return true;
  status("no face on this frame to label");
  return false;
}
function startPolygon(mode) {
  if (!canLabel()) return;
  if (S.playing) play(0);
  S.poly = {mode, frame: S.frame, points: []};
  status(`${mode} polygon: click points on the face; Enter or a click on the first point finishes; Esc cancels`);
  show(S.frame);
}
function cancelPolygon() { S.poly = null; status(""); show(S.frame); }
function polygonPoint(ev) {
  const [x, y] = canvasPoint(ev), pts = S.poly.points;
  const r = screen.getBoundingClientRect(), near = 8 * S.shot.width / r.width;  // 8 screen pixels
  if (pts.length >= 3 && Math.hypot(pts[0][0] - x, pts[0][1] - y) < near) { finishPolygon(); return; }
  pts.push([Math.round(x * 100) / 100, Math.round(y * 100) / 100]);
  show(S.frame);
}
function finishPolygon() {
  const poly = S.poly;
  if (poly.points.length < 3) { status("a polygon needs at least 3 points (Esc cancels)"); return; }
  S.poly = null;
  const m = S.info.mask, shapes = m && m.label ? m.label.shapes.slice() : [];
  shapes.push({mode: poly.mode, points: poly.points});
  maskEdit("/api/mask/label", {shapes, base: m && m.label ? m.label.base : "landmarks"});
}
// -- the brush: B (exclude) / Shift+B (include) toggles it; drag on the face paints; each stroke is a new label
// version (so Ctrl+Z takes it back), stored as the outline of what it painted --------------------------------
function brushRadius() { return Math.max(0.5, Math.min(200, parseFloat($("brushRadius").value) || 6)); }
function toggleBrush(mode) {
  if (S.brush && S.brush.mode === mode) { leaveBrush(); return; }
  if (!canLabel()) return;
  if (S.poly) cancelPolygon();
  if (S.playing) play(0);
  S.brush = {mode, radius: brushRadius()};
  $("brushInclude").classList.toggle("active", mode === "include");
  $("brushExclude").classList.toggle("active", mode === "exclude");
  status(`${mode} brush (radius ${S.brush.radius} px): drag on the face to paint; - / = smaller / larger; B or Esc ends`);
  show(S.frame);
}
function leaveBrush() {
  S.brush = null; S.stroke = null; S.brushAt = null; status("");
  $("brushInclude").classList.remove("active"); $("brushExclude").classList.remove("active");
  show(S.frame);
}
function resizeBrush(factor) {
  const r = Math.round(Math.max(0.5, Math.min(200, brushRadius() * factor)) * 2) / 2;
  $("brushRadius").value = r;
  if (S.brush) { S.brush.radius = r; status(`${S.brush.mode} brush: radius ${r} px`); show(S.frame); }
}
function brushDown(ev) {
  if (!canLabel()) return;
  if (S.brushPending) { status("saving the last stroke…"); return; }  // the next one builds on its label
  const [x, y] = canvasPoint(ev);
  S.stroke = {mode: S.brush.mode, radius: S.brush.radius, frame: S.frame, points: [[x, y]]};
  show(S.frame);
}
function brushMove(ev) {
  const [x, y] = canvasPoint(ev);
  S.brushAt = [x, y];
  const st = S.stroke;
  if (st) {  // a point every quarter radius is enough for a round brush
    const [lx, ly] = st.points[st.points.length - 1];
    if (Math.hypot(x - lx, y - ly) >= Math.max(0.5, st.radius / 4)) st.points.push([x, y]);
  }
  show(S.frame);
}
function brushUp() {
  const st = S.stroke;
  if (!st) return;
  S.stroke = null;
  if (st.frame !== S.frame) return;
  const m = S.info.mask, shapes = m && m.label ? m.label.shapes.slice() : [];
  const round = (v) => Math.round(v * 100) / 100;
  shapes.push({mode: st.mode, points: st.points.map(([x, y]) => [round(x), round(y)]), radius: st.radius});
  S.brushPending = true;
  maskEdit("/api/mask/label", {shapes, base: m && m.label ? m.label.base : "landmarks"})
    .finally(() => { S.brushPending = false; });
}
function maskEdit(path, body) {
  return edit(path, body).then((res) => { S.maskEpoch++; show(S.frame); return res; }).catch(() => {});
}
function confirmSuggestion() {
  const [first, last] = reviewRange();
  maskEdit("/api/mask/confirm", {first, last});
}
function maskFrames() { return parseInt($("maskFrames").value, 10) || 1; }

// Zoom to the face (Z), for drawing labels on a small face: a CSS transform of the canvas, which keeps its pixels
// (and canvasPoint, which reads the transformed box, keeps mapping clicks to frame pixels).
function applyZoom() {
  const face = S.zoomFace && S.info && S.info.frame === S.frame && S.info.face;
  $("zoomToggle").checked = S.zoomFace;
  if (!face) { screen.style.transform = ""; return; }
  const css = parseFloat(screen.style.width) / S.shot.width, [x0, y0, x1, y1] = face.box;
  const k = Math.max(1, Math.min(8, Math.min(S.shot.width, S.shot.height) / (1.6 * Math.max(x1 - x0, y1 - y0))));
  const cx = (x0 + x1) / 2 * css, cy = (y0 + y1) / 2 * css;
  const tx = parseFloat(screen.style.width) / 2 - cx, ty = parseFloat(screen.style.height) / 2 - cy;
  screen.style.transformOrigin = `${cx}px ${cy}px`;
  screen.style.transform = `translate(${tx}px, ${ty}px) scale(${k})`;
}
function toggleZoom() { S.zoomFace = !S.zoomFace; applyZoom(); }

function wireMasks() {
  $("zoomToggle").onchange = toggleZoom;
  $("drawInclude").onclick = () => startPolygon("include");
  $("drawExclude").onclick = () => startPolygon("exclude");
  $("brushInclude").onclick = () => toggleBrush("include");
  $("brushExclude").onclick = () => toggleBrush("exclude");
  $("brushRadius").onchange = () => resizeBrush(1);
  screen.addEventListener("mouseleave", () => { if (S.brush) { S.brushAt = null; show(S.frame); } });
  $("occlusionToggle").onchange = () => { S.occlusion = $("occlusionToggle").checked; show(S.frame); };
  $("maskRemove").onclick = () => maskEdit("/api/mask/remove", {});
  $("maskConfirm").onclick = confirmSuggestion;
  $("maskCopy").onclick = () => maskEdit("/api/mask/copy", {frames: maskFrames()});
  $("maskPropagate").onclick = () => maskEdit("/api/mask/propagate", {frames: maskFrames()});
}
