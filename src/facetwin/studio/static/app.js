// facetwin studio: plain JavaScript, no build step. One state object, one render per view.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { project: null, jobs: [], train: {}, selected: new Set(), mergerTimer: null,
                mergerSeq: 0, previewVersion: null, watched: null };

async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}
const getJSON = async (path) => (await api(path)).json();
const postJSON = async (path, doc) => (await api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc) })).json();
const q = (params) => new URLSearchParams(params).toString();

function fill(select, values, keep = true) {
  const old = select.value;
  select.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = o.textContent = v;
    select.appendChild(o);
  }
  if (keep && values.includes(old)) select.value = old;
}

function say(id, text, bad = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("bad", bad);
}

// -- tabs ------------------------------------------------------------------------------------
for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === b));
    document.querySelectorAll(".view").forEach((v) =>
      v.classList.toggle("active", v.id === "view-" + b.dataset.view));
    if (b.dataset.view === "merger") mergerLoadVideo();
    if (b.dataset.view === "reports") showReport();
    if (b.dataset.view === "train") showTraining();
  });
}

// -- project ---------------------------------------------------------------------------------
async function loadProject() {
  const p = await getJSON("/api/project");
  state.project = p;
  $("project-root").textContent = p.root;
  const media = [...p.videos, ...p.images];
  const list = $("media-list");
  const checked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
  list.innerHTML = "";
  for (const m of media) {
    const l = document.createElement("label");
    l.innerHTML = `<input type="checkbox" value="${encodeURI(m)}"> `;
    l.firstChild.checked = checked.has(encodeURI(m));
    l.appendChild(document.createTextNode(m));
    list.appendChild(l);
  }
  for (const id of ["fs-select", "tr-a", "tr-b"]) fill($(id), p.facesets);
  if (!$("tr-b").dataset.touched && p.facesets.length > 1 && $("tr-b").value === $("tr-a").value)
    $("tr-b").value = p.facesets[1];
  for (const id of ["mg-model", "ev-model", "lv-model", "tr-watch"]) fill($(id), p.models);
  if (state.watched && p.models.includes(state.watched)) $("tr-watch").value = state.watched;
  for (const id of ["mg-video", "ev-orig", "ev-swap", "lv-video"]) fill($(id), p.videos);
  const outputs = p.videos.filter((v) => v.startsWith("outputs/"));
  if (outputs.length && !$("ev-swap").dataset.touched) $("ev-swap").value = outputs[outputs.length - 1];
  fill($("rp-select"), p.reports);
  fill($("tr-arch"), p.choices.architectures);
  if (!$("tr-arch").dataset.touched) $("tr-arch").value = "lite";
  fill($("mg-blend"), p.choices.blend);
  fill($("mg-color"), p.choices.color);
  if (!$("mg-blend").dataset.touched) $("mg-blend").value = "mask";
  if (!$("mg-color").dataset.touched) $("mg-color").value = "rct";
}
for (const id of ["tr-b", "tr-arch", "mg-blend", "mg-color", "ev-swap"])
  $(id).addEventListener("change", () => { $(id).dataset.touched = "1"; });

// -- uploads and extract ---------------------------------------------------------------------
$("upload-btn").addEventListener("click", async () => {
  const f = $("upload-file").files[0];
  if (!f) return say("upload-msg", "pick a file first", true);
  say("upload-msg", "uploading...");
  try {
    const r = await (await api("/api/upload?" + q({ name: f.name }), { method: "PUT", body: f })).json();
    say("upload-msg", "added " + r.path);
    await loadProject();
  } catch (e) { say("upload-msg", e.message, true); }
});

$("extract-btn").addEventListener("click", async () => {
  const inputs = [...$("media-list").querySelectorAll("input:checked")].map((i) => decodeURI(i.value));
  const doc = { inputs };
  if ($("extract-out").value) doc.output = $("extract-out").value;
  try {
    const job = await postJSON("/api/jobs/extract", doc);
    say("extract-msg", `job ${job.id} queued: facetwin extract ${job.argv.join(" ")}`);
  } catch (e) { say("extract-msg", e.message, true); }
});

