// Tara's talk page: one WebRTC peer (mic up, agent voice down) plus the "events" data channel.
// Agent audio plays from the WebRTC track so the browser's echo cancellation can remove it from the mic.
// For tests and scripts: document.body.dataset.state holds the agent state, and #transcript holds one
// element per utterance with data-role="user" or "agent"; a user's has a .mood line (data-label, data-reply);
// an agent's .text holds one .word per word (data-shown-at: when it appeared), a .cut where it was talked
// over, and a .sources line (one .source per document, its passage on hover). Query flags: ?raw=1 turns
// off the browser's echo cancellation/noise suppression/AGC; ?record=1 keeps the received audio (window.taraTest).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const SLIDERS = ["warmth", "energy", "rate"];
const CHART_TURNS = 20;

let pc = null, channel = null, micStream = null, audioContext = null, heartbeat = null;
const HEARTBEAT_MS = 2000;  // the server ends a call it hears nothing from (server.heartbeat_timeout_s)
let muted = false, latencies = [];
const utterances = new Map();  // "user-3" / "agent-3" -> element
const reveals = new Map();  // agent turn id -> timers of its words still to be shown

// ---------------------------------------------------------------- state and transcript

function setState(state) {
  document.body.dataset.state = state;
  $("state-label").textContent = state;
}

function showError(message) {
  $("errors").textContent = message;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { $("errors").textContent = ""; }, 8000);
}

function utterance(role, turnId) {
  const key = `${role}-${turnId}`;
  let element = utterances.get(key);
  if (!element) {
    element = document.createElement("div");
    element.className = "utterance";
    element.dataset.role = role;
    element.dataset.turn = turnId;
    $("transcript").appendChild(element);
    utterances.set(key, element);
  }
  return element;
}

function child(element, className) {  // the element's one child of this class, made on first use
  let found = element.querySelector(`.${className}`);
  if (!found) {
    found = Object.assign(document.createElement("span"), { className });
    if (className === "text") element.prepend(found); else element.appendChild(found);
  }
  return found;
}

function scrollDown() { $("transcript").scrollTop = $("transcript").scrollHeight; }

function agentText(element) {
  let span = element.querySelector(".text");
  if (!span) {  // the reply's text goes above its "from ..." line, whichever arrived first
    span = Object.assign(document.createElement("span"), { className: "text" });
    element.insertBefore(span, element.querySelector(".sources"));
  }
  return span;
}

function wordSpan(text) {
  return Object.assign(document.createElement("span"), { className: "word", textContent: `${text} `, hidden: true });
}

function showWord(span) {
  span.hidden = false;
  span.dataset.shownAt = String(Math.round(performance.now()));
  scrollDown();
}

// A piece of the reply arrives as its first sample plays, with each word's start: show each word as it is heard.
function revealWords(turnId, message) {
  const text = agentText(utterance("agent", turnId));
  const timers = reveals.get(turnId) || [];
  reveals.set(turnId, timers);
  for (const word of message.words.length ? message.words : [{ text: message.text, start_ms: 0 }]) {
    const span = text.appendChild(wordSpan(word.text));
    const wait = word.start_ms - message.played_ms;
    if (wait <= 0) showWord(span); else timers.push(setTimeout(() => showWord(span), wait));
  }
}

// Talked over: exactly the words that were heard, then a mark where Tara was cut off.
function showCut(turnId, heard) {
  for (const timer of reveals.get(turnId) || []) clearTimeout(timer);
  reveals.delete(turnId);
  if (!heard && !utterances.has(`agent-${turnId}`)) return;
  const element = utterance("agent", turnId);
  const words = heard ? heard.split(" ").map(wordSpan) : [];
  words.forEach(showWord);
  agentText(element).replaceChildren(...words, Object.assign(document.createElement("span"), { className: "cut", textContent: "—" }));
  element.classList.add("interrupted");
}

// ---------------------------------------------------------------- events from the server

