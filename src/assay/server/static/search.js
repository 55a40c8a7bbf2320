/* Dataset search page (/search/{dataset_id}): "more like this" from an item id
 * (or the selected results) or a text query (POST /api/datasets/{id}/similar),
 * filtered by a project's final label and confidence, a slice or a tag;
 * results in a grid (text snippets, image thumbnails fetched with the token,
 * the item's tags), selection by click, Shift+click (a range) and keyboard
 * (each result is a toggle button), then tag the selection (POST …/tags),
 * save it as a slice (POST …/slices) or send it to a project's hand-out queue
 * with a priority (POST /api/projects/{id}/prioritize). Searching and tagging
 * are for staff (annotators: 403); saving and prioritizing for admins. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  if (!api.requireToken()) return;

  const datasetId = Number(location.pathname.split("/").filter(Boolean)[1]);
  const base = "/api/datasets/" + encodeURIComponent(datasetId);
  const params = new URLSearchParams(location.search);
  let results = [];          // [{item_id, score, kind, snippet, content_url, tags}]
  let projects = [];         // the projects labelling this dataset
  const selected = new Set(); // item ids
  let anchor = null;          // index of the last clicked result (Shift+click ranges)
  const blobUrls = [];
  document.getElementById("map-link").href = "/map/" + encodeURIComponent(datasetId) + location.search;
  document.getElementById("curate-link").href = "/curate/" + encodeURIComponent(datasetId);

  function $(id) { return document.getElementById(id); }

  const setState = window.AssayItems.setState;
  const act = window.AssayItems.act;

  function refreshSelection() {
    document.querySelectorAll("#results .result").forEach(function (b) {
      const on = selected.has(Number(b.dataset.itemId));
      b.setAttribute("aria-pressed", String(on));
      b.classList.toggle("selected", on);
    });
    $("selected-count").textContent = selected.size + " selected";
  }

  function toggle(index, shift) {
    const id = results[index].item_id;
    if (shift && anchor !== null) {
      const on = !selected.has(id) || selected.has(results[anchor].item_id);
      const lo = Math.min(anchor, index), hi = Math.max(anchor, index);
      for (let i = lo; i <= hi; i++) {
        if (on) selected.add(results[i].item_id); else selected.delete(results[i].item_id);
      }
    } else if (selected.has(id)) selected.delete(id);
    else selected.add(id);
    anchor = index;
    refreshSelection();
  }

  function card(r, index) {
    const body = window.AssayItems.body(r,
      "#" + r.item_id + " \u00b7 " + (typeof r.score === "number" ? r.score.toFixed(3) : "\u2014"), blobUrls);
    const btn = el("button", { type: "button", class: "result", "aria-pressed": "false",
      "data-item-id": r.item_id, "data-index": index }, ...body);
    btn.addEventListener("click", function (e) { toggle(index, e.shiftKey); });
    return el("li", null, btn);
  }

  function draw() {
    window.AssayItems.revoke(blobUrls);
    const cards = results.map(card);
    if (!cards.length) cards.push(el("li", { class: "muted", text: "No results." }));
    $("results").replaceChildren(...cards);
    refreshSelection();
  }

  function render(list) {
    results = list;
    selected.clear();
    anchor = null;
    draw();
  }

  /* The filter controls as fields of the similar API's body; null (and an
   * error shown) when they do not make sense. */
  function filters() {
    const out = {};
    const project = $("f-project").value, label = $("f-label").value;
    const lo = $("f-min-conf").value.trim(), hi = $("f-max-conf").value.trim();
    if ((label || lo || hi) && !project) {
      api.showError("Choose a project for the label and confidence filters.");
      return null;
    }
    if (project) out.project = Number(project);
    if (label) out.label = label;
    for (const [key, v] of [["min_confidence", lo], ["max_confidence", hi]]) {
      if (!v) continue;
      const x = Number(v);
      if (!Number.isFinite(x) || x < 0 || x > 1) {
        api.showError("A confidence must be a number from 0 to 1.");
        return null;
      }
      out[key] = x;
    }
    if ($("f-slice").value) out.slice = $("f-slice").value;
    if ($("f-tag").value) out.tag = $("f-tag").value;
    return out;
  }

  async function search(query) {
    api.clearError();
    const f = filters();
    if (f === null) return;
    const body = Object.assign({}, query, f);
    setState("search-state", "Searching…");
    try {
      const r = await api.post(base + "/similar", body);
      render(r.results || []);
      setState("search-state", (r.results || []).length + " results.");
    } catch (err) {
      setState("search-state", "");
      if (err.status !== 401) api.showError(err, "Search failed");
    }
  }

  function onSearch(e) {
    e.preventDefault();
    const item = $("q-item").value.trim(), text = $("q-text").value.trim();
    const k = Number($("q-k").value) || 24;
    if (!item && !text) { api.showError("Give an item id or a text to search for."); return; }
    if (item && !/^\d+$/.test(item)) { api.showError("The item id must be a whole number."); return; }
    search(item ? { items: [Number(item)], k: k } : { text: text, k: k });
  }

  function picked() { return window.AssayItems.picked(results, selected, "Select some results first."); }

  function onSaveSlice(e) {
    e.preventDefault();
    const ids = picked();
    const name = $("slice-name").value.trim();
    if (!ids.length) return;
    if (!name) { setState("action-state", "Give the slice a name.", true); return; }
    act($("save-slice"), async function () {
      const s = await api.post(base + "/slices", { name: name, items: ids });
      setState("action-state", "Saved slice \u201c" + s.name + "\u201d with " + ids.length + " items.");
      await loadSlices();
    });
  }

  function onTag(e) {
    e.preventDefault();
    const ids = picked();
    const tag = $("tag-name").value.trim();
    if (!ids.length) return;
    if (!tag) { setState("action-state", "Give the tag a name.", true); return; }
    act($("tag-selected"), async function () {
      const r = await api.post(base + "/tags", { tag: tag, items: ids });
      window.AssayItems.addTag(results, selected, r.tag);
      draw();
      setState("action-state", "Tagged " + r.items + " items \u201c" + r.tag + "\u201d (" + r.added + " new).");
      await loadTags();
    });
  }

  function options(select, values, keep) {
    const current = keep ? select.value : "";
    select.replaceChildren(el("option", { value: "", text: "(any)" }),
      ...values.map(function (v) { return el("option", { value: v, text: v }); }));
    if (values.includes(current)) select.value = current;
  }

  function classesOf(project) {
    const p = projects.find(function (x) { return String(x.id) === String(project); });
    const classes = (p && p.schema && p.schema.classes) || [];
    return classes.map(function (c) { return typeof c === "string" ? c : c.name; });
  }

  async function loadTags() {
    const data = await api.get(base + "/tags");
    const names = (data.tags || []).map(function (t) { return t.tag; });
    options($("f-tag"), names, true);
    $("known-tags").replaceChildren(...names.map(function (n) { return el("option", { value: n }); }));
  }

  async function loadSlices() {
    const data = await api.get(base + "/slices");
    options($("f-slice"), (data.slices || []).map(function (x) { return x.name; }), true);
  }

  function onPrioritize(e) {
    e.preventDefault();
    const ids = picked();
    const project = $("queue-project").value;
    const priority = Number($("queue-priority").value);
    if (!ids.length) return;
    if (!project) { setState("action-state", "Choose a project.", true); return; }
    if (!Number.isFinite(priority)) { setState("action-state", "The priority must be a number.", true); return; }
    act($("send-queue"), async function () {
      const r = await api.post("/api/projects/" + encodeURIComponent(project) + "/prioritize",
        { items: ids, priority: priority });
      setState("action-state", "Sent " + r.items + " items (" + r.tasks + " tasks) to the queue at priority " + r.priority + ".");
    });
  }

  /** One round of needle mining (POST /api/projects/{id}/mine): the selected items are the seeds. */
  function onMine(e) {
    e.preventDefault();
    const project = $("queue-project").value, label = $("mine-class").value;
    const batch = Number($("mine-batch").value), priority = Number($("queue-priority").value);
    if (!project || !label) { setState("action-state", "Choose a project and a class.", true); return; }
    if (!Number.isInteger(batch) || batch < 1) { setState("action-state", "Items per round must be a whole number.", true); return; }
    const seeds = results.map(function (r) { return r.item_id; }).filter(function (i) { return selected.has(i); });
    act($("mine"), async function () {
      const r = await api.post("/api/projects/" + encodeURIComponent(project) + "/mine",
        { label: label, seeds: seeds, batch: batch, priority: Number.isFinite(priority) ? priority : 10 });
      setState("action-state", "Mined " + r.items.length + " items (" + r.tasks + " tasks) into the queue from " +
        r.positives + " examples of \u201c" + r.label + "\u201d and " + r.negatives + " rejected; " +
        r.candidates + " unlabeled items scored.");
    });
  }

  async function loadProjects(isAdmin) {
    const data = await api.get("/api/projects");
    const mine = (data.projects || []).filter(function (p) { return p.dataset_id === datasetId; });
    projects = mine;
    const sel = $("queue-project");
    sel.replaceChildren(...mine.map(function (p) { return el("option", { value: p.id, text: p.name }); }));
    if (params.get("project")) sel.value = params.get("project");
    $("f-project").replaceChildren(el("option", { value: "", text: "(any)" }),
      ...mine.map(function (p) { return el("option", { value: p.id, text: p.name }); }));
    options($("f-label"), classesOf($("f-project").value), false);
    options($("mine-class"), classesOf(sel.value), false);
    $("mine-class").firstChild.remove(); // a class is needed, not "(any)"
    if (!isAdmin) {
      ["save-slice", "send-queue", "mine"].forEach(function (id) { $(id).disabled = true; $(id).title = "Only an admin may do this"; });
    } else if (!mine.length) {
      ["send-queue", "mine"].forEach(function (id) { $(id).disabled = true; $(id).title = "No project labels this dataset"; });
    }
  }

  function wire() {
    $("logout").addEventListener("click", function (e) { e.preventDefault(); api.logout(); });
    $("search-form").addEventListener("submit", onSearch);
    $("slice-form").addEventListener("submit", onSaveSlice);
    $("queue-form").addEventListener("submit", onPrioritize);
    $("mine-form").addEventListener("submit", onMine);
    $("queue-project").addEventListener("change", function () {
      options($("mine-class"), classesOf($("queue-project").value), false);
      $("mine-class").firstChild.remove();
    });
    $("tag-form").addEventListener("submit", onTag);
    $("f-project").addEventListener("change", function () {
      options($("f-label"), classesOf($("f-project").value), true);
    });
    $("select-all").addEventListener("click", function () {
      results.forEach(function (r) { selected.add(r.item_id); });
      refreshSelection();
    });
    $("select-none").addEventListener("click", function () { selected.clear(); refreshSelection(); });
    $("more-like-these").addEventListener("click", function () {
      const ids = picked();
      if (ids.length) search({ items: ids, k: Number($("q-k").value) || 24 });
    });
  }

  document.addEventListener("DOMContentLoaded", async function () {
    wire();
    try {
      const me = await api.get("/api/me");
      $("me").textContent = me.username + " (" + me.role + ")";
      const ds = await api.get(base);
      $("dataset-title").textContent = "Search · " + ds.name;
      document.title = "Search · " + ds.name + " · assay";
      await Promise.all([loadProjects(me.role === "admin"), loadSlices(), loadTags()]);
      $("search-ui").hidden = false;
      const item = params.get("item");
      if (item) { $("q-item").value = item; await search({ items: [Number(item)], k: Number($("q-k").value) }); }
    } catch (err) {
      if (err.status !== 401) api.showError(err);
    } finally {
      $("loading").hidden = true;
    }
  });
})();