// -- jobs (server-sent events) ---------------------------------------------------------------
function renderJobs() {
  const body = $("jobs-table").querySelector("tbody");
  body.innerHTML = "";
  for (const j of [...state.jobs].reverse()) {
    const tr = document.createElement("tr");
    tr.dataset.state = j.state;
    tr.dataset.kind = j.kind;
    const pct = j.progress == null ? "" : Math.round(100 * j.progress) + "%";
    tr.innerHTML = `<td>${j.id}</td><td></td><td class="st-${j.state}">${j.state}${j.blocked ? " (blocked)" : ""}</td>
      <td><progress max="1" value="${j.progress ?? 0}"></progress> ${pct}</td><td class="msg"></td><td></td>`;
    tr.children[1].textContent = j.kind + " " + j.argv.join(" ");
    tr.children[4].textContent = j.message || "";
    const act = tr.children[5];
    const btn = (label, fn) => { const b = document.createElement("button"); b.textContent = label; b.onclick = fn; act.appendChild(b); };
    if (j.state === "queued" || j.state === "running") btn("cancel", () => postJSON(`/api/job/${j.id}/cancel`, {}));
    if (j.state === "failed" || j.state === "cancelled") btn("retry", () => postJSON(`/api/job/${j.id}/retry`, {}));
    btn("log", async () => {
      const log = $("job-log");
      log.textContent = await (await api(`/api/job/${j.id}/log`)).text();
      log.classList.remove("hidden");
    });
    body.appendChild(tr);
  }
}

function connectEvents() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => { $("conn").textContent = "live"; $("conn").className = "pill ok"; });
  es.addEventListener("error", () => { $("conn").textContent = "reconnecting"; $("conn").className = "pill bad"; });
  es.addEventListener("state", (ev) => {
    const doc = JSON.parse(ev.data);
    const finished = (jobs) => jobs.filter((j) => j.state === "done").length;
    const changed = finished(doc.jobs) !== finished(state.jobs);
    state.jobs = doc.jobs;
    state.train = doc.train;
    renderJobs();
    showTrainStatus();
    const unknown = Object.keys(doc.train).some((m) => !state.project.models.includes(m));
    if (changed || unknown) loadProject();  // a job finished, or a new model folder appeared
  });
}

// -- face sets -------------------------------------------------------------------------------
async function loadFaces() {
  const fs = $("fs-select").value;
  const grid = $("fs-grid");
  state.selected.clear();
  $("fs-delete").disabled = $("fs-edit").disabled = true;
  if (!fs) { grid.innerHTML = ""; return; }
  const doc = await getJSON("/api/faceset/faces?" + q({ path: fs, sort: $("fs-sort").value, desc: $("fs-desc").checked ? "1" : "0" }));
  grid.innerHTML = "";
  say("fs-msg", `${doc.faces.length} faces`);
  for (const f of doc.faces) {
    const cell = document.createElement("figure");
    cell.className = "face";
    cell.dataset.id = f.id;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.src = "/api/faceset/thumb?" + q({ path: fs, id: f.id });
    const cap = document.createElement("figcaption");
    const num = (v, d = 0) => (v == null ? "-" : v.toFixed(d));
    cap.textContent = `#${f.frame} blur ${num(f.blur)} yaw ${num(f.yaw)} id ${num(f.distance, 2)}`;
    cell.append(img, cap);
    cell.addEventListener("click", () => {
      if (state.selected.has(f.id)) state.selected.delete(f.id); else state.selected.add(f.id);
      cell.classList.toggle("selected");
      $("fs-delete").disabled = state.selected.size === 0;
      $("fs-edit").disabled = state.selected.size !== 1;
      $("fs-delete").textContent = `Delete selected (${state.selected.size})`;
    });
    grid.appendChild(cell);
  }
}
for (const id of ["fs-select", "fs-sort", "fs-desc"]) $(id).addEventListener("change", loadFaces);
$("fs-delete").addEventListener("click", async () => {
  const ids = [...state.selected];
  if (!ids.length || !confirm(`Delete ${ids.length} faces from the face set?`)) return;
  const r = await postJSON("/api/faceset/delete?" + q({ path: $("fs-select").value }), { ids });
  await loadFaces();
  say("fs-msg", `deleted ${r.deleted}; ` + $("fs-msg").textContent);
});

// -- mask editor -----------------------------------------------------------------------------
// Paint where the face is (white) or is not (erase); the red tint marks what is not face.
const editor = { id: null, face: null, mask: null, size: 0, drawing: false };

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot load " + src));
    img.src = src;
  });
}

