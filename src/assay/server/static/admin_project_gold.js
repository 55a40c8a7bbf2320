/* One project's gold and review (issue 16 part 5): upload a gold file
 * (POST …/gold/file), the gold list in keyset pages (remove a row), and the
 * first items of the review queue with a decision per class (POST
 * …/items/{id}/review). The quality page (/quality/{id}) keeps the whole
 * review: shape and span marks, probable label errors, skills. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  const m = /\/admin\/projects\/(\d+)/.exec(location.pathname);
  if (!m) return;
  const base = "/api/projects/" + m[1];
  const PAGE = 50;
  let root = null, project = null, isAdmin = false, nextAfter = null;

  function labelText(label) { return typeof label === "string" ? label : JSON.stringify(label); }

  async function upload(e) {
    e.preventDefault();
    const input = root.querySelector("#gold-file");
    const status = root.querySelector("#gold-status");
    if (!input.files.length) { status.textContent = "Choose a file first."; return; }
    const form = new FormData();
    form.append("file", input.files[0]);
    const key = root.querySelector("#gold-key").value.trim();
    if (key) form.append("key", key);
    const btn = root.querySelector("#gold-upload");
    btn.disabled = true;
    status.textContent = "Uploading…";
    try {
      const r = await api.post(base + "/gold/file", form);
      status.textContent = "Gold from " + input.files[0].name + ": " + (r.added || 0) + " added, " + (r.updated || 0) + " updated.";
      input.value = "";
      await loadGold(false);
    } catch (err) {
      status.textContent = "Upload failed: " + api.messageOf(err);
    } finally {
      btn.disabled = false;
    }
  }

  function goldRow(g) {
    const tr = el("tr", { "data-item-id": g.item_id },
      el("td", { class: "num", text: String(g.item_id) }), el("td", { text: labelText(g.label) }),
      el("td", { text: g.source === "import" ? "gold" : "review" }), el("td", { text: g.purpose || "check" }),
      el("td", { text: g.nuance || "" }));
    const cell = el("td");
    if (isAdmin && g.source === "import") {
      const btn = el("button", { type: "button", class: "btn btn-small", "aria-label": "Remove gold item " + g.item_id, text: "Remove" });
      btn.addEventListener("click", async function () {
        btn.disabled = true;
        try { await api.del(base + "/gold/" + g.item_id); tr.remove(); } catch (err) {
          btn.disabled = false;
          api.showError(err, "Could not remove gold item " + g.item_id);
        }
      });
      cell.append(btn);
    }
    tr.append(cell);
    return tr;
  }

  async function loadGold(more) {
    const r = await api.get(base + "/gold?limit=" + PAGE + (more && nextAfter !== null ? "&after=" + nextAfter : ""));
    const tbody = root.querySelector("#gold-list tbody");
    const rows = (r.gold || []).map(goldRow);
    if (more) tbody.append.apply(tbody, rows);
    else {
      if (!rows.length) rows.push(el("tr", null, el("td", { colspan: "6", class: "muted", text: "No gold labels yet" })));
      tbody.replaceChildren.apply(tbody, rows);
    }
    nextAfter = r.next_after;
    root.querySelector("#gold-more").hidden = nextAfter === null || nextAfter === undefined;
  }

  function decideButtons(li, itemId) {
    return api.decideButtons(base, li, itemId, project.schema.classes.map(function (c) { return c.name; }),
      function () { loadGold(false); });
  }

  async function loadReview() {
    const list = root.querySelector("#review-queue");
    const widget = window.AssayKinds.forProject(project) || {};
    if (!widget.quality) { // marks (spans, boxes, polygons) are reviewed on the quality page
      list.replaceChildren(el("li", { class: "muted", text: "Items of this kind are reviewed on the quality page (link above)." }));
      return;
    }
    const q = await api.get(base + "/consensus?status=review&limit=10");
    const itemText = await api.itemTexts((q.items || []).map(function (it) { return it.item_id; }));
    const entries = (q.items || []).map(function (it) {
      const li = el("li", { class: "review-item", "data-item-id": it.item_id },
        el("p", { class: "review-text", text: itemText(it.item_id) }),
        el("p", { class: "muted small", text: it.answers + " answers · leaning " + labelText(it.label) +
          " (" + (100 * it.confidence).toFixed(1) + "%)" }));
      li.append(decideButtons(li, it.item_id));
      return li;
    });
    if (!entries.length) entries.push(el("li", { class: "muted", text: "The review queue is empty." }));
    list.replaceChildren.apply(list, entries);
  }

  function build() {
    const form = el("form", { id: "gold-form", class: "filters" },
      el("label", { for: "gold-file", text: "Gold file (.csv, .jsonl, spaCy .jsonl, .conll, COCO or Label Studio .json, zipped YOLO or VOC folder) " }),
      el("input", { type: "file", id: "gold-file", name: "file", accept: ".csv,.jsonl,.ndjson,.json,.conll,.bio,.iob,.zip" }),
      el("label", { for: "gold-key", text: "Match rows on metadata field (empty: item_id) " }),
      el("input", { type: "text", id: "gold-key", name: "key", size: "12", autocomplete: "off" }),
      el("button", { type: "submit", id: "gold-upload", class: "btn btn-small btn-primary", text: "Upload gold" }));
    form.addEventListener("submit", upload);
    const more = el("button", { type: "button", id: "gold-more", class: "btn btn-small", hidden: true, text: "More gold" });
    more.addEventListener("click", function () { loadGold(true).catch(function (err) { api.showError(err, "Gold"); }); });
    root.replaceChildren(
      el("h2", { class: "card-title", text: "Gold and review" }),
      el("p", { class: "small" }, "The whole review (marks of spans, boxes and polygons, probable label errors, skills): ",
        el("a", { href: "/quality/" + m[1], id: "quality-link", text: "quality page" }), "."),
      isAdmin ? form : el("p", { class: "muted small", text: "Only an admin may upload gold." }),
      el("p", { id: "gold-status", class: "small", role: "status" }),
      el("div", { class: "table-scroll" }, el("table", { class: "annotators", id: "gold-list" },
        el("caption", { class: "small muted", text: "Known labels: gold questions and reviewers' decisions" }),
        el("thead", null, el("tr", null, el("th", { scope: "col", class: "num", text: "item" }),
          el("th", { scope: "col", text: "label" }), el("th", { scope: "col", text: "source" }),
          el("th", { scope: "col", text: "purpose" }), el("th", { scope: "col", text: "nuance" }),
          el("th", { scope: "col", text: "action" }))), el("tbody"))),
      more,
      el("h3", { class: "card-title", text: "Review queue" }),
      el("p", { class: "muted small", text: "Items that reached the most answers allowed without a confident label. Your decision is final and counts like gold." }),
      el("ul", { id: "review-queue", class: "review-list" }));
  }

  document.addEventListener("DOMContentLoaded", async function () {
    root = document.getElementById("gold-review");
    if (!root || !api.getToken()) return;
    try {
      const me = await api.shared("/api/me");
      isAdmin = me.role === "admin";
      project = await api.shared(base);
      build();
      await loadGold(false);
      await loadReview();
    } catch (err) {
      if (err.status !== 401) api.showError(err, "Gold and review");
    }
  });
})();
