/* Annotator screen.
 *
 * Flow: one task is on screen (`state.current`); a small queue of further
 * tasks is leased ahead (`state.queue`) so the next item appears at once.
 * Answers, skips and undos are sent in the background (optimistic); failures
 * show in #error. Tasks with a request in flight, on screen or queued are
 * always sent in `exclude`, so the server never hands one out twice.
 *
 * Pre-labels: a task may carry the model's `suggestion` ({label, confidence,
 * model_version}); it shows in #suggestion, `a` accepts it, and every answer
 * sends the suggestion that was on screen so the server records whether the
 * annotator took it.
 */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  if (!api.requireToken()) return;

  const QUEUE_TARGET = 2;      // tasks leased ahead of the one on screen
  const SERVER_MAX_HELD = 3;   // leases one user may hold in a project (handout.MAX_LEASES_IN_HAND)
  const HISTORY_MAX = 50;      // answers that can be undone
  const IMAGE_CACHE_MAX = 8;   // object URLs kept
  const LEASE_MARGIN_MS = 5000; // at most; never more than a quarter of the lease
  const SUBMIT_RETRIES = 3;
  const KEEP = { keepalive: true }; // background writes finish even if the page is left

  const match = /^\/label\/([^/]+)\/?$/.exec(location.pathname);
  const projectId = match ? decodeURIComponent(match[1]) : null;
  const P = "/api/projects/" + encodeURIComponent(projectId);

  /* An "entry" wraps a task: {task, expiresAt (local ms|null), margin (ms), ready
   * (Promise|null, set while an undo is being sent), prevLabel (label to preselect
   * after undo)}. */
  const state = {
    project: null,
    widget: window.AssayKinds.get("single"), // the project's label kind in the browser (kinds.js)
    multi: false,             // widget.multiple: several classes make one answer
    classes: [],              // [{name, description}]
    current: null,            // entry on screen, or null
    queue: [],                // entries leased ahead, next first
    inflight: new Map(),      // task id -> number of requests in flight for it
    dropped: new Map(),       // task id -> local ms until which it stays excluded (lease ran out here)
    history: [],              // answer records {entry, label, promise, answer}
    selected: new Set(),      // multi: chosen class names
    lastFinishedId: null,
    fetching: false,
    exhausted: false,         // server said "no task" (given our exclusions)
    fetchFailures: 0,
    heldBack: false,          // tasks/next said "you hold too many": retry when a write lands
    dupStreak: 0,
    pausedUntil: 0,           // no task requests before this (backoff / waiting on leases)
    retryTimer: null,
    submitted: 0,
    pending: 0,
    examInflight: 0,          // exam answers in flight: the next question comes after they land
    feedback: null,           // the teaching item answered, its feedback on screen until Continue
    editor: null,             // a widget's editor on the item (widget.mount; see kinds.js), or null
  };

  const $ = function (id) { return document.getElementById(id); };
  let ui = null;

  /* ---------- small helpers ---------- */

  /** Say something in the status line; returns its number (see settleStatus). */
  function setStatus(text) {
    state.statusGen = (state.statusGen || 0) + 1;
    ui.status.textContent = text;
    return state.statusGen;
  }

  /** A background request's outcome: shown only if nothing newer was said since
   * it started ("saved" must not overwrite what a later key press reported). */
  function settleStatus(gen, text) { if (state.statusGen === gen) setStatus(text); }

  /** Background writes not yet settled, mirrored on <body data-pending>. */
  function setPending(delta) {
    state.pending += delta;
    document.body.dataset.pending = String(state.pending);
  }

  function inflightAdd(id) { state.inflight.set(id, (state.inflight.get(id) || 0) + 1); }
  function inflightDel(id) {
    const n = (state.inflight.get(id) || 1) - 1;
    if (n > 0) state.inflight.set(id, n); else state.inflight.delete(id);
  }

  function excludedIds() {
    const ids = new Set(state.inflight.keys());
    const now = Date.now();
    state.dropped.forEach(function (until, id) { if (until > now) ids.add(id); else state.dropped.delete(id); });
    if (state.current) ids.add(state.current.task.id);
    state.queue.forEach(function (e) { ids.add(e.task.id); });
    return ids;
  }

  /** Lease end on the local clock, using the server's Date header to cancel clock skew. */
  function localExpiry(task, res) {
    // The Date header is whole seconds (truncated): assume the late end, i.e. expire early.
    const serverNow = Date.parse(res.headers.get("Date") || "") + 1000;
    let s = task.lease_expires_at;
    if (s === null || s === undefined || isNaN(serverNow)) return null;
    let end;
    if (typeof s === "number") end = s < 1e12 ? s * 1000 : s;
    else {
      s = String(s);
      if (!/(Z|[+-]\d\d:?\d\d)$/i.test(s)) s += "Z"; // naive timestamps are UTC
      end = Date.parse(s);
    }
    const ttl = end - serverNow;
    return isNaN(ttl) || ttl <= 0 ? null : Date.now() + ttl;
  }

  function makeEntry(task, res) {
    const expiresAt = res ? localExpiry(task, res) : null;
    const margin = expiresAt === null ? 0 : Math.min(LEASE_MARGIN_MS, (expiresAt - Date.now()) / 4);
    return { task: task, expiresAt: expiresAt, margin: margin, ready: null, prevLabel: null };
  }

  function isStale(entry) {
    return !entry.ready && entry.expiresAt !== null && Date.now() > entry.expiresAt - entry.margin;
  }

  /** Drop queued tasks whose lease is (nearly) over, e.g. after the tab sat idle. Until
   * the lease has really ended they stay excluded, so the server cannot hand the same
   * nearly-expired lease straight back. */
  function dropStale() {
    state.queue = state.queue.filter(function (e) {
      if (!isStale(e)) return true;
      state.dropped.set(e.task.id, e.expiresAt + 1000);
      return false;
    });
  }

  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function retryable(err) {
    return err && (err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504);
  }

  async function withRetry(fn) {
    for (let attempt = 0; ; attempt++) {
      try { return await fn(); } catch (err) {
        if (attempt >= SUBMIT_RETRIES || !retryable(err)) throw err;
        await wait(500 * Math.pow(2, attempt));
      }
    }
  }

  /* ---------- images: fetched with the auth header, kept as object URLs ---------- */

  const images = new Map(); // item id -> {promise, url}

  function imageFor(item) {
    let rec = images.get(item.id);
    if (rec) { images.delete(item.id); images.set(item.id, rec); return rec.promise; } // LRU bump
    rec = { url: null, promise: null };
    rec.promise = api.blob(item.content_url).then(function (b) {
      rec.url = URL.createObjectURL(b);
      const probe = new Image(); // decode ahead so showing it is instant
      probe.src = rec.url;
      if (probe.decode) probe.decode().catch(function () {});
      return rec.url;
    });
    rec.promise.catch(function () { if (images.get(item.id) === rec) images.delete(item.id); });
    images.set(item.id, rec);
    trimImages();
    return rec.promise;
  }

  function trimImages() {
    if (images.size <= IMAGE_CACHE_MAX) return;
    const keep = new Set();
    const itemId = function (e) { return (e.task.item || {}).id; };
    if (state.current) keep.add(itemId(state.current));
    state.queue.forEach(function (e) { keep.add(itemId(e)); });
    state.history.slice(-2).forEach(function (r) { keep.add(itemId(r.entry)); });
    for (const [id, rec] of images) {
      if (images.size <= IMAGE_CACHE_MAX) break;
      if (keep.has(id) || !rec.url) continue;
      URL.revokeObjectURL(rec.url);
      images.delete(id);
    }
  }

  function preload(entry) {
    const item = entry.task.item || {};
    if (item.kind === "image" && item.content_url) imageFor(item).catch(function () {});
  }

  /* ---------- fetching tasks ---------- */

  let fetchErrorText = null;

  /** Keep the queue topped up: one tasks/next request at a time. */
  async function fill() {
    if (state.fetching || state.exhausted || !projectId || Date.now() < state.pausedUntil) return;
    dropStale();
    if (state.queue.length >= QUEUE_TARGET) return;
    if (state.examInflight > 0 || (state.current && state.current.task.exam)) {
      // Qualification exam: one question at a time (the server hands the same one out
      // until it is answered), so no prefetch; ask again when the answer lands (see send).
      state.heldBack = true;
      return;
    }
    if (state.inflight.size > 0 && excludedIds().size >= SERVER_MAX_HELD) {
      // An answer/skip in flight still holds its lease: the server would refuse (409).
      state.heldBack = true; // send() calls fill() again when it lands
      return;
    }
    state.fetching = true;
    let entry = null;
    try {
      const res = await api.raw("POST", P + "/tasks/next", { body: { exclude: Array.from(excludedIds()) } });
      const data = await res.json();
      if (data.task) entry = makeEntry(data.task, res);
      else if (!waitForDropped()) state.exhausted = true;
    } catch (err) {
      state.fetching = false;
      onFetchError(err);
      return;
    }
    state.fetching = false;
    state.fetchFailures = 0;
    if (fetchErrorText && ui.error.textContent === fetchErrorText) api.clearError();
    fetchErrorText = null;

    if (entry) {
      if (excludedIds().has(entry.task.id)) {
        // Came back through an undo meanwhile, or the server ignored `exclude`.
        if (++state.dupStreak > 3) {
          api.showError("The server keeps handing out a task that is already open here; reload the page.");
          return;
        }
      } else {
        state.dupStreak = 0;
        state.queue.push(entry);
        preload(entry);
      }
    }
    if (!state.current && state.project) showNext();
    fill();
  }

  /** "No task" while some tasks are held back by `dropped` is not the end: their leases
   * run out soon and they can be leased afresh. Ask again then; true if scheduled. */
  function waitForDropped() {
    excludedIds(); // prunes entries that have run out
    if (state.dropped.size === 0) return false;
    const soonest = Math.min.apply(null, Array.from(state.dropped.values()));
    pause(soonest - Date.now() + 50);
    return true;
  }

  /** Hold task requests for `ms`, then try again. */
  function pause(ms) {
    ms = Math.max(50, ms);
    state.pausedUntil = Date.now() + ms;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(function () { state.pausedUntil = 0; fill(); }, ms);
  }

  /** The user asked to look again (button, tab shown): drop any wait. */
  function resume() {
    clearTimeout(state.retryTimer);
    state.pausedUntil = 0;
    state.exhausted = false;
  }

  /** Paused, or refused after failing the qualification exam: nothing is taken until an admin acts. */
  function isPaused(err) {
    return !!err && err.status === 403 && (err.code === "paused" || err.code === "exam_failed");
  }

  /** Paused in this project: the server takes no answer, skip or undo until an
   * admin lifts the pause, so say so at once (the held tasks come back from
   * tasks/next after "Check again", as long as their leases live). */
  function enterPaused(err) {
    err.shown = true;
    state.pausedMsg = api.messageOf(err);
    state.exhausted = true;
    state.queue = [];
    ui.pausedTitle.textContent = err.code === "exam_failed" ? "Qualification not passed" : "Paused";
    ui.pausedReason.textContent = state.pausedMsg;
    renderEmpty();
  }

  function onFetchError(err) {
    if (err && err.status === 401) return; // redirecting to /login
    if (isPaused(err)) { enterPaused(err); return; }
    if (err && err.status === 409 && err.details && Array.isArray(err.details.held)) {
      // The server caps the leases one user holds (current + queue = the cap); an answer
      // still in flight holds its lease until it lands. Not an error: ask again when a
      // write settles (see send), or after a short backoff.
      state.heldBack = true;
      pause(Math.min(5000, 200 * Math.pow(2, state.fetchFailures++)));
      return;
    }
    if (retryable(err)) {
      const delay = Math.min(15000, 1000 * Math.pow(2, state.fetchFailures++));
      fetchErrorText = "Could not load the next item: " + api.messageOf(err) + " (retrying…)";
      if (!state.current || state.fetchFailures > 1) api.showError(fetchErrorText);
      pause(delay);
    } else {
      api.showError(err, "Could not load the next item");
    }
    if (!state.current) ui.loading.textContent = "Could not load a task.";
  }

  /* ---------- rendering ---------- */

  /** The key of each class (index -> one character or null), never
   * ambiguous: a class's own key (set in its project's schema; the server
   * checked it is unique and not one of this screen's keys) first, then a
   * class named like a digit key gets that key (classes 0…9 are keys 0…9),
   * the others take the free digits 1–9, then 0, in order. */
  function classKeys(classes) {
    const keys = classes.map(function () { return null; });
    const taken = new Set();
    classes.forEach(function (c, i) {
      const own = c.key ? String(c.key) : "";
      if (own.length === 1 && !taken.has(own.toLowerCase())) { keys[i] = own; taken.add(own.toLowerCase()); }
    });
    classes.forEach(function (c, i) {
      const name = String(c.name).trim();
      if (keys[i] === null && /^[0-9]$/.test(name) && !taken.has(name)) { keys[i] = name; taken.add(name); }
    });
    const free = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"].filter(function (k) { return !taken.has(k); });
    classes.forEach(function (c, i) { if (keys[i] === null && free.length) keys[i] = free.shift(); });
    return keys;
  }

  function renderClasses() {
    ui.classes.replaceChildren();
    state.keys = classKeys(state.classes);
    state.byKey = new Map();
    state.keys.forEach(function (k, i) { if (k !== null) state.byKey.set(k.toLowerCase(), i); });
    state.classes.forEach(function (c, i) {
      const key = state.keys[i];
      const btn = el("button", {
        type: "button",
        class: "class-btn",
        "data-class": c.name,
        "data-key": key,
        "data-description": c.description || null,
        title: c.description || null,
        "aria-pressed": state.multi ? "false" : null,
        "aria-keyshortcuts": key,
      }, key !== null ? el("kbd", { text: key }) : el("kbd", { class: "nokey", text: "·" }),
        el("span", { class: "class-name", text: c.name }));
      // Keep focus where it was on mouse clicks, so Enter/Space never re-fire a class.
      btn.addEventListener("mousedown", function (e) { e.preventDefault(); });
      btn.addEventListener("click", function () { choose(i); });
      ui.classes.append(btn);
    });
    const own = state.classes.map(function (c, i) { return state.keys[i] !== null ? state.keys[i] + " " + c.name : null; })
      .filter(Boolean);
    ui.keysHelp.textContent = (own.length ? "Class keys: " + own.join(", ") + ". " : "") + state.widget.keysHelp;
  }

  /** The model's pre-label of `entry`, if it names only known classes:
   * {label (what is sent back: a name; multi: a list), names, confidence}, else null. */
  function suggestionOf(entry) {
    const s = entry && entry.task && entry.task.suggestion;
    if (!s || s.label === null || s.label === undefined) return null;
    if (state.widget.mount) { // an editor's kind: shapes or spans the editor pre-draws
      return Array.isArray(s.label) ? { label: s.label, names: [], confidence: Number(s.confidence), drawn: true } : null;
    }
    const names = state.widget.names(s.label);
    if (!names) return null;
    const known = new Set(state.classes.map(function (c) { return c.name; }));
    if (!names.every(function (n) { return typeof n === "string" && known.has(n); })) return null;
    return { label: state.widget.label(names), names: names, confidence: Number(s.confidence) };
  }

  function percent(p) {
    if (!isFinite(p)) return "";
    const n = Math.round(p * 100);
    return (p < 1 ? Math.min(n, 99) : n) + "%"; // never "100%" for a model that is not sure
  }

  function renderSuggestion(entry) {
    const s = suggestionOf(entry);
    ui.suggestion.hidden = !s;
    if (!s) {
      delete ui.suggestion.dataset.label;
      delete ui.suggestion.dataset.confidence;
      return;
    }
    ui.suggestionLabel.textContent = s.drawn ? s.label.length + " pre-drawn " + (s.label.length === 1 ? "mark" : "marks")
      : s.names.length ? s.names.join(", ") : "none of the classes";
    ui.suggestionConfidence.textContent = percent(s.confidence);
    ui.suggestion.dataset.label = s.names.join("|");
    ui.suggestion.dataset.confidence = String(s.confidence);
    ui.suggestionHint.textContent = state.widget.suggestionHint;
  }

  function updateControls() {
    const on = !!state.current;
    const prev = on && state.current.prevLabel;
    const sugg = on ? suggestionOf(state.current) : null;
    ui.classes.querySelectorAll(".class-btn").forEach(function (btn) {
      const name = btn.dataset.class;
      btn.disabled = !on;
      const suggested = !!sugg && sugg.names.indexOf(name) >= 0;
      btn.classList.toggle("is-suggested", suggested);
      if (suggested) btn.title = (btn.dataset.description ? btn.dataset.description + " — " : "") + "the model's suggestion";
      else btn.title = btn.dataset.description || "";
      if (state.multi) {
        const sel = on && state.selected.has(name);
        btn.classList.toggle("is-selected", sel);
        btn.setAttribute("aria-pressed", sel ? "true" : "false");
      } else {
        btn.classList.toggle("was-selected", !!prev && prev === name);
      }
    });
    ui.submit.disabled = !on;
    ui.accept.disabled = !sugg;
    ui.skip.disabled = !on || !!(state.current && (state.current.task.exam || state.current.task.teach));
    if (state.feedback) ui.classes.querySelectorAll(".class-btn").forEach(function (b) { b.disabled = true; });
    if (state.feedback) ui.submit.disabled = ui.accept.disabled = ui.skip.disabled = ui.undo.disabled = true;
    ui.undo.disabled = state.history.length === 0;
  }

  function render(entry) {
    state.current = entry;
    const item = entry.task.item || {};
    state.selected = new Set(state.multi && Array.isArray(entry.prevLabel) ? entry.prevLabel : []);
    ui.loading.hidden = true;
    ui.done.hidden = true;
    ui.paused.hidden = true;
    const exam = entry.task.exam;
    ui.exam.hidden = !exam;
    ui.exam.textContent = exam ? "Qualification: question " + exam.question + " of " + exam.of : "";
    ui.teach.hidden = !entry.task.teach; // practice: the feedback comes with the answer
    ui.teachCard.hidden = true;
    ui.item.hidden = false;
    ui.item.dataset.taskId = entry.task.id;
    ui.item.dataset.itemId = item.id;
    ui.item.dataset.kind = item.kind || "";

    unmountEditor();
    ui.editorHost.hidden = !state.widget.mount;
    if (state.widget.mount) {
      ui.text.hidden = ui.frame.hidden = true;
      ui.text.textContent = "";
      ui.image.removeAttribute("src");
      mountEditor(entry, item);
    } else if (item.kind === "image") {
      ui.text.hidden = true;
      ui.text.textContent = "";
      ui.frame.hidden = false;
      ui.image.hidden = true;
      ui.image.removeAttribute("src");
      ui.imageLoading.hidden = true;
      if (!item.content_url) {
        ui.imageLoading.textContent = "This item has no image.";
        ui.imageLoading.hidden = false;
      } else {
        const shownAt = entry;
        const slow = setTimeout(function () {
          if (state.current === shownAt && ui.image.hidden) {
            ui.imageLoading.textContent = "Loading image…";
            ui.imageLoading.hidden = false;
          }
        }, 150);
        imageFor(item).then(function (url) {
          if (state.current !== shownAt) return;
          ui.image.src = url;
          ui.image.hidden = false;
          ui.imageLoading.hidden = true;
        }, function (err) {
          if (state.current !== shownAt) return;
          ui.imageLoading.textContent = "Could not load the image: " + api.messageOf(err);
          ui.imageLoading.hidden = false;
        }).finally(function () { clearTimeout(slow); });
      }
    } else {
      ui.frame.hidden = true;
      ui.image.removeAttribute("src");
      ui.text.hidden = false;
      if (typeof item.text === "string") {
        ui.text.textContent = item.text;
      } else if (item.content_url) {
        ui.text.textContent = "Loading…";
        const shownAt = entry;
        api.raw("GET", item.content_url, { headers: { Accept: "text/plain" } })
          .then(function (r) { return r.text(); })
          .then(function (t) { if (state.current === shownAt) ui.text.textContent = t; },
            function (err) { if (state.current === shownAt) ui.text.textContent = "Could not load the text: " + api.messageOf(err); });
      } else {
        ui.text.textContent = "";
      }
    }

    ui.fields.replaceChildren();
    const fields = item.fields || {};
    Object.keys(fields).forEach(function (k) {
      const v = fields[k];
      ui.fields.append(el("dt", { text: k }),
        el("dd", { text: v !== null && typeof v === "object" ? JSON.stringify(v) : String(v) }));
    });
    ui.fields.hidden = Object.keys(fields).length === 0;
    ui.stage.scrollTop = 0;
    renderSuggestion(entry);
    updateControls();
  }

  /** The item's content for an editor: a Promise of its text, or of an image's object URL. */
  function contentOf(item) {
    if (item.kind === "image") return item.content_url ? imageFor(item) : Promise.reject(new Error("This item has no image."));
    if (typeof item.text === "string") return Promise.resolve(item.text);
    if (!item.content_url) return Promise.resolve("");
    return api.raw("GET", item.content_url, { headers: { Accept: "text/plain" } }).then(function (r) { return r.text(); });
  }

  /** Hand the item to the widget's editor (kinds.js: mount / answer / pick / key / destroy). */
  function mountEditor(entry, item) {
    ui.editorHost.replaceChildren();
    const sugg = suggestionOf(entry);
    state.editor = state.widget.mount(ui.editorHost, {
      item: item, project: state.project, classes: state.classes, keys: state.keys || [],
      content: contentOf(item), previous: entry.prevLabel === undefined ? null : entry.prevLabel,
      suggestion: sugg ? sugg.label : null, // the model's pre-label: the starting answer when nothing is redone
      status: function (text) { if (state.current === entry) setStatus(text); },
      submit: function () { if (state.current === entry) submit(); },
    });
  }

  function unmountEditor() {
    const ed = state.editor;
    state.editor = null;
    if (ed && ed.destroy) ed.destroy();
    if (ui.editorHost) ui.editorHost.replaceChildren();
  }

  function renderEmpty() {
    unmountEditor();
    state.current = null;
    ui.item.hidden = true;
    delete ui.item.dataset.taskId;
    delete ui.item.dataset.itemId;
    ui.text.textContent = "";
    ui.image.removeAttribute("src");
    renderSuggestion(null);
    ui.exam.hidden = true;
    ui.teach.hidden = ui.teachCard.hidden = true;
    const finished = state.exhausted && !state.fetching && state.queue.length === 0;
    const paused = finished && !!state.pausedMsg;
    const done = finished && !paused;
    ui.paused.hidden = !paused;
    ui.done.hidden = !done;
    ui.loading.hidden = finished;
    if (!done) ui.loading.textContent = "Loading…";
    document.body.classList.toggle("is-done", done);
    updateControls();
  }

  /** Put the next queued task on screen (or the waiting / all-done state). */
  function showNext() {
    dropStale();
    while (state.queue.length && state.queue[0].task.id === state.lastFinishedId) state.queue.shift();
    const next = state.queue.shift();
    document.body.classList.remove("is-done");
    if (next) render(next); else renderEmpty();
    fill();
  }

  /** The current task is answered or skipped: move on immediately. */
  function finish(entry) {
    state.lastFinishedId = entry.task.id;
    showNext();
  }

  /* ---------- progress ---------- */

  let progressBusy = false;
  let progressAgain = false;

  function refreshProgress() {
    if (progressBusy) { progressAgain = true; return; }
    progressBusy = true;
    api.get(P + "/progress").then(function (p) {
      const mine = p.me && typeof p.me.answers === "number" ? p.me.answers : p.done;
      // annotators see their own counts only (project totals are for staff)
      const left = p.remaining === undefined || p.remaining === null ? null : p.remaining;
      ui.progress.textContent = "done " + mine + (left === null ? "" : " · remaining " + left);
      ui.progress.dataset.done = mine;
      if (left === null) delete ui.progress.dataset.remaining; else ui.progress.dataset.remaining = left;
      ui.progress.title = typeof p.tasks === "number"
        ? "Your answers: " + mine + ". Project: " + p.done + " of " + p.tasks + " tasks complete." : "";
    }, function () { /* progress is informative only */ }).then(function () {
      progressBusy = false;
      if (progressAgain) { progressAgain = false; refreshProgress(); }
    });
  }

  /* ---------- actions ---------- */

  /** Send a request about `entry` in the background, after any undo of it has landed. */
  function send(entry, fn) {
    const id = entry.task.id;
    const exam = !!entry.task.exam;
    if (exam) state.examInflight++;
    inflightAdd(id);
    setPending(1);
    setStatus("saving…");
    const p = Promise.resolve(entry.ready).then(function () { return withRetry(fn); });
    const settle = function () {
      if (exam) state.examInflight--;
      inflightDel(id);
      setPending(-1);
      if (state.heldBack) { state.heldBack = false; resume(); fill(); } // its lease is gone now
    };
    p.then(settle, settle);
    return p;
  }

  /** After a failed send the task may be available again: look for work once more. */
  function afterFailure() {
    state.exhausted = false;
    if (!state.current) showNext(); else fill();
  }

  function choose(index) {
    const c = state.classes[index];
    if (!state.current || !c) return;
    if (state.editor) {
      state.editor.pick(index);
    } else if (state.multi) {
      if (state.selected.has(c.name)) state.selected.delete(c.name); else state.selected.add(c.name);
      updateControls();
    } else {
      submit(c.name);
    }
  }

  function submit(label) {
    const entry = state.current;
    if (!entry) return;
    if (label === undefined && state.editor) {
      label = state.editor.answer();
      if (label === null || label === undefined) return; // the editor said why
    } else if (label === undefined) {
      if (!state.multi) return;
      const names = state.classes.map(function (c) { return c.name; })
        .filter(function (n) { return state.selected.has(n); });
      if (!names.length) { setStatus("pick at least one class (s skips)"); return; }
      label = state.widget.label(names);
    }
    if (state.feedback) return;
    if (entry.task.teach) { practice(entry, label); return; }
    const id = entry.task.id;
    const shown = suggestionOf(entry); // sent with every answer: the server records if it was taken
    const body = shown ? { label: label, suggestion: shown.label } : { label: label };
    const rec = { entry: entry, label: label, answer: null, promise: null };
    let gen = 0; // the number of send's "saving…": set right below, read when the request settles
    rec.promise = send(entry, function () {
      return api.post("/api/tasks/" + encodeURIComponent(id) + "/answers", body, KEEP);
    }).then(function (data) {
      rec.answer = data.answer;
      state.submitted++;
      document.body.dataset.submitted = String(state.submitted);
      settleStatus(gen, examResult(data.answer && data.answer.exam) || "saved");
      refreshProgress();
      return data.answer;
    }, function (err) {
      const i = state.history.indexOf(rec);
      if (i >= 0) state.history.splice(i, 1);
      if (isPaused(err)) { settleStatus(gen, ""); enterPaused(err); throw err; }
      if (!err.shown) {
        err.shown = true;
        api.showError(err, err.status === 409 ? "Answer not saved (conflict)" : "Answer not saved");
      }
      settleStatus(gen, "");
      updateControls();
      afterFailure();
      throw err;
    });
    gen = state.statusGen;
    rec.promise.catch(function () {});
    if (!entry.task.exam) state.history.push(rec); // an exam answer is final: no undo
    if (state.history.length > HISTORY_MAX) state.history.shift();
    finish(entry);
  }

  function labelText(label) { return Array.isArray(label) ? label.join(", ") : String(label); }

  /** A teaching item: the answer goes to /practice, its feedback shows at once, Continue moves on. */
  function practice(entry, label) {
    state.feedback = entry;
    updateControls();
    let gen = 0;
    send(entry, function () {
      return api.post("/api/tasks/" + encodeURIComponent(entry.task.id) + "/practice", { label: label }, KEEP);
    }).then(function (data) {
      settleStatus(gen, "practice: see why");
      if (state.current === entry) showFeedback(data.practice.teach, label);
    }, function (err) {
      settleStatus(gen, "");
      state.feedback = null;
      if (isPaused(err)) { enterPaused(err); return; }
      if (!err.shown) { err.shown = true; api.showError(err, "Practice answer not saved"); }
      if (state.current === entry) finish(entry);
    });
    gen = state.statusGen;
  }

  function showFeedback(fb, label) {
    ui.teachCard.classList.toggle("is-right", !!fb.correct);
    ui.teachCard.classList.toggle("is-wrong", !fb.correct);
    ui.teachCard.dataset.correct = fb.correct ? "1" : "0";
    $("teach-verdict").textContent = fb.correct ? "Right!" : "Not quite.";
    $("teach-right").textContent = labelText(fb.right_label);
    $("teach-yours").textContent = labelText(label);
    $("teach-nuance").textContent = fb.nuance ? "Nuance: " + fb.nuance : "";
    $("teach-explanation").textContent = fb.explanation || "";
    const refs = fb.reference_items || [];
    $("teach-refs").replaceChildren(...(refs.length ? [el("span", { class: "muted small", text: "Compare:" })] : []),
      ...refs.map(function (r) {
      const box = el("div", { class: "teach-ref", "data-item-id": r.id });
      if (r.label !== null && r.label !== undefined) box.append(el("strong", { text: labelText(r.label) }), " ");
      if (r.kind === "image" && r.content_url) {
        const img = el("img", { alt: "reference item " + r.id });
        imageFor({ id: r.id, content_url: r.content_url }).then(function (url) { img.src = url; }, function () {});
        box.append(img);
      } else {
        box.append(el("span", { text: typeof r.text === "string" ? r.text : "item " + r.id }));
      }
      return box;
    }));
    ui.teachCard.hidden = false;
    $("teach-continue").focus();
  }

  /** Leave the teaching card: on to the next task. */
  function continueAfterFeedback() {
    const entry = state.feedback;
    if (!entry || ui.teachCard.hidden) return;
    state.feedback = null;
    ui.teachCard.hidden = true;
    finish(entry);
  }

  /** What a finished exam attempt says (never which answers were right), or null. */
  function examResult(exam) {
    if (!exam || !exam.finished) return null;
    if (exam.passed) return "qualification passed: on to the work";
    return exam.attempts_left > 0
      ? "qualification not passed: a new attempt starts (" + exam.attempts_left + " left)"
      : "qualification not passed";
  }

  /** Take the model's suggestion: submit it (single-label) or select it (multi: then Enter). */
  function accept() {
    const entry = state.current;
    if (!entry) return;
    const s = suggestionOf(entry);
    if (!s) { setStatus("no suggestion for this item"); return; }
    if (!state.multi || s.drawn) { submit(s.label); return; }
    state.selected = new Set(s.names);
    updateControls();
    setStatus("suggestion selected · Enter submits");
  }

  function skip() {
    const entry = state.current;
    if (!entry) return;
    if (entry.task.exam) { setStatus("exam questions cannot be skipped"); return; }
    if (entry.task.teach || state.feedback) { setStatus("practice items cannot be skipped"); return; }
    const id = entry.task.id;
    let gen = 0;
    send(entry, function () {
      return api.post("/api/tasks/" + encodeURIComponent(id) + "/skip", {}, KEEP);
    }).then(function () {
      settleStatus(gen, "skipped");
      refreshProgress();
    }, function (err) {
      if (isPaused(err)) { settleStatus(gen, ""); enterPaused(err); return; }
      if (!err.shown) { err.shown = true; api.showError(err, "Skip not saved"); }
      settleStatus(gen, "");
      afterFailure();
    });
    gen = state.statusGen;
    finish(entry);
  }

  /** Undo the latest answer: show its task again at once; DELETE runs in the background. */
  function undo() {
    if (state.feedback) return; // a practice answer is final; Continue first
    const rec = state.history.pop();
    if (!rec) { setStatus("nothing to undo"); return; }
    const id = rec.entry.task.id;
    const again = makeEntry(rec.entry.task, null);
    again.prevLabel = rec.label;
    inflightAdd(id);
    again.ready = rec.promise.then(function (answer) {
      return api.del("/api/answers/" + encodeURIComponent(answer.id), KEEP);
    }).then(function (data) {
      if (data && data.task && data.task.id === id) again.task = Object.assign({}, again.task, data.task, { item: again.task.item });
      setStatus("undone");
      refreshProgress();
    });
    again.ready.catch(function (err) {
      if (isPaused(err)) { enterPaused(err); return; }
      if (!err.shown) { err.shown = true; api.showError(err, "Undo failed; the earlier answer stands"); }
      // The task is not ours to answer again: take it off screen / out of the queue.
      if (state.current === again) finish(again);
      else state.queue = state.queue.filter(function (e) { return e !== again; });
    }).then(function () { inflightDel(id); });

    if (state.current) state.queue.unshift(state.current); // still leased to us: comes next
    document.body.classList.remove("is-done");
    render(again);
    setStatus("undoing…");
  }

  /* ---------- keyboard ---------- */

  /** The digit key pressed ("0".."9"), or null. */
  function digitOf(e) {
    if (/^[0-9]$/.test(e.key)) return e.key;
    const m = /^(?:Digit|Numpad)([0-9])$/.exec(e.code || "");
    return m && !/^[0-9]$/.test(e.key) ? m[1] : null; // e.g. AZERTY top row
  }

  function onKey(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (state.feedback) { // the teaching card: Enter (or space) continues, nothing else answers
      if ((e.key === "Enter" || e.key === " ") && !(t && t.id === "teach-continue")) {
        e.preventDefault();
        if (!e.repeat) continueAfterFeedback();
      } else if (digitOf(e) !== null) e.preventDefault();
      return;
    }
    if (state.editor && state.editor.key && state.current && state.editor.key(e)) { e.preventDefault(); return; }
    const digit = digitOf(e);
    const pressed = digit !== null ? digit : (e.key.length === 1 ? e.key.toLowerCase() : null);
    const cls = pressed !== null && state.byKey ? state.byKey.get(pressed) : undefined;
    if (digit !== null || cls !== undefined) { // a digit, or a class's own key
      e.preventDefault();
      if (!e.repeat && cls !== undefined) choose(cls);
      return;
    }
    switch (e.key) {
      case "Enter":
        // Single mode, or a focused link / other button: let Enter work as usual.
        if (!state.multi || (t && t.closest && t.closest("a, button:not(.class-btn):not(#submit)"))) return;
        e.preventDefault();
        if (!e.repeat) submit();
        return;
      case "s": case "S":
        e.preventDefault();
        if (!e.repeat) skip();
        return;
      case "a": case "A":
        e.preventDefault();
        if (!e.repeat) accept();
        return;
      case "z": case "Z": case "Backspace":
        e.preventDefault();
        if (!e.repeat) undo();
        return;
    }
  }

  /* ---------- setup ---------- */

  function setupProject(project) {
    state.project = project;
    const schema = project.schema || {};
    const widget = window.AssayKinds.forProject(project);
    if (!widget) throw new Error("this page cannot show labels of kind " + JSON.stringify(schema.kind));
    state.widget = widget;
    state.multi = widget.multiple;
    state.classes = (schema.classes || []).map(function (c) {
      return typeof c === "string" ? { name: c, description: "" }
        : { name: String(c.name), description: c.description || "", key: c.key || null };
    });
    document.title = project.name + " · assay";
    ui.projectName.textContent = project.name;
    document.body.dataset.kind = widget.name;
    ui.submit.hidden = !state.multi;
    // Rendered by the server from Markdown (assay.engine.instructions): raw
    // HTML there is text and script links are not links.
    const html = typeof project.instructions_html === "string" ? project.instructions_html : null;
    if (html !== null) ui.instructions.innerHTML = html;
    else ui.instructions.textContent = (schema.instructions || "").trim();
    ui.instructionsBox.hidden = !(schema.instructions || "").trim();
    renderClasses();
    updateControls();
  }

  document.addEventListener("DOMContentLoaded", async function () {
    ui = {
      status: $("status"), progress: $("progress"), error: $("error"), loading: $("loading"),
      done: $("done"), item: $("item"), text: $("item-text"), frame: $("image-frame"),
      image: $("item-image"), imageLoading: $("image-loading"), fields: $("item-fields"), editorHost: $("item-editor"),
      classes: $("classes"), submit: $("submit"), skip: $("skip"), undo: $("undo"),
      keysHelp: $("keys-help"), instructions: $("instructions"), instructionsBox: $("instructions-box"),
      projectName: $("project-name"), stage: document.querySelector(".stage"),
      paused: $("paused"), pausedReason: $("paused-reason"), pausedTitle: $("paused-title"),
      exam: $("exam-banner"), teach: $("teach-banner"), teachCard: $("teach-card"),
      suggestion: $("suggestion"), suggestionLabel: $("suggestion-label"),
      suggestionConfidence: $("suggestion-confidence"), suggestionHint: $("suggestion-hint"), accept: $("accept"),
    };
    if (!projectId) {
      ui.loading.textContent = "No project given.";
      api.showError("No project id in the address; open a project from the project list.");
      return;
    }
    document.addEventListener("keydown", onKey);
    ui.image.addEventListener("load", function () {
      ui.image.classList.toggle("is-small", Math.max(ui.image.naturalWidth, ui.image.naturalHeight) < 128);
    });
    ui.submit.addEventListener("click", function () { submit(); });
    ui.skip.addEventListener("click", skip);
    ui.undo.addEventListener("click", undo);
    ui.accept.addEventListener("click", accept);
    $("teach-continue").addEventListener("click", continueAfterFeedback);
    [ui.submit, ui.skip, ui.undo, ui.accept].forEach(function (b) {
      b.addEventListener("mousedown", function (e) { e.preventDefault(); });
    });
    $("check-again").addEventListener("click", function () {
      resume();
      showNext();
    });
    $("paused-retry").addEventListener("click", function () {
      state.pausedMsg = null;
      ui.paused.hidden = true;
      resume();
      showNext();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden || !state.project) return;
      dropStale();
      if (!state.current) { resume(); showNext(); } else fill();
    });

    fill(); // the first task loads alongside the project
    refreshProgress();
    try {
      setupProject(await api.get(P));
    } catch (err) {
      if (err.status !== 401) api.showError(err, "Could not load the project");
      ui.loading.textContent = "Could not load the project.";
      return;
    }
    if (!state.current) showNext();
  });
})();
