/* Curation page (/curate/{dataset_id}): one background kNN pass over the
 * dataset's embeddings (POST /api/datasets/{id}/curation-scan starts it,
 * GET polls it: a progress bar, no reload), then near-duplicate groups
 * (GET …/duplicates?describe=true: each group's items as thumbnails or
 * snippets with their similarity; per group "keep one, tag the rest"
 * through POST …/tags), exact duplicates in other datasets (…/duplicates
 * ?exact=true) and outliers, most unusual first, with uniqueness and
 * representativeness (GET …/outliers; tag the selected or save them as a
 * slice). Staff only (annotators: 403); saving a slice is for admins. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const items = window.AssayItems;
  const el = api.el;
  if (!api.requireToken()) return;

  const datasetId = Number(location.pathname.split("/").filter(Boolean)[1]);
  const base = "/api/datasets/" + encodeURIComponent(datasetId);
  const params = new URLSearchParams(location.search);
  let groups = [];            // [{items, similarities, size, members: [{item_id, similarity, …}]}]
  let outliers = [];          // [{item_id, outlier, uniqueness, representativeness, …}]
  const selected = new Set(); // outlier item ids
  const groupUrls = [], outlierUrls = [], exactUrls = [];
  const OUTLIERS = 48;         // outliers shown
  let scanning = 0;           // bumped by every scan: an older poll stops
  window.assayCurate = { ready: false };

  function $(id) { return document.getElementById(id); }
  function fmt(x) { return typeof x === "number" ? x.toFixed(3) : "\u2014"; }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  const setState = window.AssayItems.setState;
  const act = window.AssayItems.act;

  function query() {
    return "?k=" + encodeURIComponent($("c-k").value) + "&threshold=" + encodeURIComponent($("c-threshold").value);
  }

  function showProgress(st) {
    const bar = $("scan-progress");
    bar.hidden = false;
    bar.value = st.progress || 0;
    setState("scan-state", "Scanning " + st.count + " items (" + st.state + ", " +
      Math.round(100 * (st.progress || 0)) + " %)\u2026");
  }

  /* A GET that may answer 202 with the pass's status: poll until it is ready. */
  async function fetchReady(path, run) {
    for (;;) {
      const body = await api.get(path);
      if (!body || !body.state) return body;
      if (body.state === "failed") throw new Error("the scan failed: " + body.message);
      showProgress(body);
      await sleep(500);
      if (run !== scanning) return null;
    }
  }

  /* ---- near-duplicate groups */

  function member(g, gi, m) {
    const radio = el("input", { type: "radio", name: "keep-" + gi, value: m.item_id,
      "aria-label": "keep item " + m.item_id });
    radio.checked = g.keep === m.item_id;
    radio.addEventListener("change", function () { g.keep = m.item_id; markKeep(gi); });
    const label = el("label", { class: "result" + (g.keep === m.item_id ? " selected" : "") }, radio,
      ...items.body(m, "#" + m.item_id + " \u00b7 similarity " + m.similarity.toFixed(4), groupUrls));
    return el("li", null, label);
  }

  function groupNode(g, gi) {
    const rest = g.items.length - 1, more = g.items.length - g.members.length;
    const button = el("button", { type: "button", class: "btn", "data-group": gi,
      text: "Keep #" + g.keep + ", tag the other " + rest });
    button.addEventListener("click", function () { resolve(gi, button); });
    return el("li", { class: "curate-group" + (g.resolved ? " is-resolved" : ""), "data-group": gi },
      el("h3", { text: "Group " + (gi + 1) + " \u00b7 " + g.size + " items \u00b7 similarity " +
        fmt(g.min_similarity) + "\u2013" + fmt(g.max_similarity) }),
      el("fieldset", { class: "curate-keep" }, el("legend", { text: "Item to keep in group " + (gi + 1) }),
        el("ul", { class: "result-grid" }, ...g.members.map(function (m) { return member(g, gi, m); }))),
      more > 0 ? el("p", { class: "muted small", text: "+" + more + " more items not shown (tagged too)." }) : null,
      el("div", { class: "curate-resolve" }, button,
        el("span", { class: "small", role: "status", text: g.note || "" })));
  }

  function groupLi(gi) { return document.querySelector('#groups > li[data-group="' + gi + '"]'); }

  function markKeep(gi) {
    const g = groups[gi], li = groupLi(gi);
    li.querySelectorAll("label.result").forEach(function (label) {
      label.classList.toggle("selected", Number(label.querySelector("input").value) === g.keep);
    });
    li.querySelector("button[data-group]").textContent = "Keep #" + g.keep + ", tag the other " + (g.items.length - 1);
  }

  function drawGroup(gi) {
    const fresh = groupNode(groups[gi], gi);
    groupLi(gi).replaceWith(fresh);
    fresh.querySelector("button[data-group]").focus();
  }

  function drawGroups() {
    items.revoke(groupUrls);
    const nodes = groups.map(groupNode);
    if (!nodes.length) nodes.push(el("li", { class: "muted", text: "No near-duplicates at this similarity." }));
    $("groups").replaceChildren(...nodes);
  }

  async function resolve(gi, button) {
    const g = groups[gi], tag = $("dup-tag").value.trim();
    if (!tag) { api.showError("Give the tag for the rest of a group."); return; }
    const rest = g.items.filter(function (i) { return i !== g.keep; });
    button.disabled = true;
    try {
      const r = await api.post(base + "/tags", { tag: tag, items: rest });
      items.addTag(g.members, new Set(rest), r.tag);
      g.resolved = true;
      g.note = "Kept #" + g.keep + "; tagged " + r.items + " items \u201c" + r.tag + "\u201d (" + r.added + " new).";
      drawGroup(gi);
    } catch (err) {
      button.disabled = false;
      if (err.status !== 401) api.showError(err);
    }
  }

  /* ---- exact duplicates */

  function drawExact(list) {
    items.revoke(exactUrls);
    const nodes = list.map(function (g) {
      return el("li", null, el("span", { class: "small muted", text: "content " + g.content_hash.slice(0, 12) }),
        el("ul", null, ...g.items.map(function (x) {
          if (x.dataset_id !== datasetId) {
            return el("li", { text: "item #" + x.item_id + " in dataset " + x.dataset_id });
          }
          return el("li", null, ...items.body(x, "#" + x.item_id + " (this dataset)", exactUrls));
        })));
    });
    if (!nodes.length) nodes.push(el("li", { class: "muted", text: "No item's content is in another dataset." }));
    $("exact").replaceChildren(...nodes);
  }

  /* ---- outliers */

  function refreshSelection() {
    document.querySelectorAll("#outliers .result").forEach(function (b) {
      const on = selected.has(Number(b.dataset.itemId));
      b.setAttribute("aria-pressed", String(on));
      b.classList.toggle("selected", on);
    });
    $("selected-count").textContent = selected.size + " selected";
  }

  function drawOutliers() {
    items.revoke(outlierUrls);
    const nodes = outliers.map(function (r) {
      const btn = el("button", { type: "button", class: "result", "aria-pressed": "false", "data-item-id": r.item_id },
        ...items.body(r, "#" + r.item_id + " \u00b7 outlier " + fmt(r.outlier) + " \u00b7 uniqueness " +
          fmt(r.uniqueness) + " \u00b7 representativeness " + fmt(r.representativeness), outlierUrls));
      btn.addEventListener("click", function () {
        if (selected.has(r.item_id)) selected.delete(r.item_id); else selected.add(r.item_id);
        refreshSelection();
      });
      return el("li", null, btn);
    });
    if (!nodes.length) nodes.push(el("li", { class: "muted", text: "No items." }));
    $("outliers").replaceChildren(...nodes);
    refreshSelection();
  }

  function picked() { return window.AssayItems.picked(outliers, selected, "Select some outliers first."); }

  function onTag(e) {
    e.preventDefault();
    const ids = picked(), tag = $("tag-name").value.trim();
    if (!ids.length) return;
    if (!tag) { setState("action-state", "Give the tag a name.", true); return; }
    act($("tag-selected"), async function () {
      const r = await api.post(base + "/tags", { tag: tag, items: ids });
      items.addTag(outliers, selected, r.tag);
      drawOutliers();
      setState("action-state", "Tagged " + r.items + " items \u201c" + r.tag + "\u201d (" + r.added + " new).");
    });
  }

  function onSlice(e) {
    e.preventDefault();
    const ids = picked(), name = $("slice-name").value.trim();
    if (!ids.length) return;
    if (!name) { setState("action-state", "Give the slice a name.", true); return; }
    act($("save-slice"), async function () {
      const s = await api.post(base + "/slices", { name: name, items: ids });
      setState("action-state", "Saved slice \u201c" + s.name + "\u201d with " + ids.length + " items.");
    });
  }

  /* ---- the scan */

  async function scan() {
    const run = ++scanning;
    api.clearError();
    window.assayCurate.ready = false;
    $("scan").disabled = true;
    try {
      let st = await api.post(base + "/curation-scan" + query());
      while (st.state === "queued" || st.state === "running") {
        showProgress(st);
        await sleep(500);
        if (run !== scanning) return;
        st = await api.get(base + "/curation-scan" + query());
      }
      if (st.state !== "done") throw new Error("the scan " + st.state + (st.message ? ": " + st.message : ""));
      $("scan-progress").value = 1;
      const [dups, exact, outs] = await Promise.all([
        fetchReady(base + "/duplicates" + query() + "&describe=true", run),
        api.get(base + "/duplicates?exact=true&describe=true"),
        fetchReady(base + "/outliers" + query() + "&top=" + OUTLIERS, run)]);
      if (run !== scanning || !dups || !outs) return;
      groups = (dups.groups || []).map(function (g) { return Object.assign(g, { keep: g.items[0] }); });
      outliers = outs.results || [];
      selected.clear();
      drawGroups();
      drawExact(exact.groups || []);
      drawOutliers();
      $("scan-progress").hidden = true;
      setState("scan-state", st.count + " items scanned: " + groups.length + " near-duplicate groups at similarity \u2265 " +
        st.threshold + ", outliers by the " + st.k + " nearest.");
      window.assayCurate.ready = true;
    } catch (err) {
      setState("scan-state", "");
      if (err.status !== 401) api.showError(err);
    } finally {
      if (run === scanning) $("scan").disabled = false;
    }
  }

  function wire() {
    $("logout").addEventListener("click", function (e) { e.preventDefault(); api.logout(); });
    $("scan-form").addEventListener("submit", function (e) {
      e.preventDefault();
      const t = Number($("c-threshold").value), k = Number($("c-k").value);
      if (!(t > 0 && t <= 1)) { api.showError("The similarity must be a number above 0, at most 1."); return; }
      if (!Number.isInteger(k) || k < 1 || k > 999) { api.showError("k must be a whole number from 1 to 999."); return; }
      scan();
    });
    $("dup-tag-form").addEventListener("submit", function (e) { e.preventDefault(); });
    $("tag-form").addEventListener("submit", onTag);
    $("slice-form").addEventListener("submit", onSlice);
    $("select-none").addEventListener("click", function () { selected.clear(); refreshSelection(); });
    const q = "/" + encodeURIComponent(datasetId);
    $("search-link").href = "/search" + q;
    $("map-link").href = "/map" + q;
  }

  document.addEventListener("DOMContentLoaded", async function () {
    wire();
    if (params.get("threshold")) $("c-threshold").value = params.get("threshold");
    if (params.get("k")) $("c-k").value = params.get("k");
    try {
      const me = await api.get("/api/me");
      $("me").textContent = me.username + " (" + me.role + ")";
      if (me.role !== "admin") { $("save-slice").disabled = true; $("save-slice").title = "Only an admin may do this"; }
      const ds = await api.get(base);
      $("dataset-title").textContent = "Curate \u00b7 " + ds.name;
      document.title = "Curate \u00b7 " + ds.name + " \u00b7 assay";
    } catch (err) {
      setState("scan-state", "");
      if (err.status !== 401) api.showError(err);
      return;
    }
    scan();
  });
})();
