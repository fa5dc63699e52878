// vidcolor paint: pick a frame, paint hints on it, see it re-coloured, save the hints for `vidcolor run --hints-dir`.
// Every request carries the page's token; the server decides what is read and written.
"use strict";

const token = document.body.dataset.token;
const $ = (id) => document.getElementById(id);
const api = (path, params = {}) => `${path}?${new URLSearchParams({ ...params, token })}`;

// Common colours of archival scenes; none too dark or light to carry a hue (L* 5 to 97).
const PALETTE = [
  ["sky", "#7fa7d6"], ["navy", "#2f3f73"], ["denim", "#3d5a86"], ["water", "#44707e"],
  ["grass", "#5b8a3c"], ["foliage", "#3f5e2e"], ["dry grass", "#b39b5e"], ["sand", "#cdb487"],
  ["light skin", "#e2b596"], ["medium skin", "#c0895f"], ["dark skin", "#7b5038"],
  ["brick", "#a2442f"], ["red", "#bf2f2a"], ["ochre", "#c8963c"], ["yellow", "#d9c04a"],
  ["brown", "#6d4b2c"], ["purple", "#6b4a8c"], ["neutral gray", "#808080"],
];

const state = { film: null, frame: 0, tool: "brush", undo: [], drawing: false, last: null,
                previewSeq: 0, previewTimer: null, painted: false };
const canvas = $("paint");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function request(path, params, options = {}) {
  const response = await fetch(api(path, params), options);
  if (!response.ok) throw new Error((await response.text()) || response.statusText);
  return response;
}

