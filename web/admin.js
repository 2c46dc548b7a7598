// Tara's admin page: reads and drives the REST API with the admin token (sessionStorage, this tab only).
// Polls once a second: sessions (state, a latency chart per session), the knowledge base (reindex
// progress) and new log lines; models every few seconds. For tests: each session row is
// tr[data-session=ID] with td.state, and its chart is an <svg class="latency"> with one rect.bar per turn.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "tara-admin-token";
const CHART_TURNS = 20;
let lastLog = 0, tick = 0, timer = null;

// ---------------------------------------------------------------- token and requests

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${token()}` } });
  if (response.status === 401) { signedOut("That admin token was refused."); throw new Error("unauthorised"); }
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

function signedOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  document.body.dataset.auth = "needed";
  $("login-error").textContent = message;
  $("sign-out").hidden = true;
  clearInterval(timer);
  timer = null;
}

function signedIn() {
  document.body.dataset.auth = "ok";
  $("sign-out").hidden = false;
  refreshVoices();
  poll();
  if (!timer) timer = setInterval(poll, 1000);
}

function showError(message) {
  $("errors").textContent = message;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { $("errors").textContent = ""; }, 8000);
}

function el(tag, props = {}, ...children) {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

const kb = (bytes) => (bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KB`);

// ---------------------------------------------------------------- polling

async function poll() {
  tick += 1;
  try {
    const jobs = [refreshSessions(), refreshKb(), refreshLogs(), refreshHealth()];
    if (tick % 5 === 1) jobs.push(refreshModels());
    await Promise.all(jobs);
  } catch (error) {
    if (error.message !== "unauthorised") showError(error.message);
  }
}

async function refreshHealth() {
  const health = await (await fetch("api/health")).json();
  $("health").textContent = health.ok ? `up ${Math.round(health.uptime_s)} s` : "loading models";
  document.body.dataset.state = health.ok ? "listening" : "connecting";
}

async function refreshSessions() {
  const { sessions, max_sessions } = await api("api/sessions");
  $("session-count").textContent = `(${sessions.length} of ${max_sessions})`;
  $("no-sessions").hidden = sessions.length > 0;
  const rows = sessions.map((s) => {
    const row = el("tr", {},
      el("td", { title: s.id, textContent: s.id }),
      el("td", { className: `state ${s.state}`, textContent: s.connection === "connected" ? s.state : s.connection }),
      el("td", { textContent: s.remote || "?" }),
      el("td", { textContent: s.turns }),
      el("td", { textContent: `${s.voice} · ${s.emotion.preset}${s.muted ? " · muted" : ""}` }),
      el("td", {}, latencyChart(s.latencies)),
      el("td", {}, el("button", { textContent: "End", onclick: () => endSession(s.id) })));
    row.dataset.session = s.id;
    return row;
  });
  $("sessions").replaceChildren(...rows);
}

function latencyChart(latencies) {
  // One bar per recent turn: first audio after the end of speech (green ≤ 700 ms, amber ≤ 1 s, red beyond).
  const NS = "http://www.w3.org/2000/svg", width = 200, height = 40;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "latency");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const values = latencies.slice(-CHART_TURNS).map((t) => t.stages.voice_to_first_audio ?? t.stages.first_audio)
    .filter((ms) => ms !== undefined);
  const top = Math.max(1500, ...values);
  const barWidth = width / CHART_TURNS;
  values.forEach((ms, i) => {
    const bar = document.createElementNS(NS, "rect");
    const barHeight = Math.max(1, (ms / top) * (height - 2));
    bar.setAttribute("class", "bar");
    bar.setAttribute("x", i * barWidth + 1);
    bar.setAttribute("y", height - barHeight);
    bar.setAttribute("width", barWidth - 2);
    bar.setAttribute("height", barHeight);
    bar.setAttribute("fill", ms <= 700 ? "#2e9d57" : ms <= 1000 ? "#d89b00" : "#d64545");
    const title = document.createElementNS(NS, "title");
    title.textContent = `turn ${latencies[i].turn_id}: ${Math.round(ms)} ms`;
    bar.appendChild(title);
    svg.appendChild(bar);
  });
  const last = values.at(-1);
  const label = el("span", { className: "muted", textContent: last === undefined ? " no turn yet" : ` ${Math.round(last)} ms` });
  return el("span", { className: "chart" }, svg, label);
}

async function endSession(id) {
  if (!confirm(`End session ${id}?`)) return;
  await api(`api/sessions/${encodeURIComponent(id)}`, { method: "DELETE" }).catch((e) => showError(e.message));
  refreshSessions();
}

async function refreshModels() {
  const d = await api("api/diagnostics");
  const rows = Object.entries(d.models).map(([stage, m]) => el("tr", {},
    el("th", { textContent: stage }),
    el("td", { textContent: m.class ? `${m.backend} (${m.class})` : m.backend }),
    el("td", { textContent: m.model || m.embed_model || (m.voices ? `voices: ${m.voices.join(", ")}` : "") }),
    el("td", { textContent: m.device }),
    el("td", { className: "muted", textContent: m.load_s !== undefined ? `loaded in ${m.load_s} s` : "" })));
  $("models").replaceChildren(...rows);
  const cuda = d.devices.cuda.map((g) => `${g.name} (${g.memory_allocated_mb}/${g.memory_total_mb} MB)`).join(", ");
  $("system").textContent = `${d.devices.cpu_cores} CPU cores${cuda ? `, ${cuda}` : ", no GPU"} · memory ${d.memory.rss_mb} MB ` +
    `(peak ${d.memory.peak_rss_mb}) · python ${d.versions.python}, torch ${d.versions.torch}, aiortc ${d.versions.aiortc}`;
}