async function openMaskEditor(id) {
  const path = $("fs-select").value;
  const [face, mask] = await Promise.all([
    loadImage("/api/faceset/face?" + q({ path, id, t: Date.now() })),
    loadImage("/api/faceset/mask?" + q({ path, id, t: Date.now() })),
  ]);
  Object.assign(editor, { id, face, size: face.naturalWidth, mask: document.createElement("canvas") });
  editor.mask.width = editor.mask.height = editor.size;
  editor.mask.getContext("2d").drawImage(mask, 0, 0);
  const canvas = $("mask-canvas");
  canvas.width = canvas.height = editor.size;
  $("mask-editor").classList.remove("hidden");
  say("mask-msg", `face ${id}: paint the face, erase what is not face, then save`);
  drawEditor();
}

function drawEditor() {
  const s = editor.size, c = $("mask-canvas").getContext("2d");
  c.drawImage(editor.face, 0, 0);
  const img = c.getImageData(0, 0, s, s), m = editor.mask.getContext("2d").getImageData(0, 0, s, s).data;
  for (let k = 0; k < m.length; k += 4) {
    if (m[k] < 128) {
      img.data[k] = 0.45 * img.data[k] + 0.55 * 230;
      img.data[k + 1] = 0.45 * img.data[k + 1];
      img.data[k + 2] = 0.45 * img.data[k + 2];
    }
  }
  c.putImageData(img, 0, 0);
}

function paintAt(ev) {
  const canvas = $("mask-canvas"), r = canvas.getBoundingClientRect();
  const x = (ev.clientX - r.left) * canvas.width / r.width, y = (ev.clientY - r.top) * canvas.height / r.height;
  const c = editor.mask.getContext("2d");
  c.fillStyle = $("mask-mode").value === "paint" ? "#fff" : "#000";
  c.beginPath();
  c.arc(x, y, +$("mask-brush").value * canvas.width / 256, 0, 2 * Math.PI);
  c.fill();
  drawEditor();
}
$("mask-canvas").addEventListener("pointerdown", (ev) => { editor.drawing = true; paintAt(ev); });
$("mask-canvas").addEventListener("pointermove", (ev) => { if (editor.drawing) paintAt(ev); });
window.addEventListener("pointerup", () => { editor.drawing = false; });
$("mask-close").addEventListener("click", () => $("mask-editor").classList.add("hidden"));
$("mask-reset").addEventListener("click", () => openMaskEditor(editor.id));
$("mask-save").addEventListener("click", () => {
  editor.mask.toBlob(async (blob) => {
    try {
      const r = await (await api("/api/faceset/mask?" + q({ path: $("fs-select").value, id: editor.id }),
        { method: "PUT", body: blob })).json();
      say("mask-msg", `saved face ${r.id}: ${r.face_pixels} face pixels; training reads it from now on`);
    } catch (e) { say("mask-msg", e.message, true); }
  }, "image/png");
});
$("fs-edit").addEventListener("click", () => openMaskEditor([...state.selected][0]));

// -- training --------------------------------------------------------------------------------
function trainDoc(resume) {
  const doc = { model: $("tr-model").value, iterations: +$("tr-its").value,
                preview_every: +$("tr-prev").value, save_every: +$("tr-save").value };
  if (!resume) Object.assign(doc, { faceset_a: $("tr-a").value, faceset_b: $("tr-b").value,
                                    arch: $("tr-arch").value, batch: +$("tr-batch").value,
                                    lr: +$("tr-lr").value, schedule: $("tr-schedule").value,
                                    warmup: +$("tr-warmup").value, loss: $("tr-loss").value });
  return doc;
}
async function startTraining(resume) {
  try {
    const job = await postJSON("/api/jobs/train", trainDoc(resume));
    say("tr-msg", `job ${job.id} queued`);
    state.watched = job.argv[job.argv.indexOf("-m") + 1];
  } catch (e) { say("tr-msg", e.message, true); }
}
$("tr-start").addEventListener("click", () => startTraining(false));
$("tr-resume").addEventListener("click", () => startTraining(true));
$("tr-stop").addEventListener("click", async () => {
  const model = $("tr-model").value.replace(/\/$/, "");
  const run = state.jobs.find((j) => j.kind === "train" && ["running", "queued"].includes(j.state) &&
                                     j.argv[j.argv.indexOf("-m") + 1] === model);
  if (!run) return say("tr-msg", "no run of " + model + " to stop", true);
  await postJSON(`/api/job/${run.id}/cancel`, {});
  say("tr-msg", `stopping job ${run.id} (a clean stop saves a snapshot; Resume continues)`);
});
$("tr-watch").addEventListener("change", () => { state.watched = $("tr-watch").value; showTraining(); });

function watchedModel() { return state.watched || $("tr-watch").value; }