function timeText(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const whole = Math.floor(seconds);
  const ms = Math.round((seconds - whole) * 1000) % 1000;
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(whole / 3600))}:${pad(Math.floor(whole / 60) % 60)}:${pad(whole % 60)}.${pad(ms, 3)}`;
}

function secondsOf(frame) {
  return state.film.fps ? frame / state.film.fps : null;
}

// -- the film and its shots ---------------------------------------------------------------------

async function loadFilm() {
  state.film = await (await request("/api/film")).json();
  const film = state.film;
  $("film-name").textContent = film.film;
  $("slider").max = Math.max(0, film.frames - 1);
  $("command").textContent = film.command;
  canvas.width = film.width;
  canvas.height = film.height;
  drawStrip();
  drawHinted(film.hints);
  if (film.scan_error) setStatus(`shots not found: ${film.scan_error}`, true);
  if (film.scanning) setTimeout(refreshFilm, 1500);
}

async function refreshFilm() {
  const film = await (await request("/api/film")).json();
  state.film.shots = film.shots;
  state.film.frames = film.frames;
  state.film.scanning = film.scanning;
  $("slider").max = Math.max(0, film.frames - 1);
  drawStrip();
  if (film.scanning) setTimeout(refreshFilm, 1500);
}

function drawStrip() {
  const strip = $("strip");
  const shots = state.film.shots;
  for (let i = strip.children.length; i < shots.length; i++) {
    const button = document.createElement("button");
    button.dataset.frame = shots[i].frame;
    button.title = `shot ${i + 1}: frame ${shots[i].frame}`;
    const img = document.createElement("img");
    img.src = api("/api/thumb", { shot: i });
    img.alt = button.title;
    const label = document.createElement("span");
    label.textContent = timeText(shots[i].seconds);
    button.append(img, label);
    button.addEventListener("click", () => showFrame(shots[i].frame));
    strip.append(button);
  }
  markShot();
}

function markShot() {
  const buttons = [...$("strip").children];
  let current = null;
  for (const b of buttons) if (Number(b.dataset.frame) <= state.frame) current = b;
  for (const b of buttons) b.classList.toggle("current", b === current);
}

// -- one frame --------------------------------------------------------------------------------

function showFrame(n) {
  n = Math.max(0, Math.min(Number(n), state.film.frames - 1));
  state.frame = n;
  $("slider").value = n;
  const seconds = secondsOf(n);
  $("position").textContent = `frame ${n}` + (seconds !== null ? `  ${timeText(seconds)}` : "");
  $("gray").src = api("/api/frame", { n, kind: "gray" });
  $("colour-img").src = api("/api/frame", { n, kind: "colour" });
  clearCanvas(false);
  state.undo = [];
  state.previewSeq++;
  $("preview").dataset.state = "none";
  $("preview").src = $("colour-img").src;
  markShot();
  if (state.film.hints.some((h) => h.frame === n)) loadSavedHint(n);
  setStatus("");
}

function loadSavedHint(n) {
  const img = new Image();
  img.onload = () => {
    if (state.frame !== n) return;
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    state.painted = true;
    schedulePreview(0);
  };
  img.src = api("/api/hint", { n });
}

// -- painting ---------------------------------------------------------------------------------

function canvasPoint(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function brushWidth() {
  const box = canvas.getBoundingClientRect();
  return Number($("size").value) * canvas.width / Math.max(1, box.width);
}

function strokeTo(point) {
  ctx.save();
  ctx.globalCompositeOperation = state.tool === "eraser" ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = $("colour").value;
  ctx.lineWidth = brushWidth();
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...state.last);
  ctx.lineTo(...point);
  ctx.stroke();
  ctx.restore();
  state.last = point;
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  state.undo.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
  if (state.undo.length > 30) state.undo.shift();
  state.drawing = true;
  state.last = canvasPoint(event);
  strokeTo(state.last);
});
canvas.addEventListener("pointermove", (event) => { if (state.drawing) strokeTo(canvasPoint(event)); });
for (const name of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(name, () => {
    if (!state.drawing) return;
    state.drawing = false;
    state.painted = true;
    schedulePreview();
  });
}

function clearCanvas(keepUndo = true) {
  if (keepUndo) state.undo.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  state.painted = false;
}

function hasHints() {
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) return true;
  return false;
}

function selectTool(tool) {
  state.tool = tool;
  $("brush").classList.toggle("active", tool === "brush");
  $("eraser").classList.toggle("active", tool === "eraser");
}

// -- preview and saving ---------------------------------------------------------------------

function schedulePreview(delay = 250) {
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(runPreview, delay);
}

function canvasPng() {
  // toDataURL encodes at once; toBlob waits for the renderer to be idle (up to 1 s, then 5 s more), which it
  // seldom is while the page shows its "working" state: strokes then took 7 s more to reach the server.
  const data = atob(canvas.toDataURL("image/png").split(",")[1]);
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i);
  return new Blob([bytes], { type: "image/png" });
}

async function runPreview() {
  const seq = ++state.previewSeq;
  const n = state.frame;
  if (!hasHints()) {
    $("preview").src = $("colour-img").src;
    $("preview").dataset.state = "none";
    return;
  }
  $("preview").dataset.state = "working";
  setStatus("colouring with your hints…");
  const started = performance.now();
  try {
    const response = await request("/api/preview", { n }, { method: "POST", body: await canvasPng() });
    const blob = await response.blob();
    if (seq !== state.previewSeq) return;  // a newer stroke or another frame since
    const img = $("preview");
    img.onload = () => { img.dataset.state = "ready"; img.dataset.seq = String(seq); };
    img.src = URL.createObjectURL(blob);
    setStatus(`preview in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    if (seq !== state.previewSeq) return;
    $("preview").dataset.state = "error";
    setStatus(error.message, true);
  }
}