async function refreshKb() {
  const state = await api("api/kb");
  $("kb-folder").textContent = state.folder;
  $("kb-documents").replaceChildren(...state.documents.map((d) => el("tr", {},
    el("td", { textContent: d.name }),
    el("td", { textContent: kb(d.bytes) }),
    el("td", { textContent: d.indexed ? d.chunks : "not indexed" }),
    el("td", {}, el("button", { textContent: "Delete", onclick: () => deleteDocument(d.name) })))));
  const index = state.index;
  $("kb-progress").value = index.progress;
  $("reindex").disabled = index.state === "indexing";
  $("kb-state").textContent = index.state === "indexing" ? `indexing: ${index.phase} ${index.done}/${index.total}`
    : index.state === "failed" ? `reindex failed: ${index.error} (the previous index is still used)`
    : `${index.documents} documents, ${index.chunks} chunks${index.in_prompt ? ", all in the prompt" : ""}` +
      (index.stale ? " · changed since: reindex to use the changes" : "");
  $("kb-state").classList.toggle("error", index.state === "failed");
}

async function deleteDocument(name) {
  if (!confirm(`Delete ${name}?`)) return;
  await api(`api/kb/${encodeURIComponent(name)}`, { method: "DELETE" }).catch((e) => showError(e.message));
  refreshKb();
}

async function refreshVoices() {
  const library = await api("api/voices");
  $("voices").replaceChildren(...library.voices.map((v) => {
    const sample = el("button", { textContent: "▶ sample", disabled: !v.available });
    sample.onclick = async () => {
      sample.disabled = true;
      try {
        const response = await fetch(`api/voices/${encodeURIComponent(v.id)}/sample`, { headers: { Authorization: `Bearer ${token()}` } });
        if (!response.ok) throw new Error((await response.json()).error);
        const audio = el("audio", { controls: true, autoplay: true, src: URL.createObjectURL(await response.blob()) });
        sample.replaceWith(audio);
      } catch (error) { showError(error.message); sample.disabled = false; }
    };
    const remove = v.source === "uploaded" ? el("button", { textContent: "Delete", onclick: () => deleteVoice(v.id) }) : "";
    return el("tr", {},
      el("td", { textContent: `${v.name}${v.default ? " (default)" : ""}`, title: v.transcript || "" }),
      el("td", { textContent: v.available ? v.source : `${v.source}: ${v.problem}` }),
      el("td", {}, sample), el("td", {}, remove));
  }));
  $("clone-note").textContent = library.can_clone
    ? `A reference recording (WAV, FLAC or OGG, ${library.limits.min_seconds}–${library.limits.max_seconds} s) and its transcript make a voice.`
    : library.clone_limitation;
  for (const input of $("voice-upload").elements) input.disabled = !library.can_clone;
}

async function deleteVoice(id) {
  if (!confirm(`Delete voice ${id}?`)) return;
  await api(`api/voices/${encodeURIComponent(id)}`, { method: "DELETE" }).catch((e) => showError(e.message));
  refreshVoices();
}

async function refreshLogs() {
  const { lines, last } = await api(`api/logs?after=${lastLog}`);
  if (last < lastLog) { lastLog = 0; $("logs").textContent = ""; return; }  // the server restarted
  lastLog = last;
  if (!lines.length) return;
  const text = lines.map((l) => `${new Date(l.time * 1000).toLocaleTimeString()} ${l.level.padEnd(7)} ${l.logger}: ${l.message}`);
  const pre = $("logs");
  pre.textContent = (pre.textContent ? `${pre.textContent}\n` : "") + text.join("\n");
  pre.textContent = pre.textContent.split("\n").slice(-300).join("\n");
  pre.scrollTop = pre.scrollHeight;
}

// ---------------------------------------------------------------- forms

$("login").onsubmit = async (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  try { await api("api/sessions"); signedIn(); } catch { /* signedOut said why */ }
};
$("sign-out").onclick = () => signedOut();
$("reindex").onclick = async () => {
  $("reindex").disabled = true;
  await api("api/kb/reindex", { method: "POST" }).catch((e) => showError(e.message));
  refreshKb();
};
$("kb-upload").onsubmit = async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("file", $("kb-file").files[0]);
  try {
    await api(`api/kb${$("kb-replace").checked ? "?replace=1" : ""}`, { method: "POST", body: form });
    $("kb-upload").reset();
  } catch (error) { showError(error.message); }
  refreshKb();
};
$("voice-upload").onsubmit = async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("name", $("voice-name").value);
  form.append("transcript", $("voice-transcript").value);
  form.append("audio", $("voice-file").files[0]);
  try {
    await api("api/voices", { method: "POST", body: form });
    $("voice-upload").reset();
  } catch (error) { showError(error.message); }
  refreshVoices();
};

// ?token=... (the URL printed at start) goes into this tab's storage and out of the address bar.
const fromUrl = new URLSearchParams(location.search).get("token");
if (fromUrl) {
  sessionStorage.setItem(TOKEN_KEY, fromUrl);
  history.replaceState(null, "", location.pathname);
}
if (token()) api("api/sessions").then(signedIn, () => {}); else signedOut();
