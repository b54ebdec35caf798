// Voice questions: the microphone button beside the search box records (MediaRecorder), sends the recording to
// POST /api/transcribe, puts what was heard into the search box and submits the search form (app.js searches).
// Plain JS, no build step; words come from i18n.js in the page's current language.
"use strict";

(() => {
  const MAX_SECONDS = 15; // a question, not a speech (the server takes up to 60 s)
  const MIN_MS = 400; // a tap, not a recording
  // what the browser can record, best first: Chromium and Firefox make WebM/Ogg Opus, Safari MP4
  const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"];
  const $ = (id) => document.getElementById(id);
  const I18N = window.SMARTALBUM_I18N;

  const HIDE_MS = 8000; // how long a message stays under the search box
  const voice = { state: "idle", recorder: null, stream: null, chunks: [], started: 0, timer: null, cancelled: false };
  let hideTimer = null;

  function lang() {
    return (document.documentElement.lang || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  }

  function t(key, vars) {
    let text = (I18N[lang()] && I18N[lang()][key]) || I18N.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) text = text.split(`{${k}}`).join(String(v));
    return text;
  }

  // idle | recording | sending; a message under the search box says what is happening or what went wrong
  function show(state, message, isError) {
    voice.state = state;
    const button = $("mic");
    button.classList.toggle("recording", state === "recording");
    button.classList.toggle("sending", state === "sending");
    button.setAttribute("aria-pressed", String(state === "recording"));
    button.disabled = state === "sending";
    const label = t(state === "recording" ? "voice.stop" : "voice.start");
    button.title = label;
    button.setAttribute("aria-label", label);
    const status = $("voice-status");
    status.textContent = message || "";
    status.classList.toggle("error", Boolean(isError));
    status.hidden = !message;
    clearTimeout(hideTimer);
    if (message && state === "idle") hideTimer = setTimeout(() => (status.hidden = true), HIDE_MS);
  }

  function fail(key, vars) {
    show("idle", t(key, vars), true);
  }

  function releaseMicrophone() {
    clearInterval(voice.timer);
    voice.timer = null;
    if (voice.stream) for (const track of voice.stream.getTracks()) track.stop();
    voice.stream = null;
  }

  function tick() {
    const seconds = Math.floor((Date.now() - voice.started) / 1000);
    show("recording", t("voice.listening", { s: seconds, max: MAX_SECONDS }));
    if (seconds >= MAX_SECONDS) stop();
  }

  async function start() {
    voice.state = "starting"; // a second click while the browser asks for the microphone does nothing
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      return fail("voice.unsupported");
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
    } catch (err) {
      const name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError") return fail("voice.denied");
      if (name === "NotFoundError" || name === "OverconstrainedError") return fail("voice.nomic");
      return fail("voice.unsupported");
    }
    const type = TYPES.find((candidate) => MediaRecorder.isTypeSupported(candidate)) || "";
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    voice.stream = stream;
    voice.recorder = recorder;
    voice.chunks = [];
    recorder.addEventListener("dataavailable", (e) => e.data && e.data.size && voice.chunks.push(e.data));
    recorder.addEventListener("stop", () => send(recorder));
    recorder.start();
    voice.started = Date.now();
    voice.timer = setInterval(tick, 250);
    tick();
  }

  function stop() {
    if (voice.recorder && voice.recorder.state !== "inactive") voice.recorder.stop();
    releaseMicrophone();
  }

  async function send(recorder) {
    releaseMicrophone();
    voice.recorder = null;
    if (voice.cancelled) {
      voice.cancelled = false;
      voice.chunks = [];
      return show("idle", "");
    }
    if (Date.now() - voice.started < MIN_MS) return fail("voice.short");
    const type = (recorder.mimeType || voice.chunks[0]?.type || "audio/webm").split(";")[0];
    const blob = new Blob(voice.chunks, { type });
    voice.chunks = [];
    show("sending", t("voice.sending"));
    let response;
    let data = null;
    try {
      response = await fetch("/api/transcribe", {
        method: "POST",
        headers: { "Content-Type": type, Accept: "application/json" },
        body: blob,
        credentials: "same-origin",
      });
      data = await response.json();
    } catch (err) {
      if (!response) return fail("voice.network");
    }
    if (!response.ok) {
      if (response.status === 422 && data && /speech/.test(data.error || "")) return fail("voice.nospeech");
      const detail = data && data.error ? data.error + (data.hint ? ` — ${data.hint}` : "") : String(response.status);
      return fail("voice.error", { error: detail });
    }
    const text = (data && data.text) || "";
    if (!text) return fail("voice.nospeech");
    show("idle", t("voice.heard", { text }));
    $("q").value = text.replace(/[\s.。!?！？]+$/u, ""); // "Photos of a kite." searches as typed
    $("search-form").requestSubmit();
  }

  function toggle() {
    if (voice.state === "recording") stop();
    else if (voice.state === "idle") start();
  }

  function init() {
    const button = $("mic");
    if (!button) return;
    button.addEventListener("click", toggle);
    // Escape while recording throws the recording away
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && voice.state === "recording") {
        voice.cancelled = true;
        stop();
      }
    });
    show("idle", "");
  }

  init();
})();