function fmtTime(s) {
  if (s == null) return "-";
  const m = Math.floor(s / 60);
  return m ? `${m} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}

function drawCurve(svg, curve) {
  svg.innerHTML = "";
  if (!curve || curve.iteration.length < 2) {
    svg.innerHTML = '<text x="10" y="20" class="muted">no loss logged yet</text>';
    return;
  }
  const W = 420, H = 220, L = 44, B = 24;
  const xs = curve.iteration, all = [...curve.loss_a, ...curve.loss_b];
  const x0 = xs[0], x1 = xs[xs.length - 1] || 1, y0 = Math.min(...all), y1 = Math.max(...all) || 1;
  const px = (x) => L + (W - L - 8) * (x - x0) / Math.max(x1 - x0, 1);
  const py = (y) => 8 + (H - B - 8) * (1 - (y - y0) / Math.max(y1 - y0, 1e-9));
  const line = (ys, cls) => {
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", ys.map((y, i) => `${px(xs[i]).toFixed(1)},${py(y).toFixed(1)}`).join(" "));
    pl.setAttribute("class", cls);
    svg.appendChild(pl);
  };
  svg.innerHTML = `<text x="2" y="14">${y1.toFixed(3)}</text><text x="2" y="${H - B}">${y0.toFixed(3)}</text>
    <text x="${L}" y="${H - 4}">it ${x0}</text><text x="${W - 70}" y="${H - 4}">it ${x1}</text>
    <text x="${W - 120}" y="14" class="la">loss A</text><text x="${W - 60}" y="14" class="lb">loss B</text>`;
  line(curve.loss_a, "la");
  line(curve.loss_b, "lb");
}

async function showTraining() {
  const model = watchedModel();
  if (!model) return;
  try {
    const st = await getJSON("/api/model/status?" + q({ path: model }));
    renderTrainStatus(model, st);
    drawCurve($("tr-curve"), st.curve);
    const t = $("tr-settings");
    t.innerHTML = "";
    for (const s of st.settings) {
      const tr = t.insertRow();
      tr.insertCell().textContent = s.name;
      tr.insertCell().textContent = JSON.stringify(s.value);
      tr.insertCell().textContent = s.meaning;
    }
  } catch (e) { /* no run yet */ }
}

function renderTrainStatus(model, st) {
  const pct = st.target ? ` of ${st.target}` : "";
  $("tr-stats").innerHTML = "";
  const add = (k, v) => { const d = document.createElement("div"); d.innerHTML = `<b></b><span></span>`; d.firstChild.textContent = k; d.lastChild.textContent = v; $("tr-stats").appendChild(d); };
  add("model", model);
  add("iteration", st.iteration + pct);
  add("iterations/s", st.iterations_per_s == null ? "-" : st.iterations_per_s.toFixed(2));
  add("time left", fmtTime(st.seconds_left));
  add("loss A / B", st.loss_a == null ? "-" : `${st.loss_a.toFixed(4)} / ${st.loss_b.toFixed(4)}`);
  if (st.preview_version && st.preview_version !== state.previewVersion) {
    state.previewVersion = st.preview_version;
    $("tr-preview").src = "/api/model/preview?" + q({ path: model, v: st.preview_version });
  }
}

function showTrainStatus() {
  const model = watchedModel();
  const st = state.train[model];
  if (!st) return;
  const last = state.lastIteration;
  renderTrainStatus(model, st);
  if (st.iteration !== last) {
    state.lastIteration = st.iteration;
    if ($("view-train").classList.contains("active")) showTraining();
  }
}

// -- merger ----------------------------------------------------------------------------------
function mergerSettings() {
  return { direction: $("mg-direction").value, blend: $("mg-blend").value, color: $("mg-color").value,
           erode: +$("mg-erode").value, feather: +$("mg-feather").value,
           sharpen: +$("mg-sharpen").value, occlusion: $("mg-occlusion").checked };
}

async function mergerLoadVideo() {
  const video = $("mg-video").value;
  if (!video) return;
  const info = await getJSON("/api/video?" + q({ video }));
  $("mg-frame").max = Math.max(0, (info.frames || 1) - 1);
  mergerUpdate();
}

function mergerUpdate() {
  for (const k of ["erode", "feather", "sharpen"]) $(`mg-${k}-v`).textContent = $(`mg-${k}`).value;
  $("mg-frame-n").textContent = $("mg-frame").value;
  clearTimeout(state.mergerTimer);
  state.mergerTimer = setTimeout(mergerFetch, 60);  // follow a dragged slider, not every pixel
}

async function mergerFetch() {
  const video = $("mg-video").value, model = $("mg-model").value;
  if (!video || !model) return say("mg-msg", "pick a video and a trained model", true);
  const seq = ++state.mergerSeq;
  const t0 = performance.now();
  try {
    const r = await api("/api/merger/frame", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ video, model, frame: +$("mg-frame").value, settings: mergerSettings() }) });
    const blob = await r.blob();
    if (seq !== state.mergerSeq) return;  // a newer request is on its way
    const img = $("mg-image");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    img.dataset.seq = seq;
    $("mg-time").textContent = `${r.headers.get("X-Faces")} face(s) swapped; server ${r.headers.get("X-Render-Ms")} ms, shown after ${Math.round(performance.now() - t0)} ms`;
    say("mg-msg", "");
  } catch (e) { say("mg-msg", e.message, true); }
}
for (const id of ["mg-frame", "mg-erode", "mg-feather", "mg-sharpen"]) $(id).addEventListener("input", mergerUpdate);
for (const id of ["mg-direction", "mg-blend", "mg-color", "mg-occlusion", "mg-model"]) $(id).addEventListener("change", mergerUpdate);
$("mg-video").addEventListener("change", mergerLoadVideo);
$("mg-render").addEventListener("click", async () => {
  try {
    const r = await postJSON("/api/merger/render", { video: $("mg-video").value, model: $("mg-model").value, settings: mergerSettings() });
    say("mg-msg", `job ${r.job.id} queued: facetwin convert ${r.job.argv.join(" ")} (settings saved in ${r.settings_file})`);
  } catch (e) { say("mg-msg", e.message, true); }
});

// -- reports ---------------------------------------------------------------------------------
$("ev-run").addEventListener("click", async () => {
  try {
    const job = await postJSON("/api/jobs/eval", { original: $("ev-orig").value, swapped: $("ev-swap").value,
      model: $("ev-model").value, direction: $("ev-direction").value });
    say("ev-msg", `job ${job.id} queued`);
  } catch (e) { say("ev-msg", e.message, true); }
});

async function showReport() {
  const dir = $("rp-select").value;
  if (!dir) return;
  const doc = await getJSON("/api/report?" + q({ path: dir }));
  $("rp-summary").textContent = `${doc.good} of ${doc.judged} figures with a goal meet it.`;
  const t = $("rp-table");
  t.innerHTML = "<tr><th>figure</th><th>value</th><th>verdict</th><th>in words</th></tr>";
  for (const f of doc.figures) {
    const tr = t.insertRow();
    tr.className = "v-" + f.verdict;
    for (const v of [f.label, f.value, f.verdict === "info" ? "" : f.verdict, f.sentence]) tr.insertCell().textContent = v;
  }
  $("rp-crops").src = "/api/report/crops?" + q({ path: dir, t: Date.now() });
  if (doc.has_html) $("rp-frame").src = "/files/" + doc.html.split("/").map(encodeURIComponent).join("/");
  const model = $("ev-model").value;
  if (model) drawCurve($("rp-curve"), (await getJSON("/api/model/status?" + q({ path: model }))).curve);
}
$("rp-select").addEventListener("change", showReport);

// -- live ------------------------------------------------------------------------------------
let liveTimer = null;
$("lv-start").addEventListener("click", () => {
  const params = { video: $("lv-video").value, model: $("lv-model").value, direction: $("lv-direction").value,
                   occlusion: $("lv-occlusion").checked ? "1" : "0", t: Date.now() };
  $("lv-image").src = "/api/live/stream?" + q(params);
  clearInterval(liveTimer);
  liveTimer = setInterval(async () => {
    const s = await getJSON("/api/live/stats");
    $("lv-stats").innerHTML = "";
    for (const [k, v] of [["frames/s", s.fps], ["latency (ms)", s.latency_ms], ["frames shown", s.frames], ["dropped", s.dropped]]) {
      const d = document.createElement("div");
      d.innerHTML = "<b></b><span></span>";
      d.firstChild.textContent = k;
      d.lastChild.textContent = v == null ? "-" : v;
      d.dataset.key = k;
      $("lv-stats").appendChild(d);
    }
  }, 1000);
});
$("lv-stop").addEventListener("click", async () => {
  $("lv-image").removeAttribute("src");
  clearInterval(liveTimer);
  await postJSON("/api/live/stop", {});
});

// -- start -----------------------------------------------------------------------------------
loadProject().then(() => { loadFaces(); connectEvents(); });
