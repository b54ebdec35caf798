// smartalbum's page: search, results, detail view, feedback, people, trips and the library panel. Plain JS, no build step.
// Everything the server sends is put into the page with textContent, never as HTML.
"use strict";

(() => {
  const PAGE = 30;
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  const I18N = window.SMARTALBUM_I18N;
  const EXAMPLES = window.SMARTALBUM_EXAMPLES;

  const state = {
    lang: "en",
    mode: "home", // home | search | similar | people | trips | trip | event
    query: "",
    similarTo: null,
    hits: [],
    total: 0,
    notes: [],
    offset: 0,
    loading: false,
    seq: 0, // the latest request; older answers are dropped
    current: -1, // index of the photo open in the detail view
    lastFeedback: null,
    pollTimer: null,
    jobRunning: false,
    people: [], // the People page's list
    selected: new Set(), // person ids picked for a merge
    faces: [], // faces of the photo open in the detail view
    face: null, // the face being named or moved
    trips: [], // the Trips page's list
    trip: null, // the trip open (with its events)
    event: null, // the event whose photos are in the grid
    eventId: null,
    steps: [], // how the question was read: {kind, text}, one a line of `understood`
    ignore: [], // the kinds of step taken back (sent as ignore=…, kept in the address bar)
    stepText: {}, // kind -> the words of a step taken back, so its undo chip can show them
    extra: 0, // near-duplicates opened under their group's hit: in state.hits, not in total or paging
  };
  // the kinds of step a search can take back (the API's StepKind); filter and note cannot be
  const STEP_KINDS = ["time", "birthday", "weekend", "place", "people", "exclude", "trip", "verify", "planner"];

  // -- words ----------------------------------------------------------------------------------------

  function pickLanguage() {
    const saved = localStorage.getItem("smartalbum.lang");
    if (saved && I18N[saved]) return saved;
    const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
    return langs.some((l) => (l || "").toLowerCase().startsWith("zh")) ? "zh" : "en";
  }

  function t(key, vars) {
    let text = (I18N[state.lang] && I18N[state.lang][key]) || I18N.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) text = text.split(`{${k}}`).join(String(v));
    return text;
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
    for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
      el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
    }
    const examples = $("examples");
    examples.replaceChildren(
      ...EXAMPLES[state.lang].map((q) => {
        const b = el("button", { type: "button", className: "chip" }, q);
        b.addEventListener("click", () => search(q));
        return b;
      }),
    );
    renderStatus();
    if (state.mode === "people") renderPeople();
    if (state.mode === "trips" || state.mode === "trip") renderTrips();
    if (state.current >= 0 && $("detail").open) openDetail(state.current);
  }

  // -- helpers --------------------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  class ApiError extends Error {
    constructor(message, hint, status) {
      super(message);
      this.hint = hint;
      this.status = status;
    }
  }

  async function api(path, options) {
    const opts = Object.assign({ method: "GET" }, options || {});
    const headers = { Accept: "application/json" };
    if (opts.method !== "GET") headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method: opts.method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        credentials: "same-origin",
      });
    } catch (err) {
      throw new ApiError(t("error.network"), null, 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (response.status === 401) showLogin();
    if (!response.ok) {
      throw new ApiError((data && data.error) || t("error.generic"), data && data.hint, response.status);
    }
    return data;
  }

  let toastTimer = null;
  function toast(text, action) {
    const box = $("toast");
    $("toast-text").textContent = text;
    const button = $("toast-action");
    button.hidden = !action;
    if (action) {
      button.textContent = action.label;
      button.onclick = () => {
        box.hidden = true;
        action.run();
      };
    }
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (box.hidden = true), action ? 8000 : 4000);
  }

  function showError(err) {
    if (err && err.status === 401) return;
    toast(err && err.hint ? `${err.message} — ${err.hint}` : (err && err.message) || t("error.generic"));
  }

  function percent(score) {
    return `${Math.round(Math.max(0, Math.min(1, score)) * 100)}%`;
  }

  function shortDate(value) {
    return value ? value.replace("T", " ").slice(0, 16) : "";
  }

  function bilingual(pair) {
    if (!pair) return "";
    return (state.lang === "zh" ? pair.zh || pair.en : pair.en || pair.zh) || "";
  }

  // -- the address bar keeps the search, so a reload or a bookmark shows it again ---------------------

  function filters() {
    return {
      after: $("f-after").value,
      before: $("f-before").value,
      place: $("f-place").value.trim(),
      sort: $("f-sort").value,
    };
  }

  function writeUrl() {
    if (state.mode === "people") return history.replaceState(null, "", "/?view=people");
    if (state.mode === "trips") return history.replaceState(null, "", "/?view=trips");
    if (state.mode === "trip") return history.replaceState(null, "", `/?trip=${state.trip ? state.trip.id : ""}`);
    if (state.mode === "event") return history.replaceState(null, "", `/?event=${state.eventId}`);
    const params = new URLSearchParams();
    if (state.mode === "search" && state.query) params.set("q", state.query);
    if (state.mode === "search") for (const kind of state.ignore) params.append("ignore", kind);
    if (state.mode === "similar") params.set("similar", String(state.similarTo));
    for (const [k, v] of Object.entries(filters())) if (v && !(k === "sort" && v === "relevance")) params.set(k, v);
    const query = params.toString();
    history.replaceState(null, "", query ? `/?${query}` : "/");
  }

  function readUrl() {
    const params = new URLSearchParams(location.search);
    $("f-after").value = params.get("after") || "";
    $("f-before").value = params.get("before") || "";
    $("f-place").value = params.get("place") || "";
    $("f-sort").value = params.get("sort") === "date" ? "date" : "relevance";
    if (params.get("after") || params.get("before") || params.get("place") || params.get("sort")) {
      $("filters").open = true;
    }
    if (params.get("view") === "people") return showPeople();
    if (params.get("view") === "trips") return showTrips();
    const trip = Number(params.get("trip"));
    if (Number.isInteger(trip) && trip > 0) return showTrip(trip);
    const event = Number(params.get("event"));
    if (Number.isInteger(event) && event > 0) return showEvent(event);
    const similar = Number(params.get("similar"));
    if (Number.isInteger(similar) && similar > 0) return showSimilar(similar);
    const q = params.get("q");
    const ignore = params.getAll("ignore").filter((k) => STEP_KINDS.includes(k));
    if (q) return search(q, { ignore: [...new Set(ignore)] });
    return showHome();
  }

  // -- search and results ---------------------------------------------------------------------------

  function searchUrl(offset) {
    const params = new URLSearchParams({ q: state.query, limit: String(PAGE), offset: String(offset) });
    for (const [k, v] of Object.entries(filters())) if (v) params.set(k, v);
    for (const kind of state.ignore) params.append("ignore", kind);
    return `/api/search?${params}`;
  }

  // a new question starts with nothing taken back; opts.ignore (a reload, a step removed or restored, a
  // filter changed) keeps what was
  async function search(query, opts) {
    const ignore = opts && opts.ignore;
    if (!ignore) {
      state.steps = [];
      state.stepText = {};
    }
    state.ignore = ignore ? [...ignore] : [];
    state.query = query.trim();
    $("q").value = state.query;
    if (!state.query && !filters().after && !filters().before && !filters().place) return showHome();
    state.mode = "search";
    state.similarTo = null;
    writeUrl();
    await loadPage(true);
  }

  async function showSimilar(photoId) {
    state.mode = "similar";
    state.similarTo = photoId;
    state.query = "";
    $("q").value = "";
    writeUrl();
    await loadPage(true);
  }

  async function loadPage(reset) {
    if (!reset && (state.loading || state.hits.length - state.extra >= state.total)) return;
    const seq = ++state.seq;
    state.loading = true;
    if (reset) {
      state.hits = [];
      state.total = 0;
      state.extra = 0;
      $("grid").replaceChildren();
      $("welcome").hidden = true;
      $("people-view").hidden = true;
      $("trips-view").hidden = true;
      $("results-head").hidden = false;
      $("status").textContent = t("results.loading");
      if (state.mode !== "search") state.steps = [];
      $("understood").replaceChildren(...stepChips(true));
      $("notes").replaceChildren();
    }
    document.body.classList.add("busy");
    try {
      const url =
        state.mode === "similar"
          ? `/api/photos/${state.similarTo}/similar?limit=100`
          : state.mode === "event"
            ? `/api/events/${state.eventId}?limit=${PAGE * 4}&offset=${state.hits.length}`
            : searchUrl(state.hits.length - state.extra);
      let data = await api(url);
      if (seq !== state.seq) return;
      if (state.mode === "event") data = eventPage(data);
      state.total = data.total;
      state.totalExact = data.total_exact; // false: a listing by date estimated its count past the page
      state.language = data.language;
      state.understood = data.understood || [];
      state.steps = Array.isArray(data.steps)
        ? data.steps
        : (data.understood || []).map((text) => ({ kind: "note", text }));
      const texts = {};
      for (const step of state.steps) if (STEP_KINDS.includes(step.kind)) (texts[step.kind] ||= []).push(step.text);
      for (const [kind, lines] of Object.entries(texts)) state.stepText[kind] = lines.join(" · ");
      state.notes = data.notes || [];
      const start = state.hits.length;
      state.hits.push(...data.hits);
      if (state.mode === "similar") state.total = state.hits.length;
      state.loading = false;
      appendCards(data.hits, start);
      renderStatus();
    } catch (err) {
      if (seq === state.seq) {
        $("status").textContent = err.message;
        $("understood").replaceChildren(...stepChips(false));
        showError(err);
      }
    } finally {
      if (seq === state.seq) {
        state.loading = false;
        document.body.classList.remove("busy");
        $("more").hidden = state.hits.length - state.extra >= state.total;
      }
    }
  }

  function renderStatus() {
    if (state.mode === "home" || state.mode === "people" || state.mode === "trips" || state.mode === "trip") return;
    const status = $("status");
    const back = $("results-back");
    back.hidden = state.mode !== "event";
    if (state.loading && !state.hits.length) return; // still "Searching…"
    if (state.mode === "event") return renderEventStatus();
    if (state.mode === "similar") {
      status.textContent = t("results.similar", { n: state.total, id: state.similarTo });
    } else if (!state.total) {
      status.textContent = `${t("results.none", { q: state.query })} ${t("results.none.hint")}`;
    } else {
      let key = state.total === 1 ? "results.count.one" : "results.count";
      if (state.totalExact === false) key = "results.count.about";
      status.textContent = t(key, { n: state.total, q: state.query });
    }
    $("understood").replaceChildren(...stepChips(false));
    $("notes").replaceChildren(...(state.notes || []).map((n) => el("li", {}, n)));
  }

  // how the question was read, a chip a step; a step that can be taken back has a ×, and what was taken back
  // stays as a struck-through chip with "undo". While a new answer loads (busy) the chips cannot be pressed.
  function stepChips(busy) {
    if (state.mode !== "search") {
      return (busy ? [] : state.understood || []).map((u) => el("li", { className: "chip static" }, u));
    }
    const chips = [];
    for (const step of state.steps) {
      if (state.ignore.includes(step.kind)) continue;
      const removable = STEP_KINDS.includes(step.kind);
      const text = el("span", { className: "step-text" }, step.text);
      const chip = el("li", { className: removable ? "chip step" : "chip static step" }, text);
      chip.dataset.kind = step.kind;
      if (removable) {
        const remove = el("button", { type: "button", className: "step-remove", disabled: busy }, "×");
        remove.setAttribute("aria-label", t("steps.remove"));
        remove.title = t("steps.remove.title", { text: step.text });
        remove.addEventListener("click", () => takeBack(step.kind));
        chip.append(remove);
      }
      chips.push(chip);
    }
    for (const kind of state.ignore) {
      const text = state.stepText[kind] || t(`steps.kind.${kind}`);
      const chip = el("li", { className: "chip step removed" }, el("s", { className: "step-text" }, text));
      chip.dataset.kind = kind;
      const undo = el("button", { type: "button", className: "step-undo", disabled: busy }, t("steps.undo"));
      undo.title = t("steps.undo.title", { text });
      undo.addEventListener("click", () => putBack(kind));
      chip.append(undo);
      chips.push(chip);
    }
    return chips;
  }

  function takeBack(kind) {
    if (state.mode !== "search" || state.ignore.includes(kind)) return;
    search(state.query, { ignore: [...state.ignore, kind] });
  }

  function putBack(kind) {
    if (state.mode !== "search") return;
    search(state.query, { ignore: state.ignore.filter((k) => k !== kind) });
  }

  function card(hit, index) {
    const img = el("img", {
      src: hit.urls.thumbnail,
      alt: bilingual(hit.caption) || `#${hit.photo_id}`,
      loading: "lazy",
      decoding: "async",
    });
    if (hit.width && hit.height) {
      img.width = hit.width;
      img.height = hit.height;
    }
    const why = cardWhy(hit).join(" · ");
    const button = el(
      "button",
      { type: "button", className: hit.weak ? "card weak" : "card" },
      el("span", { className: "thumb" }, img, videoBadge(hit)),
      el(
        "span",
        { className: "card-meta" },
        typeof hit.score === "number"
          ? el("span", { className: "score", title: t("score.title") }, percent(hit.score))
          : el("span", { className: "time" }, shortDate(hit.taken_at).slice(11)),
        hit.weak ? el("span", { className: "weak-label" }, t("score.weak")) : null,
        verifiedBadge(hit),
        el("span", { className: "date" }, shortDate(hit.taken_at).slice(0, 10)),
      ),
      videoMoment(hit),
      why ? el("span", { className: "why" }, why) : null,
    );
    button.dataset.index = String(index);
    button.dataset.photoId = String(hit.photo_id);
    button.addEventListener("click", () => openDetail(Number(button.dataset.index)));
    return el("li", { className: hit.similar ? "has-similar" : "" }, button, similarToggle(hit), personChips(hit.people || []));
  }

  // the vision model's check of the photo against the question, when it made one: quiet, its words are in why
  function verifiedBadge(hit) {
    if (typeof hit.verified !== "number") return null;
    const yes = hit.verified >= 0.5;
    const label = `${yes ? "✓" : "?"} ${percent(hit.verified)}`;
    const badge = el("span", { className: yes ? "verified yes" : "verified no" }, label);
    badge.title = t("verified.title", { p: percent(hit.verified) });
    return badge;
  }

  // the named people (and the owner) in a result: a chip each; a click searches that person
  function personChips(people) {
    if (!people.length) return null;
    return el(
      "span",
      { className: "people-chips" },
      ...people.map((p) => {
        const label = p.name || t("people.me");
        const chip = el("button", { type: "button", className: p.is_me ? "person-chip me" : "person-chip" }, label);
        chip.title = t("people.search", { name: label });
        chip.dataset.personId = String(p.id);
        chip.addEventListener("click", () => search(p.name || t("people.me.query")));
        return chip;
      }),
    );
  }

  function appendCards(hits, start) {
    $("grid").append(...hits.map((hit, i) => card(hit, start + i)));
  }

  function renumberCards() {
    [...$("grid").querySelectorAll(".card")].forEach((c, i) => (c.dataset.index = String(i)));
  }

  async function showHome() {
    state.mode = "home";
    state.seq++;
    state.hits = [];
    state.query = "";
    $("grid").replaceChildren();
    $("results-head").hidden = true;
    $("more").hidden = true;
    $("people-view").hidden = true;
    $("trips-view").hidden = true;
    $("welcome").hidden = false;
    writeUrl();
    try {
      const stats = await api("/api/stats");
      $("welcome-stats").textContent = stats.photos
        ? t("welcome.stats", { photos: stats.photos, roots: stats.roots })
        : t("welcome.empty");
      $("welcome-open").hidden = Boolean(stats.photos);
    } catch (err) {
      showError(err);
    }
  }

  // -- detail view ----------------------------------------------------------------------------------

  function field(list, label, ...values) {
    const shown = values.filter((v) => v !== null && v !== undefined && v !== "");
    if (!shown.length) return;
    list.append(el("dt", {}, label), el("dd", {}, ...shown));
  }

  function chips(items) {
    return items.length ? el("ul", { className: "tags" }, ...items.map((x) => el("li", { className: "chip static" }, x))) : null;
  }

  async function openDetail(index) {
    const hit = state.hits[index];
    if (!hit) return;
    state.current = index;
    const dialog = $("detail");
    $("detail-img").src = hit.urls.large;
    $("detail-img").alt = bilingual(hit.caption);
    $("detail-title").textContent = bilingual(hit.caption) || `#${hit.photo_id}`;
    $("detail-original").href = hit.urls.original;
    showVideo(hit);
    $("detail-prev").disabled = index <= 0;
    $("detail-next").disabled = index >= state.hits.length - 1;
    const askFeedback = state.mode === "search" && Boolean(state.query);
    $("detail-feedback").hidden = !askFeedback;
    $("detail-feedback-hint").textContent = askFeedback ? t("detail.feedback.hint", { q: state.query }) : "";
    const fields = $("detail-fields");
    fields.replaceChildren();
    if (hit.why && hit.why.length) field(fields, t("detail.why"), el("ul", { className: "why-list" }, ...hit.why.map((w) => el("li", {}, w))));
    if (state.faces.length && state.faces[0].photo_id !== hit.photo_id) {
      state.faces = [];
      $("detail-faces").replaceChildren();
    }
    closeFaceEditor();
    if (!dialog.open) dialog.showModal();
    loadFaces(hit.photo_id, index);
    loadPhotoEvent(hit.photo_id, index);
    try {
      const photo = await api(`/api/photos/${hit.photo_id}`);
      if (state.current !== index) return;
      renderDetail(photo, hit);
    } catch (err) {
      showError(err);
    }
  }

  function renderDetail(photo, hit) {
    const fields = $("detail-fields");
    fields.replaceChildren();
    $("detail-title").textContent = bilingual(photo.caption) || `#${photo.id}`;
    if (hit.why && hit.why.length) {
      field(fields, t("detail.why"), el("ul", { className: "why-list" }, ...hit.why.map((w) => el("li", {}, w))));
    }
    if (!photo.caption.zh && !photo.caption.en) field(fields, t("detail.description"), t("detail.undescribed"));
    field(fields, t("detail.caption.zh"), photo.caption.zh ? el("span", { lang: "zh-CN" }, photo.caption.zh) : null);
    field(fields, t("detail.caption.en"), photo.caption.en ? el("span", { lang: "en" }, photo.caption.en) : null);
    field(fields, t("detail.scene"), bilingual(photo.scene));
    const tags = state.lang === "zh" ? [...photo.tags.zh, ...photo.tags.en] : [...photo.tags.en, ...photo.tags.zh];
    field(fields, t("detail.tags"), chips([...new Set(tags)]));
    const things = (list) => list.map((o) => `${bilingual(o.name)}${o.count > 1 ? ` ×${o.count}` : ""}`);
    field(fields, t("detail.objects"), chips(things(photo.objects)));
    field(fields, t("detail.animals"), chips(things(photo.animals)));
    if (photo.people_count) field(fields, t("detail.people"), `${photo.people_count} · ${bilingual(photo.people)}`.replace(/ · $/, ""));
    if (photo.text.length) field(fields, t("detail.text"), el("pre", { className: "visible-text" }, photo.text.join("\n")));
    if (photo.taken_at) {
      const source = photo.time_source ? ` (${t(`source.${photo.time_source}`)})` : "";
      field(fields, t("detail.taken"), `${shortDate(photo.taken_at)}${photo.tz_offset ? ` ${photo.tz_offset}` : ""}${source}`);
    }
    if (photo.place) field(fields, t("detail.place"), bilingual(photo.place.label));
    if (photo.camera) {
      const cam = [photo.camera.make, photo.camera.model].filter(Boolean).join(" ");
      field(fields, t("detail.camera"), [cam, photo.camera.lens].filter(Boolean).join(" · "));
    }
    if (photo.media === "video") renderVideoDetail(photo, hit, fields);
    if (photo.urls.motion) field(fields, t("detail.motion"), motionButton(photo));
    const file = photo.files.find((f) => f.status === "ok") || photo.files[0];
    if (file) field(fields, t("detail.file"), el("code", {}, file.path));
  }

  // a live photo's video beside the still, or a motion photo's inside it: played on request, in place
  function motionButton(photo) {
    const button = el("button", { type: "button", className: "motion-play" }, t("detail.motion.play"));
    button.addEventListener("click", () => {
      const clip = el("video", { className: "motion", controls: true, muted: true, loop: true, playsInline: true });
      clip.src = photo.urls.motion;
      button.replaceWith(clip);
      clip.play().catch(() => {});
    });
    return button;
  }

  function closeDetail() {
    if ($("detail").open) $("detail").close();
  }

  function stepDetail(delta) {
    const next = state.current + delta;
    if (next >= 0 && next < state.hits.length) openDetail(next);
    if (next >= state.hits.length - 3) loadPage(false);
  }

  async function giveFeedback(verdict) {
    const hit = state.hits[state.current];
    if (!hit || !state.query) return;
    const query = state.query;
    try {
      const fb = await api("/api/feedback", { method: "POST", body: { query, photo_id: hit.photo_id, verdict } });
      if (verdict === "bad") {
        removeHit(state.current);
      } else {
        const c = $("grid").querySelector(`.card[data-photo-id="${hit.photo_id}"]`);
        if (c) c.classList.add("confirmed");
      }
      toast(t(verdict === "bad" ? "feedback.bad.done" : "feedback.good.done", { q: query }), {
        label: t("feedback.undo"),
        run: () => undoFeedback(fb.id, verdict === "bad" ? hit : null),
      });
    } catch (err) {
      showError(err);
    }
  }

  function removeHit(index) {
    const hit = state.hits[index];
    state.hits.splice(index, 1);
    if (hit.similarOf) state.extra -= 1; // a near-duplicate opened under its group's hit
    else state.total = Math.max(0, state.total - 1);
    const c = $("grid").querySelector(`.card[data-photo-id="${hit.photo_id}"]`);
    if (c) c.parentElement.remove();
    renumberCards();
    renderStatus();
    if (state.hits.length === 0) return closeDetail();
    openDetail(Math.min(index, state.hits.length - 1));
  }

  async function undoFeedback(id, removedHit) {
    try {
      await api(`/api/feedback/${id}`, { method: "DELETE" });
      toast(t("feedback.undone"));
      if (removedHit && state.mode === "search") loadPage(true);
    } catch (err) {
      showError(err);
    }
  }

  // -- videos: poster cards with their length, a player that starts where the search matched ----------

  // seconds as a player shows them, as the server writes them in `why`: 0:04, 1:15, 1:02:05
  function clock(seconds) {
    const whole = Math.max(0, Math.floor(Number(seconds) || 0));
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  // the moment of a video hit that matched best (the API lists them best first), or null
  function bestMoment(hit) {
    if (!hit || hit.media !== "video" || !Array.isArray(hit.moments) || !hit.moments.length) return null;
    return hit.moments[0];
  }

  // a play sign and the length in a corner of a video's poster
  function videoBadge(hit) {
    if (!hit || hit.media !== "video") return null;
    const length = typeof hit.duration_s === "number" ? clock(Math.round(hit.duration_s)) : "";
    const badge = el(
      "span",
      { className: "video-badge" },
      el("span", { className: "video-play" }, "▶"),
      length ? el("span", { className: "video-duration" }, length) : null,
    );
    badge.title = length ? t("video.badge", { d: length }) : t("video.badge.nolength");
    return badge;
  }

  // "▶ 0:04 WELCOME" under a video hit's poster: where it plays from when opened
  function videoMoment(hit) {
    const moment = bestMoment(hit);
    if (!moment) return null;
    const line = el(
      "span",
      { className: `moment ${moment.kind === "speech" ? "speech" : "frame"}` },
      el("span", { className: "moment-time" }, `▶ ${clock(moment.t)}`),
      moment.text ? el("span", { className: "moment-text" }, moment.text) : null,
    );
    line.title = t("video.play_from", { t: clock(moment.t) });
    return line;
  }

  // a card's reasons, less the one its moment line already shows ("0:04 WELCOME")
  function cardWhy(hit) {
    const why = hit.why || [];
    const moment = bestMoment(hit);
    return moment ? why.filter((w) => !w.startsWith(`${clock(moment.t)} `)) : why;
  }

  // the player and its strip of moments, made once in the detail view's media column
  function videoBox() {
    let box = $("detail-video-box");
    if (box) return box;
    const video = el("video", { id: "detail-video", controls: true, preload: "metadata", playsInline: true });
    const strip = el("ol", { id: "video-strip", className: "video-strip" });
    box = el("div", { id: "detail-video-box", className: "video-box", hidden: true }, video, strip);
    $("detail-frame").after(box);
    video.addEventListener("timeupdate", markPlaying);
    video.addEventListener("seeked", markPlaying);
    $("detail").addEventListener("close", () => stopVideo(true));
    return box;
  }

  function stopVideo(unload) {
    const video = $("detail-video");
    if (!video) return;
    video.pause();
    if (unload && video.getAttribute("src")) {
      video.removeAttribute("src"); // no more bytes fetched for a video no longer shown
      video.removeAttribute("poster");
      delete video.dataset.photoId;
      video.load();
    }
  }

  // openDetail's part for every item: a video gets the player (poster, start at the best moment), a photo
  // its picture back
  function showVideo(hit) {
    const isVideo = hit.media === "video";
    $("detail-frame").hidden = isVideo;
    if (!isVideo) {
      if ($("detail-video-box")) {
        stopVideo(true);
        $("detail-video-box").hidden = true;
      }
      return;
    }
    const box = videoBox();
    const video = $("detail-video");
    box.hidden = false;
    if (video.dataset.photoId === String(hit.photo_id) && video.getAttribute("src")) return; // already playing
    const moment = bestMoment(hit);
    const start = moment ? moment.t : 0;
    $("video-strip").replaceChildren();
    video.dataset.photoId = String(hit.photo_id);
    video.poster = hit.urls.large;
    // the media fragment starts it there; loadedmetadata makes sure where a browser ignores the fragment
    video.src = start > 0 ? `${hit.urls.original}#t=${start}` : hit.urls.original;
    video.onloadedmetadata = () => {
      video.onloadedmetadata = null;
      if (Math.abs(video.currentTime - start) > 0.25) video.currentTime = start;
      if (moment) video.play().catch(() => {}); // opened from a search: play from the moment that matched
    };
  }

  function seekVideo(seconds) {
    const video = $("detail-video");
    if (!video) return;
    video.currentTime = seconds;
    video.play().catch(() => {});
  }

  // the strip under the player (keyframes, and what was said where the search matched it) and the transcript
  function renderVideoDetail(photo, hit, fields) {
    const info = photo.video;
    if (!info) return;
    const same = hit && hit.photo_id === photo.id;
    const box = $("detail-video-box");
    if (!box || box.hidden || $("detail-video").dataset.photoId !== String(photo.id)) {
      // opened from a list that did not say it is a video (an event's photos)
      showVideo(Object.assign({}, same ? hit : {}, { photo_id: photo.id, media: "video", urls: photo.urls }));
    }
    if (!photo.caption.zh && !photo.caption.en && photo.files.length) {
      $("detail-title").textContent = photo.files[0].path.split(/[\\/]/).pop(); // a clip with no description
    }
    const moments = same && Array.isArray(hit.moments) ? hit.moments : [];
    const strip = $("video-strip");
    strip.setAttribute("aria-label", t("video.strip"));
    strip.replaceChildren(...stripItems(info.keyframes || [], moments));
    const facts = [
      typeof info.duration_s === "number" ? clock(Math.round(info.duration_s)) : "",
      [info.codec, info.audio_codec].filter(Boolean).join(" + "),
      info.fps ? `${Math.round(info.fps * 100) / 100} fps` : "",
      info.rotation ? t("video.rotated", { deg: info.rotation }) : "",
    ];
    field(fields, t("video.info"), facts.filter(Boolean).join(" · "));
    const segments = (info.transcript && info.transcript.segments) || [];
    if (segments.length) field(fields, t("video.transcript"), transcriptList(info.transcript, moments));
    else if (info.transcript) field(fields, t("video.transcript"), t("video.transcript.none"));
    markPlaying();
  }

  function stripItems(keyframes, moments) {
    const near = (a, b) => Math.abs(a - b) < 0.05;
    const items = keyframes.map((f) => ({ t: f.t, frame: f, match: false }));
    for (const m of moments) {
      const frame = m.kind === "frame" ? items.find((i) => i.frame && near(i.t, m.t)) : null;
      if (frame) frame.match = true;
      else items.push({ t: m.t, moment: m, match: true });
    }
    items.sort((a, b) => a.t - b.t);
    return items.map((item) => {
      const time = el("span", { className: "strip-time" }, clock(item.t));
      let button;
      if (item.frame) {
        const words = [bilingual(item.frame.caption), ...(item.frame.text || [])].filter(Boolean).join(" · ");
        const img = el("img", { src: item.frame.thumbnail, alt: words, loading: "lazy", decoding: "async" });
        button = el("button", { type: "button", className: "strip-item frame" }, img, time);
        button.title = words ? `${clock(item.t)} ${words}` : t("video.frame", { t: clock(item.t) });
      } else {
        const said = el("span", { className: "strip-said" }, item.moment.text || "");
        button = el("button", { type: "button", className: `strip-item ${item.moment.kind}` }, said, time);
        button.title = `${clock(item.t)} ${item.moment.text || ""}`.trim();
      }
      if (item.match) {
        button.classList.add("match");
        button.title = `${button.title} — ${t("video.match")}`;
      }
      button.dataset.t = String(item.t);
      button.addEventListener("click", () => seekVideo(item.t));
      return el("li", {}, button);
    });
  }

  function transcriptList(transcript, moments) {
    const said = moments.filter((m) => m.kind === "speech");
    const list = el("ol", { className: "transcript" });
    if (transcript.language) list.lang = transcript.language;
    list.append(
      ...transcript.segments.map((s) => {
        const line = el(
          "button",
          { type: "button", className: "transcript-line" },
          el("span", { className: "strip-time" }, clock(s.start)),
          " ",
          s.text,
        );
        const end = (m) => (typeof m.end === "number" && m.end > m.t ? m.end : m.t + 0.01);
        if (said.some((m) => m.t < s.end && end(m) > s.start)) line.classList.add("match");
        line.dataset.t = String(s.start);
        line.dataset.end = String(s.end);
        line.title = t("video.play_from", { t: clock(s.start) });
        line.addEventListener("click", () => seekVideo(s.start));
        return el("li", {}, line);
      }),
    );
    return list;
  }

  // the keyframe and the line of the transcript being played
  function markPlaying() {
    const video = $("detail-video");
    if (!video) return;
    const now = video.currentTime;
    const frames = [...$("video-strip").querySelectorAll(".strip-item.frame")];
    const current = frames.filter((b) => Number(b.dataset.t) <= now + 0.05).pop();
    for (const b of frames) b.classList.toggle("current", b === current);
    for (const line of $("detail-fields").querySelectorAll(".transcript-line")) {
      line.classList.toggle("current", Number(line.dataset.t) <= now && now < Number(line.dataset.end));
    }
  }


  // -- near-duplicates: one card per group, "+4 similar" opens the others right after it ------------------

  function similarToggle(hit) {
    if (!hit.similar || !hit.similar.count) return null;
    const button = el("button", { type: "button", className: "similar-toggle" }, t("similar.more", { n: hit.similar.count }));
    button.title = t("similar.title");
    button.setAttribute("aria-expanded", "false");
    button.dataset.groupId = String(hit.similar.group_id);
    button.addEventListener("click", () => toggleSimilar(hit, button));
    return button;
  }

  async function toggleSimilar(hit, button) {
    const li = button.parentElement;
    if (button.getAttribute("aria-expanded") === "true") {
      const members = state.hits.filter((h) => h.similarOf === hit.photo_id);
      state.hits = state.hits.filter((h) => h.similarOf !== hit.photo_id);
      state.extra -= members.length;
      for (const m of members) {
        const c = $("grid").querySelector(`.card[data-photo-id="${m.photo_id}"]`);
        if (c) c.parentElement.remove();
      }
      button.setAttribute("aria-expanded", "false");
      button.textContent = t("similar.more", { n: hit.similar.count });
      li.classList.remove("open");
      renumberCards();
      return;
    }
    button.disabled = true;
    try {
      const group = await api(`/api/duplicates/${hit.similar.group_id}`);
      const at = state.hits.indexOf(hit);
      if (at < 0 || !li.isConnected) return; // a new search replaced the results meanwhile
      const byId = new Map(group.photos.map((p) => [p.photo_id, p]));
      const members = hit.similar.photo_ids
        .filter((id) => byId.has(id) && !state.hits.some((h) => h.photo_id === id))
        .map((id) => {
          const p = byId.get(id);
          return {
            photo_id: p.photo_id,
            hash: p.hash,
            taken_at: p.taken_at,
            caption: p.caption,
            width: p.width,
            height: p.height,
            why: [],
            people: [],
            urls: p.urls,
            similarOf: hit.photo_id,
          };
        });
      state.hits.splice(at + 1, 0, ...members);
      state.extra += members.length;
      const cards = members.map((m, i) => card(m, at + 1 + i));
      for (const c of cards) c.classList.add("similar-member");
      li.after(...cards);
      renumberCards();
      button.setAttribute("aria-expanded", "true");
      button.textContent = t("similar.less");
      li.classList.add("open");
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  // -- faces in the detail view ---------------------------------------------------------------------

  async function loadFaces(photoId, index) {
    try {
      const faces = await api(`/api/photos/${photoId}/faces`);
      if (state.current !== index || !$("detail").open) return;
      state.faces = faces;
      renderFaces();
    } catch (err) {
      showError(err);
    }
  }

  function renderFaces() {
    $("detail-faces").replaceChildren(
      ...state.faces.map((f) => {
        const name = f.name || t("face.unknown");
        const box = el("button", { type: "button", className: f.name ? "face-box known" : "face-box" });
        box.style.left = `${f.x * 100}%`;
        box.style.top = `${f.y * 100}%`;
        box.style.width = `${f.w * 100}%`;
        box.style.height = `${f.h * 100}%`;
        box.dataset.faceId = String(f.id);
        box.setAttribute("aria-label", t("face.box", { name }));
        if (state.face && state.face.id === f.id) box.classList.add("editing");
        box.append(el("span", { className: "face-label" }, f.name || "?"));
        box.addEventListener("click", () => openFaceEditor(f));
        return box;
      }),
    );
  }

  function personLabel(p) {
    if (p.name) return p.name;
    return p.is_me ? t("people.me") : t("people.someone", { id: p.id });
  }

  async function fetchPeople(all) {
    const params = new URLSearchParams({ min_faces: "1" });
    if (all) params.set("all", "true");
    return api(`/api/people?${params}`);
  }

  async function openFaceEditor(face) {
    state.face = face;
    renderFaces();
    $("face-editor").hidden = false;
    $("face-editor-img").src = face.crop;
    $("face-editor-title").textContent = face.name ? t("face.who", { name: face.name }) : t("face.unknown");
    $("face-name").value = face.name || "";
    $("face-name").focus();
    try {
      const people = await fetchPeople(false);
      if (state.face !== face) return;
      state.people = people;
      $("people-names").replaceChildren(...people.flatMap((p) => p.names.map((n) => el("option", { value: n }))));
      $("face-person").replaceChildren(
        el("option", { value: "" }, t("face.other.choose")),
        ...people
          .filter((p) => p.id !== face.person_id)
          .map((p) => el("option", { value: String(p.id) }, `${personLabel(p)} (${p.photos})`)),
      );
    } catch (err) {
      showError(err);
    }
  }

  function closeFaceEditor() {
    state.face = null;
    $("face-editor").hidden = true;
    for (const box of $("detail-faces").querySelectorAll(".face-box.editing")) box.classList.remove("editing");
  }

  async function afterFaceChange(person) {
    toast(t("face.moved", { name: personLabel(person) }));
    closeFaceEditor();
    const hit = state.hits[state.current];
    if (hit) await loadFaces(hit.photo_id, state.current);
  }

  const fold = (name) => name.replace(/\s+/g, " ").trim().toLowerCase();

  // "name it": the name of someone known moves the face to them; a new name names the face's unnamed
  // person, or else starts a new person with that name (the face was someone else)
  async function nameFace(event) {
    event.preventDefault();
    const face = state.face;
    const name = $("face-name").value.replace(/\s+/g, " ").trim();
    if (!face || !name) return;
    try {
      const people = await fetchPeople(true); // hidden people's names are taken too
      const known = people.find((p) => p.names.some((n) => fold(n) === fold(name)));
      let person;
      if (known && known.id === face.person_id) return closeFaceEditor();
      if (known) {
        person = await api("/api/faces/move", { method: "POST", body: { face_ids: [face.id], person_id: known.id } });
      } else if (face.person_id && !face.name) {
        person = await api(`/api/people/${face.person_id}/name`, { method: "POST", body: { names: [name] } });
      } else {
        const fresh = await api("/api/faces/move", { method: "POST", body: { face_ids: [face.id], person_id: null } });
        person = await api(`/api/people/${fresh.id}/name`, { method: "POST", body: { names: [name] } });
      }
      await afterFaceChange(person);
    } catch (err) {
      showError(err);
    }
  }

  async function moveFace(personId) {
    const face = state.face;
    if (!face) return;
    try {
      const person = await api("/api/faces/move", { method: "POST", body: { face_ids: [face.id], person_id: personId } });
      await afterFaceChange(person);
    } catch (err) {
      showError(err);
    }
  }

  // -- the People page ------------------------------------------------------------------------------

  async function showPeople() {
    state.mode = "people";
    leaveResults("people-view");
    writeUrl();
    await loadPeople();
  }

  async function loadPeople() {
    const seq = state.seq;
    try {
      const people = await fetchPeople($("people-hidden").checked);
      if (seq !== state.seq || state.mode !== "people") return;
      state.people = people;
      const ids = new Set(people.map((p) => p.id));
      state.selected = new Set([...state.selected].filter((id) => ids.has(id)));
      renderPeople();
    } catch (err) {
      showError(err);
    }
  }

  function renderPeopleTools() {
    const n = state.selected.size;
    const merge = $("people-merge");
    merge.textContent = n >= 2 ? t("people.merge.n", { n }) : t("people.merge");
    merge.disabled = n < 2;
    $("people-clear").hidden = n === 0;
  }

  function renderPeople() {
    const people = state.people;
    $("people-status").textContent = people.length
      ? t(people.length === 1 ? "people.count.one" : "people.count", { n: people.length })
      : t("people.none");
    $("people-grid").replaceChildren(...people.map(personCard));
    renderPeopleTools();
  }

  function personCard(p) {
    const label = personLabel(p);
    const classes = ["person-card"];
    if (p.is_me) classes.push("is-me");
    if (p.hidden) classes.push("is-hidden");
    if (state.selected.has(p.id)) classes.push("selected");
    const card = el("li", { className: classes.join(" ") });
    card.dataset.personId = String(p.id);

    const pick = el("input", { type: "checkbox", className: "person-select", checked: state.selected.has(p.id) });
    pick.setAttribute("aria-label", t("people.select", { name: label }));
    pick.addEventListener("change", () => {
      if (pick.checked) state.selected.add(p.id);
      else state.selected.delete(p.id);
      card.classList.toggle("selected", pick.checked);
      renderPeopleTools();
    });

    const face = el(
      "button",
      { type: "button", className: "person-face" },
      p.cover ? el("img", { className: "face-circle", src: p.cover.crop, alt: label, width: 112, height: 112 }) : el("span", { className: "face-circle" }),
    );
    face.title = p.name || p.is_me ? t("people.search", { name: label }) : t("people.name.add");
    face.addEventListener("click", () => (p.name || p.is_me ? search(p.name || t("people.me.query")) : startRename(card, p)));

    const name = el("button", { type: "button", className: p.name ? "person-name" : "person-name unnamed" }, p.name || t("people.name.add"));
    name.title = p.names.length > 1 ? p.names.join(", ") : t("people.name.edit");
    name.addEventListener("click", () => startRename(card, p));

    const count = el("span", { className: "person-count muted" }, t(p.photos === 1 ? "people.photos.one" : "people.photos", { n: p.photos }));
    const action = (key, run, cls) => {
      const b = el("button", { type: "button", className: cls || "ghost" }, t(key));
      b.addEventListener("click", run);
      return b;
    };
    if (p.is_me) card.append(el("span", { className: "me-badge" }, t("people.me")));
    card.append(
      pick,
      face,
      el("span", { className: "person-name-wrap" }, name),
      count,
      el(
        "span",
        { className: "person-actions" },
        action(p.is_me ? "people.me.unset" : "people.me.set", () => setMe(p.is_me ? null : p.id), "ghost me-toggle"),
        action(p.hidden ? "people.show" : "people.hide", () => hidePerson(p, !p.hidden), "ghost hide-toggle"),
        action("people.forget", () => forgetPerson(p), "ghost forget"),
      ),
    );
    return card;
  }

  // the name edited in place: Enter or leaving the field saves, Escape cancels; aliases after commas
  function startRename(card, p) {
    const wrap = card.querySelector(".person-name-wrap");
    const input = el("input", { type: "text", className: "person-name-input", value: p.names.join(", "), maxLength: 400 });
    input.setAttribute("aria-label", t("people.name.label"));
    input.placeholder = t("face.name.placeholder");
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const names = input.value.split(/[,，、;；]/).map((n) => n.replace(/\s+/g, " ").trim()).filter(Boolean);
      if (!save || !names.length || names.join(", ") === p.names.join(", ")) return renderPeople();
      try {
        const person = await api(`/api/people/${p.id}/name`, { method: "POST", body: { names } });
        const i = state.people.findIndex((x) => x.id === p.id);
        if (i >= 0) state.people[i] = person;
        toast(t("people.named", { name: personLabel(person) }));
      } catch (err) {
        showError(err);
      }
      if (state.mode === "people") renderPeople();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        finish(true);
      } else if (e.key === "Escape") {
        e.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    wrap.replaceChildren(input);
    input.focus();
    input.select();
  }

  async function peopleAction(run) {
    try {
      const message = await run();
      await loadPeople();
      if (message) toast(message);
    } catch (err) {
      showError(err);
    }
  }

  // merged into the first picked person with a name (else the first picked, in the list's order)
  function mergeSelected() {
    const picked = state.people.filter((p) => state.selected.has(p.id));
    if (picked.length < 2) return;
    const target = picked.find((p) => p.name) || picked[0];
    const sources = picked.filter((p) => p.id !== target.id).map((p) => p.id);
    return peopleAction(async () => {
      const person = await api("/api/people/merge", { method: "POST", body: { target: target.id, sources } });
      state.selected = new Set();
      return t("people.merged", { n: picked.length, name: personLabel(person) });
    });
  }

  function setMe(personId) {
    return peopleAction(async () => {
      await api("/api/people/me", { method: "POST", body: { person_id: personId } });
    });
  }

  function hidePerson(p, hidden) {
    return peopleAction(async () => {
      await api(`/api/people/${p.id}/hide`, { method: "POST", body: { hidden } });
      return hidden ? t("people.hidden", { name: personLabel(p) }) : null;
    });
  }

  function forgetPerson(p) {
    if (!window.confirm(t("people.forget.confirm", { name: personLabel(p), n: p.faces }))) return;
    return peopleAction(async () => {
      const gone = await api(`/api/people/${p.id}`, { method: "DELETE" });
      state.selected.delete(p.id);
      return t("people.forgotten", { n: gone.faces_deleted });
    });
  }

  // -- trips and events -----------------------------------------------------------------------------

  function day(value) {
    return (value || "").slice(0, 10);
  }

  function dateRange(start, end) {
    return day(start) === day(end) ? day(start) : `${day(start)} – ${day(end)}`;
  }

  // an event's span: "2024-10-05 11:41–14:43", or across midnight "2024-10-01 18:30 – 10-02 00:20"
  function timeRange(start, end) {
    const clock = (v) => (v || "").slice(11, 16);
    if (day(start) === day(end)) return `${day(start)} ${clock(start)}–${clock(end)}`;
    return `${day(start)} ${clock(start)} – ${day(end).slice(5)} ${clock(end)}`;
  }

  function placesLine(places) {
    const zh = state.lang === "zh";
    const sep = zh ? "、" : ", ";
    const cities = (zh ? places.cities_zh : places.cities_en) || [];
    const countries = (zh ? places.countries_zh : places.countries_en) || [];
    const parts = [cities.join(sep), countries.filter((c) => !cities.includes(c)).join(sep)].filter(Boolean);
    return parts.join(" · ");
  }

  function photosCount(n) {
    return t(n === 1 ? "photos.count.one" : "photos.count", { n });
  }

  function dayNumber(trip, event) {
    const ms = Date.parse(`${day(event.start_local)}T00:00:00Z`) - Date.parse(`${day(trip.start_local)}T00:00:00Z`);
    return Math.round(ms / 86400000) + 1;
  }

  // Leave the search results for a browse page: the People or the Trips view.
  function leaveResults(view) {
    state.seq++;
    state.hits = [];
    state.query = "";
    $("q").value = "";
    $("grid").replaceChildren();
    $("results-head").hidden = true;
    $("more").hidden = true;
    $("welcome").hidden = true;
    $("people-view").hidden = view !== "people-view";
    $("trips-view").hidden = view !== "trips-view";
  }

  async function showTrips() {
    state.mode = "trips";
    state.trip = null;
    leaveResults("trips-view");
    writeUrl();
    renderTrips();
    const seq = state.seq;
    try {
      const trips = await api("/api/trips");
      if (seq !== state.seq) return;
      state.trips = trips;
      renderTrips();
    } catch (err) {
      showError(err);
    }
  }

  async function showTrip(tripId) {
    state.mode = "trip";
    leaveResults("trips-view");
    if (!state.trip || state.trip.id !== tripId) state.trip = { id: tripId, events: null };
    writeUrl();
    renderTrips();
    const seq = state.seq;
    try {
      const trip = await api(`/api/trips/${tripId}`);
      if (seq !== state.seq) return;
      state.trip = trip;
      renderTrips();
    } catch (err) {
      showError(err);
    }
  }

  function renderTrips() {
    const back = $("trips-back");
    const grid = $("trips-grid");
    if (state.mode === "trips") {
      back.hidden = true;
      $("trips-title").textContent = t("trips.title");
      $("trips-status").textContent = state.trips.length
        ? t(state.trips.length === 1 ? "trips.count.one" : "trips.count", { n: state.trips.length })
        : t("trips.none");
      $("trips-sub").textContent = t("trips.hint");
      grid.className = "trips-grid";
      grid.replaceChildren(...state.trips.map(tripCard));
      return;
    }
    const trip = state.trip;
    back.hidden = false;
    back.textContent = t("trips.back");
    if (!trip || !trip.events) {
      $("trips-title").textContent = t("trips.title");
      $("trips-status").textContent = "";
      $("trips-sub").textContent = "";
      grid.replaceChildren();
      return;
    }
    $("trips-title").textContent = bilingual(trip.title);
    const days = t(trip.days === 1 ? "trips.days.one" : "trips.days", { n: trip.days });
    const events = t(trip.events.length === 1 ? "trips.events.one" : "trips.events", { n: trip.events.length });
    $("trips-status").textContent = `${dateRange(trip.start_local, trip.end_local)} · ${days} · ${events} · ${photosCount(trip.photos)}`;
    $("trips-sub").textContent = placesLine(trip.places);
    grid.className = "trips-grid events";
    grid.replaceChildren(...trip.events.map((e) => eventCard(e, trip)));
  }

  function coverImage(item, label) {
    return el(
      "span",
      { className: "thumb" },
      item.cover ? el("img", { src: item.cover, alt: label, loading: "lazy", decoding: "async" }) : null,
    );
  }

  function tripCard(trip) {
    const title = bilingual(trip.title);
    const days = t(trip.days === 1 ? "trips.days.one" : "trips.days", { n: trip.days });
    const button = el(
      "button",
      { type: "button", className: "trip-card" },
      coverImage(trip, title),
      el(
        "span",
        { className: "trip-info" },
        el("span", { className: "trip-title" }, title),
        el("span", { className: "trip-dates muted" }, dateRange(trip.start_local, trip.end_local)),
        el("span", { className: "trip-places muted" }, placesLine(trip.places)),
        el("span", { className: "trip-count" }, `${photosCount(trip.photos)} · ${days}`),
      ),
    );
    button.dataset.tripId = String(trip.id);
    button.title = t("trips.open", { title });
    button.addEventListener("click", () => showTrip(trip.id));
    return el("li", {}, button);
  }

  function eventCard(event, trip) {
    const title = bilingual(event.title);
    const button = el(
      "button",
      { type: "button", className: "trip-card event-card" },
      coverImage(event, title),
      el(
        "span",
        { className: "trip-info" },
        el("span", { className: "event-day" }, t("trips.day", { n: dayNumber(trip, event) })),
        el("span", { className: "trip-title" }, title),
        el("span", { className: "trip-dates muted" }, timeRange(event.start_local, event.end_local)),
        el("span", { className: "trip-count" }, photosCount(event.photos)),
      ),
    );
    button.dataset.eventId = String(event.id);
    button.title = t("trips.open", { title });
    button.addEventListener("click", () => showEvent(event.id));
    return el("li", {}, button);
  }

  // an event's photos fill the results grid, as a search would, with a way back to its trip
  async function showEvent(eventId) {
    state.mode = "event";
    state.eventId = eventId;
    state.event = null;
    state.similarTo = null;
    state.query = "";
    $("q").value = "";
    writeUrl();
    await loadPage(true);
  }

  // one page of GET /api/events/{id}, in the shape loadPage takes from a search
  function eventPage(data) {
    state.event = data;
    if (data.trip_id && !(state.trip && state.trip.id === data.trip_id && state.trip.title)) {
      const seq = state.seq;
      api(`/api/trips/${data.trip_id}`).then((trip) => {
        if (seq !== state.seq) return;
        state.trip = trip; // the back button names it
        renderEventStatus();
      }, showError);
    }
    const hits = data.photo_list.map((p) => ({
      photo_id: p.photo_id,
      hash: p.hash,
      taken_at: p.taken_at,
      caption: p.caption,
      width: p.width,
      height: p.height,
      why: [],
      people: [],
      urls: p.urls,
      media: p.media,
      duration_s: p.duration_s,
    }));
    return { total: data.photos, language: state.lang, understood: [], notes: [], hits };
  }

  function renderEventStatus() {
    const event = state.event;
    if (!event) return;
    const trip = state.trip && state.trip.id === event.trip_id && state.trip.title ? state.trip : null;
    $("results-back").textContent = trip ? t("trips.back.trip", { title: bilingual(trip.title) }) : t("trips.back");
    $("status").textContent = `${bilingual(event.title) || t("event.title")} · ${photosCount(event.photos)}`;
    const chips = [timeRange(event.start_local, event.end_local), placesLine(event.places)].filter(Boolean);
    $("understood").replaceChildren(...chips.map((c) => el("li", { className: "chip static" }, c)));
    $("notes").replaceChildren();
  }

  // "In event: …" on the detail view opens the photos of the event the photo belongs to
  async function loadPhotoEvent(photoId, index) {
    const link = $("detail-event");
    link.hidden = true;
    try {
      const event = await api(`/api/photos/${photoId}/event`);
      if (state.current !== index || !$("detail").open || !event) return;
      link.textContent = t("detail.event", { title: bilingual(event.title) || t("event.title") });
      link.href = `/?event=${event.id}`;
      link.dataset.eventId = String(event.id);
      link.hidden = false;
    } catch (err) {
      showError(err);
    }
  }

  // -- library panel --------------------------------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "?";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  async function refreshLibrary() {
    try {
      const [stats, roots, jobs] = await Promise.all([api("/api/stats"), api("/api/libraries"), api("/api/jobs")]);
      $("library-stats").textContent = t("library.stats", {
        photos: stats.photos,
        files: stats.files,
        errors: stats.files_error,
      });
      $("roots").replaceChildren(
        ...(roots.length
          ? roots.map((r) =>
              el(
                "li",
                {},
                el("code", {}, r.path),
                el("span", { className: "muted" }, t("library.folder.files", { files: r.files, errors: r.errors })),
              ),
            )
          : [el("li", { className: "muted" }, t("library.folders.none"))]),
      );
      renderJobs(jobs);
    } catch (err) {
      showError(err);
    }
  }

  function renderJobs(jobs) {
    const count = (s) => jobs.filter((j) => j.state === s).length;
    const errors = jobs.reduce((n, j) => n + (j.errors || 0), 0);
    $("job-summary").textContent = jobs.length
      ? t("library.index.summary", { running: count("running"), queued: count("queued"), done: count("done"), errors })
      : t("library.index.idle");
    const current = jobs.find((j) => j.state === "running" || j.state === "queued");
    if (state.jobRunning && !current && state.mode === "home") showHome(); // a finished job changes the counts
    state.jobRunning = Boolean(current);
    $("job-current").hidden = !current;
    $("job-cancel").hidden = !current;
    $("job-start").disabled = Boolean(current);
    const badge = $("job-badge");
    badge.hidden = !current;
    if (current) {
      const stage = t(`stage.${current.stage}`) === `stage.${current.stage}` ? current.stage : t(`stage.${current.stage}`);
      $("job-stage").textContent = current.total
        ? t("library.index.progress", { stage: stage || t("job.queued"), done: current.done, total: current.total })
        : t("library.index.progress.nototal", { stage: stage || t("job.queued"), done: current.done });
      const progress = $("job-progress");
      if (current.total) {
        progress.max = current.total;
        progress.value = current.done;
      } else {
        progress.removeAttribute("value"); // indeterminate while the total is unknown (scanning)
      }
      const parts = [];
      // photos an hour: a vision model on a CPU does a few hundred, which "/s" showed as 0.2 or 0.0
      if (current.rate) parts.push(t("library.index.rate", { rate: Math.round(current.rate * 3600).toLocaleString(), eta: duration(current.eta_s) }));
      if (current.errors) parts.push(t("library.index.errors", { n: current.errors }));
      $("job-detail").textContent = parts.join(" · ");
      badge.textContent = current.total ? `${Math.round((100 * current.done) / current.total)}%` : "…";
      $("job-cancel").dataset.jobId = String(current.id);
    }
    $("jobs").replaceChildren(
      ...jobs.slice(0, 5).map((j) => {
        const ok = j.result ? j.result.ok : j.done;
        const line = t("job.line", { id: j.id, state: t(`job.${j.state}`), ok: ok || 0, errors: j.errors || 0 });
        return el("li", { className: `job ${j.state}` }, line, j.message ? el("span", { className: "muted" }, ` — ${j.message}`) : null);
      }),
    );
    schedulePoll();
  }

  function schedulePoll() {
    clearTimeout(state.pollTimer);
    if (state.jobRunning || $("library").open) {
      state.pollTimer = setTimeout(async () => {
        if ($("library").open) return refreshLibrary();
        try {
          renderJobs(await api("/api/jobs"));
        } catch (err) {
          schedulePoll();
        }
      }, POLL_MS);
    }
  }

  function openLibrary() {
    if (!$("library").open) $("library").showModal();
    refreshLibrary();
  }

  async function startJob() {
    try {
      await api("/api/jobs", { method: "POST", body: {} });
      await refreshLibrary();
    } catch (err) {
      showError(err);
    }
  }

  async function cancelJob() {
    const id = $("job-cancel").dataset.jobId;
    if (!id) return;
    try {
      await api(`/api/jobs/${id}/cancel`, { method: "POST", body: {} });
      await refreshLibrary();
    } catch (err) {
      showError(err);
    }
  }

  async function addRoot(event) {
    event.preventDefault();
    const path = $("root-path").value.trim();
    if (!path) return;
    const message = $("add-root-message");
    try {
      const root = await api("/api/libraries", { method: "POST", body: { path } });
      message.textContent = t("library.add.done", { path: root.path });
      $("root-path").value = "";
      await refreshLibrary();
    } catch (err) {
      message.textContent = err.hint ? `${err.message} — ${err.hint}` : err.message;
    }
  }

  // -- token ----------------------------------------------------------------------------------------

  function showLogin() {
    const dialog = $("login");
    if (!dialog.open) dialog.showModal();
  }

  function login(event) {
    event.preventDefault();
    const token = $("login-token").value.trim();
    // the server checks it, sets a cookie and sends the browser back to a clean address
    if (token) location.assign(`/?token=${encodeURIComponent(token)}`);
  }

  // -- keyboard -------------------------------------------------------------------------------------

  function typing(target) {
    return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
  }

  function columns() {
    const cards = [...$("grid").querySelectorAll(".card")];
    if (!cards.length) return 1;
    const top = cards[0].getBoundingClientRect().top;
    const n = cards.findIndex((c) => c.getBoundingClientRect().top > top + 1);
    return n === -1 ? cards.length : n;
  }

  function moveFocus(from, delta) {
    const cards = [...$("grid").querySelectorAll(".card")];
    const next = Math.max(0, Math.min(cards.length - 1, from + delta));
    if (cards[next]) {
      cards[next].focus();
      cards[next].scrollIntoView({ block: "nearest" });
    }
    if (next >= cards.length - columns()) loadPage(false);
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const anyDialog = document.querySelector("dialog[open]");
    if ($("detail").open) {
      if (typing(event.target)) return; // naming a face: the arrows move the caret, not the photo
      if (event.target instanceof HTMLVideoElement) return; // the player's own keys seek
      if (event.key === "ArrowLeft") stepDetail(-1);
      else if (event.key === "ArrowRight") stepDetail(1);
      else return;
      event.preventDefault();
      return;
    }
    if (anyDialog) return;
    if (event.key === "/" && !typing(event.target)) {
      event.preventDefault();
      $("q").focus();
      $("q").select();
      return;
    }
    const target = event.target;
    if (target instanceof HTMLElement && target.classList.contains("card")) {
      const index = Number(target.dataset.index);
      const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() };
      if (event.key in moves) {
        event.preventDefault();
        moveFocus(index, moves[event.key]);
      }
      return;
    }
    if (target === $("q") && event.key === "ArrowDown") {
      const first = $("grid").querySelector(".card");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  }

  // -- start ----------------------------------------------------------------------------------------

  function init() {
    state.lang = pickLanguage();
    applyLanguage();
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      search($("q").value);
    });
    $("lang-button").addEventListener("click", () => {
      state.lang = state.lang === "zh" ? "en" : "zh";
      localStorage.setItem("smartalbum.lang", state.lang);
      applyLanguage();
    });
    for (const id of ["f-after", "f-before", "f-sort"]) {
      $(id).addEventListener("change", () => state.mode === "search" && search(state.query, { ignore: state.ignore }));
    }
    $("f-place").addEventListener("change", () => state.mode === "search" && search(state.query, { ignore: state.ignore }));
    $("f-clear").addEventListener("click", () => {
      for (const id of ["f-after", "f-before", "f-place"]) $(id).value = "";
      $("f-sort").value = "relevance";
      if (state.mode === "search") search(state.query, { ignore: state.ignore });
    });
    $("more").addEventListener("click", () => loadPage(false));
    $("detail-close").addEventListener("click", closeDetail);
    $("detail-prev").addEventListener("click", () => stepDetail(-1));
    $("detail-next").addEventListener("click", () => stepDetail(1));
    $("detail-good").addEventListener("click", () => giveFeedback("good"));
    $("detail-bad").addEventListener("click", () => giveFeedback("bad"));
    $("detail-similar").addEventListener("click", () => {
      const hit = state.hits[state.current];
      closeDetail();
      if (hit) showSimilar(hit.photo_id);
    });
    $("face-name-form").addEventListener("submit", nameFace);
    $("face-editor-close").addEventListener("click", closeFaceEditor);
    $("face-new").addEventListener("click", () => moveFace(null));
    $("face-person").addEventListener("change", () => {
      const id = Number($("face-person").value);
      if (id) moveFace(id);
    });
    $("people-button").addEventListener("click", showPeople);
    $("trips-button").addEventListener("click", showTrips);
    $("trips-back").addEventListener("click", showTrips);
    $("results-back").addEventListener("click", () => {
      const tripId = state.event && state.event.trip_id;
      return tripId ? showTrip(tripId) : showTrips();
    });
    $("detail-event").addEventListener("click", (e) => {
      e.preventDefault();
      const id = Number($("detail-event").dataset.eventId);
      if (!id) return;
      closeDetail();
      showEvent(id);
    });
    $("people-hidden").addEventListener("change", loadPeople);
    $("people-merge").addEventListener("click", mergeSelected);
    $("people-clear").addEventListener("click", () => {
      state.selected = new Set();
      renderPeople();
    });
    $("detail").addEventListener("close", () => {
      const c = $("grid").querySelector(`.card[data-index="${state.current}"]`);
      if (c) c.focus();
    });
    $("detail").addEventListener("click", (e) => e.target === $("detail") && closeDetail());
    $("library-button").addEventListener("click", openLibrary);
    $("welcome-open").addEventListener("click", openLibrary);
    $("library-close").addEventListener("click", () => $("library").close());
    $("library").addEventListener("click", (e) => e.target === $("library") && $("library").close());
    $("job-start").addEventListener("click", startJob);
    $("job-cancel").addEventListener("click", cancelJob);
    $("add-root").addEventListener("submit", addRoot);
    $("login-form").addEventListener("submit", login);
    document.addEventListener("keydown", onKey);
    if ("IntersectionObserver" in window) {
      new IntersectionObserver((entries) => {
        const paged = state.mode === "search" || state.mode === "event";
        if (entries.some((e) => e.isIntersecting) && paged && state.hits.length) loadPage(false);
      }, { rootMargin: "600px" }).observe($("sentinel"));
    }
    readUrl();
    api("/api/jobs").then(renderJobs, () => {});
  }

  init();
})();