const handlers = {
  hello(message) {  // the call is up: audio flows and the controls work
    setState("listening");
    setControls(true);
    const select = $("voice");
    select.replaceChildren(...message.voices.map((v) => new Option(v, v)));
    const presets = $("presets");
    presets.replaceChildren(...Object.keys(message.presets).map((name) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = name;
      button.dataset.preset = name;
      button.onclick = () => send({ type: "emotion", preset: name });
      return button;
    }));
  },
  settings(message) {
    const select = $("voice");
    if (message.voices && message.voices.join() !== [...select.options].map((o) => o.value).join()) {
      select.replaceChildren(...message.voices.map((v) => new Option(v, v)));  // a voice was added or deleted
    }
    select.value = message.voice;
    muted = message.muted;
    $("mute").setAttribute("aria-pressed", String(muted));
    $("mute").textContent = muted ? "Unmute" : "Mute";
    for (const name of SLIDERS) $(name).value = message.emotion[name];
    for (const button of $("presets").children) button.classList.toggle("active", button.dataset.preset === message.emotion.preset);
  },
  state(message) { setState(message.state); },
  user_speech_start() {},
  user_transcript(message) {
    const element = utterance("user", message.turn_id);
    child(element, "text").textContent = message.text;
    element.classList.toggle("partial", !message.final);
    scrollDown();
  },
  user_emotion(message) {  // "you sounded: anxious · replying: calm (auto)" under the user's words
    const element = utterance("user", message.turn_id);
    const mood = child(element, "mood");
    mood.dataset.label = message.label;
    mood.dataset.reply = message.reply.preset;
    mood.title = message.reasons.join("; ");
    const heard = message.features ? "you sounded" : "your words read";  // typed text has no voice
    mood.textContent = `${heard}: ${message.label} (${Math.round(message.confidence * 100)}%) · `
      + `replying: ${message.reply.preset}${message.auto ? " (auto)" : ""}`;
  },
  agent_text(message) { revealWords(message.turn_id, message); },
  agent_done(message) {
    if (message.interrupted) showCut(message.turn_id, message.text);
    else reveals.delete(message.turn_id);
  },
  sources(message) {  // "from brightline-kettle.md" under the reply; hovering a name shows its passage
    if (!message.grounded || !message.passages.length) return;
    const line = Object.assign(document.createElement("span"), { className: "sources", textContent: "from " });
    const best = new Map();  // source -> its best passage (they come best first)
    for (const passage of message.passages) if (!best.has(passage.source)) best.set(passage.source, passage.text);
    [...best].forEach(([source, passage], i) => {
      if (i) line.append(", ");
      line.appendChild(Object.assign(document.createElement("span"), { className: "source", textContent: source, title: passage }));
    });
    utterance("agent", message.turn_id).appendChild(line);
  },
  metrics(message) { recordLatency(message.stages); },
  error(message) { showError(message.message); },
  pong() {},
};

function onMessage(event) {
  let message;
  try { message = JSON.parse(event.data); } catch { return; }
  (handlers[message.type] || (() => {}))(message);
}

function send(message) {
  if (channel && channel.readyState === "open") channel.send(JSON.stringify(message));
}

// ---------------------------------------------------------------- latency

function recordLatency(stages) {
  const ms = stages.voice_to_first_audio ?? stages.first_audio;
  if (ms === undefined) return;
  latencies.push(ms);
  latencies = latencies.slice(-CHART_TURNS);
  const sorted = [...latencies].sort((a, b) => a - b);
  $("latency-last").textContent = `${Math.round(ms)} ms`;
  $("latency-median").textContent = `${Math.round(sorted[Math.floor(sorted.length / 2)])} ms`;
  const shown = ["endpointing", "transcript", "first_token", "first_sentence", "first_audio"].filter((k) => k in stages);
  $("latency-stages").textContent = shown.map((k) => `${k.replace("_", " ")} ${Math.round(stages[k])}`).join(" · ");
  drawChart();
}

function drawChart() {
  const canvas = $("latency-chart");
  const ctx = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height;
  ctx.clearRect(0, 0, width, height);
  const top = Math.max(1500, ...latencies);
  const barWidth = width / CHART_TURNS;
  latencies.forEach((ms, i) => {
    const barHeight = (ms / top) * (height - 4);
    ctx.fillStyle = ms <= 700 ? "#2e9d57" : ms <= 1000 ? "#d89b00" : "#d64545";
    ctx.fillRect(i * barWidth + 1, height - barHeight, barWidth - 2, barHeight);
  });
  const target = height - (700 / top) * (height - 4);
  ctx.strokeStyle = "#888";
  ctx.setLineDash([4, 4]);
  ctx.beginPath(); ctx.moveTo(0, target); ctx.lineTo(width, target); ctx.stroke();
}

// ---------------------------------------------------------------- audio levels (and test recording)