async function save() {
  const n = state.frame;
  if (!hasHints()) {
    setStatus("nothing painted on this frame", true);
    return;
  }
  try {
    await request("/api/hints", { n }, { method: "POST", body: await canvasPng() });
    const hints = await (await request("/api/hints")).json();
    state.film.hints = hints;
    drawHinted(hints);
    setStatus(`saved the hints of frame ${n}`);
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function removeHint(n) {
  try {
    await request("/api/hints", { n }, { method: "DELETE" });
    const hints = await (await request("/api/hints")).json();
    state.film.hints = hints;
    drawHinted(hints);
    if (n === state.frame) { clearCanvas(); schedulePreview(0); }
    setStatus(`removed the hints of frame ${n}`);
  } catch (error) {
    setStatus(error.message, true);
  }
}

function drawHinted(hints) {
  const list = $("hinted");
  list.replaceChildren();
  if (!hints.length) {
    const li = document.createElement("li");
    li.textContent = "none yet";
    list.append(li);
  }
  for (const hint of hints) {
    const li = document.createElement("li");
    li.dataset.frame = hint.frame;
    const go = document.createElement("a");
    go.href = "#";
    go.textContent = `frame ${hint.frame}  ${timeText(hint.seconds)}`;
    go.addEventListener("click", (event) => { event.preventDefault(); showFrame(hint.frame); });
    const remove = document.createElement("button");
    remove.textContent = "Remove";
    remove.addEventListener("click", () => removeHint(hint.frame));
    li.append(go, remove);
    list.append(li);
  }
}

// -- colours: picker, palette, a reference photo's eyedropper ---------------------------------

function drawPalette() {
  for (const [name, hex] of PALETTE) {
    const button = document.createElement("button");
    button.style.background = hex;
    button.title = name;
    button.dataset.colour = hex;
    button.addEventListener("click", () => { $("colour").value = hex; selectTool("brush"); });
    $("palette").append(button);
  }
}

$("reference-file").addEventListener("change", () => {
  const file = $("reference-file").files[0];
  if (!file) return;
  const img = new Image();
  img.onload = () => {
    const ref = $("reference");
    const scale = Math.min(1, 600 / img.width);
    ref.width = Math.round(img.width * scale);
    ref.height = Math.round(img.height * scale);
    ref.getContext("2d").drawImage(img, 0, 0, ref.width, ref.height);
    URL.revokeObjectURL(img.src);
  };
  img.src = URL.createObjectURL(file);  // read in the browser only: nothing is sent
});

$("reference").addEventListener("click", (event) => {
  const ref = $("reference");
  const box = ref.getBoundingClientRect();
  const x = Math.floor((event.clientX - box.left) * ref.width / box.width);
  const y = Math.floor((event.clientY - box.top) * ref.height / box.height);
  const [r, g, b] = ref.getContext("2d").getImageData(x, y, 1, 1).data;
  $("colour").value = "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
  selectTool("brush");
});

// -- controls -----------------------------------------------------------------------------------

$("slider").addEventListener("change", () => showFrame($("slider").value));
$("slider").addEventListener("input", () => {
  const n = Number($("slider").value);
  const seconds = secondsOf(n);
  $("position").textContent = `frame ${n}` + (seconds !== null ? `  ${timeText(seconds)}` : "");
});
$("prev").addEventListener("click", () => showFrame(state.frame - 1));
$("next").addEventListener("click", () => showFrame(state.frame + 1));
$("brush").addEventListener("click", () => selectTool("brush"));
$("eraser").addEventListener("click", () => selectTool("eraser"));
$("undo").addEventListener("click", () => {
  const previous = state.undo.pop();
  if (previous) { ctx.putImageData(previous, 0, 0); schedulePreview(); }
});
$("clear").addEventListener("click", () => { clearCanvas(); schedulePreview(0); });
$("save").addEventListener("click", save);
$("size").addEventListener("input", () => { $("size-value").textContent = $("size").value; });
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT") return;  // the slider and fields handle their own keys
  if (event.key === "ArrowLeft") showFrame(state.frame - 1);
  else if (event.key === "ArrowRight") showFrame(state.frame + 1);
  else if (event.key === "b") selectTool("brush");
  else if (event.key === "e") selectTool("eraser");
  else if (event.key === "z" && (event.ctrlKey || event.metaKey)) $("undo").click();
});

drawPalette();
loadFilm().then(() => showFrame(0)).catch((error) => setStatus(error.message, true));