function levelMeter(stream, element) {
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 512;
  audioContext.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const draw = () => {
    if (!pc) { element.style.width = "0"; return; }
    analyser.getFloatTimeDomainData(data);
    const rms = Math.sqrt(data.reduce((sum, x) => sum + x * x, 0) / data.length);
    element.style.width = `${Math.min(100, Math.max(0, (20 * Math.log10(rms + 1e-6) + 60) * 100 / 60))}%`;
    requestAnimationFrame(draw);
  };
  draw();
}

// ?record=1: keep what arrives from Tara as 16 kHz PCM with arrival times, for end-to-end tests.
window.taraTest = { chunks: [], times: [] };
function recordReceived(stream) {
  const context = new AudioContext({ sampleRate: 16000 });
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(1024, 1, 1);
  processor.onaudioprocess = (event) => {
    const samples = event.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, samples[i] * 32768));
    window.taraTest.chunks.push(pcm);
    window.taraTest.times.push(performance.now());
  };
  source.connect(processor);
  processor.connect(context.destination);
}
window.taraTest.recording = () => {  // base64 of all received int16 samples
  const total = window.taraTest.chunks.reduce((n, c) => n + c.length, 0);
  const all = new Int16Array(total);
  let offset = 0;
  for (const chunk of window.taraTest.chunks) { all.set(chunk, offset); offset += chunk.length; }
  const bytes = new Uint8Array(all.buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
};

// ---------------------------------------------------------------- connection

function waitForIceGathering(peer, timeoutMs = 3000) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (peer.iceGatheringState === "complete") resolve(); };
    peer.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

async function connect() {
  setState("connecting");
  $("connect").disabled = true;
  try {
    const config = await (await fetch("api/config")).json();
    const raw = params.get("raw") === "1";
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: !raw, noiseSuppression: !raw, autoGainControl: !raw, channelCount: 1 },
    });
    audioContext = audioContext || new AudioContext();
    await audioContext.resume();
    pc = new RTCPeerConnection({ iceServers: config.ice_servers });
    for (const track of micStream.getTracks()) pc.addTrack(track, micStream);
    channel = pc.createDataChannel("events");
    channel.onmessage = onMessage;
    channel.onopen = () => { heartbeat = setInterval(() => send({ type: "ping", t: performance.now() }), HEARTBEAT_MS); };
    pc.ontrack = (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      $("agent-audio").srcObject = stream;  // also what lets WebAudio see the remote stream
      levelMeter(stream, $("agent-level"));
      if (params.get("record") === "1") recordReceived(stream);
    };
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc?.connectionState)) { showError(`connection ${pc.connectionState}`); disconnect(); }
    };
    levelMeter(micStream, $("mic-level"));
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIceGathering(pc);
    const response = await fetch("offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `server answered ${response.status}`);
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    $("connect").textContent = "Disconnect";
    $("connect").classList.remove("primary");
  } catch (error) {
    showError(`Could not connect: ${error.message}`);
    disconnect();
  } finally {
    $("connect").disabled = false;
  }
}

function disconnect() {
  clearInterval(heartbeat);
  channel?.close();
  pc?.close();
  micStream?.getTracks().forEach((t) => t.stop());
  pc = channel = micStream = null;
  setControls(false);
  setState("disconnected");
  $("connect").textContent = "Connect";
  $("connect").classList.add("primary");
}

function setControls(enabled) {
  for (const id of ["interrupt", "mute", "text-input", "text-send", "voice", ...SLIDERS]) $(id).disabled = !enabled;
}

// ---------------------------------------------------------------- controls

$("connect").onclick = () => (pc ? disconnect() : connect());
$("interrupt").onclick = () => send({ type: "interrupt" });
$("mute").onclick = () => {
  const next = !muted;
  micStream?.getAudioTracks().forEach((t) => { t.enabled = !next; });  // silence leaves the browser too
  send({ type: "mute", muted: next });
};
$("voice").onchange = (event) => send({ type: "voice", voice: event.target.value });
for (const name of SLIDERS) {
  $(name).oninput = (event) => {
    clearTimeout($(name).timer);
    $(name).timer = setTimeout(() => send({ type: "emotion", [name]: Number(event.target.value) }), 120);
  };
}
$("text-form").onsubmit = (event) => {
  event.preventDefault();
  const text = $("text-input").value.trim();
  if (text) send({ type: "text", text });
  $("text-input").value = "";
};
drawChart();
